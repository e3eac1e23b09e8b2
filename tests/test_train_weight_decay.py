"""Weight decay on real models: positions, [CLS], mask and token tables are excluded (timm/PARSeq).

Each test lists the exact parameter names of the no-decay group that are not 1-d (1-d norms and
biases never decay), found through every submodule's ``no_weight_decay()``.
"""

from __future__ import annotations

import torch
from torch import nn

from ocrkit.models import Recognizer
from ocrkit.train.optim import no_decay_names, param_groups

AR = {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2}
ENC = {"name": "vit_tiny", "depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 8}
DEC = {"dim": 32, "depth": 1, "num_heads": 2}


def groups_by_decay(model: nn.Module) -> tuple[set[str], set[str]]:
    """(names with weight decay, names without), from the optimizer's parameter groups."""
    decay, no_decay = set(), set()
    for group in param_groups(model, lr=1e-3, weight_decay=0.05):
        (decay if group["weight_decay"] else no_decay).update(group["param_names"])
    return decay, no_decay


def tables(model: nn.Module) -> set[str]:
    """The no-decay parameters that are not 1-d: only what ``no_weight_decay()`` named."""
    shapes = dict(model.named_parameters())
    return {n for n in groups_by_decay(model)[1] if shapes[n].ndim > 1}


def test_vit_ar_recognizer_excludes_cls_positions_and_token_table() -> None:
    model = Recognizer.from_config(
        {"backbone": {**ENC, "name": "vit_small"}, "decoder": AR, "charset": "36", "max_length": 8}
    )
    assert tables(model) == {
        "backbone.cls_token",
        "backbone.pos_embed",
        "decoder.pos_embed",
        "decoder.token_embed.weight",
    }
    decay, no_decay = groups_by_decay(model)
    assert "backbone.blocks.0.attn.qkv.weight" in decay and "decoder.head.weight" in decay
    assert "backbone.blocks.0.norm1.weight" in no_decay and "decoder.head.bias" in no_decay
    assert decay | no_decay == {n for n, _ in model.named_parameters()}


def test_svtrv2_mdiff_recognizer_excludes_decoder_tables() -> None:
    backbone = {"name": "svtrv2_small", "dims": [16, 24, 32], "num_heads": [2, 2, 4]}
    model = Recognizer.from_config(
        {
            "backbone": {**backbone, "depths": [1, 2, 1]},
            "decoder": {"name": "mdiff", "depth": 1, "num_heads": 2},
            "charset": "36",
            "max_length": 6,
        }
    )
    assert tables(model) == {"decoder.pos_embed", "decoder.token_embed.weight"}


def test_timm_backbone_uses_timms_own_no_weight_decay() -> None:
    backbone = {"name": "timm", "model_name": "vit_tiny_patch16_224", "depth": 1}
    model = Recognizer.from_config(
        {"backbone": backbone, "decoder": AR, "charset": "36", "max_length": 8}
    )
    assert tables(model) == {
        "backbone.model.cls_token",
        "backbone.model.pos_embed",
        "decoder.pos_embed",
        "decoder.token_embed.weight",
    }


def test_pretraining_models_exclude_cls_and_mask_tokens() -> None:
    from ocrkit.pretrain.mim import MaskedImageModel
    from ocrkit.pretrain.mnsp import MNSP

    enc = {**ENC, "patch_size": 4}  # the MNSP scales need a 4-px patch
    mim = MaskedImageModel({"encoder": enc, "decoder": DEC})
    assert tables(mim) == {"encoder.cls_token", "decoder.mask_token"}  # sin-cos pos: a buffer
    config = {
        "encoder": enc,
        "mim_decoder": {**DEC, "depth": 2},
        "nsp_decoder": {"dim": 32, "num_heads": 2},
    }
    mnsp = MNSP(config, teacher=mim.encoder)
    assert tables(mnsp) == {"encoder.cls_token", "mim_decoder.mask_token"}
    assert not any(n.startswith("teacher.") for n in groups_by_decay(mnsp)[1])  # frozen


def test_qmask_head_decays_every_matrix_and_no_vector() -> None:
    from ocrkit.anchoring.cqmd import CQMDConfig, CQMDHead

    head = CQMDHead(CQMDConfig(hidden_size=16, channels=8, upsample_stages=1, min_channels=4))
    decay, no_decay = groups_by_decay(head)
    assert decay == {
        "w_q.weight",
        "w_k.weight",
        "w_v.weight",
        "fc1.weight",
        "fc2.weight",
        "upsample.0.weight",
        "upsample.3.weight",
    }
    assert no_decay == {n for n, p in head.named_parameters() if p.ndim == 1}


class _Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(3, 4))
        self.gammas = nn.ModuleList(nn.Linear(4, 4) for _ in range(2))
        self.register_buffer("fixed", torch.zeros(3, 4))

    def no_weight_decay(self) -> set[str]:
        return {"table", "fixed", "missing", "gammas.*.weight"}


def test_lookup_prefixes_nested_names_and_ignores_non_parameters() -> None:
    outer = nn.Module()
    outer.inner = nn.Sequential(_Inner())
    assert no_decay_names(outer) == {
        "inner.0.table",
        "inner.0.gammas.0.weight",
        "inner.0.gammas.1.weight",
    }
