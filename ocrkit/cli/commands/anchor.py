"""``ocrkit anchor``: ask a Q-Mask model about an image; ``ocrkit anchor-data``: build its data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ANCHOR_EPILOG = """\
examples:
  ocrkit anchor street.jpg --query 'Where is "EXIT" located in the image?' --model runs/qmask/final
  ocrkit anchor form.png --query "What is the text at location [120, 40, 310, 72]?" --model DIR \\
      --out form_mask.png --json form.json

The overlay PNG shows the query's mask as a heatmap over the image (paper Fig. S8) with the
boxes read off the mask in green. Without --model there is no trained model to use:
--demo-tiny FAMILY runs a random tiny model (qwen2_vl, qwen2_5_vl, qwen3_vl) to try the pipeline."""

DATA_EPILOG = """\
examples:
  ocrkit anchor-data --out data/qmask --icdar ../shared/data/ic15_train --funsd ../shared/data/funsd_test \\
      --synth 500 --tasks r2t,t2r,vqa --preview 8
The same specs go into a recipe's data.train list (see recipes/qmask/ and docs/qmask.md)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "anchor",
        help="answer a query about an image with a Q-Mask model: answer, mask heatmap, boxes",
        description="Run a Q-Mask model on IMAGE: print the answer and the boxes read off the "
        "query's mask, and write the mask heatmap overlaid on the image (PNG).",
        epilog=ANCHOR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("image", metavar="IMAGE", help="image file")
    p.add_argument(
        "--query", "-q", required=True, help="the question (e.g. a TABench R2T/T2R prompt)"
    )
    p.add_argument(
        "--model", metavar="DIR", help="Q-Mask folder written by 'ocrkit train' (qmask task)"
    )
    p.add_argument(
        "--demo-tiny", metavar="FAMILY", help="no trained model: use a random tiny one (demo)"
    )
    p.add_argument("--out", metavar="PNG", help="overlay PNG (default: IMAGE_STEM.qmask.png here)")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="write answer and boxes as JSON")
    p.add_argument("--threshold", type=float, default=0.5, help="mask probability for boxes (0.5)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="answer length limit (128)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.set_defaults(func=run)

    d = subparsers.add_parser(
        "anchor-data",
        help="build Q-Mask anchoring instances (R2T/T2R/VQA with de-stylized masks)",
        description="Turn region annotations and synthetic scenes into anchoring instances "
        "(instances.jsonl) and optionally write previews of their masks and prompts.",
        epilog=DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--out", required=True, metavar="DIR", help="output folder (instances.jsonl)")
    d.add_argument(
        "--icdar",
        action="append",
        metavar="PATH",
        help="ICDAR-style annotations.jsonl or its folder",
    )
    d.add_argument(
        "--funsd", action="append", metavar="DIR", help="FUNSD folder (images/, annotations/)"
    )
    d.add_argument(
        "--synth",
        type=int,
        default=0,
        metavar="N",
        help="N synthetic scenes (rendered into DIR/synth)",
    )
    d.add_argument(
        "--tasks", default="r2t,t2r", help="comma list of r2t, t2r, read, vqa (default r2t,t2r)"
    )
    d.add_argument("--per-image", type=int, default=4, help="R2T and T2R instances per image (4)")
    d.add_argument(
        "--exclude", action="append", metavar="BENCH", help="skip the images of this TABench file"
    )
    d.add_argument(
        "--prior",
        choices=["paper", "gt", "ocr", "none"],
        default="paper",
        help="OCR-prior candidates for SPI: paper (default; scene images: RapidOCR's raw output, "
        "cached per image; documents: none), gt (the annotation), ocr, none",
    )
    d.add_argument("--seed", type=int, default=0)
    d.add_argument(
        "--preview", type=int, default=0, metavar="N", help="write N preview PNGs + prompts"
    )
    d.set_defaults(func=run_data)


def run(args: argparse.Namespace) -> int:
    from ocrkit.cli import CliError

    if not (args.model or args.demo_tiny):
        raise CliError(
            "give --model DIR (a Q-Mask folder from 'ocrkit train recipes/qmask/...'); "
            "--demo-tiny qwen2_5_vl runs an untrained random model to try the pipeline"
        )
    from ocrkit.anchoring.data import load_rgb
    from ocrkit.cli.inputs import read_one_image

    image = read_one_image(args.image, load_rgb)  # before the model: a bad file fails at once
    from ocrkit.anchoring.inference import QMaskPredictor, save_overlay

    if args.model:
        predictor = QMaskPredictor.load(
            args.model,
            device=args.device,
            max_new_tokens=args.max_new_tokens,
            threshold=args.threshold,
        )
    else:
        from ocrkit.anchoring.model import QMask

        model = QMask.from_config({"tiny": args.demo_tiny})
        predictor = QMaskPredictor(
            model, device=args.device, max_new_tokens=args.max_new_tokens, threshold=args.threshold
        )
    result = predictor.anchor(image, args.query)
    out = Path(args.out) if args.out else Path(f"{Path(args.image).stem}.qmask.png")
    save_overlay(out, image, result)
    print(f"answer: {result.answer}")
    for box, score in zip(result.boxes[0], result.scores[0]):
        print(f"box: [{', '.join(f'{v:.0f}' for v in box)}] score={score:.2f}")
    print(f"overlay: {out}")
    if args.json_out:
        from ocrkit.utils.io import atomic_write_json

        atomic_write_json(
            args.json_out,
            {
                "answer": result.answer,
                "boxes": result.boxes[0],
                "scores": result.scores[0],
                "overlay": str(out),
            },
        )
    return 0


def run_data(args: argparse.Namespace) -> int:
    from ocrkit.anchoring.data import write_instances
    from ocrkit.anchoring.generate import build_instances
    from ocrkit.cli import CliError

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    specs: list[dict] = []
    common = {"per_image": args.per_image, "exclude": args.exclude or [], "prior": args.prior}
    for path in args.icdar or []:
        specs.append(
            {"type": "icdar", "path": path, "tasks": [t for t in tasks if t != "vqa"], **common}
        )
    for path in args.funsd or []:
        specs.append({"type": "funsd", "path": path, "tasks": tasks, **common})
    out = Path(args.out)
    if args.synth:
        specs.append(
            {
                "type": "synth",
                "num_images": args.synth,
                "tasks": [t for t in tasks if t != "vqa"],
                **common,
            }
        )
    if not specs:
        raise CliError("give at least one of --icdar, --funsd, --synth N")
    instances = []
    for i, spec in enumerate(specs):
        instances += build_instances(spec, seed=args.seed + i, cache_dir=str(out / "synth"))
    for i, inst in enumerate(instances):
        inst.id = f"{inst.source or 'inst'}-{i:07d}"
    n = write_instances(out / "instances.jsonl", instances)
    counts: dict[str, int] = {}
    for inst in instances:
        key = f"{inst.task}{'' if inst.has_mask else ' (no mask)'}"
        counts[key] = counts.get(key, 0) + 1
    print(f"wrote {n} instances to {out / 'instances.jsonl'}")
    for key, c in sorted(counts.items()):
        print(f"  {key}: {c}")
    if args.preview:
        _previews(instances, out / "preview", args.preview, args.seed)
        print(f"previews: {out / 'preview'}")
    return 0


def _previews(instances: list, folder: Path, count: int, seed: int) -> None:
    import cv2
    import numpy as np

    from ocrkit.anchoring.data import AnchorDataset
    from ocrkit.anchoring.inference import overlay_heatmap
    from ocrkit.anchoring.spi import SPIConfig
    from ocrkit.train.sampling import rng_scope

    folder.mkdir(parents=True, exist_ok=True)
    ds = AnchorDataset(instances, SPIConfig())
    picks = np.random.default_rng(seed).choice(
        len(instances), size=min(count, len(instances)), replace=False
    )
    records = []
    for k, i in enumerate(sorted(int(p) for p in picks)):
        with rng_scope(seed + k):
            s = ds[i]
        if s is None:
            continue
        mask = s["masks"][0]
        heat = (
            np.zeros(s["images"][0].shape[:2], np.float32)
            if mask is None
            else mask.astype(np.float32) / 255
        )
        rgb = overlay_heatmap(s["images"][0], heat)
        cv2.imwrite(str(folder / f"{k:03d}_{s['task']}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        records.append(
            {
                "file": f"{k:03d}_{s['task']}.png",
                "prompt": s["prompt"],
                "answer": s["answer"],
                "gamma": s["gamma"],
            }
        )
    (folder / "prompts.json").write_text(
        json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8"
    )
