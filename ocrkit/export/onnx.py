"""ONNX export of a :class:`~ocrkit.models.Recognizer` and an onnxruntime recognizer.

A recognizer is exported as two graphs: ``encoder.onnx`` (normalized images ``[B, 3, H, W]`` ->
memory tokens ``[B, S, C]``) and ``decoder.onnx`` (memory + token ids ``[B, T]`` -> logits
``[B, T, K]``: the decoder's ``token_logits``, one network pass on a whole sequence). Decoding
loops stay in Python: :class:`OnnxRecognizer` runs the decoder's own ``generate`` (AR greedy,
MDiff samplers, revise) with onnxruntime injected as its ``network``, so there is one copy of
every loop.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ocrkit.export import onnx_steps
from ocrkit.models import checkpoint
from ocrkit.models.decoders import DECODERS
from ocrkit.models.decoders.ctc import collapse_greedy
from ocrkit.models.preprocess import (
    ImageInput,
    make_transform,
    recognize_in_batches,
    stack_batch,
    width_order,
)
from ocrkit.models.recognizer import Recognizer
from ocrkit.text.tokenizer import Tokenizer
from ocrkit.types import Prediction
from ocrkit.utils.io import atomic_write_json

logger = logging.getLogger(__name__)

ENCODER_NAME = "encoder.onnx"
DECODER_NAME = "decoder.onnx"
META_NAME = "onnx.json"
FORMAT = "ocrkit-onnx"
IMAGES, MEMORY, TOKENS, LOGITS = "images", "memory", "tokens", "logits"
INSTALL_HINT = "pip install 'ocrkit[onnx]'"


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as exc:
        raise ImportError(f"{name} is needed for ONNX export/inference: {INSTALL_HINT}") from exc


# ---- export --------------------------------------------------------------------------------
class _EncoderGraph(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)


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

    ``model`` is a Recognizer or a model folder. ``dynamo=True`` uses the torch.export-based
    exporter (needs ``onnxscript``; opset >= 18) instead of the TorchScript one. ``verify``
    runs both graphs once with onnxruntime (when installed) and records the max abs
    differences to torch in ``onnx.json``; one above 1e-3 (times the output scale) is an error.
    """
    from ocrkit import __version__

    onnx = _import("onnx")
    if dynamo and opset < 18:
        logger.info("the dynamo exporter writes opset 18 or newer: opset %d -> 18", opset)
        opset = 18
    if not isinstance(model, Recognizer):
        model = Recognizer.from_pretrained(model)
    ctc = _is_ctc(model.decoder)
    if not ctc and not callable(getattr(model.decoder, "token_logits", None)):
        name = type(model.decoder).__name__
        raise ValueError(f"{name} has no token_logits(memory, tokens) to export")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META_NAME).unlink(missing_ok=True)  # written last: marks a complete folder
    was_training = model.training
    cached = not ctc and onnx_steps.supports_cached_steps(model.decoder)
    for stale in (onnx_steps.MEMORY_NAME, onnx_steps.STEP_NAME):
        (directory / stale).unlink(missing_ok=True)
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
    _copy_model_card(model, directory, __version__)
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
    atomic_write_json(directory / META_NAME, meta)
    return directory


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
    _export_graph(
        _EncoderGraph(model.backbone).eval(),
        (images,),
        directory / ENCODER_NAME,
        ([IMAGES], [MEMORY]),
        {IMAGES: {0: "batch", 3: "width"}, MEMORY: seq}
        if variable
        else {IMAGES: batch, MEMORY: batch},
        opset,
        dynamo,
    )
    if _is_ctc(decoder):
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


def _copy_model_card(model: Recognizer, directory: Path, version: str) -> None:
    """``config.json`` + ``charset.json`` as the checkpoint module writes them (no weights)."""
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint.save_folder(tmp, model.config, model.charset, {}, version)
        for name in (checkpoint.CHARSET_NAME, checkpoint.CONFIG_NAME):
            shutil.copyfile(Path(tmp) / name, directory / name)


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
    diffs = {}
    for (name, file, feed), ref in zip(runs, expected):
        session = ort.InferenceSession(str(directory / file), providers=["CPUExecutionProvider"])
        ref = ref.float().cpu().numpy()
        diffs[name] = float(np.abs(session.run(None, feed)[0] - ref).max())
        if diffs[name] > 1e-3 * max(1.0, float(np.abs(ref).max())):
            raise RuntimeError(f"ONNX {name} differs from torch by {diffs[name]:.3g}")
    return diffs


