"""MDiff4STR training noise: the six mask-noising strategies and token-replacement noise.

Du et al., "MDiff4STR: Mask Diffusion Model for Scene Text Recognition" (AAAI 2026,
arXiv 2512.01422), Sec. 3.2 (noising strategies that close the gap between training and the
samplers' inference states) and Sec. 3.3 (token-replacement noise against over-confident
mistakes). A label of ``n`` characters is ``L' = n + 1`` tokens (characters + EOS); each strategy
returns a boolean mask over those ``L'`` positions (True = replaced by MASK, predicted, in the
loss). Slots after ``L'`` are always MASK and never in the loss.

Every random draw goes through a ``torch.Generator`` (``None``: the global RNG, which the trainer
seeds and checkpoints), so a seeded generator reproduces a mask exactly. Each strategy also takes
its drawn quantities as keyword arguments, so a hand-worked case can fix them.
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


def randint(low: int, high: int, generator: torch.Generator | None = None) -> int:
    """One integer uniform on ``[low, high]`` (both ends included)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def uniform(generator: torch.Generator | None = None) -> float:
    """One float uniform on ``[0, 1)``."""
    return float(torch.rand(1, generator=generator))


def _check(length: int, minimum: int, name: str) -> None:
    if length < minimum:
        raise ValueError(f"{name} noise needs L' >= {minimum} tokens, got {length}")


@NOISE_STRATEGIES.register("full")
def full_mask(length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(1) Full mask (Sec. 3.2): every token masked, the state of parallel decoding."""
    _check(length, 1, "full")
    return torch.ones(length, dtype=torch.bool)


@NOISE_STRATEGIES.register("left_to_right")
def left_to_right_mask(
    length: int, generator: torch.Generator | None = None, *, visible: int | None = None
) -> torch.Tensor:
    """(2) Left-to-right (Sec. 3.2): the first ``s ~ U[1, L'-1]`` tokens visible, the rest masked.

    The state an autoregressive or semi-autoregressive sampler meets midway.
    """
    _check(length, 2, "left_to_right")
    s = randint(1, length - 1, generator) if visible is None else visible
    mask = torch.zeros(length, dtype=torch.bool)
    mask[s:] = True
    return mask


@NOISE_STRATEGIES.register("right_to_left")
def right_to_left_mask(
    length: int, generator: torch.Generator | None = None, *, masked: int | None = None
) -> torch.Tensor:
    """(3) Right-to-left (Sec. 3.2): the first ``s ~ U[1, L'-1]`` tokens masked, the rest visible."""
    _check(length, 2, "right_to_left")
    s = randint(1, length - 1, generator) if masked is None else masked
    mask = torch.zeros(length, dtype=torch.bool)
    mask[:s] = True
    return mask


@NOISE_STRATEGIES.register("block")
def block_mask(
    length: int,
    generator: torch.Generator | None = None,
    *,
    blocks: int | None = None,
    k: int | None = None,
) -> torch.Tensor:
    """(4) Block (Sec. 3.2): a prefix of whole blocks visible, the rest masked.

    ``r = min(U{2..6}, L')`` blocks of ``b = L' // r`` tokens. If ``b == 1`` the label is too short
    for blocks and strategy (2) or (3) is used (a fair coin). Otherwise a remainder adds one
    block (``r += 1``); with ``r == 2`` everything is masked, else ``k ~ U{2..r}`` and the first
    ``b * (k - 1)`` tokens are visible. ``blocks`` fixes the drawn ``U{2..6}``, ``k`` fixes ``k``.
    """
    _check(length, 2, "block")
    r = min(randint(2, 6, generator) if blocks is None else blocks, length)
    b = length // r
    if b == 1:
        if uniform(generator) < 0.5:
            return left_to_right_mask(length, generator)
        return right_to_left_mask(length, generator)
    if length % r:
        r += 1
    mask = torch.ones(length, dtype=torch.bool)
    if r == 2:
        return mask
    k = randint(2, r, generator) if k is None else k
    if not 2 <= k <= r:
        raise ValueError(f"block noise: k must be in [2, {r}], got {k}")
    mask[: b * (k - 1)] = False
    return mask


@NOISE_STRATEGIES.register("cloze")
def cloze_mask(
    length: int, generator: torch.Generator | None = None, *, position: int | None = None
) -> torch.Tensor:
    """(5) Cloze (Sec. 3.2): exactly one token (``U{0..L'-1}``, EOS included) masked.

    The state of the cloze sampler and of re-predicting one token with full context.
    """
    _check(length, 1, "cloze")
    i = randint(0, length - 1, generator) if position is None else position
    mask = torch.zeros(length, dtype=torch.bool)
    mask[i] = True
    return mask


@NOISE_STRATEGIES.register("random")
def random_mask(
    length: int, generator: torch.Generator | None = None, *, p: float | None = None
) -> torch.Tensor:
    """(6) Random (Sec. 3.2, the vanilla MDM noise): ``p ~ U(0, 1)``, each token masked with
    probability ``p``; if none is, one uniformly drawn token is masked."""
    _check(length, 1, "random")
    p = uniform(generator) if p is None else p
    mask = torch.rand(length, generator=generator) < p
    if not mask.any():
        mask[randint(0, length - 1, generator)] = True
    return mask


def draw_mask(
    length: int,
    strategies: Sequence[str] = STRATEGIES,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, str]:
    """Draw a strategy uniformly from ``strategies`` and apply it: ``(mask [L'], name used)``.

    Labels of fewer than two characters (``L' < 3``) fall back from strategies (2)-(5) to (6).
    """
    name = strategies[randint(0, len(strategies) - 1, generator)]
    if name in NEEDS_TWO_CHARS and length < 3:
        name = "random"
    return NOISE_STRATEGIES.get(name)(length, generator), name


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
    """Noise every row of ``labels [N, T]`` (characters, EOS, PAD...) with a drawn strategy."""
    unknown = [s for s in strategies if s not in NOISE_STRATEGIES]
    if unknown or not strategies:
        raise ValueError(
            f"unknown noise strategies {unknown}; choose from {', '.join(STRATEGIES)}"
        )
    lengths = label_lengths(labels, pad_id)
    loss_mask = torch.zeros(labels.shape, dtype=torch.bool)
    used = []
    for row, length in enumerate(lengths.tolist()):
        mask, name = draw_mask(length, strategies, generator)
        loss_mask[row, :length] = mask
        used.append(name)
    loss_mask = loss_mask.to(labels.device)
    tokens = labels.masked_fill(loss_mask | (labels == pad_id), mask_id)
    p_mask = loss_mask.sum(1).float() / lengths.float()
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
    """Token-replacement noise (Sec. 3.3): ``(tokens [N, T], p [N])``.

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
