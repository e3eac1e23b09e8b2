"""MNSP's L_mim target choices in one short CPU pretraining run each (docs/mnsp.md).

Four runs of ``recipes/pretrain/mnsp_vit_tiny_cpu.yaml`` (same seed, data order, schedule and
teacher), one per ``model.mim_target`` x ``model.target_norm``:

* ``original`` / ``none``: Eq. 3 (the default): the teacher on the original image, its tokens
  cropped to the zoom box and resampled to the zoom grid, as they are;
* ``zoom`` / ``layernorm``: ocrkit's earlier target (teacher on the zoom view, LMIM's LayerNorm);
* the two mixed cells.

Loss values of different targets are not on one scale, so the table also divides ``loss_mim``
by the targets' per-channel variance across the tokens of an image (``mim_target_var``, logged
by the model): the fraction of the target's spatial variance left unexplained (1.0 = predicting
each image's mean token). Printed per step window, with the CPU model and the thread count::

    python benchmarks/mnsp_targets.py --steps 150 --output runs/mnsp_targets   # trains 4 runs
    python benchmarks/mnsp_targets.py --output runs/mnsp_targets --no-train     # table + plot only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

VARIANTS = [
    ("original", "none"),
    ("zoom", "layernorm"),
    ("original", "layernorm"),
    ("zoom", "none"),
]
RECIPE = "recipes/pretrain/mnsp_vit_tiny_cpu.yaml"


def train(out: Path, steps: int, minutes: float) -> None:
    for target, norm in VARIANTS:
        cmd = [
            sys.executable, "-m", "ocrkit", "train", "--output", str(out / f"{target}-{norm}"),
            RECIPE, f"model.mim_target={target}", f"model.target_norm={norm}",
            f"train.max_steps={steps}", "train.threads=1", "train.num_workers=0",
            "train.save_every=100000", f"train.time_limit_min={minutes}", "train.log_every=10",
        ]  # fmt: skip
        subprocess.run(cmd, check=True)


def read(out: Path) -> dict[str, list[dict]]:
    runs = {}
    for target, norm in VARIANTS:
        path = out / f"{target}-{norm}" / "metrics.jsonl"
        if path.is_file():
            lines = path.read_text().splitlines()
            runs[f"{target}-{norm}"] = [json.loads(x) for x in lines if "train/loss_mim" in x]
    return runs


def window(recs: list[dict], lo: int, hi: int) -> dict[str, float]:
    sel = [r for r in recs if lo <= r["step"] <= hi]
    mean = {k: sum(r[f"train/{k}"] for r in sel) / len(sel) for k in ("loss_mim", "loss_nsp")}
    var = sum(r["train/mim_target_var"] for r in sel) / len(sel)
    return {**mean, "var": var, "rel": mean["loss_mim"] / var}


def table(runs: dict[str, list[dict]], windows: list[tuple[int, int]]) -> str:
    head = "| mim_target / target_norm | steps | " + " | ".join(
        f"L_mim / var / rel, steps {a}-{b}" for a, b in windows
    )
    lines = [head + " |", "|---|---|" + "---|" * len(windows)]
    for name, recs in runs.items():
        cells = []
        for a, b in windows:
            w = window(recs, a, b)
            cells.append(f"{w['loss_mim']:.3f} / {w['var']:.3f} / **{w['rel']:.3f}**")
        lines.append(
            f"| {name.replace('-', ' / ')} | {recs[-1]['step']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, recs in runs.items():
        steps = [r["step"] for r in recs]
        axes[0].plot(steps, [r["train/loss_mim"] for r in recs], label=name)
        rel = [r["train/loss_mim"] / r["train/mim_target_var"] for r in recs]
        axes[1].plot(steps, rel, label=name)
    axes[0].set_title("L_mim (each target on its own scale)")
    axes[1].set_title("L_mim / target variance")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--output", default="runs/mnsp_targets")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--minutes", type=float, default=20.0, help="wall limit per run")
    p.add_argument("--no-train", action="store_true", help="only read finished runs")
    p.add_argument("--plot", default=None, help="write the loss curves to this PNG")
    args = p.parse_args()
    out = Path(args.output)
    if not args.no_train:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        train(out, args.steps, args.minutes)
    runs = read(out)
    if not runs:
        raise SystemExit(f"no finished runs under {out}")
    last = min(r[-1]["step"] for r in runs.values())
    windows = [(10, 30), (40, 60), (max(10, last - 30), last)]
    print(f"cpu: {cpu_name()}, 1 thread per run")
    print(table(runs, windows))
    if args.plot:
        plot(runs, Path(args.plot))
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
