"""A run killed with SIGKILL after a checkpoint and resumed ends bit-exactly like an uninterrupted
run (CPU, same seed, DataLoader workers=0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

TOY = Path(__file__).with_name("train_toy.py")
STEPS, EVERY = 40, 5


def _launch(out: Path, resume: str | None = None, sleep: str = "") -> subprocess.Popen:
    env = {**os.environ, "OCRKIT_PROGRESS": "0", "OCRKIT_TOY_SLEEP": sleep}
    env["PYTHONPATH"] = os.pathsep.join([str(TOY.parent), env.get("PYTHONPATH", "")])
    args = [sys.executable, str(TOY), str(out), str(STEPS), str(EVERY)]
    return subprocess.Popen(
        args + ([resume] if resume else []),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]


def _final_state(out: Path) -> dict[str, torch.Tensor]:
    last = out / "checkpoints" / f"step-{STEPS:08d}"
    state = {f"model.{k}": v for k, v in load_file(str(last / "model.safetensors")).items()}
    state |= {f"ema.{k}": v for k, v in load_file(str(last / "ema.safetensors")).items()}
    optim = torch.load(last / "optimizer.pt", weights_only=True)["state"]
    for i, entry in optim.items():
        for k, v in entry.items():
            state[f"optim.{i}.{k}"] = v
    return state


def test_sigkill_then_resume_is_bit_exact(tmp_path):
    reference = tmp_path / "reference"
    _finish(_launch(reference))

    killed = tmp_path / "killed"
    proc = _launch(killed, sleep="0.05")  # ~0.1 s per step: killable after checkpoint 10
    target = killed / "checkpoints" / "step-00000010" / "trainer_state.json"
    while not target.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final").exists()  # it really was interrupted
    done = int(max(p.name for p in (killed / "checkpoints").glob("step-*"))[5:])
    assert 10 <= done < STEPS

    _finish(_launch(killed, resume="auto"))
    expected, got = _final_state(reference), _final_state(killed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert (killed / "final" / "model.safetensors").is_file()
    # metrics.jsonl was cut to the resumed step: one line per logged step, the same losses
    ref_log, got_log = (_metric_lines(out) for out in (reference, killed))
    assert [r["step"] for r in got_log] == [r["step"] for r in ref_log] == list(range(5, 41, 5))
    assert [r["train/loss"] for r in got_log] == [r["train/loss"] for r in ref_log]


def _metric_lines(out: Path) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]
