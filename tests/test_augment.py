"""StrAugment: presets, dtypes, determinism and the identity at p=0."""

from __future__ import annotations

import numpy as np
import pytest

from ocrkit.data.augment import (
    AUGMENT_PRESETS,
    DEFAULT_PRESET,
    PARSEQ_OPS,
    AbinetPolicy,
    ParseqPolicy,
    StrAugment,
)


@pytest.fixture(scope="module")
def word() -> np.ndarray:
    """A dark 'word' bar with some texture on a light background."""
    rng = np.random.default_rng(0)
    img = np.full((32, 100, 3), 230, np.uint8)
    img[8:24, 10:90] = rng.integers(0, 60, (16, 80, 3), dtype=np.uint8)
    return img


def test_presets_are_registered_and_abinet_is_default():
    assert set(AUGMENT_PRESETS.list()) == {"abinet", "parseq", "none"}
    assert DEFAULT_PRESET == "abinet" and isinstance(StrAugment().policy, AbinetPolicy)
    with pytest.raises(KeyError, match="Did you mean 'parseq'"):
        StrAugment("parsec")


@pytest.mark.parametrize("preset", ["abinet", "parseq", "none"])
def test_each_preset_returns_rgb_uint8_and_is_deterministic(word, preset):
    aug = StrAugment(preset)
    for seed in range(25):
        out = aug(word, seed)
        assert (
            out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and min(out.shape[:2]) > 0
        )
        assert np.array_equal(out, aug(word, np.random.default_rng(seed)))
    assert np.array_equal(word[0, 0], [230, 230, 230])  # the input is never modified


@pytest.mark.parametrize("preset", ["abinet", "parseq"])
def test_presets_change_images_and_seeds_differ(word, preset):
    outs = [StrAugment(preset)(word, s) for s in range(20)]
    changed = [o.shape != word.shape or not np.array_equal(o, word) for o in outs]
    # ABINet: P(no group fires) = 0.5 * 0.75 * 0.75 = 0.28; PARSeq: 0.5 ** 3 = 0.125.
    assert 5 <= sum(changed) < 20
    assert len({o.tobytes() for o in outs}) > 5


@pytest.mark.parametrize("preset", ["abinet", "parseq", "none"])
def test_p_zero_is_identity(word, preset):
    aug = StrAugment(preset, p=0.0)
    for seed in range(10):
        out = aug(word, seed)
        assert np.array_equal(out, word) and out is not word


def test_p_one_always_changes_the_image(word):
    aug = StrAugment("abinet", p=1.0)
    assert all(not np.array_equal(aug(word, s), word) for s in range(10))


@pytest.mark.parametrize("op", sorted(PARSEQ_OPS))
def test_every_parseq_op_alone(word, op):
    aug = StrAugment("parseq", ops=(op,), num_ops=1, p_op=1.0, magnitude=10)
    out = aug(word, 0)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert out.shape != word.shape or not np.array_equal(out, word)


@pytest.mark.parametrize("group", ["geometry", "deterioration", "color"])
def test_every_abinet_group_alone(word, group):
    probs = {f"p_{g}": float(g == group) for g in ("geometry", "deterioration", "color")}
    aug = StrAugment("abinet", **probs)
    outs = [aug(word, s) for s in range(5)]
    assert all(o.dtype == np.uint8 and o.shape[2] == 3 for o in outs)
    assert any(o.shape != word.shape or not np.array_equal(o, word) for o in outs)
    if group != "geometry":
        assert all(o.shape == word.shape for o in outs)  # only geometry changes the size


def test_extras_invert_and_grayscale(word):
    inv = StrAugment("abinet", p=0.0, p_invert=1.0)(word, 0)
    assert np.array_equal(inv, 255 - word)
    gray = StrAugment("abinet", p=0.0, p_grayscale=1.0)(word, 0)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])


def test_stateful_generator_is_reproducible_from_seed(word):
    a, b = StrAugment("parseq", seed=3), StrAugment("parseq", seed=3)
    seq_a = [a(word).tobytes() for _ in range(8)]
    seq_b = [b(word).tobytes() for _ in range(8)]
    assert seq_a == seq_b and len(set(seq_a)) > 1


def test_rejects_non_rgb_uint8(word):
    aug = StrAugment()
    with pytest.raises(ValueError, match="RGB uint8"):
        aug(word.astype(np.float32))
    with pytest.raises(ValueError, match="RGB uint8"):
        aug(word[..., 0])


def test_policy_validation():
    with pytest.raises(ValueError, match="unknown ops"):
        ParseqPolicy(ops=("sharpness",))
    with pytest.raises(ValueError, match="p must be"):
        StrAugment("abinet", p=2.0)
