"""The report of ``benchmarks/qmask_study.py``: the study JSON, learning curves, the per-category
comparison with reference runs, and heatmap figures of the CQMD arm (Fig. S8 style)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

CURVES = "qmask_study_curves.png"
COMPARE = "qmask_study_tabench.png"
HEATMAPS = "qmask_study_heatmaps.png"
CURVE_KEYS = (
    ("train/loss_ntp", "train L_NTP (answer tokens)"),
    ("train/loss_mask", "train L_mask (Dice + BCE)"),
    ("val/loss_ntp", "val L_NTP (synthetic scenes)"),
    ("val/dice", "val soft Dice (synthetic scenes)"),
)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def curve(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def _save(fig: Any, path: Path, colors: int | None = None) -> None:
    """Write ``fig`` as PNG atomically; ``colors`` quantizes it (photos: a small file)."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    from ocrkit.utils.io import atomic_path

    with atomic_path(path) as tmp:
        if colors is None:
            fig.savefig(tmp, format="png")
        else:
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            image = Image.open(buf).convert("RGB").quantize(colors)
            image.save(tmp, format="png", optimize=True)
    plt.close(fig)


def plot_curves(out: Path, arms: list[str], path: Path) -> None:
    """Four panels, both arms in each: training and validation losses, validation Dice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_KEYS), figsize=(4.0 * len(CURVE_KEYS), 3.2), dpi=110)
    for ax, (key, title) in zip(axes, CURVE_KEYS):
        for arm in arms:
            x, y = curve(read_metrics(out / arm / "metrics.jsonl"), key)
            if x:
                ax.plot(x, y, marker="." if key.startswith("val") else None, label=arm)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_compare(rows: dict[str, dict[str, Any]], path: Path) -> None:
    """Per category, one panel per metric (Acc_R2T, F1_T2R, Overall), one bar per model row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first = next(iter(rows.values()))
    cats = ["all", *sorted(first.get("by_category") or {})]

    def value(result: dict[str, Any], cat: str, metric: str) -> float:
        s = result if cat == "all" else (result.get("by_category") or {}).get(cat)
        if s is None:
            return 0.0
        return {"Acc_R2T": s["r2t"]["accuracy"], "F1_T2R": s["t2r"]["f1"]}.get(metric, s["overall"])

    metrics = ("Acc_R2T", "F1_T2R", "Overall")
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(8.0, 1.2 * len(cats) + 3), 8), dpi=110)
    x = np.arange(len(cats))
    width = 0.8 / len(rows)
    for ax, metric in zip(axes, metrics):
        for i, (name, result) in enumerate(rows.items()):
            vals = [value(result, c, metric) for c in cats]
            bars = ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, label=name)
            ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
        ax.set_xticks(x, cats, fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel(f"{metric} (%)", fontsize=9)
        ax.legend(fontsize=7, ncols=len(rows), loc="upper right")
    axes[0].set_title("tabench-local (490 queries unless stated): reference vs the CPU study")
    fig.tight_layout()
    _save(fig, path)


def heatmap_queries(queries: list[Any], per_category: int) -> list[Any]:
    """Per category, alternately a T2R and an R2T query (the bench's first of each)."""
    picked: list[Any] = []
    for cat in sorted({q.category for q in queries}):
        by_task = {
            t: [q for q in queries if q.category == cat and q.task == t] for t in ("t2r", "r2t")
        }
        for i in range(per_category):
            pool = by_task["t2r" if i % 2 == 0 else "r2t"]
            if len(pool) > i // 2:
                picked.append(pool[i // 2])
    return picked


def plot_heatmaps(
    model_dir: Path, queries: list[Any], path: Path, max_new_tokens: int = 64, cols: int = 3
) -> None:
    """Per query two panels: the image with the mask as a heatmap, mask boxes (green) and target
    boxes (red); the mask alone, stretched to its own range (a faint mask shows its shape)."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from qmask_study import target_boxes

    from ocrkit.anchoring.inference import QMaskPredictor, overlay_heatmap
    from ocrkit.tabench.adapters import build_adapter
    from ocrkit.tabench.local import load_rgb

    predictor = QMaskPredictor.load(model_dir, device="cpu", max_new_tokens=max_new_tokens)
    adapter = build_adapter("json")
    rows = (len(queries) + cols - 1) // cols
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(3.3 * cols * 2, 3.4 * rows), dpi=80)
    axes = np.atleast_2d(axes)
    for ax in axes.flat:
        ax.axis("off")
    for i, q in enumerate(queries):
        ax, ax_mask = axes[i // cols, 2 * (i % cols)], axes[i // cols, 2 * (i % cols) + 1]
        image = load_rgb(str(q.image_path))
        result = predictor.anchor(image, adapter.prompt(q))
        heat = result.heatmaps[0]
        rgb = overlay_heatmap(image, heat, result.boxes[0])
        thick = max(2, round(max(image.shape[:2]) / 250))
        for x1, y1, x2, y2 in target_boxes(q):
            cv2.rectangle(rgb, (int(x1), int(y1)), (int(x2), int(y2)), (255, 0, 0), thick)
        scale = 360 / max(rgb.shape[:2])  # the figure shows ~360 px per panel anyway
        ax.imshow(cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
        query = q.text if q.task == "t2r" else str([int(v) for v in q.box])
        answer = "".join(c if c.isprintable() else " " for c in result.answer)
        ax.set_title(
            f"{q.category} {q.task.upper()}: {query[:26]}\nanswer: {answer[:30]}", fontsize=7
        )
        small = cv2.resize(heat, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ax_mask.imshow(small, cmap="jet")
        for x1, y1, x2, y2 in target_boxes(q):
            box = [v * scale for v in (x1, y1, x2, y2)]
            ax_mask.add_patch(
                plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, color="w")
            )
        ax_mask.set_title(f"mask, p in [{heat.min():.3f}, {heat.max():.3f}]", fontsize=7)
    fig.suptitle(
        "CQMD arm: query mask (JET) over the image, boxes from the mask (green), targets (red); "
        "right: the mask stretched to its range, targets in white",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 / rows))
    _save(fig, path, colors=128)


def arm_summary(out: Path, arm: str) -> dict[str, Any]:
    scores = json.loads((out / arm / "bench_scores.json").read_text())
    train = json.loads((out / arm / "study_train.json").read_text())
    rows = read_metrics(out / arm / "metrics.jsonl")
    last = {k: curve(rows, k)[1][-1:] for k, _ in CURVE_KEYS}
    return {
        "steps": train["steps"],
        "train_minutes": round(train["minutes"], 1),
        "eval_minutes": round(scores.get("minutes", 0.0), 1),
        "seconds_per_query": round(scores["seconds_per_query"], 3),
        "final": {k: (v[0] if v else None) for k, v in last.items()},
        "text": scores["text"],
        "mask": scores["mask"],
        "pointing": scores["pointing"],
    }


def markdown_table(summary: dict[str, Any]) -> str:
    """The study table: per arm and box source, R2T accuracy, T2R P/R/F1, Overall, pointing."""
    lines = [
        "| arm | T2R boxes from | Acc_R2T | T2R P | T2R R | F1_T2R | Overall | "
        "pointing R2T (chance) | pointing T2R (chance) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for arm, s in summary["arms"].items():
        pt = s["pointing"]
        point = [f"{pt[t]['hit_rate']:.1f} ({pt[t]['chance']:.2f})" for t in ("r2t", "t2r")]
        for mode in ("text", "mask"):
            r = s[mode]
            lines.append(
                f"| {arm} | {'answer' if mode == 'text' else 'mask only'} | "
                f"{r['r2t']['accuracy']:.2f} | {r['t2r']['precision']:.2f} | "
                f"{r['t2r']['recall']:.2f} | {r['t2r']['f1']:.2f} | {r['overall']:.2f} | "
                + " | ".join(point)
                + " |"
            )
    return "\n".join(lines) + "\n"


def compare_table(rows: dict[str, dict[str, Any]]) -> str:
    """Per category (rows) and model (columns): ``Acc_R2T / F1_T2R / Overall``."""
    names = list(rows)
    first = rows[names[0]]
    cats = ["all", *sorted(first.get("by_category") or {})]
    lines = [
        "| category | R2T / T2R n | " + " | ".join(names) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in names) + " |",
    ]
    for cat in cats:
        cells = []
        for name in names:
            s = rows[name] if cat == "all" else (rows[name].get("by_category") or {}).get(cat)
            cells.append(
                "-"
                if s is None
                else f"{s['r2t']['accuracy']:.1f} / {s['t2r']['f1']:.1f} / {s['overall']:.1f}"
            )
        s0 = first if cat == "all" else first["by_category"][cat]
        n = f"{s0['r2t']['n']} / {s0['t2r']['n']}"
        lines.append(f"| {cat} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_study(out: Path, arms: list[str], args: Any, hardware: dict[str, Any]) -> dict:
    """Everything the study reports, from the finished phases in ``out``."""
    from qmask_study import bench_subset

    from ocrkit.utils.io import atomic_write_json, atomic_write_text

    init = json.loads((out / "init" / "study_init.json").read_text())
    summary: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "hardware": hardware,
        "model": {"name": init["name"], "parameters": init["parameters"], "spec": init["spec"]},
        "plan": json.loads((out / "plan.json").read_text()),
        "threads_per_arm": args.threads,
        "bench_limit": args.bench_limit,
        "arms": {arm: arm_summary(out, arm) for arm in arms},
        "references": {},
        "figures": [CURVES, COMPARE],
    }
    for ref in args.reference:
        name, _, path = ref.partition("=")
        summary["references"][name] = json.loads(Path(path).read_text())
    plot_curves(out, arms, out / CURVES)
    rows = {name: r for name, r in summary["references"].items()}
    for arm, s in summary["arms"].items():
        rows[f"{arm} (answer)"] = s["text"]
        if arm == "cqmd":
            rows[f"{arm} (mask boxes)"] = s["mask"]
    plot_compare(rows, out / COMPARE)
    summary["compare_table"] = compare_table(rows)
    if args.heatmaps and "cqmd" in arms:
        bench = args.bench or out / "bench" / "tabench-local.jsonl"
        picked = heatmap_queries(bench_subset(bench, None), args.heatmaps)
        tokens = getattr(args, "max_new_tokens", 64)
        plot_heatmaps(out / "cqmd" / "final", picked, out / HEATMAPS, tokens)
        summary["figures"].append(HEATMAPS)
        summary["heatmap_queries"] = [q.id for q in picked]
    atomic_write_json(out / "qmask_study.json", summary)
    text = markdown_table(summary) + "\n" + summary["compare_table"]
    atomic_write_text(out / "qmask_study.md", text)
    print(text)
    return summary
