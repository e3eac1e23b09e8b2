"""The Q-Mask CPU study: does the CQMD mask help a small VLM anchor text? CQMD on vs off.

    python benchmarks/qmask_study.py --minutes 22 [--output runs/qmask_study] [--bench-limit N]
    python benchmarks/qmask_study.py --steps 2 --bench-limit 1 --output runs/qmask_smoke  # smoke

Phases (each resumable: rerun the same command and finished phases are skipped, a killed
training run continues from its last checkpoint, a killed evaluation from its answer cache):

1. ``init``: the study's VLM (``benchmarks/qmask_study_model.yaml``: a Qwen2.5-VL built from
   a config with random weights, the CQMD head sized explicitly) saved once to OUTPUT/init.
2. ``data``: the synthetic scenes rendered once into the recipe's cache (both arms read them).
3. ``train``: two arms of ``recipes/qmask/study_cpu.yaml`` through ``ocrkit train`` (the qmask
   task of the one trainer), run side by side at ``--threads`` each: ``cqmd`` (lambda_seg = 1)
   and ``no_cqmd`` (lambda_seg = 0), same init, data, seed and ``max_steps`` (timed once from a
   few steps of the recipe unless ``--steps`` fixes it).
4. ``eval``: each arm answers the tabench-local queries (``--bench``; ``--bench-limit N`` keeps
   the first N queries per category and direction) with greedy generation, prompts exactly as
   ``ocrkit tabench run --adapter json`` sends them; the CQMD mask of the same prefill is kept.
   Scored twice with ``ocrkit.tabench.scoring``: T2R boxes from the generated answer (``text``)
   and from the mask alone (``mask``: threshold 0.5, connected components, boxes;
   ``ocrkit.anchoring.inference.boxes_from_mask``). Also the pointing game: the heatmap's
   maximum inside a target box, against the target boxes' area share (a uniform guess).
5. ``report``: OUTPUT/qmask_study.json, learning curves, the per-category comparison with a
   reference run (``--reference NAME=SCORES.json``, e.g. RapidOCR from ``ocrkit tabench run``),
   heatmap figures of the CQMD arm (``benchmarks/qmask_study_plots.py``).

Hardware and wall times go into the JSON; ``--publish`` copies it and the figures to docs/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnsp_study import log, seconds_per_step  # noqa: E402

MODEL_SPEC = ROOT / "benchmarks/qmask_study_model.yaml"
RECIPE = ROOT / "recipes/qmask/study_cpu.yaml"
ARMS = {"cqmd": 1.0, "no_cqmd": 0.0}


# --- 1. the model ---------------------------------------------------------------------------


def study_config(spec: dict[str, Any], tokenizer: Any) -> Any:
    """The tiny config of ``spec['family']`` resized to the spec's text and vision sizes."""
    from ocrkit.testing.tiny_vlm import tiny_config

    config = tiny_config(spec["family"], tokenizer, "tiny")
    text, vision = dict(spec["text"]), dict(spec["vision"])
    tc = config.text_config
    if (
        text["hidden_size"] // text["num_attention_heads"]
        != tc.hidden_size // tc.num_attention_heads
    ):
        raise ValueError(
            "qmask_study_model.yaml: keep head_dim = hidden / heads at the tiny model's 16"
        )
    for key, value in text.items():
        setattr(config.text_config, key, value)
    layers = text["num_hidden_layers"]
    if getattr(config.text_config, "layer_types", None) is not None:
        config.text_config.layer_types = ["full_attention"] * layers
    for key, value in vision.items():
        setattr(config.vision_config, key, value)
    if hasattr(config.vision_config, "out_hidden_size"):
        config.vision_config.out_hidden_size = text["hidden_size"]
    if hasattr(config.vision_config, "fullatt_block_indexes"):
        config.vision_config.fullatt_block_indexes = [vision["depth"] - 1]
    return config


def build_init(out: Path, spec_path: Path = MODEL_SPEC) -> dict[str, Any]:
    """Write the study's random-init Q-Mask folder once; return its parameter counts."""
    import torch
    import yaml
    from transformers import AutoModelForImageTextToText

    from ocrkit.anchoring.model import QMask, QMaskConfig
    from ocrkit.testing.tiny_vlm import tiny_processor

    record = out / "study_init.json"
    if record.is_file():
        return json.loads(record.read_text())
    spec = yaml.safe_load(spec_path.read_text())
    processor = tiny_processor(spec["family"])
    config = study_config(spec, processor.tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec.get("seed", 0)))
        vlm = AutoModelForImageTextToText.from_config(config)
        model = QMask(vlm, processor, QMaskConfig(tiny=spec["family"], **spec["qmask"]))
    model.save_pretrained(out)
    info = {"name": spec["name"], "spec": spec, "parameters": model.parameter_counts()}
    record.write_text(json.dumps(info, indent=2))
    return info


