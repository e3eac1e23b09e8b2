"""Tokenizer: text <-> token ids with the special tokens every ocrkit decoder needs.

Id layout (one layout for all decoders, so checkpoints and heads agree)::

    0            EOS   end of sequence; also the first output class
    1 .. N       the charset's characters
    N + 1        BOS   start token of autoregressive decoding (never predicted)
    N + 2        MASK  the absorbing token of mask diffusion (never predicted)
    N + 3        PAD   padding after EOS (never predicted, ignored by losses)

Decoders predict ``num_classes = N + 1`` classes (EOS and the characters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ocrkit.text.charset import Charset

if TYPE_CHECKING:
    import torch


@dataclass
class Decoded:
    """One read-out row; ``char_positions``: each character's centre along the model input,
    0..1 (set by CTC read-outs, empty for the others)."""

    text: str
    confidence: float
    char_confidences: list[float]
    char_positions: list[float] = field(default_factory=list)


class Tokenizer:
    EOS = 0

    def __init__(self, charset: Charset, max_length: int = 25) -> None:
        self.charset = charset
        self.max_length = max_length
        n = len(charset)
        self.BOS, self.MASK, self.PAD = n + 1, n + 2, n + 3

    @property
    def num_classes(self) -> int:
        """Output classes of a decoder head: EOS plus the characters."""
        return len(self.charset) + 1

    @property
    def vocab_size(self) -> int:
        """Input embedding rows: every id including BOS, MASK and PAD."""
        return len(self.charset) + 4

    def text_to_ids(self, text: str) -> list[int]:
        """Character ids of ``text`` (1-based); characters outside the charset are dropped."""
        return [self.charset.index(c) + 1 for c in text if c in self.charset]

    def encode(
        self, labels: Sequence[str], device: torch.device | str | None = None, bos: bool = True
    ) -> torch.Tensor:
        """``[B, max_length + 1 (+1 with BOS)]``: (BOS) characters EOS PAD..., truncated to fit."""
        import torch

        rows = []
        for label in labels:
            ids = self.text_to_ids(label)[: self.max_length] + [self.EOS]
            ids = ([self.BOS] if bos else []) + ids
            rows.append(ids)
        width = self.max_length + 1 + int(bos)
        out = torch.full((len(rows), width), self.PAD, dtype=torch.long)
        for i, ids in enumerate(rows):
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out.to(device) if device is not None else out

    def ids_to_text(self, ids: Sequence[int]) -> str:
        """Text of character ids up to the first EOS; special ids are skipped."""
        chars = []
        n = len(self.charset)
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if 1 <= i <= n:
                chars.append(self.charset.chars[i - 1])
        return "".join(chars)

    def decode(self, probs: torch.Tensor | np.ndarray) -> list[Decoded]:
        """Greedy read-out of ``[B, T, num_classes]`` probabilities (a tensor or an array).

        Stops at the first EOS; the sequence confidence is the product of the character
        probabilities and the EOS probability (as PARSeq reports it).
        """
        if not isinstance(probs, np.ndarray):
            probs = probs.detach().float().cpu().numpy()
        probs = probs.astype(np.float32, copy=False)
        ids, conf = probs.argmax(-1), probs.max(-1)
        results = []
        for row_ids, row_conf in zip(ids.tolist(), conf.tolist()):
            chars, char_conf = [], []
            end_conf = 1.0
            for i, c in zip(row_ids, row_conf):
                if i == self.EOS:
                    end_conf = c
                    break
                chars.append(self.charset.chars[i - 1])
                char_conf.append(c)
            total = end_conf
            for c in char_conf:
                total *= c
            results.append(Decoded("".join(chars), float(total), char_conf))
        return results
