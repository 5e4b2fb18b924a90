"""The exports' self-check: how far an exported file may be from eager float32 before nothing is written."""

from __future__ import annotations

import torch

from zoo_core.export.torchscript import TOLERANCE, ExactReference, check_output


def _outputs(drift: float, rounding: float):
    """Eager float32 ``expected``, an export ``actual`` that differs from it by ``drift`` of the peak, and the float64
    result, from which eager itself is ``rounding`` of the peak away (constructed numbers, peak 2)."""
    exact = torch.linspace(-2, 2, 101, dtype=torch.float64)
    expected = (exact + rounding * 2 * torch.cos(exact)).float()
    actual = expected + drift * 2 * torch.sin(3 * expected)
    return actual, expected, exact


def test_a_well_conditioned_output_must_match_within_the_tolerance():
    actual, expected, exact = _outputs(drift=0.8 * TOLERANCE, rounding=1e-7)
    assert check_output("close", actual, expected, lambda: exact).passed
    actual, expected, exact = _outputs(drift=5 * TOLERANCE, rounding=1e-7)
    check = check_output("drift", actual, expected, lambda: exact)
    assert not check.passed and check.tolerance == TOLERANCE  # eager is exact enough: 1e-5 stays the bar


def test_where_float32_itself_is_that_far_off_three_times_its_error_is_allowed():
    """MDX23C with initialised parameters: eager float32 is 7.6e-5 (of the peak) from float64, ONNX Runtime 7.5e-5
    from eager (measured on 32 frames); a 1e-5 bar would refuse a correct file."""
    actual, expected, exact = _outputs(drift=7.5e-5, rounding=7.6e-5)
    check = check_output("ill-conditioned", actual, expected, lambda: exact)
    assert check.passed and abs(check.tolerance - 3 * 7.6e-5) < 1e-6
    actual, expected, exact = _outputs(drift=3e-3, rounding=7.6e-5)  # a real mistake stays far beyond
    assert not check_output("mistake", actual, expected, lambda: exact).passed


def test_the_float64_reference_runs_only_when_a_check_needs_it_and_leaves_the_model_as_it_was():
    module = torch.nn.Linear(3, 2)
    reference = ExactReference(module)
    x = torch.randn(4, 3)
    weight = module.weight.detach().clone()
    calls = []
    check_output("close", module(x), module(x), lambda: calls.append(1) or reference(x))
    assert calls == []
    result = reference(x)
    assert result.dtype == torch.float64
    torch.testing.assert_close(result, torch.nn.functional.linear(x.double(), weight.double(), module.bias.double()))
    assert module.weight.dtype == torch.float32 and torch.equal(module.weight, weight)  # the model as it was
