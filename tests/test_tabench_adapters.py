"""Adapters: known answers per family, parsers that never raise, coordinates that round-trip."""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ocrkit.tabench.adapters import ADAPTERS, build_adapter, smart_resize
from ocrkit.tabench.schema import Query

W, H = 1000, 500  # image size used by the known-answer cases
TARGET = [100.0, 100.0, 300.0, 200.0]

KNOWN = {
    "qwen2_vl": "<|object_ref_start|>Ave<|object_ref_end|><|box_start|>(100,200),(300,400)"
    "<|box_end|>",
    # smart_resize(500, 1000) = (504, 1008): the box in resized pixels
    "qwen2_5_vl": '```json\n[{"bbox_2d": [100.8, 100.8, 302.4, 201.6], "label": "Ave"}]\n```',
    "qwen3_vl": '[{"bbox_2d": [100, 200, 300, 400], "label": "Ave"}]',
    "glm4v": "The text is here: <|begin_of_box|>[[100,200,300,400]]<|end_of_box|>",
    "gemini": 'Sure.\n```json\n[{"box_2d": [200, 100, 400, 300], "label": "Ave"}]\n```',
    "kimi_vl": "The box is [0.1, 0.2, 0.3, 0.4].",
    "deepseek_ocr": "<|ref|>Ave<|/ref|><|det|>[[99.9, 199.8, 299.7, 399.6]]<|/det|>",
    "json": '{"bbox_2d": [100, 100, 300, 200]}',
}


def test_every_family_is_registered():
    assert set(KNOWN) <= set(ADAPTERS.list())


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_answers(name):
    boxes = build_adapter(name).parse_t2r(KNOWN[name], W, H)
    assert boxes is not None and len(boxes) == 1
    assert boxes[0] == pytest.approx(TARGET)


def test_several_boxes_fences_and_stray_text():
    raw = 'I found two:\n```json\n[{"bbox_2d": [1, 2, 3, 4]},\n {"bbox_2d": [5, 6, 7, 8]}]\n```'
    assert build_adapter("json").parse_t2r(raw, W, H) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    truncated = '[{"bbox_2d": [1, 2, 3, 4]}, {"bbox_2d": [5, 6'
    assert build_adapter("json").parse_t2r(truncated, W, H) == [[1, 2, 3, 4]]
    glm = "<|begin_of_box|>[[0,0,500,500],[500,500,1000,1000]]<|end_of_box|>"
    assert build_adapter("glm4v").parse_t2r(glm, W, H) == [[0, 0, 500, 250], [500, 250, 1000, 500]]
    for name in KNOWN:
        adapter = build_adapter(name)
        assert adapter.parse_t2r("I cannot find that text.", W, H) is None
        assert adapter.parse_t2r("", W, H) is None
        assert adapter.parse_t2r(None, W, H) is None


def test_r2t_parsing():
    adapter = build_adapter("json")
    assert adapter.parse_r2t('"Ave"') == "Ave"
    assert adapter.parse_r2t('```json\n{"text": "Main St"}\n```') == "Main St"
    assert adapter.parse_r2t("<think>hmm</think>\nWest") == "West"
    assert adapter.parse_r2t("   ") is None
    assert adapter.parse_r2t(["not", "text"]) is None


HINT = 'Answer in JSON: [{"bbox_2d": [x_min, y_min, x_max, y_max]}, ...].'
T2R_PAPER = 'Where is "Ave" located in the image?'


def test_paper_prompts_are_one_template_in_native_coordinates():
    """S1.2: the same wording for every family; only the coordinates (and the syntax Gemini
    and DeepSeek-OCR's interfaces demand) change. Box [200, 200, 600, 400] in a 2000 x 1000
    image: 0-1000 grid -> [100, 200, 300, 400]; Qwen2.5-VL smart_resize(1000, 2000) =
    (1008, 1988) -> [199, 202, 596, 403]."""
    q = Query("a", "i.png", 2000, 1000, "r2t", "", "x", box=[200, 200, 600, 400])
    t = Query("b", "i.png", 2000, 1000, "t2r", "", "Ave", boxes=[[0, 0, 1, 1]])
    at = "What is the text at location "
    expected = {
        "json": (at + "[200, 200, 600, 400]?", T2R_PAPER),
        "qwen2_vl": (at + "[100, 200, 300, 400]?", f"{T2R_PAPER} {HINT}"),
        "qwen2_5_vl": (at + "[199, 202, 596, 403]?", f"{T2R_PAPER} {HINT}"),
        "qwen3_vl": (at + "[100, 200, 300, 400]?", f"{T2R_PAPER} {HINT}"),
        "glm4v": (at + "[100, 200, 300, 400]?", f"{T2R_PAPER} {HINT}"),
        "kimi_vl": (at + "[0.100, 0.200, 0.300, 0.400]?", f"{T2R_PAPER} {HINT}"),
        "gemini": (
            at + "[200, 100, 400, 300]?",
            T2R_PAPER + ' Answer in JSON: [{"box_2d": [y_min, x_min, y_max, x_max]}, ...].',
        ),
    }
    for name, (r2t, t2r) in expected.items():
        adapter = build_adapter(name)
        assert (adapter.prompt_set, adapter.prompt(q), adapter.prompt(t)) == ("paper", r2t, t2r)
    assert build_adapter("qwen2_vl", format_hint=False).prompt(t) == T2R_PAPER
    # DeepSeek-OCR is T2R only (Table 1, S2: R2T "-"): no R2T prompt, its grounding prompt
    ds = build_adapter("deepseek_ocr")
    assert not ds.asks(q) and ds.asks(t)
    assert ds.prompt(t) == "Locate <|ref|>Ave<|/ref|> in the image."
    with pytest.raises(ValueError, match="no r2t prompt"):
        ds.prompt(q)
    with pytest.raises(ValueError, match="adapter 'json'"):
        build_adapter("json", bogus=1)
    with pytest.raises(ValueError, match="prompts must be one of"):
        build_adapter("qwen2_vl", prompts="mine")


