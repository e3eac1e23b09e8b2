"""Model export: ONNX graphs of a recognizer and an onnxruntime recognizer (``ocrkit[onnx]``).

Names resolve on first use: ``OnnxRecognizer`` and ``providers_for`` come from
:mod:`ocrkit.export.onnx_runtime` (no torch for CTC models), ``export_onnx`` from
:mod:`ocrkit.export.onnx` (torch).
"""

from __future__ import annotations

from ocrkit.utils.lazy import lazy_exports

_EXPORTS = {
    "OnnxRecognizer": "ocrkit.export.onnx_runtime",
    "providers_for": "ocrkit.export.onnx_runtime",
    "export_onnx": "ocrkit.export.onnx",
}
__getattr__, __dir__ = lazy_exports("ocrkit.export", _EXPORTS, globals())

__all__ = ["OnnxRecognizer", "export_onnx", "providers_for"]
