"""Per-step cost of the EMA weight update: the vectorised update against the per-tensor loop.

    python benchmarks/ema_cost.py [--device cpu|cuda] [--threads 1] [--repeats 20]

Models: the Q-Mask tiny recipe's model (recipes/qmask/tiny_cpu.yaml: a random tiny Qwen2.5-VL +
CQMD head) and the paper ViT-S/4 + AR recognizer (recipes/str/vit_small_ar.yaml). Measured in
the same run: "before" is the per-tensor update ocrkit used until issue 16 (``state_dict()``
walked every step, ``mul_`` + ``add_`` per tensor); "after" is :class:`ocrkit.train.ModelEma`
(one ``torch._foreach_lerp_`` over cached parameter/buffer lists). For scale, one AdamW
``step()`` (foreach, the trainer's optimizer) on the same parameters with random gradients.
Ratios are before / after (higher = the new update is cheaper). Median of ``--repeats`` calls.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
import yaml
from torch import nn

from ocrkit.train.ema import ModelEma
from ocrkit.utils.hardware import describe_hardware
from ocrkit.utils.timing import timed

ROOT = Path(__file__).resolve().parents[1]


class LoopEma:
    """The update before issue 16: a Python loop over ``state_dict()`` items every step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module, self.decay = copy.deepcopy(model).eval(), decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d, live = self.decay, model.state_dict()
        for name, shadow in self.module.state_dict().items():
            value = live[name].detach()
            if shadow.is_floating_point():
                shadow.mul_(d).add_(value.to(shadow.dtype), alpha=1.0 - d)
            else:
                shadow.copy_(value)


def _model_section(recipe: str) -> dict:
    return yaml.safe_load((ROOT / recipe).read_text())["model"]


def build(name: str) -> nn.Module:
    if name == "qmask_tiny":
        from ocrkit.anchoring.model import QMask

        return QMask.from_config(_model_section("recipes/qmask/tiny_cpu.yaml"))
    from ocrkit.models import Recognizer

    return Recognizer.from_config(_model_section("recipes/str/vit_small_ar.yaml"))


def bench(name: str, device: str, repeats: int) -> tuple[float, float, float, int, int]:
    torch.manual_seed(0)
    model = build(name).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    optimizer = torch.optim.AdamW(params, lr=1e-4, foreach=True)
    optimizer.step()  # allocate the moments before timing
    old, new = LoopEma(model, 0.999), ModelEma(model, 0.999)
    t_old = timed(lambda: old.update(model), repeats, device)
    t_new = timed(lambda: new.update(model), repeats, device)
    t_opt = timed(optimizer.step, repeats, device)
    for a, b in zip(old.module.parameters(), new.module.parameters()):  # same average
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    n_tensors = len(model.state_dict())
    n_params = sum(p.numel() for p in model.parameters())
    return t_old, t_new, t_opt, n_tensors, n_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["qmask_tiny", "vit_small_ar"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# hardware: {describe_hardware(args.device)}")
    header = f"{'model':<14} {'params':>8} {'tensors':>8} {'before ms':>10} {'after ms':>9}"
    print(f"{header} {'before/after':>13} {'AdamW ms':>9} {'after/AdamW':>12}")
    for name in args.models:
        t_old, t_new, t_opt, n_tensors, n_params = bench(name, args.device, args.repeats)
        print(
            f"{name:<14} {n_params / 1e6:>7.1f}M {n_tensors:>8} {t_old * 1e3:>10.2f} "
            f"{t_new * 1e3:>9.2f} {t_old / t_new:>12.2f}x {t_opt * 1e3:>9.2f} "
            f"{t_new / t_opt:>11.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
