"""ONNX export of a :class:`~ocrkit.models.Recognizer` and an onnxruntime recognizer.

A recognizer is exported as two graphs: ``encoder.onnx`` (normalized images ``[B, 3, H, W]`` ->
memory tokens ``[B, S, C]``) and ``decoder.onnx`` (memory + token ids ``[B, T]`` -> logits
``[B, T, K]``: the decoder's ``token_logits``, one network pass on a whole sequence). The
recognizer that runs them, :class:`~ocrkit.export.onnx_runtime.OnnxRecognizer`, lives in
:mod:`ocrkit.export.onnx_runtime` (no torch import for CTC models) and is re-exported here.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ocrkit.export import onnx_steps
from ocrkit.export.onnx_runtime import (
    DECODER_NAME,
    ENCODER_NAME,
    FORMAT,
    IMAGES,
    LOGITS,
    MEMORY,
    META_NAME,
    TOKENS,
    OnnxRecognizer,
    _import,
    providers_for,
)
from ocrkit.models import checkpoint
from ocrkit.models.recognizer import Recognizer, load_recognizer
from ocrkit.utils import model_folder
from ocrkit.utils.io import atomic_write_json

logger = logging.getLogger(__name__)

__all__ = ["META_NAME", "OnnxRecognizer", "export_onnx", "providers_for"]


# ---- export --------------------------------------------------------------------------------
class _EncoderGraph(nn.Module):
    """images -> memory; with ``ctc_head`` also -> frame logits, so a CTC model reads a batch in
    one onnxruntime call (one session, whose threads may then spin: see ``OnnxRecognizer``)."""

    def __init__(self, backbone: nn.Module, ctc_head: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.ctc_head = ctc_head

    def forward(self, images: torch.Tensor) -> Any:
        memory = self.backbone(images)
        if self.ctc_head is None:
            return memory
        return memory, self.ctc_head.logits(memory)


class _FrameLogitsGraph(nn.Module):
    """CTC: memory -> frame logits (the greedy collapse runs in Python)."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        return self.decoder.logits(memory)


def _is_ctc(decoder: nn.Module) -> bool:
    return not callable(getattr(decoder, "token_logits", None)) and callable(
        getattr(decoder, "logits", None)
    )


class _DecoderGraph(nn.Module):
    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder.token_logits(memory, tokens)


def _export_graph(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    names: tuple[list[str], list[str]],
    dynamic: dict[str, dict[int, str]],
    opset: int,
    dynamo: bool,
) -> None:
    inputs, outputs = names
    options: dict[str, Any] = {"input_names": inputs, "output_names": outputs}
    if dynamo:
        auto = torch.export.Dim.AUTO
        shapes = {name: {axis: auto for axis in dynamic.get(name, {})} for name in inputs}
        options.update(dynamic_shapes=shapes, verbose=False, external_data=False)
    else:
        options.update(dynamic_axes=dynamic, do_constant_folding=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        # torch notes that it cannot fold strided slices (the stem's pooling pads): harmless
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(module, args, str(path), opset_version=opset, dynamo=dynamo, **options)


def export_onnx(
    model: Recognizer | str | Path,
    directory: str | Path,
    opset: int = 17,
    dynamo: bool = False,
    verify: bool = True,
) -> Path:
    """Write ``encoder.onnx``, ``decoder.onnx``, ``config.json``, ``charset.json`` and
    ``onnx.json`` to ``directory``; returns it.

    ``model`` is a Recognizer, a model folder or an embedded model's name (``default``,
    ``tiny``). ``dynamo=True`` uses the torch.export-based exporter (needs ``onnxscript``;
    opset >= 18) instead of the TorchScript one. ``verify`` runs both graphs once with
    onnxruntime (when installed) and records the max abs differences to torch in ``onnx.json``;
    one above 1e-3 (times the output scale) is an error.
    """
    _import("onnx")
    if dynamo and opset < 18:
        logger.info("the dynamo exporter writes opset 18 or newer: opset %d -> 18", opset)
        opset = 18
    if not isinstance(model, Recognizer):
        model = load_recognizer(model)  # a folder, or an embedded name (default, tiny)
    ctc = _is_ctc(model.decoder)
    if not ctc and not callable(getattr(model.decoder, "token_logits", None)):
        name = type(model.decoder).__name__
        raise ValueError(f"{name} has no token_logits(memory, tokens) to export")
    stale = (onnx_steps.MEMORY_NAME, onnx_steps.STEP_NAME)  # an earlier AR export's step graphs
    return model_folder.write_folder(
        directory, FORMAT, lambda tmp: _write_files(model, tmp, opset, dynamo, verify), stale
    )


def _write_files(
    model: Recognizer, directory: Path, opset: int, dynamo: bool, verify: bool
) -> dict[str, Any]:
    """The graphs, ``config.json`` and ``charset.json`` into ``directory``; returns the meta
    (``onnx.json``, written last by the caller)."""
    from ocrkit import __version__

    onnx = _import("onnx")
    ctc = _is_ctc(model.decoder)
    was_training = model.training
    cached = not ctc and onnx_steps.supports_cached_steps(model.decoder)
    try:
        inputs, expected = _export_graphs(model.eval(), directory, opset, dynamo)
        if cached:

            def export(module, args, path, names, dynamic) -> None:
                _export_graph(module, args, path, names, dynamic, opset, dynamo)

            step_feeds, step_expected = onnx_steps.export_step_graphs(
                model.decoder, inputs[1], directory, export
            )
    finally:
        model.train(was_training)
    encoder, decoder = (_describe(onnx, directory / n) for n in (ENCODER_NAME, DECODER_NAME))
    # config.json + charset.json as a recognizer folder has them (no weights)
    config = checkpoint.write_files(directory, model.config, model.charset, None, __version__)
    atomic_write_json(directory / checkpoint.CONFIG_NAME, config)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "opset": encoder["opset"],
        "exporter": "dynamo" if dynamo else "torchscript",
        "encoder": encoder,
        "decoder": decoder,
        "memory_features": int(inputs[1].shape[-1]),
        "decoder_kind": "ctc" if ctc else "tokens",
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "ocrkit_version": __version__,
    }
    if cached:  # key/value-cached greedy decoding (AR)
        names = (onnx_steps.MEMORY_NAME, onnx_steps.STEP_NAME)
        meta["cached_steps"] = {n.split(".")[0]: _describe(onnx, directory / n) for n in names}
    if verify:
        meta["max_abs_diff"] = _verify(directory, inputs, expected)
        if cached and meta["max_abs_diff"] is not None:
            ort = _import("onnxruntime")
            diffs = onnx_steps.verify_step_graphs(ort, directory, step_feeds, step_expected)
            meta["max_abs_diff"].update(diffs)
    return meta


