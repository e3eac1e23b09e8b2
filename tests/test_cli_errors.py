"""User mistakes give one clear line, not a traceback; a bad input among good ones is skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocrkit.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"ocrkit {command}: error: "), err
    return err


@pytest.fixture
def inputs(tmp_path):
    """A folder with two good crops (one in a subfolder), a non-image and an empty file."""
    folder = tmp_path / "crops"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(EXAMPLES / "word1.png", folder / "a.png")
    shutil.copy(EXAMPLES / "word2.png", folder / "sub" / "b.png")
    (folder / "bad.png").write_text("not an image")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    return folder


def test_recognize_reads_folders_and_globs_and_skips_bad_files(inputs, capsys):
    glob = str(EXAMPLES / "word3.*")
    rc = main(["recognize", str(inputs), glob, str(inputs / "missing.png"), "nothing/*.png"])
    out, err = capsys.readouterr()
    assert rc == 1
    read = {Path(line.split("\t")[0]).name: line.split("\t")[1] for line in out.splitlines()}
    assert read == {"a.png": "Hello", "b.png": "World", "word3.jpg": "ocrkit"}
    skipped = [line for line in err.splitlines() if ": skipped " in line]
    assert len(skipped) == 4
    assert any("bad.png: not a decodable image" in line for line in skipped)
    assert any("empty.jpg: empty image data" in line for line in skipped)
    assert any("missing.png: no such file or folder" in line for line in skipped)
    assert any("nothing/*.png: no file matches this pattern" in line for line in skipped)
    assert err.splitlines()[-1] == "ocrkit recognize: read 3 images, skipped 4"


def test_recognize_all_good_exits_zero_and_nothing_to_read_is_one_line(capsys, tmp_path):
    assert main(["recognize", "--json", str(EXAMPLES / "word1.png")]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "Hello"
    (tmp_path / "empty").mkdir()
    assert main(["recognize", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"ocrkit recognize: skipped {tmp_path / 'empty'}: folder has no image files "
        "(.jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp, .gif)",
        "ocrkit recognize: error: no image to read",
    ]


def test_device_cuda_without_a_gpu_is_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["recognize", "--device", "cuda", str(EXAMPLES / "word1.png")]) == 1
    assert "torch sees no CUDA GPU here; use --device cpu" in one_line_error(capsys, "recognize")
    assert main(["recognize", "--device", "cuda:x", str(EXAMPLES / "word1.png")]) == 1
    assert "--device cuda:x" in one_line_error(capsys, "recognize")


def test_onnx_device_cuda_without_the_provider_is_one_line(capsys, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    argv = ["recognize", "--onnx", str(tmp_path), "--device", "cuda", str(EXAMPLES / "word1.png")]
    assert main(argv) == 1
    assert "no CUDAExecutionProvider" in one_line_error(capsys, "recognize")


def test_a_folder_or_file_where_the_other_is_needed_is_one_line(capsys):
    assert main(["recognize", "--model", str(EXAMPLES / "word1.png"), str(EXAMPLES)]) == 1
    assert "is not a recognizer folder" in one_line_error(capsys, "recognize")
    argv = ["anchor", str(EXAMPLES), "--query", "x", "--demo-tiny", "qwen2_5_vl"]
    assert main(argv) == 1
    assert "is a folder; this command reads one image file" in one_line_error(capsys, "anchor")


def test_anchor_on_a_non_image_is_one_line_before_any_model_loads(capsys, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    argv = ["anchor", str(text), "--query", "x", "--demo-tiny", "no_such_family"]
    assert main(argv) == 1
    assert f"cannot read {text} as an image" in one_line_error(capsys, "anchor")


def test_tabench_qmask_engine_without_a_model_is_one_line(capsys, tmp_path):
    lines = []
    for i in range(3):
        Image.new("RGB", (120, 40), "white").save(tmp_path / f"{i}.png")
        words = [{"text": f"w{i}", "box": [0, 0, 20, 10]}, {"text": "ab", "box": [30, 0, 50, 10]}]
        lines.append(json.dumps({"image": f"{i}.png", "category": "toy", "instances": words}))
    (tmp_path / "ann.jsonl").write_text("\n".join(lines) + "\n")
    bench = tmp_path / "bench.jsonl"
    argv = ["tabench", "build", "--jsonl", str(tmp_path / "ann.jsonl"), "--out", str(bench)]
    assert main(argv) == 0 and bench.read_text().strip()
    capsys.readouterr()
    argv = ["tabench", "run", "--bench", str(bench), "--engine", "qmask", "--out", "p.jsonl"]
    assert main(argv) == 1
    err = one_line_error(capsys, "tabench")
    assert "--engine qmask needs --engine-opt model=..." in err


def test_viz_attention_titles_fit_the_figure():
    from ocrkit.viz.attention import attention_figure

    images = [np.full((32, 128, 3), 255, np.uint8)]
    maps = [[np.full((2, 8), 1 / 16, np.float32)]]
    long = "runs/pretrain/a-very-long-experiment-name-that-goes-on/final"
    fig = attention_figure(images, maps, [long], (1, 3), titles=["an_extremely_long_word_key.png"])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text")) if a_text(t)]
    assert len(texts) >= 4  # suptitle, image title, encoder title, peak label
    for t in texts:
        extent = t.get_window_extent(renderer)
        assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1, t.get_text()
        assert extent.y0 >= box.y0 - 1 and extent.y1 <= box.y1 + 1, t.get_text()


def a_text(artist) -> bool:
    text = artist.get_text()
    return isinstance(text, str) and bool(text.strip()) and artist.get_visible()


def test_viz_attention_on_a_folder_is_one_line(capsys, tmp_path):
    argv = ["viz", "attention", "--encoder", str(tmp_path), "--images", str(EXAMPLES)]
    assert main(argv) == 1
    assert "is a folder; this command reads one image file" in one_line_error(capsys, "viz")


def test_viz_attention_skips_an_unreadable_image(capsys, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    out = tmp_path / "a.png"
    argv = ["viz", "attention", "--encoder", "tiny", "--images", str(EXAMPLES / "word1.png")]
    assert main([*argv, str(bad), "--out", str(out)]) == 1  # drawn, but the run is flagged
    err = capsys.readouterr().err
    assert out.is_file() and f"skipped: cannot read {bad} as an image" in err


def test_viz_attention_names_a_missing_encoder(capsys, tmp_path):
    image = str(EXAMPLES / "word1.png")
    argv = ["viz", "attention", "--encoder", str(tmp_path / "nope"), "--images", image]
    assert main(argv) == 1
    assert f"{tmp_path / 'nope'} does not exist" in one_line_error(capsys, "viz")


def test_a_closed_output_pipe_ends_quietly():
    # `ocrkit ... | head -1`: the reader has gone before ocrkit writes; no error, no traceback
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "ocrkit", "data", "inspect", str(EXAMPLES / "labels.tsv")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert "error" not in err.lower() and "Traceback" not in err, err
