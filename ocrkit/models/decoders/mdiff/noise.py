"""MDiff4STR training noise: the six mask-noising strategies and token-replacement noise.

Du et al., "MDiff4STR: Mask Diffusion Model for Scene Text Recognition" (AAAI 2026,
arXiv 2512.01422), §Method: the six noising strategies (they close the gap between the random
masks of vanilla mask diffusion and the states the samplers meet at inference) and
token-replacement noise (against over-confident mistakes). A label of ``n`` characters is
``L' = n + 1`` tokens (characters + EOS); a strategy returns a boolean mask over the slots
(True = replaced by MASK, predicted, in the loss), never beyond ``L'``. Slots after ``L'`` are
always MASK at the input and never in the loss.

Each strategy is vectorized over rows: ``lengths`` is ``L'`` per row (``[N]``, masks
``[N, width]``) or one ``int`` (mask ``[L']``). Every random draw goes through a
``torch.Generator`` (``None``: the global RNG, which the trainer seeds and checkpoints), so a
seeded generator reproduces the masks exactly; the drawn quantities can also be fixed by
keyword for hand-worked cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ocrkit.registry import Registry

NOISE_STRATEGIES: Registry[torch.Tensor] = Registry("noise strategy")
STRATEGIES = ("full", "left_to_right", "right_to_left", "block", "cloze", "random")
# strategies 2-5 need two characters; shorter labels use the random strategy instead
NEEDS_TWO_CHARS = ("left_to_right", "right_to_left", "block", "cloze")

Lengths = torch.Tensor | int
Draw = torch.Tensor | int | None


def uniform_int(
    low: torch.Tensor | int, high: torch.Tensor | int, n: int, generator: torch.Generator | None
) -> torch.Tensor:
    """``[n]`` integers uniform on ``[low, high]`` (both included; bounds may differ per row)."""
    low, high = torch.as_tensor(low), torch.as_tensor(high)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.minimum(low + (u * (high - low + 1)).floor().long(), high)


def _rows(lengths: Lengths, width: int | None, minimum: int, name: str):
    """``(L' [N], positions [1, width], single)`` with ``L' >= minimum`` checked."""
    single = isinstance(lengths, int)
    lengths = torch.tensor([lengths]) if single else lengths.long().cpu()
    if len(lengths) and int(lengths.min()) < minimum:
        raise ValueError(f"{name} noise needs L' >= {minimum} tokens, got {lengths.tolist()}")
    width = int(lengths.max()) if width is None and len(lengths) else (width or 0)
    return lengths, torch.arange(width)[None], single


def _out(mask: torch.Tensor, single: bool) -> torch.Tensor:
    return mask[0] if single else mask


def _given(value: Draw, n: int) -> torch.Tensor:
    return torch.as_tensor(value).long().expand(n)


@NOISE_STRATEGIES.register("full")
def full_mask(
    lengths: Lengths, generator: torch.Generator | None = None, *, width: int | None = None
) -> torch.Tensor:
    """(1) Full mask (§Method, noising strategies): every token masked, the state of parallel
    decoding."""
    lengths, pos, single = _rows(lengths, width, 1, "full")
    return _out(pos < lengths[:, None], single)


@NOISE_STRATEGIES.register("left_to_right")
def left_to_right_mask(
    lengths: Lengths,
    generator: torch.Generator | None = None,
    *,
    width: int | None = None,
    visible: Draw = None,
) -> torch.Tensor:
    """(2) Left-to-right (§Method, noising strategies): the first ``s ~ U[1, L'-1]`` tokens
    visible, the rest masked: the state an autoregressive or semi-autoregressive sampler meets
    midway."""
    lengths, pos, single = _rows(lengths, width, 2, "left_to_right")
    n = len(lengths)
    s = uniform_int(1, lengths - 1, n, generator) if visible is None else _given(visible, n)
    return _out((pos >= s[:, None]) & (pos < lengths[:, None]), single)


@NOISE_STRATEGIES.register("right_to_left")
def right_to_left_mask(
    lengths: Lengths,
    generator: torch.Generator | None = None,
    *,
    width: int | None = None,
    masked: Draw = None,
) -> torch.Tensor:
    """(3) Right-to-left (§Method, noising strategies): the first ``s ~ U[1, L'-1]`` tokens
    masked, the rest visible."""
    lengths, pos, single = _rows(lengths, width, 2, "right_to_left")
    n = len(lengths)
    s = uniform_int(1, lengths - 1, n, generator) if masked is None else _given(masked, n)
    return _out(pos < s[:, None], single)


@NOISE_STRATEGIES.register("block")
def block_mask(
    lengths: Lengths,
    generator: torch.Generator | None = None,
    *,
    width: int | None = None,
    blocks: Draw = None,
    k: Draw = None,
) -> torch.Tensor:
    """(4) Block (§Method, noising strategies): a prefix of whole blocks visible, the rest masked.

    ``r = min(U{2..6}, L')`` blocks of ``b = L' // r`` tokens. If ``b == 1`` the label is too short
    for blocks and strategy (2) or (3) is used (a fair coin). Otherwise a remainder adds one
    block (``r += 1``); with ``r == 2`` everything is masked, else ``k ~ U{2..r}`` and the first
    ``b * (k - 1)`` tokens are visible. ``blocks`` fixes the drawn ``U{2..6}``, ``k`` fixes ``k``.
    """
    lengths, pos, single = _rows(lengths, width, 2, "block")
    n, w = len(lengths), pos.shape[1]
    drawn = uniform_int(2, 6, n, generator) if blocks is None else _given(blocks, n)
    r = torch.minimum(drawn, lengths)
    b = lengths // r
    fallback = b == 1
    left = torch.rand(n, generator=generator) < 0.5
    ltr = left_to_right_mask(lengths, generator, width=w)
    rtl = right_to_left_mask(lengths, generator, width=w)
    r = r + (lengths % r != 0).long()
    if k is None:
        k = uniform_int(2, r, n, generator)
    else:
        k = _given(k, n)
        bad = ~fallback & (r > 2) & ((k < 2) | (k > r))
        if bad.any():
            raise ValueError(f"block noise: k must be in [2, r] = [2, {r[bad].tolist()}]")
    visible = torch.where(r == 2, 0, b * (k - 1))
    mask = (pos >= visible[:, None]) & (pos < lengths[:, None])
    mask = torch.where((fallback & left)[:, None], ltr, mask)
    return _out(torch.where((fallback & ~left)[:, None], rtl, mask), single)


@NOISE_STRATEGIES.register("cloze")
def cloze_mask(
    lengths: Lengths,
    generator: torch.Generator | None = None,
    *,
    width: int | None = None,
    position: Draw = None,
) -> torch.Tensor:
    """(5) Cloze (§Method, noising strategies): exactly one token (``U{0..L'-1}``, EOS
    included) masked: the state of the cloze sampler and of re-predicting one token with full
    context."""
    lengths, pos, single = _rows(lengths, width, 1, "cloze")
    n = len(lengths)
    i = uniform_int(0, lengths - 1, n, generator) if position is None else _given(position, n)
    return _out(pos == i[:, None], single)


@NOISE_STRATEGIES.register("random")
def random_mask(
    lengths: Lengths,
    generator: torch.Generator | None = None,
    *,
    width: int | None = None,
    p: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """(6) Random (§Method, noising strategies; the vanilla MDM noise): ``p ~ U(0, 1)``, each
    token masked with probability ``p``; if none is, one uniformly drawn token is masked."""
    lengths, pos, single = _rows(lengths, width, 1, "random")
    n = len(lengths)
    p = torch.rand(n, generator=generator) if p is None else torch.as_tensor(p).expand(n)
    mask = (torch.rand(n, pos.shape[1], generator=generator) < p[:, None]) & (
        pos < lengths[:, None]
    )
    one = pos == uniform_int(0, lengths - 1, n, generator)[:, None]
    return _out(torch.where(mask.any(1, keepdim=True), mask, one), single)


@dataclass
class MaskNoise:
    """Mask-noised copies of a batch of labels."""

    tokens: torch.Tensor  # [N, T] decoder input: label tokens with MASK where noised and after L'
    loss_mask: torch.Tensor  # [N, T] bool: masked positions inside L' (the denoising targets)
    p_mask: torch.Tensor  # [N] float: fraction of the L' tokens that are masked
    strategies: list[str]  # the strategy each row used (after fallbacks)


def label_lengths(labels: torch.Tensor, pad_id: int) -> torch.Tensor:
    """``L'`` of each row of ``labels [N, T]`` (characters + EOS, PAD after)."""
    return (labels != pad_id).sum(1)


def mask_noise(
    labels: torch.Tensor,
    mask_id: int,
    pad_id: int,
    strategies: Sequence[str] = STRATEGIES,
    generator: torch.Generator | None = None,
) -> MaskNoise:
    """Noise every row of ``labels [N, T]`` (characters, EOS, PAD...) with a strategy drawn
    uniformly from ``strategies``; labels of fewer than two characters (``L' < 3``) fall back
    from strategies (2)-(5) to (6)."""
    unknown = [s for s in strategies if s not in NOISE_STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"unknown noise strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    n, width = labels.shape
    lengths = label_lengths(labels, pad_id).cpu()
    choice = uniform_int(0, len(strategies) - 1, n, generator).tolist()
    used = [strategies[i] for i in choice]
    used = [
        "random" if name in NEEDS_TWO_CHARS and length < 3 else name
        for name, length in zip(used, lengths.tolist())
    ]
    loss_mask = torch.zeros(n, width, dtype=torch.bool)
    for name in STRATEGIES:  # fixed order: the draws do not depend on dict/set order
        rows = torch.tensor([i for i, u in enumerate(used) if u == name], dtype=torch.long)
        if len(rows):
            fn = NOISE_STRATEGIES.get(name)
            loss_mask.index_copy_(0, rows, fn(lengths[rows], generator, width=width))
    loss_mask = loss_mask.to(labels.device)
    tokens = labels.masked_fill(loss_mask | (labels == pad_id), mask_id)
    p_mask = loss_mask.sum(1).float() / lengths.to(labels.device).float()
    return MaskNoise(tokens, loss_mask, p_mask, used)


def replace_tokens(
    labels: torch.Tensor,
    num_tokens: int,
    mask_id: int,
    pad_id: int,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
    t: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-replacement noise (§Method, token-replacement noise): ``(tokens [N, T], p [N])``.

    Per row ``t ~ U(0, 1)`` and ``p = (1 - eps) t + eps``; each of the ``L'`` label tokens is
    replaced with probability ``p`` by a token drawn uniformly from ``[0, num_tokens)`` (EOS and
    the characters: what a sampler can commit; it may draw the same token). Slots after ``L'``
    are MASK, as at inference. ``t [N]`` may be given to fix the rate.
    """
    n, length = labels.shape
    if t is None:
        t = torch.rand(n, generator=generator)
    p = (1.0 - eps) * t.float() + eps
    resample = torch.rand(n, length, generator=generator) < p[:, None]
    draws = torch.randint(0, num_tokens, (n, length), generator=generator)
    valid = labels != pad_id
    resample = resample.to(labels.device) & valid
    tokens = torch.where(resample, draws.to(labels.device), labels)
    return tokens.masked_fill(~valid, mask_id), p.to(labels.device)
