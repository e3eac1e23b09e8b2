"""Q-Mask inference: the answer, the query's mask over each image, and boxes read off the mask.

The mask comes from the prefill pass of generation: a forward hook on the language model's
final norm captures the last-layer hidden states of the prompt (the same tensor training uses),
and the CQMD head turns them into mask logits before the first answer token exists. This is the
causal order of the paper (where first, then what) at no extra forward pass.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ocrkit.anchoring.coords import from_model_box, to_model_box
from ocrkit.anchoring.data import build_prompt
from ocrkit.anchoring.spi import PriorItem


@dataclass
class AnchorResult:
    """One query's answer; per image: mask probabilities (image size) and boxes ``[x1, y1, x2, y2]``."""

    answer: str
    heatmaps: list[np.ndarray] = field(default_factory=list)
    boxes: list[list[list[float]]] = field(default_factory=list)
    scores: list[list[float]] = field(default_factory=list)


def boxes_from_mask(
    prob: np.ndarray,
    width: int,
    height: int,
    threshold: float = 0.5,
    merge_cells: int = 1,
    min_cells: int = 2,
) -> tuple[list[list[float]], list[float]]:
    """Boxes (image pixels) of the connected regions of ``prob > threshold`` and their scores.

    ``prob`` is the mask on its own grid (``[h, w]`` cells). Regions closer than ``merge_cells``
    cells are joined first (a dilation), so the glyphs of one word give one box; boxes are the
    extents of the undilated cells of each region, sorted by score (mean probability) descending.
    """
    binary = (prob > threshold).astype(np.uint8)
    if not binary.any():
        return [], []
    grown = binary
    if merge_cells > 0:
        k = 2 * merge_cells + 1
        grown = cv2.dilate(binary, np.ones((k, k), np.uint8))
    count, labels = cv2.connectedComponents(grown, connectivity=8)
    sx, sy = width / prob.shape[1], height / prob.shape[0]
    out = []
    for label in range(1, count):
        cells = (labels == label) & (binary > 0)
        if int(cells.sum()) < min_cells:
            continue
        ys, xs = np.nonzero(cells)
        box = [xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy]
        out.append((float(prob[cells].mean()), [round(v, 1) for v in box]))
    out.sort(key=lambda t: -t[0])
    return [b for _, b in out], [s for s, _ in out]


def overlay_heatmap(
    image: np.ndarray,
    heatmap: np.ndarray,
    boxes: Sequence[Sequence[float]] = (),
    alpha: float = 0.5,
) -> np.ndarray:
    """RGB image with the mask probabilities as a JET heatmap blended over it, boxes in green."""
    heat = cv2.applyColorMap(np.clip(heatmap * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    weight = (alpha * np.clip(heatmap, 0.15, 1.0))[..., None]
    out = (image.astype(np.float32) * (1 - weight) + heat.astype(np.float32) * weight).astype(
        np.uint8
    )
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for x1, y1, x2, y2 in boxes:
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), (0, 255, 0), thickness)
    return out


def save_overlay(path: str | Path, image: np.ndarray, result: AnchorResult, index: int = 0) -> None:
    """Write the Fig. S8-style overlay of image ``index`` as a PNG (atomically)."""
    from ocrkit.utils.io import atomic_path

    rgb = overlay_heatmap(image, result.heatmaps[index], result.boxes[index])
    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"could not encode {path}")
        tmp.write_bytes(data.tobytes())


