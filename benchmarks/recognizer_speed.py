"""Recognizer inference speed: KV-cached vs uncached greedy decoding, ViT-Tiny and ViT-Small.

    python benchmarks/recognizer_speed.py [--models vit_tiny vit_small] [--device cpu|cuda]
                                          [--threads 2] [--repeats 5]

Random weights (speed does not depend on them). Decoding is forced to the full 25 characters +
EOS (26 steps, the worst case, equal work for both paths); the natural-stop row lets the random
model stop at its own EOS and prints how many steps it took. The reference measured in the same
run is the uncached decoder, which recomputes the whole prefix every step; ratios are
uncached time / cached time (higher = the cache saves more). Encoder-only time is shown too.
"""

from __future__ import annotations

import argparse

import torch

from ocrkit.models import Recognizer
from ocrkit.utils.hardware import describe_hardware
from ocrkit.utils.timing import timed


@torch.inference_mode()
def bench_model(name: str, device: str, batch: int, repeats: int) -> None:
    torch.manual_seed(0)
    model = Recognizer.from_config({"backbone": {"name": name}}).to(device).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"\n{name} + ar decoder ({params:.1f} M parameters), max_length 25, device {device}",
        flush=True,
    )
    print(
        f"{'batch':>5} {'path':<28} {'ms/batch':>10} {'img/s':>9} {'uncached/cached':>16}",
        flush=True,
    )
    for b in (1, batch):
        x = torch.randn(b, 3, 32, 128, device=device)
        memory = model.backbone(x)
        # batch 1 is warmed up; a big batch runs for seconds, so first-call costs do not matter
        reps, warm = (repeats, True) if b == 1 else (max(1, repeats // 3), False)
        enc = timed(lambda x=x: model.backbone(x), reps, device, warm)
        cached = timed(
            lambda m=memory: model.decoder.decode(m, use_cache=True, stop_at_eos=False),
            reps,
            device,
            warm,
        )
        uncached = timed(
            lambda m=memory: model.decoder.decode(m, use_cache=False, stop_at_eos=False),
            reps,
            device,
            warm,
        )
        steps = model.decoder.decode(memory).shape[1]
        natural = timed(lambda m=memory: model.decoder.decode(m), reps, device, warm)
        rows = [
            ("encoder only", enc, None),
            ("enc + cached, forced 26", enc + cached, None),
            ("enc + uncached, forced 26", enc + uncached, (enc + uncached) / (enc + cached)),
            ("decoder cached, forced 26", cached, None),
            ("decoder uncached, forced 26", uncached, uncached / cached),
            (f"enc + cached, natural ({steps})", enc + natural, None),
        ]
        for label, seconds, ratio in rows:
            r = f"{ratio:16.2f}" if ratio is not None else f"{'':16}"
            print(f"{b:>5} {label:<28} {seconds * 1e3:10.1f} {b / seconds:9.1f} {r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vit_tiny", "vit_small"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"hardware: {describe_hardware(args.device)}", flush=True)
    for name in args.models:
        bench_model(name, args.device, args.batch, args.repeats)


if __name__ == "__main__":
    main()
