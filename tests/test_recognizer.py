"""Recognizer: training step, overfitting, save/load round trip, inputs, encoder init, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ocrkit.cli import main as cli_main
from ocrkit.models import Recognizer, load_recognizer
from ocrkit.types import Prediction, Predictor

TINY = {
    "backbone": {"name": "vit_small", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2, "dropout": 0.0},
    "charset": "36",
    "max_length": 8,
}
LABELS = ["cat", "dog", "hello", "ocr", "42", "world", "zebra", "a1b2"]


def tiny(seed: int = 0, **overrides) -> Recognizer:
    torch.manual_seed(seed)
    return Recognizer.from_config({**TINY, **overrides})


def noise_images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, 128, 3), dtype=np.uint8) for _ in range(n)]


def test_training_step_returns_loss_with_gradients() -> None:
    model = tiny()
    out = model.training_step({"images": torch.randn(2, 3, 32, 128), "labels": ["ab", "c"]})
    assert out["loss"].ndim == 0 and "acc" in out
    out["loss"].backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0
    assert model.decoder.head.weight.grad.abs().sum() > 0


def test_overfits_eight_images() -> None:
    # memorizing noise images proves the whole path (patches -> tokens -> greedy text) can fit
    cfg = {**TINY, "backbone": {**TINY["backbone"], "patch_size": 8}}  # 4x16 grid: fast
    torch.manual_seed(0)
    model = Recognizer.from_config(cfg)
    images = noise_images(8)
    batch = {"images": torch.stack([model.transform(i) for i in images]), "labels": LABELS}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    texts: list[str] = []
    for step in range(200):
        loss = model.training_step(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 5 == 4:
            texts = [p.text for p in model.predict(images)]  # free-running greedy decoding
            if texts == LABELS:
                break
    assert texts == LABELS
    assert model.training  # predict restored the training mode


def test_forward_and_predict_protocol() -> None:
    model = tiny().eval()
    assert isinstance(model, Predictor)
    probs = model(torch.randn(3, 3, 32, 128))
    assert probs.shape[0] == 3 and probs.shape[2] == 37 and probs.shape[1] <= 9
    preds = model.predict(noise_images(3))
    assert len(preds) == 3 and all(isinstance(p, Prediction) for p in preds)
    for p in preds:
        assert len(p.char_confidences) == len(p.text) and 0.0 <= p.confidence <= 1.0


def test_predict_batches_do_not_change_results() -> None:
    model = tiny().eval()
    images = noise_images(5)
    whole = model.predict(images, batch_size=64)
    split = model.predict(images, batch_size=2)
    assert [p.text for p in whole] == [p.text for p in split]
    np.testing.assert_allclose(
        [p.confidence for p in whole], [p.confidence for p in split], rtol=1e-4
    )


def test_save_and_load_are_bit_exact(tmp_path: Path) -> None:
    model = tiny(seed=3).eval()
    folder = model.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [
        "charset.json",
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"] == {**TINY["backbone"]}
    assert config["decoder"]["name"] == "ar" and config["max_length"] == 8
    assert config["img_size"] == [32, 128] and config["ocrkit_version"]
    assert config["charset"]["chars"] == "0123456789abcdefghijklmnopqrstuvwxyz"
    loaded = Recognizer.from_pretrained(folder)
    assert not loaded.training
    x = torch.randn(2, 3, 32, 128)
    assert torch.equal(model(x), loaded(x))
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert torch.equal(load_recognizer(str(folder))(x), model(x))


def test_from_config_charset_file_and_sincos(tmp_path: Path) -> None:
    path = tmp_path / "chars.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    backbone = {**TINY["backbone"], "pos_embed": "sincos"}
    model = tiny(charset=str(path), backbone=backbone)
    assert "".join(model.charset) == "abc" and model.decoder.head.out_features == 4
    folder = model.save_pretrained(tmp_path / "m")
    x = torch.randn(1, 3, 32, 128)
    assert torch.equal(Recognizer.from_pretrained(folder)(x), model.eval()(x))


def test_unknown_parts_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="unknown backbone"):
        Recognizer.from_config({**TINY, "backbone": {"name": "vit_huge_xyz"}})
    with pytest.raises(ValueError, match="model.backbones: unknown"):
        Recognizer.from_config({**TINY, "backbones": "vit_tiny"})


def test_recognize_accepts_paths_pil_arrays_and_lists(tmp_path: Path) -> None:
    model = tiny().eval()
    image = noise_images(1)[0]
    path = tmp_path / "word.png"
    Image.fromarray(image).save(path)  # lossless: every route sees the same pixels
    expected = model.predict([image])[0]
    routes = [str(path), path, Image.fromarray(image), image]
    for route in routes:
        (pred,) = model.recognize(route)
        assert pred.text == expected.text and pred.confidence == pytest.approx(expected.confidence)
    preds = model.recognize(routes + [image[:, :, 0]], batch_size=2, device="cpu")
    assert len(preds) == 5 and all(p.text == expected.text for p in preds[:4])


def test_recognize_skips_an_unreadable_input_and_reads_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = tiny().eval()
    good = noise_images(2)
    expected = [p.text for p in model.predict(good)]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not an image")
    inputs = [corrupt, good[0], tmp_path / "missing.jpg", good[1], np.zeros((4, 4), np.float32)]
    with caplog.at_level("WARNING"):
        preds = model.recognize(inputs, batch_size=2)
    assert [p.text for p in preds] == ["", expected[0], "", expected[1], ""]
    assert [p.error is None for p in preds] == [False, True, False, True, False]
    assert preds[0].confidence == 0.0 and preds[0].error.startswith("CorruptImageError")
    assert preds[2].error.startswith("FileNotFoundError") and "dtype float32" in preds[4].error
    assert f"skipped {corrupt}: not a decodable image" in caplog.text
    assert "skipped input 4: image arrays must be uint8" in caplog.text
    (only_bad,) = model.recognize(str(corrupt))  # a batch with nothing readable
    assert only_bad.text == "" and only_bad.error
    with pytest.raises(ValueError, match="not a decodable image"):
        model.recognize(inputs, on_error="raise")
    with pytest.raises(ValueError, match="on_error must be"):
        model.recognize(inputs, on_error="ignore")


def test_load_encoder_weights_from_prefixed_state_dict(tmp_path: Path) -> None:
    source = tiny(seed=1)
    target = tiny(seed=2)
    state = {f"encoder.{k}": v for k, v in source.backbone.state_dict().items()}
    state["decoder.unrelated"] = torch.zeros(1)
    report = target.load_encoder_weights(state)
    assert report["prefix"] == "encoder." and not report["missing"]
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(target.backbone.state_dict()[key], value), key
    assert not torch.equal(target.decoder.head.weight, source.decoder.head.weight)

    # a model folder works too (its keys start with "backbone.")
    other = tiny(seed=4)
    other.load_encoder_weights(source.save_pretrained(tmp_path / "src"))
    assert torch.equal(other.backbone.cls_token, source.backbone.cls_token)


def test_load_encoder_weights_resamples_position_table() -> None:
    source = tiny(seed=1, img_size=[16, 64])  # 4x16 grid
    target = tiny(seed=2)
    report = target.load_encoder_weights(source.backbone.state_dict(), prefix="")
    assert report["loaded"] > 0
    assert target.backbone.pos_embed.shape == (1, 257, 32)
    torch.testing.assert_close(target.backbone.pos_embed[:, 0], source.backbone.pos_embed[:, 0])
    # The 4x16 grid table, resampled to 8x32 independently here: bicubic with antialias, as
    # timm's resample_abs_pos_embed does; the class token (index 0) is kept as it is.
    grid = source.backbone.pos_embed[:, 1:].reshape(1, 4, 16, 32).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(8, 32), mode="bicubic", antialias=True)
    expected = expected.permute(0, 2, 3, 1).reshape(1, 256, 32)
    torch.testing.assert_close(target.backbone.pos_embed[:, 1:], expected, rtol=0, atol=1e-6)


def test_pickles_are_refused_unless_trusted(tmp_path: Path) -> None:
    path = tmp_path / "enc.pt"
    model = tiny()
    torch.save(model.backbone.state_dict(), path)
    with pytest.raises(ValueError, match="pickle"):
        model.load_encoder_weights(path)
    assert model.load_encoder_weights(path, trust_pickle=True)["loaded"] > 0


def test_missing_embedded_model_says_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ocrkit
    from ocrkit.models import default

    monkeypatch.setattr(default.resources, "files", lambda package: tmp_path)
    with pytest.raises(FileNotFoundError, match="--model"):
        ocrkit.load_recognizer()


def test_cli_recognize(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny().eval()
    folder = model.save_pretrained(tmp_path / "model")
    paths = []
    for i, image in enumerate(noise_images(2)):
        paths.append(str(tmp_path / f"w{i}.png"))
        Image.fromarray(image).save(paths[-1])
    expected = model.recognize(paths)

    assert cli_main(["recognize", "--model", str(folder), *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("\t")[:2] for ln in lines] == [[p, e.text] for p, e in zip(paths, expected)]

    assert (
        cli_main(["recognize", "--model", str(folder), "--json", "--batch-size", "1", *paths]) == 0
    )
    records = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == [e.text for e in expected]
    assert records[0]["path"] == paths[0]

    missing = str(folder / "missing")
    assert cli_main(["recognize", "--model", missing, paths[0]]) == 1  # a clear error, no crash
    assert "recognizer folder" in capsys.readouterr().err
