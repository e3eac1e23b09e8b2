"""Reproducible, resumable data order: a seeded per-epoch sampler and per-sample RNG seeds.

The order of epoch ``e`` is ``randperm(n, seed=hash(seed, e))``, split across processes as
``order[rank::world]``; resuming at batch ``b`` starts the sampler at ``b * batch_size`` so no
sample is seen twice and none is skipped. Each yielded index carries a seed derived from
``(seed, epoch, position)``; :class:`SeededDataset` runs the wrapped dataset's ``__getitem__``
(augmentation included) with python/numpy/torch global RNGs seeded by it, and restores the
caller's RNG state afterwards. Augmentation therefore depends only on the sample's position, not
on worker count, prefetching or where a run was resumed. Transforms must draw from the global
RNGs (``random``, ``np.random``, ``torch``) for this to hold.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def _mix(*values: int) -> int:
    return int(np.random.SeedSequence([v & 0xFFFFFFFF for v in values]).generate_state(1)[0])


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, sample_seed)`` of one epoch for one process, from ``start`` on."""

    def __init__(
        self,
        num_samples: int,
        seed: int,
        epoch: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ) -> None:
        self.num_samples, self.seed, self.epoch, self.shuffle = num_samples, seed, epoch, shuffle
        self.rank, self.world_size, self.start = rank, world_size, start

    def per_process(self) -> int:
        """Samples each process sees in a full epoch (the tail that does not divide is dropped)."""
        return self.num_samples // self.world_size

    def __len__(self) -> int:
        return max(0, self.per_process() - self.start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
            order = torch.randperm(self.num_samples, generator=g).tolist()
        else:
            order = list(range(self.num_samples))
        mine = order[: self.per_process() * self.world_size][self.rank :: self.world_size]
        for pos in range(self.start, len(mine)):
            yield mine[pos], _mix(self.seed, self.epoch, self.rank, pos)


@contextmanager
def rng_scope(seed: int) -> Iterator[None]:
    """Seed python/numpy/torch global RNGs with ``seed`` inside; restore them on exit."""
    py, np_state, th = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also queues CUDA
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(th)


class SeededDataset(Dataset):
    """Indexes ``dataset`` with ``(index, seed)`` pairs from :class:`EpochSampler`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        with rng_scope(seed):
            return self.dataset[index]
