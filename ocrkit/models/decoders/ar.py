"""Autoregressive transformer decoder (``ar``): the recognition head of MAERec, DiG and MNSP.

Defaults follow the fine-tuning setup of those papers: 6 pre-norm decoder layers, width 512,
8 heads, maximum label length 25; the encoder tokens are projected to the decoder width and read
by cross-attention. Training uses teacher forcing with cross-entropy over EOS + characters
(PAD ignored); inference is greedy with a key/value cache, stopping once every sequence has
emitted EOS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from ocrkit.models.backbones.pos_embed import sincos_1d
from ocrkit.models.decoders.layers import Cache, DecoderLayer
from ocrkit.models.weight_init import init_transformer_weights
from ocrkit.text.tokenizer import Tokenizer

Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A decoder network forward: ``(memory [B, S, C], tokens [B, T]) -> logits [B, T, K]``."""


class CachedSteps(Protocol):
    """What the cached greedy loop calls: :class:`ARDecoder` itself, or an ONNX session pair.

    State is plain tensors so an exported graph can carry it: per-layer cross-attention keys and
    values of the memory ``[L, B, heads, S, head_dim]`` (computed once), and the self-attention
    keys and values of the prefix ``[L, B, heads, t, head_dim]`` (grown by one each step).
    """

    def memory_keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def step_logits(
        self,
        token: torch.Tensor,
        position: torch.Tensor,
        mem_k: torch.Tensor,
        mem_v: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


class ARDecoder(nn.Module):
    """Greedy left-to-right decoder over the tokenizer's ids (BOS in, EOS + chars out)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        in_features: int,
        embed_dim: int = 512,
        depth: int = 6,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        max_length: int | None = None,
        label_smoothing: float = 0.0,
        positions: str = "sincos+learned",
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.max_length = max_length or tokenizer.max_length
        self.embed_dim = embed_dim
        self.label_smoothing = label_smoothing
        self.memory_proj = (
            nn.Linear(in_features, embed_dim) if in_features != embed_dim else nn.Identity()
        )
        self.token_embed = nn.Embedding(tokenizer.vocab_size, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.max_length + 1, embed_dim))
        if positions not in ("learned", "sincos+learned"):
            raise ValueError(f"positions must be 'learned' or 'sincos+learned', got {positions!r}")
        # Fixed sinusoids give every step a position code as strong as its (sqrt(d)-scaled)
        # token embedding from the first step; learned tables start 10x weaker (std 0.02).
        table = sincos_1d(embed_dim, torch.arange(self.max_length + 1)).float()[None]
        self.register_buffer(
            "pos_sincos", table * float(positions == "sincos+learned"), persistent=False
        )
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, tokenizer.num_classes)
        self.apply(init_transformer_weights)
        trunc_normal_(self.pos_embed, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Own parameters without weight decay (PARSeq: token embedding and positions)."""
        return {"token_embed.weight", "pos_embed"}

    def embed(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token embeddings (scaled by sqrt(width), as in PARSeq) plus learned positions."""
        x = self.token_embed(tokens) * math.sqrt(self.embed_dim)
        end = start + tokens.shape[1]
        return self.dropout(x + self.pos_embed[:, start:end] + self.pos_sincos[:, start:end])

    def run(self, x: torch.Tensor, memory: torch.Tensor, caches: list[Cache] | None = None):
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, caches[i] if caches is not None else None)
        return self.head(self.norm(x))

    def token_logits(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The network forward on a whole prefix (causal, no cache): encoder tokens
        ``memory [B, S, C]`` and ids ``tokens [B, T]`` (BOS first) -> logits ``[B, T, K]``.

        This is what the uncached greedy loop calls each step and what ONNX export traces.
        """
        return self.run(self.embed(tokens), self.memory_proj(memory))

    def memory_keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of the projected memory for every layer, stacked:
        ``[L, B, heads, S, head_dim]`` each (computed once per image batch)."""
        projected = self.memory_proj(memory)
        kv = [layer.cross_attn.keys_values(projected) for layer in self.layers]
        return torch.stack([k for k, _ in kv]), torch.stack([v for _, v in kv])

    def step_logits(
        self,
        token: torch.Tensor,
        position: torch.Tensor,
        mem_k: torch.Tensor,
        mem_v: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One cached step: ``token [B, 1]`` at ``position`` (``LongTensor[1]``) with the state
        of :class:`CachedSteps` -> logits ``[B, 1, K]`` and the prefix keys/values grown by one."""
        x = self.token_embed(token) * math.sqrt(self.embed_dim)
        pos = (self.pos_embed + self.pos_sincos).index_select(1, position)
        caches: list[Cache] = [
            {"k": past_k[i], "v": past_v[i], "mem_k": mem_k[i], "mem_v": mem_v[i]}
            for i in range(len(self.layers))
        ]
        logits = self.run(self.dropout(x + pos), mem_k, caches)  # memory comes from the caches
        present_k = torch.stack([c["k"] for c in caches])
        return logits, present_k, torch.stack([c["v"] for c in caches])

    def forward_train(self, memory: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``targets`` = ``tokenizer.encode(labels)`` (BOS first) ``[B, L]``.

        Returns logits ``[B, L - 1, num_classes]`` for ``targets[:, 1:]``.
        """
        inputs = targets[:, :-1]
        if inputs.shape[1] > self.max_length + 1:
            raise ValueError(f"targets longer than max_length + 2 = {self.max_length + 2}")
        return self.token_logits(memory, inputs)

    def loss(
        self, memory: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of the teacher-forced logits, PAD positions ignored.

        Logs ``acc``: the fraction of words read exactly under teacher forcing.
        """
        logits = self.forward_train(memory, targets)
        gold = targets[:, 1:]
        loss = F.cross_entropy(
            logits.flatten(0, 1),
            gold.flatten(),
            ignore_index=self.tokenizer.PAD,
            label_smoothing=self.label_smoothing,
        )
        with torch.no_grad():
            valid = gold != self.tokenizer.PAD
            correct = (logits.argmax(-1) == gold) | ~valid
            acc = correct.all(dim=1).float().mean()
        return loss, {"acc": acc}

    @torch.no_grad()
    def decode(
        self,
        memory: torch.Tensor,
        max_length: int | None = None,
        use_cache: bool = True,
        stop_at_eos: bool = True,
        network: Network | None = None,
        cached: CachedSteps | None = None,
    ) -> torch.Tensor:
        """Greedy decoding: probabilities ``[B, T, num_classes]``, ``T <= max_length + 1``.

        Stops early once every sequence has produced EOS (unless ``stop_at_eos=False``, which
        forces the worst case). With ``use_cache`` each step runs one new token through the
        layers (by ``cached``: default this decoder, or e.g. exported ONNX step graphs);
        without it the whole prefix is recomputed every step by ``network`` (default
        :meth:`token_logits`; an injected ``network`` alone implies no cache).
        """
        max_length = min(max_length or self.max_length, self.max_length)
        b = memory.shape[0]
        device = memory.device
        tokens = torch.full((b, 1), self.tokenizer.BOS, dtype=torch.long, device=device)
        steps = cached if cached is not None else (self if network is None else None)
        if use_cache and steps is not None:
            mem_k, mem_v = steps.memory_keys_values(memory)
            shape = (mem_k.shape[0], b, mem_k.shape[2], 0, mem_k.shape[4])
            past_k = past_v = mem_k.new_zeros(shape)
        else:
            steps, network = None, network or self.token_logits
        ended = torch.zeros(b, dtype=torch.bool, device=device)
        probs = []
        for t in range(max_length + 1):
            if steps is not None:
                position = torch.tensor([t], dtype=torch.long, device=device)
                logits, past_k, past_v = steps.step_logits(
                    tokens[:, -1:], position, mem_k, mem_v, past_k, past_v
                )
            else:
                logits = network(memory, tokens)
            p = logits[:, -1].float().softmax(-1)
            probs.append(p)
            nxt = p.argmax(-1)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            ended |= nxt == self.tokenizer.EOS
            if stop_at_eos and bool(ended.all()):
                break
        return torch.stack(probs, dim=1)

    def generate(self, memory: torch.Tensor, **kwargs) -> torch.Tensor:
        """The decoder interface used by :class:`~ocrkit.models.Recognizer`: ``decode``."""
        return self.decode(memory, **kwargs)
