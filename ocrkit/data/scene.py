"""Word crops cut from scene images with quadrilateral annotations (ICDAR 2015 style).

``annotations.jsonl``, one scene per line::

    {"image": "images/img_61.jpg", "instances": [{"text": "Ave", "points": [[x, y] x 4],
     "ignore": false}, ...]}

Points go clockwise from the word's top-left corner (reading order), so a quad of upside-down or
rotated text is rectified upright. Don't-care regions (``ignore: true`` or text ``###``) are never
samples. Tall crops (vertical text) are kept as cut, not rotated: rotating them would be a guess
about the writing direction; the model's resize handles them as it handles any aspect ratio.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ocrkit.data.base import RawImage, StrDataset
from ocrkit.data.image_io import CorruptImageError, read_image

IGNORE_TEXT = "###"
DROP_DEGENERATE = "degenerate_quad"


def quad_size(points: Sequence[Sequence[float]] | np.ndarray) -> tuple[int, int]:
    """(width, height) of the rectified crop: the longer of each pair of opposite edges."""
    p = np.asarray(points, dtype=np.float64).reshape(4, 2)
    width = max(np.linalg.norm(p[0] - p[1]), np.linalg.norm(p[3] - p[2]))
    height = max(np.linalg.norm(p[1] - p[2]), np.linalg.norm(p[0] - p[3]))
    return round(width), round(height)


def crop_quad(
    image: np.ndarray,
    points: Sequence[Sequence[float]] | np.ndarray,
    interpolation: int = cv2.INTER_CUBIC,
) -> np.ndarray:
    """Rectify the quadrilateral ``points`` (tl, tr, br, bl in reading order) of ``image``.

    The output is ``quad_size(points)`` (width x height). Points are pixel-edge coordinates, so
    the box ``[x0, x1) x [y0, y1)`` gives exactly ``image[y0:y1, x0:x1]`` and a quad rotated by
    90 degrees gives exactly the rotated pixels. As PaddleOCR's ``get_rotate_crop_image``:
    perspective warp with replicated borders, no rotation of tall crops.
    """
    src = np.asarray(points, dtype=np.float32)
    if src.size != 8:
        raise ValueError(f"a quad needs 4 (x, y) points, got array of shape {src.shape}")
    src = src.reshape(4, 2)
    width, height = quad_size(src)
    if width < 1 or height < 1:
        raise ValueError(f"degenerate quad {src.tolist()} (size {width}x{height})")
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    # points are pixel-edge coordinates, OpenCV samples at pixel centres: shift both by -0.5
    matrix = cv2.getPerspectiveTransform(src - 0.5, dst - 0.5)
    return cv2.warpPerspective(
        image, matrix, (width, height), flags=interpolation, borderMode=cv2.BORDER_REPLICATE
    )


class SceneCropDataset(StrDataset):
    """Rectified word crops from a scene ``annotations.jsonl`` (images relative to its folder).

    The JSONL is parsed once at construction (labels are needed for filtering); scenes are
    decoded on demand and kept in a small per-process LRU cache (``cache_size`` scenes), so
    consecutive crops of one scene decode it once. Keys are ``<image>#<instance index>``.
    """

    def __init__(
        self,
        annotations: str | Path,
        root: str | Path | None = None,
        cache_size: int = 8,
        **kwargs: Any,
    ) -> None:
        annotations = Path(annotations)
        if not annotations.exists():
            raise FileNotFoundError(f"scene annotations {annotations} do not exist")
        self.root = Path(root) if root is not None else annotations.parent
        kwargs.setdefault("name", annotations.parent.name)
        super().__init__(**kwargs)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray | Exception] = OrderedDict()
        self.images: list[str] = []
        self.instances: list[tuple[int, int, np.ndarray]] = []  # (scene, instance, points)
        self.raw_labels: list[str | None] = []
        self.num_ignored = 0
        self._parse(annotations)
        self._init_labels(self.raw_labels)
        self._num_raw += self.dropped[DROP_DEGENERATE]

    def _parse(self, annotations: Path) -> None:
        with open(annotations, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    scene = len(self.images)
                    self.images.append(str(record["image"]))
                    for k, inst in enumerate(record.get("instances", [])):
                        text = inst.get("text")
                        if inst.get("ignore", False) or text == IGNORE_TEXT:
                            self.num_ignored += 1
                            continue
                        points = np.asarray(inst["points"], dtype=np.float32).reshape(4, 2)
                        self._add_instance(scene, k, points, text)
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(
                        f"{annotations}:{line_no}: bad annotation ({exc}); expected "
                        '{"image": ..., "instances": [{"text": ..., "points": [[x, y] x 4]}]}'
                    ) from None

    def _add_instance(self, scene: int, k: int, points: np.ndarray, text: str | None) -> None:
        """One sample: instance ``k`` of scene ``scene`` (a quad of zero size is counted in
        ``dropped``, never a sample)."""
        if min(quad_size(points)) < 1:
            self.dropped[DROP_DEGENERATE] += 1
            return
        self.instances.append((scene, k, points))
        self.raw_labels.append(text)

    def _scene(self, index: int) -> np.ndarray:
        rel = self.images[index]
        cached = self._cache.get(rel)
        if cached is None:
            try:
                cached = read_image(self.root / rel)
            except (CorruptImageError, OSError) as exc:
                cached = exc
            self._cache[rel] = cached
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(rel)
        if isinstance(cached, Exception):
            raise cached
        return cached

    def _key(self, j: int) -> str:
        scene, k, _ = self.instances[j]
        return f"{self.images[scene]}#{k}"

    def _skip_source(self, key: str) -> str:
        return key.rsplit("#", 1)[0]  # the scene image: its crops fail together

    def _load(self, j: int) -> tuple[RawImage, str | None, str]:
        scene, _, points = self.instances[j]
        try:
            crop = crop_quad(self._scene(scene), points)
        except (CorruptImageError, OSError) as exc:
            raise type(exc)(f"scene {self.images[scene]}: {exc}") from None
        return crop, self.raw_labels[j], self._key(j)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state
