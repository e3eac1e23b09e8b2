"""CTC prefix beam search: known answers, and agreement with brute-force enumeration."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from ocrkit.models.decoders.ctc import CTCDecoder
from ocrkit.models.decoders.ctc_beam import (
    best_alignment,
    char_centers,
    collapse_ctc_array,
    prefix_beam_search,
)
from ocrkit.text.charset import Charset
from ocrkit.text.tokenizer import Tokenizer


def labelling_probs(probs: np.ndarray, blank: int = 0) -> dict[tuple[int, ...], float]:
    """Every labelling's probability: the sum over all K**T frame paths collapsing to it."""
    out: dict[tuple[int, ...], float] = defaultdict(float)
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        collapsed = [k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k)]
        out[tuple(collapsed)] += math.prod(probs[t, k] for t, k in enumerate(path))
    return out


def test_beam_finds_the_labelling_greedy_misses():
    # two frames of blank 0.6 / 'a' 0.4: greedy reads '' (0.36), 'a' has 0.24 + 0.24 + 0.16
    probs = np.array([[0.6, 0.4], [0.6, 0.4]])
    ids, log_p = prefix_beam_search(probs, beam_width=4)
    assert ids == [1]
    assert math.exp(log_p) == pytest.approx(0.64)
    greedy = collapse_ctc_array(probs[None], beam_width=1)
    assert greedy[0, 0].argmax() == 0  # the greedy path is blank, blank


def test_repeated_character_needs_a_blank_between():
    # 'a' blank 'a' is the only way to read 'aa'; 'a' 'a' collapses to 'a'
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.1, 0.9]])
    table = labelling_probs(probs)
    ids, log_p = prefix_beam_search(probs, beam_width=8, prune=0.0)
    assert tuple(ids) == max(table, key=table.get) == (1, 1)
    assert math.exp(log_p) == pytest.approx(table[(1, 1)])


@pytest.mark.parametrize("seed", range(6))
def test_wide_beam_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(3, 0.7), size=5)  # T=5, blank + 2 characters
    table = labelling_probs(probs)
    ids, log_p = prefix_beam_search(probs, beam_width=64, prune=0.0)
    best = max(table, key=table.get)
    assert tuple(ids) == best
    assert math.exp(log_p) == pytest.approx(table[best], rel=1e-9)


def test_long_input_does_not_underflow():
    # 1,200 frames of blank 0.5 / 'a' 0.5, only the argmax (blank) expanded: '' at 0.5**1200,
    # below the smallest float64 (~5e-324); the beams are rescaled each frame
    probs = np.tile([[0.5, 0.5]], (1200, 1))
    ids, log_p = prefix_beam_search(probs, beam_width=4, prune=0.6)
    assert ids == []
    assert log_p == pytest.approx(1200 * math.log(0.5))


def test_rejects_beam_width_zero():
    with pytest.raises(ValueError, match="beam_width"):
        prefix_beam_search(np.ones((2, 2)) / 2, beam_width=0)


def test_ctc_decoder_beam_read_out_through_the_tokenizer():
    tokenizer = Tokenizer(Charset("ab"), max_length=8)
    decoder = CTCDecoder(tokenizer, in_features=3)
    # frame logits chosen through the weights: memory one-hot per frame picks a row of fc
    rows = torch.log(torch.tensor([[0.6, 0.4, 1e-9], [0.6, 0.4, 1e-9], [0.1, 1e-9, 0.9]]))
    with torch.no_grad():
        decoder.fc.weight.copy_(rows.T)
        decoder.fc.bias.zero_()
    memory = torch.eye(3)[None]  # [1, T=3, C=3]
    greedy = tokenizer.decode(decoder.generate(memory))[0]
    beam = tokenizer.decode(decoder.generate(memory, beam_width=4))[0]
    assert greedy.text == "b"
    assert beam.text == "ab"  # 0.576 against 'b' at 0.36 + 0.054
    # per character: its probability at the first frame of its run in the best alignment
    assert beam.char_confidences == pytest.approx([0.4, 0.9], rel=1e-5)
    assert beam.confidence == pytest.approx(0.36, rel=1e-5)


def test_best_alignment_run_starts():
    # 'a a blank a b b': 'aab' runs start at frames 0, 3 and 4
    probs = np.full((6, 3), 0.05)
    for t, k in enumerate([1, 1, 0, 1, 2, 2]):
        probs[t, k] = 0.9
    assert best_alignment(probs, [1, 1, 2]).tolist() == [0, 3, 4]


