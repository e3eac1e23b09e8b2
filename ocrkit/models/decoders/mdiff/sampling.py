"""MDiff4STR samplers: how a mask-diffusion decoder turns an all-MASK sequence into text.

Du et al., MDiff4STR (AAAI 2026, arXiv 2512.01422), §Method, inference. A sampler gets a
``denoise`` function (token ids ``[B, T]`` -> probabilities ``[B, T, C]``, one decoder pass) and
the all-MASK start, and decides which positions to *commit* (fix to their predicted token) after
each pass. It returns, for every position, the distribution of the pass that decided it (the
last pass for positions never committed), so ``Tokenizer.decode`` reads text and confidences.

Shared rules: the *eligible* positions of a pass are the still-masked ones up to and including
the first EOS of the current sequence (committed tokens, this pass's predictions elsewhere);
later positions are never committed. The confidence-based samplers stop early once every
sequence has at most one eligible position left: one more pass (if the step budget allows)
predicts it with all other tokens visible.

Registered samplers (``SAMPLERS``): ``parallel``, ``low_confidence`` (the paper's default),
``semi_autoregressive``, ``autoregressive``, ``random``, ``cloze``. :func:`revise` is an optional
final pass that goes beyond the paper (see docs/mdiff4str.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ocrkit.registry import Registry

Denoiser = Callable[[torch.Tensor], torch.Tensor]
Selector = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

EOS = 0


@dataclass
class Sampled:
    """A sampler's result: per-position distributions and the number of decoder passes."""

    probs: torch.Tensor  # [B, T, C]
    passes: int


SAMPLERS: Registry[Sampled] = Registry("sampler")


def upto_first_eos(ids: torch.Tensor, eos: int = EOS) -> torch.Tensor:
    """``[B, T]`` bool: positions up to and including each row's first EOS (all if none)."""
    is_eos = (ids == eos).long()
    return (is_eos.cumsum(1) - is_eos) == 0


