"""Character sets: the alphabet a recognizer reads and a benchmark protocol scores on."""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PRESETS: dict[str, str] = {
    "36": string.digits + string.ascii_lowercase,
    "62": string.digits + string.ascii_lowercase + string.ascii_uppercase,
    # printable ASCII without whitespace: digits, letters, punctuation (PARSeq's "94")
    "94": string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation,
    # "94" plus the space: Latin text lines (ocrkit's default recognizer)
    "95": string.digits
    + string.ascii_lowercase
    + string.ascii_uppercase
    + string.punctuation
    + " ",
}


@dataclass(frozen=True)
class Charset:
    """An ordered set of characters (any Unicode), with a name for reports."""

    chars: tuple[str, ...]
    name: str = "custom"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            dupes = sorted({c for c in self.chars if self.chars.count(c) > 1})
            raise ValueError(f"charset {self.name!r} repeats characters: {dupes}")
        if any(len(c) != 1 for c in self.chars):
            raise ValueError(f"charset {self.name!r} entries must be single characters")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_string(cls, chars: Iterable[str], name: str = "custom") -> Charset:
        """Build from characters, keeping first occurrences in order."""
        return cls(tuple(dict.fromkeys(chars)), name)

    @classmethod
    def preset(cls, name: str) -> Charset:
        """One of ``36`` (0-9a-z), ``62`` (cased), ``94`` (printable ASCII without space) or
        ``95`` (printable ASCII with space)."""
        if name not in PRESETS:
            raise KeyError(f"unknown charset preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(tuple(PRESETS[name]), name)

    @classmethod
    def from_file(cls, path: str | Path) -> Charset:
        """Read a charset file: one character per line (PaddleOCR dicts) or one line of them."""
        path = Path(path)
        lines = path.read_text(encoding="utf-8").splitlines()
        lines = [ln.rstrip("\r\n") for ln in lines if ln.rstrip("\r\n")]
        if len(lines) == 1 and len(lines[0]) > 1:
            chars: list[str] = list(lines[0])
        else:
            chars = [ln if len(ln) == 1 else ln.strip() for ln in lines]
        return cls.from_string([c for c in chars if c], name=path.stem)

    @classmethod
    def resolve(cls, spec: str | Charset) -> Charset:
        """A preset name, a path to a charset file, or a Charset."""
        if isinstance(spec, Charset):
            return spec
        if spec in PRESETS:
            return cls.preset(spec)
        if Path(spec).is_file():
            return cls.from_file(spec)
        raise ValueError(f"charset {spec!r} is neither a preset {sorted(PRESETS)} nor a file")

    @property
    def case_sensitive(self) -> bool:
        """True when the charset holds both cases of some letter."""
        return any(c.lower() != c and c.lower() in self._index for c in self.chars)

    @property
    def lowercase_only(self) -> bool:
        return all(c == c.lower() for c in self.chars)

    @property
    def is_ascii(self) -> bool:
        return all(ord(c) < 128 for c in self.chars)

    def index(self, char: str) -> int:
        return self._index[char]

    def __contains__(self, char: object) -> bool:
        return char in self._index

    def __len__(self) -> int:
        return len(self.chars)

    def __iter__(self) -> Iterator[str]:
        return iter(self.chars)

    def __str__(self) -> str:
        return "".join(self.chars)

    def to_json(self) -> dict:
        return {"name": self.name, "chars": "".join(self.chars)}

    @classmethod
    def from_json(cls, data: dict) -> Charset:
        return cls(tuple(data["chars"]), data.get("name", "custom"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Charset:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
