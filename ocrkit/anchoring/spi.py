"""Stochastic Prior Injection (SPI; Q-Mask paper, Sec. 5 and Supplementary S2).

Training prompts may carry an *OCR prior*: text instances of the image (transcript + box) as a
text block before the question, the way an upstream OCR engine's output would be given. Its
reliability ``gamma`` is drawn per sample from {1.0, 0.5, 0.0}:

* ``gamma = 1.0``: the prior is exact;
* ``0 < gamma < 1``: each instance is corrupted with probability ``1 - gamma`` by one operation
  of ``F``: delete it (p = 0.477), jitter its box (p = 0.234) or perturb its transcript
  (p = 0.289);
* ``gamma = 0.0``: no prior.

Box jitter: an amplitude ``r ~ U[0.12, 0.17]`` is drawn per box and each side moves by
``U(-r, r)`` times the box width (x sides) or height (y sides); the mean IoU with the original
box is about 0.76, the figure the paper reports. (Moving every side by exactly ``+-r`` would give
about 0.57, so the paper's range is read as the amplitude.)
Transcript perturbation: a corruption ratio ``rho ~ U[0.2, 0.6]`` of the length gives
``n = max(1, round(rho * len))`` edits, each a deletion with probability 0.7256 and an insertion
otherwise (0.2744): the shares are read *per edit* (``share_per: edit``), the way shares of
character-level OCR errors are counted; ``share_per: transcript`` draws one kind for all the
edits of a transcript instead (the other reading of the paper's sentence; see docs/qmask.md).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

OPS = ("delete", "jitter", "perturb")
PRIOR_HEADER = "OCR prior (may be incomplete or wrong):"
INSERT_ALPHABET = string.ascii_letters + string.digits
SHARE_PER = ("edit", "transcript")


@dataclass
class SPIConfig:
    """SPI settings; the defaults are the paper's numbers (``enabled=False`` switches SPI off)."""

    enabled: bool = True
    gammas: list = field(default_factory=lambda: [1.0, 0.5, 0.0])
    gamma_probs: list | None = None  # None: uniform over gammas (the paper gives no split)
    op_probs: dict = field(
        default_factory=lambda: {"delete": 0.477, "jitter": 0.234, "perturb": 0.289}
    )
    jitter_range: list = field(default_factory=lambda: [0.12, 0.17])
    perturb_range: list = field(default_factory=lambda: [0.2, 0.6])
    delete_share: float = 0.7256  # of transcript edits; insertions get the rest (0.2744)
    share_per: str = "edit"  # edit: each edit draws its kind | transcript: one kind per string
    max_items: int = 20  # prior lines per prompt (targets are always kept)

    def __post_init__(self) -> None:
        if set(self.op_probs) != set(OPS):
            raise ValueError(f"spi.op_probs needs exactly the keys {OPS}")
        if abs(sum(self.op_probs.values()) - 1.0) > 1e-6:
            raise ValueError("spi.op_probs must sum to 1")
        if self.share_per not in SHARE_PER:
            raise ValueError(f"spi.share_per must be one of {SHARE_PER}")
        if self.gamma_probs is not None and len(self.gamma_probs) != len(self.gammas):
            raise ValueError("spi.gamma_probs needs one probability per gamma")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PriorItem:
    """One OCR-prior line: a transcript and its axis-aligned box in absolute pixels."""

    text: str
    box: list[float]
    target: bool = False  # the region the question is about (kept when capping)


