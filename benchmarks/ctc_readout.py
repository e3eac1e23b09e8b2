"""Greedy vs prefix-beam CTC read-out of one recognizer, on a recipe's held-out slices.

    python benchmarks/ctc_readout.py --recipe recipes/str/ppocrv6_latin_neck_aug_cpu.yaml \\
        [--model default] [--widths 1 2 4 8 16] [--json OUT.json]

For each beam width (1: greedy) the held-out slices of the recipe's training data (never a test
set) are read as the trainer's validation reads them (``make_eval_fn``: batches of 128 in
aspect-ratio order) and scored under the recipe's protocol, parseq36 and cased62. The encoder
runs once per crop: its frame probabilities are kept and every width decodes the same ones, so
the accuracies differ by the read-out alone. The read-out's time per crop is measured on those
probabilities, in one thread, as a ratio against greedy measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, help="a recipe with data.train.N.holdout")
    parser.add_argument("--model", default="default", help="CTC model folder, 'default'")
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--prune", type=float, default=1e-3, help="frame probability floor")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import numpy as np
    import torch

    from ocrkit.config import ConfigError, load_config
    from ocrkit.eval import evaluate
    from ocrkit.models import load_recognizer
    from ocrkit.models.decoders.ctc_beam import collapse_ctc_array
    from ocrkit.models.preprocess import predict_in_width_order, stack_batch
    from ocrkit.train.tasks import build_str_data
    from ocrkit.utils.hardware import describe_hardware

    torch.set_num_threads(args.threads)
    try:
        config = load_config(args.recipe)
        model = load_recognizer(args.model)
        _, val = build_str_data(config, model.transform, int(config["train"].get("seed", 0)), 0)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not hasattr(model.decoder, "beam_width") or not val:
        print("error: needs a CTC model and a recipe with held-out slices", file=sys.stderr)
        return 2
    protocol = (config.get("data") or {}).get("protocol", "parseq36")
    protocols = list(dict.fromkeys([protocol, "parseq36", "cased62"]))
    frames: dict[int, np.ndarray] = {}  # id of a crop's array -> its frame probabilities

    class Reader:
        """Runs the encoder once per crop, then reads the kept probabilities at ``width``."""

        width = 1

        def predict(self, images):
            if any(id(im) not in frames for im in images):  # batched as Recognizer.predict
                predict_in_width_order(images, model.transform, 64, encode)
            return [self.read(frames[id(im)]) for im in images]

        def read(self, probs: np.ndarray):
            out = collapse_ctc_array(probs[None], model.tokenizer.EOS, self.width, args.prune)
            return model.tokenizer.decode(out)[0]

    def encode(batch: list) -> list:
        with torch.inference_mode():
            x = stack_batch(batch, model.transform)
            probs = model.decoder.logits(model.backbone(x)).float().softmax(-1).numpy()
        frames.update({id(im): p for im, p in zip(batch, probs)})
        return model.tokenizer.decode(collapse_ctc_array(probs, model.tokenizer.EOS))

    # each crop read once: the same arrays (and so the same kept frames) at every width
    held = {name: [ds[i] for i in range(len(ds))] for name, ds in val.items()}
    print(
        f"# {describe_hardware()}; held-out: {', '.join(f'{k} {len(v)}' for k, v in held.items())}"
    )
    reader, rows = Reader(), []
    for width in args.widths:
        reader.width = width
        row = {"beam_width": width}
        for name in protocols:
            report = evaluate(reader, held, name, batch_size=128)
            correct = sum(s.correct for s in report.samples)
            row[name] = {"correct": correct, "of": len(report.samples),
                         "accuracy": round(100 * correct / len(report.samples), 2)}  # fmt: skip
        rows.append(row)
    kept = list(frames.values())
    for row in rows:  # read-out time alone, one crop at a time, on the kept probabilities
        start = time.perf_counter()
        for p in kept:
            collapse_ctc_array(p[None], 0, row["beam_width"], args.prune)
        row["ms_per_crop"] = round((time.perf_counter() - start) / len(kept) * 1e3, 3)
    greedy = next((r["ms_per_crop"] for r in rows if r["beam_width"] == 1), None)
    for row in rows:
        ratio = f" ({row['ms_per_crop'] / greedy:.1f}x greedy)" if greedy else ""
        print(f"beam_width {row['beam_width']:>2}: "
              + "  ".join(f"{p} {row[p]['accuracy']:.2f} ({row[p]['correct']}/{row[p]['of']})" for p in protocols)
              + f"  read-out {row['ms_per_crop']:.3f} ms/crop{ratio}")  # fmt: skip
    if args.json:
        result = {"recipe": args.recipe, "model": args.model, "prune": args.prune,
                  "hardware": describe_hardware(), "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
