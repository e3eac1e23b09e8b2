"""Paper-recipe smoke run: N optimizer steps of each paper-scale recipe through the trainer.

    python benchmarks/gpu_smoke.py [--device cuda|cpu] [--steps 30] [--batch B] [--grad-accum K]
                                   [--recipes vit_small_ar mim_vit_small ...] [--qmask-size tiny|mid]

Each recipe's ``model`` and ``train`` sections are used as written (bf16 autocast, AdamW, the
schedule, clipping, EMA) with ``max_steps`` = ``--steps``; its data are replaced by synthetic
words (``{type: synth}``) or synthetic anchoring scenes (Q-Mask), since the paper corpora are not
here. Q-Mask stage 1 runs on a random tiny-config Qwen2.5-VL (``--qmask-size``) instead of the
3B base; MNSP gets a random ViT-S teacher folder (speed does not depend on its weights). The
batches are loaded before the clock starts, so the numbers are the training step alone (data
feed: benchmarks/data_pipeline.py). Per recipe it prints: parameters, images per optimizer step,
median seconds per step after the first (warm-up) step, images/s, peak memory (CUDA allocator;
on CPU the process's peak RSS), the loss of every step, and the projected time of the paper's
full schedule (epochs x training images / images/s) on one device and on 8 at linear scaling.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from ocrkit.utils.hardware import describe_hardware

ROOT = Path(__file__).resolve().parents[1]

# name: (recipe, training images of one epoch in the paper's setting, where that number is from)
RECIPES: dict[str, tuple[str, float, str]] = {
    "vit_small_ar": ("recipes/str/vit_small_ar.yaml", 4.0e6, "Union14M-L, ~4M labeled"),
    "mim_vit_small": ("recipes/pretrain/mim_vit_small.yaml", 10.0e6, "Union14M-U, ~10M"),
    "mnsp_vit_small": ("recipes/pretrain/mnsp_vit_small.yaml", 10.0e6, "Union14M-U, ~10M"),
    "svtrv2_small_mdiff": (
        "recipes/str/svtrv2_small_mdiff.yaml",
        3.2e6,
        "Union14M-L-Filter, ~3.2M (assumed)",
    ),
    "qmask_stage1": ("recipes/qmask/stage1.yaml", 26.0e6, "TextAnchor-26M, 26M samples"),
}


def smoke_config(name: str, steps: int, batch: int | None, accum: int | None, args) -> dict:
    """The recipe with synthetic data and the smoke-run training length."""
    config = yaml.safe_load((ROOT / RECIPES[name][0]).read_text())
    train = config["train"]
    train.update(max_steps=steps, save_every=0, eval_every=0, log_every=10**9, trackers=[])
    if batch:
        train["batch_size"] = batch
    if accum:
        train["grad_accum"] = accum
    if args.device == "cpu":
        train["num_workers"] = 0
    n = max(64, 2 * steps * train["batch_size"] * train.get("grad_accum", 1))
    if config["task"] == "qmask":
        model = {k: v for k, v in config["model"].items() if k != "base"}
        config["model"] = {**model, "tiny": "qwen2_5_vl", "tiny_size": args.qmask_size}
        spec = {"type": "synth", "num_images": n // 2 + 1, "seed": 0, "tasks": ["r2t", "t2r"]}
        config["data"] = {"train": [{**spec, "per_image": 2}], "cache_dir": args.cache}
    else:
        synth = {"type": "synth", "num_samples": n, "seed": 0}
        config["data"] = {k: v for k, v in config["data"].items() if k in ("protocol", "augment")}
        config["data"]["train"] = [synth]
        config.pop("init", None)
    if config["task"] == "mnsp":
        config["model"]["teacher"] = str(_random_teacher(args.cache))
    return config


def _random_teacher(cache: str) -> Path:
    from ocrkit.pretrain.mim import MaskedImageModel

    folder = Path(cache) / "random_vit_small_teacher"
    if not (folder / "config.json").is_file():
        model_cfg = yaml.safe_load((ROOT / RECIPES["mim_vit_small"][0]).read_text())["model"]
        MaskedImageModel.from_config(model_cfg).save_pretrained(folder)
    return folder


def _reset_accelerate() -> None:
    """Each recipe gets a fresh Accelerate state (it is process-wide and holds the precision)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def run_recipe(name: str, args) -> dict[str, Any]:
    from ocrkit.train import TrainConfig, Trainer
    from ocrkit.train.tasks import build_task

    config = smoke_config(name, args.steps, args.batch, args.grad_accum, args)
    train_cfg = TrainConfig.from_dict(config["train"])
    torch.manual_seed(0)
    parts = build_task(config)
    params = sum(p.numel() for p in parts.model.parameters())
    trainer = Trainer(parts.model, parts.train_dataset, train_cfg, Path(args.cache) / "out" / name)
    trainer.collate_fn = parts.collate_fn
    _reset_accelerate()
    try:
        trainer._setup()  # the trainer's own Accelerator, optimizer, schedule, EMA
        loader = iter(trainer._loader())
        micro = [next(loader) for _ in range(args.steps * train_cfg.grad_accum)]
        cuda = trainer.acc.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        batches, times, losses = iter(micro), [], []
        for _ in range(args.steps):
            start = time.perf_counter()
            out = trainer._train_step(batches)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            losses.append(out["loss"])
        peak = torch.cuda.max_memory_allocated() if cuda else _peak_rss()
    finally:
        _reset_accelerate()
    images = train_cfg.batch_size * train_cfg.grad_accum
    step = statistics.median(times[1:] if len(times) > 1 else times)
    recipe = yaml.safe_load((ROOT / RECIPES[name][0]).read_text())["train"]
    total = recipe["epochs"] * RECIPES[name][1]
    return {
        "name": name,
        "params": params,
        "images": images,
        "step": step,
        "ips": images / step,
        "peak": peak,
        "losses": losses,
        "schedule": f"{recipe['epochs']} ep x {RECIPES[name][2]}",
        "hours": total / (images / step) / 3600,
    }


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def report(rows: list[dict[str, Any]], device: str) -> None:
    mem = "peak GiB" if device.startswith("cuda") else "peak RSS GiB"
    print(
        f"{'recipe':<19} {'params':>8} {'img/step':>8} {'s/step':>8} {'img/s':>8} {mem:>12} "
        f"{'1-dev h':>9} {'8-dev h':>8}  schedule"
    )
    for r in rows:
        print(
            f"{r['name']:<19} {r['params'] / 1e6:>7.1f}M {r['images']:>8} {r['step']:>8.3f} "
            f"{r['ips']:>8.1f} {r['peak'] / 2**30:>12.2f} {r['hours']:>9.1f} "
            f"{r['hours'] / 8:>8.1f}  {r['schedule']}"
        )
    print("loss per step:")
    for r in rows:
        trend = " ".join(f"{v:.3f}" for v in r["losses"])
        print(f"  {r['name']:<19} {trend}")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, help="per-device batch (default: the recipe's)")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per step (default: recipe)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--qmask-size", default="tiny", choices=["tiny", "mid"])
    parser.add_argument("--cache", help="synthetic data and outputs (default: a temporary folder)")
    parser.add_argument("--threads", type=int, help="torch threads (CPU)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; pass --device cpu")
    if args.device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"  # even where a GPU exists
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        args.cache = args.cache or tmp
        os.environ.setdefault("OCRKIT_CACHE", args.cache)
        print(f"# hardware: {describe_hardware(args.device)}", flush=True)
        print(f"# {args.steps} steps per recipe, bf16 autocast, device {args.device}", flush=True)
        rows = []
        for name in args.recipes:
            start = time.perf_counter()
            rows.append(run_recipe(name, copy.copy(args)))
            print(f"# {name}: done in {time.perf_counter() - start:.1f} s wall", flush=True)
        report(rows, args.device)
    return rows


if __name__ == "__main__":
    main()
