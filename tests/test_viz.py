"""Attention maps: known-answer queries on a hand-set attention, PNG output, the CLI."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ocrkit.pretrain import MaskedImageModel
from ocrkit.viz import attention_map, draw_attention, parse_query

ENC = {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 4}


def word() -> np.ndarray:
    img = np.full((32, 128, 3), 255, np.uint8)
    cv2.putText(img, "mnsp", (6, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    return img


class FixedAttention(torch.nn.Module):
    """An 'encoder' whose last attention is given: a 2x2 grid, 2 heads."""

    img_size = (8, 8)

    def __init__(self, attn: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.attn = attn

    def get_last_attention(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn.unsqueeze(0)

    def grid_size(self, h: int, w: int) -> tuple[int, int]:
        return h // 4, w // 4


def test_attention_map_known_answers() -> None:
    attn = torch.zeros(2, 5, 5)
    attn[0, 0] = torch.tensor([0.2, 0.8, 0.0, 0.0, 0.0])  # head 0, [CLS] -> patch (0, 0)
    attn[1, 0] = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])  # head 1, [CLS] -> patch (1, 1)
    attn[:, 1:, 1:] = torch.eye(4)  # each patch looks at itself
    enc = FixedAttention(attn)
    image = np.zeros((8, 8, 3), np.uint8)
    head0 = attention_map(enc, image, "cls", head=0, img_size=(8, 8))
    assert np.allclose(head0, [[1.0, 0.0], [0.0, 0.0]])  # renormalized over patches
    both = attention_map(enc, image, "cls", img_size=(8, 8))
    assert np.allclose(both, [[0.4 / 0.9, 0.0], [0.0, 0.5 / 0.9]])
    assert np.allclose(attention_map(enc, image, (1, 0), img_size=(8, 8)), [[0, 0], [1, 0]])
    assert np.allclose(attention_map(enc, image, "mean", img_size=(8, 8)), np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match="outside"):
        attention_map(enc, image, (2, 0), img_size=(8, 8))
    assert parse_query("3,7") == (3, 7)
    with pytest.raises(ValueError, match="ROW,COL"):
        parse_query("top")


def test_real_encoder_map_sums_to_one_and_png_is_written(tmp_path) -> None:
    torch.manual_seed(0)
    encoder = MaskedImageModel({"encoder": ENC}).encoder.eval()
    grid = attention_map(encoder, word(), "cls")
    assert grid.shape == (8, 32) and np.isclose(grid.sum(), 1.0) and (grid >= 0).all()
    out = draw_attention(
        [word(), word()], [[grid, grid], [grid, grid]], ["a", "b"], tmp_path / "a.png"
    )
    png = cv2.imread(str(out))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 300


def test_cli_viz_attention(tmp_path, capsys) -> None:
    from ocrkit.cli import main

    torch.manual_seed(0)
    MaskedImageModel({"encoder": ENC}).save_pretrained(tmp_path / "enc")
    image = tmp_path / "w.png"
    cv2.imwrite(str(image), word())
    out = tmp_path / "attn.png"
    args = ["viz", "attention", "--encoder", str(tmp_path / "enc"), "--images", str(image)]
    assert main([*args, "--out", str(out), "--query", "2,5"]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    assert main([*args, "--out", str(out), "--head", "7"]) == 1
    assert "head 7 out of range" in capsys.readouterr().err
