"""STR evaluation: metrics per set and combined, reports, scale-robustness perturbations."""

from ocrkit.eval.evaluator import area_split, evaluate, evaluate_predictions, iter_labels
from ocrkit.eval.perturb import PerturbedPredictor, shrink_pad, split_by_area
from ocrkit.eval.predictions import read_predictions
from ocrkit.eval.report import EvalReport, SampleResult

__all__ = [
    "EvalReport",
    "PerturbedPredictor",
    "SampleResult",
    "area_split",
    "evaluate",
    "evaluate_predictions",
    "iter_labels",
    "read_predictions",
    "shrink_pad",
    "split_by_area",
]
