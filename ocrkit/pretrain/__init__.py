"""Self-supervised pretraining of ViT encoders for STR: MIM (MAE-style) and MNSP.

Train through the generic trainer: ``ocrkit train recipes/pretrain/mnsp_vit_small.yaml`` (the
``mim`` and ``mnsp`` tasks live in :mod:`ocrkit.pretrain.tasks`). See docs/mnsp.md.
"""

from ocrkit.pretrain.configs import MIMConfig, MNSPConfig
from ocrkit.pretrain.encoders import build_encoder, load_encoder
from ocrkit.pretrain.losses import mim_loss, mla_loss, nsp_loss
from ocrkit.pretrain.masking import Masking, random_masking
from ocrkit.pretrain.mim import MaskedImageModel
from ocrkit.pretrain.mnsp import ABLATIONS, MNSP
from ocrkit.pretrain.views import PretrainViews, collate_views

__all__ = [
    "ABLATIONS",
    "MIMConfig",
    "MNSP",
    "MNSPConfig",
    "MaskedImageModel",
    "Masking",
    "PretrainViews",
    "build_encoder",
    "collate_views",
    "load_encoder",
    "mim_loss",
    "mla_loss",
    "nsp_loss",
    "random_masking",
]
