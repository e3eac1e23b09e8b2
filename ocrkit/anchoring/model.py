"""``QMask``: a Qwen VL model (``AutoModelForImageTextToText``) with the CQMD mask head.

Training objective (Q-Mask paper, Sec. 3)::

    L = lambda_txt * L_NTP + lambda_seg * L_mask,   L_mask = Dice + BCE   (cqmd.mask_loss)

L_NTP is the next-token loss on the answer tokens; samples without a ground-truth mask use
L_NTP only. Fine-tuning modes (``finetune``): ``full`` (every parameter, stage 1), ``lora``
(peft LoRA on the language model, base frozen) or ``head`` (only the CQMD head);
``freeze_vision`` freezes the vision encoder (stage 2; the merger/projector stays trainable
unless ``train_merger`` is false).

A saved Q-Mask folder (:mod:`ocrkit.utils.model_folder`, config written last)::

    qmask_config.json     QMaskConfig + format (``ocrkit-qmask``) and version
    head.safetensors      the CQMD head
    adapter_model.safetensors, adapter_config.json   LoRA (peft format), when finetune=lora
    vlm/                  the VLM (config + safetensors) when its weights changed or it has no
                          loadable base (tiny random models); otherwise ``base`` is reloaded
    processor/            the processor (tokenizer, image processor, chat template)
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ocrkit.anchoring.coords import COORDS, family_adapter
from ocrkit.anchoring.cqmd import CQMDConfig, CQMDHead, mask_loss
from ocrkit.anchoring.loading import load_processor, load_vlm, lora_config
from ocrkit.config import ConfigError, to_dataclass
from ocrkit.utils import model_folder

log = logging.getLogger(__name__)

FORMAT = model_folder.QMASK  # "ocrkit.qmask" before; both read
FORMAT_VERSION = 2  # 2: head sizes resolved in the file, coords
CONFIG_FILE = model_folder.CONFIG_FILES[FORMAT]  # "qmask_config.json"
FINETUNE = ("full", "lora", "head")
MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "pixel_values",
    "image_grid_thw",
    "mm_token_type_ids",
)
# Trainable-policy fields a later stage may change when it starts from a saved model.
POLICY_KEYS = (
    "finetune",
    "freeze_vision",
    "train_merger",
    "lora",
    "lambda_txt",
    "lambda_seg",
    "head_lr_scale",
    "query_span",
    "gradient_checkpointing",
)


@dataclass
class QMaskConfig:
    """The ``model:`` section of a Q-Mask recipe (see docs/qmask.md)."""

    base: str | None = None  # folder or hub id of Qwen2-VL / Qwen2.5-VL / Qwen3-VL (-Instruct)
    tiny: str | None = None  # or a random tiny model: qwen2_vl | qwen2_5_vl | qwen3_vl
    tiny_size: str = "tiny"  # tiny | mid
    tiny_seed: int = 0
    finetune: str = "full"  # full | lora | head
    freeze_vision: bool = False
    train_merger: bool = True
    lora: dict = field(default_factory=lambda: {"r": 16, "alpha": 32, "dropout": 0.05})
    head: dict = field(default_factory=dict)  # CQMDConfig fields (size: paper | small)
    coords: str = "native"  # box coordinates: the family's own (TABench's adapters) | absolute
    lambda_txt: float = 1.0
    lambda_seg: float = 1.0
    head_lr_scale: float = 1.0  # the head's lr / the VLM's lr (the paper: one lr)
    query_span: str = "question"  # question | prompt (question + OCR prior)
    dtype: str = "float32"  # float32 | bfloat16 | float16 | auto
    attn_implementation: str | None = None  # sdpa | eager | flash_attention_2
    min_pixels: int | None = None  # processor limits (None: the processor's own)
    max_pixels: int | None = None
    gradient_checkpointing: bool = False

    def validate(self, section: str = "model") -> None:
        if (self.base is None) == (self.tiny is None):
            raise ConfigError(f"recipe key {section}.base / {section}.tiny: give exactly one")
        if self.finetune not in FINETUNE:
            raise ConfigError(f"recipe key {section}.finetune: use one of {', '.join(FINETUNE)}")
        unknown = set(self.head) - set(CQMDConfig.__dataclass_fields__) - {"hidden_size"}
        if unknown:
            raise ConfigError(f"recipe key {section}.head: unknown keys {sorted(unknown)}")
        if self.coords not in COORDS:
            raise ConfigError(f"recipe key {section}.coords: use one of {', '.join(COORDS)}")
        unknown = set(self.lora) - {"r", "alpha", "dropout", "target_modules"}
        if unknown:
            raise ConfigError(f"recipe key {section}.lora: unknown keys {sorted(unknown)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, section: str = "model") -> QMaskConfig:
        return to_dataclass(cls, data, section)


class QMask(nn.Module):
    """A VLM plus the CQMD head; ``training_step`` is what :class:`ocrkit.train.Trainer` calls."""

    def __init__(self, vlm: nn.Module, processor: Any, config: QMaskConfig) -> None:
        super().__init__()
        self.config = config
        self.vlm = vlm
        self.processor = processor
        vcfg = vlm.config
        self.image_token_id = int(vcfg.image_token_id)
        self.merge_size = int(vcfg.vision_config.spatial_merge_size)
        head_cfg = CQMDConfig(**{**config.head, "hidden_size": int(vcfg.text_config.hidden_size)})
        self.head = CQMDHead(head_cfg)
        self.lora_config = None
        if config.finetune == "lora":
            from peft import inject_adapter_in_model

            self.lora_config = lora_config(config.lora)
            inject_adapter_in_model(self.lora_config, self.vlm)
        self._apply_policy()
        if config.gradient_checkpointing:
            self.vlm.gradient_checkpointing_enable()
        if config.min_pixels or config.max_pixels:
            size = dict(processor.image_processor.size)
            if config.min_pixels:
                size["shortest_edge"] = int(config.min_pixels)
            if config.max_pixels:
                size["longest_edge"] = int(config.max_pixels)
            processor.image_processor.size = size

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_config(cls, data: dict[str, Any] | QMaskConfig) -> QMask:
        """Build from a ``model:`` section: a real checkpoint (``base``) or a ``tiny`` one."""
        config = data if isinstance(data, QMaskConfig) else QMaskConfig.from_dict(data)
        if config.tiny:
            from ocrkit.testing.tiny_vlm import tiny_processor, tiny_vlm

            processor = tiny_processor(config.tiny)
            vlm = tiny_vlm(config.tiny, processor, config.tiny_size, config.tiny_seed)
        else:
            processor = load_processor(str(config.base))
            vlm = load_vlm(str(config.base), config)
        return cls(vlm, processor, config)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **policy: Any) -> QMask:
        """Load a saved Q-Mask folder; ``policy`` may change the trainable policy (stage 2)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        found = model_folder.read_config(directory, expect=FORMAT)
        saved = found.config
        saved.pop("format")
        version = saved.pop("version", 0)
        if version > FORMAT_VERSION:
            raise ValueError(f"{found.file}: not a Q-Mask config of a version this ocrkit reads")
        if version < 2:  # saved before the paper-size head and native coordinates
            saved["head"] = {"size": "small", **saved.get("head", {})}
            saved.setdefault("coords", "absolute")
        saved.pop("saved_vlm", None)
        config = QMaskConfig(**saved)
        processor = load_processor(directory / "processor")
        if (directory / "vlm" / "config.json").is_file():
            vlm = load_vlm(directory / "vlm", config)
        elif config.base:
            vlm = load_vlm(config.base, config)
        else:
            raise FileNotFoundError(f"{directory} has no vlm/ folder and no base model to load")
        saved_finetune = config.finetune
        model = cls(vlm, processor, config)  # adapters injected as saved
        if saved_finetune == "lora":
            from peft import set_peft_model_state_dict

            result = set_peft_model_state_dict(
                model.vlm, load_file(directory / "adapter_model.safetensors")
            )
            missing = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
            if missing:
                raise ValueError(
                    f"{directory}: adapter weights did not match the model: {missing[:3]}"
                )
        model.head.load_state_dict(load_file(directory / "head.safetensors"))
        if policy:
            model.set_policy(**policy)
        return model

    # --- trainable parameters ------------------------------------------------------------------

    def set_policy(self, **changes: Any) -> None:
        """Change the trainable policy (e.g. stage 2: ``freeze_vision=True``)."""
        unknown = set(changes) - set(POLICY_KEYS)
        if unknown:
            raise ConfigError(
                f"model keys {sorted(unknown)} cannot change for a loaded Q-Mask model"
            )
        finetune = changes.get("finetune", self.config.finetune)
        if finetune == "lora" and self.lora_config is None:
            from peft import inject_adapter_in_model

            self.lora_config = lora_config(changes.get("lora", self.config.lora))
            inject_adapter_in_model(self.lora_config, self.vlm)
        if finetune != "lora" and self.lora_config is not None:
            raise ConfigError("a LoRA model cannot switch to finetune=full/head; merge it first")
        for key, value in changes.items():
            setattr(self.config, key, value)
        self._apply_policy()
        if changes.get("gradient_checkpointing"):
            self.vlm.gradient_checkpointing_enable()

    def _apply_policy(self) -> None:
        c = self.config
        for name, p in self.vlm.named_parameters():
            if c.finetune == "full":
                p.requires_grad_(True)
            elif c.finetune == "lora":
                p.requires_grad_("lora_" in name)
            else:
                p.requires_grad_(False)
        if c.freeze_vision:
            visual = self.vlm.model.visual
            for name, p in visual.named_parameters():
                merger = name.startswith(("merger.", "deepstack_merger_list."))
                p.requires_grad_(bool(c.train_merger and merger and c.finetune == "full"))
        for p in self.head.parameters():
            p.requires_grad_(True)

    def param_groups(
        self, weight_decay: float, lr: float, layer_decay: float | None = None
    ) -> list[dict[str, Any]]:
        """AdamW groups for the trainer: VLM and head, each with and without weight decay
        (1-d tensors: norms and biases); the head's lr is ``lr * head_lr_scale``."""
        if layer_decay not in (None, 1.0):
            raise ConfigError("train.layer_decay is not supported for qmask; set it to null")
        groups = []
        for part, scale in ((self.vlm, 1.0), (self.head, self.config.head_lr_scale)):
            params = [p for p in part.parameters() if p.requires_grad]
            for decay in (True, False):
                chosen = [p for p in params if (p.ndim > 1) == decay]
                if chosen:
                    groups.append(
                        {
                            "params": chosen,
                            "weight_decay": weight_decay if decay else 0.0,
                            "lr_scale": scale,
                            "lr": lr * scale,
                        }
                    )
        return groups

    def box_adapter(self) -> Any:
        """The TABench adapter of this model's box convention (``model.coords``, see
        :mod:`ocrkit.anchoring.coords`): prompts, answers and priors go through it."""
        processor = getattr(self.processor, "image_processor", None)
        return family_adapter(str(self.vlm.config.model_type), processor, self.config.coords)

    def parameter_counts(self) -> dict[str, int]:
        """Total, trainable, head and LoRA parameter counts."""
        params = list(self.named_parameters())
        return {
            "total": sum(p.numel() for _, p in params),
            "trainable": sum(p.numel() for _, p in params if p.requires_grad),
            "head": sum(p.numel() for p in self.head.parameters()),
            "lora": sum(p.numel() for n, p in params if "lora_" in n),
        }

    # --- forward and loss ----------------------------------------------------------------------

    def hidden_states(self, batch: dict[str, Any]) -> Tensor:
        """Last-layer (final-norm) hidden states of the language model, ``[B, L, D]``."""
        inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
        return self.vlm.model(**inputs, use_cache=False).last_hidden_state

    def masks_from_hidden(self, hidden: Tensor, batch: dict[str, Any]) -> list[Tensor]:
        """CQMD mask logits for every image of ``batch`` from the hidden states."""
        image_mask = batch["input_ids"] == self.image_token_id
        head_dtype = self.head.w_q.weight.dtype
        return self.head(
            hidden.to(head_dtype),
            image_mask,
            batch["query_mask"],
            batch["image_grid_thw"],
            self.merge_size,
        )

    def ntp_loss(self, hidden: Tensor, labels: Tensor) -> Tensor:
        """Next-token cross-entropy on the answer tokens (logits only where there is a label)."""
        target = labels[:, 1:]
        keep = target != -100
        if not bool(keep.any()):
            return hidden.sum() * 0.0
        logits = self.vlm.lm_head(hidden[:, :-1][keep])
        return nn.functional.cross_entropy(logits.float(), target[keep])

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        hidden = self.hidden_states(batch)
        out: dict[str, Any] = {
            "hidden": hidden,
            "mask_logits": self.masks_from_hidden(hidden, batch),
        }
        if "labels" in batch:
            out["loss_ntp"] = self.ntp_loss(hidden, batch["labels"])
        return out

    def training_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``L = lambda_txt * L_NTP + lambda_seg * (Dice + BCE)``; logs both parts and Dice."""
        out = self(batch)
        m = mask_loss(out["mask_logits"], batch.get("masks") or [None] * len(out["mask_logits"]))
        loss = self.config.lambda_txt * out["loss_ntp"] + self.config.lambda_seg * m["loss_mask"]
        return {
            "loss": loss,
            "loss_ntp": out["loss_ntp"].detach(),
            "loss_mask": m["loss_mask"].detach(),
            "dice": m["dice"],
            "masked_images": m["masked_images"],
        }

    def collator(self, padding_side: str = "right") -> Any:
        from ocrkit.anchoring.collate import QMaskCollator

        return QMaskCollator(self.processor, self.config.query_span, padding_side=padding_side)

    # --- saving --------------------------------------------------------------------------------

    @property
    def saves_vlm(self) -> bool:
        """The VLM weights go into the folder when they changed or cannot be reloaded."""
        return self.config.base is None or self.config.finetune == "full"

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the folder (:func:`ocrkit.utils.model_folder.write_folder`, config last)."""
        return model_folder.write_folder(directory, FORMAT, self._write_files)

    def _write_files(self, directory: Path) -> dict[str, Any]:
        """Head, adapter, VLM and processor into ``directory``; returns the config record."""
        from safetensors.torch import save_file

        head = {k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()}
        save_file(head, str(directory / "head.safetensors"), metadata={"format": "pt"})
        if self.lora_config is not None:
            from peft import get_peft_model_state_dict

            adapter = {
                k: v.detach().contiguous().cpu()
                for k, v in get_peft_model_state_dict(self.vlm).items()
            }
            save_file(
                adapter, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"}
            )
            self.lora_config.save_pretrained(str(directory))
        if self.saves_vlm:
            state = {
                k.replace(".base_layer.", "."): v
                for k, v in self.vlm.state_dict().items()
                if "lora_" not in k
            }
            self.vlm.save_pretrained(str(directory / "vlm"), state_dict=state)
        self.processor.save_pretrained(str(directory / "processor"))
        record = {"format": FORMAT, "version": FORMAT_VERSION, **asdict(self.config)}
        sizes = self.head.config.to_dict()
        sizes.pop("hidden_size")
        record["head"] = sizes  # every size written out: a later default never changes it
        record["saved_vlm"] = self.saves_vlm
        return record
