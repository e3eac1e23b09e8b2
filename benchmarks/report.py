"""The benchmark report: accuracy and CPU speed of ocrkit models and an external recognizer.

    python benchmarks/report.py --models vit-tiny=runs/str/vit_tiny_ar_cpu/best \\
        'mdiff-1pass=runs/x/final@sampler=parallel,steps=1' \\
        --data iiit5k=../shared/data/str/iiit5k_test svt=../shared/data/str/svt_test \\
        [--threads 2] [--repeats 10] [--limit N] [--no-onnx] [--no-external] \\
        [--carry NAME ... [--carry-from docs/benchmarks.json]] \\
        [--output docs/benchmarks.md] [--json docs/benchmarks.json] [--plot PATH]

A model row is ``NAME=DIR`` or ``NAME=DIR@key=val,key=val`` (decode options passed to
``predict``, parsed like ``ocrkit eval --decode``); ``default`` is the embedded default model.
Every row is measured with PyTorch and, exported to a temporary folder, with ONNX Runtime; the
external rows (PP-OCRv6 small and PP-OCRv4 through their own wheels) are measured in the same
run. Predictions are made once per row and backend and scored under every protocol; then every
row is timed in ``--repeats`` interleaved rounds (a drift of the machine reaches all rows alike).
Speeds are also given as ratios against ``--reference`` (PP-OCRv6 small) measured in the same
run. ``--carry NAME`` copies the rows of a model no longer at hand from an earlier report's JSON
(same sets required), marked with a dagger; their speed ratios use the reference of their own
run. The page lists what each model is (architecture, recipe,
encoder initialization, checkpoint step). Writes Markdown, a JSON of every number and a PNG plot
of accuracy against throughput; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import itertools
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ocrkit.cli import CliError, decode_options
from ocrkit.utils.hardware import describe_hardware

# The page module sits next to this script (run as a script or loaded by path in the tests).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_measure import (  # noqa: E402
    PROTOCOLS,
    PredictFn,
    Timer,
    log,
    measure_speeds,
    predict_sets,
    score,
)
from report_page import BATCH, build_markdown, plot  # noqa: E402
from report_rows import (  # noqa: E402
    EXTERNAL_ROWS,
    add_paired,
    carry_rows,
    describe_model,
    onnx_params,
)


@dataclass
class RowSpec:
    """One ``--models`` entry: a name, a model folder (None: the default model), decode options."""

    name: str
    path: str | None
    options: dict[str, Any] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)  # the KEY=VALUE strings, as given


def parse_row(spec: str) -> RowSpec:
    """``NAME=DIR``, ``NAME=DIR@k=v,k=v``, ``default`` or ``DIR`` -> :class:`RowSpec`."""
    head, _, opts = spec.partition("@")
    name, eq, path = head.partition("=")
    if not eq:
        name, path = (head, "default") if head == "default" else (Path(head).name, head)
    if not name.strip() or not path.strip():
        raise CliError(f"model row {spec!r} is not NAME=DIR[@key=val,...]")
    items = [item for item in opts.split(",") if item.strip()] if opts else []
    path = path.strip()
    try:
        options = decode_options(items)
    except CliError as exc:
        raise CliError(f"model row {spec!r}: {exc}") from None
    return RowSpec(name.strip(), None if path == "default" else path, options, items)


def parse_data(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` or ``PATH`` (named after its folder) -> ``(name, path)``."""
    name, eq, path = spec.partition("=")
    if not eq:
        return Path(spec.rstrip("/")).name, spec
    return name, path


def run_backend(
    common: dict, backend: str, predict: PredictFn, datasets: Mapping[str, Any], timers: list
) -> dict:
    """The row (``common`` and the accuracy under every protocol) of one model on one backend;
    its speed is measured later with every other row's (:func:`measure_speeds`), so ``predict``
    joins ``timers``."""
    name = common["name"]
    start = time.perf_counter()
    predictions, unreadable = predict_sets(predict, datasets)
    correct: dict[str, set[tuple[str, str]]] = {}
    accuracy = score(predictions, datasets, unreadable, correct=correct)
    log(
        f"  {name} [{backend}]: predicted the sets in {time.perf_counter() - start:.1f} s, "
        f"parseq36 {accuracy['parseq36']['combined']['accuracy']:.2f}%"
    )
    row = {**common, "backend": backend, "accuracy": accuracy, "speed": None, "error": None}
    row |= {"correct": correct}  # in memory only: add_paired turns it into counts
    timers.append(Timer(f"{name} [{backend}]", predict, row))
    return row


