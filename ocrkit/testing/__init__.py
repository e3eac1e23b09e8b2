"""Scaffolding for tests, demos and benchmarks, outside the model families' packages.

:mod:`ocrkit.testing.tiny_vlm` builds tiny random Qwen2-VL / Qwen2.5-VL / Qwen3-VL models with
offline tokenizers (the ``tiny:`` key of a Q-Mask ``model:`` section and ``ocrkit anchor
--demo-tiny`` use them). Nothing here is imported when ocrkit starts.
"""
