"""Inference speed: MDiff4STR decoder (1 and 3 steps) vs the AR decoder with KV cache.

    python benchmarks/mdiff_speed.py [--preset small|base|cpu] [--threads 2] [--batch 64]

One encoder, two decoders of the same width and depth, measured in the same run: latency at
batch 1 and images/s at batch ``--batch``. Random weights (speed does not depend on them):

* AR: greedy with KV cache forced to 26 steps (25 characters + EOS, the worst case) and to 8
  steps (a 7-character word + EOS: IIIT5K/SVT test words average 5.3/5.9 characters, and a
  batch runs until its longest word ends);
* MDiff: ``parallel`` (1 pass) and ``low_confidence`` with 3 steps and early stopping off (the
  3-pass budget of the paper); the passes actually run are printed.

Ratios are AR time / MDiff time (higher = MDiff faster), for the decoder alone and for the
whole recognizer (encoder + decoder). Presets: ``small`` = SVTRv2-S + 3-layer decoders of width
384 (MDiff4STR-S), ``base`` = SVTRv2-B + 6 layers (MDiff4STR-B), ``cpu`` = the encoder and
decoder size of recipes/str/vit_tiny_*_cpu.yaml.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from ocrkit.models import DECODERS, build_backbone
from ocrkit.text import Charset, Tokenizer
from ocrkit.utils.hardware import describe_hardware

PRESETS = {
    "small": ({"name": "svtrv2_small"}, {"depth": 3, "num_heads": 6}),
    "base": ({"name": "svtrv2_base"}, {"depth": 6, "num_heads": 6}),
    "cpu": ({"name": "vit_tiny", "depth": 6, "patch_size": 8}, {"depth": 1, "num_heads": 6}),
}


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` runs after one warm-up run, in seconds (as ``timeit`` advises: the
    minimum is the run least disturbed by other load on a shared machine)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.inference_mode()
def bench(preset: str, batch: int, repeats: int) -> None:
    backbone_spec, decoder_spec = PRESETS[preset]
    torch.manual_seed(0)
    spec = dict(backbone_spec)
    encoder = build_backbone(spec.pop("name"), **spec).eval()
    width = encoder.num_features
    tokenizer = Tokenizer(Charset.preset("94"), max_length=25)
    common = {"tokenizer": tokenizer, "in_features": width, "embed_dim": width, **decoder_spec}
    ar = DECODERS.build("ar", **common).eval()
    mdiff = DECODERS.build("mdiff", **common).eval()
    print(
        f"\npreset {preset}: {backbone_spec['name']} encoder ({width} wide), decoders "
        f"{decoder_spec['depth']} layers x {width}, charset 94, max_length 25",
        flush=True,
    )
    print(
        f"{'batch':>5} {'path':<36} {'ms/batch':>9} {'img/s':>8} {'AR26/x dec':>10} "
        f"{'AR26/x e2e':>10} {'AR8/x e2e':>9}"
    )
    for b in (1, batch):
        x = torch.randn(b, 3, 32, 128)
        memory = encoder(x)
        reps = repeats if b == 1 else max(2, repeats // 2)
        enc = timed(lambda x=x: encoder(x), reps)
        passes = {
            "parallel": mdiff.sample(memory, sampler="parallel").passes,
            "low_confidence": mdiff.sample(memory, steps=3, early_stop=False).passes,
        }
        rows = [
            ("AR, KV cache, 26 steps", lambda m=memory: ar.decode(m, stop_at_eos=False)),
            ("AR, KV cache, 8 steps", lambda m=memory: ar.decode(m, 7, stop_at_eos=False)),
            ("MDiff parallel, 1 pass", lambda m=memory: mdiff.sample(m, sampler="parallel")),
            (
                f"MDiff low_conf., 3 steps ({passes['low_confidence']} passes)",
                lambda m=memory: mdiff.sample(m, steps=3, early_stop=False),
            ),
        ]
        dec = {label: timed(fn, reps) for label, fn in rows}
        ar26, ar8 = dec[rows[0][0]], dec[rows[1][0]]
        print(f"{b:>5} {'encoder only':<36} {enc * 1e3:9.1f} {b / enc:8.1f}")
        for label, seconds in dec.items():
            e2e = enc + seconds
            print(
                f"{b:>5} {label:<36} {e2e * 1e3:9.1f} {b / e2e:8.1f} {ar26 / seconds:10.2f} "
                f"{(enc + ar26) / e2e:10.2f} {(enc + ar8) / e2e:9.2f}",
                flush=True,
            )
    print(
        "ms/batch and img/s: encoder + decoder. AR26/x: AR time (26 steps) / this row's time "
        "(decoder only, end to end); AR8/x: the same against AR at 8 steps."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", nargs="+", default=["small"], choices=sorted(PRESETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"hardware: {describe_hardware()}", flush=True)
    for preset in args.preset:
        bench(preset, args.batch, args.repeats)


if __name__ == "__main__":
    main()