def load_sets(specs: Sequence[str], limit: int | None) -> tuple[dict, dict, list]:
    """``(datasets to evaluate, their JSON description, speed images)``."""
    from ocrkit.data import SubsetStrDataset, open_dataset

    datasets, info, images = {}, {}, []
    for spec in specs:
        name, path = parse_data(spec)
        full = open_dataset(path)
        datasets[name] = SubsetStrDataset(full, range(min(limit, len(full)))) if limit else full
        info[name] = {"path": path, "samples": len(datasets[name]), "dropped": dict(full.dropped)}
        if not images:  # the first set gives the speed images, whatever --limit says
            samples = (full[i] for i in range(min(BATCH, len(full))))
            images = [s.image for s in samples if s is not None]
    if not images:
        raise CliError(f"no readable image in {specs[0]} for the speed measurement")
    return datasets, info, images


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect(args: argparse.Namespace, command: str) -> dict:
    """Measure every row on every backend; the result is the report's JSON."""
    from ocrkit.models import load_recognizer
    from ocrkit.text.protocols import get_protocol

    torch.set_num_threads(args.threads)
    specs = [parse_row(spec) for spec in args.models]
    models = []
    for spec in specs:  # a bad row or a misspelt decode option fails before any measurement
        try:
            models.append(load_recognizer(spec.path))
            decode_options(spec.items, models[-1])
        except (CliError, FileNotFoundError) as exc:
            raise CliError(f"model row {spec.name!r}: {exc}") from None
    datasets, info, images = load_sets(args.data, args.limit)
    carried = carry_rows(args.carry_from, args.carry, datasets) if args.carry else []
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    versions |= {
        d: _version(d) for d in ("ocrkit", "onnxruntime", "rapidocr", "rapidocr-onnxruntime")
    }
    result: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "hardware": describe_hardware(),
        "threads": args.threads,
        "reference": args.reference,
        "repeats": args.repeats,
        "limit": args.limit,
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "versions": versions,
        "datasets": info,
        "protocols": {p: get_protocol(p).describe() for p in PROTOCOLS},
        "speed_images": {"set": next(iter(datasets)), "unique": len(images), "batch": BATCH},
        "rows": [],
        "notes": [],
    }
    images = list(itertools.islice(itertools.cycle(images), BATCH))  # always a full batch
    with contextlib.ExitStack() as keep:  # the ONNX rows' folders live until their timing
        _measure_rows(args, specs, models, datasets, images, result, keep)
    result["rows"] += carried
    return result


def _measure_rows(args, specs, models, datasets, images, result: dict, keep) -> None:
    """Every row's accuracy, one row after the other, then every row's speed, interleaved."""
    timers: list[Timer] = []
    onnx_export = None
    if not args.no_onnx:
        try:
            import ocrkit.export.onnx as onnx_export
        except ImportError as exc:
            result["notes"].append(f"ONNX rows skipped: ocrkit.export.onnx not importable ({exc})")
            log(f"warning: {result['notes'][-1]}")
    for spec, model in zip(specs, models):
        log(f"{spec.name}: {spec.path or 'the default model'}")
        common = {
            "name": spec.name,
            "model": spec.path or "default",
            "decode": ", ".join(spec.items),
            "options": spec.options,
            "charset": model.charset.name,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "about": describe_model(spec.path, model, spec.options),
        }

        def torch_predict(ims, model=model, opts=spec.options):
            return model.predict(ims, batch_size=BATCH, **opts)

        result["rows"].append(run_backend(common, "pytorch", torch_predict, datasets, timers))
        if onnx_export is not None and (not args.onnx_rows or spec.name in args.onnx_rows):
            result["rows"].append(run_onnx(onnx_export, model, common, datasets, timers, keep))
    if not args.no_external:
        result["rows"] = run_external(datasets, timers, args) + result["rows"]
    order = {id(row): i for i, row in enumerate(result["rows"])}  # time in the table's order
    timers.sort(key=lambda timer: order[id(timer.row)])
    log(f"speed: {len(timers)} rows in {args.repeats} interleaved rounds")
    measure_speeds(timers, images, args.repeats)
    try:
        add_paired(result["rows"], result["reference"], list(datasets))
    except Exception as exc:  # a statistics bug must not lose an hour of measurements
        result["notes"].append(f"paired comparison skipped: {type(exc).__name__}: {exc}")
        log(f"warning: {result['notes'][-1]}")
        for row in result["rows"]:
            row.pop("correct", None)