@pytest.mark.parametrize("seed", range(4))
def test_beam_confidences_equal_greedy_where_the_texts_agree(seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(6, 0.03), size=(8, 30)).astype(np.float32)  # peaked frames
    greedy = collapse_ctc_array(probs, beam_width=1)
    beam = collapse_ctc_array(probs, beam_width=8)
    tokenizer = Tokenizer(Charset("abcde"), max_length=40)
    agree = 0
    for row, g, b in zip(probs, tokenizer.decode(greedy), tokenizer.decode(beam)):
        if g.text == b.text:
            agree += 1
            assert b.char_confidences == pytest.approx(g.char_confidences, rel=1e-6)
            assert b.confidence == pytest.approx(g.confidence, rel=1e-6)
            # ... because the greedy path is then the labelling's best alignment
            path = row.argmax(-1)
            starts = [t for t in range(len(path)) if path[t] and (t == 0 or path[t - 1] != path[t])]
            ids = [int(path[t]) for t in starts]
            assert best_alignment(row, ids).tolist() == starts
    assert agree >= 4


def test_empty_reading_reads_like_greedy():
    probs = np.array([[[0.9, 0.1], [0.9, 0.1]]])
    assert np.array_equal(collapse_ctc_array(probs, beam_width=4), collapse_ctc_array(probs))


def test_char_centers_are_the_middles_of_the_alignment_runs():
    # greedy path a a _ b _ _ (blank 0): 'a' spans frames 0-1, 'b' frame 3, of 6
    probs = np.full((1, 6, 3), 0.1)
    for t, k in enumerate([1, 1, 0, 2, 0, 0]):
        probs[0, t, k] = 0.8
    (centers,) = char_centers(probs, collapse_ctc_array(probs))
    assert centers == pytest.approx([2 / 12, 7 / 12])
    # greedy reads '' (0.6 * 0.55); the beam reads 'a', whose best path is _ a (0.6 * 0.45 >
    # 0.4 * 0.55 for a _): 'a' sits on frame 1 of 2
    probs = np.array([[[0.6, 0.4], [0.55, 0.45]]])
    rows = collapse_ctc_array(probs, beam_width=4)
    assert char_centers(probs, rows) == [[0.75]] and char_centers(
        probs, collapse_ctc_array(probs)
    ) == [[]]


def test_positions_are_fractions_of_the_unpadded_image():
    from ocrkit.data.transforms import PPOCRResize
    from ocrkit.models.preprocess import predict_in_width_order
    from ocrkit.text.tokenizer import Decoded

    transform = PPOCRResize((48, 320))
    images = [np.zeros((48, 96, 3), np.uint8), np.zeros((24, 240, 3), np.uint8)]
    assert transform.content_fractions(images) == [96 / 480, 1.0]  # batch width 48 * 10

    def read_batch(batch):  # characters at 10% and 20% of the padded input
        return [Decoded("ab", 0.9, [0.9, 1.0], [0.1, 0.2]) for _ in batch]

    narrow, wide = predict_in_width_order(images, transform, 2, read_batch)
    assert narrow.char_positions == [0.5, 1.0] and wide.char_positions == [0.1, 0.2]


def _ctc_model(beam_width: int):
    from ocrkit.models import Recognizer

    torch.manual_seed(0)
    config = {
        "backbone": {"name": "ppocrv4_rec"},
        "decoder": {"name": "ctc", "beam_width": beam_width},
        "charset": "36",
        "max_length": 40,
        "img_size": [48, 320],
        "preprocess": {"name": "ppocr", "bgr": True},
    }
    return Recognizer.from_config(config).eval()


def _images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (48, int(rng.integers(80, 300)), 3), np.uint8) for _ in range(n)]


def test_saved_beam_width_is_the_models_read_out(tmp_path):
    from ocrkit.models import Recognizer

    model = _ctc_model(beam_width=8)
    model.save_pretrained(tmp_path / "m")
    loaded = Recognizer.from_pretrained(tmp_path / "m")
    assert loaded.decoder.beam_width == 8
    images = _images(6)
    beam = [p.text for p in loaded.predict(images)]
    greedy = [p.text for p in loaded.predict(images, beam_width=1)]
    assert beam == [p.text for p in model.predict(images, beam_width=8)]
    assert beam != greedy  # random weights: near-uniform frames, where the two read-outs differ


def test_unknown_decode_option_is_refused():
    with pytest.raises(TypeError):
        _ctc_model(1).predict(_images(1), beam_widht=4)


def test_onnx_runtime_reads_with_the_saved_beam_width(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from ocrkit.export.onnx import OnnxRecognizer, export_onnx

    model = _ctc_model(beam_width=8)
    onnx_model = OnnxRecognizer.from_pretrained(export_onnx(model, tmp_path / "o"), threads=1)
    images = _images(6)
    for options in ({}, {"beam_width": 1}, {"beam_width": 3}):
        expected = model.predict(images, **options)
        got = onnx_model.predict(images, **options)
        assert [p.text for p in got] == [p.text for p in expected]
        for a, b in zip(got, expected):
            assert a.confidence == pytest.approx(b.confidence, rel=1e-3, abs=1e-7)
            # positions on both paths (their values: near-uniform random frames have near-tied
            # alignments that float noise breaks either way; char_centers is tested above)
            assert len(a.char_positions) == len(a.text) == len(b.char_positions)
