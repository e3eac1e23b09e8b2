"""Two-process data parallel training on CPU (gloo), launched with torchrun (issue 16 item 2).

``accelerate launch --cpu`` starts one process in Accelerate 1.x (its simple launcher), so the
tests use ``python -m torch.distributed.run --standalone --nproc-per-node 2``; Accelerate picks
up the torchrun environment and selects ``MULTI_CPU`` with the gloo backend. Shown here:

(a) 2 processes x batch 8 end with the weights of 1 process x batch 16 (no dropout, no data
    noise; float32 all-reduce order differs: atol 1e-6 on parameters of size ~0.1-1);
(b) a 2-process run SIGKILLed (launcher and both workers) after a checkpoint and resumed with
    ``resume="auto"`` ends bit-identical to an uninterrupted 2-process run;
(c) evaluation and best/final saving run on rank 0 only; logged training scalars are the mean
    over the processes (each rank reports its own index: the log says 0.5).

This file is also the worker: ``python test_train_multiprocess.py OUT STEPS BATCH ...``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve()
pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)


def _command(out: Path, procs: int, steps: int, batch: int, *extra: str) -> list[str]:
    worker = [str(HERE), str(out), str(steps), str(batch), *extra]
    if procs == 1:
        return [sys.executable, *worker]
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    return [sys.executable, *launcher, *worker]


def _env(sleep: str = "") -> dict[str, str]:
    env = {**os.environ, "OCRKIT_PROGRESS": "0", "OMP_NUM_THREADS": "1", "OCRKIT_TOY_SLEEP": sleep}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    return env


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-3000:]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def test_two_processes_match_one_process_with_the_double_batch(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _run(_command(one, 1, 8, 16, "exact"))
    _run(_command(two, 2, 8, 8, "exact"))
    w1, w2 = (load_file(str(d / "final" / "model.safetensors")) for d in (one, two))
    assert w1.keys() == w2.keys() and len(w1) == 4
    start = load_file(str(one / "start.safetensors"))
    for key in w1:
        assert (w1[key] - start[key]).abs().max() > 1e-2, key  # training moved every tensor
        torch.testing.assert_close(w2[key], w1[key], rtol=0, atol=1e-6)
    # (c) once per process group: rank 0 evaluated (steps 4 and 8) and saved best/final alone
    assert _lines(two / "evals.txt") == ["rank 0 step 4", "rank 0 step 8"]
    assert sorted(_lines(two / "saves.txt")) == ["rank 0 best", "rank 0 best", "rank 0 final"]
    records = [json.loads(line) for line in _lines(two / "metrics.jsonl")]
    train = [r for r in records if "train/loss" in r]
    assert [r["step"] for r in train] == [2, 4, 6, 8]
    assert all(r["train/rank"] == 0.5 for r in train)  # mean of ranks 0 and 1
    ref = [json.loads(line) for line in _lines(one / "metrics.jsonl") if "train/loss" in line]
    for a, b in zip(ref, train):  # the mean of two half-batch losses is the full-batch loss
        assert a["train/loss"] == pytest.approx(b["train/loss"], abs=1e-6)
    assert all(r["train/rank"] == 0.0 for r in ref)


def _final(out: Path, steps: int) -> dict[str, torch.Tensor]:
    last = out / "checkpoints" / f"step-{steps:08d}"
    state = {f"model.{k}": v for k, v in load_file(str(last / "model.safetensors")).items()}
    state |= {f"ema.{k}": v for k, v in load_file(str(last / "ema.safetensors")).items()}
    for i, entry in torch.load(last / "optimizer.pt", weights_only=True)["state"].items():
        state |= {f"optim.{i}.{k}": v for k, v in entry.items()}
    return state


def test_sigkill_of_two_processes_then_resume_is_bit_exact(tmp_path: Path) -> None:
    steps = 16
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _run(_command(reference, 2, steps, 4, "noisy"))

    proc = subprocess.Popen(
        _command(killed, 2, steps, 4, "noisy"),
        env=_env(sleep="0.1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    target = killed / "checkpoints" / "step-00000004" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not target.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint in 240 s"
        time.sleep(0.02)
    pids = [int(p.read_text()) for p in killed.glob("pid-rank*")]
    assert len(pids) == 2
    for pid in [*pids, proc.pid]:  # the whole job dies at once, as on a lost node
        os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (killed / "final").exists()
    done = int(max(p.name for p in (killed / "checkpoints").glob("step-*"))[5:])
    assert 4 <= done < steps

    _run(_command(killed, 2, steps, 4, "noisy", "auto"))
    expected, got = _final(reference, steps), _final(killed, steps)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_synthetic_words_rendered_by_two_processes_at_once(tmp_path, monkeypatch) -> None:
    """Every process of a launch builds the task; the loser of the rename keeps the winner's."""
    import ocrkit.data.render as render
    from ocrkit.train.tasks import synth_lmdb

    def fake_render(folder, n, seed, num_workers, overwrite):
        Path(folder).mkdir(parents=True)
        (Path(folder) / "data.mdb").write_text("mine")
        other = tmp_path / "synth" / f"words-seed{seed}-n{n}"  # the other process finished first
        other.mkdir(parents=True)
        (other / "data.mdb").write_text("theirs")

    monkeypatch.setattr(render, "render_to_lmdb", fake_render)
    target = synth_lmdb(8, seed=1, cache_dir=str(tmp_path / "synth"))
    assert (target / "data.mdb").read_text() == "theirs"
    assert [p.name for p in (tmp_path / "synth").iterdir()] == [target.name]  # no leftover


