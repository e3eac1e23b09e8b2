"""V_raw: an OCR engine's raw output per training image, the OCR prior of SPI (Q-Mask Eq. 9, S2.1).

For scene text the paper's gamma = 1 prior is what an upstream OCR engine read, errors and
false detections included, not the annotation. ocrkit runs RapidOCR (PP-OCRv4 detection +
recognition, :class:`~ocrkit.tabench.engines.rapidocr.RapidOCREngine`, the engine the project
already wraps) once per image, offline, and caches its lines in an append-only JSONL keyed by
the image file's SHA-256 and the engine name, so a rebuilt data set never reruns it.

An engine is any callable ``RGB uint8 image -> [(text, [x1, y1, x2, y2]), ...]``; tests pass a
fake one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ocrkit.utils import paths

log = logging.getLogger(__name__)

RawItem = tuple[str, list[float]]
OcrEngine = Callable[[Any], list[RawItem]]
DEFAULT_ENGINE = "rapidocr"
MATCH_COVERAGE = 0.5  # a raw item is the target's when it covers >= half of the target's box


class RapidOCRLines:
    """RapidOCR's lines as ``(text, axis-aligned box)``; the engine is loaded on first use."""

    name = DEFAULT_ENGINE

    def __init__(self, threads: int = 1) -> None:
        self.threads = int(threads)
        self._engine: Any = None

    def __call__(self, image: Any) -> list[RawItem]:
        from ocrkit.tabench.geometry import bounding_box

        if self._engine is None:
            from ocrkit.tabench.engines.rapidocr import RapidOCREngine

            self._engine = RapidOCREngine(word_boxes=False, threads=self.threads)
        lines = self._engine.read_page(image)
        return [(ln.text, [float(v) for v in bounding_box(ln.box)]) for ln in lines]


PRIOR_MODES = ("paper", "gt", "ocr", "none")


def prior_kind(mode: str, category: str) -> str:
    """``gt``, ``ocr`` or ``none``: the prior an image of ``category`` gets under ``mode``
    (``paper``: documents none, other images V_raw)."""
    if mode not in PRIOR_MODES:
        raise ValueError(f"data spec prior {mode!r}: use one of {PRIOR_MODES}")
    if mode == "paper":
        return "none" if category == "document" else "ocr"
    return mode


def prior_source(
    mode: str, cache_dir: str | Path | None, ocr_cache: str | None, engine: Any
) -> Callable[[Any], list[Any] | None]:
    """``AnnotatedImage -> raw`` for ``generate.instances_from_image`` under a ``prior`` mode
    (None: the annotated regions; ``[]``: no prior; else V_raw, run once and cached)."""
    prior_kind(mode, "scene")  # checks the mode
    state: dict[str, Any] = {}

    def source(img: Any) -> list[Any] | None:
        kind = prior_kind(mode, img.category)
        if kind != "ocr":
            return None if kind == "gt" else []
        if "cache" not in state:
            eng = engine if engine is not None else RapidOCRLines()
            name = str(getattr(eng, "name", "ocr"))
            state["cache"] = RawOCRCache(ocr_cache or default_cache(cache_dir, name), eng)
        return state["cache"](img.path)

    return source


def default_cache(cache_dir: str | Path | None = None, engine: str = DEFAULT_ENGINE) -> Path:
    base = Path(cache_dir).expanduser() if cache_dir else paths.cache_dir()
    return base / "qmask-vraw" / f"{engine}.jsonl"


class RawOCRCache:
    """``V_raw`` of image files: from the cache when known, else from ``engine`` (then cached)."""

    def __init__(self, path: str | Path, engine: OcrEngine | None = None) -> None:
        from ocrkit.tabench.cache import ResponseCache

        self.engine = engine
        self.engine_name = str(getattr(engine, "name", type(engine).__name__ if engine else ""))
        self.cache = ResponseCache(path)
        self.ran = 0

    def key(self, path: str | Path) -> str:
        from ocrkit.tabench.split import file_sha256

        return f"{self.engine_name}:{file_sha256(path)}"

    def __call__(self, path: str | Path) -> list[RawItem]:
        key = self.key(path)
        hit = self.cache.get(key)
        if hit is not None:
            return [(str(t), [float(v) for v in b]) for t, b in hit["items"]]
        if self.engine is None:
            raise ValueError(f"no cached OCR output for {path} and no engine to run")
        from ocrkit.anchoring.data import load_rgb

        items = [(str(t), [float(v) for v in b]) for t, b in self.engine(load_rgb(path))]
        self.cache.put(key, {"id": str(path), "items": [[t, b] for t, b in items]})
        self.ran += 1
        return items


def coverage(target: Sequence[float], box: Sequence[float]) -> float:
    """The fraction of ``target``'s area inside ``box`` (both ``[x1, y1, x2, y2]``)."""
    w = min(target[2], box[2]) - max(target[0], box[0])
    h = min(target[3], box[3]) - max(target[1], box[1])
    area = (target[2] - target[0]) * (target[3] - target[1])
    return max(0.0, w) * max(0.0, h) / area if area > 0 else 0.0


def raw_prior(
    raw: Sequence[RawItem], targets: Sequence[Sequence[float]], width: int, height: int
) -> list[dict[str, Any]]:
    """Prior candidates from ``V_raw``: every raw item (matched or not), clipped to the image,
    ``target`` when it covers at least half of one of the queried regions' boxes."""
    from ocrkit.anchoring.generate import _clip

    out = []
    for text, box in raw:
        if not str(text).strip():
            continue
        b = _clip(box, width, height)
        hit = any(coverage(t, b) >= MATCH_COVERAGE for t in targets)
        out.append({"text": str(text), "box": b, "target": hit})
    return out
