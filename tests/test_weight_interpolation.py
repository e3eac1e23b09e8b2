"""WiSE-FT weight interpolation: hand-computed values, endpoints exact, mismatches refused."""

from __future__ import annotations

import pytest
import torch

from ocrkit.models.weights import interpolate_state_dicts


def test_interpolation_is_elementwise_and_exact_at_the_ends():
    start = {"w": torch.tensor([0.0, 2.0, -4.0]), "n": torch.tensor(3)}
    end = {"w": torch.tensor([1.0, 4.0, 4.0]), "n": torch.tensor(7)}
    mid = interpolate_state_dicts(start, end, 0.25)
    assert torch.equal(mid["w"], torch.tensor([0.25, 2.5, -2.0]))
    assert torch.equal(mid["n"], torch.tensor(7))  # integer counters come from the end
    assert torch.equal(interpolate_state_dicts(start, end, 0.0)["w"], start["w"])
    assert torch.equal(interpolate_state_dicts(start, end, 1.0)["w"], end["w"])


def test_mismatched_keys_or_shapes_are_refused():
    with pytest.raises(ValueError, match="differ in keys"):
        interpolate_state_dicts({"a": torch.zeros(1)}, {"b": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match="a: shapes"):
        interpolate_state_dicts({"a": torch.zeros(2)}, {"a": torch.zeros(3)}, 0.5)
