"""Schedules at hand-computed steps, OneCycle against PyTorch, parameter groups."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ocrkit.train.optim import Schedule, build_optimizer, build_scheduler, param_groups


def test_warmup_cosine_values_at_hand_computed_steps():
    s = Schedule("cosine", total_steps=10, warmup_steps=2)
    assert [s(0), s(1), s(2)] == [0.0, 0.5, 1.0]
    assert s(6) == pytest.approx(0.5)  # halfway through the 8 cosine steps
    assert s(4) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert s(10) == pytest.approx(0.0)
    floor = Schedule("cosine", total_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    assert floor(6) == pytest.approx(0.55)
    assert floor(10) == pytest.approx(0.1)


def test_constant_with_warmup():
    s = Schedule("constant", total_steps=10, warmup_steps=4, warmup_init_ratio=0.2)
    assert [s(0), s(2), s(4), s(9)] == pytest.approx([0.2, 0.6, 1.0, 1.0])


def test_scheduler_drives_optimizer_lr():
    p = nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.AdamW([p], lr=0.4)
    sched = build_scheduler(opt, Schedule("cosine", total_steps=10, warmup_steps=2))
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.0, 0.2, 0.4])


def test_onecycle_matches_torch_onecycle():
    total = 50
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=2.0, total_steps=total, pct_start=0.2, cycle_momentum=False
    )
    expected = []
    for _ in range(total):
        expected.append(opt.param_groups[0]["lr"] / 2.0)
        opt.step()
        ref.step()
    ours = Schedule("onecycle", total_steps=total, pct_start=0.2)
    assert [ours(i) for i in range(total)] == pytest.approx(expected, rel=1e-9)
    assert ours(0) == pytest.approx(1 / 25) and ours(9) == pytest.approx(1.0)
    assert ours(total - 1) == pytest.approx(1 / 25 / 1e4)


class _ViTLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(4, 4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)) for _ in range(2)
        )
        self.norm = nn.LayerNorm(4)
        self.decoder = nn.Module()
        self.decoder.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.head = nn.Linear(4, 2)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}


def _by_name(groups):
    return {n: g for g in groups for n in g["param_names"]}


def test_no_decay_on_norms_biases_and_listed_names():
    groups = _by_name(param_groups(_ViTLike(), lr=1.0, weight_decay=0.05))
    assert groups["patch_embed.weight"]["weight_decay"] == 0.05
    assert groups["head.weight"]["weight_decay"] == 0.05
    assert groups["decoder.pos_embed"]["weight_decay"] == 0.05
    for name in ("patch_embed.bias", "blocks.0.1.weight", "norm.weight", "norm.bias", "pos_embed"):
        assert groups[name]["weight_decay"] == 0.0, name
    assert {g["lr_scale"] for g in groups.values()} == {1.0}


def test_layer_decay_multipliers_hand_computed():
    # 2 blocks, decay 0.5: embeddings 0.5**3, blocks.0 0.5**2, blocks.1 0.5, rest 1.
    groups = _by_name(param_groups(_ViTLike(), lr=2.0, weight_decay=0.05, layer_decay=0.5))
    expected = {
        "patch_embed.weight": 0.125,
        "pos_embed": 0.125,
        "blocks.0.0.weight": 0.25,
        "blocks.0.1.bias": 0.25,
        "blocks.1.0.weight": 0.5,
        "norm.weight": 1.0,
        "decoder.pos_embed": 1.0,
        "head.bias": 1.0,
    }
    for name, scale in expected.items():
        assert groups[name]["lr_scale"] == scale, name
        assert groups[name]["lr"] == 2.0 * scale, name


def test_model_layer_id_hook_and_optimizer_groups():
    class Custom(_ViTLike):
        def layer_id_for(self, name: str, num_layers: int) -> int:
            return 0 if name.startswith("head") else num_layers + 1

    groups = _by_name(param_groups(Custom(), lr=1.0, weight_decay=0.1, layer_decay=0.5))
    assert groups["head.weight"]["lr_scale"] == 0.125
    assert groups["blocks.0.0.weight"]["lr_scale"] == 1.0
    opt = build_optimizer(_ViTLike(), lr=1.0, weight_decay=0.1, layer_decay=0.5)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(_ViTLike().parameters()))
    assert sorted({g["lr"] for g in opt.param_groups}) == [0.125, 0.25, 0.5, 1.0]
