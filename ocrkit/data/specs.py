"""Dataset specs in recipes: :func:`parse_spec`, the one resolver every training task calls.

A recipe's ``data.train`` (and ``data.val``) lists specs. Each is

* a string: a path whose type is read from its contents, or ``hf:NAME_OR_PATH[:split]``
  (the ``auto`` source of :data:`~ocrkit.data.sources.DATASETS`);
* a mapping. ``type`` is the one key that names the registry entry (``lmdb``, ``folder``,
  ``paddle``, ``scene``, ``hf``, ``synth``, ``auto``; the ``qmask`` task's anchoring sources
  have their own entries); every other key is an option of that source, except the task keys
  (:data:`TASK_KEYS` for the ``str`` task), which the task reads and never passes on. A
  mapping without ``type`` is the task's default source; for ``auto`` it may hold nothing but
  ``path`` (which source would the other options belong to?).

``name`` is the set's display name (log lines, ``<name>_holdout`` validation sets), never a
registry entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrkit.config import ConfigError
from ocrkit.data.base import StrDataset, Transform

# Keys the str task reads from a spec: display name, oversampling, samples held out for
# validation, a seeded subset. mim/mnsp read name and repeat; qmask name, repeat and holdout (a
# TABench split to leave out).
TASK_KEYS = ("name", "repeat", "holdout", "max_samples")


@dataclass
class DatasetSpec:
    """A parsed spec: the registry entry ``type``, its ``options`` and the task keys given."""

    type: str
    options: dict[str, Any] = field(default_factory=dict)
    task_keys: dict[str, Any] = field(default_factory=dict)

    @property
    def repeat(self) -> int:
        return int(self.task_keys.get("repeat", 1) or 1)

    @property
    def holdout(self) -> Any:
        return self.task_keys.get("holdout")

    @property
    def max_samples(self) -> int:
        return int(self.task_keys.get("max_samples", 0) or 0)

    def label(self, index: int = 0) -> str:
        """The display name: ``name``, else ``synth``, else the path's folder or file name."""
        if "name" in self.task_keys:
            return str(self.task_keys["name"])
        if self.type == "synth":
            return "synth"
        path = Path(str(self.options.get("path", f"set{index}")))
        return path.parent.name if path.name in {"annotations.jsonl", "labels.tsv"} else path.name


def parse_spec(
    spec: Any, default_type: str = "auto", task_keys: Sequence[str] = TASK_KEYS
) -> DatasetSpec:
    """Split one recipe spec into its registry entry, source options and the ``task_keys`` the
    calling task reads (any other key is a source option, so the source rejects what it lacks)."""
    if isinstance(spec, (str, Path)):
        return DatasetSpec(default_type, {"path": str(spec)})
    if isinstance(spec, list):  # a list inside a spec list: one concatenated set
        return DatasetSpec("list", {"specs": spec})
    if not isinstance(spec, Mapping):
        raise ConfigError(f"dataset spec {spec!r}: give a path or a mapping with 'type'")
    options = dict(spec)
    given = {k: options.pop(k) for k in task_keys if k in options}
    kind = options.pop("type", None)
    if kind is None:
        if default_type == "auto" and set(options) != {"path"}:
            raise ConfigError(f"dataset spec {dict(spec)}: add 'type' (lmdb, folder, scene, ...)")
        kind = default_type
    return DatasetSpec(str(kind), options, given)


def open_spec(
    spec: Any,
    protocol: str | None = None,
    unlabeled: bool = False,
    transform: Transform | None = None,
    workers: int = 0,
    task_keys: Sequence[str] = TASK_KEYS,
) -> StrDataset:
    """The dataset of one recipe spec, built through ``DATASETS`` (``task_keys`` left out).

    ``workers`` renders a ``synth`` spec's words in parallel on first use."""
    from ocrkit.data.sources import open_dataset

    parsed = parse_spec(spec, task_keys=task_keys)
    if parsed.type == "list":
        return open_dataset(spec, protocol=protocol, unlabeled=unlabeled, transform=transform)
    options = dict(parsed.options)
    if parsed.type == "synth":
        options.setdefault("workers", workers)
    return open_dataset(
        {"type": parsed.type, **options},
        protocol=protocol,
        unlabeled=unlabeled,
        transform=transform,
    )