def above_mean(conf: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """Eligible positions whose confidence is above the mean confidence of the row's eligible
    positions (strictly: a single eligible position, or a tie, commits nothing)."""
    count = eligible.sum(1, keepdim=True).clamp(min=1)
    mean = (conf * eligible).sum(1, keepdim=True) / count
    return eligible & (conf > mean)


def iterative(
    denoise: Denoiser,
    tokens: torch.Tensor,
    mask_id: int,
    steps: int,
    select: Selector,
    window: Callable[[int], torch.Tensor] | None = None,
    early_stop: bool = True,
) -> Sampled:
    """The loop shared by the confidence-based samplers.

    Each pass: predict, find the eligible positions (inside ``window(step)`` when given), commit
    ``select(conf, eligible)``. At most ``steps`` passes; once every row has at most one
    eligible position left, one last pass and stop (none left: stop at once). A pass whose input
    equals the previous one is not run again (the decoder is deterministic in eval mode): its
    prediction is reused, so ``passes`` counts real decoder calls. ``early_stop=False`` keeps
    applying the rule until the ``steps`` budget is spent.
    """
    tokens = tokens.clone()
    masked = tokens == mask_id
    probs: torch.Tensor | None = None
    seen: torch.Tensor | None = None
    finishing = False
    passes = 0
    for step in range(steps):
        if seen is None or not torch.equal(tokens, seen):  # same input, same output: reuse it
            p, seen = denoise(tokens), tokens
            passes += 1
        probs = p.clone() if probs is None else torch.where(masked[..., None], p, probs)
        conf, pred = p.max(-1)
        eligible = masked & upto_first_eos(torch.where(masked, pred, tokens))
        if window is not None:
            eligible = eligible & window(step).to(eligible.device)
        commit = select(conf, eligible)
        tokens = torch.where(commit, pred, tokens)
        masked = masked & ~commit
        if not early_stop:
            continue
        if finishing:
            break
        left = (masked & upto_first_eos(torch.where(masked, pred, tokens))).sum(1)
        if bool((left == 0).all()):
            break
        finishing = bool((left <= 1).all())
    if probs is None:
        raise ValueError("a sampler needs steps >= 1")
    return Sampled(probs, passes)


@SAMPLERS.register("parallel")
def parallel(denoise: Denoiser, tokens: torch.Tensor, mask_id: int) -> Sampled:
    """One pass from all-MASK, every position read at once (§Method, inference; ``steps`` is
    ignored)."""
    return Sampled(denoise(tokens), 1)


@SAMPLERS.register("low_confidence")
def low_confidence(
    denoise: Denoiser, tokens: torch.Tensor, mask_id: int, steps: int = 3, early_stop: bool = True
) -> Sampled:
    """Low-confidence remasking (§Method, inference; the paper's sampler, 3 steps): each pass
    commits the eligible positions more confident than the mean eligible confidence; the rest
    stay MASK."""
    return iterative(denoise, tokens, mask_id, steps, above_mean, None, early_stop)


@SAMPLERS.register("semi_autoregressive")
def semi_autoregressive(
    denoise: Denoiser,
    tokens: torch.Tensor,
    mask_id: int,
    steps: int = 3,
    block: int = 8,
    early_stop: bool = True,
) -> Sampled:
    """Semi-autoregressive (§Method, inference): the low-confidence rule restricted to a prefix
    that grows by ``block`` positions per pass (``block * (step + 1)``)."""
    length = tokens.shape[1]

    def window(step: int) -> torch.Tensor:
        return (torch.arange(length) < block * (step + 1))[None]

    return iterative(denoise, tokens, mask_id, steps, above_mean, window, early_stop)


@SAMPLERS.register("random")
def random_remasking(
    denoise: Denoiser,
    tokens: torch.Tensor,
    mask_id: int,
    steps: int = 3,
    p: float = 0.5,
    generator: torch.Generator | None = None,
    early_stop: bool = True,
) -> Sampled:
    """Random remasking (§Method, inference; vanilla MDM): each pass commits every eligible
    position with probability ``p``, regardless of confidence (``generator`` makes it
    reproducible)."""

    def select(conf: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
        draw = torch.rand(conf.shape, generator=generator).to(conf.device)  # a CPU generator
        return eligible & (draw < p)

    return iterative(denoise, tokens, mask_id, steps, select, None, early_stop)


@SAMPLERS.register("autoregressive")
def autoregressive(
    denoise: Denoiser, tokens: torch.Tensor, mask_id: int, eos: int = EOS
) -> Sampled:
    """Autoregressive (§Method, inference): pass ``t`` commits position ``t``; stops once every
    row has committed EOS (up to ``T`` passes; ``steps`` is ignored). No KV cache: attention is
    bidirectional, so every pass reruns the whole sequence."""
    tokens = tokens.clone()
    b, length = tokens.shape
    ended = torch.zeros(b, dtype=torch.bool, device=tokens.device)
    probs: torch.Tensor | None = None
    passes = 0
    for t in range(length):
        p = denoise(tokens)
        passes += 1
        if probs is None:
            probs = p.clone()
        probs[:, t] = torch.where(ended[:, None], probs[:, t], p[:, t])
        pred = p[:, t].argmax(-1)
        tokens[:, t] = torch.where(ended, tokens[:, t], pred)
        ended |= pred == eos
        if bool(ended.all()):
            break
    assert probs is not None
    return Sampled(probs, passes)


@SAMPLERS.register("cloze")
def cloze(denoise: Denoiser, tokens: torch.Tensor, mask_id: int, eos: int = EOS) -> Sampled:
    """Cloze (§Method, inference): a parallel draft, then each position from left to right is
    masked and re-predicted with every other token visible, until the position passes each row's EOS
    (up to ``T + 1`` passes; ``steps`` is ignored)."""
    probs = denoise(tokens).clone()
    passes = 1
    ids = probs.argmax(-1)
    tokens = torch.where(upto_first_eos(ids, eos), ids, mask_id)
    for t in range(tokens.shape[1]):
        active = upto_first_eos(tokens, eos)[:, t]
        if not bool(active.any()):
            break
        query = tokens.clone()
        query[:, t] = mask_id
        p = denoise(query)
        passes += 1
        probs[:, t] = torch.where(active[:, None], p[:, t], probs[:, t])
        tokens[:, t] = torch.where(active, p[:, t].argmax(-1), tokens[:, t])
        # a row whose EOS moved later has MASK after it: those positions are predicted next
    return Sampled(probs, passes)


def revise(denoise: Denoiser, probs: torch.Tensor, mask_id: int, passes: int = 1) -> Sampled:
    """Re-predict the decided tokens with full context and keep the more confident answer.

    Beyond the paper: the decided sequence (``argmax probs`` up to the first EOS, MASK after) is
    fed back; a position takes the new distribution where its top probability beats the one it
    was decided with. Token-replacement training (§Method, token-replacement noise) is what
    teaches the decoder to correct a visible wrong token, so this pass asks it to do exactly
    that.
    """
    for _ in range(passes):
        conf, ids = probs.max(-1)
        keep = upto_first_eos(ids)
        p = denoise(torch.where(keep, ids, mask_id))
        better = keep & (p.max(-1).values > conf)
        probs = torch.where(better[..., None], p, probs)
    return Sampled(probs, passes)
