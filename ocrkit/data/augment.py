"""``StrAugment``: ABINet- and PARSeq-style training augmentation on RGB ``uint8`` arrays.

Two published recipes are offered as named presets in :data:`AUGMENT_PRESETS`:

* ``"abinet"`` (default): ABINet's three groups, each applied with its own probability --
  geometry (one of rotation, affine, perspective) p=0.5, deterioration (Gaussian noise, motion
  blur, down-up rescale in random order) p=0.25, colour jitter p=0.25. Magnitudes follow ABINet's
  ``sample_sym`` (Beta(4, 4)) and ``sample_asym`` (Beta(1, 4)) draws. MAERec and the MNSP
  fine-tuning recipes use this "ABINet-style augmentation", hence the default.
* ``"parseq"``: PARSeq's RandAugment -- ``num_ops=3`` distinct ops drawn from a pool (timm's
  increasing ops without Sharpness, plus Gaussian blur and Poisson noise), each applied with
  p=0.5 at magnitude 5, with PARSeq's text-tuned ranges.
* ``"none"``: identity.

Everything runs on OpenCV/numpy and draws from a ``numpy.random.Generator``, so a call is
reproducible from a seed. Output size may differ from the input (geometry expands the canvas);
resizing to the model input happens later in :class:`~ocrkit.data.transforms.StrTransform`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocrkit.data.render import imageops as ops
from ocrkit.registry import Registry

Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]
AUGMENT_PRESETS: Registry[Policy] = Registry("augment preset")
DEFAULT_PRESET = "abinet"


def _sym(rng: np.random.Generator, magnitude: float) -> float:
    """ABINet's ``sample_sym``: symmetric around 0, concentrated near 0 (Beta(4, 4))."""
    return float((rng.beta(4, 4) - 0.5) * 2 * magnitude)


def _asym(rng: np.random.Generator, magnitude: float) -> float:
    """ABINet's ``sample_asym``: in [0, magnitude], skewed toward 0 (Beta(1, 4))."""
    return float(rng.beta(1, 4) * magnitude)


def _with_p(policy: Any, p: float | None, keep: dict[str, Any]) -> Any:
    """``policy`` with every ``p_*`` field not in ``keep`` set to ``p`` (unchanged if None)."""
    if p is None:
        return policy
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    names = [
        f.name for f in dataclasses.fields(policy) if f.name.startswith("p_") and f.name not in keep
    ]
    return dataclasses.replace(policy, **dict.fromkeys(names, p))