def test_native_prompts_keep_the_family_wordings():
    q = Query("a", "i.png", 2000, 1000, "r2t", "", "x", box=[200, 200, 600, 400])
    t = Query("b", "i.png", 2000, 1000, "t2r", "", "Ave", boxes=[[0, 0, 1, 1]])
    native = {n: build_adapter(n, prompts="native") for n in ADAPTERS.list()}
    assert native["qwen2_vl"].prompt(q) == (
        "What is the text in the region <|box_start|>(100,200),(300,400)<|box_end|>? "
        "Answer with the text only."
    )
    assert native["qwen2_5_vl"].prompt(t) == (
        'Locate every instance of the text "Ave" in the image, '
        "output their bbox coordinates in JSON format."
    )
    assert "[200, 100, 400, 300]" in native["gemini"].prompt(q)  # y, x order
    assert native["deepseek_ocr"].prompt(q) == (
        "What is the text at <|det|>[[100, 200, 300, 400]]<|/det|>?"
    )
    assert all(a.asks(q) and a.settings()["prompts"] == "native" for a in native.values())


@functools.lru_cache(maxsize=1)
def _tf_smart_resize():
    """transformers' own ``smart_resize``, compiled from its installed source file.

    Importing the module pulls in torch and torchvision (tens of seconds on a busy CPU); the
    function itself only needs ``math``, so the test executes exactly the installed code.
    """
    import ast
    import importlib.util
    import math
    from pathlib import Path

    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        pytest.skip("transformers is not installed")
    src = Path(spec.origin).parent / "models/qwen2_vl/image_processing_qwen2_vl.py"
    tree = ast.parse(src.read_text(encoding="utf-8"))
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "smart_resize"]
    namespace = {"math": math}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(src), "exec"), namespace)
    return namespace["smart_resize"]


@settings(max_examples=200, deadline=None)
@given(
    h=st.integers(1, 8000),
    w=st.integers(1, 8000),
    limits=st.sampled_from(
        [(56 * 56, 28 * 28 * 1280), (56 * 56, 28 * 28 * 16384), (3136, 200_000)]
    ),
)
def test_smart_resize_matches_transformers(h, w, limits):
    reference = _tf_smart_resize()
    lo, hi = limits
    try:
        expected = reference(h, w, factor=28, min_pixels=lo, max_pixels=hi)
    except ValueError:
        with pytest.raises(ValueError):
            smart_resize(h, w, 28, lo, hi)
        return
    assert smart_resize(h, w, 28, lo, hi) == tuple(expected)


answers = st.one_of(
    st.text(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
        lambda c: (
            st.lists(c, max_size=5)
            | st.dictionaries(
                st.sampled_from(["bbox_2d", "box_2d", "bbox", "text", "label", "x"]), c, max_size=4
            )
        ),
        max_leaves=20,
    ).map(lambda v: json.dumps(v)),
    st.builds(
        lambda a, b: f"{a}```json\n{b}\n```<|begin_of_box|>{b}<|det|>{b}",
        st.text(max_size=20),
        st.text(alphabet='[]{},:0123456789.-"e ', max_size=60),
    ),
)


@settings(max_examples=100, deadline=None)
@given(raw=answers, w=st.integers(1, 4000), h=st.integers(1, 4000))
def test_parsers_never_raise(raw, w, h):
    for name in ADAPTERS.list():
        adapter = build_adapter(name)
        boxes = adapter.parse_t2r(raw, w, h)
        assert boxes is None or all(len(b) == 4 for b in boxes)
        text = adapter.parse_r2t(raw)
        assert text is None or (isinstance(text, str) and text)


@settings(max_examples=100, deadline=None)
@given(
    w=st.integers(16, 5000),
    h=st.integers(16, 5000),
    fx=st.lists(st.floats(0, 1), min_size=4, max_size=4),
)
def test_coordinates_round_trip(w, h, fx):
    assume(max(w, h) / min(w, h) <= 200)  # the Qwen processors reject wider images
    box = [fx[0] * w, fx[1] * h, fx[2] * w, fx[3] * h]
    for name in ADAPTERS.list():
        adapter = build_adapter(name)
        back = adapter.from_model(adapter.to_model(box, w, h), w, h)
        assert back == pytest.approx(box, abs=1e-6), name
