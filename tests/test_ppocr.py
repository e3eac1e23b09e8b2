"""PP-OCR recognizers in ocrkit: modules, ONNX import and parity, preprocessing, CTC, remap."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from word_fixtures import WORDS, word_image

from ocrkit.data.transforms import PPOCRResize
from ocrkit.models import Recognizer
from ocrkit.models.decoders.ctc import collapse_ctc
from ocrkit.text.charset import Charset
from ocrkit.text.tokenizer import Tokenizer

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
HAS_ONNX = importlib.util.find_spec("onnx") is not None


def ppocr_config(arch: str = "ppocrv4_rec", charset: str = "36") -> dict:
    return {
        "backbone": {"name": arch},
        "decoder": {"name": "ctc"},
        "charset": charset,
        "max_length": 40,
        "img_size": [48, 320],
        "preprocess": {"name": "ppocr", "bgr": True},
    }


@pytest.mark.parametrize("arch", ["ppocrv4_rec", "ppocrv6_rec_small"])
@pytest.mark.parametrize("width", [160, 320])
def test_encoder_gives_one_frame_per_8_pixels(arch, width):
    model = Recognizer.from_config(ppocr_config(arch))
    with torch.no_grad():
        memory = model.backbone(torch.zeros(2, 3, 48, width))
    assert memory.shape == (2, width // 8, 120)


def test_ppocr_resize_keeps_ratio_and_pads_with_zeros():
    t = PPOCRResize((48, 320), bgr=True)
    image = np.zeros((24, 96, 3), np.uint8)
    image[..., 0] = 255  # pure red in RGB
    x = t(image)
    assert x.shape == (3, 48, 320)
    # ratio 4 -> 192 columns of image, then zero padding
    assert torch.all(x[:, :, 192:] == 0)
    # BGR order: red is the last channel, normalized to +1; the others to -1
    assert torch.all(x[2, :, :192] == 1.0) and torch.all(x[0, :, :192] == -1.0)
    wide = np.zeros((10, 100, 3), np.uint8)  # ratio 10 -> the batch is 480 wide
    assert t.batch_width([image, wide]) == 480
    assert t.batch([image, wide]).shape == (2, 3, 48, 480)
    assert t.batch([image]).shape == (1, 3, 48, 320)


def test_pad_alone_cuts_batches_where_the_alone_width_changes():
    from ocrkit.models.preprocess import width_batches

    # aspect ratios 2, 8, 3, 10, 8 -> alone widths 320, 384, 320, 480, 384 (height 48)
    images = [np.zeros((10, 10 * r, 3), np.uint8) for r in (2, 8, 3, 10, 8)]
    t = PPOCRResize((48, 320))
    assert width_batches(images, t, 64) == [[0, 2, 1, 4, 3]]  # one batch, 480 wide
    t.pad_alone = True
    assert [t.group_width(im) for im in images] == [320, 384, 320, 480, 384]
    assert width_batches(images, t, 64) == [[0, 2], [1, 4], [3]]
    assert width_batches(images, t, 1) == [[0], [2], [1], [4], [3]]


def test_pad_alone_makes_a_reading_independent_of_its_batch():
    model = Recognizer.from_config(ppocr_config()).eval()
    torch.manual_seed(0)
    model.decoder.fc.weight.data.normal_(0, 1.0)  # a random head that reads something
    wide = np.random.default_rng(0).integers(0, 255, (20, 150, 3), np.uint8)  # 360 alone
    wider = np.random.default_rng(1).integers(0, 255, (10, 200, 3), np.uint8)  # 960 alone
    alone = model.predict([wide])[0]
    model.transform.pad_alone = True
    together = model.predict([wide, wider])[0]
    assert (together.text, together.confidence) == (
        alone.text,
        pytest.approx(alone.confidence, rel=1e-5),
    )


def test_collapse_greedy_drops_repeats_then_blanks():
    # frames: a a _ a b b _  (blank = 0, a = 1, b = 2)  ->  "aab"
    path = [1, 1, 0, 1, 2, 2, 0]
    probs = torch.full((1, 7, 3), 0.1)
    for t, k in enumerate(path):
        probs[0, t, k] = 0.8
    probs[0, 3, 1] = 0.6
    out = collapse_ctc(probs)
    assert out.shape == (1, 4, 3)
    assert out[0].argmax(-1).tolist() == [1, 1, 2, 0]
    tok = Tokenizer(Charset.from_string("ab"))
    decoded = tok.decode(out)[0]
    assert decoded.text == "aab"
    assert decoded.confidence == pytest.approx(0.8 * 0.6 * 0.8)  # first frame of each run


def test_ctc_loss_is_zero_free_and_flows_to_the_encoder():
    model = Recognizer.from_config(ppocr_config())
    images = torch.randn(2, 3, 48, 160)
    out = model.training_step({"images": images, "labels": ["cat", "a1"]})
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["loss"] > 0
    assert model.backbone.backbone.stem[0].weight.grad.abs().sum() > 0


def test_remap_keeps_rows_of_kept_characters_bit_identical():
    model = Recognizer.from_config(ppocr_config(charset="36"))
    old_w = model.decoder.fc.weight.detach().clone()
    old_b = model.decoder.fc.bias.detach().clone()
    target = Recognizer.from_config(ppocr_config(charset="95"))
    report = model.decoder.remap_charset(target.tokenizer)
    assert report["kept"] == 36 and len(report["new"]) == 95 - 36
    new_w, new_b = model.decoder.fc.weight, model.decoder.fc.bias
    assert new_w.shape == (96, 120)
    old_chars = Charset.preset("36").chars
    for i, c in enumerate(target.charset.chars):
        if c in old_chars:
            j = old_chars.index(c) + 1
            assert torch.equal(new_w[i + 1], old_w[j]) and torch.equal(new_b[i + 1], old_b[j])
    assert torch.equal(new_w[0], old_w[0]) and torch.equal(new_b[0], old_b[0])  # blank


def test_init_model_through_a_folder_remaps_the_head(tmp_path):
    from ocrkit.train.tasks import init_model

    source = Recognizer.from_config(ppocr_config(charset="36"))
    source.save_pretrained(tmp_path / "src")
    model = Recognizer.from_config(ppocr_config(charset="62"))
    init_model(model, {"model": str(tmp_path / "src"), "encoder_lr_scale": 0.25})
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    row_a = source.decoder.fc.weight[Charset.preset("36").index("a") + 1]
    assert torch.equal(model.decoder.fc.weight[Charset.preset("62").index("a") + 1], row_a)

    from ocrkit.train.optim import param_groups

    groups = param_groups(model, lr=1.0, weight_decay=0.0)
    scale = {n: g["lr_scale"] for g in groups for n in g["param_names"]}
    assert scale["backbone.backbone.stem.0.weight"] == 0.25
    assert scale["decoder.fc.weight"] == 1.0


def test_frozen_encoder_gets_no_gradient_and_stays_in_eval():
    model = Recognizer.from_config(ppocr_config())
    model.freeze_encoder()
    model.train()
    assert not model.backbone.training and model.decoder.training
    out = model.training_step({"images": torch.randn(2, 3, 48, 160), "labels": ["ab", "c"]})
    out["loss"].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.decoder.fc.weight.grad is not None


def test_save_load_round_trip_is_exact(tmp_path):
    model = Recognizer.from_config(ppocr_config("ppocrv6_rec_small")).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = Recognizer.from_pretrained(tmp_path / "m")
    x = torch.randn(1, 3, 48, 320)
    with torch.no_grad():
        assert torch.equal(
            model.decoder.logits(model.backbone(x)), loaded.decoder.logits(loaded.backbone(x))
        )
    assert loaded.config["preprocess"] == {"name": "ppocr", "bgr": True}


@pytest.mark.skipif(not (HAS_ONNX and HAS_ORT), reason="needs onnx and onnxruntime")
def test_onnx_export_of_a_ctc_model_reads_like_torch(tmp_path):
    from ocrkit.export.onnx import OnnxRecognizer, export_onnx

    model = Recognizer.from_config(ppocr_config()).eval()
    folder = export_onnx(model, tmp_path / "onnx")
    onnx_model = OnnxRecognizer.from_pretrained(folder, threads=1)
    images = [word_image(w) for w in WORDS] + [np.zeros((20, 300, 3), np.uint8)]
    torch_logits = model.decoder.logits(model.backbone(model.transform.batch(images[:1])))
    batch = model.transform.batch(images[:1]).numpy()
    fused_logits = onnx_model.encoder_session.run(["logits"], {"images": batch})[0]
    ort_logits = onnx_model.decoder_session.run(None, {"memory": onnx_model.encode(batch)})[0]
    assert onnx_model.fused_ctc
    assert np.abs(fused_logits - torch_logits.detach().numpy()).max() < 1e-4
    assert np.abs(ort_logits - torch_logits.detach().numpy()).max() < 1e-4
    expected = [p.text for p in model.predict(images)]
    assert [p.text for p in onnx_model.predict(images)] == expected
    # A folder exported before the CTC head joined the encoder graph: encoder, then decoder.onnx.
    meta = json.loads((folder / "onnx.json").read_text())
    meta["encoder"]["outputs"].pop("logits")
    (folder / "onnx.json").write_text(json.dumps(meta))
    old = OnnxRecognizer.from_pretrained(folder, threads=1)
    assert not old.fused_ctc and old._decoder_session is not None
    assert [p.text for p in old.predict(images)] == expected


# ---- the real weights, from the wheels ---------------------------------------------------------
WHEELS = ["rapidocr", "rapidocr-onnxruntime"]


def _wheel_onnx(package: str):
    from ocrkit.models.convert_ppocr import wheel_model_path

    try:
        return wheel_model_path(package)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def _logits_session(path):
    """The wheel's graph with the input of its final softmax exposed: the logits."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    softmax = [n for n in proto.graph.node if n.op_type == "Softmax"][-1]
    proto.graph.output.append(onnx.helper.make_tensor_value_info(softmax.input[0], 1, None))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session, softmax.input[0]


