"""Label protocols: how ground truth and predictions are normalized before scoring.

The named protocols follow the standard STR benchmark practice of PARSeq (Bautista & Atienza,
ECCV 2022, Sec. 4) as also used by OpenOCR, in this order:

1. whitespace removed;
2. NFKD and ASCII folding when the charset is ASCII ("é" -> "e");
3. labels longer than ``max_length`` (25) dropped, *before* charset adaptation;
4. charset adaptation: lowercase for a case-insensitive charset, unsupported characters dropped;
5. labels empty after that dropped.

Predictions go through steps 1, 2 and 4 (never dropped), so a prediction file from any model is
scored the same way. ``raw`` compares strings exactly as written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ocrkit.registry import Registry
from ocrkit.text.charset import Charset

PROTOCOLS: Registry[LabelProtocol] = Registry("protocol")

DROP_TOO_LONG = "too_long"
DROP_EMPTY = "empty_after_normalization"
DROP_UNLABELED = "unlabeled"


@dataclass(frozen=True)
class LabelProtocol:
    """A named normalization of labels and predictions for one charset."""

    name: str
    charset: Charset | None  # None: keep every character (the ``raw`` protocol)
    max_length: int | None = 25
    remove_whitespace: bool = True
    collapse_whitespace: bool = False  # with whitespace kept: runs of it -> one space, trimmed
    fold_to_ascii: bool = True
    lowercase: bool = False

    def __post_init__(self) -> None:
        pattern = None
        if self.charset is not None:
            pattern = re.compile(f"[^{re.escape(str(self.charset))}]")
        object.__setattr__(self, "_unsupported", pattern)

    def clean(self, text: str) -> str:
        """Steps 1-2: whitespace removal and ASCII folding."""
        if self.remove_whitespace:
            text = "".join(text.split())
        elif self.collapse_whitespace:
            text = " ".join(text.split())
        if self.fold_to_ascii:
            text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        return text

    def adapt(self, text: str) -> str:
        """Step 4: charset adaptation (case folding, unsupported characters dropped)."""
        if self.lowercase:
            text = text.lower()
        if self._unsupported is not None:
            text = self._unsupported.sub("", text)
        return text

    def normalize_label(self, label: str | None) -> tuple[str | None, str | None]:
        """Return ``(label, None)`` for a kept label or ``(None, reason)`` for a dropped one."""
        if label is None:
            return None, DROP_UNLABELED
        text = self.clean(label)
        if self.max_length is not None and len(text) > self.max_length:
            return None, DROP_TOO_LONG
        text = self.adapt(text)
        if not text:
            return None, DROP_EMPTY
        return text, None

    def normalize_prediction(self, text: str) -> str:
        return self.adapt(self.clean(text))

    def describe(self) -> str:
        chars = self.charset.name if self.charset is not None else "any"
        parts = [f"charset {chars}", f"max length {self.max_length}"]
        if self.lowercase:
            parts.append("case-insensitive")
        if self.fold_to_ascii:
            parts.append("NFKD->ASCII")
        if self.remove_whitespace:
            parts.append("whitespace removed")
        return f"{self.name} ({', '.join(parts)})"


def _charset_protocol(name: str, preset: str, **overrides) -> LabelProtocol:
    charset = Charset.preset(preset)
    options = dict(max_length=25, lowercase=not charset.case_sensitive)
    options.update(overrides)
    return LabelProtocol(name=name, charset=charset, **options)


@PROTOCOLS.register("parseq36")
def parseq36(**overrides) -> LabelProtocol:
    """Case-insensitive 0-9a-z: the standard STR benchmark protocol."""
    return _charset_protocol("parseq36", "36", **overrides)


@PROTOCOLS.register("cased62")
def cased62(**overrides) -> LabelProtocol:
    """Case-sensitive letters and digits."""
    return _charset_protocol("cased62", "62", **overrides)


@PROTOCOLS.register("full94")
def full94(**overrides) -> LabelProtocol:
    """Case-sensitive printable ASCII with punctuation."""
    return _charset_protocol("full94", "94", **overrides)


@PROTOCOLS.register("full95")
def full95(**overrides) -> LabelProtocol:
    """Printable ASCII with the space kept (runs of whitespace become one space): a training
    protocol for text lines; benchmarks score words with the protocols above."""
    return _charset_protocol(
        "full95", "95", **{"remove_whitespace": False, "collapse_whitespace": True, **overrides}
    )


@PROTOCOLS.register("raw")
def raw(**overrides) -> LabelProtocol:
    """Exact strings: no folding, no filtering, no length limit."""
    options = dict(max_length=None, remove_whitespace=False, fold_to_ascii=False)
    options.update(overrides)
    return LabelProtocol(name="raw", charset=None, **options)


def get_protocol(spec: str | LabelProtocol, **overrides) -> LabelProtocol:
    """A protocol by name (``parseq36``, ``cased62``, ``full94``, ``raw``) or as given."""
    if isinstance(spec, LabelProtocol):
        return spec
    return PROTOCOLS.build(spec, **overrides)


def protocol_for_charset(charset: Charset, max_length: int = 25) -> LabelProtocol:
    """The training-label protocol matching a model's own charset (any Unicode)."""
    return LabelProtocol(
        name=f"charset:{charset.name}",
        charset=charset,
        max_length=max_length,
        fold_to_ascii=charset.is_ascii,
        lowercase=not charset.case_sensitive and charset.lowercase_only,
    )
