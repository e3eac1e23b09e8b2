"""The adapter interface: one model family's prompts, coordinates and answer parsing.

An adapter turns a TABench query (absolute pixels) into the prompt a model family was trained
to answer, and its answer back into absolute pixels. Coordinates go through a
:class:`CoordSystem`; both directions are exact inverses (up to the integer rounding in prompts).
Parsers never raise: an unreadable answer gives None and is scored as empty (and counted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocrkit.registry import Registry
from ocrkit.tabench.parsing import (
    DEFAULT_BOX_KEYS,
    MAX_ANSWER_CHARS,
    find_boxes,
    find_text,
    prepare_answer,
)
from ocrkit.tabench.prompts import R2T_PROMPT, T2R_FORMAT_HINT, T2R_PROMPT
from ocrkit.tabench.schema import Box, Query

ADAPTERS: Registry[Adapter] = Registry("tabench adapter")


class CoordSystem:
    """Absolute image pixels <-> a model's box coordinates (``[x1, y1, x2, y2]`` order)."""

    def to_model(self, box: Sequence[float], width: int, height: int) -> list[float]:
        return [float(v) for v in box]

    def from_model(self, box: Sequence[float], width: int, height: int) -> list[float]:
        return [float(v) for v in box]


@dataclass(frozen=True)
class Scaled(CoordSystem):
    """Coordinates normalized to ``[0, scale]``: 1000 (Qwen2-VL, Qwen3-VL, GLM, Gemini),
    999 (DeepSeek-OCR) or 1 (Kimi-VL)."""

    scale: float

    def to_model(self, box: Sequence[float], width: int, height: int) -> list[float]:
        x1, y1, x2, y2 = box
        s = self.scale
        return [x1 / width * s, y1 / height * s, x2 / width * s, y2 / height * s]

    def from_model(self, box: Sequence[float], width: int, height: int) -> list[float]:
        x1, y1, x2, y2 = box
        s = self.scale
        return [x1 / s * width, y1 / s * height, x2 / s * width, y2 / s * height]


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 14 * 14 * 4 * 1280,
) -> tuple[int, int]:
    """The Qwen2-VL / Qwen2.5-VL image processor's resize rule, mirrored line for line.

    Same as ``transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize`` (a test
    compares them): both sides a multiple of ``factor`` (patch 14 x merge 2), the pixel count
    inside ``[min_pixels, max_pixels]``, the aspect ratio kept as closely as possible.
    """
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class QwenResized(CoordSystem):
    """Absolute pixels of the image as the Qwen2.5-VL processor resized it (smart resize).

    Defaults are the released Qwen2.5-VL checkpoints' ``preprocessor_config.json``
    (``min_pixels`` 3136, ``max_pixels`` 12845056); a server started with other limits needs
    the same values here.
    """

    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 16384
    factor: int = 28

    def resized(self, width: int, height: int) -> tuple[int, int]:
        h, w = smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)
        return w, h

    def to_model(self, box: Sequence[float], width: int, height: int) -> list[float]:
        rw, rh = self.resized(width, height)
        x1, y1, x2, y2 = box
        return [x1 * rw / width, y1 * rh / height, x2 * rw / width, y2 * rh / height]

    def from_model(self, box: Sequence[float], width: int, height: int) -> list[float]:
        rw, rh = self.resized(width, height)
        x1, y1, x2, y2 = box
        return [x1 * width / rw, y1 * height / rh, x2 * width / rw, y2 * height / rh]


PROMPT_SETS = ("paper", "native")


