"""The ``ocrkit`` command line.

Each module in :mod:`ocrkit.cli.commands` adds one subcommand through a ``register(subparsers)``
function and sets ``func`` on its parser; this module only discovers and dispatches them, so a new
subcommand is a new file and nothing else. Command modules import heavy libraries (torch, the
models) inside their ``run`` functions so that ``ocrkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from ocrkit import __version__
from ocrkit.cli import commands


class CliError(Exception):
    """An error the user can fix; printed as one line without a traceback."""


def add_model_source(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """``--model DIR | --onnx DIR``: the recognizer a command reads with (``recognize``,
    ``read``, ``eval``); returns the group, so a command can add another source to it."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--model",
        metavar="DIR",
        help="recognizer folder, or an embedded model: default (PP-OCRv6-based, Latin; used "
        "when no source is given) or tiny",
    )
    source.add_argument(
        "--onnx",
        metavar="DIR",
        help="ONNX folder from 'ocrkit export onnx' (onnxruntime), or default/tiny (exported "
        "into the cache on first use)",
    )
    return source


def add_decode_option(parser: argparse.ArgumentParser) -> None:
    """``--decode KEY=VALUE`` (repeatable): options passed to the model's decoder."""
    parser.add_argument(
        "--decode",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="decoder option, repeatable; values are YAML scalars, e.g. --decode sampler=parallel "
        "--decode steps=1 (MDiff) or --decode use_cache=false (AR)",
    )


def decode_options(items: Sequence[str], model=None) -> dict:
    """Parse ``--decode`` items into keyword arguments; with ``model``, check it accepts them.

    The check reads one blank image, so a misspelt option fails at once with the decoder's own
    message instead of after a long evaluation.
    """
    from ocrkit.config import parse_scalar

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--decode expects KEY=VALUE, got {item!r}")
        options[key.strip()] = parse_scalar(value)
    if options and model is not None:
        import numpy as np

        try:
            model.predict([np.zeros((32, 128, 3), np.uint8)], **options)
        except TypeError as exc:
            name = type(getattr(model, "decoder", model)).__name__
            raise CliError(f"{name} does not accept --decode {options}: {exc}") from None
    return options


def check_device(device: str | None) -> None:
    """A torch ``--device`` that this machine has, else :class:`CliError` (one line, not
    torch's traceback). Imports torch only for a device other than ``cpu``."""
    if device is None or device == "cpu":
        return
    import torch

    try:
        kind = torch.device(device)
    except RuntimeError as exc:
        raise CliError(f"--device {device}: {exc}") from None
    if kind.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise CliError(f"--device {device}: torch sees no CUDA GPU here; use --device cpu")
        if kind.index is not None and kind.index >= count:
            raise CliError(f"--device {device}: only {count} CUDA device(s) (cuda:0..{count - 1})")
    elif kind.type == "mps" and not torch.backends.mps.is_available():
        raise CliError(f"--device {device}: MPS is not available here; use --device cpu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrkit",
        description="Scene text recognition and text anchoring toolkit.",
        epilog="Run 'ocrkit COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"ocrkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as a message at interpreter exit
        return code
    except BrokenPipeError:  # `ocrkit recognize ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail
        return 1
    except (CliError, OSError, KeyError, ValueError) as exc:  # OSError: a folder, permissions
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"ocrkit {args.command}: error: {message}", file=sys.stderr)
        if args.verbose:
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main())