# --- 2-3. data and training -----------------------------------------------------------------


def recipe_overrides(out: Path, lambda_seg: float, cache: Path | None = None) -> list[str]:
    return [
        f"init.qmask={out / 'init'}",
        f"model.lambda_seg={lambda_seg}",
        f"data.cache_dir={cache or out / 'cache'}",
    ]


def render_synthetic(out: Path, cache: Path, recipe: Path = RECIPE) -> None:
    """Render the recipe's synthetic scenes once (as the qmask task would, same seeds)."""
    from ocrkit.anchoring.generate import build_instances
    from ocrkit.config import load_config

    config = load_config(recipe, recipe_overrides(out, 1.0, cache))
    seed = int(config["train"]["seed"])
    for offset, key in ((0, "train"), (1000, "val")):
        for i, spec in enumerate(config["data"][key]):
            if spec.get("type") == "synth":
                build_instances(dict(spec), seed=seed + offset + i, cache_dir=cache)


def plan_steps(
    out: Path, cache: Path, minutes: float, threads: int, fixed: int | None, recipe: Path = RECIPE
) -> dict[str, Any]:
    """One ``max_steps`` for both arms, kept in OUTPUT/plan.json (a rerun reuses it)."""
    path = out / "plan.json"
    if path.is_file():
        return json.loads(path.read_text())
    if fixed:
        plan = {"steps": fixed, "s_per_step": None, "minutes": None}
    else:
        sec = seconds_per_step(recipe, recipe_overrides(out, 1.0, cache), threads)
        # Two arms side by side on shared cores run slower than one timed alone.
        steps = max(10, int(minutes * 60 / (sec * 1.4)))
        plan = {"steps": steps, "s_per_step": round(sec, 3), "minutes": minutes}
    path.write_text(json.dumps(plan, indent=2))
    return plan


def train_arm(
    out: Path, cache: Path, arm: str, plan: dict[str, Any], threads: int, recipe: Path = RECIPE
) -> dict[str, Any]:
    """``ocrkit train`` for one arm (continues a killed run); returns steps and wall minutes."""
    run_dir = out / arm
    record = run_dir / "study_train.json"
    if record.is_file():
        return json.loads(record.read_text())
    limit = "null" if plan["minutes"] is None else round(plan["minutes"] * 1.5, 1)
    cmd = [sys.executable, "-m", "ocrkit", "train", str(recipe)]
    cmd += recipe_overrides(out, ARMS[arm], cache)
    cmd += [f"train.max_steps={plan['steps']}", f"train.threads={threads}"]
    cmd += [f"train.time_limit_min={limit}"]
    if plan["steps"] < 100:
        cmd += [f"train.eval_every={plan['steps']}", f"train.save_every={plan['steps']}"]
    cmd += ["--output", str(run_dir), "--resume", "auto"]
    started = time.time()
    run_logged(cmd, out / "logs" / f"train_{arm}.log", threads)
    state = json.loads((run_dir / "final" / "trainer_state.json").read_text())
    info = {"arm": arm, "steps": state["global_step"], "minutes": (time.time() - started) / 60}
    record.write_text(json.dumps(info, indent=2))
    return info


def run_logged(cmd: list[str], log_file: Path, threads: int) -> None:
    """Run ``cmd`` with its output appended to ``log_file``; a failure stops the study."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log("$ " + " ".join(cmd))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    with open(log_file, "a") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\nsee {log_file}")


# --- 4. evaluation --------------------------------------------------------------------------


def bench_subset(bench: Path, limit: int | None) -> list[Any]:
    """The bench's queries; with ``limit``, the first ``limit`` per (category, direction)."""
    from ocrkit.tabench.schema import load_bench

    queries = load_bench(bench)
    if not limit:
        return queries
    seen: dict[tuple[str, str], int] = {}
    kept = []
    for q in queries:
        key = (q.category, q.task)
        if seen.get(key, 0) < limit:
            seen[key] = seen.get(key, 0) + 1
            kept.append(q)
    return kept


def write_subset(bench: Path, limit: int) -> Path:
    """The ``--bench-limit`` subset as a bench file beside the bench (image paths stay valid),
    so that any other model can be scored on the same queries (``ocrkit tabench score``)."""
    from ocrkit.tabench.schema import save_bench

    path = bench.with_name(f"{bench.stem}.limit{limit}.jsonl")
    if not path.is_file():
        save_bench(path, bench_subset(bench, limit))
    return path


def target_boxes(query: Any) -> list[list[float]]:
    from ocrkit.tabench.geometry import bounding_box

    return [list(query.box)] if query.task == "r2t" else [bounding_box(s) for s in query.boxes]


