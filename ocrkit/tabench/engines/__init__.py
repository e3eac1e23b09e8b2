"""Local models for ``ocrkit tabench run --engine NAME`` (registry ``ENGINES``)."""

from ocrkit.tabench.engines import ocrkit as _ocrkit  # noqa: F401  (registers "ocrkit")
from ocrkit.tabench.engines import rapidocr as _rapidocr  # noqa: F401  (registers "rapidocr")
from ocrkit.tabench.local import ENGINES

__all__ = ["ENGINES"]
