"""``ocrkit demo``: recognize and score synthetic and real word crops with no set-up."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DESCRIPTION = """\
Renders a small synthetic word set (seeded), adds real word crops when ../shared/data (or
$OCRKIT_DATA) is present, reads them with a recognizer and prints the evaluation table under the
standard parseq36 protocol. Writes report.json and a prediction grid PNG to --out.

Recognizer: --model DIR (an ocrkit model folder), else ocrkit's embedded default model when the
package ships one, else the external RapidOCR engine (PP-OCRv4, weights inside its wheel).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="render words, recognize them and print an evaluation table",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", help="ocrkit recognizer folder (default: embedded model)")
    parser.add_argument("--engine", choices=["rapidocr"], help="use an external engine instead")
    parser.add_argument("--num", type=int, default=64, help="synthetic words to render (64)")
    parser.add_argument("--real", type=int, default=200, help="real crops per test set (200)")
    parser.add_argument(
        "--out", type=Path, default=Path("outputs/demo"), help="output folder (outputs/demo)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the rendered words (0)")
    parser.set_defaults(func=run)


def choose_predictor(model: str | None, engine: str | None):
    """The recognizer the demo uses and a one-line description of it."""
    from ocrkit import load_recognizer

    if engine is None:
        try:
            recognizer = load_recognizer(model)
            return recognizer, f"ocrkit model {model or '(embedded default)'}"
        except FileNotFoundError:
            if model is not None:
                raise
            print("no embedded ocrkit model in this install yet: using RapidOCR (PP-OCRv4)")
    from ocrkit.external.rapidocr import RapidOCRRecognizer

    predictor = RapidOCRRecognizer()
    return predictor, predictor.name


def run(args: argparse.Namespace) -> int:
    from ocrkit.data import SubsetStrDataset, open_dataset
    from ocrkit.data.render import render_to_lmdb
    from ocrkit.eval import evaluate
    from ocrkit.utils.paths import shared_data_dir
    from ocrkit.utils.plots import save_image_grid

    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    synth = args.out / "synth_lmdb"
    render_to_lmdb(synth, args.num, seed=args.seed, overwrite=True)
    print(f"rendered {args.num} synthetic words in {time.perf_counter() - start:.1f} s")

    datasets = {"synthetic": open_dataset(str(synth), protocol="parseq36")}
    shared = shared_data_dir()
    if shared is not None and args.real > 0:
        for name in ("iiit5k_test", "svt_test"):
            path = shared / "str" / name
            if path.is_dir():
                full = open_dataset(str(path), protocol="parseq36")
                datasets[name] = SubsetStrDataset(full, range(min(args.real, len(full))))
    else:
        print("no real data found (set OCRKIT_DATA to a folder with str/iiit5k_test)")

    start = time.perf_counter()
    predictor, description = choose_predictor(args.model, args.engine)
    load_seconds = time.perf_counter() - start
    print(f"recognizer: {description} (loaded in {load_seconds:.1f} s)")
    start = time.perf_counter()
    report = evaluate(predictor, datasets, "parseq36", source=description)
    seconds = time.perf_counter() - start
    total = report.combined.samples
    _print_examples(report, per_set=4)
    print(report.format_table())
    print(
        f"{total} images in {seconds:.1f} s ({total / max(seconds, 1e-9):.1f} images/s: "
        f"decoding the image files and recognition, batches of 64, {_compute(predictor)}; "
        f"the model load above is not included)"
    )

    report.write(args.out / "report.json", samples_path=args.out / "predictions.tsv")
    grid = _grid_samples(datasets, report, per_set=8)
    save_image_grid(
        [image for image, _, _ in grid],
        [title for _, title, _ in grid],
        args.out / "predictions.png",
        colors=[color for _, _, color in grid],
    )
    print(f"wrote {args.out / 'report.json'}, predictions.tsv and predictions.png")
    return 0


def _compute(predictor) -> str:
    """Where the recognizer ran: torch's device and thread count, or the external engine."""
    device = getattr(predictor, "device", None)
    if device is None:
        return "onnxruntime's default threads"
    import torch

    if getattr(device, "type", str(device)) != "cpu":
        return f"on {device}"
    return f"{torch.get_num_threads()} torch CPU threads"


def _print_examples(report, per_set: int) -> None:
    """A few predictions per set, as a user would check them: image, reading, label, verdict."""
    shown: dict[str, int] = {}
    for r in report.samples:
        if shown.get(r.set, 0) >= per_set:
            continue
        shown[r.set] = shown.get(r.set, 0) + 1
        verdict = "ok" if r.correct else "WRONG"
        print(
            f"  {r.set:<12} {r.key:<28} read {r.prediction!r:<16} label {r.label!r:<16} {verdict}"
        )


def _grid_samples(datasets: dict, report, per_set: int) -> list[tuple]:
    """The first ``per_set`` scored samples of each set: (image, 'prediction / label', colour)."""
    results = {}
    for r in report.samples:
        results.setdefault(r.set, []).append(r)
    grid = []
    for name, dataset in datasets.items():
        by_key = {r.key: r for r in results.get(name, [])[:per_set]}
        for i in range(len(dataset)):
            if len(by_key) == 0:
                break
            sample = dataset.get(i, apply_transform=False)
            if sample is None or sample.key not in by_key:
                continue
            r = by_key.pop(sample.key)
            title = f"{r.normalized_prediction or '∅'} / {r.target}"
            grid.append((sample.image, title, "green" if r.correct else "red"))
    return grid
