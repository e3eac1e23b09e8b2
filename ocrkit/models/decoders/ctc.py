"""CTC decoding (Graves et al., ICML 2006): one linear layer over encoder frames, greedy or
prefix-beam read-out (``beam_width``, :mod:`ocrkit.models.decoders.ctc_beam`).

The class layout is PaddleOCR's and the tokenizer's at once: class 0 is the CTC blank (the
tokenizer's EOS id), characters keep their 1-based tokenizer ids. :meth:`CTCDecoder.generate`
collapses the greedy path (drop repeats, then blanks) into the left-aligned layout every ocrkit
decoder returns (one row per emitted character, then an EOS row), so ``Tokenizer.decode`` reads
CTC, AR and MDiff outputs alike. The sequence confidence is then the product of the emitted
frames' maximum probabilities (PaddleOCR reports their mean).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ocrkit.models.decoders.ctc_beam import collapse_ctc_array, read_ctc
from ocrkit.text.charset import Charset
from ocrkit.text.tokenizer import Tokenizer


def ctc_loss_from_targets(log_probs: torch.Tensor, targets: torch.Tensor, eos: int) -> torch.Tensor:
    """Mean CTC loss of ``log_probs [T, B, K]`` against tokenizer ``targets`` without BOS
    (characters, EOS, PAD): ids ``>= K`` (PAD, specials) and EOS are not characters."""
    num_classes = log_probs.shape[-1]
    is_char = (targets != eos) & (targets < num_classes)
    lengths = is_char.sum(dim=1)
    frames = torch.full((targets.shape[0],), log_probs.shape[0], dtype=torch.long)
    return F.ctc_loss(
        log_probs,
        targets[is_char],
        frames,
        lengths,
        blank=eos,
        reduction="mean",
        zero_infinity=True,
    )


def collapse_ctc(
    probs: torch.Tensor, blank: int = 0, beam_width: int = 1, prune: float = 1e-3
) -> torch.Tensor:
    """The collapsed read-out ``[B, L, K]`` of ``probs [B, T, K]``: greedy for ``beam_width`` 1
    (the frames that emit a character, left-aligned, then one-hot blank rows), else the prefix
    beam search's (:func:`~ocrkit.models.decoders.ctc_beam.collapse_ctc_array` on the
    probabilities)."""
    out = collapse_ctc_array(probs.detach().float().cpu().numpy(), blank, beam_width, prune)
    return torch.from_numpy(out).to(device=probs.device, dtype=probs.dtype)


class CTCDecoder(nn.Module):
    """A linear CTC head over encoder tokens ``[B, T, C]`` (PP-OCR's ``CTCHead``)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        in_features: int,
        max_length: int | None = None,
        beam_width: int = 1,
    ) -> None:
        super().__init__()
        if beam_width < 1:
            raise ValueError(f"beam_width must be at least 1, got {beam_width}")
        self.tokenizer = tokenizer
        self.max_length = max_length or tokenizer.max_length
        self.beam_width = beam_width  # the read-out's default: 1 greedy, more a prefix beam
        self.fc = nn.Linear(in_features, tokenizer.num_classes)

    def logits(self, memory: torch.Tensor) -> torch.Tensor:
        """Frame logits ``[B, T, num_classes]``."""
        return self.fc(memory)

    def loss(
        self, memory: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """CTC loss; ``targets`` from ``tokenizer.encode`` (BOS first, which is dropped)."""
        log_probs = self.logits(memory).float().log_softmax(-1).transpose(0, 1)
        loss = ctc_loss_from_targets(log_probs, targets[:, 1:], self.tokenizer.EOS)
        return loss, {}

    def generate(
        self, memory: torch.Tensor, beam_width: int | None = None, prune: float = 1e-3
    ) -> torch.Tensor:
        """Collapsed read-out ``[B, L, num_classes]`` (:func:`collapse_ctc`): greedy, or with
        ``beam_width > 1`` (default: the decoder's own) the prefix beam search's most likely
        labelling (:func:`~ocrkit.models.decoders.ctc_beam.collapse_beam_array`; ``prune`` drops
        classes below that frame probability)."""
        probs = self.logits(memory).float().softmax(-1)
        return collapse_ctc(probs, self.tokenizer.EOS, self._width(beam_width), prune)

    def read(
        self, memory: torch.Tensor, beam_width: int | None = None, prune: float = 1e-3
    ) -> list[Any]:
        """The :meth:`generate` read-out decoded, each row with its ``char_positions``
        (:func:`~ocrkit.models.decoders.ctc_beam.read_ctc`, shared with ONNX Runtime)."""
        probs = self.logits(memory).float().softmax(-1).cpu().numpy()
        return read_ctc(self.tokenizer, probs, self._width(beam_width), prune)

    def _width(self, beam_width: int | None) -> int:
        return self.beam_width if beam_width is None else beam_width

    @torch.no_grad()
    def remap_charset(self, tokenizer: Tokenizer, init_std: float = 0.02) -> dict[str, Any]:
        """Switch to ``tokenizer``'s charset, keeping the trained rows of every kept character
        (and the blank row) bit-identical; new characters get small random rows.

        Returns ``{"kept": n, "new": [chars]}``.
        """
        old = self.tokenizer.charset
        weight, bias = self.fc.weight, self.fc.bias
        fc = nn.Linear(weight.shape[1], tokenizer.num_classes).to(weight.device, weight.dtype)
        nn.init.trunc_normal_(fc.weight, std=init_std)
        nn.init.zeros_(fc.bias)
        rows = _row_map(old, tokenizer.charset)
        fc.weight[0], fc.bias[0] = weight[0], bias[0]
        for new_id, old_id in rows.items():
            fc.weight[new_id], fc.bias[new_id] = weight[old_id], bias[old_id]
        self.fc, self.tokenizer = fc, tokenizer
        new = [c for c in tokenizer.charset.chars if c not in old]
        return {"kept": len(rows), "new": new}


def _row_map(old: Charset, new: Charset) -> dict[int, int]:
    """New 1-based class id -> old 1-based class id, for characters both charsets hold."""
    return {i + 1: old.index(c) + 1 for i, c in enumerate(new.chars) if c in old}
