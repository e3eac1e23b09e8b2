"""ocrkit: scene text recognition and text anchoring."""

from ocrkit.registry import Registry
from ocrkit.types import Prediction, Predictor, Sample

__version__ = "0.1.0"

__all__ = ["Prediction", "Predictor", "Registry", "Sample", "__version__"]
