"""Pretraining step time and images/s: MNSP vs. the MIM (MAE) baseline, ViT-Tiny and ViT-Small.

    python benchmarks/pretrain_speed.py [--encoders vit_tiny vit_small] [--batch-size 16]
                                        [--rounds 3] [--threads 2] [--device cpu|cuda]
                                        [--depth N] [--json out.json]

One training step = forward + backward + AdamW update (the trainer's optimizer), random weights
and random images (speed does not depend on them), 32x128 inputs, patch 4. The reference
measured in the same run is the MIM step of the same encoder (MAERec setting: 80% masking,
512-wide 8-block decoder); the ratio is MNSP step time / MIM step time. The models' steps are
interleaved round by round, so load from other processes on a shared machine affects them
alike; every single time is kept in the JSON output.

MNSP runs the student encoder on three views -- ``s_k`` (full), ``s_k+1`` (full, for the MLA
[CLS]) and the masked zoom view (visible 20%) -- and the frozen teacher (no backward) on two:
``s_k+1`` and the whole zoom view. Its cost therefore depends on the scale pair drawn that
step; each pair is timed and the mean over the three (what uniform sampling costs on average)
is reported. The token counts per step are printed so the cost can be read off.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from ocrkit.pretrain import MNSP, MaskedImageModel
from ocrkit.pretrain.masking import num_visible
from ocrkit.train.optim import build_optimizer
from ocrkit.utils.hardware import describe_hardware


class Stepper:
    """One optimizer step of ``model`` on ``batch`` (forward, backward, AdamW)."""

    def __init__(self, model, batch, device: str, **kwargs) -> None:
        self.model, self.batch, self.device, self.kwargs = model.train(), batch, device, kwargs
        self.optimizer = build_optimizer(model, 1e-4, 0.05, betas=(0.9, 0.95))

    def __call__(self) -> float:
        start = time.perf_counter()
        out = self.model.training_step(self.batch, **self.kwargs)
        out["loss"].backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start


def interleaved(steppers: dict[str, Stepper], rounds: int) -> dict[str, list[float]]:
    """One warm-up step each, then ``rounds`` rounds of one step of every stepper in turn, so a
    load change on a shared machine hits all of them alike. Returns the times per stepper."""
    for step in steppers.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            times[name].append(step())
    return times


def bench_encoder(name: str, depth: int | None, batch_size: int, rounds: int, device: str) -> dict:
    encoder = {"name": name, "patch_size": 4}
    if depth:
        encoder["depth"] = depth
    torch.manual_seed(0)
    mim = MaskedImageModel({"encoder": encoder}).to(device)
    teacher = copy.deepcopy(mim.encoder)
    mnsp = MNSP({"encoder": encoder}, teacher=teacher).to(device)
    images = torch.randn(batch_size, 3, 32, 128, device=device)
    views = {"small": images, "large": images.flip(0), "zoom": images.flip(-1)}
    steppers = {"mim": Stepper(mim, {"images": images}, device)}
    for k in range(len(mnsp.scales) - 1):
        steppers[f"pair{k}"] = Stepper(mnsp, {"views": views}, device, pair=k)
    times = interleaved(steppers, rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"encoder": name, "depth": depth or len(mim.encoder.blocks), "batch_size": batch_size}
    result["times"] = times
    result["mim_s"] = med["mim"]
    result["mnsp_pair_s"] = [med[f"pair{k}"] for k in range(len(mnsp.scales) - 1)]
    result["mnsp_s"] = statistics.mean(result["mnsp_pair_s"])
    n = [g[0] * g[1] for g in mnsp.grids]
    visible = num_visible(n[-1], mnsp.config["mask_ratio"])
    result["tokens_mim_encoder"] = visible
    result["tokens_mnsp_student"] = [n[k] + n[k + 1] + visible for k in range(len(n) - 1)]
    result["tokens_mnsp_teacher"] = [n[k + 1] + n[-1] for k in range(len(n) - 1)]
    result["params_mim"] = sum(p.numel() for p in mim.parameters() if p.requires_grad)
    result["params_mnsp"] = sum(p.numel() for p in mnsp.parameters() if p.requires_grad)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encoders", nargs="+", default=["vit_tiny", "vit_small"])
    parser.add_argument("--depth", type=int, default=None, help="encoder depth (default: 12)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="timed steps per model (interleaved)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# hardware: {describe_hardware(args.device)}")
    print(
        f"# batch {args.batch_size}, 32x128, patch 4, median of {args.rounds} interleaved steps (fwd+bwd+AdamW)"
    )
    rows = []
    for name in args.encoders:
        r = bench_encoder(name, args.depth, args.batch_size, args.rounds, args.device)
        rows.append(r)
        b = r["batch_size"]
        print(
            f"\n## {name} (depth {r['depth']}): trainable params MIM {r['params_mim'] / 1e6:.1f}M, "
            f"MNSP {r['params_mnsp'] / 1e6:.1f}M"
        )
        print(
            f"{'model':<22}{'step s':>9}{'min-max s':>15}{'images/s':>10}{'x MIM':>8}"
            "  tokens (student | teacher)"
        )
        keys = ["mim"] + [f"pair{k}" for k in range(len(r["mnsp_pair_s"]))]
        labels = ["MIM (reference)", "MNSP pair (s1,s2)", "MNSP pair (s2,s3)", "MNSP pair (s3,s4)"]
        medians = [r["mim_s"], *r["mnsp_pair_s"]]
        tokens = [f"{r['tokens_mim_encoder']} | -"] + [
            f"{a} | {t}" for a, t in zip(r["tokens_mnsp_student"], r["tokens_mnsp_teacher"])
        ]
        for key, label, t, tok in zip(keys, labels, medians, tokens):
            spread = f"{min(r['times'][key]):.2f}-{max(r['times'][key]):.2f}"
            print(f"{label:<22}{t:>9.3f}{spread:>15}{b / t:>10.1f}{t / r['mim_s']:>8.2f}  {tok}")
        print(
            f"{'MNSP (mean of pairs)':<22}{r['mnsp_s']:>9.3f}{'':>15}{b / r['mnsp_s']:>10.1f}"
            f"{r['mnsp_s'] / r['mim_s']:>8.2f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"hardware": describe_hardware(args.device), "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
