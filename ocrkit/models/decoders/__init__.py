"""Text decoders: read encoder tokens ``[B, N, C]`` into character probabilities.

A decoder is built as ``DECODERS.build(name, tokenizer=..., in_features=C, **kwargs)`` and offers
the two methods the :class:`~ocrkit.models.Recognizer` calls, so decoders are interchangeable:

- ``loss(memory, targets) -> (loss, logs)`` with ``targets = tokenizer.encode(labels)``;
- ``generate(memory) -> probs [B, T, tokenizer.num_classes]`` (read out by ``Tokenizer.decode``).

``ctc`` (a linear CTC head, PP-OCR's) returns its collapsed greedy path in that same layout.
Entries are registered lazily: a decoder's module is imported when it is first built (the CTC
head needs neither timm nor the transformer layers).
"""

from __future__ import annotations

from typing import Any

from ocrkit.registry import Registry
from ocrkit.utils.lazy import lazy_exports

_PACKAGE = "ocrkit.models.decoders"
DECODERS: Registry[Any] = Registry("decoder")
DECODERS.register_lazy("ar", f"{_PACKAGE}.ar:ARDecoder")
DECODERS.register_lazy("mdiff", f"{_PACKAGE}.mdiff:MDiffDecoder")
DECODERS.register_lazy("ctc", f"{_PACKAGE}.ctc:CTCDecoder")

_EXPORTS = {
    "ARDecoder": f"{_PACKAGE}.ar",
    "CTCDecoder": f"{_PACKAGE}.ctc",
    "MDiffDecoder": f"{_PACKAGE}.mdiff",
}
__getattr__, __dir__ = lazy_exports(_PACKAGE, _EXPORTS, globals())

__all__ = ["DECODERS", "ARDecoder", "CTCDecoder", "MDiffDecoder"]
