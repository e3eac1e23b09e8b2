"""Reading weight files: safetensors by default, pickles only when the user trusts them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


def load_state_dict(path: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file (or a folder holding ``model.safetensors``).

    Pickle files (``.pt``, ``.pth``, ``.ckpt``, ``.bin``) run code when loaded, so they are read
    only with ``trust_pickle=True`` (and then with ``weights_only=True``); a ``state_dict`` or
    ``model`` entry inside them is unwrapped.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if path.suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise ValueError(
                f"{path} is a pickle file, which can run code when loaded; convert it to "
                "safetensors or pass trust_pickle=True (--trust-pickle) if you trust its source"
            )
        data = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
                data = data[key]
        return dict(data)
    raise ValueError(f"unknown weights format {path.suffix!r} ({path}); expected .safetensors")


def select_prefix(
    state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], str]:
    """Entries under the first prefix of ``prefixes`` that matches any key, with it stripped."""
    for prefix in prefixes:
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if sub:
            return sub, prefix
    raise KeyError(f"no weights under any of the prefixes {list(prefixes)}")


def interpolate_state_dicts(
    start: Mapping[str, torch.Tensor], end: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * start + alpha * end`` for every floating tensor; other tensors (integer
    counters) are taken from ``end``. Weight-space ensembling of a fine-tuned model with its
    starting point (WiSE-FT, Wortsman et al., CVPR 2022): ``alpha=0`` is the start, 1 the end."""
    if set(start) != set(end):
        raise ValueError(
            f"the two state dicts differ in keys: {sorted(set(start) ^ set(end))[:5]} ..."
        )
    out = {}
    for key, b in end.items():
        a = start[key]
        if a.shape != b.shape:
            raise ValueError(f"{key}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        out[key] = torch.lerp(a.to(b.dtype), b, float(alpha)) if b.is_floating_point() else b
    return out
