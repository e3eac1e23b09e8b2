"""Views for pretraining: photometric augmentation, the zoom-in crop, multi-scale resizing.

Data side (numpy, per sample, in DataLoader workers): :class:`PretrainViews` turns one RGB word
image into the named views a pretraining model asks for, each ``[3, 32, 128]`` in [-1, 1]:

* ``image``: the image (MIM baseline);
* ``small`` / ``large``: two independently augmented copies (MNSP's ``s_k`` and ``s_k+1`` views,
  resized to their scales on the model side, where the pair is drawn per step);
* ``zoom``: a zoomed-in view -- a random crop enlarged back to 32x128 -- for the masked branch;
* ``original``: the image without augmentation (the teacher's input ``I`` of MNSP's Eq. 3); with
  ``zoom`` it also gives ``zoom_box``, the crop as ``[y0, x0, y1, x1]`` fractions of the image.

Model side (torch, per batch): :func:`resize_images`, :func:`upsample_tokens` and
:func:`crop_tokens`.

Randomness comes from the global numpy RNG, which the trainer seeds per sample
(:mod:`ocrkit.train.sampling`), so views depend only on the sample's position in the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ocrkit.data.render import imageops as ops
from ocrkit.data.transforms import StrTransform

VIEW_NAMES = ("image", "small", "large", "zoom", "original")
AUGMENTS = ("photometric", "none")  # plus any StrAugment preset name ("abinet", "parseq")
DEFAULT_ZOOM = (0.5, 1.0)


def _rng() -> np.random.Generator:
    """A generator drawn from the global numpy RNG (seeded per sample by the trainer)."""
    return np.random.default_rng(np.random.randint(0, 2**32, size=4, dtype=np.uint64))


class PhotometricAugment:
    """Colour jitter (p=0.8), grayscale (p=0.2) and Gaussian blur (p=0.2); no geometry.

    Magnitudes are LMIM's torchvision ``ColorJitter(0.4, 0.4, 0.2, 0.1)`` /
    ``RandomGrayscale(0.2)`` pair; blur sigma in [0.1, 1.0] px. Pixels stay where they are, so
    token ``i`` of one view and token ``i`` of another cover the same part of the word, which the
    token-wise NSP target needs.
    """

    def __init__(
        self,
        p_jitter: float = 0.8,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.2,
        hue: float = 0.1,
        p_gray: float = 0.2,
        p_blur: float = 0.2,
        blur_sigma: tuple[float, float] = (0.1, 1.0),
    ) -> None:
        self.p_jitter, self.p_gray, self.p_blur = p_jitter, p_gray, p_blur
        self.brightness, self.contrast = brightness, contrast
        self.saturation, self.hue = saturation, hue
        self.blur_sigma = blur_sigma

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = rng or _rng()
        if rng.random() < self.p_jitter:
            b, c, s = self.brightness, self.contrast, self.saturation
            jitter = [
                (ops.adjust_brightness, rng.uniform(1 - b, 1 + b)),
                (ops.adjust_contrast, rng.uniform(1 - c, 1 + c)),
                (ops.adjust_saturation, rng.uniform(1 - s, 1 + s)),
                (ops.adjust_hue, rng.uniform(-self.hue, self.hue)),
            ]
            for i in rng.permutation(4):  # in random order, as torchvision's ColorJitter
                op, factor = jitter[i]
                image = op(image, factor)
        if rng.random() < self.p_gray:
            image = ops.grayscale(image)
        if rng.random() < self.p_blur:
            image = ops.gaussian_blur(image, rng.uniform(*self.blur_sigma))
        return image

    def __repr__(self) -> str:
        return "PhotometricAugment()"


def build_augment(name: str | None) -> Any:
    """``photometric`` (default of MNSP views), ``none``/None, or a ``StrAugment`` preset."""
    if name in (None, "none"):
        return None
    if name == "photometric":
        return PhotometricAugment()
    from ocrkit.data.augment import StrAugment

    return StrAugment(preset=name)


def zoom_box(
    shape: Sequence[int], zoom: tuple[float, float], rng: np.random.Generator | None = None
) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random crop of an image of ``shape`` (see
    :func:`zoom_crop`)."""
    lo, hi = zoom
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"zoom range must satisfy 0 < lo <= hi <= 1, got {zoom}")
    rng = rng or _rng()
    f = rng.uniform(lo, hi)
    h, w = int(shape[0]), int(shape[1])
    ch, cw = max(1, round(h * f)), max(1, round(w * f))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    return top, left, ch, cw


def zoom_crop(
    image: np.ndarray, zoom: tuple[float, float], rng: np.random.Generator | None = None
) -> np.ndarray:
    """A random crop whose sides are a fraction ``f ~ U[zoom]`` of the image's sides.

    The aspect ratio is kept and the crop lies fully inside the image; enlarged back to 32x128
    it magnifies strokes by ``1/f`` (``zoom = (0.5, 1.0)``: up to 2x, covering 25-100% of the
    area).
    """
    top, left, ch, cw = zoom_box(image.shape, zoom, rng)
    return image[top : top + ch, left : left + cw]


