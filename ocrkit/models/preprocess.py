"""Turning user inputs (paths, PIL images, arrays) into normalized recognizer batches.

torch-free at import: :func:`stack_arrays` serves the ONNX runtime path, :func:`stack_batch`
(which imports torch) the PyTorch one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

ImageInput = Union[str, Path, np.ndarray, "PIL.Image.Image"]  # noqa: F821


def to_rgb_array(image: ImageInput) -> np.ndarray:
    """An RGB ``uint8`` array ``(H, W, 3)`` from a path, a PIL image or an array.

    Arrays may be ``(H, W)`` grayscale, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (alpha dropped).
    """
    from PIL import Image

    if isinstance(image, (str, Path)):
        from ocrkit.data.image_io import read_image  # the decoder every dataset uses

        return read_image(image)
    if isinstance(image, Image.Image):
        return np.array(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8 RGB, got dtype {image.dtype}")
        if image.ndim == 2:
            return np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim == 3 and image.shape[2] in (3, 4):
            return image[:, :, :3]
        raise ValueError(f"image arrays must be (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    raise TypeError(f"cannot read an image from {type(image).__name__}")


def as_image_list(inputs: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """A single input becomes a one-element list; a list or tuple stays as it is."""
    from PIL import Image

    if isinstance(inputs, (str, Path, np.ndarray, Image.Image)):
        return [inputs]
    return list(inputs)


PREPROCESS_KINDS = ("fixed", "ppocr")


def make_transform(
    img_size: tuple[int, int],
    mean: float = 0.5,
    std: float = 0.5,
    preprocess: Mapping[str, Any] | None = None,
) -> Callable[[np.ndarray], torch.Tensor]:
    """The model's input transform: ``fixed`` (default: bicubic resize to ``img_size``, PARSeq)
    or ``ppocr`` (height kept, aspect-ratio resize and right padding, PaddleOCR; options as
    :class:`~ocrkit.data.transforms.PPOCRResize`, e.g. ``{"name": "ppocr", "bgr": true}``)."""
    options = dict(preprocess or {"name": "fixed"})
    kind = options.pop("name", "fixed")
    if kind == "fixed":
        from ocrkit.data.transforms import StrTransform

        return StrTransform(img_size=tuple(img_size), mean=mean, std=std, **options)
    if kind == "ppocr":
        from ocrkit.data.transforms import PPOCRResize

        return PPOCRResize(img_size=tuple(img_size), mean=mean, std=std, **options)
    raise ValueError(f"unknown preprocess {kind!r}; choose from {PREPROCESS_KINDS}")


def stack_arrays(images: Sequence[Any], transform: Any) -> np.ndarray:
    """:func:`stack_batch` as a ``float32`` numpy array, for transforms with ``array`` (and
    ``batch_array`` when the width varies): no torch."""
    batch = getattr(transform, "batch_array", None)
    if callable(batch):
        return batch(images)
    return np.stack([transform.array(img) for img in images])


def stack_batch(images: Sequence[Any], transform: Callable[[np.ndarray], Any]) -> torch.Tensor:
    """Transform RGB arrays into ``[B, 3, H, W]`` (the transform's own ``batch`` when it has one:
    variable-width inputs are padded to the batch's widest)."""
    import torch

    batch = getattr(transform, "batch", None)
    if callable(batch):
        return batch(images)
    return torch.stack([torch.as_tensor(transform(img)) for img in images])


def width_order(images: Sequence[np.ndarray], transform: Any) -> list[int]:
    """Indices of ``images`` by aspect ratio for a variable-width transform (less padding, and
    the order the PP-OCR predictors batch in); identity for a fixed-size one."""
    if not callable(getattr(transform, "batch", None)):
        return list(range(len(images)))
    from ocrkit.data.transforms import aspect_ratio_order

    return aspect_ratio_order(images)


def predict_in_width_order(
    images: Sequence[np.ndarray],
    transform: Any,
    batch_size: int,
    read_batch: Callable[[list[np.ndarray]], Sequence[Any]],
) -> list[Any]:
    """The predict loop of every recognizer backend: ``images`` cut into batches in
    :func:`width_order`, each read by ``read_batch`` (arrays -> ``Tokenizer.decode`` rows), the
    results returned as :class:`~ocrkit.types.Prediction` in input order."""
    from ocrkit.types import Prediction

    predictions: list[Any] = [None] * len(images)
    for index in width_batches(images, transform, batch_size):
        batch = [images[i] for i in index]
        for i, d, fill in zip(index, read_batch(batch), content_fractions(transform, batch)):
            positions = [round(min(p / fill, 1.0), 4) for p in d.char_positions]
            predictions[i] = Prediction(d.text, d.confidence, d.char_confidences, positions)
    return predictions


def content_fractions(transform: Any, batch: Sequence[np.ndarray]) -> list[float]:
    """The share of the model input's width each image fills once batched: below 1 where a
    variable-width transform pads it on the right (PP-OCR), 1 where it is stretched to fit."""
    fractions = getattr(transform, "content_fractions", None)
    return list(fractions(batch)) if callable(fractions) else [1.0] * len(batch)


def width_batches(images: Sequence[np.ndarray], transform: Any, batch_size: int) -> list[list[int]]:
    """Index batches of at most ``batch_size`` in :func:`width_order`, also cut where the
    transform's ``group_width`` changes (PP-OCR's ``pad_alone``: batch-independent padding)."""
    order = width_order(images, transform)
    group = getattr(transform, "group_width", None)
    keys = [group(images[i]) for i in order] if callable(group) else [None] * len(order)
    batches: list[list[int]] = []
    for n, (i, key) in enumerate(zip(order, keys)):
        if not batches or len(batches[-1]) == batch_size or key != keys[n - 1]:
            batches.append([])
        batches[-1].append(i)
    return batches


def recognize_in_batches(
    predict: Callable[..., list[Any]],
    inputs: ImageInput | Sequence[ImageInput],
    batch_size: int,
    on_error: str = "skip",
    **generate_kwargs: Any,
) -> list[Any]:
    """Load paths/PIL/arrays one batch at a time and hand each batch to ``predict``.

    Shared by the PyTorch and ONNX recognizers, so only ``batch_size`` images are decoded in
    memory at once. An input that cannot be read (missing or corrupt file, an array of the
    wrong dtype or shape) is logged and answered by an empty :class:`~ocrkit.types.Prediction`
    with its ``error`` set, and the rest is read (``on_error="skip"``); ``on_error="raise"``
    raises instead.
    """
    from ocrkit.data.image_io import raises_on_error

    raise_errors = raises_on_error(on_error)
    items = as_image_list(inputs)
    predictions: list[Any] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        arrays, errors = _load_chunk(chunk, start, raise_errors)
        readable = [a for a in arrays if a is not None]
        read = iter(predict(readable, batch_size=batch_size, **generate_kwargs) if readable else [])
        predictions.extend(next(read) if error is None else _unread(error) for error in errors)
    return predictions


def _load_chunk(
    chunk: Sequence[ImageInput], offset: int, raise_errors: bool
) -> tuple[list[np.ndarray | None], list[str | None]]:
    """RGB arrays of ``chunk`` (None where one cannot be read) and why each could not."""
    from ocrkit.data.image_io import UNREADABLE, unreadable_message

    arrays: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for n, item in enumerate(chunk):
        try:
            arrays.append(to_rgb_array(item))
            errors.append(None)
        except UNREADABLE as exc:
            if raise_errors:
                raise
            logger.warning("skipped %s", unreadable_message(item, offset + n, exc))
            arrays.append(None)
            errors.append(f"{type(exc).__name__}: {exc}")
    return arrays, errors


def _unread(error: str) -> Any:
    from ocrkit.types import Prediction

    return Prediction("", 0.0, [], error=error)
