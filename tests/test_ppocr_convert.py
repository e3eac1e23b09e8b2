"""`ocrkit convert ppocr` beyond the two wheels: dictionary files, entries ocrkit's charsets cannot
hold, and the graph patterns of newer paddle2onnx exports (PP-OCRv5 mobile)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from ocrkit.models import Recognizer
from ocrkit.models.convert_ppocr import (
    OnnxRecognizerGraph,
    charset_of,
    read_dictionary,
    select_classes,
)

HAS_ONNX = importlib.util.find_spec("onnx") is not None
FLAG = "\U0001f1e9\U0001f1ea"  # one dictionary line, two code points (PP-OCRv5 has ten such)


def _graph(entries: list[str], num_classes: int) -> OnnxRecognizerGraph:
    weight = np.arange(4 * num_classes, dtype=np.float32).reshape(4, num_classes)
    bias = np.arange(num_classes, dtype=np.float32) + 100
    tensors = [("conv", np.ones((4, 3, 1, 1), np.float32)), ("matmul", weight), ("bias", bias)]
    return OnnxRecognizerGraph("ppocrv4_rec", tensors, entries, num_classes)


def test_read_dictionary_keeps_every_line_and_a_space_entry(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_bytes("a\r\nb\n \n\u00e9\n".encode())
    assert read_dictionary(path) == ["a", "b", " ", "\u00e9"]
    path.write_text("a\nb", encoding="utf-8")  # no final line end
    assert read_dictionary(path) == ["a", "b"]


def test_charset_drops_multi_code_point_and_repeated_entries_with_their_rows():
    # blank, a, FLAG, b, a (repeat), c, then the space of use_space_char: 7 classes
    classes = charset_of(_graph(["a", FLAG, "b", "a", "c"], num_classes=7))
    assert classes.chars == ["a", "b", "c", " "]
    assert classes.rows == [0, 1, 3, 5, 6]
    assert classes.dropped == [FLAG, "a"]
    graph = _graph(["a", FLAG, "b", "a", "c"], num_classes=7)
    select_classes(graph, classes.rows)
    weight, bias = graph.tensors[-2][1], graph.tensors[-1][1]
    assert graph.num_classes == 5
    assert weight.tolist() == [[r + 7 * i for r in classes.rows] for i in range(4)]
    assert bias.tolist() == [100 + r for r in classes.rows]


def test_charset_without_space_class_and_errors_that_name_the_fix():
    assert charset_of(_graph(["x", "y"], num_classes=3)).chars == ["x", "y"]
    with pytest.raises(ValueError, match="--dict"):
        charset_of(_graph([], num_classes=3))
    with pytest.raises(ValueError, match=r"head has 97 classes .* holds 2360 entries.*--dict"):
        charset_of(_graph(["<html>"] * 2360, num_classes=97))
    # a dictionary file replaces the metadata
    classes = charset_of(_graph(["<html>"] * 2360, num_classes=4), ["p", "q"])
    assert classes.chars == ["p", "q", " "] and classes.dropped == []


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx")
def test_read_graph_follows_identity_constants_bias_adds_and_hardswish_nodes(tmp_path):
    """PP-OCRv5 mobile's export: initializers behind Identity nodes, the convolution bias as a
    separate Add, the learnable affine blocks around a HardSwish node."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from ocrkit.models.convert_ppocr import read_graph

    w = np.random.default_rng(0).normal(size=(2, 3, 1, 1)).astype(np.float32)
    consts = {
        "w": w,
        "b": np.array([0.5, -0.5], np.float32).reshape(1, 2, 1, 1),
        "s1": np.array([1.5], np.float32),
        "t1": np.array([0.25], np.float32),
        "s2": np.array([0.75], np.float32),
        "t2": np.array([-0.125], np.float32),
    }
    nodes = [
        helper.make_node("Identity", ["w"], ["w_id"]),
        helper.make_node("Conv", ["x", "w_id"], ["conv"]),
        helper.make_node("Identity", ["b"], ["b_id"]),
        helper.make_node("Add", ["conv", "b_id"], ["conv_b"]),
        helper.make_node("Identity", ["conv_b"], ["conv_b2"]),
        helper.make_node("Mul", ["s1", "conv_b2"], ["m1"]),
        helper.make_node("Add", ["m1", "t1"], ["a1"]),
        helper.make_node("HardSwish", ["a1"], ["hs"]),
        helper.make_node("Mul", ["s2", "hs"], ["m2"]),
        helper.make_node("Identity", ["m2"], ["m2_id"]),
        helper.make_node("Add", ["m2_id", "t2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "v5_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    path = tmp_path / "v5_like.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), str(path))
    parsed = read_graph(path)
    assert [k for k, _ in parsed.tensors] == [
        "conv",
        "bias",
        "affine",
        "affine",
        "affine",
        "affine",
    ]
    values = [a.reshape(-1).tolist() for _, a in parsed.tensors[1:]]
    assert values == [[0.5, -0.5], [1.5], [0.25], [0.75], [-0.125]]
    assert np.array_equal(parsed.tensors[0][1], w)


def _wheel_v4():
    from ocrkit.models.convert_ppocr import wheel_model_path

    try:
        return wheel_model_path("rapidocr-onnxruntime")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx")
def test_a_dictionary_file_converts_a_graph_without_metadata(tmp_path, capsys):
    """The PP-OCRv4 wheel graph with its metadata removed converts from its dictionary file to
    the same weights; a flag and a repeat in that file drop exactly their two head rows."""
    import onnx

    from ocrkit.cli import main
    from ocrkit.models.convert_ppocr import convert_ppocr, read_graph

    source = _wheel_v4()
    entries = list(read_graph(source).characters)
    proto = onnx.load(str(source))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    assert main(["convert", "ppocr", "--onnx", str(bare), "--output", str(tmp_path / "x")]) == 1
    assert "give the model's dictionary file (--dict)" in capsys.readouterr().err
    dictionary = tmp_path / "dict.txt"
    dictionary.write_text("\n".join(entries) + "\n", encoding="utf-8")
    args = ["convert", "ppocr", "--onnx", str(bare), "--dict", str(dictionary)]
    assert main([*args, "--output", str(tmp_path / "bare")]) == 0
    reference = Recognizer.from_pretrained(convert_ppocr(source, tmp_path / "ref"))
    converted = Recognizer.from_pretrained(tmp_path / "bare")
    assert converted.charset.chars == reference.charset.chars
    for key, value in reference.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key

    edited = list(entries)
    edited[9], edited[19] = FLAG, entries[4]  # class 10 is two code points, class 20 a repeat
    dictionary.write_text("\n".join(edited) + "\n", encoding="utf-8")
    assert main([*args, "--output", str(tmp_path / "edited")]) == 0
    folder = tmp_path / "edited"
    edited_model = Recognizer.from_pretrained(folder)
    rows = [r for r in range(len(entries) + 2) if r not in (10, 20)]
    assert torch.equal(edited_model.decoder.fc.weight, reference.decoder.fc.weight[rows])
    assert torch.equal(edited_model.decoder.fc.bias, reference.decoder.fc.bias[rows])
    assert entries[9] not in edited_model.charset.chars
    assert f"{FLAG!r} {entries[4]!r}" in (folder / "NOTICE").read_text(encoding="utf-8")
    assert main([*args[:-1], str(tmp_path / "none.txt"), "--output", "y"]) == 1
    assert f"--dict {tmp_path / 'none.txt'}: no such file" in capsys.readouterr().err
