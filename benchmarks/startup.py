"""Cold start of the command line: wall time of fresh processes, side by side with RapidOCR.

    python benchmarks/startup.py [--image examples/word1.png] [--repeats 5]
                                 [--checkout DIR ...]

Each row is a new Python process run ``--repeats`` times: wall time (min and median; the min is
the least disturbed by other load) and the CPU time (user + sys) of the process, which other jobs
on a shared machine disturb much less than the wall time. The reference measured in the same run is RapidOCR 3.x
reading the same crop with its recognizer only (``use_det=False, use_cls=False``); ratios are
row / RapidOCR (below 1 = faster than RapidOCR). ``--checkout`` measures other ocrkit checkouts
(e.g. the main branch before a change) with the same commands. ``--onnx default`` is exported
into a temporary cache first, so its rows time the cached folder, as every run after the first.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ocrkit.utils.hardware import describe_hardware

ROOT = Path(__file__).resolve().parents[1]
RAPIDOCR = (
    "from rapidocr import RapidOCR; import sys; "
    "r = RapidOCR()(sys.argv[1], use_det=False, use_cls=False, use_rec=True); print(r.txts)"
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_runs(argv: list[str], env: dict[str, str], repeats: int) -> tuple[list, list]:
    """Wall and CPU seconds of ``repeats`` fresh processes."""
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, start = cpu_seconds(), time.perf_counter()
        out = subprocess.run(argv, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - cpu)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{out.stderr[-2000:]}")
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(ROOT / "examples" / "word1.png"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkout", nargs="*", default=[str(ROOT)], help="ocrkit checkouts")
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="ocrkit-startup-")
    base = {**os.environ, "OCRKIT_CACHE": cache}
    py = sys.executable
    print(f"hardware: {describe_hardware('cpu')}; python {sys.version.split()[0]}")
    print(f"image: {args.image}; {args.repeats} cold processes per row\n")
    rows = [("RapidOCR 3.x (rapidocr.RapidOCR, rec only)", [py, "-c", RAPIDOCR, args.image], base)]
    for checkout in args.checkout:
        env = {**base, "PYTHONPATH": checkout}
        name = Path(checkout).name
        cli = [py, "-m", "ocrkit"]
        subprocess.run([*cli, "recognize", "--onnx", "default", args.image], env=env, check=True,
                       capture_output=True)  # fmt: skip
        rows += [
            (f"{name}: ocrkit --help", [*cli, "--help"], env),
            (f"{name}: ocrkit recognize (PyTorch)", [*cli, "recognize", args.image], env),
            (
                f"{name}: ocrkit recognize --onnx default",
                [*cli, "recognize", "--onnx", "default", args.image],
                env,
            ),
        ]
    results = [(label, *timed_runs(argv, env, args.repeats)) for label, argv, env in rows]
    wall_ref, cpu_ref = min(results[0][1]), min(results[0][2])
    header = ("wall min", "median", "/ RapidOCR", "CPU min", "/ RapidOCR")
    print(f"{'command (seconds)':<48}" + "".join(f"{h:>11}" for h in header))
    for label, walls, cpus in results:
        wall, cpu = min(walls), min(cpus)
        values = (wall, statistics.median(walls), wall / wall_ref, cpu, cpu / cpu_ref)
        print(f"{label:<48}" + "".join(f"{v:>11.2f}" for v in values))


if __name__ == "__main__":
    main()
