"""The generic trainer on a toy model: EMA, NaN handling, atomic checkpoints, resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from train_toy import ToyDataset, ToyModel, collate

from ocrkit.train import NonFiniteLossError, TrainConfig, Trainer
from ocrkit.train import checkpoint as ckpt
from ocrkit.train.ema import ModelEma


def _config(**kw) -> TrainConfig:
    base = dict(seed=1, max_steps=6, batch_size=8, lr=1e-2, log_every=2, save_every=0, trackers=[])
    return TrainConfig(**{**base, **kw})


def test_ema_update_hand_computed():
    model = nn.Linear(1, 1, bias=False)
    model.register_buffer("count", torch.tensor(0))
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = ModelEma(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.count.fill_(7)
    ema.update(model)
    assert ema.module.weight.item() == 1.0  # 0.5 * 0 + 0.5 * 2
    assert ema.module.count.item() == 7  # integer buffers are copied
    with torch.no_grad():
        model.weight.fill_(4.0)
    ema.update(model)
    assert ema.module.weight.item() == 2.5  # 0.5 * 1 + 0.5 * 4
    warm = ModelEma(nn.Linear(1, 1, bias=False).requires_grad_(False), decay=0.5, warmup=True)
    warm.module.weight.data.fill_(0.0)
    live = nn.Linear(1, 1, bias=False)
    live.weight.data.fill_(2.0)
    warm.update(live)  # t=0: d = min(0.5, 1/10) = 0.1 -> 0.1 * 0 + 0.9 * 2
    assert warm.module.weight.item() == pytest.approx(1.8)
    assert warm.current_decay() == pytest.approx(2 / 11)


class _NanAt(ToyModel):
    """Returns a NaN loss on the given (1-based) calls of training_step."""

    def __init__(self, bad_calls: set[int]) -> None:
        super().__init__(dropout=0.0)
        self.bad_calls, self.calls, self.snapshots = bad_calls, 0, {}

    def training_step(self, batch):
        self.calls += 1
        out = super().training_step(batch)
        if self.calls in self.bad_calls:
            out["loss"] = out["loss"] * float("nan")
        return out

    def on_train_batch_end(self, step: int) -> None:
        self.snapshots[step] = self.net[0].weight.detach().clone()


def test_nan_loss_raises_naming_the_step(tmp_path):
    trainer = Trainer(_NanAt({3}), ToyDataset(), _config(), tmp_path, collate_fn=collate)
    with pytest.raises(NonFiniteLossError, match=r"at step 3 \(epoch 0, batch 2"):
        trainer.fit()


def test_nan_skip_leaves_weights_unchanged_then_gives_up(tmp_path):
    model = _NanAt({3})
    cfg = _config(nan_policy="skip", max_nan_skips=1)
    state = Trainer(model, ToyDataset(), cfg, tmp_path / "a", collate_fn=collate).fit()
    assert state.global_step == 6 and state.nan_skips == 1
    assert torch.equal(model.snapshots[3], model.snapshots[2])  # the NaN step did not update
    assert not torch.equal(model.snapshots[4], model.snapshots[3])
    trainer = Trainer(_NanAt({2, 5}), ToyDataset(), cfg, tmp_path / "b", collate_fn=collate)
    with pytest.raises(NonFiniteLossError, match=r"max_nan_skips=1.*step 5"):
        trainer.fit()


def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_save = ckpt.save_torch
    calls = {"n": 0}

    def failing_save(obj, path):
        if path.name == "optimizer.pt":
            calls["n"] += 1
            if calls["n"] == 2:  # the second checkpoint dies half-written
                raise OSError("disk full (simulated)")
        real_save(obj, path)

    monkeypatch.setattr(ckpt, "save_torch", failing_save)
    trainer = Trainer(ToyModel(), ToyDataset(), _config(save_every=2), out, collate_fn=collate)
    with pytest.raises(OSError, match="simulated"):
        trainer.fit()
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-00000002"]
    leftovers = [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    monkeypatch.setattr(ckpt, "save_torch", real_save)
    # A SIGKILL mid-save leaves a temporary folder: it is never taken for a checkpoint.
    (out / "checkpoints" / ".tmp-step-00000004-99999").mkdir()
    assert ckpt.latest_checkpoint(out).name == "step-00000002"
    resumed = Trainer(ToyModel(), ToyDataset(), _config(save_every=2), out, collate_fn=collate)
    state = resumed.fit(resume="auto")
    assert state.global_step == 6
    assert not (out / "checkpoints" / ".tmp-step-00000004-99999").exists()


def test_write_dir_atomically_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "best"
    ckpt.write_dir_atomically(target, lambda d: (d / "a.txt").write_text("old"))

    def broken(d):
        (d / "a.txt").write_text("new")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        ckpt.write_dir_atomically(target, broken)
    assert (target / "a.txt").read_text() == "old"
    ckpt.write_dir_atomically(target, lambda d: (d / "b.txt").write_text("new"))
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    """In-process: resume at step 4 of 8 (mid-epoch, with EMA, accumulation, dropout, noise)."""
    cfg = _config(max_steps=8, save_every=4, grad_accum=2, ema_decay=0.9, keep_last=5)
    torch.manual_seed(0)
    full = ToyModel()
    Trainer(full, ToyDataset(n=40), cfg, tmp_path / "full", collate_fn=collate).fit()
    torch.manual_seed(0)
    part = ToyModel()
    Trainer(part, ToyDataset(n=40), cfg, tmp_path / "part", collate_fn=collate).fit()
    step4 = tmp_path / "part" / "checkpoints" / "step-00000004"
    torch.manual_seed(123)  # a different init: everything must come from the checkpoint
    resumed = ToyModel()
    trainer = Trainer(resumed, ToyDataset(n=40), cfg, tmp_path / "res", collate_fn=collate)
    trainer.fit(resume=step4)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(trainer.ema.module.net[0].weight, _ema_weight(tmp_path / "full"))


def _ema_weight(run):
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoints" / "step-00000008" / "ema.safetensors"))["net.0.weight"]
