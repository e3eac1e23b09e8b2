"""StrAugment: presets, dtypes, determinism and the identity at p=0."""

from __future__ import annotations

import hashlib

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


def _shifted_right(img: np.ndarray, n: int) -> np.ndarray:
    """``img`` moved ``n`` columns right, the first column repeated into the gap (replicate)."""
    return np.concatenate([np.repeat(img[:, :1], n, axis=1), img[:, :-n]], axis=1)


# Known answers of each op alone at magnitude 10 (level 1.0) on `word`, seed 0.
KNOWN_OPS = {
    "invert": lambda w: 255 - w,
    "solarize": lambda w: 255 - w,  # threshold 256 - 256 = 0: every value is inverted
    "posterize": lambda w: w & 0x80,  # 4 - 4 = 0 bits, clipped to 1: the top bit only
    "solarize_add": lambda w: np.where(w < 128, np.minimum(w.astype(int) + 110, 255), w),
    # seed 0 draws the + sign: factor 1 + 0.9, and a shift of +0.1 x 100 = 10 columns
    "brightness": lambda w: np.clip(np.rint(w * np.float32(1.9)), 0, 255),
    "translate_x": lambda w: _shifted_right(w, 10),
}

# The other ops: output size (a known answer for the canvas-expanding ones) and the first 16 hex
# digits of sha256(output uint8 bytes), produced by this test's call with OpenCV 5.1.0 and
# numpy 2.4.6 (the same on repeated runs); another OpenCV's rounding may change a digest.
GOLDEN_OPS = {
    "auto_contrast": ((32, 100), "3caf8349f4954ef5"),
    "color": ((32, 100), "efdbafabdb3bfb9e"),
    "contrast": ((32, 100), "0e18bd88a026148f"),
    "equalize": ((32, 100), "c7f14edbac7d7c12"),
    "gaussian_blur": ((32, 100), "def97842c71e3e74"),
    "poisson_noise": ((32, 100), "fa16a3f8a3efff0a"),
    # 30 deg: height 100 sin + 32 cos = 77.7, width 100 cos + 32 sin = 102.6, rounded up
    "rotate": ((78, 103), "c55e2312fcc5f081"),
    "shear_x": ((32, 129), "8a351590ffff937d"),  # width 100 + 0.9 x 32 = 128.8
    "shear_y": ((52, 100), "2031c37c69ad75f7"),  # height 32 + 0.2 x 100
    "translate_y": ((32, 100), "3aec5d6d60c97282"),
}


def _digest(img: np.ndarray) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()[:16]


def test_known_and_golden_ops_cover_the_pool():
    assert set(KNOWN_OPS) | set(GOLDEN_OPS) == set(PARSEQ_OPS)
    assert not set(KNOWN_OPS) & set(GOLDEN_OPS)


@pytest.mark.parametrize("op", sorted(PARSEQ_OPS))
def test_every_parseq_op_alone(word, op):
    aug = StrAugment("parseq", ops=(op,), num_ops=1, p_op=1.0, magnitude=10)
    out = aug(word, 0)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    if op in KNOWN_OPS:
        np.testing.assert_array_equal(out, KNOWN_OPS[op](word).astype(np.uint8))
    else:
        assert (out.shape[:2], _digest(out)) == GOLDEN_OPS[op]
    if op == "auto_contrast":
        assert (out.min(axis=(0, 1)) == 0).all() and (out.max(axis=(0, 1)) == 255).all()
    if op == "gaussian_blur":  # sigma 1 (capped by the 32 px height): the mean is kept
        assert out.mean() == pytest.approx(word.mean(), abs=0.05)


# Each ABINet group alone on `word`, seeds 0..4: output size and the first 16 hex digits of
# sha256(output uint8 bytes), produced by this test's calls (OpenCV 5.1.0, numpy 2.4.6; the same
# on repeated runs). Only geometry changes the size (seed 1 draws an affine of the same size).
GOLDEN_GROUPS = {
    "geometry": [
        ((23, 57), "e7057e6b63eada3e"),
        ((32, 100), "2740928bdef963db"),
        ((67, 105), "f864147e014311db"),
        ((50, 105), "474abba6dde884f0"),
        ((29, 95), "1f0f9d84ff626205"),
    ],
    "deterioration": [
        ((32, 100), "14a01b8f77cf88cb"),
        ((32, 100), "b46b5de920940bca"),
        ((32, 100), "fb8a51bffe16437d"),
        ((32, 100), "64219a20923ced55"),
        ((32, 100), "f86af24219acdb7c"),
    ],
    "color": [
        ((32, 100), "85a3e747258dcf72"),
        ((32, 100), "18a05bf100f2d23d"),
        ((32, 100), "e642525bbe219410"),
        ((32, 100), "c51ec0e753011991"),
        ((32, 100), "2b8508b5594853a3"),
    ],
}


@pytest.mark.parametrize("group", ["geometry", "deterioration", "color"])
def test_every_abinet_group_alone(word, group):
    probs = {f"p_{g}": float(g == group) for g in ("geometry", "deterioration", "color")}
    aug = StrAugment("abinet", **probs)
    outs = [aug(word, s) for s in range(5)]
    assert all(o.dtype == np.uint8 and o.shape[2] == 3 for o in outs)
    assert [(o.shape[:2], _digest(o)) for o in outs] == GOLDEN_GROUPS[group]


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
