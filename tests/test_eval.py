"""Evaluator, reports and perturbations on hand-computed cases."""

import json
from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from ocrkit.cli import main
from ocrkit.eval import (
    PerturbedPredictor,
    area_split,
    evaluate,
    evaluate_predictions,
    shrink_pad,
    split_by_area,
)
from ocrkit.types import Prediction, Sample


class ListSet:
    """An in-memory set: images of given sizes with labels; ``None`` stands for a corrupt image."""

    def __init__(self, items):
        self.items = items
        self.dropped = Counter()

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        item = self.items[i]
        if item is None:
            return None
        (h, w), label = item
        return Sample(np.full((h, w, 3), i, np.uint8), label, f"images/{i}.jpg")


class KeyedPredictor:
    """Answers from a table indexed by the image's fill value (its index in the set)."""

    def __init__(self, answers):
        self.answers = answers
        self.seen_shapes = []

    def predict(self, images):
        self.seen_shapes.extend(im.shape for im in images)
        return [Prediction(*self.answers[int(im.max())]) for im in images]


def test_evaluate_hand_computed_with_skips_and_drops():
    data = ListSet(
        [
            ((10, 40), "Hello"),  # predicted "HELLO!" -> correct under parseq36
            ((10, 40), "world"),  # predicted "word" -> wrong, NED 1/5
            None,  # corrupt image: skipped, counted
            ((10, 40), "x" * 30),  # too long: read (batches stay protocol-free), never scored
            ((10, 40), "..."),  # empty after normalization: read, never scored
        ]
    )
    predictor = KeyedPredictor({0: ("HELLO!", 0.8), 1: ("word", 0.4), 3: ("x", 0.1), 4: ("", 0)})
    # by default the corrupt image scores as wrong (this set cannot name its label: NED 1)
    full = evaluate(predictor, {"toy": data}, "parseq36", batch_size=2).sets["toy"]
    assert (full.samples, full.correct) == (3, 1)
    assert len(predictor.seen_shapes) == 4  # every readable crop, dropped labels too
    assert full.one_minus_ned == pytest.approx(100 * (1 - (0.2 + 1.0) / 3))
    report = evaluate(predictor, {"toy": data}, "parseq36", batch_size=2, exclude_unreadable=True)
    m = report.sets["toy"]
    assert (m.samples, m.correct) == (2, 1)
    assert m.accuracy == pytest.approx(50.0)
    assert m.one_minus_ned == pytest.approx(100 * (1 - 0.2 / 2))
    assert m.mean_confidence == pytest.approx(0.6)
    assert report.skipped["toy"] == 1
    assert report.dropped["toy"] == Counter({"too_long": 1, "empty_after_normalization": 1})
    d = report.to_dict()
    assert d["protocol"] == "parseq36"
    assert d["sets"]["toy"]["accuracy"] == pytest.approx(50.0)
    assert d["combined"]["samples"] == 2
    table = report.format_table()
    assert "parseq36" in table and "1 unreadable images excluded" in table
    # the same predictions under the case-sensitive protocol: "HELLO" != "Hello"
    cased = evaluate(predictor, {"toy": data}, "cased62")
    assert cased.sets["toy"].correct == 0


class BatchRecorder(KeyedPredictor):
    """Also records each ``predict`` call's widths, as a variable-width model would pad them."""

    def __init__(self, answers):
        super().__init__(answers)
        self.batches = []

    def predict(self, images):
        self.batches.append([im.shape[1] for im in images])
        return super().predict(images)


def test_evaluate_reads_a_set_in_aspect_ratio_order_whatever_its_order():
    """Batches are cut from the set in width order (a padded batch then holds similar crops, as
    ``Recognizer.predict`` and the PP-OCR pipelines read a list), scores land on the right keys,
    and a reordered set gives the same batches."""
    widths = [50, 10, 40, 20, 60, 30]
    data = ListSet([((10, w), f"w{w}") for w in widths] + [None])
    answers = {i: (f"w{w}", 1.0) if w != 40 else ("nope", 0.5) for i, w in enumerate(widths)}
    recorder = BatchRecorder(answers)
    report = evaluate(recorder, {"s": data}, "raw", batch_size=4)
    assert recorder.batches == [[10, 20, 30, 40], [50, 60]]
    m = report.sets["s"]
    assert (m.samples, m.correct, report.skipped["s"]) == (7, 5, 1)
    wrong = [r.key for r in report.samples if not r.correct]
    assert wrong[0] == "images/2.jpg"  # the 40-wide crop (the unreadable one is counted above)
    shuffled = ListSet([((10, w), f"w{w}") for w in reversed(widths)])
    again = BatchRecorder({5 - i: a for i, a in answers.items()})
    evaluate(again, {"s": shuffled}, "raw", batch_size=4)
    assert again.batches == recorder.batches


def test_evaluate_predictions_missing_counts_as_empty():
    data = ListSet([((8, 8), "abc"), ((8, 8), "de")])
    preds = {"toy": {"images/0.jpg": ("ABC", 1.0)}}
    report = evaluate_predictions(preds, {"toy": data}, "parseq36")
    assert report.sets["toy"].correct == 1
    assert report.missing["toy"] == 1
    assert report.sets["toy"].one_minus_ned == pytest.approx(50.0)


def test_split_by_area_and_subset_scoring():
    assert split_by_area([50, 10, 30, 20]) == ([1, 3], [0, 2])
    assert split_by_area([5, 5, 5]) == ([0], [1, 2])
    data = ListSet([((10, 10), "a"), ((20, 20), "b"), ((5, 5), "c"), ((30, 30), "d")])
    halves = area_split(data)
    assert halves == {"small": [0, 2], "large": [1, 3]}