def run_onnx(onnx_export: Any, model: Any, common: dict, datasets, timers: list, keep) -> dict:
    """Export ``model`` to a temporary folder (kept open by ``keep``) and read the sets with ONNX
    Runtime."""
    tmp = keep.enter_context(tempfile.TemporaryDirectory(prefix="ocrkit-onnx-"))
    try:
        onnx_export.export_onnx(model, tmp)
        threads = torch.get_num_threads()
        session = onnx_export.OnnxRecognizer.from_pretrained(tmp, threads=threads)

        def onnx_predict(ims, opts=common["options"]):
            return session.predict(ims, batch_size=BATCH, **opts)

        return run_backend(common, "onnx", onnx_predict, datasets, timers)
    except Exception as exc:  # an export or runtime failure must not lose the other rows
        log(f"  {common['name']} [onnx]: failed: {type(exc).__name__}: {exc}")
        return {**common, "backend": "onnx", "error": f"{type(exc).__name__}: {exc}"}


def run_external(datasets, timers: list, args) -> list[dict]:
    """The wheels' own pipelines (PP-OCRv6 small, PP-OCRv4); an error entry for a missing one."""
    import ocrkit.external.rapidocr as external

    rows = []
    for name, (cls, module, file, charset) in EXTERNAL_ROWS.items():
        common = {"name": name, "model": file, "decode": "", "options": {}, "charset": charset}
        common["params_m"] = None
        try:
            engine = getattr(external, cls)(threads=args.threads)
        except ImportError as exc:
            log(f"{name}: not measured: {exc}")
            rows.append({**common, "backend": "external", "error": str(exc)})
            continue
        common["params_m"] = onnx_params(module, file)
        log(f"{name}: {file}")
        rows.append(run_backend(common, "external", engine.predict, datasets, timers))
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", required=True, metavar="NAME=DIR[@k=v,...]")
    parser.add_argument("--data", nargs="+", required=True, metavar="NAME=PATH")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per measurement")
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime rows")
    parser.add_argument(
        "--onnx-rows",
        nargs="+",
        default=[],
        metavar="NAME",
        help="measure ONNX Runtime only for these rows (default: every row)",
    )
    parser.add_argument("--no-external", action="store_true", help="skip the RapidOCR rows")
    parser.add_argument(
        "--reference",
        default="rapidocr-v6",
        metavar="NAME",
        help="the row speed ratios are taken against (default rapidocr-v6: PP-OCRv6 small "
        "through its own wheel; the first PyTorch row when it was not measured)",
    )
    parser.add_argument(
        "--carry",
        nargs="+",
        default=[],
        metavar="NAME",
        help="rows copied from --carry-from (models no longer at hand), marked as such",
    )
    parser.add_argument(
        "--carry-from", type=Path, default=Path("docs/benchmarks.json"), metavar="JSON"
    )
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--json", type=Path, help="default: the output with .json")
    parser.add_argument("--plot", type=Path, help="default: img/benchmarks_accuracy_speed.png")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--threads, --repeats and --limit must be at least 1")
    json_path = args.json or args.output.with_suffix(".json")
    plot_path = args.plot or args.output.parent / "img" / "benchmarks_accuracy_speed.png"
    command = "python benchmarks/report.py " + shlex.join(argv)
    try:
        result = collect(args, command)
    except (CliError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"report.py: error: {exc}", file=sys.stderr)
        return 1
    from ocrkit.utils.io import atomic_write_json, atomic_write_text

    plot(result, plot_path)
    link = os.path.relpath(plot_path, args.output.resolve().parent)
    atomic_write_text(args.output, build_markdown(result, Path(link).as_posix()))
    atomic_write_json(json_path, result)
    log(f"wrote {args.output}, {json_path} and {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
