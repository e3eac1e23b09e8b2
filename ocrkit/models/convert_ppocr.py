"""Import PP-OCR recognizers from their ONNX files into ocrkit model folders.

The ``rapidocr`` 3.x wheel ships ``PP-OCRv6_rec_small.onnx`` and ``rapidocr-onnxruntime`` 1.x
ships ``ch_PP-OCRv4_rec_infer.onnx``, both exported by paddle2onnx from PaddleOCR's folded
inference models (Apache-2.0). The graphs keep every weight as an initializer or a constant; this
module walks the graph in execution order, collects each parameterised operation's tensors
(convolution weight and bias, batch norm, MatMul + bias, layer-norm scale and shift, the scalar
affine blocks of PPLCNetV3) and assigns them, in that same order, to the parameters of
:mod:`ocrkit.models.backbones.ppocr` + :class:`~ocrkit.models.decoders.ctc.CTCDecoder`, checking
every shape. Newer paddle2onnx exports (PP-OCRv5 mobile) route initializers through Identity
nodes, add convolution biases as separate Add nodes and use HardSwish nodes; the walk follows all
three. The charset is the dictionary stored in the graph's metadata (``character``) or given as
a file, PaddleOCR's class layout: blank first, the dictionary, then a space.

Needs the ``onnx`` package (``pip install 'ocrkit[onnx]'``) at conversion time only; the folder it
writes loads with ocrkit alone.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from importlib import resources, util
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

WHEEL_MODELS = {
    "rapidocr": ("rapidocr", "models/PP-OCRv6_rec_small.onnx"),
    "rapidocr-onnxruntime": ("rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx"),
}
ARCHS = {"ppocrv6_rec_small": "PP-OCRv6 small", "ppocrv4_rec": "PP-OCRv4 mobile"}


@dataclass
class OnnxRecognizerGraph:
    """What a PP-OCR recognition graph holds: architecture, tensors in order, dictionary."""

    arch: str
    tensors: list[tuple[str, np.ndarray]]  # (kind, array); kind "matmul" arrays are [in, out]
    characters: list[str]
    num_classes: int


def wheel_model_path(package: str) -> Path:
    """The recognizer ONNX file inside an installed wheel (``rapidocr`` or
    ``rapidocr-onnxruntime``); a clear error when the package is missing."""
    if package not in WHEEL_MODELS:
        raise ValueError(f"unknown wheel {package!r}; choose from {sorted(WHEEL_MODELS)}")
    module, relative = WHEEL_MODELS[package]
    if util.find_spec(module) is None:
        raise FileNotFoundError(
            f"the {package} wheel is not installed: pip install {package} "
            "(or pip install 'ocrkit[external]')"
        )
    path = Path(str(resources.files(module))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{package} is installed but has no {relative} ({path})")
    return path


def read_graph(path: str | Path) -> OnnxRecognizerGraph:
    """Parse a PP-OCR recognition ONNX file (see the module docstring)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise ImportError("converting ONNX files needs onnx: pip install 'ocrkit[onnx]'") from exc
    model = onnx.load(str(path))
    graph = model.graph
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer: dict[str, Any] = {}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            continue
        for out in node.output:
            producer[out] = node
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    for name in alias:  # newer exports pass initializers through Identity nodes
        root = name
        while root in alias:
            root = alias[root]
        if root in consts:
            consts[name] = consts[root]

    def source(name: str) -> Any:
        while name in alias:
            name = alias[name]
        return producer.get(name)

    def next_add_const(node: Any, size: int) -> np.ndarray | None:
        """The constant of the Add that follows ``node`` (through Identity nodes), if it has
        ``size`` elements: a bias PaddleOCR exported as a separate Add."""
        outs = list(node.output)
        while outs:
            name = outs.pop()
            for user in consumers.get(name, []):
                if user.op_type == "Identity":
                    outs.extend(user.output)
                elif user.op_type == "Add":
                    const = next((consts[i] for i in user.input if i in consts), None)
                    if const is not None and const.size == size:
                        return const.reshape(-1)
        return None

    tensors: list[tuple[str, np.ndarray]] = []
    for node in graph.node:
        op = node.op_type
        if op == "Conv":
            weight = consts[node.input[1]]
            tensors.append(("conv", weight))
            bias = consts[node.input[2]] if len(node.input) > 2 else None
            bias = bias if bias is not None else next_add_const(node, weight.shape[0])
            if bias is not None:
                tensors.append(("bias", bias.reshape(-1)))
        elif op == "BatchNormalization":
            tensors.extend(("bn", consts[i]) for i in node.input[1:5])
        elif op == "MatMul" and node.input[1] in consts and consts[node.input[1]].ndim == 2:
            weight = consts[node.input[1]]
            tensors.append(("matmul", weight))
            bias = next_add_const(node, weight.shape[1])
            if bias is not None:
                tensors.append(("bias", bias))
        elif op == "Mul":
            const = [consts[i] for i in node.input if i in consts]
            other = [i for i in node.input if i not in consts]
            if len(const) != 1 or len(other) != 1:
                continue
            src = source(other[0])
            while src is not None and src.op_type == "Add" and _const_inputs(src, consts) == 1:
                src = source(next(i for i in src.input if i not in consts))  # a bias Add
            if (
                const[0].ndim == 1
                and const[0].size > 1
                and src is not None
                and src.op_type == "Div"
            ):
                tensors.append(("norm", const[0]))  # layer-norm scale; its shift follows
                shift = next_add_const(node, const[0].size)
                tensors.append(("norm", shift if shift is not None else np.zeros_like(const[0])))
            elif const[0].size == 1 and src is not None and _is_affine_input(src, consts):
                shift = next_add_const(node, 1)
                tensors.append(("affine", const[0].reshape(1)))
                tensors.append(("affine", shift if shift is not None else np.zeros(1, np.float32)))
    meta = {p.key: p.value for p in model.metadata_props}
    characters = meta.get("character", "").split("\n") if "character" in meta else []
    num_classes = int(tensors[-1][1].shape[0]) if tensors else 0
    has_erf = any(n.op_type == "Erf" for n in graph.node)
    arch = "ppocrv6_rec_small" if has_erf else "ppocrv4_rec"
    return OnnxRecognizerGraph(arch, tensors, characters, num_classes)


