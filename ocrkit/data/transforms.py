"""Model-input transforms: RGB ``uint8`` arrays to normalized ``float`` tensors and back.

The work is done in numpy (``array`` / ``batch_array`` return ``float32`` arrays, which the ONNX
runtime path uses without importing torch); calling a transform wraps that array as a tensor.

Matches PARSeq's ``get_transform``: bicubic resize to (H, W) = (32, 128), scale to [0, 1], then
normalize with mean 0.5 and std 0.5 to [-1, 1]; :class:`PPOCRResize` is PP-OCR's input (height 48,
aspect ratio kept, padded). Classes (not lambdas) so DataLoader workers can pickle them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

INTERPOLATIONS = {
    "bicubic": cv2.INTER_CUBIC,
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
}


def to_array_image(image: np.ndarray, mean: float = 0.5, std: float = 0.5) -> np.ndarray:
    """RGB ``uint8`` (H, W, 3) -> ``float32`` array (3, H, W) of ``(x / 255 - mean) / std``."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    array = image.transpose(2, 0, 1).astype(np.float32)
    array /= np.float32(255.0)
    array -= np.float32(mean)
    array /= np.float32(std)
    return array


def to_tensor_image(image: np.ndarray, mean: float = 0.5, std: float = 0.5) -> torch.Tensor:
    """RGB ``uint8`` (H, W, 3) -> ``float32`` tensor (3, H, W) of ``(x / 255 - mean) / std``."""
    import torch

    return torch.from_numpy(to_array_image(image, mean, std))


def denormalize(tensor: torch.Tensor, mean: float = 0.5, std: float = 0.5) -> np.ndarray:
    """Inverse of :func:`to_tensor_image` for viewing: (3, H, W) or (B, 3, H, W) -> uint8 HWC."""
    import torch

    array = (tensor.detach().cpu().float() * std + mean).clamp(0.0, 1.0).mul(255.0).round()
    array = array.to(torch.uint8)
    if array.ndim == 3:
        return array.permute(1, 2, 0).numpy()
    if array.ndim == 4:
        return array.permute(0, 2, 3, 1).numpy()
    raise ValueError(f"expected (3, H, W) or (B, 3, H, W), got {tuple(tensor.shape)}")


class StrTransform:
    """Resize to ``img_size`` (H, W) with bicubic interpolation and normalize to a tensor."""

    def __init__(
        self,
        img_size: Sequence[int] = (32, 128),
        mean: float = 0.5,
        std: float = 0.5,
        interpolation: str = "bicubic",
    ) -> None:
        if len(img_size) != 2:
            raise ValueError(f"img_size is (height, width), got {img_size}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {interpolation!r} not in {sorted(INTERPOLATIONS)}")
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.mean, self.std = mean, std
        self.interpolation = interpolation

    def array(self, image: np.ndarray) -> np.ndarray:
        """The normalized ``float32`` array (3, H, W) of one RGB ``uint8`` image."""
        height, width = self.img_size
        if image.shape[:2] != (height, width):
            flag = INTERPOLATIONS[self.interpolation]
            image = cv2.resize(image, (width, height), interpolation=flag)
        return to_array_image(image, self.mean, self.std)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.array(image))

    def __repr__(self) -> str:
        return (
            f"StrTransform(img_size={self.img_size}, mean={self.mean}, std={self.std}, "
            f"interpolation={self.interpolation!r})"
        )


def shrink_pad(image: np.ndarray, scale: float = 0.5, anchor: str = "center") -> np.ndarray:
    """Resize ``image`` by ``scale`` and pad it back to its size with black.

    ``anchor`` places the shrunk image: ``center`` (default) or ``topleft``.
    """
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"shrink scale must be in (0, 1], got {scale}")
    if anchor not in {"center", "topleft"}:
        raise ValueError(f"anchor must be 'center' or 'topleft', got {anchor!r}")
    h, w = image.shape[:2]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros_like(image)
    top, left = ((h - nh) // 2, (w - nw) // 2) if anchor == "center" else (0, 0)
    canvas[top : top + nh, left : left + nw] = small
    return canvas


class ShrinkPad:
    """:func:`shrink_pad` as a training transform (MNSP Fig. 4: fine-tuning on the 0.5x shrunk,
    black-padded corpus), applied with probability ``p`` (drawn from the global numpy RNG,
    which the trainer seeds per sample)."""

    def __init__(self, scale: float = 0.5, p: float = 1.0, anchor: str = "center") -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"shrink_pad p must be in [0, 1], got {p}")
        shrink_pad(np.zeros((2, 2, 3), np.uint8), scale, anchor)  # checks scale and anchor
        self.scale, self.p, self.anchor = float(scale), float(p), anchor

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.p < 1.0 and np.random.random() >= self.p:
            return image
        return shrink_pad(image, self.scale, self.anchor)

    def __repr__(self) -> str:
        return f"ShrinkPad(scale={self.scale}, p={self.p}, anchor={self.anchor!r})"


