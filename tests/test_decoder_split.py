"""benchmarks/decoder_split.py: encoder and decoder timed apart, the table, a tiny real run."""

from __future__ import annotations

import pytest
from bench_scripts import benchmark_script
from word_fixtures import write_word_set

TINY = {
    "backbone": {"name": "vit_tiny", "depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 8},
    "decoder": {"name": "ar", "embed_dim": 32, "depth": 1, "num_heads": 2},
    "charset": "36",
}


@pytest.fixture(scope="module")
def split():
    with benchmark_script("decoder_split") as module:
        yield module


def test_split_seconds_times_the_encoder_and_the_decoder_apart(split, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(split.time, "perf_counter", lambda: clock[0])
    seen = []

    class Model:
        def backbone(self, x):
            clock[0] += 0.25
            return x + 1

        class decoder:  # noqa: N801 - stands in for the module attribute
            @staticmethod
            def generate(memory, **options):
                seen.append((memory, options))
                clock[0] += 0.125

    assert split.split_seconds(Model(), {"steps": 3}, 1) == (0.25, 0.125)
    assert seen == [(2, {"steps": 3})]  # the decoder reads the encoder's output, with the options


def test_table_ratios_by_hand(split):
    results = [
        {"enc1": 0.030, "dec1": 0.010, "enc64": 0.600, "dec64": 0.040},
        {"enc1": 0.030, "dec1": 0.006, "enc64": 0.600, "dec64": 0.100},
    ]
    lines = split.table(["ar", "mdiff"], results, 64).splitlines()
    assert lines[0].count("|") == lines[1].count("|") == 11  # ten columns
    assert (
        lines[2] == "| ar | 30.00 | 10.00 | 40.00 | 1.00x | 1.00x | 600.0 | 40.0 | 100.0 | 1.00x |"
    )
    # decoder 6/10 ms = 0.60x; sum 36/40 ms = 0.90x
    # batch: 64 / (0.6 + 0.1) s = 91.4 img/s; decoder 100/40 ms = 2.50x
    assert (
        lines[3]
        == "| mdiff | 30.00 | 6.00 | 36.00 | 0.60x | 0.90x | 600.0 | 100.0 | 91.4 | 2.50x |"
    )


def test_main_runs_on_a_tiny_model_and_fails_in_one_line(split, tmp_path, capsys):
    import torch

    from ocrkit.models import Recognizer

    torch.manual_seed(0)
    Recognizer.from_config(TINY).save_pretrained(tmp_path / "tiny")
    data = write_word_set(tmp_path / "set", ["cat", "sun", "dog"])
    argv = ["--models", f"a={tmp_path / 'tiny'}", f"b={tmp_path / 'tiny'}@max_length=2"]
    argv += ["--data", str(data), "--limit", "2", "--repeats", "1", "--threads", "1"]
    assert split.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 crops of" in out and "one batch of 2" in out
    rows = [
        line for line in out.splitlines() if line.startswith("| a |") or line.startswith("| b |")
    ]
    assert len(rows) == 2 and rows[0].endswith("| 1.00x |")

    assert split.main(["--models", f"x={tmp_path / 'missing'}", "--data", str(data)]) == 1
    assert "decoder_split.py: error:" in capsys.readouterr().err
