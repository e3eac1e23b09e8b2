"""Synthetic word images: fonts, words, effects, the renderer and LMDB export.

Names are imported on first use so that importing the package stays fast (its command line is
:mod:`ocrkit.cli.render`). See ``docs/renderer.md``.
"""

from __future__ import annotations

from ocrkit.utils.lazy import lazy_exports

_EXPORTS = {
    "FontSpec": "ocrkit.data.render.fonts",
    "MissingFontError": "ocrkit.data.render.fonts",
    "discover_fonts": "ocrkit.data.render.fonts",
    "list_fonts": "ocrkit.data.render.fonts",
    "covers": "ocrkit.data.render.fonts",
    "WordConfig": "ocrkit.data.render.words",
    "WordSource": "ocrkit.data.render.words",
    "EffectConfig": "ocrkit.data.render.effects",
    "RenderConfig": "ocrkit.data.render.renderer",
    "WordRenderer": "ocrkit.data.render.renderer",
    "iter_encoded": "ocrkit.data.render.export",
    "render_to_lmdb": "ocrkit.data.render.export",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("ocrkit.data.render", _EXPORTS, globals())
