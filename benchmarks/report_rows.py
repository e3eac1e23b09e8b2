"""Rows of ``benchmarks/report.py`` beyond the measurements: the external rows' sources, what
each model is, rows carried over from an earlier report for models no longer at hand, and each
row's paired comparison with the reference row."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.cli import CliError
from ocrkit.text.metrics import mcnemar_exact

EXTERNAL_ROWS = {
    # name: (class in ocrkit.external.rapidocr, wheel, ONNX file in the wheel, charset label)
    "rapidocr-v6": (
        "RapidOCRv6Recognizer",
        "rapidocr",
        "PP-OCRv6_rec_small.onnx",
        "PP-OCRv6 18,709",
    ),
    "rapidocr-v4": (
        "RapidOCRRecognizer",
        "rapidocr_onnxruntime",
        "ch_PP-OCRv4_rec_infer.onnx",
        "PP-OCRv4 6,624",
    ),
}


def onnx_params(module: str, file: str) -> float | None:
    """Millions of weights in a wheel's recognition model (initializers and constants)."""
    try:
        import onnx

        path = Path(importlib.import_module(module).__file__).parent / "models" / file
        graph = onnx.load(str(path)).graph
        tensors = list(graph.initializer)
        tensors += [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute]
        return sum(int(np.prod(t.dims)) for t in tensors if t.data_type == 1) / 1e6
    except Exception:  # only a table cell
        return None


def _call(spec: Mapping[str, Any]) -> str:
    """``{"name": "vit_tiny", "depth": 4}`` -> ``vit_tiny(depth=4)``."""
    args = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name" and v is not None)
    return f"{spec.get('name', '?')}({args})"


def describe_model(
    path: str | None, model: Any, options: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """What a row is: its architecture from the model's config (with the row's decode
    ``options`` that override a saved decoder setting, e.g. ``beam_width``) and, where the
    folder sits in a
    training run (``RUN/best``, ``RUN/final``), the run's recipe description, its encoder
    initialization and the checkpoint's step; for the embedded model, its model card's title."""
    import yaml

    from ocrkit.models.default import resolve_model_path

    folder = resolve_model_path(path)
    config = model.config
    decoder = dict(config["decoder"])
    decoder.update({k: v for k, v in (options or {}).items() if k in decoder})
    about = {"architecture": f"{_call(config['backbone'])} + {_call(decoder)}"}
    run_config, card = folder.parent / "config.yaml", folder / "MODEL_CARD.md"
    training = []
    if run_config.is_file():
        run = yaml.safe_load(run_config.read_text()) or {}
        training.append(str(run.get("description") or run_config))
        init = run.get("init") or {}
        if init.get("model"):
            training.append(f"initialized from `{init['model']}`")
        elif init.get("encoder"):
            training.append(f"encoder initialized from `{init['encoder']}`")
        else:
            training.append("from scratch")
        if init.get("freeze_encoder"):
            training.append(_frozen_part(init))
        elif init.get("encoder_lr_scale") is not None:
            training.append(f"encoder lr x{init['encoder_lr_scale']}")
    elif card.is_file():
        training.append(card.read_text().splitlines()[0].lstrip("# ").strip())
    elif (folder / "NOTICE").is_file():  # imported weights (ocrkit convert): where they came from
        training.append((folder / "NOTICE").read_text().splitlines()[0].strip())
    state = folder / "trainer_state.json"
    if state.is_file():
        training.append(
            f"checkpoint `{folder.name}` at step {json.loads(state.read_text())['global_step']}"
        )
    about["training"] = "; ".join(training) or "-"
    return about


def _frozen_part(init: Mapping[str, Any]) -> str:
    """What ``init.freeze_encoder`` (and ``train_body_tail``) left frozen, in words."""
    if init.get("freeze_encoder") != "body":
        return "encoder frozen"
    tail = int(init.get("train_body_tail") or 0)
    return f"body frozen but its last {tail} blocks" if tail else "body frozen"


def carry_rows(path: Path, names: Sequence[str], datasets: Mapping[str, Any]) -> list[dict]:
    """Rows of models no longer at hand, copied from an earlier report's JSON.

    Each keeps its accuracy (a function of the weights and the sets alone) and its speed, marked
    ``carried`` with the earlier run's date and its reference row's speed, so the page shows
    the row's speed as a ratio to the reference measured in *its* run, never against this one.
    """
    earlier = json.loads(Path(path).read_text())
    if set(earlier["datasets"]) != set(datasets) or any(
        earlier["datasets"][n]["samples"] != len(d) for n, d in datasets.items()
    ):
        raise CliError(f"--carry-from {path}: its sets differ from --data; rows cannot be carried")
    reference = next(r for r in earlier["rows"] if not r.get("error") and not r.get("carried"))
    rows = []
    for name in names:
        found = [r for r in earlier["rows"] if r["name"] == name and not r.get("error")]
        if not found:
            raise CliError(f"--carry {name}: no measured row of that name in {path}")
        for row in found:  # a row carried into the earlier report keeps its first origin
            carried = {k: earlier.get(k) for k in ("date", "command", "hardware", "threads")}
            carried["reference"] = {k: reference[k] for k in ("name", "backend", "speed")}
            rows.append({"carried": carried, **row})
    return rows


def add_paired(rows: Sequence[dict], reference: str, sets: Sequence[str]) -> None:
    """Replace each measured row's in-memory ``correct`` (``{protocol: {(set, key)}}``) by
    ``paired``: per protocol and set (and ``combined``), the crops only this row reads
    (``only_row``), only the reference row reads (``only_ref``) and the exact McNemar p-value.
    Accuracy alone cannot say whether a gap of a few crops between two strong readers is more
    than chance; the paired counts can. The reference's first measured backend is used."""
    ref = next((r for r in rows if r["name"] == reference and r.get("correct")), None)
    ref_correct = ref["correct"] if ref is not None else {}
    for row in rows:
        correct = row.pop("correct", None)
        if ref is None or correct is None or row is ref:
            continue
        row["paired"] = {}
        for protocol, keys in correct.items():
            ref_keys = ref_correct.get(protocol)
            if ref_keys is None:
                continue
            entry = {}
            for name in [*sets, "combined"]:
                mine = keys if name == "combined" else {k for k in keys if k[0] == name}
                theirs = ref_keys if name == "combined" else {k for k in ref_keys if k[0] == name}
                a, b = len(mine - theirs), len(theirs - mine)
                entry[name] = {"only_row": a, "only_ref": b, "p": round(mcnemar_exact(a, b), 4)}
            row["paired"][protocol] = entry
