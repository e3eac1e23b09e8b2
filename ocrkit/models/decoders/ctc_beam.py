"""CTC prefix beam search (Graves et al., ICML 2006, Section 3.2; Hannun et al., arXiv
1408.2873), torch-free: shared by :class:`~ocrkit.models.decoders.ctc.CTCDecoder` and the ONNX
runtime path.

Greedy read-out takes the single most likely frame path and collapses it. A labelling's
probability is the sum over *all* the frame paths that collapse to it, and the most likely path
need not belong to the most likely labelling: two frames of ``blank 0.6 / a 0.4`` read ``""``
greedily (0.36) though ``"a"`` has 0.64. Prefix beam search keeps the ``beam_width`` most likely
prefixes, each with the probability of its paths ending in a blank and in a character, and
returns the most likely labelling it found with that probability.

Per frame only the classes above ``prune`` are expanded (and the blank and the frame's argmax,
always): the usual pruning, which drops paths through near-impossible frames.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ocrkit.models.decoders.greedy import collapse_greedy_array

Prefix = tuple[int, ...]


def prefix_beam_search(
    probs: np.ndarray, beam_width: int = 8, blank: int = 0, prune: float = 1e-3
) -> tuple[list[int], float]:
    """Most likely labelling of frame probabilities ``probs [T, K]``: ``(class ids, log p)``.

    ``log p`` is the log of the summed probability of the labelling's frame paths kept by the
    search (exact for ``prune=0`` and a beam wide enough to hold every prefix).
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    probs = np.asarray(probs, dtype=np.float64)
    beams: dict[Prefix, tuple[float, float]] = {(): (1.0, 0.0)}  # prefix -> (p blank, p char)
    log_scale = 0.0  # the beams are rescaled each frame so long inputs do not underflow
    for frame in probs:
        candidates = set(np.flatnonzero(frame > prune).tolist()) | {int(frame.argmax())}
        candidates.discard(blank)
        p_blank = float(frame[blank])
        if not candidates:  # a blank-only frame (most of them): every path ends in a blank
            top = max(pb + pc for pb, pc in beams.values()) * p_blank
            if top <= 0.0:
                return [], -math.inf
            log_scale += math.log(top)
            beams = {prefix: ((pb + pc) * p_blank / top, 0.0) for prefix, (pb, pc) in beams.items()}
            continue
        step: dict[Prefix, list[float]] = {}
        for prefix, (pb, pc) in beams.items():
            total = pb + pc
            _add(step, prefix, total * p_blank, 0.0)
            last = prefix[-1] if prefix else None
            for c in candidates:
                p = float(frame[c])
                if c == last:  # a repeat collapses unless a blank separates the two
                    _add(step, prefix, 0.0, pc * p)
                    _add(step, (*prefix, c), 0.0, pb * p)
                else:
                    _add(step, (*prefix, c), 0.0, total * p)
        kept = sorted(step.items(), key=_rank)[:beam_width]
        top = kept[0][1][0] + kept[0][1][1]
        if top <= 0.0:
            return [], -math.inf
        log_scale += math.log(top)
        beams = {prefix: (pb / top, pc / top) for prefix, (pb, pc) in kept}
    best, (pb, pc) = min(beams.items(), key=_rank)
    return list(best), math.log(pb + pc) + log_scale


def _rank(item: tuple[Prefix, Any]) -> tuple[float, Prefix]:
    """Sort key: the most likely prefix first; ties broken by the prefix, so runs agree."""
    prefix, (pb, pc) = item
    return -(pb + pc), prefix


def _add(step: dict[Prefix, list[float]], prefix: Prefix, pb: float, pc: float) -> None:
    entry = step.get(prefix)
    if entry is None:
        step[prefix] = [pb, pc]
    else:
        entry[0] += pb
        entry[1] += pc


def collapse_beam_array(
    probs: np.ndarray,
    beam_width: int = 8,
    blank: int = 0,
    prune: float = 1e-3,
) -> np.ndarray:
    """Beam-search read-out of ``probs [B, T, K]`` in the layout of
    :func:`~ocrkit.models.decoders.greedy.collapse_greedy_array`: ``[B, L, K]``, one row per
    character, left-aligned, then blank rows.

    A character's row holds its probability at the first frame of its run in the labelling's
    most likely alignment (:func:`best_alignment`) and zeros elsewhere, so ``Tokenizer.decode``
    reads per-character and sequence confidences as it reads greedy ones: where the beam's
    labelling is the greedy one, that alignment is the greedy path and the rows' maxima are the
    greedy rows' (the confidences are equal)."""
    readings = [prefix_beam_search(row, beam_width, blank, prune)[0] for row in probs]
    length = max((len(ids) for ids in readings), default=0) + 1
    greedy = collapse_greedy_array(probs, blank, length)
    out = greedy.copy()
    for b, ids in enumerate(readings):
        if _greedy_ids(greedy[b], blank) == ids:
            continue  # the greedy path is the labelling's best alignment: its rows as they are
        out[b] = 0.0
        out[b, :, blank] = 1.0
        if not ids:
            continue
        frames = best_alignment(probs[b], ids, blank)
        slots = np.arange(len(ids))
        out[b, slots, blank] = 0.0
        out[b, slots, ids] = probs[b, frames, ids]
    return out


