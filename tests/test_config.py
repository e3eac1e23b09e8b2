"""Recipe loader: typed overrides, nesting, _base_ inheritance, env expansion, errors naming keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ocrkit.config import ConfigError, apply_override, load_config, parse_scalar, to_dataclass


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_are_typed_and_nested(tmp_path):
    recipe = write(
        tmp_path / "r.yaml",
        "train: {lr: 0.1, ema: 0.9, steps: 10, name: a}\ndata: {train: [x, y], size: [32, 128]}\n",
    )
    cfg = load_config(
        recipe,
        [
            "train.lr=3e-4",
            "train.steps=20",
            "train.ema=null",
            "train.name=yes",
            "data.train.1=z",
            "data.size=[64, 256]",
            "+train.new.deep=true",
        ],
    )
    assert cfg["train"]["lr"] == 3e-4 and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["steps"] == 20 and isinstance(cfg["train"]["steps"], int)
    assert cfg["train"]["ema"] is None
    assert cfg["train"]["name"] is True  # YAML scalar rules
    assert cfg["data"]["train"] == ["x", "z"]
    assert cfg["data"]["size"] == [64, 256]
    assert cfg["train"]["new"] == {"deep": True}


def test_parse_scalar_reads_exponent_without_dot_as_float():
    assert parse_scalar("1e-4") == 1e-4
    assert parse_scalar("5") == 5
    assert parse_scalar("abc") == "abc"


def test_unknown_override_key_is_named_with_suggestion(tmp_path):
    recipe = write(tmp_path / "r.yaml", "train: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match=r"train\.lrr.*Did you mean lr"):
        load_config(recipe, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(recipe, ["train.lr"])
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_override({"a": 1}, "a.b=2")
    with pytest.raises(ConfigError, match="not an index"):
        apply_override({"a": [1, 2]}, "a.5=2")


def test_base_inheritance_merges_dicts_and_replaces_lists(tmp_path):
    write(tmp_path / "base.yaml", "train: {lr: 0.1, steps: 5}\ndata: {train: [a, b]}\n")
    child = write(
        tmp_path / "child.yaml", "_base_: base.yaml\ntrain: {lr: 0.2}\ndata: {train: [c]}\n"
    )
    cfg = load_config(child)
    assert cfg == {"train": {"lr": 0.2, "steps": 5}, "data": {"train": ["c"]}}


def test_base_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_env_expansion_and_missing_variable_names_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRKIT_TEST_ROOT", "/data/x")
    monkeypatch.delenv("OCRKIT_TEST_MISSING", raising=False)
    recipe = write(
        tmp_path / "r.yaml",
        "data: {train: ['${OCRKIT_TEST_ROOT}/iiit', '${OCRKIT_TEST_MISSING:-/d}/svt', '~/c']}\n",
    )
    cfg = load_config(recipe)
    assert cfg["data"]["train"][0] == "/data/x/iiit"
    assert cfg["data"]["train"][1] == "/d/svt"
    assert not cfg["data"]["train"][2].startswith("~")
    bad = write(tmp_path / "bad.yaml", "data: {val: {a: '${OCRKIT_TEST_MISSING}/x'}}\n")
    with pytest.raises(ConfigError, match=r"data\.val\.a.*OCRKIT_TEST_MISSING"):
        load_config(bad)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "b.yaml", "a: [1, 2\n"))


@dataclass
class _Section:
    lr: float = 0.1
    steps: int = 1
    ema: float | None = None


def test_to_dataclass_validates_names_and_types():
    got = to_dataclass(_Section, {"lr": 1, "steps": 3, "ema": "1e-3"}, "train")
    assert got == _Section(lr=1.0, steps=3, ema=1e-3)
    with pytest.raises(ConfigError, match=r"train\.stepz: unknown.*train\.steps"):
        to_dataclass(_Section, {"stepz": 3}, "train")
    with pytest.raises(ConfigError, match=r"train\.steps: expected int"):
        to_dataclass(_Section, {"steps": 2.5}, "train")


def test_train_config_validation_names_key():
    from ocrkit.train import TrainConfig

    with pytest.raises(ConfigError, match=r"train\.mixed_precision"):
        TrainConfig.from_dict({"mixed_precision": "fp8"})
    with pytest.raises(ConfigError, match=r"train\.schedule"):
        TrainConfig.from_dict({"schedule": "linear"})
    assert TrainConfig.from_dict({"lr": "3e-4"}).lr == 3e-4
