"""Pack a recipe's training data and its initial model small enough to travel to a GPU machine.

    python benchmarks/gpu_pack.py [--recipe recipes/str/ppocrv6_latin_ctc_gpu.yaml] \\
        [--output .gpudata] [--max-per-set 4000] [--quality 80] [--no-model]

A lent GPU machine receives the repository and at most 64 MiB beside it, and reaches nothing
else (no ``../shared``, no hub, no wheel of rapidocr). This writes, under ``--output``:

- one folder set per ``data.train`` spec (``images/NNNNNN.jpg`` + ``labels.tsv``): the samples
  the recipe reads under its protocol, each image scaled down to the model's input height when
  taller (the model resizes to that height anyway), re-encoded as JPEG. A spec with a
  ``holdout`` is packed whole and in order, so the recipe's seeded held-out slices are the same
  samples; a spec without one is packed as a seeded subset of at most ``--max-per-set`` samples
  (its ``max_samples`` then no longer applies). Augmentation runs on the packed image, i.e.
  after this downscaling: the one difference from reading ``../shared/data`` directly.
- ``init_model/``: the recipe's model with its ``init.model`` weights loaded (``ppocr:<wheel>``
  converted first; a CTC head remapped to the recipe's charset, as the run would do it), saved
  as a model folder: the run starts from the same weights, and the 18,710-row head stays home.
- ``recipe.yaml``: the recipe as ``_base_`` with ``data.train`` and ``init.model`` pointing at
  the packed copies (paths relative to the repository root, where the GPU command runs).

It prints each set's samples and MiB and the total, so the budget can be checked before a run.
Send the folder as one file (``tar czf .gpupack/gpudata.tgz .gpudata``): the device counts disk
blocks, and thousands of small JPEGs take about twice their bytes in 4 KiB blocks (tar pads each
to 512 bytes; gzip takes the padding back).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

DEFAULT_RECIPE = "recipes/str/ppocrv6_latin_ctc_gpu.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, help="default: %(default)s")
    parser.add_argument(
        "--output", type=Path, default=Path(".gpudata"), help="folder to write (default: .gpudata)"
    )
    parser.add_argument(
        "--max-per-set",
        type=int,
        default=4000,
        help="samples kept of a spec without holdout (seeded subset; default: 4000)",
    )
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality (default: 80)")
    parser.add_argument("--no-model", action="store_true", help="leave init.model as it is")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides")
    return parser.parse_args(argv)


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` scaled down (area filter, aspect kept) to ``height`` rows; smaller ones as is."""
    h, w = image.shape[:2]
    if h <= height:
        return image
    width = max(1, round(w * height / h))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def pack_set(
    dataset: Any, indices: list[int], folder: Path, height: int, quality: int
) -> tuple[int, int]:
    """Write ``dataset``'s samples ``indices`` as a folder set; return (written, unreadable).

    Files, not an LMDB: its pages round every image up to 4 KiB, about 60% more bytes here."""
    from tqdm import tqdm

    from ocrkit.data.image_io import encode_image

    if folder.exists():
        shutil.rmtree(folder)
    (folder / "images").mkdir(parents=True)
    lines: list[str] = []
    unreadable = 0
    for i in tqdm(indices, desc=folder.name, unit="img", leave=False):
        sample = dataset.get(i, apply_transform=False)
        if sample is None:
            unreadable += 1
            continue
        rel = f"images/{len(lines):06d}.jpg"
        (folder / rel).write_bytes(encode_image(fit_height(sample.image, height), ".jpg", quality))
        lines.append(f"{rel}\t{sample.label}")
    (folder / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines), unreadable


def folder_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ocrkit.config import ConfigError, load_config
    from ocrkit.data.specs import open_spec, parse_spec
    from ocrkit.models import Recognizer
    from ocrkit.train.tasks import init_model

    try:
        config = load_config(args.recipe, list(args.overrides))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = config.get("data") or {}
    protocol = data.get("protocol", "parseq36")
    height = int((config.get("model") or {}).get("img_size", [48, 0])[0])
    seed = int((config.get("train") or {}).get("seed", 0))
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    specs = data.get("train") or []
    packed: list[dict[str, Any]] = []
    total = 0.0
    for i, spec in enumerate(specs if isinstance(specs, list) else [specs]):
        parsed = parse_spec(spec)
        name = parsed.label(i)
        dataset = open_spec(spec, protocol)
        n = len(dataset)
        if parsed.holdout or n <= args.max_per_set:
            indices = list(range(n))
        else:
            order = np.random.default_rng(seed + 2000 + i).permutation(n)
            indices = sorted(order[: args.max_per_set].tolist())
        written, unreadable = pack_set(dataset, indices, out / name, height, args.quality)
        if parsed.holdout and unreadable:
            print(
                f"error: {name}: {unreadable} unreadable samples would shift its held-out slice",
                file=sys.stderr,
            )
            return 1
        mib = folder_mib(out / name)
        total += mib
        print(f"{name}: {written} of {n} samples ({unreadable} unreadable), {mib:.1f} MiB")
        entry: dict[str, Any] = {"path": str(out / name), "name": name}
        for key in ("holdout", "repeat"):
            if key in parsed.task_keys:
                entry[key] = parsed.task_keys[key]
        packed.append(entry)
    recipe: dict[str, Any] = {
        "_base_": os.path.relpath(Path(args.recipe).resolve(), out.resolve()),
        "data": {"train": packed},
    }
    model_spec = (config.get("init") or {}).get("model")
    if model_spec and not args.no_model:
        target = out / "init_model"
        if target.exists():
            shutil.rmtree(target)
        model = Recognizer.from_config(config["model"])
        init_model(model, {"model": model_spec})  # the CTC head remapped as the run would
        model.save_pretrained(target)
        recipe["init"] = {"model": str(target)}
        mib = folder_mib(target)
        total += mib
        print(f"init_model ({model_spec}): {mib:.1f} MiB")
    (out / "recipe.yaml").write_text(
        f"# Packed from {args.recipe} by benchmarks/gpu_pack.py; paths relative to the repo root.\n"
        + yaml.safe_dump(recipe, sort_keys=False),
        encoding="utf-8",
    )
    print(f"total {total:.1f} MiB in {out} (recipe: {out / 'recipe.yaml'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
