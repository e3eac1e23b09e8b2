"""benchmarks/mnsp_study.py: the job graph (order, slots, failures) and the shared schedule."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from bench_scripts import benchmark_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study():
    with benchmark_script("mnsp_study") as module:
        yield module


def _recorder():
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def job(name: str, seconds: float = 0.02, meet: threading.Barrier | None = None):
        """A job that records its start and end; with ``meet`` it waits there for the jobs
        that must run beside it (a deadlock guard of 60 s, not a timing), else it sleeps."""

        def run():
            with lock:
                events.append(("start", name))
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            if meet is not None:
                meet.wait(60)
            else:
                time.sleep(seconds)
            with lock:
                running[0] -= 1
                events.append(("end", name))
            return name.upper()

        return run

    return events, peak, job


def test_run_jobs_respects_dependencies_and_returns_every_result(study):
    events, peak, job = _recorder()
    side_by_side = threading.Barrier(2)  # a and d both start before either ends
    jobs = [
        study.Job("a", job("a", meet=side_by_side)),
        study.Job("b", job("b"), after=("a",)),
        study.Job("c", job("c"), after=("b", "d")),
        study.Job("d", job("d", meet=side_by_side)),
    ]
    results = study.run_jobs(jobs, slots=2)
    assert results == {"a": "A", "b": "B", "c": "C", "d": "D"}
    for dep, child in [("a", "b"), ("b", "c"), ("d", "c")]:
        assert events.index(("end", dep)) < events.index(("start", child))
    assert peak[0] == 2  # a and d ran side by side


def test_run_jobs_never_exceeds_its_slots_and_starts_lowest_rank_first(study):
    events, peak, job = _recorder()
    jobs = [study.Job(n, job(n), rank=r) for n, r in [("late", 3), ("first", 0), ("second", 1)]]
    study.run_jobs(jobs, slots=1)
    assert peak[0] == 1
    starts = [name for kind, name in events if kind == "start"]
    assert starts == ["first", "second", "late"]


def test_run_jobs_reraises_a_failure_and_starts_nothing_after_it(study):
    _, _, job = _recorder()
    started = []

    def boom():
        raise SystemExit("failed (1): ocrkit train ...")

    jobs = [
        study.Job("bad", boom),
        study.Job("child", lambda: started.append("child"), after=("bad",)),
    ]
    with pytest.raises(SystemExit, match="failed"):
        study.run_jobs(jobs, slots=2)
    assert started == []


def test_run_jobs_rejects_an_unknown_dependency(study):
    with pytest.raises(RuntimeError, match="unsatisfiable"):
        study.run_jobs([study.Job("x", lambda: None, after=("missing",))], slots=2)


def test_shared_plan_times_once_and_every_arm_gets_the_same_steps(study, tmp_path, monkeypatch):
    calls = []

    def fake_seconds(recipe, overrides, threads):
        calls.append(recipe)
        return 2.5

    monkeypatch.setattr(study, "seconds_per_step", fake_seconds)
    args = type("Args", (), {"threads": 1})()
    path = tmp_path / "finetune_plan.json"
    plan = study.shared_plan(path, Path("recipe.yaml"), minutes=10, args=args)
    assert [plan() for _ in range(3)] == [(240, 2.5)] * 3  # 10 min * 60 / 2.5 s
    assert len(calls) == 1
    assert json.loads(path.read_text()) == {"steps": 240, "s_per_step": 2.5}
    # a resumed study reads the saved plan instead of timing again
    again = study.shared_plan(path, Path("recipe.yaml"), minutes=99, args=args)
    assert again() == (240, 2.5)
    assert len(calls) == 1
