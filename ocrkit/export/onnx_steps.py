"""Key/value-cached AR decoding in ONNX: two more graphs and the session pair that runs them.

``decoder_memory.onnx`` computes every layer's cross-attention keys/values of the memory once per
batch; ``decoder_step.onnx`` runs one token through the layers against them and the prefix's
cached self-attention keys/values, returning the grown cache. :class:`OnnxCachedSteps` has the
:class:`~ocrkit.models.decoders.ar.CachedSteps` methods, so the decoder's own greedy loop runs
on onnxruntime with the cache, as it does in PyTorch. Decoders without ``step_logits`` (MDiff:
every pass sees the whole sequence) export only ``decoder.onnx``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

MEMORY_NAME = "decoder_memory.onnx"
STEP_NAME = "decoder_step.onnx"
STATE = ("mem_k", "mem_v", "past_k", "past_v")
STEP_INPUTS = ["token", "position", *STATE]
STEP_OUTPUTS = ["step_logits", "present_k", "present_v"]
ExportFn = Callable[..., None]


def supports_cached_steps(decoder: nn.Module) -> bool:
    return all(callable(getattr(decoder, m, None)) for m in ("memory_keys_values", "step_logits"))


class _MemoryGraph(nn.Module):
    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder.memory_keys_values(memory)


class _StepGraph(nn.Module):
    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(
        self,
        token: torch.Tensor,
        position: torch.Tensor,
        mem_k: torch.Tensor,
        mem_v: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.decoder.step_logits(token, position, mem_k, mem_v, past_k, past_v)


@torch.no_grad()
def export_step_graphs(
    decoder: nn.Module, memory: torch.Tensor, directory: Path, export: ExportFn
) -> tuple[dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """Write both graphs with ``export(module, args, path, names, dynamic)``; returns the trace
    feeds and torch's outputs (for verification). Traced with a 2-token prefix at position 2."""
    batch = {1: "batch"}
    export(
        _MemoryGraph(decoder).eval(),
        (memory,),
        directory / MEMORY_NAME,
        (["memory"], ["mem_k", "mem_v"]),
        {"memory": {0: "batch"}, "mem_k": batch, "mem_v": batch},
    )
    mem_k, mem_v = decoder.memory_keys_values(memory)
    b = memory.shape[0]
    past = torch.randn(mem_k.shape[0], b, mem_k.shape[2], 2, mem_k.shape[4], device=memory.device)
    token = torch.randint(0, decoder.tokenizer.num_classes, (b, 1), device=memory.device)
    position = torch.tensor([2], dtype=torch.long, device=memory.device)
    args = (token, position, mem_k, mem_v, past, past.clone())
    grown = {1: "batch", 3: "length"}
    dynamic = {"token": {0: "batch"}, "mem_k": batch, "mem_v": batch, "past_k": grown}
    dynamic |= {"past_v": grown, "step_logits": {0: "batch"}}
    dynamic |= {"present_k": grown, "present_v": grown}
    export(
        _StepGraph(decoder).eval(),
        args,
        directory / STEP_NAME,
        (STEP_INPUTS, STEP_OUTPUTS),
        dynamic,
    )
    feeds = {"memory": {"memory": memory.cpu().numpy()}}
    feeds["step"] = {n: a.cpu().numpy() for n, a in zip(STEP_INPUTS, args)}
    expected = {"memory": mem_k, "step": decoder.step_logits(*args)[0]}
    return feeds, expected


def verify_step_graphs(
    ort: Any,
    directory: Path,
    feeds: dict[str, dict[str, np.ndarray]],
    expected: dict[str, torch.Tensor],
) -> dict[str, float]:
    """Max abs difference of each graph's first output to torch."""
    diffs = {}
    for name, file in (("memory", MEMORY_NAME), ("step", STEP_NAME)):
        session = ort.InferenceSession(str(directory / file), providers=["CPUExecutionProvider"])
        ref = expected[name].float().cpu().numpy()
        diffs[f"decoder_{name}"] = float(np.abs(session.run(None, feeds[name])[0] - ref).max())
    return diffs


class OnnxCachedSteps:
    """``memory_keys_values`` / ``step_logits`` of an AR decoder, by onnxruntime sessions."""

    def __init__(self, memory_session: Any, step_session: Any) -> None:
        self.memory_session, self.step_session = memory_session, step_session

    def memory_keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feed = {"memory": np.ascontiguousarray(memory.cpu().numpy(), dtype=np.float32)}
        mem_k, mem_v = self.memory_session.run(["mem_k", "mem_v"], feed)
        return torch.from_numpy(mem_k), torch.from_numpy(mem_v)

    def step_logits(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feed = {n: np.ascontiguousarray(t.cpu().numpy()) for n, t in zip(STEP_INPUTS, inputs)}
        outputs = self.step_session.run(STEP_OUTPUTS, feed)
        return tuple(torch.from_numpy(o) for o in outputs)  # type: ignore[return-value]
