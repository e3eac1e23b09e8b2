"""benchmarks/gpu_smoke.py runs every paper recipe end to end on CPU (issue 16 item 7)."""

from __future__ import annotations

import math

from bench_scripts import benchmark_script


def test_gpu_smoke_runs_every_recipe_on_cpu(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OCRKIT_CACHE", str(tmp_path))  # restored afterwards, like the next one
    monkeypatch.setenv("ACCELERATE_USE_CPU", "false")
    monkeypatch.setenv("OCRKIT_PROGRESS", "0")
    argv = ["--device", "cpu", "--steps", "2", "--batch", "1", "--grad-accum", "1"]
    with benchmark_script("gpu_smoke") as smoke:
        rows = smoke.main([*argv, "--cache", str(tmp_path)])
    assert [r["name"] for r in rows] == list(smoke.RECIPES)
    for r in rows:
        assert len(r["losses"]) == 2 and all(math.isfinite(v) for v in r["losses"]), r
        assert r["images"] == 1 and r["ips"] > 0 and r["peak"] > 0 and r["hours"] > 0
        assert r["params"] > 1e5
    out = capsys.readouterr().out
    assert "# hardware:" in out and "loss per step:" in out
    for name in smoke.RECIPES:
        assert f"\n{name} " in out  # one table row per recipe
