"""Import PP-OCR recognizers from their ONNX files into ocrkit model folders.

The ``rapidocr`` 3.x wheel ships ``PP-OCRv6_rec_small.onnx`` and ``rapidocr-onnxruntime`` 1.x
ships ``ch_PP-OCRv4_rec_infer.onnx``, both exported by paddle2onnx from PaddleOCR's folded
inference models (Apache-2.0). The graphs keep every weight as an initializer or a constant; this
module walks the graph in execution order, collects each parameterised operation's tensors
(convolution weight and bias, batch norm, MatMul + bias, layer-norm scale and shift, the scalar
affine blocks of PPLCNetV3) and assigns them, in that same order, to the parameters of
:mod:`ocrkit.models.backbones.ppocr` + :class:`~ocrkit.models.decoders.ctc.CTCDecoder`, checking
every shape. The charset is the dictionary stored in the graph's metadata (``character``),
PaddleOCR's class layout: blank first, the dictionary, then a space.

Needs the ``onnx`` package (``pip install 'ocrkit[onnx]'``) at conversion time only; the folder it
writes loads with ocrkit alone.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources, util
from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def _is_affine_input(node: Any, consts: dict[str, np.ndarray]) -> bool:
    """PPLCNetV3's affine blocks scale a convolution output or a hard-swish (``... / 6``)."""
    if node.op_type == "Conv":
        return True
    if node.op_type == "Div":
        divisor = [consts[i] for i in node.input if i in consts]
        return bool(divisor) and float(divisor[0].reshape(-1)[0]) == 6.0
    return False


def charset_of(graph: OnnxRecognizerGraph) -> list[str]:
    """PaddleOCR's class layout minus the blank: the dictionary, plus a space when the head has
    one more class than blank + dictionary (``use_space_char``)."""
    chars = list(graph.characters)
    if not chars:
        raise ValueError(
            "the ONNX graph has no 'character' dictionary in its metadata: not a PP-OCR "
            "recognition model as the rapidocr wheels ship it (a detector or classifier?)"
        )
    if graph.num_classes == len(chars) + 2:
        chars.append(" ")
    if graph.num_classes != len(chars) + 1:
        raise ValueError(
            f"the graph's head has {graph.num_classes} classes but its dictionary holds "
            f"{len(graph.characters)} characters"
        )
    return chars


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


def convert_ppocr(onnx_path: str | Path, output: str | Path, source: str | None = None) -> Path:
    """Convert a PP-OCR recognition ONNX file into an ocrkit model folder at ``output``: weights,
    config, charset, the Apache-2.0 license text and a NOTICE naming the source."""
    from ocrkit.models.recognizer import Recognizer

    onnx_path = Path(onnx_path)
    graph = read_graph(onnx_path)
    chars = charset_of(graph)
    config = recognizer_config(graph.arch, chars, name=onnx_path.stem)
    model = Recognizer.from_config(config)
    load_graph_weights(model, graph)
    folder = model.eval().save_pretrained(output)
    write_license(folder, ARCHS[graph.arch], source or str(onnx_path), onnx_path.name)
    return folder


def write_license(folder: Path, model_name: str, source: str, filename: str) -> None:
    """``LICENSE`` (Apache-2.0 text) and ``NOTICE`` (what the weights are, where they came from)."""
    licenses = Path(str(resources.files("ocrkit"))) / "assets" / "licenses"
    shutil.copyfile(licenses / "Apache-2.0.txt", folder / "LICENSE")
    (folder / "NOTICE").write_text(
        f"{model_name} text recognizer, converted to ocrkit's PyTorch modules.\n\n"
        f"Weights: PaddleOCR {model_name} recognition model (copyright Baidu / the PaddleOCR\n"
        "authors, https://github.com/PaddlePaddle/PaddleOCR), released under the Apache License,\n"
        f"Version 2.0 (LICENSE in this folder). Read from {filename} as distributed in\n"
        f"{source}.\n"
        "Changes: the ONNX graph's tensors were copied unmodified into ocrkit's modules and saved\n"
        "as safetensors by `ocrkit convert ppocr`.\n",
        encoding="utf-8",
    )
