"""Samples -> Qwen-VL model inputs, answer labels, query-token positions and mask targets.

Text goes through the processor's chat template and the processor itself (image resizing,
patchifying, placeholder expansion), exactly as at inference. The question's and the answer's
character spans in the rendered conversation are mapped to tokens with the tokenizer's offset
mapping, shifted past the expanded image placeholders (the same bookkeeping the processor does
for ``return_assistant_tokens_mask``). Labels cover the answer and the end-of-turn token.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

IGNORE_INDEX = -100
QUERY_SPANS = ("question", "prompt")


def conversation(num_images: int, prompt: str, answer: str | None) -> list[dict[str, Any]]:
    """The chat messages of one sample: the images, then the prompt; the answer as reply."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(num_images)]
    content.append({"type": "text", "text": prompt})
    messages = [{"role": "user", "content": content}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def _shift(char: int, ends: list[int], gained: list[int]) -> int:
    return char + gained[bisect.bisect_right(ends, char)]


def _token_mask(offsets: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Tokens whose character range overlaps ``[start, end)`` (zero-width tokens never do)."""
    s, e = offsets[:, 0], offsets[:, 1]
    return (s < end) & (e > start)


class QMaskCollator:
    """Batches samples from :class:`~ocrkit.anchoring.data.AnchorDataset` (or inference).

    ``query_span``: which tokens are H_q for the mask head: ``"question"`` (the paper's query,
    default) or ``"prompt"`` (the question and the OCR prior before it). ``padding_side``:
    ``right`` for training, ``left`` for batched generation. ``None`` samples (unreadable
    images) are dropped and counted in ``num_skipped``. Samples without ``answer`` (inference)
    get the generation prompt and no labels.
    """

    def __init__(
        self, processor: Any, query_span: str = "question", padding_side: str = "right"
    ) -> None:
        if query_span not in QUERY_SPANS:
            raise ValueError(f"query_span must be one of {QUERY_SPANS}")
        if padding_side not in ("left", "right"):
            raise ValueError("padding_side must be left (generation) or right (training)")
        self.processor, self.query_span, self.padding_side = processor, query_span, padding_side
        tok = processor.tokenizer
        self.end_token = "<|im_end|>"
        self.end_id = tok.convert_tokens_to_ids(self.end_token)

    def _spans(
        self, text: str, sample: dict[str, Any]
    ) -> tuple[tuple[int, int], tuple[int, int] | None]:
        prompt, question, answer = sample["prompt"], sample["question"], sample.get("answer")
        anchor = text.rfind("<|vision_end|>")
        p_start = text.find(prompt, max(anchor, 0))
        if p_start < 0:
            raise ValueError("the prompt is not in the rendered chat template; check the template")
        p_end = p_start + len(prompt)
        if not prompt.endswith(question):
            raise ValueError("the prompt must end with the question")
        q_span = (p_start, p_end) if self.query_span == "prompt" else (p_end - len(question), p_end)
        a_span = None
        if answer is not None:
            a_start = text.find(answer, p_end)
            if a_start < 0:
                raise ValueError("the answer is not in the rendered chat template")
            a_end = a_start + len(answer)
            if text.startswith(self.end_token, a_end):
                a_end += len(self.end_token)
            a_span = (a_start, a_end)
        return q_span, a_span

    def __call__(self, samples: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
        kept = [s for s in samples if s is not None]
        if not kept:
            raise ValueError("a batch with no readable sample")
        training = all(s.get("answer") is not None for s in kept)
        texts, images, spans, masks = [], [], [], []
        for s in kept:
            answer = s.get("answer") if training else None
            text = self.processor.apply_chat_template(
                conversation(len(s["images"]), s["prompt"], answer),
                tokenize=False,
                add_generation_prompt=answer is None,
            )
            texts.append(text)
            images.extend(im if im.flags.writeable else im.copy() for im in s["images"])
            spans.append(self._spans(text, {**s, "answer": answer}))
            for m in s.get("masks") or [None] * len(s["images"]):
                masks.append(None if m is None else torch.from_numpy(np.ascontiguousarray(m)))
        enc = self.processor(
            text=texts,
            images=images,
            padding=True,
            padding_side=self.padding_side,
            return_tensors="pt",
            return_offsets_mapping=True,
            return_text_replacement_offsets=True,
        )
        offsets = enc.pop("offset_mapping")
        replacements = enc.pop("text_replacement_offsets")
        input_ids = enc["input_ids"]
        query_mask = torch.zeros_like(input_ids, dtype=torch.bool)
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        for b, ((qs, qe), a_span) in enumerate(spans):
            ends = [r["span"][1] for r in replacements[b]]
            gained = [0] + [r["new_span"][1] - r["span"][1] for r in replacements[b]]
            valid = enc["attention_mask"][b].bool()
            q = _token_mask(offsets[b], _shift(qs, ends, gained), _shift(qe, ends, gained)) & valid
            query_mask[b] = q
            if a_span is not None:
                a = _token_mask(
                    offsets[b], _shift(a_span[0], ends, gained), _shift(a_span[1], ends, gained)
                )
                a &= valid
                labels[b, a] = input_ids[b, a]
        batch: dict[str, Any] = dict(enc)
        batch.update(
            query_mask=query_mask,
            masks=masks,
            ids=[s.get("id", "") for s in kept],
            num_skipped=len(samples) - len(kept),
        )
        if training:
            batch["labels"] = labels
        return batch
