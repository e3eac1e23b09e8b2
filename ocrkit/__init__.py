"""ocrkit: scene text recognition and text anchoring."""

from ocrkit.registry import Registry
from ocrkit.types import Prediction, Predictor, Sample

__version__ = "0.1.0"

__all__ = [
    "Prediction",
    "Predictor",
    "Registry",
    "Sample",
    "__version__",
    "load",
    "load_recognizer",
    "read",
]


def load(path, **kwargs):
    """Load any ocrkit model folder by its ``format`` (recognizer, pretrained encoder, Q-Mask
    model, ONNX recognizer; see :func:`ocrkit.utils.model_folder.load`), or an embedded
    recognizer by name (``"default"``, ``"tiny"``) when no such folder exists."""
    from pathlib import Path

    from ocrkit.utils.model_folder import load as _load

    if isinstance(path, str) and not Path(path).exists():
        from ocrkit.models.default import EMBEDDED, embedded_model_dir

        if path in EMBEDDED:
            path = embedded_model_dir(path)
    return _load(path, **kwargs)


def load_recognizer(path: str | None = None, device: str | None = None) -> "Recognizer":  # noqa: F821
    """Load a recognizer folder (see :func:`ocrkit.models.load_recognizer`); imports torch lazily."""
    from ocrkit.models.recognizer import load_recognizer as _load

    return _load(path, device=device)


def read(images, model: str | None = None, **options) -> list:
    """Page-level OCR of whole images: detected lines, in reading order, with boxes and text (see
    :func:`ocrkit.ocr.read`); the detector needs onnxruntime and the rapidocr wheel."""
    from ocrkit.ocr import read as _read

    return _read(images, model=model, **options)
