"""The dataset base class every source derives from, plus concatenation, subsets and collation.

A source only says how many raw entries it has, their labels (read once at construction, so they
can be filtered like PARSeq does) and how to load entry ``j`` (``_load``). The base class filters
labels with a :class:`~ocrkit.text.protocols.LabelProtocol`, decodes images, counts and skips
corrupt ones, and applies the transform.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from ocrkit.data.image_io import CorruptImageError, decode_image
from ocrkit.text.protocols import DROP_EMPTY, DROP_UNLABELED, LabelProtocol, get_protocol
from ocrkit.types import Sample

logger = logging.getLogger(__name__)

RawImage = bytes | np.ndarray
Transform = Callable[[np.ndarray], Any]


def resolve_protocol(protocol: str | LabelProtocol | None) -> LabelProtocol | None:
    return None if protocol is None else get_protocol(protocol)


class StrDataset(Dataset):
    """A map-style dataset of :class:`~ocrkit.types.Sample` (or ``None`` for a corrupt image).

    Subclasses call :meth:`_init_labels` once with the raw label of every entry and implement
    :meth:`_load`. ``skipped``/``skip_reasons`` count images that failed to decode *in this
    process*: DataLoader workers hold copies, so with ``num_workers > 0`` read the skips from the
    batches (``collate_samples`` reports ``num_skipped``), not from the parent's dataset object.
    """

    def __init__(
        self,
        protocol: str | LabelProtocol | None = None,
        unlabeled: bool = False,
        transform: Transform | None = None,
        name: str = "",
    ) -> None:
        self.protocol = resolve_protocol(protocol)
        self.unlabeled = unlabeled
        self.transform = transform
        self.name = name
        self.dropped: Counter[str] = Counter()
        self.skip_reasons: Counter[str] = Counter()
        self._warned: set[str] = set()
        self._indices: np.ndarray = np.zeros(0, dtype=np.int64)
        self._labels: list[str | None] = []
        self._num_raw = 0

    # -- construction ------------------------------------------------------------------------
    def _init_labels(self, raw_labels: Sequence[str | None] | int) -> None:
        """Filter raw labels (or, unlabeled, just a count) into the kept index and labels."""
        if self.unlabeled:
            n = raw_labels if isinstance(raw_labels, int) else len(raw_labels)
            self._num_raw = n
            self._indices = np.arange(n, dtype=np.int64)
            self._labels = [None] * n
            return
        if isinstance(raw_labels, int):
            raise ValueError(f"{type(self).__name__}: labels are required unless unlabeled=True")
        indices: list[int] = []
        labels: list[str | None] = []
        for j, raw in enumerate(raw_labels):
            label, reason = self._normalize(raw)
            if reason is not None:
                self.dropped[reason] += 1
                continue
            indices.append(j)
            labels.append(label)
        self._num_raw = len(raw_labels)
        self._indices = np.asarray(indices, dtype=np.int64)
        self._labels = labels

    def _normalize(self, raw: str | None) -> tuple[str | None, str | None]:
        if self.protocol is not None:
            return self.protocol.normalize_label(raw)
        if raw is None:
            return None, DROP_UNLABELED
        if not raw:
            return None, DROP_EMPTY
        return raw, None

    def _key(self, j: int) -> str:
        """The key of raw entry ``j`` (shown in warnings and reports)."""
        return str(j)

    def _load(self, j: int) -> tuple[RawImage, str | None, str]:
        """Raw entry ``j``: (encoded bytes or RGB uint8 array, raw label, key). May raise
        :class:`CorruptImageError` or ``OSError``; both are counted and skipped."""
        raise NotImplementedError

    # -- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._indices)

    @property
    def skipped(self) -> int:
        """Images that failed to load in this process (see the class docstring on workers)."""
        return sum(self.skip_reasons.values())

    @property
    def labels(self) -> list[str | None]:
        """The kept (normalized) labels, in dataset order."""
        return self._labels

    @property
    def keys(self) -> list[str]:
        """The keys of the kept samples, in dataset order (no image is decoded)."""
        return [self._key(int(j)) for j in self._indices]

    def raw_index(self, i: int) -> int:
        """The source entry behind dataset index ``i`` (after filtering)."""
        return int(self._indices[i])

    def get(self, i: int, apply_transform: bool = True) -> Sample | None:
        """Sample ``i`` (decoded, optionally transformed) or ``None`` when its image is corrupt."""
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        j = int(self._indices[i])
        key = self._key(j)
        try:
            raw, _, key = self._load(j)
            image = decode_image(raw) if isinstance(raw, bytes | bytearray | memoryview) else raw
        except (CorruptImageError, OSError) as exc:
            self._record_skip(key, exc)
            return None
        if apply_transform and self.transform is not None:
            image = self.transform(image)
        return Sample(image=image, label=self._labels[i], key=key, meta={"source": self.name})

    def __getitem__(self, i: int) -> Sample | None:
        return self.get(i)

    def _record_skip(self, key: str, exc: Exception) -> None:
        reason = "corrupt_image" if isinstance(exc, CorruptImageError) else "unreadable_file"
        self.skip_reasons[reason] += 1
        source = self._skip_source(key)
        if source not in self._warned:
            self._warned.add(source)
            where = f"{self.name}:" if self.name else ""
            more = "" if source == key else f" (other samples of {source} skipped silently)"
            logger.warning("skipping %s%s: %s%s", where, key, exc, more)

    def _skip_source(self, key: str) -> str:
        """What a skip is warned about once: the sample's key; a subclass whose samples share
        one file (scene crops) names the file, so a missing page is one line, not one a word."""
        return key

    def filter_report(self) -> dict[str, Any]:
        """Counts: raw entries, kept, dropped by reason, skipped by reason (this process)."""
        return {
            "name": self.name,
            "protocol": self.protocol.name if self.protocol else None,
            "total": self._num_raw,
            "kept": len(self),
            "dropped": dict(self.dropped),
            "skipped": dict(self.skip_reasons),
        }

    def __repr__(self) -> str:
        protocol = self.protocol.name if self.protocol else None
        return f"{type(self).__name__}(name={self.name!r}, len={len(self)}, protocol={protocol})"


class ConcatStrDataset(ConcatDataset):
    """Several :class:`StrDataset` read as one; counts are summed over the parts."""

    datasets: list[StrDataset]

    def __init__(self, datasets: Iterable[StrDataset]) -> None:
        super().__init__(list(datasets))
        self.name = "+".join(d.name for d in self.datasets)

    def _locate(self, i: int) -> tuple[StrDataset, int]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        part = int(np.searchsorted(self.cumulative_sizes, i, side="right"))
        offset = self.cumulative_sizes[part - 1] if part else 0
        return self.datasets[part], i - offset

    def get(self, i: int, apply_transform: bool = True) -> Sample | None:
        dataset, local = self._locate(i)
        return dataset.get(local, apply_transform)

    def __getitem__(self, i: int) -> Sample | None:
        return self.get(i)

    @property
    def labels(self) -> list[str | None]:
        return [label for d in self.datasets for label in d.labels]

    @property
    def keys(self) -> list[str]:
        return [key for d in self.datasets for key in d.keys]

    @property
    def dropped(self) -> Counter[str]:
        return sum((d.dropped for d in self.datasets), Counter())

    @property
    def skip_reasons(self) -> Counter[str]:
        return sum((d.skip_reasons for d in self.datasets), Counter())

    @property
    def skipped(self) -> int:
        return sum(d.skipped for d in self.datasets)

    @property
    def transform(self) -> Transform | None:
        return self.datasets[0].transform if self.datasets else None

    @transform.setter
    def transform(self, transform: Transform | None) -> None:
        for d in self.datasets:
            d.transform = transform

    def filter_report(self) -> dict[str, Any]:
        parts = [d.filter_report() for d in self.datasets]
        return {
            "name": self.name,
            "total": sum(p["total"] for p in parts),
            "kept": len(self),
            "dropped": dict(self.dropped),
            "skipped": dict(self.skip_reasons),
            "parts": parts,
        }


AnyStrDataset = StrDataset | ConcatStrDataset


class SubsetStrDataset(Dataset):
    """The samples of ``dataset`` at ``indices`` (e.g. the evaluator's split by image area)."""

    def __init__(
        self, dataset: AnyStrDataset | SubsetStrDataset, indices: Sequence[int], name: str = ""
    ) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.name = name or dataset.name

    def __len__(self) -> int:
        return len(self.indices)

    def get(self, i: int, apply_transform: bool = True) -> Sample | None:
        return self.dataset.get(self.indices[i], apply_transform)

    def __getitem__(self, i: int) -> Sample | None:
        return self.get(i)

    @property
    def labels(self) -> list[str | None]:
        labels = self.dataset.labels
        return [labels[i] for i in self.indices]

    @property
    def keys(self) -> list[str]:
        keys = self.dataset.keys
        return [keys[i] for i in self.indices]

    @property
    def skipped(self) -> int:
        return self.dataset.skipped


def select_indices(
    dataset: AnyStrDataset | SubsetStrDataset, predicate: Callable[[Sample], bool]
) -> list[int]:
    """Indices whose untransformed sample satisfies ``predicate`` (corrupt images excluded).

    Decodes every image once, e.g. ``select_indices(ds, lambda s: s.image.shape[0] *
    s.image.shape[1] < 32 * 128)``.
    """
    from ocrkit.utils.progress import progress

    keep = []
    for i in progress(range(len(dataset)), desc="selecting"):
        sample = dataset.get(i, apply_transform=False)
        if sample is not None and predicate(sample):
            keep.append(i)
    return keep


def collate_samples(batch: Sequence[Sample | None]) -> dict[str, Any]:
    """Batch samples for a DataLoader, dropping ``None`` (corrupt) entries.

    ``images`` is a ``Tensor[B, 3, H, W]`` when the transform produced tensors, else the list of
    arrays; when every sample was skipped it is an empty ``Tensor[0]`` and ``labels`` is empty.
    ``num_skipped`` counts the ``None`` entries, so skips survive worker processes.
    """
    samples = [s for s in batch if s is not None]
    images: Any
    if not samples:
        images = torch.empty(0)
    elif all(isinstance(s.image, torch.Tensor) for s in samples):
        images = torch.stack([s.image for s in samples])
    else:
        images = [s.image for s in samples]
    return {
        "images": images,
        "labels": [s.label for s in samples],
        "keys": [s.key for s in samples],
        "num_skipped": len(batch) - len(samples),
    }
