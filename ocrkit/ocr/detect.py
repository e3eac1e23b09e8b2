"""The PP-OCRv6 small text detector (DB, ONNX) shipped in the ``rapidocr`` 3.x wheel.

Runs with onnxruntime, numpy and OpenCV only (no torch). The input preparation is the wheel's
(``rapidocr/main.py`` and ``rapidocr/ch_ppocr_det/utils.py``, version 3.10):

1. ``Global``: a longest side over ``max_side_len=2000`` is scaled down to it, a shortest side
   under ``min_side_len=30`` scaled up (both rounded to multiples of 32);
2. ``Global.use_vertical_padding``: an image at most ``min_height=30`` px high or wider than
   ``width_height_ratio=8`` times its height gets black bands above and below;
3. ``Det``: ``limit_type=min, limit_side_len=736``: a shortest side under 736 is scaled up to it,
   both sides then rounded to multiples of 32; BGR, ``(x / 255 - 0.5) / 0.5``, NCHW.

Boxes come back in the coordinates of the image given (see :mod:`ocrkit.ocr.postprocess`).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ocrkit.ocr.postprocess import DEFAULT_DB, DBParams, boxes_from_prob

DET_MODEL_NAME = "PP-OCRv6_det_small.onnx"


@dataclass(frozen=True)
class ResizeParams:
    """Input sizing (defaults: the ``rapidocr`` 3.10 wheel's ``config.yaml``)."""

    limit_side_len: int = 736
    limit_type: str = "min"
    max_side_len: int = 2000
    min_side_len: int = 30
    min_height: int = 30
    width_height_ratio: float = 8.0


WHEEL_RESIZE = ResizeParams()


def default_det_model() -> Path:
    """The detector ONNX file inside the installed ``rapidocr`` wheel (not imported, only found);
    ``OCRKIT_DET_MODEL`` overrides it."""
    override = os.environ.get("OCRKIT_DET_MODEL")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "text detection needs the PP-OCRv6 detector from the rapidocr wheel: "
            "pip install 'ocrkit[external]' (or set OCRKIT_DET_MODEL to a DB detector .onnx)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / DET_MODEL_NAME
    if not path.is_file():
        raise FileNotFoundError(f"the rapidocr wheel has no {DET_MODEL_NAME} ({path})")
    return path


def _round32(value: float) -> int:
    return int(round(value / 32) * 32)


def _scale_to(image: np.ndarray, ratio: float) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(32, _round32(int(w * ratio))), max(32, _round32(int(h * ratio))))
    return image if size == (w, h) else cv2.resize(image, size)


def _limit_ratio(h: int, w: int, p: ResizeParams) -> float:
    if p.limit_type == "min":
        return p.limit_side_len / min(h, w) if min(h, w) < p.limit_side_len else 1.0
    return p.limit_side_len / max(h, w) if max(h, w) > p.limit_side_len else 1.0


@dataclass
class DetFrame:
    """One image prepared for the network: ``net`` (its input, RGB), the padded frame's size
    ``(width, height)``, the top padding and the scale from frame to original pixels."""

    net: np.ndarray
    size: tuple[int, int]
    pad: int
    scale: tuple[float, float]


def prepare(image: np.ndarray, p: ResizeParams = WHEEL_RESIZE) -> DetFrame:
    """Steps 1-3 above for an RGB ``uint8`` image."""
    h0, w0 = image.shape[:2]
    if max(h0, w0) > p.max_side_len:
        image = _scale_to(image, p.max_side_len / max(h0, w0))
    h, w = image.shape[:2]
    if min(h, w) < p.min_side_len:
        image = _scale_to(image, p.min_side_len / min(h, w))
    h, w = image.shape[:2]
    scale = (w0 / w, h0 / h)
    pad = 0
    if h <= p.min_height or (p.width_height_ratio > 0 and w / h > p.width_height_ratio):
        pad = int(abs(max(int(w / p.width_height_ratio), p.min_height) * 2 - h) / 2)
        image = cv2.copyMakeBorder(image, pad, pad, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    h, w = image.shape[:2]
    return DetFrame(_scale_to(image, _limit_ratio(h, w, p)), (w, h), pad, scale)


class TextDetector:
    """``detector(rgb_image) -> (boxes (N, 4, 2), scores (N,))`` in the image's pixels."""

    def __init__(
        self,
        model: str | Path | None = None,
        db: DBParams = DEFAULT_DB,
        resize: ResizeParams = WHEEL_RESIZE,
        threads: int = 0,
        providers: list | None = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.path = Path(model) if model is not None else default_det_model()
        self.session = ort.InferenceSession(
            str(self.path), options, providers=providers or ["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.db, self.resize = db, resize

    def probability(self, image: np.ndarray) -> tuple[np.ndarray, DetFrame]:
        """The network's text probability map ``(H, W)`` for an RGB ``uint8`` image."""
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        frame = prepare(image, self.resize)
        x = (frame.net[..., ::-1].astype(np.float32) / 255.0 - 0.5) / 0.5  # BGR, as trained
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        return self.session.run(None, {self.input_name: x})[0][0, 0], frame

    def boxes(
        self,
        prob: np.ndarray,
        frame: DetFrame,
        shape: tuple[int, int],
        db: DBParams | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Post-process a map from :meth:`probability` into boxes in the pixels of an image of
        ``shape = (height, width)``."""
        boxes, scores = boxes_from_prob(prob, frame.size, db or self.db)
        if len(boxes):
            h0, w0 = shape
            boxes[..., 1] -= frame.pad
            boxes[..., 0] *= frame.scale[0]
            boxes[..., 1] *= frame.scale[1]
            boxes[..., 0] = np.clip(boxes[..., 0], 0, w0)
            boxes[..., 1] = np.clip(boxes[..., 1], 0, h0)
        return boxes, scores

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prob, frame = self.probability(image)
        return self.boxes(prob, frame, image.shape[:2])
