"""Hugging Face ``datasets`` as a source: saved folders, ``imagefolder`` folders, Arrow/Parquet.

``source`` may be a folder written by ``save_to_disk``, an ``imagefolder`` folder (images plus
``metadata.jsonl``/``metadata.csv`` with a ``file_name`` column), an ``.arrow`` or ``.parquet``
file, or a hub name (only works with network access or a warm HF cache). Images are read as raw
bytes (``Image(decode=False)``) and decoded by :func:`~ocrkit.data.image_io.decode_image`, so
corrupt images are counted and skipped like everywhere else. ``streaming=True`` gives an
:class:`HFStreamingDataset` (an ``IterableDataset``) that filters labels on the fly.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ocrkit.data.base import RawImage, StrDataset, Transform, resolve_protocol
from ocrkit.data.image_io import CorruptImageError, decode_image
from ocrkit.text.protocols import DROP_EMPTY, DROP_UNLABELED, LabelProtocol
from ocrkit.types import Sample

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "label", "transcription", "words", "word", "caption", "gt_text")
IMAGE_COLUMNS = ("image", "img", "jpg", "png", "image_path", "file_name")


def load_hf(source: str | Path, split: str | None = None, streaming: bool = False, **options: Any):
    """Load a ``datasets.Dataset`` (or ``IterableDataset`` when streaming) for one split."""
    import datasets

    path = Path(source)
    if path.is_dir() and (
        (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
    ):
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            ds = _pick_split(ds, split, source)
        return ds.to_iterable_dataset() if streaming else ds
    if path.is_dir():
        builder, kwargs = "imagefolder", {"data_dir": str(path)}
    elif path.is_file() and path.suffix == ".arrow":
        ds = datasets.Dataset.from_file(str(path))
        return ds.to_iterable_dataset() if streaming else ds
    elif path.is_file() and path.suffix == ".parquet":
        builder, kwargs = "parquet", {"data_files": str(path)}
    else:
        builder, kwargs = str(source), {}
    try:
        loaded = datasets.load_dataset(builder, streaming=streaming, **kwargs, **options)
    except Exception as exc:  # the hub raises many types (connection, not found, offline)
        raise ValueError(
            f"could not load Hugging Face dataset {str(source)!r}: {exc}. Offline, save it once "
            "with `datasets.load_dataset(...).save_to_disk(DIR)` on a machine with network "
            "access and pass 'hf:DIR'"
        ) from exc
    if isinstance(loaded, datasets.DatasetDict | datasets.IterableDatasetDict):
        loaded = _pick_split(loaded, split, source)
    return loaded


def _pick_split(ds: Any, split: str | None, source: str | Path) -> Any:
    names = list(ds.keys())
    if split is None:
        if "train" in names or len(names) == 1:
            split = "train" if "train" in names else names[0]
        else:
            raise ValueError(f"{source} has splits {names}; choose one with 'hf:{source}:SPLIT'")
    if split not in names:
        raise ValueError(f"{source} has no split {split!r}; available: {names}")
    return ds[split]


def _find_column(
    columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str
) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"no {what} column {wanted!r}; columns are {columns}")
        return wanted
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(f"cannot guess the {what} column among {columns}; pass {what}_column=...")


def _raw_image(value: Any) -> RawImage:
    """Bytes or an RGB array from whatever an HF image cell holds."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path"):
            return Path(value["path"]).read_bytes()
        raise CorruptImageError("image cell holds neither bytes nor a path")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return Path(value).read_bytes()
    if value is None:
        raise CorruptImageError("image cell is empty")
    array = np.asarray(value.convert("RGB") if hasattr(value, "convert") else value)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise CorruptImageError(f"image cell is an array of {array.dtype} {array.shape}")
    return array


def _undecoded(ds: Any, column: str) -> Any:
    import datasets

    feature = (ds.features or {}).get(column)
    if isinstance(feature, datasets.Image) and feature.decode:
        return ds.cast_column(column, datasets.Image(decode=False))
    return ds


