"""LMDB in the standard STR layout read by PARSeq, MMOCR, OpenOCR and ABINet.

Keys: ``num-samples`` (decimal count), ``image-%09d`` (encoded image bytes) and ``label-%09d``
(UTF-8), indexed from 1. A missing label key marks an unlabeled sample (pretraining data).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lmdb
import numpy as np

from ocrkit.data.base import RawImage, StrDataset
from ocrkit.data.image_io import encode_image
from ocrkit.utils.io import remove_stale
from ocrkit.utils.progress import progress

logger = logging.getLogger(__name__)

NUM_SAMPLES_KEY = b"num-samples"


def image_key(index: int) -> bytes:
    """LMDB key of 1-based sample ``index``'s image."""
    return b"image-%09d" % index


def label_key(index: int) -> bytes:
    return b"label-%09d" % index


def _open_env(path: Path) -> lmdb.Environment:
    return lmdb.open(
        str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=126
    )


# LMDB allows one open environment per file and process, so readers share one handle per
# data file, keyed like py-lmdb does by (device, inode). A forked worker inherits the parent's
# handles, which it must not use: it closes them and opens its own.
_ENVS: dict[tuple[int, int], lmdb.Environment] = {}
_ENVS_PID = os.getpid()


def shared_env(path: Path) -> lmdb.Environment:
    """The read-only environment of LMDB folder ``path`` for this process (opened once)."""
    global _ENVS_PID
    if os.getpid() != _ENVS_PID:
        for env in _ENVS.values():
            with contextlib.suppress(lmdb.Error):
                env.close()
        _ENVS.clear()
        _ENVS_PID = os.getpid()
    stat = os.stat(path / "data.mdb")
    key = (stat.st_dev, stat.st_ino)
    env = _ENVS.get(key)
    if env is None:
        env = _ENVS[key] = _open_env(path)
    return env


class LmdbDataset(StrDataset):
    """Samples from an STR-layout LMDB folder (``data.mdb``).

    The environment is opened lazily once per process (read-only, no lock, no readahead) and is
    never stored on the dataset, so the dataset pickles and is safe in DataLoader workers.
    """

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        path = Path(path)
        if path.is_file() and path.name == "data.mdb":
            path = path.parent
        if not (path / "data.mdb").is_file():
            raise FileNotFoundError(f"{path} is not an LMDB folder (no data.mdb inside)")
        kwargs.setdefault("name", path.name)
        super().__init__(**kwargs)
        self.path = path
        with shared_env(path).begin() as txn:
            count = txn.get(NUM_SAMPLES_KEY)
            if count is None:
                raise ValueError(f"{path}: LMDB has no 'num-samples' key; not the STR layout")
            n = int(count.decode())
            if self.unlabeled:
                self._init_labels(n)
            else:
                labels = [_decode_label(txn.get(label_key(j + 1))) for j in range(n)]
                self._init_labels(labels)

    def _key(self, j: int) -> str:
        return str(j + 1)

    def _load(self, j: int) -> tuple[RawImage, str | None, str]:
        index = j + 1
        with shared_env(self.path).begin() as txn:
            data = txn.get(image_key(index))
            label = _decode_label(txn.get(label_key(index)))
        if data is None:
            raise OSError(f"LMDB {self.path} has no key {image_key(index).decode()}")
        return data, label, str(index)


def _decode_label(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def write_lmdb(
    path: str | Path,
    samples: Iterable[tuple[RawImage, str | None]],
    map_size: int = 1 << 30,
    image_format: str = ".jpg",
    quality: int = 95,
    overwrite: bool = False,
    total: int | None = None,
    commit_every: int = 1000,
) -> int:
    """Write ``(image, label)`` pairs as an STR-layout LMDB at ``path``; return the count.

    Bytes are stored unchanged; arrays are encoded as ``image_format`` (``.jpg`` at ``quality``
    or lossless ``.png``). A ``None`` label writes no label key. The LMDB is built in a temporary
    folder beside ``path`` and renamed into place, so ``path`` never holds a partial database; the
    map grows (doubling from ``map_size``) when it fills up.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, f".{path.name}.tmp-*")  # left by a killed writer
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        count = _write_env(tmp, samples, map_size, image_format, quality, total, commit_every)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return count


def _write_env(
    path: Path,
    samples: Iterable[tuple[RawImage, str | None]],
    map_size: int,
    image_format: str,
    quality: int,
    total: int | None,
    commit_every: int,
) -> int:
    env = lmdb.open(str(path), map_size=map_size, subdir=True, lock=True, readahead=False)
    pending: list[tuple[bytes, bytes]] = []
    count = 0

    def flush() -> None:
        while True:
            try:
                with env.begin(write=True) as txn:
                    for key, value in pending:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                env.set_mapsize(env.info()["map_size"] * 2)
        pending.clear()

    try:
        for image, label in progress(samples, total=total, desc="writing lmdb", unit="img"):
            count += 1
            if isinstance(image, np.ndarray):
                data = encode_image(image, image_format, quality)
            elif isinstance(image, bytes | bytearray | memoryview):
                data = bytes(image)
            else:
                raise TypeError(
                    f"sample {count}: image must be bytes or ndarray, got {type(image)}"
                )
            pending.append((image_key(count), data))
            if label is not None:
                pending.append((label_key(count), label.encode("utf-8")))
            if len(pending) >= 2 * commit_every:
                flush()
        pending.append((NUM_SAMPLES_KEY, str(count).encode()))
        flush()
        env.sync()
    finally:
        env.close()
    return count
