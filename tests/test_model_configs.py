"""Recognizer and pretraining configs are dataclasses read with ocrkit.config.to_dataclass."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest
import torch

from ocrkit.config import ConfigError
from ocrkit.models import Recognizer
from ocrkit.models.recognizer_config import RecognizerConfig, normalize_config
from ocrkit.pretrain import MNSP, MaskedImageModel
from ocrkit.pretrain.configs import MIMConfig, MNSPConfig

ASSETS = Path(__file__).resolve().parents[1] / "ocrkit" / "assets" / "models"
ENC = {"name": "vit_tiny", "depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 4}
TINY = {
    "backbone": {"name": "vit_small", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2, "dropout": 0.0},
    "charset": "36",
    "max_length": 6,
}


def test_recognizer_defaults_are_the_documented_ones() -> None:
    assert RecognizerConfig().to_dict() == {
        "backbone": {"name": "vit_small"},
        "decoder": {"name": "ar"},
        "charset": "94",
        "max_length": 25,
        "img_size": [32, 128],
        "mean": 0.5,
        "std": 0.5,
        "aux_ctc": None,
        "preprocess": None,
    }
    # a name alone is the same as {"name": ...}; tuples read as lists
    short = normalize_config({"backbone": "vit_tiny", "img_size": (48, 160)})
    assert short["backbone"] == {"name": "vit_tiny"} and short["img_size"] == [48, 160]
    # to_dataclass reads a tuple as a list and any mapping as a dict (Python callers)
    got = MNSPConfig.from_dict({"zoom": (0.5, 0.75), "mim_decoder": MappingProxyType({"depth": 1})})
    assert got.zoom == [0.5, 0.75] and got.mim_decoder == {"dim": 512, "depth": 1, "num_heads": 16}


def test_pretrain_defaults_are_the_documented_ones() -> None:
    encoder = {"name": "vit_small", "patch_size": 4, "pos_embed": "sincos"}
    assert MIMConfig.from_dict({}).to_dict() == {
        "encoder": encoder,
        "img_size": [32, 128],
        "mask_ratio": 0.8,
        "target": "pixel",
        "norm_pix": True,
        "teacher": None,
        "target_norm": "layernorm",
        "augment": "none",
        "decoder": {"dim": 512, "depth": 8, "num_heads": 16},
    }
    mnsp = MNSPConfig.from_dict({"nsp_decoder": {"depth": 3}}).to_dict()
    assert mnsp["scales"] == [[4, 16], [8, 32], [16, 64], [32, 128]]
    assert (mnsp["target"], mnsp["target_norm"], mnsp["mim_target"]) == (
        "feature",
        "none",
        "original",
    )
    assert mnsp["nsp_decoder"] == {"dim": None, "depth": 3, "num_heads": None}  # merged by key
    assert mnsp["zoom"] == [0.5, 1.0] and mnsp["augment"] == "photometric"
    assert all(mnsp[k] is True for k in ("nsp", "mim", "mla", "guidance"))


@pytest.mark.parametrize(
    ("read", "data", "key"),
    [
        (RecognizerConfig.from_dict, {"backbones": "vit_tiny"}, "model.backbones"),
        (RecognizerConfig.from_dict, {"max_length": "25"}, "model.max_length"),
        (RecognizerConfig.from_dict, {"decoder": {"depth": 2}}, "model.decoder"),
        (MIMConfig.from_dict, {"mask_ration": 0.7}, "model.mask_ration"),
        (MIMConfig.from_dict, {"mask_ratio": 1.0}, "model.mask_ratio"),
        (MNSPConfig.from_dict, {"mim_decoder": {"dimm": 3}}, "model.mim_decoder.dimm"),
        (MNSPConfig.from_dict, {"mim_target": "other"}, "model.mim_target"),
        (MNSPConfig.from_dict, {"target": "pixels"}, "model.target"),
    ],
)
def test_bad_keys_are_errors_naming_the_key(read, data, key) -> None:
    with pytest.raises(ConfigError, match=f"recipe key {key}"):
        read(data)


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match="Did you mean model.mask_ratio"):
        MIMConfig.from_dict({"mask_ration": 0.7})
    with pytest.raises(ConfigError, match="Did you mean model.backbone"):
        Recognizer.from_config({"backbones": "vit_tiny"})


@pytest.mark.parametrize("name", sorted(p.name for p in ASSETS.iterdir() if p.is_dir()))
def test_embedded_config_json_round_trips(name: str) -> None:
    text = (ASSETS / name / "config.json").read_text(encoding="utf-8")
    config = json.loads(text)
    back = RecognizerConfig.from_dict(config).to_dict()
    # every key of the file comes back unchanged; keys added by later releases get their default
    assert {k: back[k] for k in config} == config
    defaults = RecognizerConfig().to_dict()
    assert {k: v for k, v in back.items() if k not in config} == {
        k: defaults[k] for k in back if k not in config
    }
    if set(back) == set(config):  # a file written by this release: the same bytes
        assert json.dumps(back, indent=2, ensure_ascii=False) + "\n" == text
    assert RecognizerConfig.from_dict(back).to_dict() == back


def test_saved_folders_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Recognizer.from_config(TINY)
    folder = model.save_pretrained(tmp_path / "rec")
    saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    saved_charset = saved["charset"]
    assert RecognizerConfig.from_dict(saved).to_dict() == saved
    assert list(RecognizerConfig.from_dict(saved).to_dict()) == list(saved)  # key order too
    # the dataclass builds the same model as the dict
    again = Recognizer.from_config(RecognizerConfig.from_dict(TINY))
    assert again.config == model.config and saved_charset == model.charset.to_json()

    mim = MaskedImageModel({"encoder": ENC, "decoder": {"dim": 16, "depth": 1, "num_heads": 2}})
    document = json.loads(
        (mim.save_pretrained(tmp_path / "mim") / "config.json").read_text(encoding="utf-8")
    )
    entry = document["model"]
    assert MIMConfig.from_dict(entry).to_dict() == entry == mim.config
    assert MNSP.config_class is MNSPConfig and MaskedImageModel.config_class is MIMConfig
