"""Page OCR end to end with the real detector (rapidocr wheel) and the embedded recognizer."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from ocr_helpers import box_iou, needs_detector, render_page

from ocrkit.data.image_io import encode_image, read_image

pytestmark = needs_detector


@pytest.fixture(scope="module")
def reader():
    from ocrkit.ocr import PageReader, TextDetector

    return PageReader("default", TextDetector(threads=1))


def test_reads_the_rendered_page_in_reading_order(reader) -> None:
    image, boxes = render_page()
    page = reader(image)
    assert [line.text for line in page.lines] == ["HELLO", "WORLD", "OCRKIT"]
    assert [line.row for line in page.lines] == [0, 0, 1]
    assert page.text == "HELLO WORLD\nOCRKIT"
    for line in page.lines:
        assert box_iou(line.box, boxes[line.text]) > 0.5
        assert len(line.polygon) == 4 and 0.5 <= line.confidence <= 1.0
        assert [w.text for w in line.words] == [line.text]


def test_detector_matches_the_wheel_on_the_same_image() -> None:
    """ocrkit's post-processing against the wheel's own TextDetector (pyclipper unclip)."""
    pytest.importorskip("pyclipper")
    from rapidocr import RapidOCR

    from ocrkit.ocr import TextDetector
    from ocrkit.ocr.postprocess import WHEEL_DB

    image, _ = render_page()
    ours, _ = TextDetector(db=WHEEL_DB, threads=1)(image)  # the wheel's own parameters
    params = {"Global.log_level": "error", "EngineConfig.onnxruntime.intra_op_num_threads": 1}
    theirs = RapidOCR(params=params)._load_det_model()(np.ascontiguousarray(image[..., ::-1]))
    key = lambda b: (np.mean(b, 0)[1] // 50, np.mean(b, 0)[0])  # noqa: E731  rows 50 px apart
    a = np.array(sorted(ours.tolist(), key=key))
    b = np.array(sorted(np.asarray(theirs.boxes).tolist(), key=key))
    assert a.shape == b.shape == (3, 4, 2)
    assert np.abs(a - b).max() <= 1.0  # shapely vs pyclipper rounding


def test_read_export_takes_paths_and_arrays(tmp_path) -> None:
    import ocrkit

    image, _ = render_page()
    path = tmp_path / "page.png"
    path.write_bytes(encode_image(image, ".png"))
    pages = ocrkit.read([str(path), read_image(path)], threads=1)
    assert [p.path for p in pages] == [str(path), None]
    assert pages[0].text == pages[1].text == "HELLO WORLD\nOCRKIT"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One ``ocrkit read --json --draw`` over a good image, a broken one and a missing one."""
    from ocrkit.cli import main

    folder = tmp_path_factory.mktemp("read")
    image, _ = render_page()
    good = folder / "page.png"
    good.write_bytes(encode_image(image, ".png"))
    bad = folder / "broken.jpg"
    bad.write_bytes(encode_image(image, ".jpg")[:300])  # truncated JPEG
    args = ["read", str(bad), str(good), str(folder / "missing.png"), "--json"]
    args += ["--draw", str(folder / "drawn"), "--threads", "1"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue(), folder


def test_bad_images_are_reported_and_skipped(cli_run) -> None:
    code, out, err, folder = cli_run
    assert code == 1
    lines = err.strip().splitlines()
    assert any("broken.jpg" in ln and "truncated JPEG" in ln for ln in lines)
    assert any("missing.png" in ln and "no such file" in ln.lower() for ln in lines)
    assert lines[-1] == "ocrkit read: 2 of 3 images could not be read"
    assert [json.loads(ln)["path"] for ln in out.splitlines()] == [str(folder / "page.png")]


def test_json_schema(cli_run) -> None:
    _, out, _, _ = cli_run
    record = json.loads(out.splitlines()[0])
    assert set(record) == {"path", "width", "height", "text", "lines"}
    assert (record["width"], record["height"]) == (560, 220)
    assert record["text"] == "HELLO WORLD\nOCRKIT"
    for line in record["lines"]:
        assert set(line) == {"text", "confidence", "polygon", "box", "det_score", "row", "words"}
        assert np.asarray(line["polygon"]).shape == (4, 2) and len(line["box"]) == 4
        assert isinstance(line["row"], int) and 0 <= line["det_score"] <= 1
        for word in line["words"]:
            assert set(word) == {"text", "confidence", "polygon", "box"}


def test_draw_writes_the_annotated_image(cli_run) -> None:
    _, _, _, folder = cli_run
    drawn = read_image(folder / "drawn" / "page.png")
    original, boxes = render_page()
    assert drawn.shape == original.shape
    assert (drawn != original).any(axis=2).sum() > 500  # red outlines and labels


def test_folders_and_glob_patterns_are_expanded(cli_run, tmp_path) -> None:
    """A folder holding page.png and broken.jpg: both found, the broken one skipped."""
    import shutil

    from ocrkit.cli import main

    source = cli_run[3]
    folder = tmp_path / "pages"
    folder.mkdir()
    for name in ("page.png", "broken.jpg"):
        shutil.copy(source / name, folder / name)
    for target in (str(folder), str(folder / "*.png")):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["read", target, "--json", "--threads", "1"])
        paths = [json.loads(ln)["path"] for ln in out.getvalue().splitlines()]
        assert paths == [str(folder / "page.png")]
        assert code == (1 if target == str(folder) else 0)  # the folder also has broken.jpg


def test_an_unreadable_image_gets_an_empty_page_and_the_rest_is_read(reader, tmp_path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    image, _ = render_page()
    missing, broken, good = reader.read([tmp_path / "absent.jpg", bad, image])
    assert missing.error.startswith("FileNotFoundError") and missing.lines == []
    assert broken.error.startswith("CorruptImageError") and broken.path == str(bad)
    assert broken.to_dict()["error"] == broken.error and "error" not in good.to_dict()
    assert good.error is None and good.text == "HELLO WORLD\nOCRKIT"
    with pytest.raises(ValueError, match="not a decodable image"):
        reader.read([bad, image], on_error="raise")
