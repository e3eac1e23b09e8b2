"""Mask-diffusion decoder (``mdiff``) of MDiff4STR (Du et al., AAAI 2026, arXiv 2512.01422).

A bidirectional transformer (no causal mask; paper §Method, mask diffusion decoder) reads a
sequence of ``max_length + 1`` slots (characters + EOS) in which some tokens are MASK and predicts
every slot at once from the visible tokens and the image tokens. Training noises each label with
the six noising strategies (:mod:`.noise`) and token replacement (§Method); inference starts
from all-MASK and commits tokens over a few passes with a sampler from
:data:`.sampling.SAMPLERS` (§Method, inference).

Layers follow the reference implementation: post-norm self-attention -> cross-attention ->
ReLU MLP, width = encoder width, heads default to width // 64 (6 at 384, as MDiff4STR-S/B).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from timm.layers import Mlp, trunc_normal_
from torch import nn

from ocrkit.models.backbones.pos_embed import sincos_1d
from ocrkit.models.decoders.layers import MultiHeadAttention
from ocrkit.models.decoders.mdiff import loss as losses
from ocrkit.models.decoders.mdiff.noise import STRATEGIES, mask_noise, replace_tokens
from ocrkit.models.decoders.mdiff.sampling import SAMPLERS, Sampled
from ocrkit.models.decoders.mdiff.sampling import revise as revise_pass
from ocrkit.models.weight_init import init_transformer_weights
from ocrkit.text.tokenizer import Tokenizer

KV = tuple[torch.Tensor, torch.Tensor]
Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A decoder network forward: ``(memory [B, S, C], tokens [B, T]) -> logits [B, T, K]``."""


