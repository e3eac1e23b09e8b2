"""Box coordinates in each VLM family's native convention, for training and inference.

Anchoring instances store boxes in absolute pixels of the original image. A Q-Mask model reads and
writes them in its family's own convention, the one the TABench adapters implement (Q-Mask paper
S1.2, "coordinate conversion only"): Qwen2.5-VL absolute pixels of the smart-resized image,
Qwen2-VL and Qwen3-VL a 0-1000 grid. The conversion is the adapters' own
(:mod:`ocrkit.tabench.adapters`), never a copy. ``coords: absolute`` keeps original-image pixels
for every family (ocrkit before the fidelity pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COORDS = ("native", "absolute")
FAMILY_ADAPTERS = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl"}


def _size_value(size: Any, key: str) -> int | None:
    value = getattr(size, key, None)
    if value is None and isinstance(size, dict):
        value = size.get(key)
    return int(value) if value else None


def family_adapter(model_type: str, image_processor: Any = None, coords: str = "native") -> Any:
    """The TABench adapter whose coordinate system a Q-Mask model of ``model_type`` uses.

    For Qwen2.5-VL the smart-resize limits come from ``image_processor`` (its ``size``
    ``shortest_edge``/``longest_edge``), so the boxes are pixels of the image the model sees.
    """
    from ocrkit.tabench.adapters import ADAPTERS

    if coords not in COORDS:
        raise ValueError(f"coords must be one of {COORDS}, got {coords!r}")
    if coords == "absolute":
        return ADAPTERS.get("json")(coords="abs")
    name = FAMILY_ADAPTERS.get(model_type)
    if name is None:
        raise ValueError(
            f"no native box convention known for model type {model_type!r} "
            f"(known: {', '.join(FAMILY_ADAPTERS)}); set model.coords: absolute"
        )
    if name == "qwen2_5_vl" and image_processor is not None:
        size = getattr(image_processor, "size", None)
        lo, hi = _size_value(size, "shortest_edge"), _size_value(size, "longest_edge")
        kwargs = {k: v for k, v in (("min_pixels", lo), ("max_pixels", hi)) if v}
        return ADAPTERS.get(name)(**kwargs)
    return ADAPTERS.get(name)()


def to_model_box(adapter: Any, box: Sequence[float], width: int, height: int) -> list[int]:
    """An absolute ``[x1, y1, x2, y2]`` as the model writes it (integers, the adapter's order)."""
    return [int(round(v)) for v in adapter.to_model(list(box), width, height)]


def from_model_box(adapter: Any, box: Sequence[float], width: int, height: int) -> list[float]:
    """A box the model wrote, back to absolute pixels of the original image."""
    return [float(v) for v in adapter.from_model(list(box), width, height)]


def native_question(
    question: str, task: str, box: Sequence[float] | None, adapter: Any, width: int, height: int
) -> str:
    """The R2T question with its region in model coordinates (other questions unchanged).

    Only the generator's own S1 prompt is rewritten (a question that is exactly
    ``r2t_prompt(box)``); hand-written questions stay as they are.
    """
    from ocrkit.tabench.prompts import r2t_prompt

    if task != "r2t" or box is None or question != r2t_prompt(list(box)):
        return question
    return r2t_prompt(to_model_box(adapter, box, width, height))


def native_answer(answer: str, task: str, adapter: Any, width: int, height: int) -> str:
    """A T2R answer (``[{"bbox_2d": [...]}, ...]``, absolute pixels) in model coordinates."""
    if task != "t2r":
        return answer
    from ocrkit.tabench.prompts import read_t2r_answer, t2r_answer

    boxes = read_t2r_answer(answer)
    if boxes is None:
        return answer  # not the generator's JSON: left as written
    return t2r_answer([to_model_box(adapter, b, width, height) for b in boxes])
