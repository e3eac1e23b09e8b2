"""The English recognizer embedded in the package: loaded when no model folder is given.

The folder ``ocrkit/assets/models/default`` is an ordinary recognizer folder (``config.json``,
``model.safetensors``, ``charset.json``) plus its model card (``MODEL_CARD.md``: data, recipe,
protocol, accuracy, speed). It ships inside the wheel, so nothing is downloaded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ocrkit.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME


def default_model_dir() -> Path:
    """Path of the embedded model folder; ``FileNotFoundError`` when this install lacks it."""
    folder = Path(str(resources.files("ocrkit"))) / "assets" / "models" / "default"
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(
            f"this ocrkit install has no embedded default recognizer ({folder} is missing or "
            "incomplete); reinstall ocrkit, or pass a model folder written by "
            "Recognizer.save_pretrained / 'ocrkit train' (--model DIR on the command line)"
        )
    return folder