class MDiffLayer(nn.Module):
    """Post-norm block: bidirectional self-attention, cross-attention to the image, MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.1):
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.ReLU, drop=dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory_kv: KV, group: int = 1) -> torch.Tensor:
        """``x [B * group, T, D]``: ``group`` consecutive rows read the same image, whose keys
        and values ``memory_kv`` (``[B, heads, S, D / heads]`` each) are computed once."""
        k, v = self.self_attn.keys_values(x)
        x = self.norm1(x + self.drop(self.self_attn.attend(x, k, v)))
        n, t, d = x.shape
        cross = self.cross_attn.attend(x.reshape(n // group, group * t, d), *memory_kv)
        x = self.norm2(x + self.drop(cross.reshape(n, t, d)))
        return self.norm3(x + self.drop(self.mlp(x)))


class MDiffDecoder(nn.Module):
    """Mask-diffusion text decoder; interchangeable with ``ar`` through ``loss``/``generate``.

    Training options (the paper's ablation switches): ``strategies`` (any subset of the six,
    drawn uniformly per copy), ``sample_k`` noised copies per label sharing one encoder pass,
    ``token_replacement`` with rate floor ``replace_eps``, loss weights. Inference defaults
    (saved in the model config, overridable per call): ``sampler``, ``steps``, ``revise``
    (extra re-prediction passes, 0 = off), ``sampler_options`` (e.g. ``{"block": 8}``), ``seed``
    (for the ``random`` sampler).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        in_features: int,
        embed_dim: int | None = None,
        depth: int = 6,
        num_heads: int | None = None,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        max_length: int | None = None,
        strategies: Sequence[str] = STRATEGIES,
        sample_k: int = 3,
        token_replacement: bool = True,
        replace_eps: float = 1e-3,
        denoise_weight: float = 1.0,
        replace_weight: float = 1.0,
        sampler: str = "low_confidence",
        steps: int = 3,
        revise: int = 0,
        sampler_options: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        embed_dim = embed_dim or in_features
        num_heads = num_heads or max(1, embed_dim // 64)
        if sample_k < 1:
            raise ValueError(f"mdiff: sample_k must be >= 1, got {sample_k}")
        unknown = [s for s in strategies if s not in STRATEGIES]
        if unknown or not strategies:
            raise ValueError(f"mdiff: unknown strategies {unknown}; use some of {STRATEGIES}")
        self.tokenizer = tokenizer
        self.max_length = max_length or tokenizer.max_length
        self.embed_dim = embed_dim
        self.strategies = tuple(strategies)
        self.sample_k = sample_k
        self.token_replacement, self.replace_eps = token_replacement, replace_eps
        self.denoise_weight, self.replace_weight = denoise_weight, replace_weight
        self.defaults: dict[str, Any] = {}
        self.configure_sampling(sampler, steps, revise, sampler_options or {}, seed)

        self.memory_proj = (
            nn.Linear(in_features, embed_dim) if in_features != embed_dim else nn.Identity()
        )
        self.token_embed = nn.Embedding(tokenizer.vocab_size, embed_dim)
        length = self.max_length + 1
        self.register_buffer(
            "pos_sincos", sincos_1d(embed_dim, torch.arange(length)).float()[None], persistent=False
        )
        self.pos_embed = nn.Parameter(torch.zeros(1, length, embed_dim))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            MDiffLayer(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.head = nn.Linear(embed_dim, tokenizer.num_classes)
        self.apply(init_transformer_weights)
        trunc_normal_(self.pos_embed, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Own parameters without weight decay (PARSeq: token embedding and positions)."""
        return {"token_embed.weight", "pos_embed"}

    @property
    def length(self) -> int:
        """Decoder slots: ``max_length`` characters + EOS."""
        return self.max_length + 1

    # ---- the network -----------------------------------------------------------------------
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings scaled by sqrt(width) + sinusoidal + learned positions."""
        x = self.token_embed(tokens) * math.sqrt(self.embed_dim)
        return self.dropout(x + self.pos_sincos + self.pos_embed)

    def memory_kv(self, memory: torch.Tensor) -> list[KV]:
        """Per-layer cross-attention keys/values of the image tokens (computed once per image)."""
        memory = self.memory_proj(memory)
        return [layer.cross_attn.keys_values(memory) for layer in self.layers]

    def logits(self, tokens: torch.Tensor, kv: list[KV], group: int = 1) -> torch.Tensor:
        """``tokens [B * group, T]`` -> logits ``[B * group, T, num_classes]``."""
        x = self.embed(tokens)
        for layer, layer_kv in zip(self.layers, kv):
            x = layer(x, layer_kv, group)
        return self.head(x)

    def token_logits(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The network forward (the denoiser) on a whole sequence: encoder tokens
        ``memory [B, S, C]`` and ids ``tokens [B, max_length + 1]`` -> logits ``[B, T, K]``.

        What every sampler pass computes (:meth:`sample` keeps the image keys/values between
        passes) and what ONNX export traces.
        """
        return self.logits(tokens, self.memory_kv(memory))

    # ---- training --------------------------------------------------------------------------
    def labels_from_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """``tokenizer.encode(labels)`` with or without BOS -> ``[B, max_length + 1]``."""
        if targets.shape[1] == self.length + 1 and bool(
            (targets[:, 0] == self.tokenizer.BOS).all()
        ):
            targets = targets[:, 1:]
        if targets.shape[1] != self.length:
            raise ValueError(
                f"mdiff: targets of width {targets.shape[1]}, expected {self.length} "
                f"(tokenizer.encode with max_length {self.max_length})"
            )
        return targets

    def loss(
        self, memory: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Denoising (+ token-replacement) loss over ``sample_k`` noised copies of each label.

        All copies (mask-noised and replaced) of a label go through one decoder call and share
        the image's keys/values. Logs ``loss_denoise``, ``loss_replace`` and ``token_acc`` (the
        fraction of masked tokens predicted right).
        """
        t = self.tokenizer
        labels = self.labels_from_targets(targets)
        copies = labels.repeat_interleave(self.sample_k, dim=0)  # [B * k, T], label-major
        noised = mask_noise(copies, t.MASK, t.PAD, self.strategies)
        inputs = [noised.tokens.view(-1, self.sample_k, self.length)]
        if self.token_replacement:
            replaced, _ = replace_tokens(copies, t.num_classes, t.MASK, t.PAD, self.replace_eps)
            inputs.append(replaced.view(-1, self.sample_k, self.length))
        group = self.sample_k * len(inputs)
        tokens = torch.cat(inputs, dim=1).flatten(0, 1)  # [B * group, T]
        logits = self.logits(tokens, self.memory_kv(memory), group)
        logits = logits.view(-1, len(inputs), self.sample_k, self.length, logits.shape[-1])
        lengths = (copies != t.PAD).sum(1)
        denoise_logits = logits[:, 0].flatten(0, 1)
        denoise = losses.denoising_loss(
            denoise_logits, copies, noised.loss_mask, noised.p_mask, lengths
        )
        total = self.denoise_weight * denoise
        logs = {"loss_denoise": denoise.detach()}
        if self.token_replacement:
            replace = losses.replacement_loss(logits[:, 1].flatten(0, 1), copies, t.PAD)
            total = total + self.replace_weight * replace
            logs["loss_replace"] = replace.detach()
        with torch.no_grad():
            hit = (denoise_logits.argmax(-1) == copies) & noised.loss_mask
            logs["token_acc"] = hit.sum() / noised.loss_mask.sum().clamp(min=1)
        return total, logs

    # ---- inference -------------------------------------------------------------------------
    def configure_sampling(
        self,
        sampler: str | None = None,
        steps: int | None = None,
        revise: int | None = None,
        sampler_options: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        """Change the inference defaults of this decoder (arguments left None stay)."""
        new = {
            "sampler": sampler,
            "steps": steps,
            "revise": revise,
            "sampler_options": sampler_options,
            "seed": seed,
        }
        merged = {**self.defaults, **{k: v for k, v in new.items() if v is not None}}
        SAMPLERS.get(merged["sampler"])  # unknown names fail here, listing the known ones
        if int(merged["steps"]) < 1 or int(merged["revise"]) < 0:
            raise ValueError(f"mdiff: steps must be >= 1 and revise >= 0, got {merged}")
        self.defaults = merged

    @contextmanager
    def sampling(self, **defaults: Any) -> Iterator[MDiffDecoder]:
        """Temporarily change the inference defaults: ``with dec.sampling(sampler="parallel"):``
        (what ``Recognizer.predict`` and the evaluator then use)."""
        saved = dict(self.defaults)
        self.configure_sampling(**defaults)
        try:
            yield self
        finally:
            self.defaults = saved

    @torch.no_grad()
    def sample(
        self,
        memory: torch.Tensor,
        sampler: str | None = None,
        steps: int | None = None,
        revise: int | None = None,
        seed: int | None = None,
        network: Network | None = None,
        **options: Any,
    ) -> Sampled:
        """Decode image tokens ``memory [B, S, C]`` with a sampler; returns probabilities
        ``[B, max_length + 1, num_classes]`` and the number of decoder passes.

        ``network`` replaces the decoder's own forward (:meth:`token_logits`) in every pass of
        the sampler and the revise pass, e.g. by an ONNX session; the loop stays the same.
        """
        d = self.defaults
        name = sampler or d["sampler"]
        fn = SAMPLERS.get(name)
        options = {**(d["sampler_options"] if name == d["sampler"] else {}), **options}
        params = inspect.signature(fn).parameters
        unknown = sorted(set(options) - set(params) - {"denoise", "tokens", "mask_id"})
        if unknown:
            takes = [p for p in params if p not in ("denoise", "tokens", "mask_id")]
            raise TypeError(f"sampler {name!r} takes no option {unknown}; it takes {takes}")
        generator = torch.Generator().manual_seed(d["seed"] if seed is None else seed)
        steps = int(d["steps"] if steps is None else steps)
        if steps < 1:
            raise ValueError(f"mdiff: steps must be >= 1, got {steps}")
        common = {"steps": steps, "generator": generator}
        kwargs = {k: v for k, v in common.items() if k in params}
        kv = self.memory_kv(memory) if network is None else []  # once, shared by every pass

        def denoise(tokens: torch.Tensor) -> torch.Tensor:
            logits = self.logits(tokens, kv) if network is None else network(memory, tokens)
            return logits.float().softmax(-1)

        start = torch.full(
            (memory.shape[0], self.length),
            self.tokenizer.MASK,
            dtype=torch.long,
            device=memory.device,
        )
        out = fn(denoise, start, self.tokenizer.MASK, **kwargs, **options)
        passes = int(d["revise"] if revise is None else revise)
        if passes:
            revised = revise_pass(denoise, out.probs, self.tokenizer.MASK, passes)
            out = Sampled(revised.probs, out.passes + revised.passes)
        return out

    def generate(self, memory: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """The decoder interface of :class:`~ocrkit.models.Recognizer`: probabilities
        ``[B, max_length + 1, num_classes]``; ``kwargs`` as :meth:`sample`."""
        return self.sample(memory, **kwargs).probs
