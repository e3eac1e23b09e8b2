"""Text parity of ocrkit's converted PP-OCR recognizers with the wheels' own pipelines.

    python benchmarks/ppocr_parity.py --data ../shared/data/str/iiit5k_test \\
        ../shared/data/str/svt_test [--threads 2] [--limit N] [--json docs/ppocr_parity.json] \\
        [--wheels rapidocr rapidocr-onnxruntime] [--graph NAME=REC.onnx[,DICT.txt] ...]

For each wheel (``rapidocr`` 3.x: PP-OCRv6 small; ``rapidocr-onnxruntime`` 1.x: PP-OCRv4) the
recognizer ONNX is converted with ``ocrkit convert ppocr`` into a temporary folder, then every
crop of every set is read twice: by the wheel's own recognition pipeline (its preprocessing,
batches of 6 sorted by aspect ratio, CTC decoding) and by the converted PyTorch model in batches
of 6 in the same order (the padding of a crop depends on its batch, so the batches must match).
``--graph`` adds any other PP-OCR recognition ONNX file (with its dictionary file where its
metadata has none or a wrong one): its reference is onnxruntime on that graph with the same
preprocessing and batches and greedy CTC decoding over its whole dictionary, so a difference
shows a conversion error or a dropped dictionary entry (see ``ocrkit convert ppocr``).
Prints, per model and set, the number of crops whose text differs, with examples; the absolute
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


def graph_predictor(path: str, dictionary: str | None, threads: int):
    """onnxruntime on a PP-OCR recognition graph: the wheels' preprocessing, batches of
    :data:`BATCH` in aspect-ratio order, greedy CTC over the graph's whole dictionary."""
    import numpy as np
    import onnxruntime as ort

    from ocrkit.data import PPOCRResize
    from ocrkit.models.convert_ppocr import read_dictionary, read_graph

    graph = read_graph(path)
    entries = read_dictionary(dictionary) if dictionary else list(graph.characters)
    table = ["", *entries, *([" "] if graph.num_classes == len(entries) + 2 else [])]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    resize = PPOCRResize((48, 320), bgr=True)

    def predict(images: list) -> list[str]:
        order = sorted(range(len(images)), key=lambda i: images[i].shape[1] / images[i].shape[0])
        texts = [""] * len(images)
        for start in range(0, len(order), BATCH):
            index = order[start : start + BATCH]
            x = resize.batch_array([images[i] for i in index])
            best = session.run(None, {session.get_inputs()[0].name: x})[0].argmax(-1)
            for i, path_ in zip(index, best):
                keep = (path_ != 0) & np.r_[True, path_[1:] != path_[:-1]]
                texts[i] = "".join(table[k] for k in path_[keep])
        return texts

    return predict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--wheels", nargs="*", default=["rapidocr", "rapidocr-onnxruntime"], metavar="WHEEL"
    )
    parser.add_argument("--graph", nargs="*", default=[], metavar="NAME=ONNX[,DICT]")
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
    models = [(package, wheel_model_path(package), None) for package in args.wheels]
    for spec in args.graph:
        name, _, files = spec.partition("=")
        onnx_path, _, dictionary = files.partition(",")
        models.append((name, Path(onnx_path), dictionary or None))
    for name, onnx_path, dictionary in models:
        with tempfile.TemporaryDirectory() as tmp:
            model = load_recognizer(convert_ppocr(onnx_path, tmp, dictionary=dictionary))
        if name in args.wheels:
            wheel = wheel_predictor(name, args.threads)
            read = lambda images, wheel=wheel: [p.text for p in wheel(images)]  # noqa: E731
        else:
            read = graph_predictor(str(onnx_path), dictionary, args.threads)
        rows = {}
        for set_name, images in sets.items():
            start = time.perf_counter()
            ref = read(images)
            wheel_s = time.perf_counter() - start
            start = time.perf_counter()
            ours = [p.text for p in model.predict(images, batch_size=BATCH)]
            ours_s = time.perf_counter() - start
            diffs = [(i, a, b) for i, (a, b) in enumerate(zip(ref, ours)) if a != b]
            rows[set_name] = {
                "crops": len(images),
                "different_text": len(diffs),
                "examples": diffs[:5],
                "wheel_s": round(wheel_s, 2),
                "ocrkit_torch_s": round(ours_s, 2),
            }
            print(
                f"{name:22s} {set_name:12s} crops {len(images):5d}  different text {len(diffs):3d}"
                f"  (reference {wheel_s:.1f} s, ocrkit torch {ours_s:.1f} s)"
                + (f"  e.g. {diffs[:3]}" if diffs else "")
            )
        result["wheels"][name] = rows
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
