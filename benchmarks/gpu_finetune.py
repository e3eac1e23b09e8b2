"""Fine-tune the default model's recipe on a GPU and report the accuracy it reaches.

    python benchmarks/gpu_finetune.py [--recipe recipes/str/ppocrv6_latin_ctc_gpu.yaml] \\
        [--device cuda|cpu] [--steps N] [--minutes M] [--output runs/gpu_finetune] \\
        [--json OUT.json] [KEY=VALUE ...]

Runs the recipe through ocrkit's own task builder and trainer (the path ``ocrkit train`` takes)
at the recipe's batch size, measures the held-out accuracy of the initial model and of the
best checkpoint (the recipe's held-out slices of the training data; no test set), and prints
steps, step time, images/s, peak GPU memory and both accuracies, with the hardware. ``--device
cpu --steps 2`` runs it end to end on a CPU (the test does that on a tiny data set).

A lent GPU machine sees neither ``../shared/data`` nor the rapidocr wheel: pack the recipe's
data and start weights first (``benchmarks/gpu_pack.py``), then run this script there with
``--recipe .gpudata/recipe.yaml`` (docs/ppocr.md, "The GPU run", has the commands and results).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

DEFAULT_RECIPE = "recipes/str/ppocrv6_latin_ctc_gpu.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=DEFAULT_RECIPE)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--steps", type=int, default=None, help="override train.max_steps")
    parser.add_argument("--minutes", type=float, default=None, help="train.time_limit_min")
    parser.add_argument("--output", type=Path, default=Path("runs/gpu_finetune"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"  # Accelerate would take a GPU if one exists
    import torch
    from accelerate.utils import set_seed

    from ocrkit.config import ConfigError, load_config
    from ocrkit.train.settings import TrainConfig
    from ocrkit.train.tasks import build_task
    from ocrkit.train.trainer import Trainer
    from ocrkit.utils.hardware import describe_hardware

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no GPU; use --device cpu", file=sys.stderr)
        return 2
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.max_steps={args.steps}")
    if args.minutes is not None:
        overrides.append(f"train.time_limit_min={args.minutes}")
    if args.device == "cpu":
        overrides.append('train.mixed_precision="no"')
    try:
        config = load_config(args.recipe, overrides)
        train_config = TrainConfig.from_dict(config.get("train"))
        set_seed(train_config.seed)
        parts = build_task(config)
    except ConfigError as exc:  # a recipe or KEY=VALUE mistake: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if parts.eval_fn is None:
        print("error: the recipe has no held-out slice (data.train.N.holdout)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    parts.model.to(device)
    before = parts.eval_fn(parts.model)
    trainer = Trainer(
        parts.model,
        parts.train_dataset,
        train_config,
        args.output,
        collate_fn=parts.collate_fn,
        eval_fn=parts.eval_fn,
        run_config=config,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    state = trainer.fit()
    seconds = time.perf_counter() - start
    from ocrkit.models import Recognizer

    best_dir = args.output / ("best" if state.best_step is not None else "final")
    best = Recognizer.from_pretrained(best_dir, device=device)
    after = parts.eval_fn(best)
    steps = int(state.global_step)
    result = {
        "recipe": args.recipe,
        "device": args.device,
        "hardware": describe_hardware(),
        "batch_size": train_config.batch_size,
        "steps": steps,
        "seconds": round(seconds, 1),
        "sec_per_step": round(seconds / max(steps, 1), 4),
        "images_per_sec": round(steps * train_config.batch_size / max(seconds, 1e-9), 1),
        "peak_memory_gib": (
            round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None
        ),
        "heldout_before": before,
        "heldout_after": after,
        "best_step": state.best_step,
        "model": str(best_dir),
    }
    print(f"# {result['hardware']}")
    print(
        f"steps {steps}, {result['sec_per_step']} s/step, {result['images_per_sec']} img/s at "
        f"batch {train_config.batch_size}, peak memory {result['peak_memory_gib']} GiB"
    )
    metric = train_config.best_metric
    print(f"held-out {metric}: {before[metric]:.2f} before -> {after[metric]:.2f} after")
    for key in sorted(k for k in after if k.endswith("/accuracy") and k != metric):
        print(f"  {key}: {before[key]:.2f} -> {after[key]:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
