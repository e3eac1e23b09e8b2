"""Adapters for each VLM family's native grounding interface (see docs/tabench.md, table).

Each class names the family's coordinate system and the prompt wording it answers best; the
R2T prompt carries the region in the model's own coordinates, and answers go back to absolute
pixels through the same :class:`CoordSystem`.
"""

from __future__ import annotations

import re
from typing import Any

from ocrkit.tabench.adapters.base import (
    ADAPTERS,
    Adapter,
    CoordSystem,
    QwenResized,
    Scaled,
)
from ocrkit.tabench.parsing import find_boxes, strip_reasoning

_COORDS = {"abs": CoordSystem, "rel1000": lambda: Scaled(1000), "rel1": lambda: Scaled(1)}


@ADAPTERS.register("json")
class JsonAdapter(Adapter):
    """Generic: the S1 prompts verbatim (absolute pixels) and JSON ``bbox_2d`` lists back.

    ``coords`` picks how the model writes boxes: ``abs`` (default), ``rel1000`` or ``rel1``.
    The prompt a TABench-trained model (Q-Mask) expects.
    """

    name = "json"

    def __init__(self, coords: str = "abs") -> None:
        if coords not in _COORDS:
            raise ValueError(f"json adapter: coords must be one of {sorted(_COORDS)}")
        super().__init__(_COORDS[coords]())
        self.digits = 3 if coords == "rel1" else 0


@ADAPTERS.register("qwen2_vl")
class Qwen2VLAdapter(Adapter):
    """Qwen2-VL: ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on a 0-1000 grid."""

    name = "qwen2_vl"
    r2t_template = (
        "What is the text in the region <|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>? "
        "Answer with the text only."
    )
    t2r_template = (
        'Output the bounding box of the text "{text}" in the image. '
        "If it appears more than once, output every box."
    )

    def __init__(self) -> None:
        super().__init__(Scaled(1000))


@ADAPTERS.register("qwen2_5_vl")
class Qwen25VLAdapter(Adapter):
    """Qwen2.5-VL: JSON ``bbox_2d`` in absolute pixels of the smart-resized image."""

    name = "qwen2_5_vl"
    r2t_template = (
        "What is the text in the region [{x1}, {y1}, {x2}, {y2}]? Answer with the text only."
    )
    t2r_template = (
        'Locate every instance of the text "{text}" in the image, '
        "output their bbox coordinates in JSON format."
    )

    def __init__(self, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 16384) -> None:
        super().__init__(QwenResized(int(min_pixels), int(max_pixels)))


@ADAPTERS.register("qwen3_vl")
class Qwen3VLAdapter(Qwen25VLAdapter):
    """Qwen3-VL: the Qwen2.5-VL JSON format on a 0-1000 grid."""

    name = "qwen3_vl"

    def __init__(self) -> None:
        Adapter.__init__(self, Scaled(1000))


_GLM_BOX = re.compile(r"<\|begin_of_box\|>(.*?)<\|end_of_box\|>", re.S)


@ADAPTERS.register("glm4v")
class GLM4VAdapter(Adapter):
    """GLM-4.1V / GLM-4.5V: ``<|begin_of_box|>[[x1,y1,x2,y2]]<|end_of_box|>`` in thousandths."""

    name = "glm4v"
    r2t_template = (
        "What is the text in the region [[{x1},{y1},{x2},{y2}]]? Answer with the text only."
    )
    t2r_template = (
        'Where is the text "{text}" in the image? Give the bounding box of every occurrence.'
    )

    def __init__(self) -> None:
        super().__init__(Scaled(1000))

    def extract_boxes(self, raw: Any) -> list[list[float]] | None:
        if not isinstance(raw, str):
            return None
        inner = _GLM_BOX.findall(strip_reasoning(raw))
        return find_boxes("\n".join(inner)) if inner else find_boxes(raw)


@ADAPTERS.register("gemini")
class GeminiAdapter(Adapter):
    """Gemini: JSON ``box_2d`` as ``[y_min, x_min, y_max, x_max]`` on a 0-1000 grid."""

    name = "gemini"
    yx = True
    box_keys = ("box_2d", "bbox_2d", "bbox", "box")
    r2t_template = (
        "What is the text inside box_2d [{y1}, {x1}, {y2}, {x2}] "
        "([y_min, x_min, y_max, x_max], normalized to 0-1000)? Answer with the text only."
    )
    t2r_template = (
        'Detect every instance of the text "{text}" in the image. Return a JSON list whose '
        'entries have "box_2d" as [y_min, x_min, y_max, x_max] normalized to 0-1000.'
    )

    def __init__(self) -> None:
        super().__init__(Scaled(1000))


@ADAPTERS.register("kimi_vl")
class KimiVLAdapter(Adapter):
    """Kimi-VL: boxes as fractions of the image size in ``[0, 1]``."""

    name = "kimi_vl"
    digits = 3
    r2t_template = (
        "What is the text in the region [{x1}, {y1}, {x2}, {y2}] (coordinates relative to the "
        "image size, in [0, 1])? Answer with the text only."
    )
    t2r_template = (
        'Locate every occurrence of the text "{text}" in the image. Output each as '
        "[x1, y1, x2, y2] with coordinates relative to the image size, in [0, 1]."
    )

    def __init__(self) -> None:
        super().__init__(Scaled(1))


_DEEPSEEK_DET = re.compile(r"<\|det\|>(.*?)<\|/det\|>", re.S)


@ADAPTERS.register("deepseek_ocr")
class DeepSeekOCRAdapter(Adapter):
    """DeepSeek-OCR: ``Locate <|ref|>TEXT<|/ref|> in the image.`` -> ``<|det|>[[...]]<|/det|>``
    on a 0-999 grid."""

    name = "deepseek_ocr"
    r2t_template = "What is the text at <|det|>[[{x1}, {y1}, {x2}, {y2}]]<|/det|>?"
    t2r_template = "Locate <|ref|>{text}<|/ref|> in the image."

    def __init__(self) -> None:
        super().__init__(Scaled(999))

    def extract_boxes(self, raw: Any) -> list[list[float]] | None:
        if not isinstance(raw, str):
            return None
        inner = _DEEPSEEK_DET.findall(raw)
        return find_boxes("\n".join(inner)) if inner else find_boxes(raw)
