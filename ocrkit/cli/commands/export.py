"""``ocrkit export onnx``: write a recognizer as ONNX graphs for onnxruntime serving."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ocrkit.cli import CliError

ONNX_DESCRIPTION = """\
Export a recognizer folder (config.json, model.safetensors, charset.json) to ONNX.

Writes to --output:
  encoder.onnx   normalized images [batch, 3, H, W] -> memory tokens [batch, S, C]
  decoder.onnx   memory [batch, S, C] + token ids [batch, length] (int64) -> logits
                 [batch, length, classes]: one pass of the decoder network on a whole sequence
  decoder_memory.onnx, decoder_step.onnx
                 AR only: key/value-cached greedy decoding (memory keys/values once, then one
                 token per step against the cache)
  config.json    the model config (preprocessing, charset, decoder and its sampling defaults)
  charset.json   the character set
  onnx.json      opset, graph inputs/outputs, versions, measured max abs differences to torch

Decoding loops (AR greedy, MDiff samplers and revise) stay in Python and call the graphs at
each step, so every --decode option works as with the torch model (AR: use_cache=false runs
decoder.onnx on the whole prefix instead of the cached step graph).
"""

ONNX_EXAMPLES = """\
examples:
  ocrkit export onnx --model runs/str/best --output runs/str/best-onnx
  ocrkit recognize --onnx runs/str/best-onnx word1.png word2.jpg
  ocrkit eval --onnx runs/str/best-onnx --data data/str/iiit5k_test
  python -c "from ocrkit.export import OnnxRecognizer; \\
      print(OnnxRecognizer.from_pretrained('runs/str/best-onnx').recognize('word.png'))"

needs: pip install 'ocrkit[onnx]' (onnx, onnxruntime; --dynamo also needs onnxscript)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a recognizer (ONNX)",
        description="Export a trained recognizer to another runtime.",
    )
    formats = parser.add_subparsers(dest="format", metavar="FORMAT")
    onnx = formats.add_parser(
        "onnx",
        help="encoder.onnx + decoder.onnx for onnxruntime",
        description=ONNX_DESCRIPTION,
        epilog=ONNX_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    onnx.add_argument("--model", required=True, metavar="DIR", help="recognizer folder")
    onnx.add_argument("--output", required=True, metavar="DIR", help="folder to write")
    onnx.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    onnx.add_argument(
        "--dynamo",
        action="store_true",
        help="use the torch.export-based exporter (opset >= 18, needs onnxscript)",
    )
    onnx.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="do not run the graphs once with onnxruntime to compare them with torch",
    )
    onnx.set_defaults(func=run_onnx)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_onnx(args: argparse.Namespace) -> int:
    from ocrkit.export.onnx import META_NAME, export_onnx

    try:
        directory = export_onnx(args.model, args.output, args.opset, args.dynamo, args.verify)
    except ImportError as exc:
        raise CliError(str(exc)) from None
    meta = json.loads((directory / META_NAME).read_text(encoding="utf-8"))
    diffs = meta.get("max_abs_diff")
    checked = ", ".join(f"{k} {v:.2g}" for k, v in diffs.items()) if diffs else "not run"
    print(f"wrote {directory} (opset {meta['opset']}; max abs difference to torch: {checked})")
    return 0


EMBEDDED_NAMES = ("default", "tiny")
EXPORT_LAYOUT = b"ctc-logits-in-encoder"  # CTC frame logits written by encoder.onnx


def embedded_onnx_dir(name: str) -> Any:
    """The ONNX export of an embedded model (``--onnx default``), written once into the ocrkit
    cache (``$OCRKIT_CACHE`` or ``~/.cache/ocrkit``) on first use, keyed by the content of the
    embedded folder's config and weights (new weights, a new export)."""
    import hashlib
    from pathlib import Path

    from ocrkit.models.default import embedded_model_dir
    from ocrkit.utils.paths import cache_dir

    cache = cache_dir()
    digest = hashlib.sha256(EXPORT_LAYOUT)  # a new graph layout, a new export
    if name in EMBEDDED_NAMES:
        for file in ("config.json", "model.safetensors"):
            digest.update((embedded_model_dir(name) / file).read_bytes())
    target = cache / "onnx" / f"{name}-{digest.hexdigest()[:16]}"
    if Path(target / "onnx.json").is_file():
        return target
    if Path(name).is_dir():
        return Path(name)
    import sys

    from ocrkit.export.onnx import export_onnx  # torch: only the first time

    print(f"exporting the embedded {name} model to ONNX once, into {target}", file=sys.stderr)
    return export_onnx(embedded_model_dir(name), target)


def load_model(model: str | None, onnx: str | None, device: str | None = None) -> Any:
    """The predictor of ``--model DIR`` (torch) or ``--onnx DIR`` (onnxruntime; ``--device
    cuda`` picks its CUDA provider) for ``ocrkit recognize`` and ``ocrkit eval``."""
    if onnx is None:
        from ocrkit.cli import check_device
        from ocrkit.models import load_recognizer

        check_device(device)
        return load_recognizer(model, device=device)
    from ocrkit.export.onnx_runtime import OnnxRecognizer, providers_for

    try:
        providers = providers_for(device)
        if providers:
            import onnxruntime

            available = onnxruntime.get_available_providers()
            if providers[0][0] not in available:
                raise CliError(
                    f"--device {device}: this onnxruntime has no {providers[0][0]} (it has "
                    f"{', '.join(available)}); install onnxruntime-gpu or use --device cpu"
                )
        onnx = str(embedded_onnx_dir(onnx)) if onnx in EMBEDDED_NAMES else onnx
        return OnnxRecognizer.from_pretrained(onnx, providers=providers)
    except ImportError as exc:
        raise CliError(str(exc)) from None
