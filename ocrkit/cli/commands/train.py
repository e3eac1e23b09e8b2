"""``ocrkit train``: train a model from a YAML recipe with ``key=value`` overrides."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

TOP_LEVEL_KEYS = ("task", "description", "output", "model", "init", "data", "train")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a recipe",
        description="Train from a YAML recipe (see recipes/ and docs/training.md). Overrides "
        "are dotted keys with YAML values, e.g. train.lr=3e-4 train.max_steps=100 "
        "data.augment=null; prefix a new key with '+'. Runs under 'accelerate launch' unchanged.",
        epilog="example: ocrkit train recipes/str/vit_tiny_ar_cpu.yaml train.max_steps=200 "
        "--output runs/try1",
    )
    parser.add_argument("recipe", metavar="RECIPE", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    parser.add_argument(
        "--output", metavar="DIR", help="output folder (default: the recipe's 'output' key)"
    )
    parser.add_argument(
        "--resume",
        metavar="auto|PATH",
        default=None,
        help="'auto': continue from the latest checkpoint in the output folder (fresh if none); "
        "PATH: a checkpoints/step-* folder or an output folder",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved recipe and exit")
    parser.set_defaults(func=run)


def _check_top_level(config: dict) -> None:
    from ocrkit.config import ConfigError

    for key in config:
        if key not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"recipe key {key}: unknown.{hint} Known: {', '.join(TOP_LEVEL_KEYS)}"
            )


def run(args: argparse.Namespace) -> int:
    from ocrkit.cli import CliError
    from ocrkit.config import dump, load_config
    from ocrkit.train import checkpoint as ckpt

    config = load_config(args.recipe, args.overrides)
    _check_top_level(config)
    output = args.output or config.get("output") or f"runs/{Path(args.recipe).stem}"
    config["output"] = str(output)
    from ocrkit.train.settings import TrainConfig

    train_config = TrainConfig.from_dict(config.get("train"))
    print(dump(config), end="")
    print(f"# output: {Path(output).resolve()}")
    if args.dry_run:
        return 0
    if args.resume is None and ckpt.latest_checkpoint(output) is not None:
        raise CliError(
            f"{output} already holds checkpoints; pass --resume auto to continue that run, or "
            f"--output NEW_DIR to start a new one"
        )

    from ocrkit.train.tasks import build_task
    from ocrkit.train.trainer import NonFiniteLossError, Trainer
    from ocrkit.utils.io import atomic_write_text

    if train_config.threads:
        import torch

        torch.set_num_threads(train_config.threads)
    from accelerate.utils import set_seed

    # Seed before anything random is built (model init, holdout split, synthetic data) so one
    # seed gives one run; the trainer reseeds per process afterwards.
    set_seed(train_config.seed)
    parts = build_task(config)
    for key, value in parts.info.items():
        print(f"# {key}: {value}")
    trainer = Trainer(
        parts.model,
        parts.train_dataset,
        train_config,
        output,
        collate_fn=parts.collate_fn,
        eval_fn=parts.eval_fn,
        run_config=config,
    )
    from accelerate import PartialState

    from ocrkit.train.parts import cpu_world

    if PartialState(cpu=cpu_world()).is_main_process:
        atomic_write_text(Path(output) / "config.yaml", dump(config))
    from ocrkit.train.sharded import UnsupportedSetup

    try:
        state = trainer.fit(resume=args.resume)
    except (NonFiniteLossError, UnsupportedSetup) as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        print(
            f"interrupted; continue with: ocrkit train {args.recipe} --output {output} --resume auto",
            file=sys.stderr,
        )
        return 130
    print(f"# done: step {state.global_step}, best {train_config.best_metric}={state.best_metric}")
    print(f"# final model: {Path(output) / 'final'}")
    if state.best_step is not None:
        print(f"# best model (step {state.best_step}): {Path(output) / 'best'}")
    return 0