# --- the worker ---------------------------------------------------------------------------------


def _worker(out: Path, steps: int, batch: int, mode: str, resume: str | None) -> None:
    from train_toy import ToyDataset, ToyModel, collate

    from ocrkit.train import TrainConfig, Trainer

    rank = int(os.environ.get("RANK", "0"))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"pid-rank{rank}").write_text(str(os.getpid()))
    exact = mode == "exact"

    class Toy(ToyModel):
        def training_step(self, b: dict) -> dict:
            return {**super().training_step(b), "rank": torch.tensor(float(rank))}

        def save_pretrained(self, directory: Path) -> None:
            with open(out / "saves.txt", "a") as f:
                f.write(f"rank {rank} {Path(directory).name.split('-')[1]}\n")
            from safetensors.torch import save_model

            save_model(self, str(Path(directory) / "model.safetensors"))

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        with open(out / "evals.txt", "a") as f:
            f.write(f"rank {rank} step {trainer.state.global_step}\n")
        return {"val/accuracy": float(trainer.state.global_step)}

    if exact:  # as `ocrkit train` does: a PartialState exists before the trainer's Accelerator
        from accelerate import PartialState

        from ocrkit.train.parts import cpu_world

        PartialState(cpu=cpu_world())
    torch.manual_seed(0)
    model = Toy(dropout=0.0 if exact else 0.1)
    if rank == 0 and resume is None:
        from safetensors.torch import save_model

        save_model(model, str(out / "start.safetensors"))
    config = TrainConfig(
        seed=5,
        max_steps=steps,
        batch_size=batch,
        grad_accum=1 if exact else 2,
        lr=1e-2,
        warmup_steps=2,
        eval_every=4 if exact else 0,
        save_every=0 if exact else 4,
        keep_last=100,
        log_every=2,
        ema_decay=None if exact else 0.9,
        trackers=[],
    )
    data = ToyDataset(n=64, noise=0.0 if exact else 0.1)
    trainer = Trainer(model, data, config, out, collate_fn=collate, eval_fn=evaluate)
    trainer.fit(resume=resume)


if __name__ == "__main__":
    torch.set_num_threads(1)
    args = sys.argv[1:]
    _worker(Path(args[0]), int(args[1]), int(args[2]), args[3], args[4] if len(args) > 4 else None)
