"""benchmarks/data_feed.py: the trainer's input path timed per core, workers = GPU rate / rate."""

from __future__ import annotations

import math

import pytest
from bench_scripts import benchmark_script


def test_data_feed_reports_rate_flops_and_workers(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OCRKIT_CACHE", str(tmp_path))
    argv = ["--samples", "8", "--batch", "4", "--recipes", "vit_small_ar"]
    with benchmark_script("data_feed") as feed:
        (row,) = feed.main([*argv, "--sustained-tflops", "100"])
        (given,) = feed.main([*argv, "--gpu-ips", "vit_small_ar=1000"])
    assert row["batch"] == 4 and row["augment"] == "abinet" and row["per_core"] > 0
    # ViT-S/4 (22 M encoder parameters, 256 tokens) + 6x512 AR decoder: tens of GFLOPs per image
    assert 10 < row["gflops"] < 200
    assert row["gpu_ips"] == pytest.approx(100e12 / (row["gflops"] * 1e9))
    assert row["workers"] == math.ceil(row["gpu_ips"] / row["per_core"])
    assert given["gpu_ips"] == 1000 and given["gpu_source"] == "measured"
    assert "workers/GPU" in capsys.readouterr().out
