"""Text parity of ocrkit's converted PP-OCR recognizers with the wheels' own pipelines.

    python benchmarks/ppocr_parity.py --data ../shared/data/str/iiit5k_test \\
        ../shared/data/str/svt_test [--threads 2] [--limit N] [--json docs/ppocr_parity.json]

For each wheel (``rapidocr`` 3.x: PP-OCRv6 small; ``rapidocr-onnxruntime`` 1.x: PP-OCRv4) the
recognizer ONNX is converted with ``ocrkit convert ppocr`` into a temporary folder, then every
crop of every set is read twice: by the wheel's own recognition pipeline (its preprocessing,
batches of 6 sorted by aspect ratio, CTC decoding) and by the converted PyTorch model in batches
of 6 in the same order (the padding of a crop depends on its batch, so the batches must match).
Prints, per wheel and set, the number of crops whose text differs, with examples; the absolute
time of each side is printed too, with the hardware.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from ocrkit.utils.hardware import describe_hardware

BATCH = 6  # the wheels' rec_batch_num


def wheel_predictor(package: str, threads: int):
    if package == "rapidocr":
        from ocrkit.external.rapidocr import RapidOCRv6Recognizer

        return RapidOCRv6Recognizer(threads=threads, rec_batch_num=BATCH).predict
    from ocrkit.external.rapidocr import RapidOCRRecognizer

    # one call over the whole set: the wheel sorts it and cuts batches of 6 itself
    return RapidOCRRecognizer(threads=threads, batch_size=10**9).predict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from ocrkit.data import open_dataset
    from ocrkit.models import load_recognizer
    from ocrkit.models.convert_ppocr import convert_ppocr, wheel_model_path

    torch.set_num_threads(args.threads)
    sets = {}
    for path in args.data:
        dataset = open_dataset(path)
        n = min(len(dataset), args.limit or len(dataset))
        samples = [dataset[i] for i in range(n)]
        sets[Path(path).name] = [s.image for s in samples if s is not None]
    result = {"hardware": describe_hardware(), "threads": args.threads, "wheels": {}}
    print(f"# {result['hardware']}, {args.threads} threads", file=sys.stderr)
    for package in ("rapidocr", "rapidocr-onnxruntime"):
        with tempfile.TemporaryDirectory() as tmp:
            model = load_recognizer(convert_ppocr(wheel_model_path(package), tmp))
        wheel = wheel_predictor(package, args.threads)
        rows = {}
        for name, images in sets.items():
            start = time.perf_counter()
            ref = [p.text for p in wheel(images)]
            wheel_s = time.perf_counter() - start
            start = time.perf_counter()
            ours = [p.text for p in model.predict(images, batch_size=BATCH)]
            ours_s = time.perf_counter() - start
            diffs = [(i, a, b) for i, (a, b) in enumerate(zip(ref, ours)) if a != b]
            rows[name] = {
                "crops": len(images),
                "different_text": len(diffs),
                "examples": diffs[:5],
                "wheel_s": round(wheel_s, 2),
                "ocrkit_torch_s": round(ours_s, 2),
            }
            print(
                f"{package:22s} {name:12s} crops {len(images):5d}  different text {len(diffs):3d}"
                f"  (wheel {wheel_s:.1f} s, ocrkit torch {ours_s:.1f} s)"
                + (f"  e.g. {diffs[:3]}" if diffs else "")
            )
        result["wheels"][package] = rows
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
