"""Latency of a Qwen VL model with and without the CQMD mask head (paper: +2.71%).

For each family and size (random weights; ``tiny`` and a ``mid`` config of ~60M parameters) the
same request (one image, an R2T question) is timed three ways on CPU:

* ``prefill``: the VLM forward over the prompt (what produces the first answer token);
* ``prefill+head``: the same forward plus the CQMD head on its last hidden states;
* ``generate`` / ``generate+mask``: greedy answers of ``--new-tokens`` tokens, without and with
  the mask (the head reads the prefill through a forward hook, as ``QMaskPredictor`` does).

Also the FLOPs of the prefill with and without the head (``torch.utils.flop_counter``): a
machine-independent overhead figure. Printed: best of ``--repeats`` runs (the two variants timed alternately, so load drift on a
shared machine hits both), the overhead ratios, the parameter counts, the CPU model and the
thread count. The tiny configs' head is as large as their VLM; ``mid`` is the meaningful ratio.

    python benchmarks/qmask_latency.py --sizes tiny mid --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from ocrkit.utils.hardware import cpu_model


def paired_ms(
    a: Callable[[], object], b: Callable[[], object], repeats: int, warmup: int = 2
) -> tuple[float, float]:
    """Best-of-``repeats`` times of ``a`` and ``b``, timed alternately: on a shared machine other
    jobs only ever add time, so the minimum is the least disturbed estimate of each."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for i in range(repeats):
        for fn, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
    return min(ta), min(tb)


def bench(family: str, size: str, args: argparse.Namespace) -> dict[str, float]:
    from ocrkit.anchoring.model import MODEL_INPUTS, QMask, QMaskConfig
    from ocrkit.testing.tiny_vlm import tiny_processor, tiny_vlm

    processor = tiny_processor(family)
    processor.image_processor.size = {"shortest_edge": 56 * 56, "longest_edge": args.pixels}
    torch.manual_seed(0)
    model = QMask(
        tiny_vlm(family, processor, size),
        processor,
        QMaskConfig(tiny=family, head={"size": args.head_size}),
    ).eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (args.image, args.image, 3), dtype=np.uint8)
    q = "What is the text at location [120, 40, 310, 72]?"
    batch = model.collator()([{"images": [image], "prompt": q, "question": q, "answer": None}])
    inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}

    @torch.no_grad()
    def prefill() -> torch.Tensor:
        h = model.vlm.model(**inputs, use_cache=False).last_hidden_state
        return model.vlm.lm_head(h[:, -1])

    @torch.no_grad()
    def prefill_head() -> list[torch.Tensor]:
        h = model.vlm.model(**inputs, use_cache=False).last_hidden_state
        model.vlm.lm_head(h[:, -1])
        return model.masks_from_hidden(h, batch)

    tok = processor.tokenizer

    @torch.no_grad()
    def generate() -> torch.Tensor:
        return model.vlm.generate(
            **inputs,
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )

    norm = model.vlm.model.language_model.norm

    @torch.no_grad()
    def generate_mask() -> object:
        # QMaskPredictor's path on the same prepared inputs: prefill hook + head
        captured: list[torch.Tensor] = []
        handle = norm.register_forward_hook(
            lambda m, i, o: captured.append(o) if not captured else None
        )
        try:
            out = generate()
        finally:
            handle.remove()
        return out, model.masks_from_hidden(captured[0], batch)

    r = {
        "params_vlm": sum(p.numel() for p in model.vlm.parameters()) / 1e6,
        "params_head": sum(p.numel() for p in model.head.parameters()) / 1e6,
        "tokens": int(inputs["input_ids"].shape[1]),
        "visual": int((inputs["input_ids"] == model.image_token_id).sum()),
    }
    from torch.utils.flop_counter import FlopCounterMode

    for name, fn in (("gflop", prefill), ("gflop_head", prefill_head)):
        with FlopCounterMode(display=False) as counter:
            fn()
        r[name] = counter.get_total_flops() / 1e9
    r["prefill"], r["prefill_head"] = paired_ms(prefill, prefill_head, args.repeats)
    r["generate"], r["generate_mask"] = paired_ms(
        generate, generate_mask, max(1, args.repeats // 2), 1
    )
    return r


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--families", nargs="+", default=["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
    p.add_argument("--sizes", nargs="+", default=["tiny", "mid"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--image", type=int, default=448, help="square test image side (pixels)")
    p.add_argument("--pixels", type=int, default=448 * 448, help="processor max_pixels")
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument(
        "--head-size", default="paper", choices=["paper", "small"], help="CQMD head size"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# CPU: {cpu_model()}; torch threads: {torch.get_num_threads()}; torch {torch.__version__}"
    )
    print(
        f"# image {args.image}x{args.image}, max_pixels {args.pixels}, {args.new_tokens} new tokens, "
        f"best of {args.repeats} (generation: {max(1, args.repeats // 2)}), variants alternated"
    )
    header = (
        f"{'family':<11} {'size':<5} {'VLM M':>7} {'head M':>7} {'tok':>5} {'vis':>4} "
        f"{'GFLOP':>7} {'+head':>7} {'ratio':>6} "
        f"{'prefill ms':>11} {'+head ms':>9} {'ratio':>7} {'gen ms':>9} {'+mask ms':>9} {'ratio':>7}"
    )
    print(header)
    for size in args.sizes:
        for family in args.families:
            r = bench(family, size, args)
            print(
                f"{family:<11} {size:<5} {r['params_vlm']:>7.2f} {r['params_head']:>7.2f} {r['tokens']:>5} "
                f"{r['visual']:>4} {r['gflop']:>7.2f} {r['gflop_head']:>7.2f} "
                f"{r['gflop_head'] / r['gflop']:>6.3f} {r['prefill']:>11.1f} {r['prefill_head']:>9.1f} "
                f"{r['prefill_head'] / r['prefill']:>7.3f} {r['generate']:>9.1f} "
                f"{r['generate_mask']:>9.1f} {r['generate_mask'] / r['generate']:>7.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
