"""The supervised recognizer: backbone + decoder + tokenizer + preprocessing, in one module.

Decoders meet the recognizer only through ``loss(memory, targets)`` and ``generate(memory)``, so
the ``ar`` decoder and later ones (``mdiff``) share all of this code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ocrkit.models import checkpoint
from ocrkit.models.backbones import build_backbone
from ocrkit.models.ctc import CTCAuxHead
from ocrkit.models.decoders import DECODERS
from ocrkit.models.decoders.ctc import CTCDecoder
from ocrkit.models.preprocess import (
    ImageInput,
    make_transform,
    predict_in_width_order,
    recognize_in_batches,
    stack_batch,
)
from ocrkit.models.weights import load_state_dict, select_prefix
from ocrkit.text.charset import Charset
from ocrkit.text.tokenizer import Tokenizer
from ocrkit.types import Prediction

logger = logging.getLogger(__name__)

ENCODER_PREFIXES = ("backbone.", "encoder.", "model.encoder.", "")


FROZEN_PARTS = ("all", "body")


class Recognizer(nn.Module):
    """Reads word images into text. Build with :meth:`from_config` or :meth:`from_pretrained`."""

    def __init__(
        self,
        backbone: nn.Module,
        decoder: nn.Module,
        tokenizer: Tokenizer,
        img_size: Sequence[int] = (32, 128),
        mean: float = 0.5,
        std: float = 0.5,
        config: Mapping[str, Any] | None = None,
        aux_ctc: Mapping[str, Any] | None = None,
        preprocess: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.mean, self.std = mean, std
        self.transform = make_transform(self.img_size, mean, std, preprocess)
        self.config = dict(config or {})
        self.ctc_weight = float((aux_ctc or {}).get("weight", 0.0))
        self.ctc_head: CTCAuxHead | None = None
        if self.ctc_weight > 0:
            if not hasattr(backbone, "grid_size"):
                raise ValueError("aux_ctc needs a backbone with a token grid (vit_*, svtrv2_*)")
            upsample = int(aux_ctc.get("upsample", 2))
            self.ctc_head = CTCAuxHead(backbone.num_features, tokenizer.num_classes, upsample)

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any] | checkpoint.RecognizerConfig) -> Recognizer:
        """Build from a recipe's ``model:`` section, e.g. ``{"backbone": {"name": "vit_small"},
        "decoder": {"name": "ar"}, "charset": "94", "max_length": 25, "img_size": [32, 128]}``
        (read as a :class:`~ocrkit.models.recognizer_config.RecognizerConfig`), or that config."""
        config = checkpoint.normalize_config(config)
        charset = checkpoint.resolve_charset(config["charset"])
        tokenizer = Tokenizer(charset, max_length=config["max_length"])
        name, kwargs = checkpoint.split_spec(config["backbone"])
        backbone = build_backbone(name, img_size=tuple(config["img_size"]), **kwargs)
        name, kwargs = checkpoint.split_spec(config["decoder"])
        decoder = DECODERS.build(
            name, tokenizer=tokenizer, in_features=backbone.num_features, **kwargs
        )
        skip = ("tokenizer", "in_features")
        config["decoder"] = {"name": name, **checkpoint.with_defaults(type(decoder), kwargs, skip)}
        return cls(
            backbone,
            decoder,
            tokenizer,
            img_size=config["img_size"],
            mean=config["mean"],
            std=config["std"],
            config=config,
            aux_ctc=config.get("aux_ctc"),
            preprocess=config.get("preprocess"),
        )

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        device: str | torch.device | None = None,
        map_location: str | torch.device | None = None,
    ) -> Recognizer:
        """Load a folder written by :meth:`save_pretrained`; the model is returned in eval mode.

        ``map_location`` is where the tensors are read to (default CPU), ``device`` where the
        model is moved afterwards.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        model = cls.from_config(checkpoint.read_folder(directory))
        location = str(map_location) if map_location is not None else "cpu"
        state = load_file(str(directory / checkpoint.WEIGHTS_NAME), device=location)
        model.load_state_dict(state, strict=True)
        if device is not None:
            model.to(device)
        return model.eval()

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``charset.json`` (atomically)."""
        from ocrkit import __version__

        return checkpoint.save_folder(
            directory, self.config, self.charset, self.state_dict(), __version__
        )

    def load_encoder_weights(
        self,
        source: str | Path | Mapping[str, torch.Tensor],
        prefix: str | None = None,
        strict: bool = False,
        trust_pickle: bool = False,
    ) -> dict[str, Any]:
        """Initialize the backbone from a (pre-trained) encoder checkpoint.

        ``source`` is a state dict, a ``.safetensors`` file or a model folder. Keys under
        ``prefix`` are used with it stripped; by default the first of ``backbone.``,
        ``encoder.``, ``model.encoder.`` or no prefix that matches. A learned ViT position table
        of another grid is resampled. Returns ``{"prefix", "loaded", "missing", "unexpected"}``.
        """
        state = source if isinstance(source, Mapping) else load_state_dict(source, trust_pickle)
        prefixes = (prefix,) if prefix is not None else ENCODER_PREFIXES
        sub, used = select_prefix(state, prefixes)
        own = self.backbone.state_dict()
        if "pos_embed" in sub and _is_text_vit(self.backbone):
            sub["pos_embed"] = _fit_pos_embed(self.backbone, sub["pos_embed"])
        loaded = [k for k in sub if k in own]
        if not loaded:
            raise ValueError(f"no encoder weights match the backbone under prefix {used!r}")
        missing, unexpected = self.backbone.load_state_dict(sub, strict=False)
        if strict and (missing or unexpected):
            raise ValueError(f"encoder weights: missing {missing}, unexpected {unexpected}")
        if missing:
            logger.warning("encoder weights: %d backbone tensors not in checkpoint", len(missing))
        return {"prefix": used, "loaded": len(loaded), "missing": missing, "unexpected": unexpected}

    def load_model_weights(self, directory: str | Path) -> dict[str, Any]:
        """Initialize backbone *and* decoder from a recognizer folder of the same architecture.

        When the folder's charset differs from this model's, a CTC head is remapped first
        (:meth:`~ocrkit.models.decoders.ctc.CTCDecoder.remap_charset`): the rows of the
        characters both charsets hold keep their trained values. Returns the remap report.
        """
        source = Recognizer.from_pretrained(directory)
        report: dict[str, Any] = {"kept": len(self.charset), "new": []}
        if source.charset.chars != self.charset.chars:
            if not isinstance(source.decoder, CTCDecoder):
                raise ValueError(
                    f"{directory}: its charset differs from the recipe's and its decoder "
                    f"({type(source.decoder).__name__}) cannot be remapped; use init.encoder"
                )
            report = source.decoder.remap_charset(self.tokenizer)
        self.load_state_dict(source.state_dict(), strict=True)
        return report

    def freeze_encoder(self, part: str = "all", tail: int = 0) -> None:
        """Train the decoder only (``part="all"``), or the neck and the decoder of an encoder
        that has a body and a neck (``part="body"``, the PP-OCR encoders), with the body's last
        ``tail`` blocks training too. The frozen part stops needing gradients and stays in eval
        mode (batch-norm statistics as loaded), so its outputs are a fixed function of the
        image: :meth:`frozen_features` may be cached."""
        if part not in FROZEN_PARTS:
            raise ValueError(f"freeze_encoder part {part!r}: choose from {FROZEN_PARTS}")
        if part == "body" and not callable(getattr(self.backbone, "features", None)):
            raise ValueError(
                f"freeze_encoder part 'body' needs an encoder with a body and a neck "
                f"(ppocrv6_rec_small, ppocrv4_rec), not {type(self.backbone).__name__}"
            )
        if tail and part != "body":
            raise ValueError(f"freeze_encoder tail={tail}: only with part 'body'")
        self.frozen_part = part
        self.frozen_tail = int(tail)
        self.frozen_encoder = part == "all"
        self._frozen_module().requires_grad_(False)
        self._frozen_module().eval()

    def _frozen_module(self) -> nn.Module:
        if self.frozen_part == "all":
            return self.backbone
        return self.backbone.frozen_body(self.frozen_tail)

    def _splits_body(self) -> bool:
        return callable(getattr(self.backbone, "features", None))

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        """What a cache of the frozen part stores for normalized ``images``: the pooled body map
        before the neck for an encoder with a body and a neck (either part frozen: one cache
        serves both; the map before the body's last ``tail`` training blocks when some train),
        else the encoder's tokens."""
        if getattr(self, "frozen_part", None) is None:
            raise ValueError("frozen_features: freeze part of the encoder first (freeze_encoder)")
        if not self._splits_body():
            return self.backbone(images)
        return self.backbone.features(images, self.frozen_tail)

    def frozen_cache_module(self) -> nn.Module:
        """The module whose weights :meth:`frozen_features` depends on (a cache key)."""
        if not self._splits_body():
            return self.backbone
        return self.backbone.frozen_body(getattr(self, "frozen_tail", 0))

    def memory_from_frozen(self, features: torch.Tensor) -> torch.Tensor:
        """The encoder's tokens from :meth:`frozen_features`: the body's training blocks and
        the neck run here (without gradients when the whole encoder is frozen)."""
        features = features.float()  # a cache may hold half precision
        if not self._splits_body():
            return features
        if self.frozen_part == "all":
            with torch.no_grad():
                return self.backbone.from_features(features)
        return self.backbone.from_features(features, self.frozen_tail)

    def freeze_batchnorm(self) -> None:
        """Keep every batch norm in eval mode while training: its statistics stay as loaded
        (fine-tuning a pretrained model on small, mixed batches)."""
        self.frozen_batchnorm = True
        self.train(self.training)

    def train(self, mode: bool = True) -> Recognizer:
        super().train(mode)
        if getattr(self, "frozen_part", None):
            self._frozen_module().eval()
        if getattr(self, "frozen_batchnorm", False):
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def lr_scale_for(self, name: str) -> float:
        """The optimizer's lr multiplier of parameter ``name`` (``encoder_lr_scale`` on the
        backbone, 1 elsewhere); read by :func:`ocrkit.train.optim.param_groups`."""
        if name.startswith("backbone."):  # frozen parameters get no gradient and no group
            return float(getattr(self, "encoder_lr_scale", 1.0))
        return 1.0

    # ---- properties -----------------------------------------------------------------------
    @property
    def charset(self) -> Charset:
        return self.tokenizer.charset

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- training -------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``batch`` = ``{"images": [B, 3, H, W], "labels": list[str], ...}`` -> ``{"loss", "acc"}``.

        ``acc`` is the teacher-forced word accuracy of the batch. A batch of cached
        :meth:`frozen_features` (``{"features": ..., "labels": ...}``) skips the frozen part.
        """
        if "features" in batch:
            if self.ctc_head is not None:
                raise ValueError("cached frozen features cannot train an aux_ctc head")
            features = batch["features"].to(self.device, non_blocking=True)
            targets = self.tokenizer.encode(batch["labels"], device=features.device)
            loss, logs = self.decoder.loss(self.memory_from_frozen(features), targets)
            return {"loss": loss, **logs}
        images = batch["images"].to(self.device, non_blocking=True)
        targets = self.tokenizer.encode(batch["labels"], device=images.device)
        memory = self.backbone(images)
        loss, logs = self.decoder.loss(memory, targets)
        if self.ctc_head is not None:
            patches = memory[:, 1:] if self.backbone.has_cls else memory
            grid = self.backbone.grid_size(images.shape[-2], images.shape[-1])
            ctc = self.ctc_head.loss(patches, grid, targets[:, 1:], self.tokenizer.EOS)
            logs = {**logs, "ctc": ctc.detach(), "decoder_loss": loss.detach()}
            loss = loss + self.ctc_weight * ctc
        return {"loss": loss, **logs}

    # ---- inference ------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, **generate_kwargs: Any) -> torch.Tensor:
        """Normalized images ``[B, 3, H, W]`` -> probabilities ``[B, T, num_classes]``."""
        return self.decoder.generate(self.backbone(images), **generate_kwargs)

    def predict(
        self, images: Sequence[np.ndarray], batch_size: int = 64, **generate_kwargs: Any
    ) -> list[Prediction]:
        """The evaluator's ``Predictor`` method: RGB ``uint8`` arrays -> predictions."""

        def read_batch(batch: list[np.ndarray]) -> list[Any]:
            x = stack_batch(batch, self.transform).to(self.device)
            if isinstance(self.decoder, CTCDecoder):  # also where each character sits
                return self.decoder.read(self.backbone(x), **generate_kwargs)
            return self.tokenizer.decode(self(x, **generate_kwargs))

        with _eval_mode(self), torch.inference_mode():
            return predict_in_width_order(images, self.transform, batch_size, read_batch)

    def recognize(
        self,
        inputs: ImageInput | Sequence[ImageInput],
        batch_size: int = 64,
        device: str | torch.device | None = None,
        on_error: str = "skip",
        **generate_kwargs: Any,
    ) -> list[Prediction]:
        """Read image paths, PIL images or RGB arrays (one or a list); one prediction each.

        ``device`` moves the model there first (e.g. ``"cuda"``); ``generate_kwargs`` go to the
        decoder (e.g. ``sampler="parallel", steps=1`` for MDiff, ``use_cache=False`` for AR).
        An unreadable input is logged and gets an empty prediction with ``error`` set
        (``on_error="raise"`` raises instead).
        """
        if device is not None:
            self.to(device)
        return recognize_in_batches(self.predict, inputs, batch_size, on_error, **generate_kwargs)


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the block, then the previous mode (predict may run inside training)."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _is_text_vit(backbone: nn.Module) -> bool:
    from ocrkit.models.backbones.vit import TextViT  # imports timm: only for ViT checkpoints

    return isinstance(backbone, TextViT)


def _fit_pos_embed(vit: nn.Module, pos: torch.Tensor) -> torch.Tensor:
    """Resample a checkpoint's ``[1, 1 + h*w, C]`` table of another grid to the ViT's grid."""
    target = vit.pos_embed.shape
    if pos.shape == target:
        return pos
    n = pos.shape[1] - 1
    ratio = vit.base_grid[1] / vit.base_grid[0]
    h = round((n / ratio) ** 0.5)
    if h * round(h * ratio) != n or pos.shape[-1] != target[-1]:
        raise ValueError(f"cannot fit position table {tuple(pos.shape)} to {tuple(target)}")
    from ocrkit.models.backbones.pos_embed import resample_learned

    return resample_learned(pos, vit.base_grid, (h, round(h * ratio)))


def load_recognizer(
    path: str | Path | None = None, device: str | torch.device | None = None
) -> Recognizer:
    """``Recognizer.from_pretrained(path)``; with no path (or ``"default"``), the English model
    embedded in ocrkit, ``"tiny"`` the smallest one (``ocrkit/assets/models/<name>``, see
    their ``MODEL_CARD.md``)."""
    from ocrkit.models.default import resolve_model_path

    return Recognizer.from_pretrained(resolve_model_path(path), device=device)
