"""The recognizers embedded in the package, loaded by name: nothing is downloaded.

``default`` (``ocrkit/assets/models/default``): PP-OCRv6 small imported from the ``rapidocr``
wheel, its CTC head cut to printable ASCII + space and fine-tuned by ocrkit (case, punctuation,
spaces). ``tiny`` (``ocrkit/assets/models/tiny``): ocrkit's 1.19M-parameter ViT + AR model
trained from scratch on CPU (lowercase alphanumerics), the fastest. Each folder is an ordinary
recognizer folder (``config.json``, ``model.safetensors``, ``charset.json``) plus its
``MODEL_CARD.md`` (data, recipe, protocol, accuracy, speed) and, where the weights came from
elsewhere, ``LICENSE`` and ``NOTICE``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ocrkit.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME

EMBEDDED = ("default", "tiny")


def embedded_model_dir(name: str = "default") -> Path:
    """Path of an embedded model folder; ``FileNotFoundError`` when this install lacks it."""
    if name not in EMBEDDED:
        raise ValueError(f"no embedded model {name!r}; choose from {', '.join(EMBEDDED)}")
    folder = Path(str(resources.files("ocrkit"))) / "assets" / "models" / name
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(
            f"this ocrkit install has no embedded {name!r} recognizer ({folder} is missing or "
            "incomplete); reinstall ocrkit, or pass a model folder written by "
            "Recognizer.save_pretrained / 'ocrkit train' (--model DIR on the command line)"
        )
    return folder


def default_model_dir() -> Path:
    """Path of the embedded default model folder."""
    return embedded_model_dir("default")


def resolve_model_path(path: str | Path | None) -> Path:
    """``None`` or an embedded name (``default``, ``tiny``) that is not an existing folder -> the
    embedded folder; anything else -> the path as given."""
    if path is None:
        return default_model_dir()
    if str(path) in EMBEDDED and not Path(path).is_dir():
        return embedded_model_dir(str(path))
    return Path(path)