class QMaskPredictor:
    """Answers queries with a :class:`~ocrkit.anchoring.model.QMask` model (thread-safe)."""

    def __init__(
        self,
        model: Any,
        device: str | None = None,
        max_new_tokens: int = 128,
        threshold: float = 0.5,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.max_new_tokens, self.threshold = int(max_new_tokens), float(threshold)
        self.collate = model.collator(padding_side="left")
        self.adapter = model.box_adapter()  # the model's box convention (model.coords)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> QMaskPredictor:
        from ocrkit.anchoring.model import QMask

        return cls(QMask.from_pretrained(directory), **kwargs)

    @torch.no_grad()
    def anchor(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        query: str,
        prior: Sequence[PriorItem] = (),
        max_new_tokens: int | None = None,
    ) -> AnchorResult:
        """Answer ``query`` about one image (or several) and read its mask and boxes.

        ``query`` is sent as written (boxes in it must already be in the model's convention,
        :meth:`model_box`); ``prior`` boxes are absolute pixels of the first image and are
        converted here. The mask boxes are always absolute pixels.
        """
        images = [images] if isinstance(images, np.ndarray) else list(images)
        if prior:
            h0, w0 = images[0].shape[:2]
            prior = [
                PriorItem(p.text, to_model_box(self.adapter, p.box, w0, h0), p.target)
                for p in prior
            ]
        sample = {
            "images": images,
            "prompt": build_prompt(query, prior),
            "question": query,
            "answer": None,
        }
        with self._lock:
            answer, logits = self._generate(sample, max_new_tokens or self.max_new_tokens)
        result = AnchorResult(answer=answer)
        for image, lg in zip(images, logits):
            h, w = image.shape[:2]
            prob = torch.sigmoid(lg.float()).cpu().numpy()
            boxes, scores = boxes_from_mask(prob, w, h, self.threshold)
            result.heatmaps.append(cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR))
            result.boxes.append(boxes)
            result.scores.append(scores)
        return result

    def _generate(
        self, sample: dict[str, Any], max_new_tokens: int
    ) -> tuple[str, list[torch.Tensor]]:
        from ocrkit.anchoring.model import MODEL_INPUTS

        batch = self.collate([sample])
        batch = {
            k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
        }
        inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
        captured: list[torch.Tensor] = []
        norm = self.model.vlm.model.language_model.norm

        def hook(_module: Any, _args: Any, output: torch.Tensor) -> None:
            if not captured:  # the prefill: every prompt position
                captured.append(output)

        handle = norm.register_forward_hook(hook)
        try:
            tok = self.model.processor.tokenizer
            out = self.model.vlm.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
            )
        finally:
            handle.remove()
        new = out[0, inputs["input_ids"].shape[1] :]
        answer = self.model.processor.tokenizer.decode(new, skip_special_tokens=True).strip()
        logits = self.model.masks_from_hidden(captured[0], batch)
        return answer, logits

    # --- TABench / serving -----------------------------------------------------------------------

    def model_box(self, box: Sequence[float], width: int, height: int) -> list[int]:
        """An absolute box as this model reads it in a prompt (its family's convention)."""
        return to_model_box(self.adapter, box, width, height)

    def absolute_box(self, box: Sequence[float], width: int, height: int) -> list[float]:
        """A box the model wrote, in absolute pixels of the original image."""
        return from_model_box(self.adapter, box, width, height)

    def answer(self, image: np.ndarray, prompt: str) -> str:
        """The answer text only (``ocrkit.tabench.local.LocalModel``)."""
        return self.anchor(image, prompt).answer


class QMaskAnchorer:
    """Q-Mask as a TABench text anchorer: the S1 prompts; T2R boxes from the answer or the mask.

    ``boxes``: ``text`` (parse the JSON boxes of the answer, the model's native output),
    ``mask`` (boxes read off the CQMD mask) or ``text+mask`` (text, else mask when the answer
    holds no readable box).
    """

    BOX_SOURCES = ("text", "mask", "text+mask")

    def __init__(self, predictor: QMaskPredictor, boxes: str = "text") -> None:
        if boxes not in self.BOX_SOURCES:
            raise ValueError(f"boxes must be one of {self.BOX_SOURCES}")
        self.predictor, self.boxes = predictor, boxes

    def r2t(self, image: np.ndarray, box: Sequence[float]) -> str:
        from ocrkit.tabench.parsing import find_text
        from ocrkit.tabench.prompts import r2t_prompt

        h, w = image.shape[:2]
        prompt = r2t_prompt(self.predictor.model_box(box, w, h))
        return find_text(self.predictor.answer(image, prompt)) or ""

    def t2r(self, image: np.ndarray, text: str) -> list[list[float]]:
        from ocrkit.tabench.parsing import find_boxes
        from ocrkit.tabench.prompts import t2r_prompt

        result = self.predictor.anchor(image, t2r_prompt(text))
        from_text = find_boxes(result.answer) or []
        if self.boxes == "mask" or (self.boxes == "text+mask" and not from_text):
            return result.boxes[0]
        h, w = image.shape[:2]
        return [self.predictor.absolute_box(b, w, h) for b in from_text]


def qmask_engine(
    model: str,
    boxes: str = "text",
    device: str | None = None,
    max_new_tokens: int = 128,
    threshold: float = 0.5,
) -> QMaskAnchorer:
    """The ``qmask`` TABench engine: ``--engine qmask --engine-opt model=DIR [boxes=mask]``."""
    predictor = QMaskPredictor.load(
        model, device=device, max_new_tokens=int(max_new_tokens), threshold=float(threshold)
    )
    return QMaskAnchorer(predictor, boxes)