# ---- inference -----------------------------------------------------------------------------
class OnnxRecognizer:
    """A recognizer folder written by :func:`export_onnx`, run by onnxruntime.

    Same ``predict``/``recognize`` as :class:`~ocrkit.models.Recognizer` (it is an evaluator
    ``Predictor``); ``generate_kwargs`` go to the decoder's loop (e.g. ``sampler="parallel"``).
    """

    def __init__(
        self,
        directory: str | Path,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
    ) -> None:
        ort = _import("onnxruntime")
        directory = Path(directory)
        meta_path = directory / META_NAME
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{directory} is not an ONNX recognizer folder (no {META_NAME})"
            )
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        config = checkpoint.normalize_config(checkpoint.read_folder(directory))
        self.config = config
        self.tokenizer = Tokenizer(
            checkpoint.resolve_charset(config["charset"]), max_length=config["max_length"]
        )
        self.img_size = (int(config["img_size"][0]), int(config["img_size"][1]))
        self.transform = make_transform(
            self.img_size, config["mean"], config["std"], config.get("preprocess")
        )
        self.ctc = self.meta.get("decoder_kind") == "ctc"
        # the decoder module only runs its Python loop here: no weights (meta device)
        name, kwargs = checkpoint.split_spec(config["decoder"])
        with torch.device("meta"):
            self.decoder = DECODERS.build(
                name,
                tokenizer=self.tokenizer,
                in_features=self.meta["memory_features"],
                **kwargs,
            ).eval()
        options = ort.SessionOptions()
        # The decoding loop runs Python between graph calls; spinning intra-op threads would burn
        # those cores meanwhile (measured on 2 cores: 220 -> 301 img/s at batch 64 without it).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        providers = list(providers) if providers else ["CPUExecutionProvider"]
        self.encoder_session = ort.InferenceSession(
            str(directory / self.meta["encoder"]["file"]), options, providers=providers
        )
        self.decoder_session = ort.InferenceSession(
            str(directory / self.meta["decoder"]["file"]), options, providers=providers
        )
        self.cached_steps: onnx_steps.OnnxCachedSteps | None = None
        if "cached_steps" in self.meta:  # AR: greedy decoding with a key/value cache
            memory, step = (
                ort.InferenceSession(str(directory / g["file"]), options, providers=providers)
                for g in self.meta["cached_steps"].values()
            )
            self.cached_steps = onnx_steps.OnnxCachedSteps(memory, step)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
    ) -> OnnxRecognizer:
        """Open an exported folder; ``threads`` sets onnxruntime's intra-op threads,
        ``providers`` its execution providers (default ``["CPUExecutionProvider"]``)."""
        return cls(directory, threads=threads, providers=providers)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Normalized images ``[B, 3, H, W]`` (float32) -> memory ``[B, S, C]``."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        return self.encoder_session.run([MEMORY], {IMAGES: images})[0]

    def network(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The decoder's ``token_logits`` by onnxruntime: the ``network`` of its loops."""
        feed = {
            MEMORY: np.ascontiguousarray(memory.detach().cpu().numpy(), dtype=np.float32),
            TOKENS: np.ascontiguousarray(tokens.detach().cpu().numpy(), dtype=np.int64),
        }
        return torch.from_numpy(self.decoder_session.run([LOGITS], feed)[0])

    def predict(
        self, images: Sequence[np.ndarray], batch_size: int = 64, **generate_kwargs: Any
    ) -> list[Prediction]:
        """The evaluator's ``Predictor`` method: RGB ``uint8`` arrays -> predictions."""
        order = width_order(images, self.transform)
        predictions: list[Prediction | None] = [None] * len(images)
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                index = order[start : start + batch_size]
                x = stack_batch([images[i] for i in index], self.transform)
                memory = self.encode(x.numpy())
                if self.ctc:
                    logits = self.decoder_session.run([LOGITS], {MEMORY: memory})[0]
                    probs = collapse_greedy(torch.from_numpy(logits).softmax(-1))
                else:
                    loops = {"network": self.network}
                    if self.cached_steps is not None:
                        loops["cached"] = self.cached_steps
                    probs = self.decoder.generate(
                        torch.from_numpy(memory), **loops, **generate_kwargs
                    )
                for i, d in zip(index, self.tokenizer.decode(probs)):
                    predictions[i] = Prediction(d.text, d.confidence, d.char_confidences)
        return predictions  # type: ignore[return-value]

    def recognize(
        self,
        inputs: ImageInput | Sequence[ImageInput],
        batch_size: int = 64,
        **generate_kwargs: Any,
    ) -> list[Prediction]:
        """Read image paths, PIL images or RGB arrays (one or a list); one prediction each."""
        return recognize_in_batches(self.predict, inputs, batch_size, **generate_kwargs)


def providers_for(device: str | None) -> list[Any] | None:
    """onnxruntime providers for a torch-style device name: None (default CPU) for ``cpu``,
    CUDA (then CPU) for ``cuda`` / ``cuda:N``."""
    if device is None or device == "cpu":
        return None
    if device == "cuda" or device.startswith("cuda:"):
        index = int(device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise ValueError(f"ONNX models run on cpu or cuda, not {device!r}")
