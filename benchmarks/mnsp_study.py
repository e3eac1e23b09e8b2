"""The small MNSP study, end to end: pretrain (MIM, MNSP) -> fine-tune (x3) -> evaluate -> table.

    python benchmarks/mnsp_study.py --minutes-per-run 30 [--output runs/mnsp_study]
                                    [--pretrain-minutes M] [--finetune-minutes M]
                                    [--steps-per-run N] [--eval-limit N] [--resume]
                                    [--jobs 2 --threads 1]

Smoke test of the whole pipeline (a few minutes; numbers meaningless):
    python benchmarks/mnsp_study.py --steps-per-run 3 --eval-limit 40 --output runs/mnsp_smoke

Same unlabeled budget for both pretraining methods (recipes/pretrain/*_vit_tiny_cpu.yaml: 20k
synthetic renderings + the ICDAR15 training word crops without labels), same labelled budget
and schedule for the three recognizers (recipes/str/vit_tiny_ar_cpu_finetune.yaml: the real
IIIT5K/SVT/ICDAR15 training crops only): from scratch, from the MIM encoder, from the MNSP
encoder. MNSP uses the MIM encoder as its frozen teacher, so its encoder has consumed both
pretraining runs' compute; the table says so. Evaluation: IIIT5K test and SVT test (parseq36),
each also split by original image area (Table 6) and with images shrunk to 0.5 and black-padded
(Fig. 4), reported as accuracy drops. Also draws the attention maps of the three encoders.

Training and the attention figure run as ``ocrkit train`` / ``ocrkit viz`` subprocesses with
their logs in OUTPUT/logs/; evaluation runs in this process through ``ocrkit.eval``.
``--minutes-per-run`` sizes each training run: a few steps are timed first and
``max_steps`` is set so the cosine schedule ends inside the budget (``time_limit_min`` at 1.3x
the budget guards against a slower machine); the three fine-tuning arms share one timing, so
they run the same number of steps. ``--steps-per-run`` fixes the steps instead.
``--resume`` skips phases whose outputs exist and continues a killed training phase from its
last checkpoint with the schedule it was planned with.

``--jobs 2 --threads 1`` runs two phases at once on a 2-core machine, following the graph
MIM -> MNSP -> fine-tune(MNSP), MIM -> fine-tune(MIM), fine-tune(scratch) with the critical path
first: wall time is about 3 runs plus the last evaluation instead of 5 runs and 3 evaluations.
With ``--jobs 1`` (the default) it is about 1.1 x (2 x pretrain + 3 x finetune minutes) + 25
minutes at 2 threads. Step times are measured under the same load the runs see, so the two
settings give different step counts for the same minutes; the table records them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "mim": ROOT / "recipes/pretrain/mim_vit_tiny_cpu.yaml",
    "mnsp": ROOT / "recipes/pretrain/mnsp_vit_tiny_cpu.yaml",
    "finetune": ROOT / "recipes/str/vit_tiny_ar_cpu_finetune.yaml",
}
ARMS = ("scratch", "mim", "mnsp")
TEST_SETS = ("iiit5k_test", "svt_test")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], log_file: Path) -> None:
    """Run ``cmd``, tee its output to ``log_file``; a failure stops the study with the log path."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log("$ " + " ".join(cmd))
    with open(log_file, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\nsee {log_file}")


def seconds_per_step(recipe: Path, overrides: list[str], threads: int, steps: int = 3) -> float:
    """Median wall seconds of one optimizer step of ``recipe`` (after one warm-up step)."""
    import statistics

    import torch

    from ocrkit.config import load_config
    from ocrkit.train.optim import build_optimizer
    from ocrkit.train.tasks import build_task

    torch.set_num_threads(threads)
    config = load_config(recipe, overrides)
    parts = build_task(config)
    train = config["train"]
    model = parts.model.train()
    optimizer = build_optimizer(
        model, float(train["lr"]), 0.05, betas=tuple(train.get("betas", (0.9, 0.999)))
    )
    loader = torch.utils.data.DataLoader(
        parts.train_dataset,
        batch_size=int(train["batch_size"]),
        shuffle=True,
        collate_fn=parts.collate_fn,
    )
    batches = iter(loader)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        out = model.training_step(next(batches))
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def plan_steps(
    recipe: Path, overrides: list[str], minutes: float, threads: int
) -> tuple[int, float]:
    """``(max_steps, s_per_step)``: as many steps of ``recipe`` as fit in ``minutes``."""
    sec = seconds_per_step(recipe, overrides, threads)
    return max(10, int(minutes * 60 / sec)), sec


def shared_plan(
    path: Path, recipe: Path, minutes: float, args
) -> Callable[[], tuple[int, float | None]]:
    """One ``(max_steps, s_per_step)`` for every run of ``recipe``, timed once, kept in ``path``.

    The three fine-tuning arms differ only in their encoder's initial weights, so they get the
    same number of optimizer steps (the same labelled budget) rather than one timing each.
    """
    lock = threading.Lock()

    def plan() -> tuple[int, float | None]:
        with lock:
            if path.is_file():
                saved = json.loads(path.read_text())
                return saved["steps"], saved["s_per_step"]
            steps, sec = plan_steps(recipe, [], minutes, args.threads)
            log(f"fine-tuning: {sec:.2f} s/step measured -> max_steps {steps} for every arm")
            path.write_text(json.dumps({"steps": steps, "s_per_step": sec}))
            return steps, sec

    return plan


def train_phase(
    name: str,
    recipe: Path,
    out: Path,
    overrides: list[str],
    minutes: float,
    args,
    planned: Callable[[], tuple[int, float | None]] | None = None,
) -> dict:
    """``ocrkit train`` sized to the budget; returns what ran (steps, minutes).

    ``planned`` returns ``(max_steps, s_per_step)`` for runs that must share one schedule (the
    three fine-tuning arms); otherwise a few steps are timed here.
    """
    record = out / "study_phase.json"
    if args.resume and (out / "final" / "config.json").is_file() and record.is_file():
        log(f"{name}: done already ({out})")
        return json.loads(record.read_text())
    plan = out / "study_plan.json"
    resuming = args.resume and plan.is_file()
    if resuming:  # a killed phase continues from its last checkpoint with the same schedule
        steps, sec = (json.loads(plan.read_text())[k] for k in ("steps", "s_per_step"))
        log(f"{name}: resuming from its last checkpoint (max_steps {steps})")
    elif args.steps_per_run:
        steps, sec = args.steps_per_run, None
    elif planned is not None:
        steps, sec = planned()
        log(f"{name}: shared schedule -> max_steps {steps}")
    else:
        steps, sec = plan_steps(recipe, overrides, minutes, args.threads)
        log(f"{name}: {sec:.2f} s/step measured -> max_steps {steps}")
    out.mkdir(parents=True, exist_ok=True)
    plan.write_text(json.dumps({"steps": steps, "s_per_step": sec}))
    limit = "null" if args.steps_per_run else round(minutes * 1.3, 1)
    cmd = [sys.executable, "-m", "ocrkit", "train", str(recipe), *overrides]
    cmd += [
        f"train.max_steps={steps}",
        f"train.threads={args.threads}",
        f"train.time_limit_min={limit}",
    ]
    if resuming:
        cmd += ["--resume", "auto"]
    started = time.time()
    log_name = f"{name}.resumed.log" if resuming else f"{name}.log"
    run([*cmd, "--output", str(out)], out.parent / "logs" / log_name)
    state = json.loads((out / "final" / "trainer_state.json").read_text())
    info = {
        "phase": name,
        "planned_steps": steps,
        "steps": state["global_step"],
        "measured_s_per_step": sec,
        "minutes": round((time.time() - started) / 60, 1),
    }
    record.write_text(json.dumps(info, indent=2))
    return info


def evaluate_arm(arm: str, model_dir: Path, out: Path, data: Path, args) -> dict:
    """Accuracy on each test set, its small/large halves by area, and shrunk to 0.5.

    The same numbers as ``ocrkit eval --model DIR --data SETS --split-by-area --shrink 0.5``,
    with the halves scored from the full-set predictions instead of a second inference pass.
    """
    target = out / f"eval_{arm}.json"
    if args.resume and target.is_file():
        return json.loads(target.read_text())
    from functools import partial

    from ocrkit.data import SubsetStrDataset, open_dataset
    from ocrkit.eval import (
        PerturbedPredictor,
        area_split,
        evaluate,
        evaluate_predictions,
        shrink_pad,
    )
    from ocrkit.models import Recognizer

    log(f"evaluating {arm}: {model_dir}")
    model = Recognizer.from_pretrained(model_dir)
    base = {}
    for name in TEST_SETS:
        dataset = open_dataset(data / "str" / name, protocol="parseq36")
        if args.eval_limit:
            dataset = SubsetStrDataset(
                dataset, range(min(args.eval_limit, len(dataset))), name=name
            )
        base[name] = dataset
    report = evaluate(model, base, "parseq36")
    predictions: dict[str, dict] = {}
    for sample in report.samples:
        predictions.setdefault(sample.set, {})[sample.key] = (sample.prediction, sample.confidence)
    halves = {
        f"{name}:{half}": SubsetStrDataset(dataset, indices, name=f"{name}:{half}")
        for name, dataset in base.items()
        for half, indices in area_split(dataset).items()
    }
    split = evaluate_predictions(
        {h: predictions[h.split(":")[0]] for h in halves}, halves, "parseq36"
    )
    shrunk = evaluate(PerturbedPredictor(model, partial(shrink_pad, scale=0.5)), base, "parseq36")
    sets = {n: m.as_dict() for n, m in {**report.sets, **split.sets}.items()}
    sets.update({f"{n}@shrink0.5": m.as_dict() for n, m in shrunk.sets.items()})
    result = {"model": str(model_dir), "protocol": "parseq36", "sets": sets}
    target.write_text(json.dumps(result, indent=2))
    return result


def table(results: dict[str, dict], phases: dict[str, dict], args) -> str:
    """The markdown report: accuracies, area halves, shrink drops, and what each run did."""
    lines = [
        "| init | "
        + " | ".join(f"{s} | {s} small | {s} large | {s} shrink0.5 (drop)" for s in TEST_SETS)
        + " |",
        "|---" * (1 + 4 * len(TEST_SETS)) + "|",
    ]
    for arm, report in results.items():
        sets = report["sets"]
        cells = []
        for s in TEST_SETS:
            base = sets[s]["accuracy"]
            shrink = sets[f"{s}@shrink0.5"]["accuracy"]
            cells += [
                f"{base:.2f}",
                f"{sets[f'{s}:small']['accuracy']:.2f}",
                f"{sets[f'{s}:large']['accuracy']:.2f}",
                f"{shrink:.2f} ({shrink - base:+.2f})",
            ]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| run | steps done (planned) | s/step measured | wall minutes |",
        "|---|---|---|---|",
    ]
    for name, p in phases.items():
        sec = f"{p['measured_s_per_step']:.2f}" if p.get("measured_s_per_step") else "-"
        lines.append(f"| {name} | {p['steps']} ({p['planned_steps']}) | {sec} | {p['minutes']} |")
    lines += [
        "",
        "Word accuracy (%) under parseq36; small/large: halves of each test set by original image "
        "area; shrink0.5: images shrunk to half size and black-padded, drop in points. MNSP's "
        "encoder also used the MIM run (its teacher), i.e. twice the pretraining compute of MIM.",
    ]
    return "\n".join(lines)


