"""Q-Mask text anchoring (Xu et al., arXiv 2604.00161): the CQMD mask head on Qwen VL models,
anchoring data (de-stylized masks, Stochastic Prior Injection), training task and inference.

Names load on first use: ``import ocrkit.anchoring`` does not import transformers or peft (the
``vlm`` extra). See docs/qmask.md.
"""

from __future__ import annotations

from ocrkit.utils.lazy import lazy_exports

_EXPORTS = {
    "CQMDConfig": "ocrkit.anchoring.cqmd",
    "CQMDHead": "ocrkit.anchoring.cqmd",
    "mask_loss": "ocrkit.anchoring.cqmd",
    "QMask": "ocrkit.anchoring.model",
    "QMaskConfig": "ocrkit.anchoring.model",
    "AnchorInstance": "ocrkit.anchoring.data",
    "AnchorDataset": "ocrkit.anchoring.data",
    "read_instances": "ocrkit.anchoring.data",
    "write_instances": "ocrkit.anchoring.data",
    "render_mask": "ocrkit.anchoring.masks",
    "render_text_mask": "ocrkit.anchoring.masks",
    "SPIConfig": "ocrkit.anchoring.spi",
    "inject_prior": "ocrkit.anchoring.spi",
    "build_instances": "ocrkit.anchoring.generate",
    "QMaskCollator": "ocrkit.anchoring.collate",
    "QMaskPredictor": "ocrkit.anchoring.inference",
    "AnchorResult": "ocrkit.anchoring.inference",
    "boxes_from_mask": "ocrkit.anchoring.inference",
    "tiny_processor": "ocrkit.testing.tiny_vlm",
    "tiny_vlm": "ocrkit.testing.tiny_vlm",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("ocrkit.anchoring", _EXPORTS, globals())