@pytest.mark.skipif(not (HAS_ONNX and HAS_ORT), reason="needs onnx and onnxruntime")
@pytest.mark.parametrize("package", WHEELS)
def test_converted_wheel_model_matches_onnxruntime(package, tmp_path):
    from ocrkit.models.convert_ppocr import convert_ppocr

    path = _wheel_onnx(package)
    folder = convert_ppocr(path, tmp_path / "model")
    assert (folder / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert "PaddleOCR" in (folder / "NOTICE").read_text()
    model = Recognizer.from_pretrained(folder)
    crops = [word_image(w) for w in ["Hello", "ocrkit", "2026"]]
    x = model.transform.batch(crops)
    session, logits_name = _logits_session(path)
    ref_probs, ref_logits = session.run(None, {session.get_inputs()[0].name: x.numpy()})[:2]
    with torch.no_grad():
        logits = model.decoder.logits(model.backbone(x)).numpy()
    # logits reach ~15: float32 rounding of two runtimes differs by ~1e-5 relative
    assert np.abs(logits - ref_logits).max() < 1e-4 * max(1.0, float(np.abs(ref_logits).max()))
    assert np.abs(torch.from_numpy(logits).softmax(-1).numpy() - ref_probs).max() < 1e-4
    # the charset is the graph's own dictionary, blank first and a space last
    assert len(model.charset) + 1 == ref_probs.shape[-1] and model.charset.chars[-1] == " "


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx")
def test_fine_tuning_a_converted_model_through_ocrkit_train(tmp_path):
    """``init.model`` (converted PP-OCRv4, head remapped to charset 62) -> trainer -> folder."""
    import cv2
    import yaml

    from ocrkit.cli import main
    from ocrkit.models.convert_ppocr import convert_ppocr

    source = convert_ppocr(_wheel_onnx("rapidocr-onnxruntime"), tmp_path / "ppocrv4")
    words = tmp_path / "words"
    (words / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(WORDS * 2):
        cv2.imwrite(str(words / "images" / f"{i}.png"), word_image(word)[:, :, ::-1])
        lines.append(f"images/{i}.png\t{word}")
    (words / "labels.tsv").write_text("\n".join(lines) + "\n")
    recipe = {
        "task": "str",
        "output": str(tmp_path / "run"),
        "model": ppocr_config(charset="62"),
        "init": {"model": str(source), "encoder_lr_scale": 0.1},
        "data": {"protocol": "cased62", "train": [str(words)], "val": {"words": str(words)}},
        "train": {"max_steps": 4, "batch_size": 4, "lr": 1e-5, "eval_every": 4, "log_every": 1,
                  "save_every": 0, "trackers": []},
    }  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml")]) == 0
    model = Recognizer.from_pretrained(tmp_path / "run" / "final")
    assert len(model.charset) == 62 and model.decoder.fc.weight.shape == (63, 120)
    assert [p.text for p in model.predict([word_image(w) for w in WORDS])] == WORDS


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx")
def test_convert_refuses_a_detector_graph_with_one_line(tmp_path, capsys):
    from ocrkit.cli import main
    from ocrkit.models.convert_ppocr import wheel_model_path

    detector = _wheel_onnx("rapidocr").parent / "PP-OCRv6_det_small.onnx"
    if not detector.is_file():
        pytest.skip("no detector in this rapidocr wheel")
    assert wheel_model_path("rapidocr").is_file()
    assert main(["convert", "ppocr", "--onnx", str(detector), "--output", str(tmp_path / "x")]) == 1
    assert "no 'character' dictionary" in capsys.readouterr().err
    assert main(["convert", "ppocr", "--onnx", str(tmp_path / "none.onnx"), "--output", "x"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_frozen_batchnorm_keeps_its_statistics_while_the_rest_trains():
    model = Recognizer.from_config(ppocr_config())
    model.freeze_batchnorm()
    model.train()
    bn = model.backbone.neck.conv1[1]
    before = bn.running_mean.clone()
    out = model.training_step({"images": torch.randn(2, 3, 48, 160), "labels": ["ab", "c"]})
    out["loss"].backward()
    assert torch.equal(bn.running_mean, before) and not bn.training
    assert model.decoder.training and bn.weight.grad is not None  # affine still trains
