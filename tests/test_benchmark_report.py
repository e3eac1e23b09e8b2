"""benchmarks/report.py: row parsing, scoring, the Markdown table and a tiny end-to-end run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from bench_scripts import benchmark_script
from word_fixtures import word_image, write_word_set

from ocrkit.cli import CliError
from ocrkit.text.metrics import normalized_edit_distance
from ocrkit.types import Prediction, Sample

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "backbone": {"name": "vit_tiny", "depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "charset": "36",
}
WORDS = ["cat", "Dog", "sun", "a1b2"]

try:
    import ocrkit.export.onnx  # noqa: F401

    HAVE_ONNX = True
except ImportError:
    HAVE_ONNX = False


@pytest.fixture(scope="module")
def report():
    with benchmark_script("report") as module:
        yield module


@pytest.fixture(scope="module")
def measure(report):
    """``benchmarks/report_measure.py``, as ``report`` imported it."""
    return sys.modules["report_measure"]


class FakeSet:
    """Keys, labels and images in memory; ``None`` marks an unreadable image."""

    def __init__(self, labels, unreadable=()):
        self.keys = [f"{i}.png" for i in range(len(labels))]
        self.labels = list(labels)
        self.unreadable = set(unreadable)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        if i in self.unreadable:
            return None
        return Sample(word_image(self.labels[i]), self.labels[i], self.keys[i])


def test_parse_row_and_data(report):
    row = report.parse_row("mdiff-1pass=runs/x/final@sampler=parallel,steps=1")
    assert (row.name, row.path, row.options) == (
        "mdiff-1pass",
        "runs/x/final",
        {"sampler": "parallel", "steps": 1},
    )
    assert report.parse_row("ar=runs/a@use_cache=false,temperature=0.5").options == {
        "use_cache": False,
        "temperature": 0.5,
    }
    assert report.parse_row("default").path is None
    assert report.parse_row("runs/str/best").name == "best"
    with pytest.raises(CliError):
        report.parse_row("x=runs/a@steps")
    assert report.parse_data("svt=../d/svt_test") == ("svt", "../d/svt_test")
    assert report.parse_data("../d/iiit5k_test/") == ("iiit5k_test", "../d/iiit5k_test/")


def test_scoring_and_table_by_hand(report):
    truth = {"cat": "cat", "Dog": "dog", "sun": "sun", "a1b2": "xx"}  # label -> prediction

    def fake_predict(images):
        # the word images are drawn from the labels; recover them by comparing pixels
        out = []
        for image in images:
            label = next(w for w in WORDS if (word_image(w) == image).all())
            out.append(Prediction(truth[label], 0.5))
        return out

    data = {"a": FakeSet(WORDS), "b": FakeSet(WORDS, unreadable={3})}
    predictions, unreadable = report.predict_sets(fake_predict, data)
    assert unreadable == {"a": [], "b": ["3.png"]}
    assert predictions["a"]["1.png"] == ("dog", 0.5)
    acc = report.score(predictions, data, unreadable)
    a36, a62 = acc["parseq36"]["sets"]["a"], acc["cased62"]["sets"]["a"]
    assert (a36["samples"], a36["correct"], a36["accuracy"]) == (4, 3, 75.0)
    assert (a62["correct"], a62["accuracy"]) == (2, 50.0)  # "dog" != "Dog" with case
    assert a36["ned"] == 75.0  # 1 - mean(0, 0, 0, 4/4)
    b36 = acc["parseq36"]["sets"]["b"]
    assert (b36["samples"], b36["correct"], b36["skipped_images"]) == (3, 3, 1)
    combined = acc["parseq36"]["combined"]
    assert (combined["samples"], combined["correct"]) == (7, 6)

    row = {"name": "fake", "backend": "pytorch", "decode": "steps=1", "charset": "36"}
    row |= {"params_m": 1.5, "accuracy": acc, "error": None}
    row["speed"] = {"latency_b1_s": 0.0123, "throughput_b64": 456.78, "batch": 64}
    failed = {"name": "fake", "backend": "onnx", "error": "RuntimeError: no"}
    result = {
        "date": "2025-01-01", "command": "python benchmarks/report.py --x", "hardware": "cpu",
        "threads": 2, "repeats": 3, "limit": None, "load_average": 0.1,
        "versions": {"torch": "9"}, "protocols": {"parseq36": "p36", "cased62": "c62"},
        "datasets": {n: {"path": n, "samples": 4, "dropped": {}} for n in data},
        "speed_images": {"set": "a", "unique": 4, "batch": 64},
        "rows": [row, failed], "notes": ["hello"],
    }  # fmt: skip
    md = report.build_markdown(result, "img/plot.png")
    assert "| model | backend | decode | charset | a parseq36 | a cased62 | a 1-NED |" in md
    assert "combined parseq36 | combined cased62 | combined 1-NED |" in md
    # a: 75 / 50 / 75; b: 100 / 66.67 / 100; combined 6/7, 4/7, 1 - 1/7
    assert "| fake | pytorch | steps=1 | 36 | 75.00 | 50.00 | 75.00 | 100.00 | 66.67 |" in md
    assert "| 85.71 | 57.14 | 85.71 |" in md
    assert "| fake | pytorch | steps=1 | 1.50 | 12.3 | 456.8 | 1.00x | 1.00x |" in md
    assert "The reference (ref) is `fake` (pytorch)" in md

    # a carried row: its ratios use the reference of its own run (2x its latency, half its rate)
    reference = {"name": "old", "backend": "pytorch"}
    reference["speed"] = {"latency_b1_s": 0.0246, "throughput_b64": 228.39, "batch": 64}
    origin = {"date": "2024-12-31T10:00:00", "command": "python benchmarks/report.py --old"}
    origin |= {"hardware": "Old CPU, 2 logical cores, 2 threads", "threads": 2}
    carried = {**row, "name": "gone", "carried": {**origin, "reference": reference}}
    later = report.build_markdown({**result, "rows": [row, carried]}, None)
    assert "| gone † | pytorch | steps=1 | 36 | 75.00 |" in later
    assert "| gone † | pytorch | steps=1 | 1.50 | 12.3 | 456.8 | 0.50x | 2.00x |" in later
    assert "Carried rows (`gone`): copied from the report of 2024-12-31T10:00:00" in later
    assert "that run's (Old CPU, 2 logical cores, 2 threads)" in later
    assert "that run's reference, `old` (pytorch)" in later
    assert "`python benchmarks/report.py --old`" in later
    assert "![accuracy vs throughput](img/plot.png)" in md
    assert "Not measured: fake [onnx]: RuntimeError: no" in md
    assert "python benchmarks/report.py --x" in md and "Note: hello" in md


def test_paired_counts_and_table_by_hand(report):
    # two sets; the reference reads a: cat Dog sun, b: cat; the row reads a: cat sun a1b2 (and
    # "dog" for "Dog": right under parseq36, wrong under cased62), b: cat Dog sun
    data = {"a": FakeSet(WORDS), "b": FakeSet(WORDS)}
    keys = [f"{i}.png" for i in range(4)]
    ref_texts = {"a": ["cat", "Dog", "sun", "x"], "b": ["cat", "x", "x", "x"]}
    row_texts = {"a": ["cat", "dog", "sun", "a1b2"], "b": ["cat", "Dog", "sun", "x"]}
    rows = []
    for name, texts in (("ref", ref_texts), ("row", row_texts)):
        predictions = {s: {k: (t, 1.0) for k, t in zip(keys, texts[s])} for s in data}
        correct = {}
        accuracy = report.score(predictions, data, correct=correct)
        rows.append({"name": name, "backend": "pytorch", "accuracy": accuracy, "correct": correct})
    rows.append({"name": "old", "backend": "pytorch", "carried": {}})  # no correct: left alone
    report.add_paired(rows, "ref", ["a", "b"])
    assert all("correct" not in r for r in rows) and "paired" not in rows[0]
    assert "paired" not in rows[2]
    p36, c62 = rows[1]["paired"]["parseq36"], rows[1]["paired"]["cased62"]
    assert p36["a"] == {"only_row": 1, "only_ref": 0, "p": 1.0}  # a1b2
    assert p36["b"] == {"only_row": 2, "only_ref": 0, "p": 0.5}  # Dog, sun: 2 * (1/2)^2
    assert p36["combined"] == {"only_row": 3, "only_ref": 0, "p": 0.25}
    assert c62["a"] == {"only_row": 1, "only_ref": 1, "p": 1.0}  # a1b2 vs Dog
    md = report.build_markdown(_result_with(rows[:2], data), None)
    assert "only `ref` (pytorch) reads (b)" in md
    assert "| model | backend | a parseq36 | a cased62 | b parseq36 | b cased62 |" in md
    assert "| row | pytorch | +1 −0, p=1.00 | +1 −1, p=1.00 | +2 −0, p=0.50 | +2 −0, p=0.50 |" in md


def _result_with(rows, data):
    for r in rows:
        r |= {"decode": "", "charset": "36", "params_m": 1.0, "error": None}
        r["speed"] = {"latency_b1_s": 0.01, "throughput_b64": 100.0, "batch": 64}
    return {
        "date": "2025-01-01", "command": "python benchmarks/report.py --x", "hardware": "cpu",
        "threads": 2, "repeats": 3, "limit": None, "load_average": 0.1, "reference": "ref",
        "versions": {"torch": "9"}, "protocols": {"parseq36": "p36", "cased62": "c62"},
        "datasets": {n: {"path": n, "samples": 4, "dropped": {}} for n in data},
        "speed_images": {"set": "a", "unique": 4, "batch": 64}, "rows": rows, "notes": [],
    }  # fmt: skip


def _tiny_model(path: Path) -> Path:
    import torch

    from ocrkit.models import Recognizer

    torch.manual_seed(0)
    Recognizer.from_config(TINY).save_pretrained(path)
    return path


def test_main_end_to_end(report, tmp_path):
    from ocrkit.data import open_dataset
    from ocrkit.models import Recognizer

    model_dir = _tiny_model(tmp_path / "tiny")
    one = write_word_set(tmp_path / "one", WORDS)
    two = write_word_set(tmp_path / "two", ["Hello", "x9"])
    out = tmp_path / "docs" / "benchmarks.md"
    argv = ["--models", f"tiny={model_dir}", f"tiny-nocache={model_dir}@use_cache=false"]
    argv += ["--data", f"one={one}", str(two), "--limit", "3", "--repeats", "1"]
    argv += ["--threads", "1", "--no-external", "--output", str(out)]
    argv += [] if HAVE_ONNX else ["--no-onnx"]
    assert report.main(argv) == 0

    md = out.read_text()
    result = json.loads((tmp_path / "docs" / "benchmarks.json").read_text())
    assert (tmp_path / "docs" / "img" / "benchmarks_accuracy_speed.png").stat().st_size > 0
    assert "![accuracy vs throughput](img/benchmarks_accuracy_speed.png)" in md
    assert "one parseq36 | one cased62 | one full94 | one 1-NED | two parseq36" in md
    assert "| model | backend | decode | params (M) | latency b1 (ms) |" in md
    assert "| tiny | pytorch | - | 36 |" in md
    assert "| tiny-nocache | pytorch | use_cache=false | 36 |" in md
    assert "## Models" in md and f"| tiny | `{model_dir}` | vit_tiny(depth=1," in md
    assert result["command"] == "python benchmarks/report.py " + " ".join(argv)
    assert result["datasets"]["one"]["samples"] == 3 and result["datasets"]["two"]["samples"] == 2
    backends = ["pytorch", "onnx"] if HAVE_ONNX else ["pytorch"]
    assert [(r["name"], r["backend"]) for r in result["rows"]] == [
        (n, b) for n in ("tiny", "tiny-nocache") for b in backends
    ]
    assert all(r["error"] is None for r in result["rows"])

    # a later run carries tiny's rows from this report's JSON next to what it measures
    later = tmp_path / "later" / "benchmarks.md"
    argv2 = ["--models", f"again={model_dir}", "--data", f"one={one}", str(two), "--limit", "3"]
    argv2 += ["--repeats", "1", "--threads", "1", "--no-external", "--no-onnx"]
    argv2 += ["--carry", "tiny", "--carry-from", str(tmp_path / "docs" / "benchmarks.json")]
    assert report.main([*argv2, "--output", str(later)]) == 0
    rows2 = json.loads(later.with_suffix(".json").read_text())["rows"]
    assert [(r["name"], bool(r.get("carried"))) for r in rows2][:2] == [
        ("again", False),
        ("tiny", True),
    ]
    assert rows2[1]["accuracy"] == result["rows"][0]["accuracy"]
    assert "| tiny † | pytorch | - | 36 |" in later.read_text()

    # hand check: the same model on the same images, scored here by hand
    model = Recognizer.from_pretrained(model_dir)
    pairs = []
    for path in (one, two):
        ds = open_dataset(path)
        samples = [ds[i] for i in range(min(3, len(ds)))]
        texts = [p.text for p in model.predict([s.image for s in samples])]
        pairs += [(t, s.label.lower()) for t, s in zip(texts, samples)]
    combined = result["rows"][0]["accuracy"]["parseq36"]["combined"]
    assert combined["samples"] == 5
    assert combined["correct"] == sum(t == label for t, label in pairs)
    ned = 100 * (1 - sum(normalized_edit_distance(t, lab) for t, lab in pairs) / len(pairs))
    assert combined["ned"] == pytest.approx(ned, abs=1e-3)
    for r in result["rows"]:
        assert r["speed"]["batch"] == 64 and r["speed"]["throughput_b64"] > 0
        assert r["speed"]["latency_b1_s"] > 0


def test_main_fails_fast(report, tmp_path, monkeypatch, capsys):
    import ocrkit.models

    data = write_word_set(tmp_path / "one", WORDS[:1])
    model_dir = _tiny_model(tmp_path / "tiny")
    base = ["--data", str(data), "--no-external", "--no-onnx", "--output", str(tmp_path / "x.md")]
    assert report.main(["--models", f"a={model_dir}@nonsense=1", *base]) == 1
    assert "does not accept" in capsys.readouterr().err

    def no_default(path=None, device=None):
        raise FileNotFoundError("no default recognizer is embedded")

    monkeypatch.setattr(ocrkit.models, "load_recognizer", no_default)
    assert report.main(["--models", "default", *base]) == 1
    assert "no default recognizer" in capsys.readouterr().err
    assert not (tmp_path / "x.md").exists()


def test_external_rows_come_first_and_the_v6_row_is_the_speed_reference(
    report, tmp_path, monkeypatch
):
    pytest.importorskip("rapidocr_onnxruntime")
    pytest.importorskip("rapidocr")
    monkeypatch.setattr(report, "BATCH", 8)  # RapidOCR reads ~20 images/s here: keep it short
    data = write_word_set(tmp_path / "one", ["cat", "sun"])
    out = tmp_path / "b.md"
    argv = ["--models", f"tiny={_tiny_model(tmp_path / 'tiny')}", "--data", str(data)]
    argv += ["--repeats", "1", "--threads", "1", "--no-onnx", "--output", str(out)]
    assert report.main(argv) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    rows = result["rows"]
    assert [(r["name"], r["backend"]) for r in rows] == [
        ("rapidocr-v6", "external"),
        ("rapidocr-v4", "external"),
        ("tiny", "pytorch"),
    ]
    for ext in rows[:2]:
        assert ext["error"] is None and ext["speed"]["batch"] == 8
        assert ext["speed"]["throughput_b64"] > 0
        assert ext["accuracy"]["full94"]["combined"]["samples"] == 2
    page = out.read_text()
    assert "| rapidocr-v6 | external |" in page
    assert "The reference (ref) is `rapidocr-v6` (external)" in page
    assert "| rapidocr-v6 | external | - | " in page and "| 1.00x | 1.00x |" in page


def test_describe_model_reads_the_run_folder_and_the_page_lists_it(report, tmp_path):
    import yaml

    from ocrkit.models import Recognizer, load_recognizer

    run = tmp_path / "finetune_mim"
    model_dir = _tiny_model(run / "best")
    (run / "best" / "trainer_state.json").write_text(json.dumps({"global_step": 700}))
    recipe = {"description": "tiny AR, real crops", "init": {"encoder": "runs/mim/final"}}
    (run / "config.yaml").write_text(yaml.safe_dump(recipe))
    about = report.describe_model(str(model_dir), Recognizer.from_pretrained(model_dir))
    assert about["architecture"] == (
        "vit_tiny(depth=1, embed_dim=32, num_heads=2, patch_size=8) + ar(embed_dim=32, depth=1, "
        "num_heads=2, mlp_ratio=4.0, dropout=0.1, label_smoothing=0.0, positions=sincos+learned)"
    )
    # a row's decode option that overrides a saved decoder setting shows; others do not
    model = Recognizer.from_pretrained(model_dir)
    overridden = report.describe_model(str(model_dir), model, {"depth": 9, "use_cache": False})
    assert overridden["architecture"] == about["architecture"].replace(
        "depth=1, num_heads", "depth=9, num_heads"
    )
    assert about["training"] == (
        "tiny AR, real crops; encoder initialized from `runs/mim/final`; checkpoint `best` at "
        "step 700"
    )
    (run / "config.yaml").write_text(yaml.safe_dump({"description": "scratch arm"}))
    about = report.describe_model(str(model_dir), Recognizer.from_pretrained(model_dir))
    assert about["training"] == "scratch arm; from scratch; checkpoint `best` at step 700"
    bare = _tiny_model(tmp_path / "bare")
    assert report.describe_model(str(bare), Recognizer.from_pretrained(bare))["training"] == "-"
    (run / "config.yaml").write_text(
        yaml.safe_dump(
            {"description": "ft", "init": {"model": "ppocr:rapidocr", "freeze_encoder": True}}
        )
    )
    about = report.describe_model(str(model_dir), Recognizer.from_pretrained(model_dir))
    assert about["training"] == (
        "ft; initialized from `ppocr:rapidocr`; encoder frozen; checkpoint `best` at step 700"
    )
    (run / "config.yaml").write_text(
        yaml.safe_dump({"init": {"freeze_encoder": "body", "train_body_tail": 3}})
    )
    about = report.describe_model(str(model_dir), Recognizer.from_pretrained(model_dir))
    assert about["training"] == (
        f"{run / 'config.yaml'}; from scratch; body frozen but its last 3 blocks; "
        "checkpoint `best` at step 700"
    )
    default = report.describe_model(None, load_recognizer())
    assert default["training"].startswith("ocrkit default recognizer")
    assert default["architecture"] == "ppocrv6_rec_small() + ctc(beam_width=8)"
    tiny = report.describe_model("tiny", load_recognizer("tiny"))
    assert tiny["training"].startswith("ocrkit tiny English recognizer")
    assert tiny["architecture"].startswith("vit_tiny(depth=4, embed_dim=128")


def test_carry_rows_copies_measured_rows_and_refuses_other_sets(report, tmp_path):
    speed = {"latency_b1_s": 0.01, "throughput_b64": 100.0, "batch": 64}
    rows = [
        {"name": "ref", "backend": "pytorch", "speed": speed, "error": None},
        {"name": "gone", "backend": "pytorch", "speed": speed, "error": None, "accuracy": {}},
        {"name": "gone", "backend": "onnx", "speed": speed, "error": None, "accuracy": {}},
        {"name": "gone", "backend": "onnx", "error": "RuntimeError: x"},
    ]
    earlier = {"date": "d0", "command": "c0", "hardware": "cpu0", "threads": 2, "rows": rows}
    earlier["datasets"] = {"a": {"samples": 4}, "b": {"samples": 3}}
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(earlier))
    data = {"a": FakeSet(WORDS), "b": FakeSet(WORDS[:3])}
    carried = report.carry_rows(path, ["gone"], data)
    assert [(r["name"], r["backend"]) for r in carried] == [("gone", "pytorch"), ("gone", "onnx")]
    assert carried[0]["carried"] == {
        "date": "d0",
        "command": "c0",
        "hardware": "cpu0",
        "threads": 2,
        "reference": {"name": "ref", "backend": "pytorch", "speed": speed},
    }
    with pytest.raises(CliError, match="no measured row"):
        report.carry_rows(path, ["missing"], data)
    with pytest.raises(CliError, match="sets differ"):
        report.carry_rows(path, ["gone"], {"a": FakeSet(WORDS)})
    # carried again into a later report, a row keeps its first origin
    later = {**earlier, "date": "d1", "rows": [rows[0], carried[0]]}
    path.write_text(json.dumps(later))
    assert report.carry_rows(path, ["gone"], data)[0]["carried"]["date"] == "d0"


def test_speeds_are_timed_in_interleaved_rounds_with_exact_medians(measure, monkeypatch):
    """Every round times each row once at batch 1 and once at batch 64 (after one warm-up call
    of each size per row), so a drift of the machine reaches all rows; the medians are exact."""
    clock = [0.0]
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])
    pauses = []
    monkeypatch.setattr(measure.time, "sleep", pauses.append)
    calls = []
    costs = {"a": [0.010, 0.030, 0.020], "b": [0.100, 0.300, 0.200]}  # per image, per round

    def predictor(name):
        timed_calls = iter(range(10**6))

        def predict(images):
            calls.append((name, len(images)))
            if len(calls) > 4:  # past the warm-up: two calls per row
                clock[0] += costs[name][next(timed_calls) // 2] * len(images)
            return []

        return predict

    rows = {"a": {}, "b": {}}
    timers = [measure.Timer(f"{n} [x]", predictor(n), rows[n]) for n in ("a", "b")]
    images = [word_image("cat")] * measure.BATCH
    measure.measure_speeds(timers, images, repeats=3)

    batch = measure.BATCH
    warm_up = [("a", 1), ("a", batch), ("b", 1), ("b", batch)]
    one_round = [("a", 1), ("a", batch), ("b", 1), ("b", batch)]
    assert calls == warm_up + one_round * 3
    assert pauses == [measure.SETTLE_S] * 6  # before each row in each round
    assert rows["a"]["speed"]["latency_b1_s"] == pytest.approx(0.020)  # median of .01 .03 .02
    assert rows["a"]["speed"]["throughput_b64"] == pytest.approx(1 / 0.020)
    assert rows["b"]["speed"]["latency_b1_s"] == pytest.approx(0.200)
    assert rows["b"]["speed"]["throughput_b64"] == pytest.approx(1 / 0.200)
    assert rows["b"]["speed"]["batch"] == batch