class PretrainViews:
    """RGB ``uint8`` image -> ``{view name: Tensor[3, H, W]}`` (see the module docstring).

    ``augment`` applies to every view independently (two augmentations of the same image for
    ``small``/``large``); ``zoom`` is the crop range of the ``zoom`` view (``None``: the zoom
    view is the whole image -- MNSP's "without zoom-in" ablation).
    """

    def __init__(
        self,
        views: Sequence[str],
        img_size: Sequence[int] = (32, 128),
        augment: str | None = "photometric",
        zoom: Sequence[float] | None = DEFAULT_ZOOM,
    ) -> None:
        unknown = [v for v in views if v not in VIEW_NAMES]
        if unknown or not views:
            raise ValueError(f"unknown views {unknown}; choose from {VIEW_NAMES}")
        self.views = tuple(views)
        self.augment_name = augment
        self.augment = build_augment(augment)
        self.zoom = (float(zoom[0]), float(zoom[1])) if zoom is not None else None
        self.to_tensor = StrTransform(img_size)

    def __call__(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        rng = _rng()
        out = {}
        h, w = image.shape[:2]
        for name in self.views:
            view = image
            if name == "zoom" and self.zoom is not None:
                top, left, ch, cw = zoom_box(image.shape, self.zoom, rng)
                view = image[top : top + ch, left : left + cw]
                box = [top / h, left / w, (top + ch) / h, (left + cw) / w]
                out["zoom_box"] = torch.tensor(box, dtype=torch.float32)
            elif name == "zoom":
                out["zoom_box"] = torch.tensor([0.0, 0.0, 1.0, 1.0])
            if self.augment is not None and name != "original":
                view = self.augment(np.ascontiguousarray(view), rng)
            out[name] = self.to_tensor(np.ascontiguousarray(view))
        if "original" not in self.views:
            out.pop("zoom_box", None)  # only the Eq. 3 target reads it
        return out

    def __repr__(self) -> str:
        return f"PretrainViews(views={self.views}, augment={self.augment_name!r}, zoom={self.zoom})"


def collate_views(batch: Sequence[Any]) -> dict[str, Any]:
    """Stack samples whose image is a dict of views: ``{"views": {name: [B, 3, H, W]}, ...}``.

    ``None`` (corrupt) samples are dropped and counted in ``num_skipped``, like
    :func:`ocrkit.data.collate_samples`.
    """
    samples = [s for s in batch if s is not None]
    if not samples:
        return {"views": {}, "keys": [], "num_skipped": len(batch)}
    names = samples[0].image.keys()
    views = {n: torch.stack([s.image[n] for s in samples]) for n in names}
    return {
        "views": views,
        "keys": [s.key for s in samples],
        "num_skipped": len(batch) - len(samples),
    }


def resize_images(images: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bicubic resize of ``[B, 3, H, W]`` to ``size`` (antialiased when shrinking)."""
    size = (int(size[0]), int(size[1]))
    if tuple(images.shape[-2:]) == size:
        return images
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=shrink)


def upsample_tokens(
    tokens: torch.Tensor, grid: Sequence[int], new_grid: Sequence[int]
) -> torch.Tensor:
    """Bicubic upsampling of patch tokens ``[B, h*w, C]`` on their 2D grid to ``new_grid``.

    This is MNSP's ``F``: the ``s_k`` tokens laid out on the ``s_k+1`` grid (Sec. 3).
    """
    b, n, c = tokens.shape
    h, w = int(grid[0]), int(grid[1])
    if n != h * w:
        raise ValueError(f"{n} tokens do not fill a {h}x{w} grid")
    x = tokens.transpose(1, 2).reshape(b, c, h, w)
    x = F.interpolate(x, size=tuple(int(v) for v in new_grid), mode="bicubic", align_corners=False)
    return x.flatten(2).transpose(1, 2)


def crop_tokens(
    tokens: torch.Tensor,
    grid: Sequence[int],
    boxes: torch.Tensor,
    out_grid: Sequence[int] | None = None,
) -> torch.Tensor:
    """Tokens ``[B, h*w, C]`` of whole images, cropped to ``boxes`` and resampled (bilinear) to
    ``out_grid`` (default: ``grid``): token ``(i, j)`` of the result is the feature at the
    centre of cell ``(i, j)`` of the box, read off the token grid (cell centres at
    ``(k + 0.5) / h``; outside the outer centres the border token is used).

    ``boxes [B, 4]`` are ``[y0, x0, y1, x1]`` fractions of the image (``zoom_box`` of
    :class:`PretrainViews`). This is MNSP's Eq. 3 target for a zoom-in view: the teacher's
    features of the original image at the image location of each zoom-view token.
    """
    b, n, c = tokens.shape
    h, w = int(grid[0]), int(grid[1])
    if n != h * w:
        raise ValueError(f"{n} tokens do not fill a {h}x{w} grid")
    oh, ow = (h, w) if out_grid is None else (int(out_grid[0]), int(out_grid[1]))
    boxes = boxes.to(device=tokens.device, dtype=torch.float32)
    v = (torch.arange(oh, device=tokens.device, dtype=torch.float32) + 0.5) / oh
    u = (torch.arange(ow, device=tokens.device, dtype=torch.float32) + 0.5) / ow
    ys = boxes[:, 0:1] + v[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # [B, oh] image fractions
    xs = boxes[:, 1:2] + u[None] * (boxes[:, 3:4] - boxes[:, 1:2])  # [B, ow]
    sample = torch.stack(
        [xs[:, None, :].expand(b, oh, ow), ys[:, :, None].expand(b, oh, ow)], dim=-1
    )
    x = tokens.float().transpose(1, 2).reshape(b, c, h, w)
    out = F.grid_sample(
        x, sample * 2.0 - 1.0, mode="bilinear", padding_mode="border", align_corners=False
    )
    return out.flatten(2).transpose(1, 2).to(tokens.dtype)
