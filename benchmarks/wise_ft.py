"""Weight-space ensembles of a fine-tuned recognizer and its starting point, picked on held-out data.

    python benchmarks/wise_ft.py --recipe recipes/str/ppocrv6_latin_neck_cpu.yaml \\
        --start default --end runs/str/ppocrv6_latin_neck_cpu/best \\
        [--alphas 0 0.25 0.5 0.75 1] [--output models/wise] [--json OUT.json]

For each ``alpha`` the weights ``(1 - alpha) * start + alpha * end`` (WiSE-FT, Wortsman et al.,
CVPR 2022: interpolating a fine-tuned model with its zero-shot start often beats both on the
target distribution and keeps the start's robustness) are scored on the recipe's held-out slices
of its training data (never a test set) under the recipe's protocol and parseq36. The best
``alpha`` by the recipe's protocol (ties: the smaller alpha, closer to the start) is written to
``--output`` as a model folder. Both folders must hold the same architecture and charset.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--start", required=True, help="model folder, 'default' or 'tiny'")
    parser.add_argument("--end", required=True, help="the fine-tuned model folder")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0, 0.25, 0.5, 0.75, 1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    from ocrkit.config import load_config
    from ocrkit.models import load_recognizer
    from ocrkit.models.weights import interpolate_state_dicts
    from ocrkit.train.tasks import build_str_data, make_eval_fn
    from ocrkit.utils.hardware import describe_hardware

    torch.set_num_threads(args.threads)
    config = load_config(args.recipe)
    start, end = load_recognizer(args.start), load_recognizer(args.end)
    if start.charset.chars != end.charset.chars:
        print("error: the two models have different charsets", file=sys.stderr)
        return 2
    _, val = build_str_data(config, end.transform, int(config["train"].get("seed", 0)), 0)
    cap = (config.get("data") or {}).get("val_max_samples")
    if cap:
        from ocrkit.data import SubsetStrDataset

        val = {k: v if len(v) <= cap else SubsetStrDataset(v, range(cap)) for k, v in val.items()}
    if not val:
        print("error: the recipe has no held-out slice (data.train.N.holdout)", file=sys.stderr)
        return 2
    protocol = (config.get("data") or {}).get("protocol", "parseq36")
    protocols = list(dict.fromkeys([protocol, "parseq36"]))
    a_state = {k: v.clone() for k, v in start.state_dict().items()}
    b_state = {k: v.clone() for k, v in end.state_dict().items()}  # end is overwritten below
    rows = []
    print(
        f"# {describe_hardware()}; held-out: {', '.join(f'{k} {len(v)}' for k, v in val.items())}"
    )
    for alpha in args.alphas:
        end.load_state_dict(interpolate_state_dicts(a_state, b_state, alpha))
        row = {"alpha": alpha}
        for name in protocols:
            metrics = make_eval_fn(val, name)(end)
            row[name] = {k.removeprefix("val/"): round(v, 2) for k, v in metrics.items()}
        rows.append(row)
        print(
            f"alpha {alpha:.2f}: "
            + "  ".join(f"{p} {row[p]['accuracy']:.2f}" for p in protocols)
            + "  ("
            + ", ".join(f"{k.split('/')[0]} {v:.2f}" for k, v in row[protocol].items() if "/" in k)
            + ")"
        )
    best = max(
        rows, key=lambda r: (r[protocol]["accuracy"], r["parseq36"]["accuracy"], -r["alpha"])
    )
    print(f"best alpha {best['alpha']} ({protocol} {best[protocol]['accuracy']:.2f})")
    result = {"recipe": args.recipe, "start": args.start, "end": args.end, "protocol": protocol,
              "rows": rows, "best_alpha": best["alpha"], "hardware": describe_hardware()}  # fmt: skip
    if args.output:
        end.load_state_dict(interpolate_state_dicts(a_state, b_state, best["alpha"]))
        end.save_pretrained(args.output)
        print(f"wrote {args.output}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
