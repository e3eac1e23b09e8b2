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


class CorruptLmdbError(ValueError):
    """An LMDB folder that cannot be read safely (truncated, not LMDB, bad ``num-samples``)."""


def _open_env(path: Path) -> lmdb.Environment:
    """Open read-only, then check the file holds every page the database says it uses.

    LMDB maps ``data.mdb`` into memory, so touching a page past the end of a truncated file
    kills the process with SIGBUS. Opening reads only the two meta pages (with ``pread``);
    the size check runs before any other page is touched.
    """
    data = path / "data.mdb"
    size = data.stat().st_size
    if size == 0:
        raise CorruptLmdbError(f"{data}: empty file, not an LMDB database")
    try:
        env = lmdb.open(
            str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=126
        )
    except lmdb.Error as exc:
        raise CorruptLmdbError(f"{data}: cannot open as LMDB ({_lmdb_reason(exc)})") from None
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    if size < needed:
        env.close()
        raise CorruptLmdbError(
            f"{data}: truncated, {size} bytes on disk but the database uses {needed} "
            f"(copy it again)"
        )
    return env


def _lmdb_reason(exc: lmdb.Error) -> str:
    """py-lmdb prefixes messages with the path; keep LMDB's own words."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text or type(exc).__name__


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
        env = shared_env(path)
        self.bad_labels = 0  # labels that were not valid UTF-8 (decoded with replacement)
        try:
            with env.begin() as txn:
                n = _num_samples(path, txn, env.stat()["entries"])
                if self.unlabeled:
                    self._init_labels(n)
                else:
                    raw = [txn.get(label_key(j + 1)) for j in range(n)]
                    self._init_labels(self._decode_labels(raw))
        except lmdb.Error as exc:
            raise CorruptLmdbError(f"{path / 'data.mdb'}: corrupt ({_lmdb_reason(exc)})") from None

    def _decode_labels(self, raw: list[bytes | None]) -> list[str | None]:
        labels: list[str | None] = []
        first = None
        for j, value in enumerate(raw):
            label, ok = _decode_label_checked(value)
            if not ok:
                self.bad_labels += 1
                first = first or label_key(j + 1).decode()
            labels.append(label)
        if self.bad_labels:
            logger.warning(
                "%s: %d label(s) not valid UTF-8, bad bytes replaced with U+FFFD (first: %s)",
                self.path,
                self.bad_labels,
                first,
            )
        return labels

    def _key(self, j: int) -> str:
        return str(j + 1)

    def _load(self, j: int) -> tuple[RawImage, str | None, str]:
        index = j + 1
        try:
            with shared_env(self.path).begin() as txn:
                data = txn.get(image_key(index))
                label = _decode_label(txn.get(label_key(index)))
        except lmdb.Error as exc:  # a damaged page: this sample is unreadable, the rest are not
            raise OSError(f"LMDB {self.path}: {image_key(index).decode()}: {exc}") from None
        if data is None:
            raise OSError(f"LMDB {self.path} has no key {image_key(index).decode()}")
        return data, label, str(index)


def _decode_label(value: bytes | None) -> str | None:
    return _decode_label_checked(value)[0]


def _decode_label_checked(value: bytes | None) -> tuple[str | None, bool]:
    """The label (bad UTF-8 bytes replaced with U+FFFD) and whether it decoded cleanly."""
    if value is None:
        return None, True
    try:
        return value.decode("utf-8"), True
    except UnicodeDecodeError:
        return value.decode("utf-8", errors="replace"), False


def _num_samples(path: Path, txn: lmdb.Transaction, entries: int) -> int:
    """``num-samples`` as a count the database can hold (checked, never trusted)."""
    value = txn.get(NUM_SAMPLES_KEY)
    where = f"{path / 'data.mdb'}: num-samples"
    if value is None:
        raise CorruptLmdbError(f"{path}: LMDB has no 'num-samples' key; not the STR layout")
    text = value.decode("utf-8", errors="replace").strip()
    if not text.isascii() or not text.isdigit():
        raise CorruptLmdbError(f"{where} is {text[:40]!r}, not a non-negative integer")
    n = int(text)
    if n > entries - 1:
        raise CorruptLmdbError(
            f"{where} says {n} but the database holds only {entries} keys (num-samples included)"
        )
    if n and txn.get(image_key(n)) is None:
        raise CorruptLmdbError(f"{where} says {n} but there is no {image_key(n).decode()} key")
    return n


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
