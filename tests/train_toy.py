"""A toy model and dataset for trainer tests (not a test module): fast, seeded, model-agnostic.

``ToyDataset`` adds ``torch.randn`` noise in ``__getitem__`` and ``ToyModel`` uses dropout, so a
resume that failed to restore the data position or an RNG state would change the weights.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset


class ToyDataset(Dataset):
    def __init__(self, n: int = 64, dim: int = 8, classes: int = 4, noise: float = 0.1) -> None:
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, dim, generator=g)
        self.y = torch.randint(0, classes, (n,), generator=g)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i] + self.noise * torch.randn(self.x.shape[1]), "y": self.y[i]}


def collate(items: list[dict]) -> dict:
    return {"x": torch.stack([d["x"] for d in items]), "y": torch.stack([d["y"] for d in items])}


class ToyModel(nn.Module):
    def __init__(self, dim: int = 8, hidden: int = 32, classes: int = 4, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, classes)
        )

    def training_step(self, batch: dict) -> dict:
        if os.environ.get("OCRKIT_TOY_SLEEP"):  # slows the subprocess so it can be killed mid-run
            time.sleep(float(os.environ["OCRKIT_TOY_SLEEP"]))
        logits = self.net(batch["x"])
        loss = nn.functional.cross_entropy(logits, batch["y"])
        acc = (logits.argmax(-1) == batch["y"]).float().mean()
        return {"loss": loss, "acc": acc}


def run(output: str, max_steps: int, save_every: int, resume: str | None) -> None:
    """Entry point of the kill-and-resume subprocess."""
    from ocrkit.train import TrainConfig, Trainer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = TrainConfig(
        seed=7,
        max_steps=max_steps,
        batch_size=8,
        grad_accum=2,
        lr=1e-2,
        warmup_steps=3,
        save_every=save_every,
        keep_last=100,
        log_every=5,
        ema_decay=0.9,
        trackers=[],
    )
    trainer = Trainer(ToyModel(), ToyDataset(), config, output, collate_fn=collate)
    trainer.fit(resume=resume)


if __name__ == "__main__":
    out, steps, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    resume = sys.argv[4] if len(sys.argv) > 4 else None
    Path(out).mkdir(parents=True, exist_ok=True)
    run(out, steps, every, resume)
