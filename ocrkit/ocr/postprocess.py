"""DB post-processing: probability map -> scored quadrilaterals (Liao et al., AAAI 2020, §3.4).

The steps and their defaults follow the ``rapidocr`` 3.x wheel's ``DBPostProcess`` (itself
PaddleOCR's ``ppocr/postprocess/db_postprocess.py``): binarize the map at ``thresh``, optionally
dilate with a 2x2 kernel, take every contour's minimum-area rectangle, score it by the mean
probability inside it (``fast``) or inside the contour (``slow``), drop those under
``box_thresh``, expand ("unclip") by ``D = A * unclip_ratio / L`` (the paper's Eq. 10), take the
minimum-area rectangle again and scale it to the source image. Unclipping uses a shapely round
buffer instead of pyclipper's round offset (the same polygon up to pyclipper's integer rounding),
so that no extra dependency is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import shapely


@dataclass(frozen=True)
class DBParams:
    """DB post-processing parameters; the field defaults are the ``rapidocr`` 3.10 wheel's
    ``config.yaml`` (``Det``, :data:`WHEEL_DB`); PaddleOCR's own inference defaults
    (:data:`PADDLE_DB`: ``box_thresh=0.6, unclip_ratio=1.5, use_dilation=False``) are what
    ocrkit's detector uses unless told otherwise (:data:`DEFAULT_DB`)."""

    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    max_candidates: int = 1000
    use_dilation: bool = True
    score_mode: str = "fast"
    min_size: float = 3.0

    def __post_init__(self) -> None:
        if self.score_mode not in ("fast", "slow"):
            raise ValueError(f"score_mode must be 'fast' or 'slow', got {self.score_mode!r}")


WHEEL_DB = DBParams()
PADDLE_DB = DBParams(box_thresh=0.6, unclip_ratio=1.5, use_dilation=False)
# PaddleOCR's parameters are ocrkit's default: from the same probability maps they find more of
# the boxes of ICDAR 2015 and SROIE pages and read more text end to end (docs/ocr.md, measured)
DB_PRESETS = {"paddle": PADDLE_DB, "wheel": WHEEL_DB}
DEFAULT_DB = PADDLE_DB


def db_preset(name: str, **overrides: float | None) -> DBParams:
    """The preset ``name`` (``paddle``, ``wheel``) with the ``overrides`` that are not None
    (``ocrkit read --db/--box-thresh/--unclip-ratio``, TABench's ``--engine-opt db=``)."""
    if name not in DB_PRESETS:
        raise ValueError(f"db={name!r}: choose {' or '.join(DB_PRESETS)}")
    return replace(DB_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def mini_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimum-area rectangle of ``points`` as 4 corners (top-left, top-right, bottom-right,
    bottom-left in the wheel's ordering) and its shorter side."""
    rect = cv2.minAreaRect(np.asarray(points, np.float32).reshape(-1, 1, 2))
    corners = sorted(cv2.boxPoints(rect).tolist(), key=lambda p: p[0])
    left = sorted(corners[:2], key=lambda p: p[1])
    right = sorted(corners[2:], key=lambda p: p[1])
    box = np.array([left[0], right[0], right[1], left[1]], np.float32)
    return box, float(min(rect[1]))


def unclip(box: np.ndarray, ratio: float) -> np.ndarray:
    """Expand a polygon by ``D = area * ratio / perimeter`` with round joins; (N, 2) float."""
    poly = shapely.Polygon(np.asarray(box, np.float64))
    if poly.length == 0:
        return np.asarray(box, np.float32).reshape(-1, 2)
    grown = poly.buffer(poly.area * ratio / poly.length, join_style="round", quad_segs=8)
    if grown.is_empty or grown.geom_type != "Polygon":
        return np.zeros((0, 2), np.float32)
    return np.asarray(grown.exterior.coords[:-1], np.float32)


def box_score(prob: np.ndarray, points: np.ndarray) -> float:
    """Mean of ``prob`` inside the polygon ``points`` (pixel coordinates of the map)."""
    h, w = prob.shape
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    x0 = int(np.clip(np.floor(pts[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(pts[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(pts[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(pts[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    shifted = (pts - np.array([x0, y0], np.float32)).astype(np.int32)
    cv2.fillPoly(mask, shifted.reshape(1, -1, 2), 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1].astype(np.float32), mask)[0])


def order_clockwise(pts: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left (x first, then y)."""
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], np.float32)


def boxes_from_prob(
    prob: np.ndarray, dest_size: tuple[int, int], params: DBParams = DEFAULT_DB
) -> tuple[np.ndarray, np.ndarray]:
    """Quadrilaterals ``(N, 4, 2)`` in the ``dest_size = (width, height)`` frame and their
    scores ``(N,)`` from a probability map ``(H, W)``."""
    prob = np.asarray(prob, np.float32)
    height, width = prob.shape
    dest_w, dest_h = dest_size
    bitmap = (prob > params.thresh).astype(np.uint8)
    if params.use_dilation:
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes, scores = [], []
    for contour in contours[: params.max_candidates]:
        points, side = mini_box(contour)
        if side < params.min_size:
            continue
        region = points if params.score_mode == "fast" else contour.reshape(-1, 2)
        score = box_score(prob, region)
        if score < params.box_thresh:
            continue
        grown = unclip(points, params.unclip_ratio)
        if len(grown) < 3:
            continue
        box, side = mini_box(grown)
        if side < params.min_size + 2:
            continue
        box[:, 0] = np.clip(np.round(box[:, 0] / width * dest_w), 0, dest_w)
        box[:, 1] = np.clip(np.round(box[:, 1] / height * dest_h), 0, dest_h)
        box = order_clockwise(box)
        box[:, 0] = np.clip(box[:, 0], 0, dest_w - 1)
        box[:, 1] = np.clip(box[:, 1], 0, dest_h - 1)
        if np.linalg.norm(box[0] - box[1]) < 4 or np.linalg.norm(box[0] - box[3]) < 4:
            continue
        boxes.append(box)
        scores.append(score)
    if not boxes:
        return np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32)
    return np.stack(boxes), np.asarray(scores, np.float32)
