"""The data layer: dataset sources, decoding, filtering, batching and model-input transforms.

Names are imported on first use, so ``import ocrkit.data`` is cheap and never pulls in the
renderer, the augmentations or Hugging Face ``datasets`` until they are asked for.
"""

from __future__ import annotations

from ocrkit.utils.lazy import lazy_exports

_EXPORTS = {
    "CorruptImageError": "ocrkit.data.image_io",
    "decode_image": "ocrkit.data.image_io",
    "encode_image": "ocrkit.data.image_io",
    "read_image": "ocrkit.data.image_io",
    "StrDataset": "ocrkit.data.base",
    "ConcatStrDataset": "ocrkit.data.base",
    "SubsetStrDataset": "ocrkit.data.base",
    "collate_samples": "ocrkit.data.base",
    "select_indices": "ocrkit.data.base",
    "DATASETS": "ocrkit.data.sources",
    "open_dataset": "ocrkit.data.sources",
    "detect_type": "ocrkit.data.sources",
    "LmdbDataset": "ocrkit.data.lmdb",
    "write_lmdb": "ocrkit.data.lmdb",
    "ListDataset": "ocrkit.data.folder",
    "read_label_list": "ocrkit.data.folder",
    "SceneCropDataset": "ocrkit.data.scene",
    "crop_quad": "ocrkit.data.scene",
    "HFDataset": "ocrkit.data.hf",
    "HFStreamingDataset": "ocrkit.data.hf",
    "StrTransform": "ocrkit.data.transforms",
    "PPOCRResize": "ocrkit.data.transforms",
    "Compose": "ocrkit.data.transforms",
    "to_tensor_image": "ocrkit.data.transforms",
    "denormalize": "ocrkit.data.transforms",
    "StrAugment": "ocrkit.data.augment",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("ocrkit.data", _EXPORTS, globals())