class HFDataset(StrDataset):
    """A map-style Hugging Face dataset split as a :class:`StrDataset`."""

    def __init__(
        self,
        source: str | Path,
        split: str | None = None,
        image_column: str | None = None,
        text_column: str | None = None,
        hf_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", Path(str(source)).name + (f":{split}" if split else ""))
        super().__init__(**kwargs)
        ds = load_hf(source, split, streaming=False, **(hf_options or {}))
        columns = list(ds.column_names)
        self.image_column = _find_column(columns, image_column, IMAGE_COLUMNS, "image")
        self.text_column: str | None = None
        self.ds = _undecoded(ds, self.image_column)
        if self.unlabeled:
            self._init_labels(len(self.ds))
        else:
            self.text_column = _find_column(columns, text_column, TEXT_COLUMNS, "text")
            self._init_labels([_as_label(v) for v in self.ds[self.text_column]])

    def _load(self, j: int) -> tuple[RawImage, str | None, str]:
        row = self.ds[j]
        label = _as_label(row[self.text_column]) if self.text_column else None
        return _raw_image(row[self.image_column]), label, str(j)


def _as_label(value: Any) -> str | None:
    return None if value is None else str(value)


class HFStreamingDataset(torch.utils.data.IterableDataset):
    """A streamed Hugging Face split yielding :class:`Sample` (or ``None`` for corrupt images).

    Labels are filtered as they arrive (``dropped`` counts reasons); with DataLoader workers each
    worker takes every ``num_workers``-th row, and counts live in the workers.
    """

    def __init__(
        self,
        source: str | Path,
        split: str | None = None,
        image_column: str | None = None,
        text_column: str | None = None,
        protocol: str | LabelProtocol | None = None,
        unlabeled: bool = False,
        transform: Transform | None = None,
        name: str = "",
        hf_options: dict[str, Any] | None = None,
    ) -> None:
        self.source, self.split = source, split
        self.protocol = resolve_protocol(protocol)
        self.unlabeled, self.transform = unlabeled, transform
        self.name = name or Path(str(source)).name
        self.dropped: Counter[str] = Counter()
        self.skip_reasons: Counter[str] = Counter()
        self.hf_options = hf_options or {}
        ds = load_hf(source, split, streaming=True, **self.hf_options)
        columns = list(ds.column_names or next(iter(ds)).keys())
        self.image_column = _find_column(columns, image_column, IMAGE_COLUMNS, "image")
        self.text_column = (
            None if unlabeled else _find_column(columns, text_column, TEXT_COLUMNS, "text")
        )
        self.ds = _undecoded(ds, self.image_column)

    @property
    def skipped(self) -> int:
        return sum(self.skip_reasons.values())

    def _label(self, row: dict[str, Any]) -> tuple[str | None, str | None]:
        if self.text_column is None:
            return None, None
        raw = _as_label(row[self.text_column])
        if self.protocol is not None:
            return self.protocol.normalize_label(raw)
        if raw is None:
            return None, DROP_UNLABELED
        return (raw, None) if raw else (None, DROP_EMPTY)

    def __iter__(self) -> Iterator[Sample | None]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for j, row in enumerate(self.ds):
            if j % workers != worker:
                continue
            label, reason = self._label(row)
            if reason is not None:
                self.dropped[reason] += 1
                continue
            try:
                raw = _raw_image(row[self.image_column])
                image = decode_image(raw) if isinstance(raw, bytes) else raw
            except (CorruptImageError, OSError) as exc:
                self.skip_reasons["corrupt_image"] += 1
                logger.warning("skipping %s:%d: %s", self.name, j, exc)
                yield None
                continue
            if self.transform is not None:
                image = self.transform(image)
            yield Sample(image=image, label=label, key=str(j), meta={"source": self.name})
