"""Text decoders: read encoder tokens ``[B, N, C]`` into character probabilities.

A decoder is built as ``DECODERS.build(name, tokenizer=..., in_features=C, **kwargs)`` and offers
the two methods the :class:`~ocrkit.models.Recognizer` calls, so decoders are interchangeable:

- ``loss(memory, targets) -> (loss, logs)`` with ``targets = tokenizer.encode(labels)``;
- ``generate(memory) -> probs [B, T, tokenizer.num_classes]`` (read out by ``Tokenizer.decode``).

``ctc`` (a linear CTC head, PP-OCR's) returns its collapsed greedy path in that same layout.
"""

from __future__ import annotations

from torch import nn

from ocrkit.models.decoders.ar import ARDecoder
from ocrkit.models.decoders.ctc import CTCDecoder
from ocrkit.models.decoders.mdiff import MDiffDecoder
from ocrkit.registry import Registry

DECODERS: Registry[nn.Module] = Registry("decoder")
DECODERS.register("ar")(ARDecoder)
DECODERS.register("mdiff")(MDiffDecoder)
DECODERS.register("ctc")(CTCDecoder)

__all__ = ["DECODERS", "ARDecoder", "CTCDecoder", "MDiffDecoder"]