def _greedy_ids(rows: np.ndarray, blank: int) -> list[int]:
    ids = rows.argmax(-1).tolist()
    return ids[: ids.index(blank)] if blank in ids else ids


def best_alignment(probs: np.ndarray, ids: list[int], blank: int = 0) -> np.ndarray:
    """The first frame of each character's run in the most likely frame path of ``probs [T, K]``
    that collapses to ``ids`` (Viterbi over CTC's blank-interleaved states)."""
    return char_runs(_viterbi_path(probs, ids, blank))[0]


def _viterbi_path(probs: np.ndarray, ids: list[int], blank: int) -> np.ndarray:
    """The most likely frame path collapsing to ``ids``, as CTC state indices ``[T]`` (odd
    states are characters: state ``2 i + 1`` is ``ids[i]``)."""
    labels = np.full(2 * len(ids) + 1, blank)
    labels[1::2] = ids
    n_states = len(labels)
    with np.errstate(divide="ignore"):
        logp = np.log(probs[:, labels].astype(np.float64))  # [T, S]
    # a character state may also be entered from two states back (skipping the blank between
    # two different characters)
    skip = np.zeros(n_states, dtype=bool)
    skip[3::2] = labels[3::2] != labels[1:-2:2]
    score = np.full(n_states, -np.inf)
    score[:2] = logp[0, :2]
    back = np.zeros((len(probs), n_states), dtype=np.int64)
    states = np.arange(n_states)
    for t in range(1, len(probs)):
        stay, step = score, np.concatenate([[-np.inf], score[:-1]])
        jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        best = np.stack([stay, step, jump])
        choice = best.argmax(axis=0)
        back[t] = states - choice
        score = best[choice, states] + logp[t]
    state = n_states - 1 if score[-1] >= score[-2] else n_states - 2
    path = np.empty(len(probs), dtype=np.int64)
    for t in range(len(probs) - 1, -1, -1):
        path[t] = state
        state = back[t, state]
    return path


def char_runs(path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last frame of each character's run in a state path of :func:`_viterbi_path`."""
    frames = np.flatnonzero(path % 2 == 1)
    if not len(frames):
        return frames, frames
    new = np.r_[True, path[frames[1:]] != path[frames[:-1]]]
    last = np.r_[new[1:], True]
    return frames[new], frames[last]


def char_centers(probs: np.ndarray, rows: np.ndarray, blank: int = 0) -> list[list[float]]:
    """Where each character of a CTC read-out sits along the input: the centre of its run of
    frames in the labelling's most likely alignment, as a fraction of the frame axis (0..1).

    ``probs [B, T, K]`` are the frame probabilities, ``rows [B, L, K]`` the read-out of
    :func:`collapse_ctc_array` (its characters: the row maxima up to the first blank). The
    greedy path is that alignment whenever it collapses to the read-out (checked; no search
    then); otherwise a Viterbi pass finds it."""
    centers = []
    for frames, row in zip(probs, rows):
        ids = _greedy_ids(row, blank)
        greedy = frames.argmax(-1)
        path = _state_path(greedy, blank)
        if _collapse(greedy, blank) != ids:
            path = _viterbi_path(frames, ids, blank)
        starts, ends = char_runs(path)
        centers.append(((starts + ends + 1) / (2.0 * len(frames))).tolist())
    return centers


def read_ctc(
    tokenizer: Any, probs: np.ndarray, beam_width: int = 1, prune: float = 1e-3
) -> list[Any]:
    """Frame probabilities ``[B, T, K]`` -> ``tokenizer.decode`` rows of the CTC read-out
    (:func:`collapse_ctc_array`), each with its ``char_positions`` (:func:`char_centers`): how
    the PyTorch and the ONNX Runtime recognizers read a CTC model."""
    rows = collapse_ctc_array(probs, tokenizer.EOS, beam_width, prune)
    decoded = tokenizer.decode(rows)
    for row, centers in zip(decoded, char_centers(probs, rows, tokenizer.EOS)):
        row.char_positions = centers
    return decoded


def _collapse(path: np.ndarray, blank: int) -> list[int]:
    keep = np.r_[True, path[1:] != path[:-1]] & (path != blank)
    return path[keep].tolist()


def _state_path(path: np.ndarray, blank: int) -> np.ndarray:
    """A greedy class path as CTC states: character run ``i`` -> ``2 i + 1``, blanks even."""
    starts = np.r_[True, path[1:] != path[:-1]] & (path != blank)
    index = np.cumsum(starts)  # 1-based run number of the latest character run
    return np.where(path == blank, 2 * index, 2 * index - 1)


def collapse_ctc_array(
    probs: np.ndarray, blank: int = 0, beam_width: int = 1, prune: float = 1e-3
) -> np.ndarray:
    """The CTC read-out ``[B, L, K]`` of ``probs [B, T, K]``: greedy for ``beam_width`` 1
    (:func:`~ocrkit.models.decoders.greedy.collapse_greedy_array`), else
    :func:`collapse_beam_array`."""
    if beam_width == 1:
        return collapse_greedy_array(probs, blank)
    return collapse_beam_array(probs, beam_width, blank, prune)
