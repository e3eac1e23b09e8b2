"""bf16 autocast on CPU through the trainer, and the vectorised EMA against its formula."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from train_toy import ToyDataset, ToyModel, collate

from ocrkit.train import TrainConfig, Trainer
from ocrkit.train.ema import ModelEma


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one process-wide state whose mixed precision cannot change; start and
    leave this test with none so the bf16 run neither sees nor leaves another setting."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


class _DtypeToy(ToyModel):
    """Records the dtype the first linear layer computed in."""

    seen: list[torch.dtype]

    def training_step(self, batch: dict) -> dict:
        self.seen.append(self.net[0](batch["x"]).dtype)
        return super().training_step(batch)


def test_bf16_autocast_on_cpu_trains_with_fp32_parameters(tmp_path, fresh_accelerate_state):
    torch.manual_seed(0)
    model = _DtypeToy()
    model.seen = []
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = TrainConfig(
        seed=1, max_steps=3, batch_size=8, lr=1e-2, log_every=1, save_every=0, trackers=[]
    )
    config.mixed_precision = "bf16"
    Trainer(model, ToyDataset(), config, tmp_path, collate_fn=collate).fit()
    assert model.seen == [torch.bfloat16] * 3  # the matmuls ran under bf16 autocast
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32, name  # master weights stay fp32
        assert not torch.equal(p, before[name]), name  # and were updated
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    losses = [float(line.split('"train/loss": ')[1].split(",")[0]) for line in lines]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)


def test_vectorised_ema_matches_the_formula_per_tensor_and_dtype() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model.register_buffer("lowp", torch.randn(5, dtype=torch.bfloat16))
    ema = ModelEma(model, decay=0.75)
    ema.module.lowp = ema.module.lowp.float()  # an fp32 shadow of a bf16 buffer
    start = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].num_batches_tracked.fill_(9)
    ema.update(model)
    live = model.state_dict()
    for key, shadow in ema.module.state_dict().items():
        if shadow.is_floating_point():
            expected = 0.75 * start[key] + 0.25 * live[key].to(shadow.dtype)
            torch.testing.assert_close(shadow, expected, rtol=0, atol=1e-6)
        else:
            assert torch.equal(shadow, live[key]), key
    assert ema.module.lowp.dtype == torch.float32


def test_ema_averages_a_tied_weight_once() -> None:
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False))
    model[1].weight = model[0].weight  # tied: twice in state_dict, once in parameters()
    ema = ModelEma(model, decay=0.5)
    start = ema.module[0].weight.detach().clone()
    assert ema.module[1].weight is ema.module[0].weight  # deepcopy keeps the tie
    with torch.no_grad():
        model[0].weight.add_(2.0)
    ema.update(model)
    expected = 0.5 * start + 0.5 * model[0].weight.detach()
    torch.testing.assert_close(ema.module[0].weight, expected, rtol=0, atol=1e-6)
