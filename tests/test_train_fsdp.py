"""FSDP support (issue 16 item 3), as far as CPU allows.

Accelerate enables FSDP only for GPU distributed types (a CPU world is ``MULTI_CPU``), so FSDP
itself cannot run here. Tested instead: the Accelerate-state checkpoint path that FSDP runs use
(``accelerator.save_state``/``load_state`` + ocrkit's data position, run for real), the FSDP
branch of the trainer in a mocked world (distributed type reported as FSDP: full-weights final
model, evaluation refused or skipped), the refusals of unsupported combinations, and the
Accelerate config in recipes/accelerate (parsed by Accelerate's own launcher code).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from train_toy import ToyDataset, ToyModel, collate

from ocrkit.train import TrainConfig, Trainer, sharded

ROOT = Path(__file__).resolve().parents[1]


class _Stop(RuntimeError):
    pass


class _Crashing(ToyModel):
    """Raises in the ``crash_at``-th training step (a crash after a checkpoint)."""

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__()
        self.crash_at, self.calls, self.saved = crash_at, 0, 0

    def training_step(self, batch: dict) -> dict:
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise _Stop("crash")
        return super().training_step(batch)

    def save_pretrained(self, directory: Path) -> None:
        self.saved += 1  # the FSDP branch must not call it (it would save a shard)
        from safetensors.torch import save_model

        save_model(self, str(Path(directory) / "model.safetensors"))


def _config(**kw) -> TrainConfig:
    base = dict(seed=3, max_steps=12, batch_size=8, lr=1e-2, warmup_steps=2, save_every=4)
    base |= dict(keep_last=10, log_every=4, trackers=[], checkpoint_format="accelerate")
    return TrainConfig(**(base | kw))


def _fit(out: Path, config: TrainConfig, crash_at: int | None = None, resume=None) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer(_Crashing(crash_at), ToyDataset(), config, out, collate_fn=collate)
    trainer.fit(resume=resume)
    return trainer


def _last(out: Path) -> Path:
    return out / "checkpoints" / "step-00000012"


def test_accelerate_state_checkpoints_resume_exactly(tmp_path: Path) -> None:
    config = _config(ema_decay=0.9)
    reference = _fit(tmp_path / "ref", config)
    with pytest.raises(_Stop):
        _fit(tmp_path / "run", config, crash_at=7)  # checkpoint at step 4, crash in step 7
    step4 = tmp_path / "run" / "checkpoints" / "step-00000004"
    files = sorted(p.name for p in step4.iterdir())
    assert {"model.safetensors", "optimizer.bin", "rng-rank0.pt", "scheduler.json"} <= set(files)
    assert not [f for f in files if f.endswith(".pkl")]  # Accelerate's pickled RNG is removed
    resumed = _fit(tmp_path / "run", config, resume="auto")
    assert resumed.state.global_step == reference.state.global_step == 12
    for a, b in zip(reference.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(reference.ema.module.parameters(), resumed.ema.module.parameters()):
        assert torch.equal(a, b)
    got, want = (
        load_file(str(_last(d) / "model.safetensors")) for d in (tmp_path / "run", tmp_path / "ref")
    )
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


def test_a_checkpoint_of_the_other_format_is_refused(tmp_path: Path) -> None:
    _fit(tmp_path / "run", _config(max_steps=4))
    with pytest.raises(ValueError, match="is a 'accelerate' checkpoint and this run uses 'ocrkit'"):
        _fit(tmp_path / "run", _config(max_steps=8, checkpoint_format="auto"), resume="auto")


def test_fsdp_branch_saves_gathered_full_weights_and_skips_evaluation(tmp_path, monkeypatch):
    """A mocked FSDP world: the trainer takes the FSDP branch on one CPU process."""
    monkeypatch.setattr(sharded, "distributed_name", lambda acc: "FSDP")
    gathered = []
    real = sharded.full_state_dict
    monkeypatch.setattr(
        sharded, "full_state_dict", lambda acc, w: gathered.append(1) or real(acc, w)
    )
    evals = []
    torch.manual_seed(0)
    model = _Crashing()
    config = _config(max_steps=4, checkpoint_format="auto")
    trainer = Trainer(
        model, ToyDataset(), config, tmp_path, collate_fn=collate, eval_fn=evals.append
    )
    trainer.fit()
    assert trainer.format == "accelerate" and evals == [] and model.saved == 0
    assert gathered == [1]  # final only (no best: no evaluation)
    final = load_file(str(tmp_path / "final" / "model.safetensors"))
    own = model.state_dict()
    assert final.keys() == own.keys()
    assert all(torch.equal(final[k], own[k]) for k in own)


@pytest.mark.parametrize(
    ("kind", "kw", "message"),
    [
        ("FSDP", {"ema": True}, "train.ema_decay under FSDP"),
        ("FSDP", {"eval_every": 100, "has_eval": True}, "set train.eval_every=0"),
        ("FSDP", {"requested": "ocrkit"}, "rank 0's shard"),
        ("DEEPSPEED", {}, "DEEPSPEED is not supported"),
        ("MEGATRON_LM", {}, "MEGATRON_LM is not supported"),
    ],
)
def test_unsupported_combinations_fail_at_start(kind, kw, message) -> None:
    acc = SimpleNamespace(distributed_type=SimpleNamespace(name=kind))
    args = dict(requested="auto", ema=False, eval_every=0, has_eval=False) | kw
    with pytest.raises(sharded.UnsupportedSetup, match=message):
        sharded.resolve_format(acc, **args)


def test_supported_combinations() -> None:
    def fmt(kind: str, **kw) -> str:
        acc = SimpleNamespace(distributed_type=SimpleNamespace(name=kind))
        return sharded.resolve_format(acc, **(dict(ema=False, eval_every=0, has_eval=True) | kw))

    assert fmt("FSDP", requested="auto") == "accelerate"  # final-only evaluation is skipped
    assert fmt("MULTI_GPU", requested="auto", ema=True, eval_every=10) == "ocrkit"
    assert fmt("NO", requested="accelerate", ema=True) == "accelerate"


def test_fsdp_accelerate_config_parses_into_an_fsdp2_plugin(monkeypatch) -> None:
    """The launcher's own parsing of recipes/accelerate/fsdp_qmask.yaml -> env -> plugin."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl

    config = ROOT / "recipes" / "accelerate" / "fsdp_qmask.yaml"
    argv = ["--config_file", str(config), "-m", "ocrkit", "train", "recipe.yaml"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    assert args.use_fsdp and args.mixed_precision == "bf16"
    for key, value in prepare_multi_gpu_env(args).items():
        monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    for name in plugin.transformer_cls_names_to_wrap:  # the wrap policy finds real classes
        assert isinstance(getattr(modeling_qwen2_5_vl, name), type)
