"""TABench scoring throughput on a synthetic 5,450-query bench (2,725 R2T + 2,725 T2R).

Prints queries/s of ``ocrkit.tabench.score`` (both match orders) and, as the reference measured
in the same run, a plain-Python scorer (axis-aligned IoU in loops, boxes only), with ratios and
the hardware. Usage: ``python benchmarks/tabench_scoring.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time

from ocrkit.tabench.normalize import normalize_r2t
from ocrkit.tabench.schema import Query
from ocrkit.tabench.scoring import score
from ocrkit.utils.hardware import cpu_model


def synthetic(n_per_task: int = 2725, seed: int = 0):
    rng = random.Random(seed)
    queries, preds = [], {}
    for i in range(n_per_task):
        text = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 9)))
        q = Query(
            f"r{i}",
            "x.png",
            1280,
            720,
            "r2t",
            "",
            text,
            box=[0, 0, 10, 10],
            category=rng.choice(["scene", "document", "chart"]),
        )
        queries.append(q)
        preds[q.id] = {"id": q.id, "text": text if rng.random() < 0.7 else text[::-1]}
    for i in range(n_per_task):
        targets = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            x, y = rng.uniform(0, 1200), rng.uniform(0, 680)
            targets.append([x, y, x + rng.uniform(10, 80), y + rng.uniform(10, 40)])
        q = Query(
            f"t{i}",
            "x.png",
            1280,
            720,
            "t2r",
            "",
            "w",
            boxes=targets,
            category=rng.choice(["scene", "document", "chart"]),
        )
        queries.append(q)
        boxes = [[v + rng.uniform(-4, 4) for v in b] for b in targets if rng.random() < 0.8]
        boxes += [[100, 100, 150, 130]] * rng.choice([0, 0, 1])
        preds[q.id] = {"id": q.id, "boxes": boxes}
    return queries, preds


def reference_score(queries, preds):
    """Plain Python: exact-match R2T, IoU-greedy T2R on axis-aligned boxes."""

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    correct = tp = fp = fn = 0
    for q in queries:
        p = preds.get(q.id, {})
        if q.task == "r2t":
            correct += normalize_r2t(p.get("text", "")) == normalize_r2t(q.text)
            continue
        boxes = p.get("boxes", [])
        pairs = sorted(
            ((iou(b, t), i, j) for i, b in enumerate(boxes) for j, t in enumerate(q.boxes)),
            reverse=True,
        )
        used_p, used_t = set(), set()
        for v, i, j in pairs:
            if v >= 0.5 and i not in used_p and j not in used_t:
                used_p.add(i)
                used_t.add(j)
        tp += len(used_p)
        fp += len(boxes) - len(used_p)
        fn += len(q.boxes) - len(used_t)
    return correct, tp, fp, fn


def best_of(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    queries, preds = synthetic()
    n = len(queries)
    print(
        f"hardware: {cpu_model()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {n} queries, best of {args.repeat}"
    )
    t_ref, ref = best_of(lambda: reference_score(queries, preds), args.repeat)
    print(f"reference (plain Python, boxes only): {n / t_ref:10.0f} q/s  ({t_ref * 1e3:.0f} ms)")
    for order in ("iou", "icdar"):
        t, res = best_of(lambda o=order: score(queries, preds, match_order=o), args.repeat)
        print(
            f"ocrkit score, order={order:<5}:        {n / t:10.0f} q/s  ({t * 1e3:.0f} ms)  "
            f"ratio to reference {t_ref / t:.2f}x"
        )
        if order == "iou":
            t2r = res["t2r"]
            assert (res["r2t"]["correct"], t2r["tp"], t2r["fp"], t2r["fn"]) == ref, "mismatch"
    print("ocrkit and the reference agree on every count (order=iou).")


if __name__ == "__main__":
    main()
