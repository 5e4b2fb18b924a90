"""Ensembles and test-time augmentation: several models (or checkpoints) as one.

- `names`: the one-string name of an ensemble or an augmented model (``avg-wave(A:one, A:two)``).
- `rules`: avg-wave, median-wave, avg-spec, max-spec, min-spec (MSST's ``ensemble.py`` semantics).
- `engine`: `Ensemble`, a model made of models; its members separate side by side, block by block.
- `spectral`: the spectral rules, streamed.
- `tta`: left/right swap and polarity inversion, averaged (MSST's ``--use_tta``).
- `load`: building what a name says through the one model loader.
"""