def _const_inputs(node: Any, consts: dict[str, np.ndarray]) -> int:
    return sum(i in consts for i in node.input)


def _is_affine_input(node: Any, consts: dict[str, np.ndarray]) -> bool:
    """PPLCNetV3's affine blocks scale a convolution output or a hard-swish: ``x * relu6(x + 3)
    / 6`` in older exports, one ``HardSwish`` node in newer ones (PP-OCRv5 mobile)."""
    if node.op_type in ("Conv", "HardSwish"):
        return True
    if node.op_type == "Div":
        divisor = [consts[i] for i in node.input if i in consts]
        return bool(divisor) and float(divisor[0].reshape(-1)[0]) == 6.0
    return False


def read_dictionary(path: str | Path) -> list[str]:
    """A PaddleOCR character dictionary file: one entry per line (UTF-8; line ends dropped)."""
    text = Path(path).read_text(encoding="utf-8")
    return [line.rstrip("\r") for line in text.split("\n")[: -1 if text.endswith("\n") else None]]


@dataclass
class ClassMap:
    """The converted model's characters and the graph classes they read from (0: the blank),
    with the dictionary entries ocrkit's one-character-per-class charset cannot hold."""

    chars: list[str]
    rows: list[int]
    dropped: list[str]


def charset_of(graph: OnnxRecognizerGraph, characters: list[str] | None = None) -> ClassMap:
    """PaddleOCR's class layout: the blank, the dictionary (``characters``, else the graph's
    metadata), then a space when the head has one class more (``use_space_char``).

    ocrkit's charsets hold single characters, each once: an entry of several code points (the
    flag emoji of PP-OCRv5's dictionary) or a repeat of an earlier entry is dropped with its head
    row, so the model never writes it and the other rows read as before."""
    entries = list(characters if characters is not None else graph.characters)
    where = "the dictionary file" if characters is not None else "the graph's metadata"
    if not entries:
        raise ValueError(
            "the ONNX graph has no 'character' dictionary in its metadata: give the model's "
            "dictionary file (--dict), or this is not a PP-OCR recognition model (a detector?)"
        )
    if graph.num_classes == len(entries) + 2:
        entries.append(" ")
    if graph.num_classes != len(entries) + 1:
        raise ValueError(
            f"the graph's head has {graph.num_classes} classes (blank + dictionary [+ space]) but "
            f"{where} holds {len(entries)} entries: give the model's own dictionary file (--dict)"
        )
    chars, rows, dropped, seen = [], [0], [], set()
    for row, entry in enumerate(entries, start=1):
        if len(entry) != 1 or entry in seen:
            dropped.append(entry)
            continue
        seen.add(entry)
        chars.append(entry)
        rows.append(row)
    return ClassMap(chars, rows, dropped)