def jitter_box(
    box: Sequence[float], rng: np.random.Generator, ratio_range: Sequence[float] = (0.12, 0.17)
) -> list[float]:
    """Each side moved by ``U(-r, r)`` of the box size, ``r ~ U[ratio_range]``; stays ordered."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    r = rng.uniform(*ratio_range)
    d = rng.uniform(-r, r, 4) * np.array([w, h, w, h])
    nx1, ny1, nx2, ny2 = x1 + d[0], y1 + d[1], x2 + d[2], y2 + d[3]
    return [min(nx1, nx2), min(ny1, ny2), max(nx1, nx2), max(ny1, ny2)]


def perturb_transcript(
    text: str,
    rng: np.random.Generator,
    ratio_range: Sequence[float] = (0.2, 0.6),
    delete_share: float = 0.7256,
    alphabet: str = INSERT_ALPHABET,
    share_per: str = "edit",
) -> tuple[str, int, int]:
    """``(new_text, deletions, insertions)``: ``round(rho * len)`` random character edits, each
    a deletion with probability ``delete_share`` (``share_per="edit"``), or all deletions with
    that probability and all insertions otherwise (``"transcript"``)."""
    chars = list(text)
    n = max(1, int(round(rng.uniform(*ratio_range) * len(chars))))
    if share_per == "transcript":
        n_del = n if rng.random() < delete_share else 0
    else:
        n_del = int(rng.binomial(n, delete_share))
    if n_del >= len(chars):  # never delete every character (only 1-character strings)
        n_del = len(chars) - 1
    n_ins = n - n_del
    for _ in range(n_del):
        chars.pop(int(rng.integers(len(chars))))
    pool = alphabet + "".join(sorted(set(text) - set(alphabet) - {" "}))
    for _ in range(n_ins):
        chars.insert(int(rng.integers(len(chars) + 1)), pool[int(rng.integers(len(pool)))])
    return "".join(chars), n_del, n_ins


def corrupt(
    item: PriorItem, rng: np.random.Generator, config: SPIConfig
) -> tuple[PriorItem | None, str]:
    """Apply one operation of ``F`` (drawn with ``config.op_probs``); None when deleted."""
    probs = np.array([config.op_probs[o] for o in OPS], float)
    op = OPS[int(rng.choice(len(OPS), p=probs / probs.sum()))]
    if op == "delete":
        return None, op
    if op == "jitter":
        return PriorItem(item.text, jitter_box(item.box, rng, config.jitter_range), item.target), op
    text, _, _ = perturb_transcript(
        item.text, rng, config.perturb_range, config.delete_share, share_per=config.share_per
    )
    return PriorItem(text, list(item.box), item.target), op


def draw_gamma(rng: np.random.Generator, config: SPIConfig) -> float:
    p = None if config.gamma_probs is None else np.asarray(config.gamma_probs, float)
    return float(config.gammas[int(rng.choice(len(config.gammas), p=p))])


def select_items(
    items: Sequence[PriorItem], rng: np.random.Generator, max_items: int
) -> list[PriorItem]:
    """At most ``max_items`` lines (targets first, then random others), in reading order."""
    targets = [i for i in items if i.target]
    others = [i for i in items if not i.target]
    room = max(0, max_items - len(targets))
    if len(others) > room:
        keep = rng.choice(len(others), size=room, replace=False)
        others = [others[int(k)] for k in sorted(keep)]
    chosen = targets + others
    return sorted(chosen, key=lambda i: (round(i.box[1]), round(i.box[0])))


def inject_prior(
    items: Sequence[PriorItem],
    rng: np.random.Generator,
    config: SPIConfig,
    gamma: float | None = None,
) -> tuple[list[PriorItem], dict[str, Any]]:
    """The prior lines for one sample and what was done (``gamma``, op counts)."""
    gamma = draw_gamma(rng, config) if gamma is None else float(gamma)
    info: dict[str, Any] = {"gamma": gamma, "ops": {o: 0 for o in OPS}}
    if not config.enabled or gamma <= 0.0 or not items:
        return [], info
    out = []
    for item in select_items(items, rng, config.max_items):
        if gamma < 1.0 and rng.random() < 1.0 - gamma:
            new, op = corrupt(item, rng, config)
            info["ops"][op] += 1
            if new is None:
                continue
            item = new
        out.append(item)
    return out, info


def format_prior(items: Sequence[PriorItem]) -> str:
    """The prior as prompt text (one ``[x1, y1, x2, y2] text`` line each); '' when empty."""
    if not items:
        return ""
    lines = [PRIOR_HEADER]
    for it in items:
        x1, y1, x2, y2 = (int(round(v)) for v in it.box)
        lines.append(f"[{x1}, {y1}, {x2}, {y2}] {it.text}")
    return "\n".join(lines) + "\n"