def pointing(heat: Any, boxes: list[list[float]]) -> tuple[bool, float]:
    """Is the heatmap's maximum inside a target box; the boxes' share of the image (chance)."""
    import numpy as np

    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    inside = np.zeros(heat.shape, bool)
    for x1, y1, x2, y2 in boxes:
        inside[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
    return bool(inside[y, x]), float(inside.mean())


def answer_bench(
    model_dir: Path, queries: list[Any], cache: Path, threads: int, max_new_tokens: int = 64
) -> list[dict]:
    """Answer every query (appending to ``cache`` as it goes; cached ids are not asked again)."""
    import torch

    from ocrkit.anchoring.inference import QMaskPredictor
    from ocrkit.tabench.adapters import build_adapter
    from ocrkit.tabench.local import load_rgb

    torch.set_num_threads(threads)
    done = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            try:
                rec = json.loads(line)
                done[rec["id"]] = rec
            except (json.JSONDecodeError, KeyError):
                continue  # a torn last line of a killed run
    todo = [q for q in queries if q.id not in done]
    if todo:
        predictor = QMaskPredictor.load(model_dir, device="cpu", max_new_tokens=max_new_tokens)
        adapter = build_adapter("json")
        with open(cache, "a") as f:
            for q in todo:
                image = load_rgb(str(q.image_path))
                start = time.perf_counter()
                result = predictor.anchor(image, adapter.prompt(q))
                hit, chance = pointing(result.heatmaps[0], target_boxes(q))
                rec = {
                    "id": q.id,
                    "answer": result.answer,
                    "mask_boxes": result.boxes[0],
                    "hit": hit,
                    "chance": chance,
                    "seconds": round(time.perf_counter() - start, 3),
                }
                f.write(json.dumps(rec) + "\n")
                f.flush()
                done[q.id] = rec
    return [done[q.id] for q in queries]


def score_arm(queries: list[Any], answers: list[dict]) -> dict[str, Any]:
    """TABench scores with T2R boxes from the answer (``text``) and from the mask (``mask``)."""
    from ocrkit.tabench.adapters import build_adapter
    from ocrkit.tabench.scoring import score

    adapter = build_adapter("json")
    text = {a["id"]: {"id": a["id"], "raw": a["answer"]} for a in answers}
    mask = {
        a["id"]: {"id": q.id, "boxes": a["mask_boxes"]} if q.task == "t2r" else text[q.id]
        for q, a in zip(queries, answers)
    }
    out: dict[str, Any] = {
        "text": score(queries, text, adapter),
        "mask": score(queries, mask, adapter),
    }
    out["pointing"] = pointing_summary(queries, answers)
    out["seconds_per_query"] = sum(a["seconds"] for a in answers) / max(len(answers), 1)
    return out


def pointing_summary(queries: list[Any], answers: list[dict]) -> dict[str, Any]:
    groups: dict[str, list[tuple[bool, float]]] = {}
    for q, a in zip(queries, answers):
        for key in (q.task, f"{q.category}/{q.task}"):
            groups.setdefault(key, []).append((a["hit"], a["chance"]))
    return {
        k: {
            "n": len(v),
            "hit_rate": 100.0 * sum(h for h, _ in v) / len(v),
            "chance": 100.0 * sum(c for _, c in v) / len(v),
        }
        for k, v in sorted(groups.items())
    }


def eval_arm(
    out: Path, arm: str, bench: Path, limit: int | None, threads: int, max_new_tokens: int = 64
) -> dict:
    """Answer and score one arm's final model; the scores JSON lands in OUTPUT/ARM/."""
    from ocrkit.tabench.report import write_report
    from ocrkit.utils.io import atomic_write_json

    path = out / arm / "bench_scores.json"
    if path.is_file():
        return json.loads(path.read_text())
    queries = bench_subset(bench, limit)
    started = time.time()
    cache = out / arm / "bench_answers.jsonl"
    answers = answer_bench(out / arm / "final", queries, cache, threads, max_new_tokens)
    result = score_arm(queries, answers)
    result["minutes"] = (time.time() - started) / 60
    result["queries"] = len(queries)
    for mode in ("text", "mask"):
        result[mode]["run"] = {"answerer": f"qmask-study {arm} (T2R boxes from the {mode})"}
        write_report(result[mode], out / arm / f"report_{mode}.md", out / arm / f"{mode}.png")
    atomic_write_json(path, result)
    return result


# --- driver ---------------------------------------------------------------------------------


def hardware() -> dict[str, Any]:
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "gpu": None}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--output", type=Path, default=ROOT / "runs/qmask_study")
    p.add_argument("--recipe", type=Path, default=RECIPE, help="the arms' training recipe")
    p.add_argument("--model-spec", type=Path, default=MODEL_SPEC, help="the study's VLM")
    p.add_argument("--cache", type=Path, help="synthetic scenes (default: OUTPUT/cache)")
    p.add_argument("--minutes", type=float, default=22.0, help="training wall time per arm")
    p.add_argument("--steps", type=int, help="fix max_steps instead of timing")
    p.add_argument("--threads", type=int, default=1, help="torch threads per arm")
    p.add_argument("--bench", type=Path, help="tabench-local JSONL (default: build it)")
    p.add_argument("--data", type=Path, default=None, help="shared data (default: OCRKIT_DATA)")
    p.add_argument("--bench-limit", type=int, help="queries per category and direction")
    p.add_argument("--max-new-tokens", type=int, default=64, help="answer length limit")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=SCORES.json")
    p.add_argument("--heatmaps", type=int, default=2, help="figure queries per category")
    p.add_argument("--phase", choices=("all", "train", "eval", "report", "eval-arm"), default="all")
    p.add_argument("--arm", choices=tuple(ARMS), help="the arm of --phase eval-arm")
    p.add_argument("--publish", action="store_true", help="copy JSON and figures to docs/")
    return p.parse_args(argv)


