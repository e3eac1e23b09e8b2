"""The TABench query record, and a loader for benches written by ocrkit or by other releases.

One JSONL line per query (Q-Mask paper, Section 4 and Supplementary S1). Field names are a
contract that the scorer, the runner and later checks rely on::

    {"id", "image", "width", "height", "task": "r2t" | "t2r", "prompt",
     "box": [x1, y1, x2, y2],            # R2T region, absolute pixels
     "text": "...",                      # R2T target transcript / T2R query string
     "boxes": [[x1, y1, x2, y2] | [[x, y], ...], ...],   # T2R targets
     "category", "language", "source"}

``image`` is relative to the bench file. Other releases (the official 5,450-query TABench JSONL)
are read through a field mapping and, for boxes normalized to [0, 1000], ``coords="rel1000"``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ocrkit.tabench.jsonl import iter_lines, parse_line
from ocrkit.tabench.prompts import r2t_prompt, t2r_prompt
from ocrkit.utils.io import atomic_write_text

Box = list[float]  # [x1, y1, x2, y2]
Polygon = list[list[float]]  # [[x, y], ...]
Shape = Box | Polygon
Coords = Literal["abs", "rel1000"]

FIELDS = (
    "id",
    "image",
    "width",
    "height",
    "task",
    "prompt",
    "box",
    "text",
    "boxes",
    "category",
    "language",
    "source",
)

_TASK_ALIASES = {
    "r2t": "r2t",
    "regiontotext": "r2t",
    "recognition": "r2t",
    "recognize": "r2t",
    "t2r": "t2r",
    "texttoregion": "t2r",
    "grounding": "t2r",
    "localization": "t2r",
    "locate": "t2r",
}


@dataclass
class Query:
    """One TABench query; ``box`` is set for R2T, ``boxes`` for T2R (absolute pixels)."""

    id: str
    image: str
    width: int
    height: int
    task: str
    prompt: str
    text: str
    box: Box | None = None
    boxes: list[Shape] = field(default_factory=list)
    category: str = "default"
    language: str = "en"
    source: str = ""
    root: Path = field(default=Path("."), repr=False, compare=False)
    line: int = field(default=0, repr=False, compare=False)  # line in the bench file (1-based)

    @property
    def image_path(self) -> Path:
        """The image file, resolved against the folder of the bench file."""
        return self.root / self.image

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("root")
        record.pop("line")
        if self.task == "r2t":
            record.pop("boxes")
        else:
            record.pop("box")
        return {k: record[k] for k in FIELDS if k in record}


def normalize_task(value: Any) -> str:
    """Map a task name of any release (``R2T``, ``region-to-text``, ...) to ``r2t``/``t2r``."""
    key = re.sub(r"[^a-z0-9]", "", str(value).lower())
    if key not in _TASK_ALIASES:
        raise ValueError(f"unknown task {value!r}; expected r2t or t2r")
    return _TASK_ALIASES[key]


def is_polygon(shape: Any) -> bool:
    return bool(shape) and isinstance(shape[0], (list, tuple))


def scale_shape(shape: Shape, sx: float, sy: float) -> Shape:
    """Multiply x by ``sx`` and y by ``sy`` in a box or a polygon."""
    if is_polygon(shape):
        return [[float(p[0]) * sx, float(p[1]) * sy] for p in shape]
    x1, y1, x2, y2 = shape
    return [float(x1) * sx, float(y1) * sy, float(x2) * sx, float(y2) * sy]


def _check_shape(shape: Shape) -> Shape:
    if is_polygon(shape):
        if len(shape) < 3 or any(len(p) != 2 for p in shape):
            raise ValueError(f"a polygon needs >= 3 [x, y] points, got {shape!r}")
        values = [v for p in shape for v in p]
    elif len(shape) != 4:
        raise ValueError(f"a box needs 4 numbers, got {shape!r}")
    else:
        values = list(shape)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"coordinates must be finite numbers, got {shape!r}")
    return shape


def _get(record: Mapping[str, Any], key: str) -> Any:
    """Read a dotted key (``meta.category``) from a nested record; None when absent."""
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def parse_record(
    record: Mapping[str, Any],
    root: Path,
    mapping: Mapping[str, str] | None = None,
    coords: Coords = "abs",
    line: int = 0,
) -> Query:
    """Turn one JSONL record into a :class:`Query` (absolute pixels), raising a clear error."""
    if not isinstance(record, Mapping):
        raise ValueError(f"not a JSON object but {type(record).__name__}")
    mapping = mapping or {}
    get = {name: _get(record, mapping.get(name, name)) for name in FIELDS}
    where = f"id={get['id']!r}"
    if get["image"] is None:
        raise ValueError(f"{where}: no image field ({mapping.get('image', 'image')!r})")
    task = normalize_task(get["task"]) if get["task"] is not None else None
    if task is None:
        task = "r2t" if get["box"] is not None and not get["boxes"] else "t2r"
    width, height = get["width"], get["height"]
    if width is None or height is None:
        from ocrkit.data.image_io import image_size

        width, height = image_size(root / str(get["image"]))  # after EXIF orientation
    try:
        width, height = int(width), int(height)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: width/height must be integers, got {width!r}, {height!r}"
        ) from None
    sx, sy = (width / 1000.0, height / 1000.0) if coords == "rel1000" else (1.0, 1.0)
    text = "" if get["text"] is None else str(get["text"])
    box = boxes = None
    if task == "r2t":
        box = get["box"]
        if box is None and get["boxes"]:
            box = get["boxes"][0]
        if not isinstance(box, list) or len(box) != 4 or is_polygon(box):
            raise ValueError(f"{where}: an R2T query needs box [x1, y1, x2, y2], got {box!r}")
        try:
            box = _check_shape(scale_shape([float(v) for v in box], sx, sy))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{where}: bad R2T box {box!r} ({exc})") from None
    else:
        boxes = get["boxes"]
        if boxes is None and get["box"] is not None:
            boxes = [get["box"]]
        if not boxes or not isinstance(boxes, list):
            raise ValueError(f"{where}: a T2R query needs a non-empty boxes list")
        if not isinstance(boxes[0], (list, tuple)):
            boxes = [boxes]  # one flat box
        elif len(boxes[0]) == 2 and not isinstance(boxes[0][0], (list, tuple)):
            boxes = [boxes]  # one polygon
        try:
            boxes = [_check_shape(scale_shape(b, sx, sy)) for b in boxes]
        except (TypeError, ValueError, OverflowError, IndexError, KeyError) as exc:
            raise ValueError(f"{where}: bad target shape in boxes ({exc})") from None
    prompt = get["prompt"]
    if prompt is None:
        prompt = r2t_prompt(box) if task == "r2t" else t2r_prompt(text)
    return Query(
        id=str(get["id"] if get["id"] is not None else f"q{line:05d}"),
        image=str(get["image"]),
        width=width,
        height=height,
        task=task,
        prompt=str(prompt),
        text=text,
        box=box,
        boxes=boxes or [],
        category=str(get["category"] or "default"),
        language=str(get["language"] or "en"),
        source=str(get["source"] or ""),
        root=root,
        line=line,
    )


def parse_field_map(spec: str | None) -> dict[str, str]:
    """``"image=img_path,task=type"`` or a JSON object (or a path to one) -> mapping."""
    if not spec:
        return {}
    path = Path(spec)
    if spec.lstrip().startswith("{") or path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8") if path.is_file() else spec)
    else:
        data = dict(item.split("=", 1) for item in spec.split(",") if item.strip())
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise ValueError(f"field map names unknown fields {sorted(unknown)}; known: {FIELDS}")
    return {str(k).strip(): str(v).strip() for k, v in data.items()}


def load_bench(
    path: str | Path, mapping: Mapping[str, str] | None = None, coords: Coords = "abs"
) -> list[Query]:
    """Read a bench JSONL file; ids must be unique. Blank lines are skipped.

    Any bad line (not UTF-8, not JSON, nested too deeply, a bad field) is a ``ValueError`` that
    starts with ``PATH:LINE:``.
    """
    path = Path(path)
    root = path.parent
    queries: list[Query] = []
    for n, raw in iter_lines(path):
        record, problem = parse_line(raw)
        try:
            if problem:
                raise ValueError(problem)
            query = parse_record(record, root, mapping, coords, line=n)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ValueError(f"{path}:{n}: {message}") from None
        queries.append(query)
    seen: dict[str, int] = {}
    for q in queries:
        if q.id in seen:
            raise ValueError(
                f"{path}:{q.line}: duplicate query id {q.id!r} (first on line {seen[q.id]})"
            )
        seen[q.id] = q.line
    return queries


def check_image_paths(
    queries: Iterable[Query], bench: str | Path, image_root: str | Path | None = None
) -> None:
    """Refuse a query whose image lies outside the allowed folder, naming its line.

    The allowed folder is the bench file's own, or ``image_root`` when the caller gives one.
    Paths are compared after resolving ``..`` and symbolic links, so neither an absolute path
    (``/etc/passwd``), a climb (``../../root/.bashrc``) nor a link inside the folder that points
    out of it can make the runner read, or send, a file the bench did not mean.
    """
    allowed = Path(os.path.realpath(image_root if image_root is not None else Path(bench).parent))
    for q in queries:
        target = Path(os.path.realpath(q.image_path))
        if not target.is_relative_to(allowed):
            how = "is absolute" if Path(q.image).is_absolute() else "leaves"
            raise ValueError(
                f"{bench}:{q.line}: image {q.image!r} {how} the allowed folder {allowed} "
                f"(resolved: {target}); pass --image-root DIR to allow images under DIR"
            )


def save_bench(path: str | Path, queries: Iterable[Query]) -> None:
    """Write queries as JSONL atomically."""
    lines = [json.dumps(q.to_record(), ensure_ascii=False) for q in queries]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
