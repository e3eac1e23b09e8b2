"""Recipe dataset specs: one resolver (ocrkit.data.specs) for the str, mim/mnsp, qmask tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ocrkit.config import ConfigError, load_config
from ocrkit.data import DATASETS, ListDataset, LmdbDataset, encode_image, open_dataset
from ocrkit.data.specs import TASK_KEYS, DatasetSpec, open_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def word_folder(tmp_path: Path) -> Path:
    root = tmp_path / "words"
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(5):
        image = np.full((8, 24, 3), 40 * i, np.uint8)
        (root / "images" / f"{i}.png").write_bytes(encode_image(image, ".png"))
        lines.append(f"images/{i}.png\tw{i}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_parse_splits_entry_options_and_task_keys() -> None:
    spec = {"type": "lmdb", "path": "/d/x", "repeat": 2, "holdout": 10, "name": "x", "root": "/r"}
    parsed = parse_spec(spec)
    assert parsed == DatasetSpec(
        "lmdb", {"path": "/d/x", "root": "/r"}, {"repeat": 2, "holdout": 10, "name": "x"}
    )
    assert (parsed.repeat, parsed.holdout, parsed.max_samples, parsed.label()) == (2, 10, 0, "x")
    assert parse_spec("/d/ic15/annotations.jsonl") == DatasetSpec(
        "auto", {"path": "/d/ic15/annotations.jsonl"}
    )
    assert parse_spec("/d/ic15/annotations.jsonl").label() == "ic15"
    assert parse_spec({"type": "synth", "num_samples": 8}).label() == "synth"
    # a task that reads fewer keys leaves the rest to the source (which then rejects them)
    assert parse_spec(
        {"type": "lmdb", "path": "/p", "holdout": 3}, task_keys=("repeat",)
    ).options == {
        "path": "/p",
        "holdout": 3,
    }
    assert set(TASK_KEYS) == {"name", "repeat", "holdout", "max_samples"}


def test_untyped_spec_with_options_names_type() -> None:
    with pytest.raises(ConfigError, match="add 'type'"):
        parse_spec({"path": "/p", "root": "/r"})
    with pytest.raises(ConfigError, match="give a path or a mapping"):
        parse_spec(3)
    # anchoring's default entry takes any option; its own builder checks them
    assert parse_spec({"path": "/p", "limit": 5}, default_type="instances").type == "instances"


def test_path_only_specs_resolve_like_open_dataset(word_folder: Path) -> None:
    before = open_dataset(str(word_folder))  # what the tasks opened for a path before
    for spec in (
        str(word_folder),
        word_folder,
        {"path": str(word_folder)},
        {"type": "auto", "path": str(word_folder)},
    ):
        dataset = open_spec(spec)
        assert type(dataset) is type(before) is ListDataset
        assert len(dataset) == len(before) == 5
        assert dataset.labels == before.labels == [f"w{i}" for i in range(5)]
    assert "auto" in DATASETS.list() and "synth" in DATASETS.list()


def test_task_keys_never_reach_the_source(word_folder: Path) -> None:
    spec = {"path": str(word_folder), "repeat": 3, "holdout": 1, "max_samples": 2, "name": "n"}
    assert len(open_spec(spec)) == 5


@pytest.fixture(scope="module")
def synth_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("synth"))


def test_synth_spec_resolves_through_datasets(synth_cache: str) -> None:
    cache = synth_cache
    dataset = open_spec({"type": "synth", "num_samples": 6, "seed": 3, "cache_dir": cache})
    assert type(dataset) is LmdbDataset and len(dataset) == 6
    target = Path(cache) / "words-seed3-n6"
    assert dataset.name == target.name  # same name (and frozen-feature cache key) as before
    before = open_dataset(str(target))  # the tasks opened the rendered folder as a path before
    assert type(before) is LmdbDataset and len(before) == 6
    assert [dataset[i].label for i in range(6)] == [before[i].label for i in range(6)]
    assert np.array_equal(np.asarray(dataset[0].image), np.asarray(before[0].image))


def test_tasks_read_synth_specs_with_their_task_keys(synth_cache: str) -> None:
    from ocrkit.pretrain.tasks import build_unlabeled
    from ocrkit.pretrain.views import PretrainViews
    from ocrkit.train.tasks import build_str_data

    spec = {"type": "synth", "num_samples": 6, "seed": 3, "cache_dir": synth_cache}
    data = {"augment": None, "train": [{**spec, "holdout": 2, "repeat": 2}]}
    train, val = build_str_data({"data": data}, (32, 128), seed=0, workers=0)
    assert len(train) == 8 and {k: len(v) for k, v in val.items()} == {"synth_holdout": 2}
    views = PretrainViews(("image",), augment="none")
    assert len(build_unlabeled({"data": {"train": [{**spec, "repeat": 3}]}}, views)) == 18
    with pytest.raises(TypeError, match="holdout"):  # not a key mim/mnsp read: the source's
        build_unlabeled({"data": {"train": [{**spec, "holdout": 2}]}}, views)


def _recipe_specs():
    for path in sorted((ROOT / "recipes").rglob("*.yaml")):
        if path.parent.name == "accelerate":
            continue
        yield pytest.param(path, id=f"{path.parent.name}/{path.name}")


@pytest.mark.parametrize("path", list(_recipe_specs()))
def test_every_recipe_spec_parses(path: Path, monkeypatch, tmp_path) -> None:
    """Every dataset spec of every shipped recipe resolves to a registered entry with `type`."""
    from ocrkit.anchoring.generate import TASK_KEYS as ANCHOR_KEYS

    for name in ("UNION14M", "UNION14M_U", "UNION14M_FILTER", "PRETRAINED", "QMASK_BASE"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("OCRKIT_DATA", str(tmp_path / "data"))
    config = load_config(path)
    data = config.get("data") or {}
    val = data.get("val") or []
    specs = list(data.get("train") or []) + list(val.values() if isinstance(val, dict) else val)
    assert specs
    for spec in specs:
        if config["task"] == "qmask":
            parsed = parse_spec(spec, default_type="instances", task_keys=ANCHOR_KEYS)
            assert parsed.type in {"icdar", "funsd", "jsonl", "synth", "instances"}
        else:
            parsed = parse_spec(spec)
            assert parsed.type in DATASETS
        assert "name" not in parsed.options  # name is a display name, never a source option
