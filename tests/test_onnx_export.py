"""ONNX export: graph parity with torch, OnnxRecognizer = Recognizer texts, the CLI round trip."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
import torch

from ocrkit.cli import main
from ocrkit.export import OnnxRecognizer, export_onnx
from ocrkit.models import ARDecoder, Recognizer
from ocrkit.models.checkpoint import read_folder
from ocrkit.types import Predictor

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

VIT = {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8}
SVTR = {"name": "svtrv2_small", "dims": [16, 32, 32], "depths": [1, 1, 1], "num_heads": [1, 2, 2]}
AR = {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2}
MDIFF = {"name": "mdiff", "embed_dim": 32, "depth": 1, "num_heads": 2}
CASES = {
    "vit-ar": (VIT, AR),
    "vit-mdiff": (VIT, MDIFF),
    "convstem-ar": ({**VIT, "stem": "conv"}, AR),
    "svtrv2-mdiff": (SVTR, MDIFF),
}
PREDICT = [
    ("vit-ar", {}),
    ("vit-ar", {"use_cache": False}),
    ("convstem-ar", {}),
    ("vit-mdiff", {"sampler": "low_confidence", "steps": 3}),
    ("vit-mdiff", {"sampler": "parallel", "steps": 1}),
    ("vit-mdiff", {"sampler": "low_confidence", "steps": 3, "revise": 1}),
    ("svtrv2-mdiff", {"sampler": "low_confidence", "steps": 3}),
]


def tiny(backbone: dict, decoder: dict, seed: int = 0) -> Recognizer:
    """A tiny random recognizer with weights sharp enough that texts depend on the image."""
    torch.manual_seed(seed)
    config = {"backbone": backbone, "decoder": decoder, "charset": "36", "max_length": 8}
    model = Recognizer.from_config(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.5)
    return model


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, int(rng.integers(60, 160)), 3), np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def by_case(tmp_path_factory):
    """``by_case(name) -> (model, OnnxRecognizer)``; each case is exported once per module."""
    cache: dict[str, tuple[Recognizer, OnnxRecognizer]] = {}

    def get(case: str) -> tuple[Recognizer, OnnxRecognizer]:
        if case not in cache:
            model = tiny(*CASES[case])
            directory = export_onnx(model, tmp_path_factory.mktemp(case))
            cache[case] = (model, OnnxRecognizer.from_pretrained(directory, threads=1))
        return cache[case]

    return get


@pytest.fixture(params=sorted(CASES))
def exported(request, by_case):
    return by_case(request.param)


def test_graphs_match_torch(exported):
    model, onnx_model = exported
    torch.manual_seed(1)
    x = torch.randn(3, 3, 32, 128)  # batch 3: exported with batch 2
    with torch.no_grad():
        memory = model.backbone(x)
        got = onnx_model.encode(x.numpy())
        assert np.abs(got - memory.numpy()).max() < 1e-4
        decoder = model.decoder
        full = decoder.max_length + 1
        lengths = (1, 4, full) if isinstance(decoder, ARDecoder) else (full,)
        for t in lengths:
            tokens = torch.randint(0, model.tokenizer.vocab_size, (3, t))
            expected = decoder.token_logits(memory, tokens)
            logits = onnx_model.network(memory, tokens)
            assert logits.shape == expected.shape
            assert (logits - expected).abs().max().item() < 1e-4


@pytest.mark.parametrize(("case", "options"), PREDICT, ids=lambda v: str(v))
def test_predict_matches_torch(by_case, case, options):
    model, onnx_model = by_case(case)
    calls = {"network": 0, "step": 0}
    network, steps = onnx_model.network, onnx_model.cached_steps
    onnx_model.network = lambda m, t: calls.__setitem__("network", 1) or network(m, t)
    if steps is not None:
        step = steps.step_logits
        steps.step_logits = lambda *a: calls.__setitem__("step", 1) or step(*a)
    try:
        batch = images(5)
        expected = model.predict(batch, batch_size=5, **options)
        got = onnx_model.predict(batch, batch_size=3, **options)
    finally:
        del onnx_model.network
        if steps is not None:
            del steps.step_logits
    # AR decodes with the exported key/value-cached step graph unless use_cache=False.
    cached = isinstance(model.decoder, ARDecoder) and options.get("use_cache", True)
    assert calls == {"network": int(not cached), "step": int(cached)}
    assert [p.text for p in got] == [p.text for p in expected]
    assert len({p.text for p in expected}) > 1  # texts depend on the image
    for a, b in zip(got, expected):
        assert a.confidence == pytest.approx(b.confidence, rel=1e-3, abs=1e-7)


def test_folder_contents(tmp_path):
    model = tiny(VIT, AR).train()
    saved = model.save_pretrained(tmp_path / "torch")
    out = export_onnx(str(saved), tmp_path / "onnx")  # from a folder
    export_onnx(model, tmp_path / "onnx2", opset=18)
    assert model.training  # the mode is restored
    names = {p.name for p in out.iterdir()}
    assert {"encoder.onnx", "decoder.onnx", "config.json", "charset.json", "onnx.json"} <= names
    assert "model.safetensors" not in names
    assert read_folder(out) == read_folder(saved)
    meta = json.loads((out / "onnx.json").read_text())
    assert meta["opset"] == 17 and meta["exporter"] == "torchscript"
    assert meta["encoder"]["inputs"] == {"images": ["batch", 3, 32, 128]}
    assert meta["decoder"]["inputs"]["tokens"] == ["batch", "length"]
    assert meta["decoder"]["outputs"]["logits"] == ["batch", "length", 37]
    assert max(meta["max_abs_diff"].values()) < 1e-4
    assert {"torch_version", "onnx_version", "ocrkit_version"} <= set(meta)
    assert json.loads((tmp_path / "onnx2" / "onnx.json").read_text())["opset"] == 18
    # AR also gets the key/value-cached step graphs, with their dynamic prefix length.
    assert {"decoder_memory.onnx", "decoder_step.onnx"} <= names
    step = meta["cached_steps"]["decoder_step"]
    assert step["inputs"]["past_k"] == [1, "batch", 2, "length", 16]
    assert step["outputs"]["step_logits"] == ["batch", 1, 37]


def test_cached_step_graph_matches_torch(by_case):
    model, onnx_model = by_case("vit-ar")
    torch.manual_seed(2)
    decoder = model.decoder
    with torch.no_grad():
        memory = model.backbone(torch.randn(3, 3, 32, 128))
        mem_k, mem_v = decoder.memory_keys_values(memory)
        got_k, got_v = onnx_model.cached_steps.memory_keys_values(memory)
        assert (got_k - mem_k).abs().max() < 1e-4 and (got_v - mem_v).abs().max() < 1e-4
        for length in (0, 3):  # the first step has an empty cache
            past = torch.randn(1, 3, 2, length, 16)
            args = (torch.randint(0, 37, (3, 1)), torch.tensor([length]), mem_k, mem_v, past, past)
            for got, want in zip(
                onnx_model.cached_steps.step_logits(*args), decoder.step_logits(*args)
            ):
                assert got.shape == want.shape and (got - want).abs().max() < 1e-4


def test_mdiff_export_has_no_step_graphs(by_case):
    _, onnx_model = by_case("vit-mdiff")
    assert onnx_model.cached_steps is None and "cached_steps" not in onnx_model.meta


def test_predictor_and_recognize_inputs(by_case, tmp_path):
    from PIL import Image

    model, onnx_model = by_case("vit-ar")
    assert isinstance(onnx_model, Predictor)
    image = images(1)[0]
    cv2.imwrite(str(tmp_path / "w.png"), image[:, :, ::-1])
    one = onnx_model.recognize(image)
    assert len(one) == 1 and one[0].text == model.recognize(image)[0].text
    many = onnx_model.recognize([str(tmp_path / "w.png"), Image.fromarray(image), image])
    assert [p.text for p in many] == [one[0].text] * 3
    assert onnx_model.predict([]) == []
    skipped = onnx_model.recognize([tmp_path / "absent.png", image])  # skipped, the rest read
    assert [p.text for p in skipped] == ["", one[0].text] and skipped[0].error


def test_missing_onnxruntime_is_a_clear_error(tmp_path, monkeypatch):
    directory = export_onnx(tiny(VIT, AR), tmp_path / "m", verify=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'ocrkit\[onnx\]'"):
        OnnxRecognizer.from_pretrained(directory)


def test_cli_round_trip(tmp_path, capsys):
    saved = tiny(VIT, AR).save_pretrained(tmp_path / "model")
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    lines = []
    for i, image in enumerate(images(3)):
        cv2.imwrite(str(root / "images" / f"{i}.png"), image[:, :, ::-1])
        lines.append(f"images/{i}.png\tword")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths = [str(root / "images" / f"{i}.png") for i in range(3)]
    out = tmp_path / "onnx"

    assert main(["export", "onnx", "--model", str(saved), "--output", str(out)]) == 0
    assert "max abs difference" in capsys.readouterr().out

    def recognize(*source: str) -> list[dict]:
        assert main(["recognize", *source, "--json", *paths]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    torch_out = recognize("--model", str(saved))
    onnx_out = recognize("--onnx", str(out))
    assert [r["text"] for r in onnx_out] == [r["text"] for r in torch_out]
    short = ("--decode", "use_cache=false", "--decode", "max_length=3")
    uncached = recognize("--onnx", str(out), *short)
    assert [r["text"] for r in uncached] == [
        r["text"] for r in recognize("--model", str(saved), *short)
    ]
    assert main(["recognize", "--onnx", str(out), paths[0], "--decode", "samplr=x"]) == 1
    assert "does not accept" in capsys.readouterr().err

    def evaluate(*source: str) -> list[str]:
        samples = tmp_path / f"samples-{source[0].strip('-')}.tsv"
        assert main(["eval", *source, "--data", str(root), "--samples", str(samples)]) == 0
        rows = samples.read_text(encoding="utf-8").splitlines()
        return [row.rsplit("\t", 1)[0] for row in rows]  # all but the confidence (rounded)

    assert evaluate("--onnx", str(out)) == evaluate("--model", str(saved))
    with pytest.raises(SystemExit):
        main(["recognize", "--model", str(saved), "--onnx", str(out), paths[0]])
    with pytest.raises(SystemExit):
        main(["export", "onnx", "--help"])
    assert "encoder.onnx" in capsys.readouterr().out


@pytest.mark.slow  # the torch.export-based exporter takes seconds even on tiny models
def test_dynamo_exporter(tmp_path):
    pytest.importorskip("onnxscript")
    model = tiny(VIT, AR)
    directory = export_onnx(model, tmp_path, dynamo=True)
    meta = json.loads((directory / "onnx.json").read_text())
    assert meta["exporter"] == "dynamo" and meta["opset"] >= 18
    onnx_model = OnnxRecognizer.from_pretrained(directory, threads=1)
    batch = images(4)
    got, expected = onnx_model.predict(batch, batch_size=3), model.predict(batch)
    assert [p.text for p in got] == [p.text for p in expected]
