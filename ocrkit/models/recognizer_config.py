"""The recognizer's config (a recipe's ``model:`` section, a folder's ``config.json``).

:class:`RecognizerConfig` is read with :func:`ocrkit.config.to_dataclass`, as the trainer's and
Q-Mask's configs are: typed, its defaults are the field defaults below, and an unknown key is an
error that names it. :meth:`RecognizerConfig.to_dict` gives the ``config.json`` content back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ocrkit.config import ConfigError, to_dataclass

# Written into config.json by the folder writer; read back and kept, never required.
METADATA_KEYS = ("architecture", "format", "ocrkit_version")


@dataclass
class RecognizerConfig:
    """Backbone, decoder, charset and input settings of a :class:`~ocrkit.models.Recognizer`."""

    backbone: str | dict = field(default_factory=lambda: {"name": "vit_small"})  # BACKBONES
    decoder: str | dict = field(default_factory=lambda: {"name": "ar"})  # DECODERS
    charset: str | dict = "94"  # preset, charset file, or {"name", "chars"}
    max_length: int = 25
    img_size: list = field(default_factory=lambda: [32, 128])  # (H, W)
    mean: float = 0.5
    std: float = 0.5
    aux_ctc: dict | None = None  # {"weight": w, "upsample": 2}: CTC on the encoder (ctc.py)
    preprocess: dict | None = None  # None/{"name": "fixed"}: resize to img_size; {"name": "ppocr"}
    architecture: str | None = None
    format: str | None = None
    ocrkit_version: str | None = None

    def validate(self, section: str = "model") -> None:
        """Spell ``backbone``/``decoder`` as ``{"name": ..., **kwargs}``; sizes as ints."""
        for part in ("backbone", "decoder"):
            spec = getattr(self, part)
            spec = {"name": spec} if isinstance(spec, str) else dict(spec)
            if "name" not in spec:
                raise ConfigError(f"recipe key {section}.{part}: needs a 'name'")
            setattr(self, part, spec)
        if len(self.img_size) != 2:
            raise ConfigError(f"recipe key {section}.img_size: give [height, width]")
        self.img_size = [int(v) for v in self.img_size]

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | RecognizerConfig | None, section: str = "model"
    ) -> RecognizerConfig:
        """Read a recipe section or a folder's ``config.json`` (or copy a config)."""
        if isinstance(data, RecognizerConfig):
            data = data.to_dict()
        return to_dataclass(cls, data, section)

    def to_dict(self) -> dict[str, Any]:
        """The config as ``config.json`` holds it (metadata keys only when set)."""
        out = dataclasses.asdict(self)
        for key in METADATA_KEYS:
            if out[key] is None:
                del out[key]
        return out


def normalize_config(config: Mapping[str, Any] | RecognizerConfig) -> dict[str, Any]:
    """The config with every default filled in, as a dict (see :class:`RecognizerConfig`)."""
    return RecognizerConfig.from_dict(config).to_dict()
