"""What the renderer writes: dictionary words from ``wordfreq`` mixed with random strings.

``wordfreq`` ships its frequency lists inside the package, so ``top_n_list("en" | "zh", n)``
works offline. Dictionary words get random casing; random strings cover digits, mixed case and
punctuation that a lexicon never produces. Everything is drawn from a caller's
``numpy.random.Generator``, so a word depends only on that generator's seed.
"""

from __future__ import annotations

import functools
import string
import unicodedata
from dataclasses import dataclass

import numpy as np

LANGS = ("en", "zh", "mixed")
PRINTABLE = string.digits + string.ascii_letters + string.punctuation
# Alphabets of the random strings and their relative weights.
RANDOM_ALPHABETS = {
    "digits": (string.digits, 0.35),
    "letters": (string.ascii_letters, 0.25),
    "alnum": (string.digits + string.ascii_letters, 0.25),
    "printable": (PRINTABLE, 0.15),
}


@dataclass(frozen=True)
class WordConfig:
    """Where words come from and in which proportions.

    ``random_ratio`` of samples are random strings (Latin) or random character runs (Chinese);
    the rest are the ``vocab_size`` most frequent ``wordfreq`` words, drawn uniformly (as MJSynth
    does with its lexicon). ``zh_ratio`` is the Chinese share when ``lang="mixed"``.
    """

    lang: str = "en"
    vocab_size: int = 50_000
    random_ratio: float = 0.3
    zh_ratio: float = 0.5
    upper_ratio: float = 0.15
    title_ratio: float = 0.25
    min_len: int = 1
    max_len: int = 16

    def __post_init__(self) -> None:
        if self.lang not in LANGS:
            raise ValueError(f"unknown lang {self.lang!r}; expected one of {LANGS}")
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got {self.min_len}, {self.max_len}")
        for name in ("random_ratio", "zh_ratio", "upper_ratio", "title_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def _is_cjk(char: str) -> bool:
    return unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH")


@functools.lru_cache(maxsize=8)
def wordfreq_words(lang: str, n: int) -> tuple[str, ...]:
    """The ``n`` most frequent ``wordfreq`` words of ``lang`` that a renderer can draw.

    English keeps words of printable ASCII only; Chinese keeps words made of Han characters.
    """
    from wordfreq import top_n_list

    words = top_n_list(lang, n)
    if lang == "zh":
        return tuple(w for w in words if w and all(_is_cjk(c) for c in w))
    return tuple(w for w in words if w and all(c in PRINTABLE for c in w))


@functools.lru_cache(maxsize=8)
def han_characters(n: int) -> str:
    """Distinct Han characters of the ``n`` most frequent Chinese words, in frequency order."""
    return "".join(dict.fromkeys("".join(wordfreq_words("zh", n))))


def random_string(rng: np.random.Generator, alphabet: str, min_len: int, max_len: int) -> str:
    """A string of ``min_len..max_len`` characters drawn uniformly from ``alphabet``."""
    length = int(rng.integers(min_len, max_len + 1))
    chars = list(alphabet)
    return "".join(chars[i] for i in rng.integers(0, len(chars), size=length))


class WordSource:
    """Draws words for the renderer: ``WordSource(WordConfig(lang="mixed")).sample(rng)``."""

    def __init__(self, config: WordConfig | None = None) -> None:
        self.config = config or WordConfig()
        c = self.config
        self._latin = wordfreq_words("en", c.vocab_size) if c.lang != "zh" else ()
        self._zh = wordfreq_words("zh", c.vocab_size) if c.lang != "en" else ()
        self._han = han_characters(c.vocab_size) if c.lang != "en" else ""
        names = list(RANDOM_ALPHABETS)
        weights = np.array([RANDOM_ALPHABETS[k][1] for k in names])
        self._alphabets = [RANDOM_ALPHABETS[k][0] for k in names]
        self._alphabet_p = weights / weights.sum()

    @property
    def needs_cjk(self) -> bool:
        """Whether this source can produce Chinese text (the renderer then needs a CJK font)."""
        return self.config.lang != "en"

    def sample(self, rng: np.random.Generator) -> str:
        c = self.config
        zh = c.lang == "zh" or (c.lang == "mixed" and rng.random() < c.zh_ratio)
        is_random = rng.random() < c.random_ratio
        if zh:
            if is_random:
                return random_string(rng, self._han, c.min_len, min(c.max_len, 8))
            return self._pick(rng, self._zh)
        if is_random:
            alphabet = self._alphabets[rng.choice(len(self._alphabets), p=self._alphabet_p)]
            return random_string(rng, alphabet, c.min_len, min(c.max_len, 12))
        return self._case(rng, self._pick(rng, self._latin))

    def _pick(self, rng: np.random.Generator, words: tuple[str, ...]) -> str:
        c = self.config
        for _ in range(100):
            word = words[int(rng.integers(len(words)))]
            if c.min_len <= len(word) <= c.max_len:
                return word
        raise ValueError(f"no word of length {c.min_len}..{c.max_len} in the vocabulary")

    def _case(self, rng: np.random.Generator, word: str) -> str:
        u = rng.random()
        if u < self.config.upper_ratio:
            return word.upper()
        if u < self.config.upper_ratio + self.config.title_ratio:
            return word[:1].upper() + word[1:]
        return word