def ensure_bench(args: argparse.Namespace) -> Path:
    if args.bench:
        return args.bench
    bench = args.output / "bench" / "tabench-local.jsonl"
    if not bench.is_file():
        cmd = [sys.executable, "-m", "ocrkit", "tabench", "build", "--preset", "tabench-local"]
        cmd += ["--data", os.environ["OCRKIT_DATA"], "--out", str(bench)]
        run_logged(cmd, args.output / "logs" / "bench.log", args.threads)
    return bench


def eval_subprocess(args: argparse.Namespace, out: Path, arm: str, bench: Path) -> None:
    """One arm's evaluation in its own process (generation is Python-bound: no shared GIL)."""
    if (out / arm / "bench_scores.json").is_file():
        return
    cmd = [sys.executable, __file__, "--phase", "eval-arm", "--arm", arm, "--output", str(out)]
    cmd += ["--bench", str(bench), "--threads", str(args.threads)]
    cmd += ["--max-new-tokens", str(args.max_new_tokens)]
    if args.bench_limit:
        cmd += ["--bench-limit", str(args.bench_limit)]
    run_logged(cmd, out / "logs" / f"eval_{arm}.log", args.threads)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.data:  # the recipe's ${OCRKIT_DATA}, here and in the subprocesses
        os.environ["OCRKIT_DATA"] = str(args.data.resolve())
    elif not os.environ.get("OCRKIT_DATA"):
        from ocrkit.utils.paths import shared_data_dir

        found = shared_data_dir()
        if found is None:
            sys.exit("no shared data: pass --data DIR or set OCRKIT_DATA")
        os.environ["OCRKIT_DATA"] = str(found)
    arms = list(ARMS)
    if args.phase in ("all", "train"):
        info = build_init(out / "init", args.model_spec)
        log(f"init: {info['name']}, {info['parameters']}")
        cache = (args.cache or out / "cache").resolve()
        render_synthetic(out, cache, args.recipe)
        plan = plan_steps(out, cache, args.minutes, args.threads, args.steps, args.recipe)
        log(f"plan: {plan}")
        with ThreadPoolExecutor(len(arms)) as pool:
            trained = list(
                pool.map(lambda a: train_arm(out, cache, a, plan, args.threads, args.recipe), arms)
            )
        log(f"trained: {trained}")
    if args.phase == "eval-arm":
        eval_arm(out, args.arm, args.bench, args.bench_limit, args.threads, args.max_new_tokens)
        return 0
    if args.phase in ("all", "eval"):
        bench = ensure_bench(args)
        if args.bench_limit:
            log(f"subset bench: {write_subset(bench, args.bench_limit)}")
        with ThreadPoolExecutor(len(arms)) as pool:
            list(pool.map(lambda a: eval_subprocess(args, out, a, bench), arms))
    if args.phase in ("all", "report"):
        from qmask_study_plots import write_study

        summary = write_study(out, arms, args, hardware())
        if args.publish:
            publish(out, summary)
    return 0


def publish(out: Path, summary: dict[str, Any]) -> None:
    """Copy the study JSON and figures into docs/ (the committed record)."""
    shutil.copyfile(out / "qmask_study.json", ROOT / "docs/qmask_study.json")
    for png in summary["figures"]:
        shutil.copyfile(out / png, ROOT / "docs/img" / png)
    log(f"published to docs/ ({len(summary['figures'])} figures)")


if __name__ == "__main__":
    raise SystemExit(main())