@torch.no_grad()
def _export_graphs(
    model: Recognizer, directory: Path, opset: int, dynamo: bool
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Trace both graphs on random inputs (batch 2); returns the inputs and torch's outputs."""
    decoder = model.decoder
    images = torch.randn(2, 3, *model.img_size, device=model.device)
    memory = model.backbone(images)
    length = decoder.max_length + 1  # > 1: the AR graph is traced with its causal mask
    tokens = torch.randint(0, model.tokenizer.num_classes, (2, length), device=model.device)
    batch, seq = {0: "batch"}, {0: "batch", 1: "length"}
    variable = callable(getattr(model.transform, "batch", None))  # PP-OCR: any input width
    ctc = _is_ctc(decoder)
    outputs = [MEMORY, LOGITS] if ctc else [MEMORY]
    out_axes = seq if variable else batch
    _export_graph(
        _EncoderGraph(model.backbone, decoder if ctc else None).eval(),
        (images,),
        directory / ENCODER_NAME,
        ([IMAGES], outputs),
        {IMAGES: {0: "batch", 3: "width"} if variable else batch}
        | {name: out_axes for name in outputs},
        opset,
        dynamo,
    )
    if ctc:
        _export_graph(
            _FrameLogitsGraph(decoder).eval(),
            (memory,),
            directory / DECODER_NAME,
            ([MEMORY], [LOGITS]),
            {MEMORY: seq, LOGITS: seq},
            opset,
            dynamo,
        )
        return (images, memory, None), (memory, decoder.logits(memory))
    _export_graph(
        _DecoderGraph(decoder).eval(),
        (memory, tokens),
        directory / DECODER_NAME,
        ([MEMORY, TOKENS], [LOGITS]),
        {MEMORY: batch, TOKENS: seq, LOGITS: seq},
        opset,
        dynamo,
    )
    return (images, memory, tokens), (memory, decoder.token_logits(memory, tokens))


def _describe(onnx: Any, path: Path) -> dict[str, Any]:
    """Check an exported graph; its file, opset and input/output shapes (str = dynamic axis)."""
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)

    def shapes(values: Any) -> dict[str, list[int | str]]:
        dims = {v.name: v.type.tensor_type.shape.dim for v in values}
        return {name: [d.dim_param or d.dim_value for d in dim] for name, dim in dims.items()}

    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return {
        "file": path.name,
        "opset": int(opset),
        "inputs": shapes(proto.graph.input),
        "outputs": shapes(proto.graph.output),
    }


def _verify(
    directory: Path, inputs: tuple[torch.Tensor, ...], expected: tuple[torch.Tensor, ...]
) -> dict[str, float] | None:
    """Run both graphs once with onnxruntime; max abs difference to torch per graph."""
    try:
        ort = _import("onnxruntime")
    except ImportError:
        logger.info("onnxruntime is not installed: the exported graphs were not run")
        return None
    images, memory, tokens = (t.cpu().numpy() if t is not None else None for t in inputs)
    decoder_feed = {MEMORY: memory} if tokens is None else {MEMORY: memory, TOKENS: tokens}
    runs = (
        ("encoder", ENCODER_NAME, {IMAGES: images}),
        ("decoder", DECODER_NAME, decoder_feed),
    )
    checks = []  # (name, onnx output, torch reference)
    for (name, file, feed), ref in zip(runs, expected):
        session = ort.InferenceSession(str(directory / file), providers=["CPUExecutionProvider"])
        outputs = session.run(None, feed)
        checks.append((name, outputs[0], ref))
        if len(outputs) > 1:  # CTC: the encoder graph also writes the frame logits
            checks.append(("encoder_logits", outputs[1], expected[1]))
    diffs = {}
    for name, output, ref in checks:
        ref = ref.float().cpu().numpy()
        diffs[name] = float(np.abs(output - ref).max())
        if diffs[name] > 1e-3 * max(1.0, float(np.abs(ref).max())):
            raise RuntimeError(f"ONNX {name} differs from torch by {diffs[name]:.3g}")
    return diffs