class Adapter:
    """Prompts and parsers for one model family; subclasses set the class attributes.

    Two prompt sets. ``paper`` (default; Q-Mask paper S1.2, Section 5.1): every family gets the
    S1 wording, R2T ``What is the text at location [x_min, y_min, x_max, y_max]?`` with the box
    in the family's native coordinates, T2R ``Where is "TEXT" located in the image?`` plus one
    fixed JSON format instruction (``format_hint``, the same for every family but for the axis
    order a family writes); only syntax a native interface demands is adapted (Gemini's y-x
    order, DeepSeek-OCR's ``<|ref|>`` grounding prompt). ``native``: the family's own wordings
    (``native_r2t``/``native_t2r``), ocrkit's prompts before the fidelity pass.

    Templates are formatted with the region in model coordinates (``x1 y1 x2 y2``, rounded to
    ``digits`` decimals, integers when 0) or with ``text``. ``yx`` marks families that write
    ``[y_min, x_min, y_max, x_max]`` (Gemini). A template of None: the family has no prompt for
    that task (:meth:`asks` is False; such queries are not sent and score as empty).
    """

    name = "base"
    native_r2t: str | None = R2T_PROMPT
    native_t2r: str | None = T2R_PROMPT
    paper_r2t: str | None = R2T_PROMPT
    paper_t2r: str | None = T2R_PROMPT
    format_hint_text = T2R_FORMAT_HINT
    box_keys: tuple[str, ...] = DEFAULT_BOX_KEYS
    yx = False
    digits = 0

    def __init__(
        self, coords: CoordSystem | None = None, prompts: str = "paper", format_hint: bool = True
    ) -> None:
        if prompts not in PROMPT_SETS:
            raise ValueError(f"prompts must be one of {PROMPT_SETS}, got {prompts!r}")
        if isinstance(format_hint, str):  # from --adapter-opt format_hint=false
            format_hint = format_hint.lower() in {"1", "true", "yes"}
        self.coords = coords or CoordSystem()
        self.prompt_set = prompts
        self.format_hint = bool(format_hint)
        if prompts == "native":
            self.r2t_template, self.t2r_template = self.native_r2t, self.native_t2r
        else:
            self.r2t_template, t2r = self.paper_r2t, self.paper_t2r
            hint = self.format_hint and t2r == T2R_PROMPT
            self.t2r_template = f"{t2r} {self.format_hint_text}" if hint else t2r

    def settings(self) -> dict[str, Any]:
        """What a run records about its prompts (written into the scores JSON)."""
        return {
            "adapter": self.name,
            "prompts": self.prompt_set,
            "format_hint": self.format_hint,
            "r2t_template": self.r2t_template,
            "t2r_template": self.t2r_template,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(coords={self.coords!r})"

    # coordinates -----------------------------------------------------------------------------
    def to_model(self, box: Sequence[float], width: int, height: int) -> list[float]:
        """Absolute ``[x1, y1, x2, y2]`` -> the model's box (its order, its scale)."""
        out = self.coords.to_model(box, width, height)
        return [out[1], out[0], out[3], out[2]] if self.yx else out

    def from_model(self, box: Sequence[float], width: int, height: int) -> list[float]:
        """The model's box -> absolute ``[x1, y1, x2, y2]``."""
        if self.yx:
            box = [box[1], box[0], box[3], box[2]]
        return self.coords.from_model(box, width, height)

    # prompts ---------------------------------------------------------------------------------
    def _fmt(self, v: float) -> str:
        return str(int(round(v))) if self.digits == 0 else f"{v:.{self.digits}f}"

    def prompt(self, query: Query) -> str:
        """The text sent with the image for ``query``."""
        if not self.asks(query):
            raise ValueError(f"adapter {self.name!r} has no {query.task} prompt")
        if query.task == "r2t":
            assert query.box is not None
            b = self.to_model(query.box, query.width, query.height)
            names = ("y1", "x1", "y2", "x2") if self.yx else ("x1", "y1", "x2", "y2")
            return str(self.r2t_template).format(**{n: self._fmt(v) for n, v in zip(names, b)})
        return str(self.t2r_template).format(text=query.text)

    def asks(self, query: Query) -> bool:
        """Whether this family has a prompt for ``query``'s task."""
        template = self.r2t_template if query.task == "r2t" else self.t2r_template
        return template is not None

    # parsers ---------------------------------------------------------------------------------
    def parse_r2t(self, raw: Any) -> str | None:
        """The transcript in an R2T answer; None when there is none."""
        return find_text(raw)

    def parse_t2r(self, raw: Any, width: int, height: int) -> list[Box] | None:
        """Absolute-pixel boxes in a T2R answer; None when there is none."""
        try:
            boxes = self.extract_boxes(raw)
            if not boxes:
                return None
            return [self.from_model(b, width, height) for b in boxes]
        except Exception:  # never raise on a model's answer
            return None

    def extract_boxes(self, raw: Any) -> list[list[float]] | None:
        """Boxes in model coordinates; families with their own markup override this."""
        return find_boxes(raw, self.box_keys)

    def parse(self, query: Query, raw: Any) -> dict[str, Any]:
        """A prediction record for ``query`` from a raw answer (``valid`` False when unreadable)."""
        if query.task == "r2t":
            text = self.parse_r2t(raw)
            record = {"id": query.id, "text": text or "", "valid": text is not None}
        else:
            boxes = self.parse_t2r(raw, query.width, query.height)
            record = {"id": query.id, "boxes": boxes or [], "valid": boxes is not None}
        if isinstance(raw, str) and len(raw) > MAX_ANSWER_CHARS and prepare_answer(raw)[1]:
            record["truncated"] = True  # only the first MAX_ANSWER_CHARS were read
        return record
