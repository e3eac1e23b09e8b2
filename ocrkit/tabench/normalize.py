"""String normalization for TABench: R2T answer matching and T2R query canonicalization.

* :func:`normalize_r2t` (scoring, Section 4): NFKC, a small table of CJK punctuation variants
  mapped to one form, zero-width characters removed, whitespace collapsed. Case and punctuation
  are kept: R2T is an exact-match transcription task.
* :func:`canonicalize` (building, Supplementary S1): NFKC, every whitespace removed, English and
  CJK punctuation stripped. Instances of one image whose canonical strings agree become one T2R
  query with several target boxes.
"""

from __future__ import annotations

import re
import unicodedata

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
# Variants NFKC leaves apart; each maps to the form NFKC gives its ASCII/full-width sibling.
CJK_PUNCT_VARIANTS = {
    "\u3002": ".",  # 。 ideographic full stop
    "\uff61": ".",  # ｡ halfwidth ideographic full stop (NFKC -> 。)
    "\u3001": ",",  # 、 ideographic comma
    "\uff64": ",",  # ､ halfwidth ideographic comma
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u300c": '"',  # 「
    "\u300d": '"',  # 」
    "\u300e": '"',  # 『
    "\u300f": '"',  # 』
    "\u2014": "-",  # — em dash
    "\u2013": "-",  # – en dash
    "\u30fb": "\u00b7",  # ・ katakana middle dot
}
_ZW_TABLE = {ord(c): None for c in ZERO_WIDTH}
_PUNCT_TABLE = str.maketrans(CJK_PUNCT_VARIANTS)
_SPACE = re.compile(r"\s+")


def normalize_r2t(text: str) -> str:
    """Normalize an R2T transcript before exact match (prediction and target alike)."""
    text = unicodedata.normalize("NFKC", text or "")
    text = text.translate(_ZW_TABLE).translate(_PUNCT_TABLE)
    return _SPACE.sub(" ", text).strip()


def is_punctuation(char: str) -> bool:
    """Unicode punctuation (categories P*): ASCII ``!"#%&'()*,-./:;?@[]_{}`` and CJK marks."""
    return unicodedata.category(char).startswith("P")


def canonicalize(text: str) -> str:
    """The S1 canonical form of a T2R string: NFKC, no whitespace, no punctuation."""
    text = unicodedata.normalize("NFKC", text or "").translate(_ZW_TABLE)
    return "".join(c for c in text if not c.isspace() and not is_punctuation(c))


def guess_language(text: str) -> str:
    """``zh``/``ja``/``ko`` when the string holds those scripts, else ``en`` (a coarse tag)."""
    for char in text:
        name = unicodedata.name(char, "")
        if name.startswith(("HIRAGANA", "KATAKANA")):
            return "ja"
        if name.startswith("HANGUL"):
            return "ko"
    if any("CJK UNIFIED" in unicodedata.name(c, "") for c in text):
        return "zh"
    return "en"
