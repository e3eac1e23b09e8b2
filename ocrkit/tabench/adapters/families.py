"""Adapters for each VLM family's native grounding interface (see docs/tabench.md, table).

Each class names the family's coordinate system; by default every family is asked the paper's
unified S1 wording (S1.2: "coordinate conversion only"), with ``prompts="native"`` the wording
it answers best (``native_r2t``/``native_t2r``). The R2T prompt carries the region in the
model's own coordinates, and answers go back to absolute pixels through the same
:class:`CoordSystem`.
"""

from __future__ import annotations

from typing import Any

from ocrkit.tabench.adapters.base import (
    ADAPTERS,
    Adapter,
    CoordSystem,
    QwenResized,
    Scaled,
)
from ocrkit.tabench.parsing import between, find_boxes, prepare_answer

_COORDS = {"abs": CoordSystem, "rel1000": lambda: Scaled(1000), "rel1": lambda: Scaled(1)}


@ADAPTERS.register("json")
class JsonAdapter(Adapter):
    """Generic: the S1 prompts verbatim, no format instruction by default (the prompt a
    TABench-trained model such as Q-Mask was trained on), JSON ``bbox_2d`` lists back.

    ``coords`` picks how the model writes boxes: ``abs`` (default), ``rel1000`` or ``rel1``.
    """

    name = "json"

    def __init__(
        self, coords: str = "abs", prompts: str = "paper", format_hint: bool = False
    ) -> None:
        if coords not in _COORDS:
            raise ValueError(f"json adapter: coords must be one of {sorted(_COORDS)}")
        super().__init__(_COORDS[coords](), prompts, format_hint)
        self.digits = 3 if coords == "rel1" else 0


@ADAPTERS.register("qwen2_vl")
class Qwen2VLAdapter(Adapter):
    """Qwen2-VL: ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on a 0-1000 grid."""

    name = "qwen2_vl"
    native_r2t = (
        "What is the text in the region <|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>? "
        "Answer with the text only."
    )
    native_t2r = (
        'Output the bounding box of the text "{text}" in the image. '
        "If it appears more than once, output every box."
    )

    def __init__(self, prompts: str = "paper", format_hint: bool = True) -> None:
        super().__init__(Scaled(1000), prompts, format_hint)


@ADAPTERS.register("qwen2_5_vl")
class Qwen25VLAdapter(Adapter):
    """Qwen2.5-VL: JSON ``bbox_2d`` in absolute pixels of the smart-resized image."""

    name = "qwen2_5_vl"
    native_r2t = (
        "What is the text in the region [{x1}, {y1}, {x2}, {y2}]? Answer with the text only."
    )
    native_t2r = (
        'Locate every instance of the text "{text}" in the image, '
        "output their bbox coordinates in JSON format."
    )

    def __init__(
        self,
        min_pixels: int = 56 * 56,
        max_pixels: int = 28 * 28 * 16384,
        prompts: str = "paper",
        format_hint: bool = True,
    ) -> None:
        super().__init__(QwenResized(int(min_pixels), int(max_pixels)), prompts, format_hint)


@ADAPTERS.register("qwen3_vl")
class Qwen3VLAdapter(Qwen25VLAdapter):
    """Qwen3-VL: the Qwen2.5-VL JSON format on a 0-1000 grid."""

    name = "qwen3_vl"

    def __init__(self, prompts: str = "paper", format_hint: bool = True) -> None:
        Adapter.__init__(self, Scaled(1000), prompts, format_hint)


@ADAPTERS.register("glm4v")
class GLM4VAdapter(Adapter):
    """GLM-4.1V / GLM-4.5V: ``<|begin_of_box|>[[x1,y1,x2,y2]]<|end_of_box|>`` in thousandths."""

    name = "glm4v"
    native_r2t = (
        "What is the text in the region [[{x1},{y1},{x2},{y2}]]? Answer with the text only."
    )
    native_t2r = (
        'Where is the text "{text}" in the image? Give the bounding box of every occurrence.'
    )

    def __init__(self, prompts: str = "paper", format_hint: bool = True) -> None:
        super().__init__(Scaled(1000), prompts, format_hint)

    def extract_boxes(self, raw: Any) -> list[list[float]] | None:
        if not isinstance(raw, str):
            return None
        inner = between(prepare_answer(raw)[0], "<|begin_of_box|>", "<|end_of_box|>")
        return find_boxes("\n".join(inner)) if inner else find_boxes(raw)


@ADAPTERS.register("gemini")
class GeminiAdapter(Adapter):
    """Gemini: JSON ``box_2d`` as ``[y_min, x_min, y_max, x_max]`` on a 0-1000 grid."""

    name = "gemini"
    yx = True
    box_keys = ("box_2d", "bbox_2d", "bbox", "box")
    paper_r2t = "What is the text at location [{y1}, {x1}, {y2}, {x2}]?"
    format_hint_text = 'Answer in JSON: [{{"box_2d": [y_min, x_min, y_max, x_max]}}, ...].'
    native_r2t = (
        "What is the text inside box_2d [{y1}, {x1}, {y2}, {x2}] "
        "([y_min, x_min, y_max, x_max], normalized to 0-1000)? Answer with the text only."
    )
    native_t2r = (
        'Detect every instance of the text "{text}" in the image. Return a JSON list whose '
        'entries have "box_2d" as [y_min, x_min, y_max, x_max] normalized to 0-1000.'
    )

    def __init__(self, prompts: str = "paper", format_hint: bool = True) -> None:
        super().__init__(Scaled(1000), prompts, format_hint)


@ADAPTERS.register("kimi_vl")
class KimiVLAdapter(Adapter):
    """Kimi-VL: boxes as fractions of the image size in ``[0, 1]``."""

    name = "kimi_vl"
    digits = 3
    native_r2t = (
        "What is the text in the region [{x1}, {y1}, {x2}, {y2}] (coordinates relative to the "
        "image size, in [0, 1])? Answer with the text only."
    )
    native_t2r = (
        'Locate every occurrence of the text "{text}" in the image. Output each as '
        "[x1, y1, x2, y2] with coordinates relative to the image size, in [0, 1]."
    )

    def __init__(self, prompts: str = "paper", format_hint: bool = True) -> None:
        super().__init__(Scaled(1), prompts, format_hint)


@ADAPTERS.register("deepseek_ocr")
class DeepSeekOCRAdapter(Adapter):
    """DeepSeek-OCR: ``Locate <|ref|>TEXT<|/ref|> in the image.`` -> ``<|det|>[[...]]<|/det|>``
    on a 0-999 grid."""

    name = "deepseek_ocr"
    native_r2t = "What is the text at <|det|>[[{x1}, {y1}, {x2}, {y2}]]<|/det|>?"
    native_t2r = "Locate <|ref|>{text}<|/ref|> in the image."
    paper_r2t = None  # T2R only (Table 1 and S2: R2T "-"); scored 0 in Overall, as the paper
    paper_t2r = native_t2r  # its grounding prompt: the syntax its interface demands

    def __init__(self, prompts: str = "paper", format_hint: bool = True) -> None:
        super().__init__(Scaled(999), prompts, format_hint)

    def extract_boxes(self, raw: Any) -> list[list[float]] | None:
        if not isinstance(raw, str):
            return None
        inner = between(prepare_answer(raw)[0], "<|det|>", "<|/det|>")
        return find_boxes("\n".join(inner)) if inner else find_boxes(raw)