@dataclass(frozen=True)
class AbinetPolicy:
    """ABINet's ``CVGeometry`` / ``CVDeterioration`` / ``CVColorJitter`` with its settings.

    ``p_curve``, ``p_jpeg``, ``p_invert`` and ``p_grayscale`` are extras that ABINet lacks
    (default off so the preset stays faithful). Unlike ABINet, which picks the geometry type once
    at construction, the type is drawn per image.
    """

    p_geometry: float = 0.5
    p_deterioration: float = 0.25
    p_color: float = 0.25
    p_curve: float = 0.0
    p_jpeg: float = 0.0
    p_invert: float = 0.0
    p_grayscale: float = 0.0
    degrees: float = 45.0
    scale: tuple[float, float] = (0.5, 2.0)
    shear: tuple[float, float] = (45.0, 15.0)
    distortion: float = 0.5
    noise_var: float = 20.0
    motion_degrees: float = 6.0
    rescale_factor: float = 4.0
    brightness: float = 0.5
    contrast: float = 0.5
    saturation: float = 0.5
    hue: float = 0.1

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.p_geometry:
            img = self.geometry(img, rng)
        if rng.random() < self.p_curve:
            h = img.shape[0]
            img = ops.sine_warp(img, _sym(rng, 0.3 * h), rng.uniform(0.3, 1.0), rng.uniform(0, 6.3))
        if rng.random() < self.p_deterioration:
            img = self.deterioration(img, rng)
        if rng.random() < self.p_jpeg:
            img = ops.jpeg(img, int(rng.integers(20, 80)))
        if rng.random() < self.p_color:
            img = self.color(img, rng)
        if rng.random() < self.p_grayscale:
            img = ops.grayscale(img)
        if rng.random() < self.p_invert:
            img = ops.invert(img)
        return img

    def geometry(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        kind = int(rng.integers(3))
        if kind == 0:
            return ops.rotate(img, _sym(rng, self.degrees))
        if kind == 1:
            scale = float(rng.uniform(*self.scale))
            shear = (_sym(rng, self.shear[0]), _sym(rng, self.shear[1]))
            return ops.affine(img, _sym(rng, self.degrees), scale, shear)
        return ops.perspective(img, _asym(rng, self.distortion), rng)

    def deterioration(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        steps = [
            lambda x: ops.gaussian_noise(x, np.sqrt(_asym(rng, self.noise_var)), rng),
            lambda x: ops.motion_blur(
                x, int(_asym(rng, self.motion_degrees)) + 1, rng.uniform(-180, 180)
            ),
            lambda x: ops.rescale(x, 1.0 + _asym(rng, self.rescale_factor - 1.0)),
        ]
        for i in rng.permutation(len(steps)):
            img = steps[i](img)
        return img

    def color(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """torchvision ``ColorJitter``: brightness, contrast, saturation, hue in random order."""
        steps = [
            lambda x: ops.adjust_brightness(
                x, rng.uniform(1 - self.brightness, 1 + self.brightness)
            ),
            lambda x: ops.adjust_contrast(x, rng.uniform(1 - self.contrast, 1 + self.contrast)),
            lambda x: ops.adjust_saturation(
                x, rng.uniform(1 - self.saturation, 1 + self.saturation)
            ),
            lambda x: ops.adjust_hue(x, rng.uniform(-self.hue, self.hue)),
        ]
        for i in rng.permutation(len(steps)):
            img = steps[i](img)
        return img


def _signed(rng: np.random.Generator, value: float) -> float:
    return value if rng.random() < 0.5 else -value


def _cap(level: float, img: np.ndarray, max_dim_factor: float, min_level: float = 1) -> float:
    """PARSeq's ``_get_param``: keep blur/noise strengths proportionate to small images."""
    return round(min(level, max(min_level, max_dim_factor * min(img.shape[:2]))))


# PARSeq's RandAugment pool: op(img, level in [0, 1], rng). Ranges are PARSeq's hparams.
PARSEQ_OPS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "auto_contrast": lambda x, lv, rng: ops.auto_contrast(x),
    "equalize": lambda x, lv, rng: ops.equalize(x),
    "invert": lambda x, lv, rng: ops.invert(x),
    "rotate": lambda x, lv, rng: ops.rotate(x, _signed(rng, 30 * lv)),
    "posterize": lambda x, lv, rng: ops.posterize(x, 4 - int(lv * 4)),
    "solarize": lambda x, lv, rng: ops.solarize(x, 256 - int(lv * 256)),
    "solarize_add": lambda x, lv, rng: ops.solarize_add(x, int(lv * 110)),
    "color": lambda x, lv, rng: ops.adjust_saturation(x, 1 + _signed(rng, 0.9 * lv)),
    "contrast": lambda x, lv, rng: ops.adjust_contrast(x, 1 + _signed(rng, 0.9 * lv)),
    "brightness": lambda x, lv, rng: ops.adjust_brightness(x, 1 + _signed(rng, 0.9 * lv)),
    "shear_x": lambda x, lv, rng: ops.warp_affine(
        x, np.array([[1, _signed(rng, 0.9 * lv), 0], [0, 1, 0]])
    ),
    "shear_y": lambda x, lv, rng: ops.warp_affine(
        x, np.array([[1, 0, 0], [_signed(rng, 0.2 * lv), 1, 0]])
    ),
    "translate_x": lambda x, lv, rng: ops.translate(x, _signed(rng, 0.1 * lv) * x.shape[1], 0),
    "translate_y": lambda x, lv, rng: ops.translate(x, 0, _signed(rng, 0.3 * lv) * x.shape[0]),
    "gaussian_blur": lambda x, lv, rng: ops.gaussian_blur(x, _cap(4 * lv, x, 0.02)),
    "poisson_noise": lambda x, lv, rng: ops.poisson_noise(x, _cap(40 * lv, x, 0.2), rng),
}


@dataclass(frozen=True)
class ParseqPolicy:
    """PARSeq's ``rand_augment_transform(magnitude=5, num_layers=3)`` (timm RandAugment).

    ``num_ops`` distinct ops from :data:`PARSEQ_OPS`, each applied with ``p_op``; the level is
    ``magnitude / 10`` (jittered by ``magnitude_std``). Rotation and shear expand the canvas
    instead of cutting the word's ends as PIL's same-size transforms do.
    """

    num_ops: int = 3
    magnitude: float = 5.0
    magnitude_std: float = 0.0
    p_op: float = 0.5
    ops: tuple[str, ...] = tuple(PARSEQ_OPS)

    def __post_init__(self) -> None:
        unknown = set(self.ops) - set(PARSEQ_OPS)
        if unknown:
            raise ValueError(f"unknown ops {sorted(unknown)}; known: {sorted(PARSEQ_OPS)}")
        if not 0 <= self.num_ops <= len(self.ops):
            raise ValueError(f"num_ops must be in 0..{len(self.ops)}, got {self.num_ops}")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for i in rng.choice(len(self.ops), size=self.num_ops, replace=False):
            if rng.random() >= self.p_op:
                continue
            magnitude = self.magnitude + (
                rng.normal(0, self.magnitude_std) if self.magnitude_std else 0
            )
            img = PARSEQ_OPS[self.ops[i]](img, float(np.clip(magnitude, 0, 10)) / 10, rng)
        return img


def identity(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return img


@AUGMENT_PRESETS.register("abinet")
def abinet(p: float | None = None, **kwargs: Any) -> AbinetPolicy:
    return _with_p(AbinetPolicy(**kwargs), p, kwargs)


@AUGMENT_PRESETS.register("parseq")
def parseq(p: float | None = None, **kwargs: Any) -> ParseqPolicy:
    return _with_p(ParseqPolicy(**kwargs), p, kwargs)


@AUGMENT_PRESETS.register("none")
def none(p: float | None = None) -> Policy:
    return identity


class StrAugment:
    """Augment one RGB ``uint8`` (H, W, 3) word image with a named preset.

    ``StrAugment("abinet")(image, rng)`` is reproducible for a given generator or integer seed.
    Without ``rng``, each process (each DataLoader worker) draws from its own generator seeded
    by ``(seed, worker id)``, or from fresh OS entropy when ``seed`` is None. ``p`` overrides
    every probability of the preset that is not given explicitly (``p=0`` is the identity); other
    keyword arguments override preset fields, e.g. ``StrAugment("abinet", p_curve=0.2)``.
    """

    def __init__(
        self,
        preset: str = DEFAULT_PRESET,
        p: float | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.preset = preset
        self.policy = AUGMENT_PRESETS.build(preset, p=p, **kwargs)
        self.seed = seed
        self._rng: np.random.Generator | None = None
        self._pid: int | None = None

    def _process_rng(self) -> np.random.Generator:
        if self._rng is None or self._pid != os.getpid():
            worker = 0
            data = getattr(getattr(sys.modules.get("torch"), "utils", None), "data", None)
            info = data.get_worker_info() if data is not None else None
            worker = info.id if info is not None else 0
            entropy = None if self.seed is None else [self.seed, worker]
            self._rng, self._pid = np.random.default_rng(entropy), os.getpid()
        return self._rng

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        if not (
            isinstance(image, np.ndarray)
            and image.dtype == np.uint8
            and image.ndim == 3
            and image.shape[2] == 3
        ):
            desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image)
            raise ValueError(f"StrAugment expects an RGB uint8 (H, W, 3) array, got {desc}")
        if rng is None:
            rng = self._process_rng()
        elif not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        out = self.policy(image, rng)
        return np.ascontiguousarray(out) if out is not image else image.copy()

    def __repr__(self) -> str:
        return f"StrAugment(preset={self.preset!r}, policy={self.policy!r})"
