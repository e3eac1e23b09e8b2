"""Charset, tokenizer, label protocols and metrics on hand-computed cases."""

import pytest
import torch

from ocrkit.registry import Registry
from ocrkit.text import (
    Charset,
    SetMetrics,
    Tokenizer,
    combine,
    get_protocol,
    normalized_edit_distance,
    protocol_for_charset,
)
from ocrkit.text.metrics import mcnemar_exact
from ocrkit.text.protocols import DROP_EMPTY, DROP_TOO_LONG, DROP_UNLABELED


def test_registry_build_list_and_errors():
    reg = Registry("widget")

    @reg.register("round")
    def round_widget(size=1):
        return ("round", size)

    assert reg.build("round", size=3) == ("round", 3)
    assert reg.list() == ["round"] and "round" in reg
    with pytest.raises(KeyError, match="Did you mean 'round'"):
        reg.get("rund")
    with pytest.raises(KeyError, match="already registered"):
        reg.register("round")(lambda: None)


def test_charset_presets_and_properties():
    assert len(Charset.preset("36")) == 36
    assert len(Charset.preset("62")) == 62
    c94 = Charset.preset("94")
    assert len(c94) == 94 and " " not in c94 and "~" in c94
    assert not Charset.preset("36").case_sensitive
    assert Charset.preset("62").case_sensitive
    with pytest.raises(ValueError, match="repeats"):
        Charset(("a", "a"))


def test_charset_from_file_unicode(tmp_path):
    one_per_line = tmp_path / "zh.txt"
    one_per_line.write_text("中\n文\n字\n", encoding="utf-8")
    cs = Charset.from_file(one_per_line)
    assert cs.chars == ("中", "文", "字") and cs.name == "zh" and not cs.is_ascii
    single_line = tmp_path / "abc.txt"
    single_line.write_text("abcab\n", encoding="utf-8")
    assert Charset.from_file(single_line).chars == ("a", "b", "c")
    cs.save(tmp_path / "cs.json")
    assert Charset.load(tmp_path / "cs.json") == cs


def test_tokenizer_layout_encode_decode():
    tok = Tokenizer(Charset.preset("36"), max_length=5)
    assert (tok.EOS, tok.BOS, tok.MASK, tok.PAD) == (0, 37, 38, 39)
    assert tok.num_classes == 37 and tok.vocab_size == 40
    ids = tok.encode(["ab", "abcdefgh", ""])
    # BOS a b EOS PAD PAD PAD ; truncated to 5 chars ; empty label is BOS EOS
    assert ids.tolist() == [
        [37, 11, 12, 0, 39, 39, 39],
        [37, 11, 12, 13, 14, 15, 0],
        [37, 0, 39, 39, 39, 39, 39],
    ]
    assert tok.encode(["a!b"], bos=False).tolist()[0][:3] == [11, 12, 0]  # '!' dropped
    probs = torch.zeros(1, 4, tok.num_classes)
    probs[0, 0, 11], probs[0, 1, 12], probs[0, 2, 0], probs[0, 3, 13] = 0.9, 0.5, 0.8, 1.0
    out = tok.decode(probs)[0]
    assert out.text == "ab"
    assert out.char_confidences == pytest.approx([0.9, 0.5])
    assert out.confidence == pytest.approx(0.9 * 0.5 * 0.8)
    assert tok.ids_to_text([11, 38, 12, 0, 13]) == "ab"


@pytest.mark.parametrize(
    ("name", "label", "expected"),
    [
        ("parseq36", "Hello, World!", "helloworld"),  # whitespace + punctuation + case
        ("parseq36", "Café", "cafe"),  # NFKD -> ASCII
        ("cased62", "Café-Bar", "CafeBar"),
        ("full94", "Café-Bar 2", "Cafe-Bar2"),
        ("raw", " Café ", " Café "),
        ("parseq36", "ÆSIR", "sir"),  # Æ has no ASCII decomposition: dropped by the ASCII fold
    ],
)
def test_protocol_label_normalization(name, label, expected):
    assert get_protocol(name).normalize_label(label) == (expected, None)


def test_protocol_drops_with_reasons():
    p = get_protocol("parseq36")
    # 26 characters with punctuation: too long *before* charset adaptation removes the dots
    assert p.normalize_label("a." * 13) == (None, DROP_TOO_LONG)
    assert p.normalize_label("a" * 25) == ("a" * 25, None)
    assert p.normalize_label("!!!") == (None, DROP_EMPTY)
    assert p.normalize_label(None) == (None, DROP_UNLABELED)
    assert get_protocol("raw").normalize_label("x" * 100)[0] == "x" * 100
    assert get_protocol("parseq36", max_length=3).normalize_label("abcd") == (None, DROP_TOO_LONG)
    # predictions are never dropped, only adapted
    assert p.normalize_prediction("A" * 40 + "!") == "a" * 40


def test_protocol_for_unicode_charset_keeps_cjk():
    cs = Charset.from_string("中文字ab", name="mini")
    p = protocol_for_charset(cs)
    assert p.normalize_label("中 文x字") == ("中文字", None)
    assert not p.fold_to_ascii


def test_ned_hand_computed():
    assert normalized_edit_distance("", "") == 0.0
    assert normalized_edit_distance("", "abc") == 1.0
    assert normalized_edit_distance("kitten", "sitting") == pytest.approx(3 / 7)
    assert normalized_edit_distance("abcd", "abce") == pytest.approx(0.25)
    assert normalized_edit_distance("中文", "中") == pytest.approx(0.5)


def test_set_metrics_and_sample_weighted_combination():
    a = SetMetrics("a")
    assert a.update("abc", "abc", 0.9)
    assert not a.update("abd", "abc", 0.5)  # NED 1/3
    b = SetMetrics("b")
    for _ in range(2):
        b.update("", "xyz", 0.0)  # NED 1
    assert a.accuracy == pytest.approx(50.0)
    assert a.one_minus_ned == pytest.approx(100 * (1 - (1 / 3) / 2))
    assert a.mean_confidence == pytest.approx(0.7)
    total = combine([a, b])
    assert total.samples == 4 and total.correct == 1
    assert total.accuracy == pytest.approx(25.0)  # sample-weighted, not mean of 50 and 0
    assert total.one_minus_ned == pytest.approx(100 * (1 - (1 / 3 + 2) / 4))


@pytest.mark.parametrize(
    ("only_a", "only_b", "p"),
    [
        (0, 0, 1.0),  # no disagreement: no evidence either way
        (5, 5, 1.0),
        (0, 5, 0.0625),  # 2 * (1/2)^5
        (9, 1, 0.021484375),  # 2 * (1 + 10) / 2^10, symmetric in the two readers
        (1, 9, 0.021484375),
        (3, 5, 0.7265625),  # 2 * (1 + 8 + 28 + 56) / 2^8
    ],
)
def test_mcnemar_exact_matches_the_binomial_tail_by_hand(only_a, only_b, p):
    assert mcnemar_exact(only_a, only_b) == pytest.approx(p, abs=1e-12)


def test_mcnemar_exact_handles_thousands_of_disagreements():
    # a weak reader against a strong one disagrees on most of 3,647 crops: 2^n is far beyond a
    # float, the p-value is not
    assert mcnemar_exact(700, 700) == 1.0
    assert mcnemar_exact(1500, 40) == 0.0  # below the smallest float
    assert 0.0 < mcnemar_exact(2000, 1900) < 0.2


def test_mcnemar_exact_rejects_negative_counts():
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_exact(-1, 3)
