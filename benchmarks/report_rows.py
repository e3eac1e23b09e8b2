"""Rows of ``benchmarks/report.py`` that are not measurements: what each model is, and rows
carried over from an earlier report for models no longer at hand."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ocrkit.cli import CliError


def _call(spec: Mapping[str, Any]) -> str:
    """``{"name": "vit_tiny", "depth": 4}`` -> ``vit_tiny(depth=4)``."""
    args = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name" and v is not None)
    return f"{spec.get('name', '?')}({args})"


def describe_model(path: str | None, model: Any) -> dict[str, str]:
    """What a row is: its architecture from the model's config and, where the folder sits in a
    training run (``RUN/best``, ``RUN/final``), the run's recipe description, its encoder
    initialization and the checkpoint's step; for the embedded model, its model card's title."""
    import yaml

    from ocrkit.models.default import resolve_model_path

    folder = resolve_model_path(path)
    config = model.config
    about = {"architecture": f"{_call(config['backbone'])} + {_call(config['decoder'])}"}
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
            training.append("encoder frozen")
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