class Compose:
    """Apply callables in order (e.g. ``Compose([StrAugment(), StrTransform()])``); picklable."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any) -> Any:
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


def aspect_ratio_order(images: Sequence[np.ndarray]) -> list[int]:
    """Indices of ``images`` from the narrowest to the widest (width / height; stable): the
    order variable-width models read a list in, so a batch pads little."""
    ratios = [im.shape[1] / float(im.shape[0]) for im in images]
    return sorted(range(len(images)), key=lambda i: ratios[i])


class PPOCRResize:
    """PaddleOCR's recognition input (``resize_norm_img`` of the PP-OCR predictors): resize to
    height ``H`` keeping the aspect ratio (bilinear), normalize, pad with zeros on the right.

    A single image (training, datasets) is padded to the fixed width ``W`` (wider crops are
    squeezed to it, as PaddleOCR's ``RecResizeImg`` does); :meth:`batch` pads a batch to
    ``max(W, H * widest aspect ratio)``, exactly as the ``rapidocr`` wheels do at inference.
    ``bgr=True`` feeds the channels in OpenCV order, as PaddleOCR models were trained.
    ``pad_alone=True`` makes readings independent of the batch: the predict loop cuts batches
    where :meth:`group_width` changes, so every crop is padded to the width it gets when read
    alone (the wheel's batch-of-one input), never to a wider neighbour's.
    """

    def __init__(
        self,
        img_size: Sequence[int] = (48, 320),
        mean: float = 0.5,
        std: float = 0.5,
        bgr: bool = True,
        max_width: int = 3200,
        pad_alone: bool = False,
    ) -> None:
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.mean, self.std, self.bgr = mean, std, bgr
        self.max_width = int(max_width)
        self.pad_alone = bool(pad_alone)

    def _resized_width(self, image: np.ndarray, width: int) -> int:
        h, w = image.shape[:2]
        return min(width, int(math.ceil(self.img_size[0] * w / float(h))))

    def _resized(self, image: np.ndarray, width: int) -> np.ndarray:
        height = self.img_size[0]
        resized_w = self._resized_width(image, width)
        if self.bgr:
            image = image[..., ::-1]
        resized = cv2.resize(np.ascontiguousarray(image), (resized_w, height))
        out = np.zeros((3, height, width), np.float32)
        out[:, :, :resized_w] = to_array_image(resized, self.mean, self.std)
        return out

    def array(self, image: np.ndarray) -> np.ndarray:
        """The normalized ``float32`` array (3, H, W) of one image, padded to width ``W``."""
        return self._resized(image, self.img_size[1])

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.array(image))

    def batch_width(self, images: Sequence[np.ndarray]) -> int:
        """``int(H * max_wh_ratio)`` with ``max_wh_ratio`` at least ``W / H`` (the wheel's rule)."""
        height, width = self.img_size
        ratio = width / height
        for image in images:
            h, w = image.shape[:2]
            ratio = max(ratio, w * 1.0 / h)
        return min(int(height * ratio), self.max_width)

    def group_width(self, image: np.ndarray) -> int | None:
        """With ``pad_alone``, the width ``image`` is padded to when read alone (batches are cut
        where it changes); ``None`` otherwise (any crops may share a batch)."""
        return self.batch_width([image]) if self.pad_alone else None

    def batch_array(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``[B, 3, H, batch_width]`` ``float32``: every image padded to the batch's width."""
        width = self.batch_width(images)
        return np.stack([self._resized(image, width) for image in images])

    def content_fractions(self, images: Sequence[np.ndarray]) -> list[float]:
        """The share of :meth:`batch_array`'s width each image fills (the rest is padding)."""
        width = self.batch_width(images)
        return [self._resized_width(image, width) / width for image in images]

    def batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.batch_array(images))

    def __repr__(self) -> str:
        return (
            f"PPOCRResize(img_size={self.img_size}, mean={self.mean}, std={self.std}, "
            f"bgr={self.bgr})"
        )
