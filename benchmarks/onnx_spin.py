"""ONNX session layout and thread spinning of a CTC recognizer, against the PP-OCRv6 wheel.

Exports a recognizer (default: the embedded ``default``) and reads the same crops through:
the ``rapidocr`` wheel's own pipeline (the reference), ``OnnxRecognizer`` on the fused folder
(one encoder graph that also writes the CTC logits) with and without spinning intra-op threads,
and on the older two-graph layout (encoder, then ``decoder.onnx``) with and without spinning.
Prints the median batch-1 latency and the batch-64 throughput, as ratios to the wheel measured
in the same run, with the absolute numbers and the CPU.

    python benchmarks/onnx_spin.py --data ../shared/data/str/iiit5k_test --threads 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ocrkit.data import open_dataset
from ocrkit.export.onnx import OnnxRecognizer, export_onnx
from ocrkit.utils.hardware import cpu_model


def median_ms(run: Callable[[int], object], repeats: int) -> float:
    """Median wall time of ``run(i)`` for i in range(repeats), in milliseconds."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def two_graph_copy(folder: Path, target: Path) -> Path:
    """The folder as exported before the CTC head joined the encoder graph."""
    shutil.copytree(folder, target)
    meta = json.loads((target / "onnx.json").read_text())
    meta["encoder"]["outputs"].pop("logits", None)
    (target / "onnx.json").write_text(json.dumps(meta))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model folder or embedded name")
    parser.add_argument("--data", required=True, help="a word-crop set (first 64 crops are used)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=300, help="batch-1 calls per row")
    parser.add_argument("--batch-repeats", type=int, default=15, help="batch-64 calls per row")
    args = parser.parse_args()

    dataset = open_dataset(args.data)
    images = [s.image for s in (dataset[i] for i in range(min(64, len(dataset)))) if s]
    rows: dict[str, Callable] = {}
    try:
        from ocrkit.external.rapidocr import RapidOCRv6Recognizer

        rows["rapidocr-v6 wheel (reference)"] = RapidOCRv6Recognizer(threads=args.threads).predict
    except ImportError as exc:
        print(f"no reference: {exc}")
    with tempfile.TemporaryDirectory() as tmp:
        fused = export_onnx(args.model, Path(tmp) / "fused")
        split = two_graph_copy(fused, Path(tmp) / "split")
        for label, folder, spin in (
            ("fused, spinning (default)", fused, True),
            ("fused, no spinning", fused, False),
            ("two graphs, no spinning", split, False),
            ("two graphs, spinning", split, True),
        ):
            model = OnnxRecognizer(folder, threads=args.threads, spin=spin)
            rows[label] = model.predict
        results = {}
        for label, predict in rows.items():
            predict(images[:1])  # warm-up
            b1 = median_ms(lambda i, p=predict: p([images[i % len(images)]]), args.repeats)
            b64 = median_ms(lambda i, p=predict: p(images), args.batch_repeats)
            results[label] = (b1, len(images) / b64 * 1e3)
    ref_b1, ref_tp = next(iter(results.values()))
    print(f"{cpu_model()}, onnxruntime intra-op threads {args.threads}")
    print(f"{'row':32s} {'b1 ms':>7s} {'ratio':>6s} {'b64 img/s':>10s} {'ratio':>6s}")
    for label, (b1, tp) in results.items():
        print(f"{label:32s} {b1:7.2f} {b1 / ref_b1:6.2f} {tp:10.1f} {tp / ref_tp:6.2f}")


if __name__ == "__main__":
    main()
