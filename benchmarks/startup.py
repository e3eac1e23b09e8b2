"""Cold start of the command line: wall time of fresh processes, side by side with RapidOCR.

    python benchmarks/startup.py [--image examples/word1.png] [--repeats 5]
                                 [--checkout DIR ...]

Each row is a new Python process run ``--repeats`` times (min and median reported; the min is
the least disturbed by other load). The reference measured in the same run is RapidOCR 3.x
reading the same crop with its recognizer only (``use_det=False, use_cls=False``); ratios are
row / RapidOCR (below 1 = faster than RapidOCR). ``--checkout`` measures other ocrkit checkouts
(e.g. the main branch before a change) with the same commands. ``--onnx default`` is exported
into a temporary cache first, so its rows time the cached folder, as every run after the first.
"""

from __future__ import annotations

import argparse
import os
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


def wall(argv: list[str], env: dict[str, str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(argv, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if out.returncode not in (0, 2):
            raise RuntimeError(f"{' '.join(argv)} failed:\n{out.stderr[-2000:]}")
    return times


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
    rows = [("RapidOCR 3.x, recognizer only", [py, "-c", RAPIDOCR, args.image], base)]
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
    results = [(label, wall(argv, env, args.repeats)) for label, argv, env in rows]
    reference = min(results[0][1])
    print(f"{'command':<52} {'min s':>6} {'median s':>8} {'min / RapidOCR':>14}")
    for label, times in results:
        best, median = min(times), statistics.median(times)
        print(f"{label:<52} {best:>6.2f} {median:>8.2f} {best / reference:>14.2f}")


if __name__ == "__main__":
    main()