def test_shrink_pad_geometry():
    image = np.full((32, 128, 3), 200, np.uint8)
    out = shrink_pad(image, 0.5)
    assert out.shape == image.shape
    ys, xs = np.nonzero(out[..., 0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (8, 23, 32, 95)
    top = shrink_pad(image, 0.5, anchor="topleft")
    assert top[:16, :64].min() == 200 and top[16:].max() == 0 and top[:, 64:].max() == 0
    with pytest.raises(ValueError):
        shrink_pad(image, 0.0)


def test_perturbed_predictor_sees_shrunk_images():
    inner = KeyedPredictor({0: ("a", 1.0)})
    PerturbedPredictor(inner, lambda im: cv2.resize(im, (4, 2))).predict([np.zeros((8, 8, 3))])
    assert inner.seen_shapes == [(2, 4, 3)]


def _write_set(root, labels):
    (root / "images").mkdir(parents=True)
    lines = []
    for i, label in enumerate(labels, 1):
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.full((16, 16 * i, 3), 255, np.uint8))
        lines.append(f"images/{i}.png\t{label}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_cli_eval_predictions_contract(tmp_path, capsys):
    """The documented contract: --predictions PRED.tsv --data DIR... --protocol --json OUT."""
    _write_set(tmp_path / "setA", ["Apple", "Pear", "plum"])
    _write_set(tmp_path / "setB", ["Kiwi"])
    pred = tmp_path / "pred.tsv"
    pred.write_text("setA/images/1.png\tAPPLE\nsetA/images/2.png\tpeer\tbad\n", encoding="utf-8")
    # a malformed confidence is a clear error (exit 1), not a traceback
    assert main(["eval", "--predictions", str(pred), "--data", str(tmp_path / "setA")]) == 1
    pred.write_text(
        "setA/images/1.png\tAPPLE\nsetA/images/2.png\tpeer\nsetA/images/3.png\tplum\t0.5\n"
        f"{tmp_path / 'setB' / 'images' / '1.png'}\tkiwi\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.json"
    rc = main(
        ["eval", "--predictions", str(pred), "--data", str(tmp_path / "setA"),
         str(tmp_path / "setB"), "--protocol", "parseq36", "--json", str(out),
         "--samples", str(tmp_path / "s.tsv"), "--split-by-area"]
    )  # fmt: skip
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "parseq36"
    assert result["sets"]["setA"]["samples"] == 3
    assert result["sets"]["setA"]["accuracy"] == pytest.approx(200 / 3, abs=1e-3)
    assert result["sets"]["setA"]["ned"] == pytest.approx(100 * (1 - 0.25 / 3), abs=1e-3)
    assert result["sets"]["setB"]["accuracy"] == 100.0
    assert result["combined"]["samples"] == 4 and result["combined"]["correct"] == 3
    # only image 3 of setA came with a confidence: the mean is over it, setB has none
    assert result["sets"]["setA"]["confidence"] == 0.5
    assert result["sets"]["setB"]["confidence"] is None
    assert result["combined"]["confidence"] == 0.5
    # area halves of setA: image 1 (smallest) is small; images 2, 3 large
    assert result["sets"]["setA:small"]["samples"] == 1
    assert result["sets"]["setA:large"]["correct"] == 1
    assert "parseq36" in capsys.readouterr().out
    assert (
        len((tmp_path / "s.tsv").read_text().splitlines()) == 1 + 3 + 1 + 1 + 2 + 1
    )  # header, A, B, A:small, A:large, B:large
    rows = [line.split("\t") for line in (tmp_path / "s.tsv").read_text().splitlines()]
    assert rows[0][6:8] == ["correct", "norm_edit_distance"]
    peer = next(r for r in rows if r[0] == "setA" and r[3] == "peer")  # 'pear': 1 of 4 wrong
    assert peer[6:9] == ["0", "0.2500", ""]  # no confidence given: an empty field


def test_fig4_training_corpus_uses_the_same_shrink_pad(tmp_path):
    """``data.shrink_pad: 0.5`` trains on exactly what ``--shrink 0.5`` evaluates (MNSP Fig. 4)."""
    import ocrkit.data.transforms as transforms
    from ocrkit.data import StrTransform
    from ocrkit.eval import perturb
    from ocrkit.train.tasks import build_str_data

    assert perturb.shrink_pad is transforms.shrink_pad  # one function, shared
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "0.png"), np.full((8, 16, 3), 200, np.uint8))
    (tmp_path / "labels.tsv").write_text("images/0.png\tab\n")
    train, _ = build_str_data(
        {"data": {"train": [str(tmp_path)], "shrink_pad": 0.5}}, (8, 16), 0, 0
    )
    got = train[0].image
    # by hand: the 4x8 shrunk copy sits at rows 2-5, columns 4-11 of a black 8x16 canvas
    raw = np.zeros((8, 16, 3), np.uint8)
    raw[2:6, 4:12] = 200
    assert torch.equal(got, StrTransform((8, 16))(raw))
    plain, _ = build_str_data({"data": {"train": [str(tmp_path)]}}, (8, 16), 0, 0)
    assert torch.equal(plain[0].image, StrTransform((8, 16))(np.full((8, 16, 3), 200, np.uint8)))
    np.random.seed(0)
    half = transforms.ShrinkPad(0.5, p=0.5)
    hits = [half(np.full((8, 16, 3), 200, np.uint8))[0, 0, 0] == 0 for _ in range(2000)]
    assert np.mean(hits) == pytest.approx(0.5, abs=0.04)
    with pytest.raises(Exception, match="data.shrink_pad"):
        build_str_data({"data": {"train": [str(tmp_path)], "shrink_pad": 2.0}}, (8, 16), 0, 0)
