"""TABench model adapters (registry ``ADAPTERS``): prompts, coordinates, answer parsers."""

from ocrkit.tabench.adapters import families as _families  # noqa: F401  (registers entries)
from ocrkit.tabench.adapters.base import (
    ADAPTERS,
    Adapter,
    CoordSystem,
    QwenResized,
    Scaled,
    smart_resize,
)


def build_adapter(name: str, **options: object) -> Adapter:
    """``ADAPTERS.build`` with a clear error for unknown options."""
    try:
        return ADAPTERS.build(name, **options)
    except TypeError as exc:
        raise ValueError(f"adapter {name!r}: {exc}") from None


__all__ = [
    "ADAPTERS",
    "Adapter",
    "CoordSystem",
    "QwenResized",
    "Scaled",
    "build_adapter",
    "smart_resize",
]