def select_classes(graph: OnnxRecognizerGraph, rows: list[int]) -> None:
    """Keep only the head's classes ``rows`` (the last ``matmul`` + ``bias`` tensors)."""
    if len(rows) == graph.num_classes:
        return
    (kind_w, weight), (kind_b, bias) = graph.tensors[-2:]
    if (kind_w, kind_b) != ("matmul", "bias"):
        raise ValueError("the graph's head is not a linear layer with a bias")
    graph.tensors[-2:] = [("matmul", weight[:, rows]), ("bias", bias[rows])]
    graph.num_classes = len(rows)


def recognizer_config(arch: str, chars: list[str], name: str) -> dict[str, Any]:
    """The ocrkit recognizer config of a converted PP-OCR model."""
    return {
        "backbone": {"name": arch},
        "decoder": {"name": "ctc"},
        "charset": {"name": name, "chars": "".join(chars)},
        "max_length": 40,
        "img_size": [48, 320],
        "mean": 0.5,
        "std": 0.5,
        "preprocess": {"name": "ppocr", "bgr": True},
    }


def load_graph_weights(model: torch.nn.Module, graph: OnnxRecognizerGraph) -> int:
    """Copy the graph's tensors into ``model`` (a Recognizer) in order; returns the count."""
    targets = [
        (k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
    ]
    if len(targets) != len(graph.tensors):
        raise ValueError(
            f"the ONNX graph holds {len(graph.tensors)} tensors, the {graph.arch} model "
            f"{len(targets)}: not a {ARCHS[graph.arch]} recognizer"
        )
    state: dict[str, torch.Tensor] = {}
    for (key, target), (kind, array) in zip(targets, graph.tensors):
        value = array.T if kind == "matmul" else array
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(f"{key}: ONNX {kind} tensor {value.shape} != {tuple(target.shape)}")
        state[key] = torch.tensor(np.array(value), dtype=target.dtype)
    model.load_state_dict(state, strict=False)
    return len(state)


def convert_ppocr(
    onnx_path: str | Path,
    output: str | Path,
    source: str | None = None,
    dictionary: str | Path | None = None,
) -> Path:
    """Convert a PP-OCR recognition ONNX file into an ocrkit model folder at ``output``: weights,
    config, charset, the Apache-2.0 license text and a NOTICE naming the source.

    ``dictionary``: the model's character dictionary file, for graphs without one in their
    metadata (or with a wrong one); dictionary entries ocrkit cannot hold are listed in the
    NOTICE and logged (:func:`charset_of`)."""
    from ocrkit.models.recognizer import Recognizer

    onnx_path = Path(onnx_path)
    graph = read_graph(onnx_path)
    classes = charset_of(graph, read_dictionary(dictionary) if dictionary else None)
    if classes.dropped:
        log.warning(
            "%s: %d dictionary entries dropped with their head rows (several code points or "
            "repeats; the model will not write them): %s",
            onnx_path.name,
            len(classes.dropped),
            " ".join(repr(e) for e in classes.dropped[:20]),
        )
    select_classes(graph, classes.rows)
    config = recognizer_config(graph.arch, classes.chars, name=onnx_path.stem)
    model = Recognizer.from_config(config)
    load_graph_weights(model, graph)
    folder = model.eval().save_pretrained(output)
    write_license(
        folder, ARCHS[graph.arch], source or str(onnx_path), onnx_path.name, classes.dropped
    )
    return folder


def write_license(
    folder: Path, model_name: str, source: str, filename: str, dropped: list[str] | None = None
) -> None:
    """``LICENSE`` (Apache-2.0 text) and ``NOTICE`` (what the weights are, where they came from,
    which dictionary entries were dropped)."""
    licenses = Path(str(resources.files("ocrkit"))) / "assets" / "licenses"
    shutil.copyfile(licenses / "Apache-2.0.txt", folder / "LICENSE")
    changes = ""
    if dropped:
        changes = (
            f"The head's rows of {len(dropped)} dictionary entries that are not one character or\n"
            f"repeat an earlier one were dropped: {' '.join(repr(e) for e in dropped)}\n"
        )
    (folder / "NOTICE").write_text(
        f"{model_name} text recognizer, converted to ocrkit's PyTorch modules.\n\n"
        f"Weights: PaddleOCR {model_name} recognition model (copyright Baidu / the PaddleOCR\n"
        "authors, https://github.com/PaddlePaddle/PaddleOCR), released under the Apache License,\n"
        f"Version 2.0 (LICENSE in this folder). Read from {filename} as distributed in\n"
        f"{source}.\n"
        "Changes: the ONNX graph's tensors were copied unmodified into ocrkit's modules and saved\n"
        "as safetensors by `ocrkit convert ppocr`.\n" + changes,
        encoding="utf-8",
    )
