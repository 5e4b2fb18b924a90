"""Test-time augmentation: a model that also separates the mixture with its channels swapped and with its
polarity inverted, undoes each augmentation on the estimates, and averages the three (MSST's ``--use_tta``:
left/right swap, polarity inversion, the sum divided by 3).

The wrapper augments every segment the engine hands it. Overlap-add, resampling and the complement stem
(mixture − vocals) are linear, so this equals separating the three augmented tracks whole, undoing and averaging
(what tests/test_ensemble.py checks on the written files).
"""

from __future__ import annotations

from torch import Tensor, nn


class TestTimeAugmented(nn.Module):
    """``model`` seen through the augmentations; every other attribute is the model's own."""

    __test__ = False  # not a pytest class, whatever its name says

    def __init__(self, model: nn.Module):
        super().__init__()
        self.inner = model

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "inner":
                raise
            return getattr(self.inner, name)

    def forward(self, mixture: Tensor) -> Tensor:
        """``[batch, 2, n]`` → ``[batch, stems, 2, n]``."""
        total = self.inner(mixture).float()
        total = total + self.inner(mixture.flip(1)).float().flip(2)  # swap back left and right
        total = total - self.inner(-mixture).float()  # and the polarity
        return total / 3

    def training_segment(self) -> int:
        return self.inner.training_segment()


def with_tta(model):
    return TestTimeAugmented(model).eval()
