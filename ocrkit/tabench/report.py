"""Human-readable TABench results: a Markdown report and a per-category bar chart (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocrkit.utils.io import atomic_path, atomic_write_text


def _row(name: str, s: dict[str, Any]) -> str:
    r, t = s["r2t"], s["t2r"]
    bad = s["unparsable"]["r2t"] + s["unparsable"]["t2r"]
    miss = s["missing"]["r2t"] + s["missing"]["t2r"]
    empty = s.get("empty", {"r2t": 0, "t2r": 0})
    bad = f"{bad} / {empty['r2t'] + empty['t2r']}"
    return (
        f"| {name} | {r['n']} | {r['accuracy']:.2f} | {t['n']} | {t['precision']:.2f} | "
        f"{t['recall']:.2f} | {t['f1']:.2f} | {s['overall']:.2f} | {bad} | {miss} |"
    )


_HEAD = (
    "| {0} | R2T n | Acc_R2T | T2R n | P | R | F1_T2R | Overall | unparsable / empty | missing |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _provenance(result: dict[str, Any]) -> list[str]:
    """Which prompt set and which T2R target shape produced these numbers (never compare runs
    that differ in them unknowingly)."""
    run, bench = result.get("run") or {}, result.get("bench") or {}
    parts = []
    if run.get("prompts"):
        parts.append(f"prompts `{run['prompts']}` (adapter `{run.get('adapter')}`)")
    elif run.get("answerer"):
        parts.append(f"engine `{run['answerer']}` (answers in pixels, no prompts)")
    if bench.get("t2r_shape"):
        parts.append(f"T2R targets `{bench['t2r_shape']}`")
    if bench.get("split"):
        parts.append(f"held-apart split `{bench['split']}`")
    return ["", "Run: " + "; ".join(parts) + "."] if parts else []


def markdown_report(result: dict[str, Any], title: str = "TABench results") -> str:
    """The scores as Markdown: totals, then one table per breakdown."""
    st = result.get("settings", {})
    t = result["t2r"]
    lines = [
        f"# {title}",
        "",
        f"Overall **{result['overall']:.2f}** = (Acc_R2T {result['r2t']['accuracy']:.2f} + "
        f"F1_T2R {t['f1']:.2f}) / 2. T2R counts: TP {t['tp']}, FP {t['fp']}, FN {t['fn']}.",
        "",
        f"T2R matching: one-to-one, IoU {st.get('comparison', '>=')} "
        f"{st.get('iou_threshold', 0.5)}, order `{st.get('match_order', 'iou')}`. "
        "Percentages; unparsable, empty and missing answers all score as empty answers.",
        *_provenance(result),
        "",
        _HEAD.format("slice"),
        _row("all", result),
    ]
    for key, label in (
        ("by_category", "category"),
        ("by_language", "language"),
        ("by_source", "source"),
    ):
        groups = result.get(key) or {}
        if not groups:
            continue
        lines += ["", f"## By {label}", "", _HEAD.format(label)]
        lines += [_row(name, s) for name, s in groups.items()]
    return "\n".join(lines) + "\n"


def plot_categories(result: dict[str, Any], path: str | Path, title: str = "TABench") -> None:
    """Grouped bars per category (Acc_R2T, F1_T2R, Overall), written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = {"all": result, **(result.get("by_category") or {})}
    names = list(groups)
    series = {
        "Acc_R2T": [g["r2t"]["accuracy"] for g in groups.values()],
        "F1_T2R": [g["t2r"]["f1"] for g in groups.values()],
        "Overall": [g["overall"] for g in groups.values()],
    }
    x = np.arange(len(names))
    width = 0.26
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(names) + 2), 3.8), dpi=120)
    for i, (label, values) in enumerate(series.items()):
        bars = ax.bar(x + (i - 1) * width, values, width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 105)
    ax.set_ylabel("score (%)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8, ncols=3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_report(result: dict[str, Any], markdown: str | Path, png: str | Path | None) -> None:
    """Write the Markdown report (and the chart, linked from it) atomically."""
    text = markdown_report(result)
    if png is not None:
        plot_categories(result, png)
        rel = Path(png).name if Path(png).parent == Path(markdown).parent else str(png)
        text += f"\n![per-category scores]({rel})\n"
    atomic_write_text(markdown, text)