@dataclass
class Job:
    """One node of the study's graph: runs after ``after``; ``rank`` orders ready jobs."""

    name: str
    run: Callable[[], object]
    after: tuple[str, ...] = ()
    rank: int = 0


def run_jobs(jobs: list[Job], slots: int) -> dict[str, object]:
    """Run ``jobs`` respecting ``after``, at most ``slots`` at once; returns each job's result.

    After a failure nothing new starts; jobs already running finish (a training phase keeps its
    outputs for ``--resume``) and the failure is raised.

    Among ready jobs the lowest ``rank`` starts first (the critical path MIM -> MNSP -> MNSP
    fine-tuning goes first so the wall time is about three runs, not five, with two slots).
    """
    results: dict[str, object] = {}
    pending = sorted(jobs, key=lambda j: j.rank)
    running: dict[Future, Job] = {}
    with ThreadPoolExecutor(max_workers=slots) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= slots:
                    break
                if all(dep in results for dep in job.after):
                    pending.remove(job)
                    running[pool.submit(job.run)] = job
            if not running:
                raise RuntimeError(f"unsatisfiable dependencies: {[j.name for j in pending]}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                results[job.name] = future.result()  # re-raises (SystemExit too) in this thread
    return results


def attention_figure(out: Path, data: Path) -> None:
    """Attention maps of the MIM, MNSP and supervised encoders on six SVT crops (Fig. 3)."""
    encoders = [out / "mim" / "final", out / "mnsp" / "final", out / "finetune_scratch" / "final"]
    cmd = [sys.executable, "-m", "ocrkit", "viz", "attention", "--encoder"]
    cmd += [str(e) for e in encoders]
    cmd += ["--names", "MIM", "MNSP", "supervised (scratch)"]
    cmd += ["--data", str(data / "str" / "svt_test"), "--limit", "6"]
    run([*cmd, "--out", str(out / "attention.png")], out / "logs" / "viz.log")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--minutes-per-run", type=float, default=30.0, help="budget of each training run"
    )
    parser.add_argument(
        "--pretrain-minutes", type=float, default=None, help="override for the 2 pretraining runs"
    )
    parser.add_argument(
        "--finetune-minutes", type=float, default=None, help="override for the 3 fine-tuning runs"
    )
    parser.add_argument(
        "--steps-per-run", type=int, default=None, help="fixed steps instead of a time budget"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "mnsp_study")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at once (e.g. --jobs 2 --threads 1 on 2 cores: about 3 runs of wall time)",
    )
    parser.add_argument("--resume", action="store_true", help="skip phases whose outputs exist")
    parser.add_argument(
        "--eval-limit",
        type=int,
        default=None,
        help="score only the first N images of each test set",
    )
    args = parser.parse_args()
    from ocrkit.utils.paths import shared_data_dir

    data = shared_data_dir()
    if data is None:
        sys.exit("the study needs the shared data (IIIT5K, SVT, ICDAR15): set OCRKIT_DATA")
    os.environ.setdefault("OCRKIT_DATA", str(data))
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    pretrain_min = args.pretrain_minutes or args.minutes_per_run
    finetune_min = args.finetune_minutes or args.minutes_per_run
    log(
        f"study in {out}; {pretrain_min} min per pretraining run, {finetune_min} per fine-tuning; "
        f"{args.jobs} run(s) at once, {args.threads} thread(s) each"
    )
    finetune_plan = shared_plan(out / "finetune_plan.json", RECIPES["finetune"], finetune_min, args)
    teacher = [f"model.teacher={out / 'mim' / 'final'}"]
    inits = {"scratch": None, "mim": out / "mim" / "final", "mnsp": out / "mnsp" / "final"}

    def finetune(arm: str) -> Callable[[], dict]:
        overrides = [f"init.encoder={inits[arm]}"] if inits[arm] else []
        name = f"finetune_{arm}"
        return lambda: train_phase(
            name, RECIPES["finetune"], out / name, overrides, finetune_min, args, finetune_plan
        )

    def evaluation(arm: str) -> Callable[[], dict]:
        def job() -> dict:
            best = out / f"finetune_{arm}" / "best"
            model_dir = best if (best / "config.json").is_file() else best.parent / "final"
            return evaluate_arm(arm, model_dir, out, data, args)

        return job

    jobs = [
        Job(
            "pretrain_mim",
            lambda: train_phase(
                "pretrain_mim", RECIPES["mim"], out / "mim", [], pretrain_min, args
            ),
            rank=0,
        ),
        Job(
            "pretrain_mnsp",
            lambda: train_phase(
                "pretrain_mnsp", RECIPES["mnsp"], out / "mnsp", teacher, pretrain_min, args
            ),
            after=("pretrain_mim",),
            rank=1,
        ),
        Job("finetune_mnsp", finetune("mnsp"), after=("pretrain_mnsp",), rank=2),
        Job("finetune_scratch", finetune("scratch"), rank=3),
        Job("finetune_mim", finetune("mim"), after=("pretrain_mim",), rank=4),
        *(Job(f"eval_{arm}", evaluation(arm), after=(f"finetune_{arm}",), rank=5) for arm in ARMS),
        Job(
            "attention",
            lambda: attention_figure(out, data),
            rank=6,
            after=("pretrain_mim", "pretrain_mnsp", "finetune_scratch"),
        ),
    ]
    done = run_jobs(jobs, max(1, args.jobs))
    phases = {
        name: done[name]
        for name in ("pretrain_mim", "pretrain_mnsp", *(f"finetune_{arm}" for arm in ARMS))
    }
    results = {arm: done[f"eval_{arm}"] for arm in ARMS}
    report = table(results, phases, args)
    (out / "RESULTS.md").write_text(report + "\n")
    print(report)
    log(f"wrote {out / 'RESULTS.md'} and {out / 'attention.png'}")


if __name__ == "__main__":
    main()
