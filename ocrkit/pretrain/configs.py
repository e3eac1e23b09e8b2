"""The ``model:`` sections of the ``mim`` and ``mnsp`` tasks: ``MIMConfig`` and ``MNSPConfig``.

Read with :func:`ocrkit.config.to_dataclass` like the trainer's and Q-Mask's configs: typed, the
defaults are the field defaults below, an unknown key is an error that names it. Decoder
sections merge with their defaults key by key; the encoder spec is replaced whole (its kwargs go
to the backbone). :meth:`to_dict` is the ``model`` entry a pretraining folder's ``config.json``
holds. Field order is that file's key order.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ocrkit.config import ConfigError, to_dataclass
from ocrkit.pretrain.encoders import encoder_spec
from ocrkit.pretrain.losses import TARGET_NORMS

TARGETS = ("feature", "pixel")
DEFAULT_SCALES = [[4, 16], [8, 32], [16, 64], [32, 128]]
MIM_TARGETS = ("original", "zoom")


def _vit_small() -> dict[str, Any]:
    return {"name": "vit_small", "patch_size": 4}


class _PretrainConfig:
    """Reading, checks and the dict form shared by :class:`MIMConfig` and :class:`MNSPConfig`."""

    DECODERS: ClassVar[tuple[str, ...]] = ()  # sections merged key by key with their defaults

    def validate(self, section: str = "model") -> None:
        defaults = type(self)()
        for key in self.DECODERS:
            given, known = getattr(self, key), getattr(defaults, key)
            extra = sorted(set(given) - set(known))
            if extra:
                close = difflib.get_close_matches(extra[0], list(known), n=1)
                hint = f" Did you mean {section}.{key}.{close[0]}?" if close else ""
                raise ConfigError(f"recipe key {section}.{key}.{extra[0]}: unknown.{hint}")
            setattr(self, key, {**known, **given})
        try:
            self.encoder = encoder_spec(self.encoder)
        except ValueError as exc:
            raise ConfigError(f"recipe key {section}.encoder: {exc}") from None
        if len(self.img_size) != 2:
            raise ConfigError(f"recipe key {section}.img_size: give [height, width]")
        self.img_size = [int(v) for v in self.img_size]
        if self.target not in TARGETS:
            raise ConfigError(f"recipe key {section}.target: use one of {', '.join(TARGETS)}")
        if self.target_norm not in TARGET_NORMS:
            raise ConfigError(
                f"recipe key {section}.target_norm: use one of {', '.join(TARGET_NORMS)}"
            )
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(f"recipe key {section}.mask_ratio: must be in [0, 1)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, section: str = "model") -> Any:
        """Read a recipe section or a saved ``model`` entry (``architecture`` is ignored)."""
        given = {k: v for k, v in (data or {}).items() if k != "architecture"}
        return to_dataclass(cls, given, section)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass
class MIMConfig(_PretrainConfig):
    """MAE-style MIM in MAERec's setting (see :mod:`ocrkit.pretrain.mim`)."""

    DECODERS: ClassVar[tuple[str, ...]] = ("decoder",)

    encoder: str | dict = field(default_factory=_vit_small)
    img_size: list = field(default_factory=lambda: [32, 128])
    mask_ratio: float = 0.8
    target: str = "pixel"  # pixel | feature (feature needs a teacher)
    norm_pix: bool = True  # MAE's norm_pix_loss for pixel targets
    teacher: str | None = None
    target_norm: str = "layernorm"  # feature targets: LMIM's non-affine LayerNorm | none
    augment: str | None = "none"  # MAERec pretrains on plain resized images
    decoder: dict = field(default_factory=lambda: {"dim": 512, "depth": 8, "num_heads": 16})


@dataclass
class MNSPConfig(_PretrainConfig):
    """Masked Next-Scale Prediction (see :mod:`ocrkit.pretrain.mnsp`)."""

    DECODERS: ClassVar[tuple[str, ...]] = ("nsp_decoder", "mim_decoder")

    encoder: str | dict = field(default_factory=_vit_small)
    img_size: list = field(default_factory=lambda: [32, 128])
    teacher: str | None = None  # any ocrkit encoder folder (MAERec-style MIM encoder in the paper)
    target: str = "feature"  # feature | pixel (Table 7)
    target_norm: str = "none"  # feature targets as Eq. 3 | layernorm (LMIM's convention)
    mim_target: str = "original"  # Eq. 3: E_t(I) at the zoom tokens' places | zoom (E_t(zoom))
    norm_pix: bool = True  # pixel targets: per-patch normalized
    scales: list = field(default_factory=lambda: [list(s) for s in DEFAULT_SCALES])  # ocrkit's
    mask_ratio: float = 0.8
    nsp: bool = True  # NSP branch (Table 3)
    mim: bool = True  # MIM branch (Table 3)
    mla: bool = True  # multi-scale linguistic alignment (Table 4)
    guidance: bool = True  # MIM decoder cross-attends to E(s_k) and D_nsp(F) (Table 4)
    zoom: list | None = field(default_factory=lambda: [0.5, 1.0])  # crop side; null (Table 5)
    augment: str | None = "photometric"  # two views' augmentation; none (Table 5)
    nsp_decoder: dict = field(
        default_factory=lambda: {"dim": None, "depth": 2, "num_heads": None}  # None: encoder's
    )
    mim_decoder: dict = field(default_factory=lambda: {"dim": 512, "depth": 2, "num_heads": 16})

    def validate(self, section: str = "model") -> None:
        super().validate(section)
        if self.mim_target not in MIM_TARGETS:
            raise ConfigError(
                f"recipe key {section}.mim_target: use one of {', '.join(MIM_TARGETS)}"
            )
