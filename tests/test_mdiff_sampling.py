"""MDiff4STR samplers on a stub decoder whose predictions and confidences are set by hand.

The stub records the token ids of every pass, so each test asserts exactly which positions were
committed before each pass, how many passes ran, and which pass each output came from.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from ocrkit.models.decoders.mdiff.sampling import (
    SAMPLERS,
    above_mean,
    revise,
    upto_first_eos,
)

C = 8  # classes: EOS = 0, characters 1..7
MASK = 10
M = MASK
Rule = Callable[[torch.Tensor, int], tuple[list[list[int]], list[list[float]]]]


class Stub:
    """``denoise``: predicts ``rule(tokens, call)`` = (ids, confidences) per row and position.

    The distribution puts ``conf`` on the id and spreads the rest evenly. ``probs[k]`` keeps the
    output of pass ``k`` so tests can check where each output position came from.
    """

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.calls: list[list[list[int]]] = []
        self.probs: list[torch.Tensor] = []

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        ids, conf = self.rule(tokens, len(self.calls))
        self.calls.append(tokens.tolist())
        ids_t, conf_t = torch.tensor(ids), torch.tensor(conf)
        probs = ((1 - conf_t) / (C - 1))[..., None].expand(*ids_t.shape, C).clone()
        probs.scatter_(-1, ids_t[..., None], conf_t[..., None])
        self.probs.append(probs)
        return probs


def fixed(ids: list[list[int]], conf: list[list[float]]) -> Stub:
    return Stub(lambda _tokens, _call: (ids, conf))


def start(b: int, t: int) -> torch.Tensor:
    return torch.full((b, t), MASK)


def run(name: str, stub: Stub, b: int, t: int, **kwargs):
    return SAMPLERS.get(name)(stub, start(b, t), MASK, **kwargs)


def test_helpers() -> None:
    ids = torch.tensor([[1, 2, 0, 3, 0], [1, 1, 1, 1, 1], [0, 5, 5, 5, 5]])
    assert upto_first_eos(ids).tolist() == [
        [True, True, True, False, False],
        [True] * 5,
        [True, False, False, False, False],
    ]
    conf = torch.tensor([[0.9, 0.5, 0.8, 0.7], [0.6, 0.6, 0.6, 0.1]])
    eligible = torch.tensor([[True, True, True, True], [True, True, True, False]])
    assert above_mean(conf, eligible).tolist() == [[True, False, True, False], [False] * 4]
    single = torch.tensor([[False, True, False, False]] * 2)
    assert not above_mean(conf, single).any()  # one eligible position never beats its mean


def test_low_confidence_commits_above_the_mean_before_eos() -> None:
    # "abc" + EOS, then junk after EOS with high confidence that must never be committed
    stub = fixed([[1, 2, 3, 0, 5, 6]], [[0.9, 0.5, 0.8, 0.7, 0.95, 0.95]])
    out = run("low_confidence", stub, 1, 6, steps=3)
    # pass 1: eligible 0..3 (mean 0.725) -> commit 0 (0.9) and 2 (0.8)
    # pass 2: eligible {1, 3} (mean 0.6) -> commit 3 (EOS, 0.7); one left -> one last pass
    # pass 3: eligible {1}: nothing to commit (a single position), its prediction is read
    assert stub.calls == [[[M] * 6], [[1, M, 3, M, M, M]], [[1, M, 3, 0, M, M]]]
    assert out.passes == 3
    assert torch.equal(out.probs[0, 0], stub.probs[0][0, 0])  # decided at pass 1
    assert torch.equal(out.probs[0, 3], stub.probs[1][0, 3])  # decided at pass 2
    assert torch.equal(out.probs[0, 1], stub.probs[2][0, 1])  # still masked: the last pass
    assert out.probs.argmax(-1)[0, :4].tolist() == [1, 2, 3, 0]


def test_low_confidence_step_budget_and_early_stops() -> None:
    stub = fixed([[1, 2, 3, 0, 5, 6]], [[0.9, 0.5, 0.8, 0.7, 0.95, 0.95]])
    assert run("low_confidence", stub, 1, 6, steps=2).passes == 2
    assert run("low_confidence", stub, 1, 6, steps=1).passes == 1
    # two eligible tokens: pass 1 commits the more confident, one is left -> one more pass
    stub = fixed([[4, 0, 5, 5]], [[0.9, 0.6, 0.99, 0.99]])
    out = run("low_confidence", stub, 1, 4, steps=3)
    assert stub.calls == [[[M] * 4], [[4, M, M, M]]] and out.passes == 2
    # EOS first: one eligible position, nothing to commit; the input would not change, so the
    # last pass reuses the first one's prediction instead of running the decoder again
    stub = fixed([[0, 3, 3]], [[0.9, 0.1, 0.1]])
    out = run("low_confidence", stub, 1, 3, steps=3)
    assert out.passes == 1 and len(stub.calls) == 1


def test_early_stop_can_be_switched_off() -> None:
    def rule(tokens: torch.Tensor, call: int):
        if call == 0:  # "a" + EOS: after committing "a" one eligible position is left
            return [[1, 0, 5, 5]], [[0.9, 0.5, 0.2, 0.2]]
        return [[1, 2, 3, 0]], [[0.9, 0.9, 0.5, 0.4]]  # ... then the EOS moves two places on

    early = Stub(rule)
    assert run("low_confidence", early, 1, 4, steps=5).passes == 2
    assert early.calls[-1] == [[1, M, M, M]]
    full = Stub(rule)
    assert run("low_confidence", full, 1, 4, steps=5, early_stop=False).passes == 4
    # pass 2 commits "b" (0.9 > mean 0.6), pass 3 "c", pass 4 reads the EOS; pass 5 would see
    # the same input again and is not run
    assert full.calls[1:] == [[[1, M, M, M]], [[1, 2, M, M]], [[1, 2, 3, M]]]


def test_low_confidence_rows_are_independent() -> None:
    # row 0 finishes after pass 1; row 1 needs more. Row 0 is unchanged by the extra passes.
    ids = [[2, 0, 1, 1, 1], [1, 2, 3, 4, 0]]
    conf = [[0.9, 0.3, 0.2, 0.2, 0.2], [0.9, 0.8, 0.3, 0.2, 0.1]]
    stub = fixed(ids, conf)
    out = run("low_confidence", stub, 2, 5, steps=3)
    # row 1 pass 1: mean 0.46 -> commit 0, 1; pass 2: eligible {2, 3, 4} mean 0.2 -> commit 2
    # row 0 pass 1: eligible {0, 1} mean 0.6 -> commit 0; {1} left
    assert stub.calls[1] == [[2, M, M, M, M], [1, 2, M, M, M]]
    assert stub.calls[2] == [[2, M, M, M, M], [1, 2, 3, M, M]]
    alone = fixed(ids[:1], conf[:1])
    solo = run("low_confidence", alone, 1, 5, steps=3)
    assert torch.equal(solo.probs[0], out.probs[0])


def test_semi_autoregressive_grows_a_prefix() -> None:
    ids = [[1, 2, 3, 4, 0, 5]]
    conf = [[0.6, 0.9, 0.9, 0.5, 0.8, 0.9]]
    stub = fixed(ids, conf)
    out = run("semi_autoregressive", stub, 1, 6, steps=3, block=2)
    # pass 1, window {0, 1}: mean 0.75 -> commit 1
    # pass 2, window 0..3: eligible {0, 2, 3} mean 0.667 -> commit 2
    # pass 3, window 0..5: eligible {0, 3, 4} (EOS at 4) mean 0.633 -> commit 4
    assert stub.calls == [[[M] * 6], [[M, 2, M, M, M, M]], [[M, 2, 3, M, M, M]]]
    assert out.passes == 3
    low = fixed(ids, conf)
    run("low_confidence", low, 1, 6, steps=3)
    assert low.calls[1] != stub.calls[1]  # without the window pass 1 commits 1, 2, 4


def test_autoregressive_one_token_per_pass() -> None:
    ids = [[1, 2, 0, 5, 5], [3, 0, 6, 6, 6]]
    stub = fixed(ids, [[0.5] * 5] * 2)
    out = run("autoregressive", stub, 2, 5)
    assert stub.calls == [
        [[M] * 5, [M] * 5],
        [[1, M, M, M, M], [3, M, M, M, M]],
        [[1, 2, M, M, M], [3, 0, M, M, M]],  # row 1 ended: untouched from here on
    ]
    assert out.passes == 3
    assert out.probs.argmax(-1)[:, :3].tolist() == [[1, 2, 0], [3, 0, 6]]
    assert torch.equal(out.probs[0, 2], stub.probs[2][0, 2])


def test_random_sampler_is_seeded_and_follows_p() -> None:
    stub = fixed([[1, 2, 3, 0]], [[0.5, 0.9, 0.6, 0.7]])
    assert run("random", stub, 1, 4, steps=3, p=1.0).passes == 1  # commits everything at once
    none = fixed([[1, 2, 3, 0]], [[0.5, 0.9, 0.6, 0.7]])
    assert run("random", none, 1, 4, steps=3, p=0.0).passes == 1  # commits nothing: the
    assert none.calls == [[[M] * 4]]  # unchanged input is never run twice
    a, b = fixed([[1, 2, 3, 4, 5, 6, 0]], [[0.5] * 7]), fixed([[1, 2, 3, 4, 5, 6, 0]], [[0.5] * 7])
    run("random", a, 1, 7, steps=3, generator=torch.Generator().manual_seed(3))
    run("random", b, 1, 7, steps=3, generator=torch.Generator().manual_seed(3))
    assert a.calls == b.calls and a.calls[1] != [[M] * 7]


def test_cloze_repredicts_each_position_with_full_context() -> None:
    def rule(tokens: torch.Tensor, call: int):
        row = tokens[0].tolist()
        ids = [1, 2, 0, 5]
        if row[:3] == [M, 2, 0]:  # position 0 re-read with "?b" + EOS visible: a "q" (7)
            ids = [7, 2, 0, 5]
        return [ids], [[0.6, 0.6, 0.6, 0.6]]

    stub = Stub(rule)
    out = run("cloze", stub, 1, 4)
    assert stub.calls == [
        [[M] * 4],  # the parallel draft "ab" + EOS; after EOS stays MASK
        [[M, 2, 0, M]],
        [[7, M, 0, M]],  # position 0 now holds the re-predicted 7
        [[7, 2, M, M]],
    ]
    assert out.passes == 4
    assert out.probs.argmax(-1)[0, :3].tolist() == [7, 2, 0]


def test_parallel_is_one_pass() -> None:
    stub = fixed([[3, 0, 1]], [[0.4, 0.5, 0.6]])
    out = run("parallel", stub, 1, 3)
    assert out.passes == 1 and stub.calls == [[[M] * 3]]
    assert torch.equal(out.probs, stub.probs[0])


def test_revise_replaces_less_confident_tokens() -> None:
    first = fixed([[1, 4, 3, 0, 6]], [[0.9, 0.4, 0.8, 0.9, 0.9]])
    probs = first(start(1, 5))

    def second_rule(tokens: torch.Tensor, call: int):
        return [[5, 2, 3, 0, 1]], [[0.5, 0.9, 0.7, 0.95, 0.99]]

    second = Stub(second_rule)
    out = revise(second, probs, MASK)
    assert second.calls == [[[1, 4, 3, 0, M]]]  # the decided text, MASK after EOS
    # position 0: 0.5 < 0.9 keeps "1"; 1: 0.9 > 0.4 takes "2"; 2: 0.7 < 0.8 keeps; 3: EOS 0.95
    assert out.probs.argmax(-1)[0, :4].tolist() == [1, 2, 3, 0]
    assert out.probs[0, 3].max().item() == pytest.approx(0.95)
    assert torch.equal(out.probs[0, 4], probs[0, 4])  # after EOS: untouched


def test_registry_names() -> None:
    assert SAMPLERS.list() == sorted(
        ["parallel", "low_confidence", "semi_autoregressive", "autoregressive", "random", "cloze"]
    )
