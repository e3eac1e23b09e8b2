"""One model-folder layer: every format round-trips through ``ocrkit.load``, old folders still
load, the config file is written last and a failed write leaves the folder as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import ocrkit
from ocrkit.models import Recognizer
from ocrkit.utils import model_folder
from ocrkit.utils.model_folder import read_config, write_folder

REC = {
    "backbone": {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "charset": "36",
    "max_length": 8,
}
ENC = {"name": "vit_tiny", "depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 4}


def tiny_recognizer(seed: int = 0) -> Recognizer:
    """A tiny random recognizer whose texts depend on the image."""
    torch.manual_seed(seed)
    model = Recognizer.from_config(REC).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.5)
    return model


def images(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (32, 100, 3), np.uint8) for _ in range(n)]


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def recognizer_dir(tmp_path_factory) -> Path:
    return tiny_recognizer().save_pretrained(tmp_path_factory.mktemp("rec") / "rec")


# --- round trips through ocrkit.load ------------------------------------------------------------
def test_recognizer_round_trip(recognizer_dir: Path) -> None:
    assert read_config(recognizer_dir).format == "ocrkit-recognizer"
    loaded = ocrkit.load(recognizer_dir)
    assert type(loaded) is Recognizer and not loaded.training
    assert same_weights(loaded, tiny_recognizer())
    texts = [p.text for p in loaded.predict(images())]
    assert texts == [p.text for p in tiny_recognizer().predict(images())]
    assert len(set(texts)) > 1  # the comparison above can fail


def test_embedded_names_load_when_no_such_folder_exists(tmp_path: Path, monkeypatch) -> None:
    from ocrkit.models import load_recognizer

    monkeypatch.chdir(tmp_path)  # no folder called "tiny" here
    loaded = ocrkit.load("tiny")
    assert type(loaded) is Recognizer and same_weights(loaded, load_recognizer("tiny"))
    with pytest.raises(ValueError, match="nosuch"):
        ocrkit.load("nosuch")


def test_pretrain_encoder_round_trip(tmp_path: Path) -> None:
    from ocrkit.pretrain import MaskedImageModel

    torch.manual_seed(0)
    model = MaskedImageModel({"encoder": ENC, "decoder": {"dim": 32, "depth": 1, "num_heads": 2}})
    folder = model.save_pretrained(tmp_path / "mim")
    assert read_config(folder).format == "ocrkit-pretrain"
    encoder = ocrkit.load(folder)
    assert type(encoder) is type(model.encoder) and not encoder.training
    assert same_weights(encoder, model.encoder)
    x = torch.randn(2, 3, 32, 128)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), model.encoder.eval()(x))


def test_onnx_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from ocrkit.export import OnnxRecognizer, export_onnx

    model = tiny_recognizer()
    folder = export_onnx(model, tmp_path / "onnx")
    assert read_config(folder).format == "ocrkit-onnx"
    loaded = ocrkit.load(folder, threads=1)
    assert isinstance(loaded, OnnxRecognizer)
    assert [p.text for p in loaded.predict(images())] == [p.text for p in model.predict(images())]
    # the folder's recognizer config.json still reads as the recognizer's
    assert read_config(folder, expect="ocrkit-recognizer").config["max_length"] == 8
    with pytest.raises(ValueError, match="'ocrkit-onnx' model; serve runs"):
        from ocrkit.serve import load_backend

        load_backend(folder)


def test_onnx_re_export_drops_the_earlier_step_graphs(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from ocrkit.export import export_onnx

    export_onnx(tiny_recognizer(), tmp_path / "m", verify=False)
    assert (tmp_path / "m" / "decoder_step.onnx").is_file()
    (tmp_path / "m" / "NOTES.md").write_text("kept")
    mdiff = Recognizer.from_config({**REC, "decoder": {**REC["decoder"], "name": "mdiff"}})
    export_onnx(mdiff, tmp_path / "m", verify=False)
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert "decoder_step.onnx" not in names and "decoder_memory.onnx" not in names
    assert "NOTES.md" in names and not any(n.startswith(".tmp") for n in names)
    assert ocrkit.load(tmp_path / "m").config["decoder"]["name"] == "mdiff"


def test_qmask_round_trip_and_old_spelling(tmp_path_factory) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from qmask_helpers import tiny_cache

    from ocrkit.anchoring.model import QMask, QMaskConfig
    from ocrkit.testing.tiny_vlm import tiny_processor, tiny_vlm

    processor = tiny_processor("qwen2_vl", tiny_cache(tmp_path_factory))
    torch.manual_seed(0)
    config = QMaskConfig(tiny="qwen2_vl", head={"size": "small", "channels": 16, "min_channels": 8})
    model = QMask(tiny_vlm("qwen2_vl", processor), processor, config).eval()
    folder = model.save_pretrained(tmp_path_factory.mktemp("q") / "q")
    record = json.loads((folder / "qmask_config.json").read_text())
    assert record["format"] == "ocrkit-qmask" and read_config(folder).format == "ocrkit-qmask"
    loaded = ocrkit.load(folder)
    assert isinstance(loaded, QMask) and same_weights(loaded.head, model.head)
    assert same_weights(loaded.vlm, model.vlm)
    # a folder from an older ocrkit spells the format "ocrkit.qmask"
    record["format"] = "ocrkit.qmask"
    (folder / "qmask_config.json").write_text(json.dumps(record))
    assert read_config(folder).format == "ocrkit-qmask"
    assert same_weights(ocrkit.load(folder).head, model.head)


# --- old folders and errors ---------------------------------------------------------------------
def test_a_config_without_format_is_a_recognizer(recognizer_dir: Path, tmp_path: Path) -> None:
    import shutil

    old = Path(shutil.copytree(recognizer_dir, tmp_path / "old"))
    config = json.loads((old / "config.json").read_text())
    for key in ("format", "architecture", "ocrkit_version"):  # what early folders lacked
        config.pop(key)
    (old / "config.json").write_text(json.dumps(config))
    assert read_config(old).format == "ocrkit-recognizer"
    assert same_weights(ocrkit.load(old), tiny_recognizer())
    from ocrkit.pretrain.encoders import read_encoder_config

    assert read_encoder_config(old)[0]["name"] == "vit_tiny"  # found by format, not by keys


def test_unknown_format_and_non_folders_are_one_line_value_errors(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text(json.dumps({"format": "someone-else"}))
    with pytest.raises(ValueError, match=r"x: unknown model folder format 'someone-else'"):
        ocrkit.load(tmp_path / "x")
    (tmp_path / "f.txt").write_text("")
    for path, why in [
        (tmp_path / "f.txt", "not a directory"),
        (tmp_path / "missing", "does not exist"),
        (tmp_path, "no onnx.json or qmask_config.json or config.json"),
    ]:
        with pytest.raises(ValueError, match=f"is not a model folder \\({why}\\)") as info:
            ocrkit.load(path)
        assert isinstance(info.value, FileNotFoundError) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="holds a 'someone-else' model, not a recognizer"):
        Recognizer.from_pretrained(tmp_path / "x")
    (tmp_path / "x" / "config.json").write_text("{half")  # e.g. edited by hand
    with pytest.raises(ValueError, match=r"config.json is not valid JSON \(Expecting"):
        ocrkit.load(tmp_path / "x")


def test_recognizer_loader_refuses_a_pretraining_folder(tmp_path: Path) -> None:
    write_folder(tmp_path / "p", "ocrkit-pretrain", lambda tmp: {"encoder": ENC})
    with pytest.raises(ValueError, match="holds a 'ocrkit-pretrain' model, not a recognizer"):
        Recognizer.from_pretrained(tmp_path / "p")


# --- the writer ---------------------------------------------------------------------------------
def test_a_failed_weights_write_leaves_no_folder(tmp_path: Path, monkeypatch) -> None:
    import safetensors.torch

    def broken(tensors, path, metadata=None):
        Path(path).write_bytes(b"half")  # a partial file, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        tiny_recognizer().save_pretrained(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []  # no folder, no config.json, no temporary folder


def test_a_failed_overwrite_keeps_the_old_folder(recognizer_dir: Path, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(recognizer_dir, tmp_path / "m"))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def failing(tmp: Path) -> dict:
        (tmp / "model.safetensors").write_bytes(b"new")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        write_folder(folder, "ocrkit-recognizer", failing)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_an_overwrite_moves_the_config_last_and_keeps_other_files(
    recognizer_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    import shutil

    folder = Path(shutil.copytree(recognizer_dir, tmp_path / "m"))
    (folder / "MODEL_CARD.md").write_text("card")
    moves: list[tuple[str, bool]] = []
    replace = os.replace

    def spy(src, dst):  # each move into the folder, and whether it held a config.json then
        if Path(dst).parent == folder:
            moves.append((Path(dst).name, (folder / "config.json").is_file()))
        replace(src, dst)

    monkeypatch.setattr(model_folder.os, "replace", spy)
    tiny_recognizer(seed=1).save_pretrained(folder)
    assert moves[-1] == ("config.json", False)  # the old config went first, the new one last
    assert {"model.safetensors", "charset.json"} <= {name for name, _ in moves[:-1]}
    assert not any(present for _, present in moves)
    assert (folder / "MODEL_CARD.md").read_text() == "card"
    assert same_weights(ocrkit.load(folder), tiny_recognizer(seed=1))


def test_a_new_folder_appears_whole(tmp_path: Path, monkeypatch) -> None:
    moves: list[tuple[str, str]] = []
    replace = os.replace

    def spy(src, dst):
        if Path(dst).parent == tmp_path:
            moves.append((Path(src).name, Path(dst).name))
        replace(src, dst)

    monkeypatch.setattr(model_folder.os, "replace", spy)
    tiny_recognizer().save_pretrained(tmp_path / "new")
    assert [dst for _, dst in moves] == ["new"]  # one rename of the complete folder
    assert {p.name for p in (tmp_path / "new").iterdir()} == {
        "config.json",
        "model.safetensors",
        "charset.json",
    }
