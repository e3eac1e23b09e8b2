"""Model export: ONNX graphs of a recognizer and an onnxruntime recognizer (``ocrkit[onnx]``)."""

from ocrkit.export.onnx import OnnxRecognizer, export_onnx, providers_for

__all__ = ["OnnxRecognizer", "export_onnx", "providers_for"]
