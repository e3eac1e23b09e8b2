"""Text protocol: charsets, tokenizer, label normalization and metrics."""

from ocrkit.text.charset import PRESETS, Charset
from ocrkit.text.metrics import SetMetrics, combine, edit_distance, normalized_edit_distance
from ocrkit.text.protocols import PROTOCOLS, LabelProtocol, get_protocol, protocol_for_charset
from ocrkit.text.tokenizer import Decoded, Tokenizer

__all__ = [
    "PRESETS",
    "PROTOCOLS",
    "Charset",
    "Decoded",
    "LabelProtocol",
    "SetMetrics",
    "Tokenizer",
    "combine",
    "edit_distance",
    "get_protocol",
    "normalized_edit_distance",
    "protocol_for_charset",
]
