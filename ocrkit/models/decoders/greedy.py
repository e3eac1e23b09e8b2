"""Torch-free read-out helpers shared by the PyTorch decoders and the ONNX runtime path."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax of a ``float`` array along ``axis``."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


def collapse_greedy_array(
    probs: np.ndarray, blank: int = 0, length: int | None = None
) -> np.ndarray:
    """Greedy CTC path of ``probs [B, T, K]`` as ``[B, L, K]``: the frames that emit a character
    (argmax not blank, not a repeat of the previous frame), left-aligned, then one-hot blank rows.
    ``L`` is ``length`` or the longest emitted path + 1."""
    b, _, k = probs.shape
    ids = probs.argmax(-1)
    previous = np.concatenate([np.full_like(ids[:, :1], blank), ids[:, :-1]], axis=1)
    emit = (ids != blank) & (ids != previous)
    counts = emit.sum(axis=1)
    length = int(length if length is not None else (int(counts.max()) if b else 0) + 1)
    out = np.zeros((b, length, k), dtype=probs.dtype)
    out[:, :, blank] = 1.0
    rows, frames = np.nonzero(emit)
    slots = np.cumsum(emit, axis=1)[rows, frames] - 1
    keep = slots < length - 1
    out[rows[keep], slots[keep]] = probs[rows[keep], frames[keep]]
    return out
