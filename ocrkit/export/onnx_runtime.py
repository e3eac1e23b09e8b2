"""The onnxruntime recognizer for folders written by :func:`ocrkit.export.onnx.export_onnx`.

CTC models (the embedded default) run on onnxruntime + numpy alone: preprocessing, the greedy
CTC collapse and the read-out are numpy (:mod:`ocrkit.models.decoders.greedy`, the same code the
PyTorch CTC decoder uses), so ``ocrkit recognize --onnx`` never imports torch. Token decoders (AR,
MDiff) run the decoder's own ``generate`` loop with onnxruntime injected as its ``network`` (and
the key/value-cached step graphs for AR), which imports torch on first use: one copy of every
loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrkit.models import checkpoint
from ocrkit.models.decoders.ctc_beam import read_ctc
from ocrkit.models.decoders.greedy import softmax
from ocrkit.models.preprocess import (
    ImageInput,
    make_transform,
    predict_in_width_order,
    recognize_in_batches,
    stack_arrays,
)
from ocrkit.text.charset import Charset
from ocrkit.text.tokenizer import Tokenizer
from ocrkit.types import Prediction
from ocrkit.utils import model_folder

if TYPE_CHECKING:
    import torch

ENCODER_NAME = "encoder.onnx"
DECODER_NAME = "decoder.onnx"
FORMAT = model_folder.ONNX
META_NAME = model_folder.CONFIG_FILES[FORMAT]  # "onnx.json", written last
IMAGES, MEMORY, TOKENS, LOGITS = "images", "memory", "tokens", "logits"
INSTALL_HINT = "pip install 'ocrkit[onnx]'"


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as exc:
        raise ImportError(f"{name} is needed for ONNX export/inference: {INSTALL_HINT}") from exc


class OnnxRecognizer:
    """A recognizer folder written by :func:`~ocrkit.export.onnx.export_onnx`, run by
    onnxruntime.

    Same ``predict``/``recognize`` as :class:`~ocrkit.models.Recognizer` (it is an evaluator
    ``Predictor``); ``generate_kwargs`` go to the decoder's loop (e.g. ``sampler="parallel"``).
    """

    def __init__(
        self,
        directory: str | Path,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        spin: bool | None = None,
    ) -> None:
        ort = _import("onnxruntime")
        directory = Path(directory)
        self.meta = model_folder.read_config(directory, expect=FORMAT).config
        config = checkpoint.normalize_config(checkpoint.read_folder(directory))
        self.config = config
        charset: Charset = checkpoint.resolve_charset(config["charset"])
        self.tokenizer = Tokenizer(charset, max_length=config["max_length"])
        self.img_size = (int(config["img_size"][0]), int(config["img_size"][1]))
        self.transform = make_transform(
            self.img_size, config["mean"], config["std"], config.get("preprocess")
        )
        self.ctc = self.meta.get("decoder_kind") == "ctc"
        # the CTC read-out saved with the model (CTCDecoder's beam_width); a call may override it
        self.beam_width = int(checkpoint.split_spec(config["decoder"])[1].get("beam_width", 1))
        # CTC folders whose encoder graph also writes the frame logits read a batch in one
        # onnxruntime call; folders exported before that run the encoder, then decoder.onnx.
        self.fused_ctc = self.ctc and LOGITS in self.meta["encoder"].get("outputs", {})
        if spin is None:
            spin = self.fused_ctc
        options = ort.SessionOptions()
        # Spinning intra-op threads wait for work without sleeping: faster when one session
        # runs back to back (fused CTC, batch 1 on 2 cores: 10.5 -> 8.2 ms), but with Python or a
        # second session between calls the spinning threads take those cores (token decoders:
        # 220 -> 301 img/s at batch 64 without it; an encoder + decoder.onnx pair: 10.5 -> 17 ms
        # at batch 1 with it). Measured by `benchmarks/onnx_spin.py`.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        providers = list(providers) if providers else ["CPUExecutionProvider"]

        def session(file: str) -> Any:
            return ort.InferenceSession(str(directory / file), options, providers=providers)

        self._session = session
        self.encoder_session = session(self.meta["encoder"]["file"])
        # Fused CTC folders read images in one call and open decoder.onnx only when asked.
        self._decoder_session = None if self.fused_ctc else session(self.meta["decoder"]["file"])
        self.decoder: Any = None  # token decoders: the torch module whose loop runs (lazily)
        self.cached_steps: Any = None
        if not self.ctc:
            self._build_loops(session)

    def _build_loops(self, session: Any) -> None:
        """Token decoders: the decoder module (meta device: no weights, only its Python loop)
        and, for AR, the key/value-cached step sessions. Imports torch."""
        import torch

        from ocrkit.export import onnx_steps
        from ocrkit.models.decoders import DECODERS

        name, kwargs = checkpoint.split_spec(self.config["decoder"])
        with torch.device("meta"):
            self.decoder = DECODERS.build(
                name,
                tokenizer=self.tokenizer,
                in_features=self.meta["memory_features"],
                **kwargs,
            ).eval()
        if "cached_steps" in self.meta:  # AR: greedy decoding with a key/value cache
            memory, step = (session(g["file"]) for g in self.meta["cached_steps"].values())
            self.cached_steps = onnx_steps.OnnxCachedSteps(memory, step)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        spin: bool | None = None,
    ) -> OnnxRecognizer:
        """Open an exported folder; ``threads`` sets onnxruntime's intra-op threads,
        ``providers`` its execution providers (default ``["CPUExecutionProvider"]``), ``spin``
        whether idle intra-op threads spin (default: only for one-call CTC graphs)."""
        return cls(directory, threads=threads, providers=providers, spin=spin)

    @property
    def decoder_session(self) -> Any:
        """The ``decoder.onnx`` session (opened on first use for fused CTC folders)."""
        if self._decoder_session is None:
            self._decoder_session = self._session(self.meta["decoder"]["file"])
        return self._decoder_session

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Normalized images ``[B, 3, H, W]`` (float32) -> memory ``[B, S, C]``."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        return self.encoder_session.run([MEMORY], {IMAGES: images})[0]

    def network(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The decoder's ``token_logits`` by onnxruntime: the ``network`` of its loops."""
        import torch

        feed = {
            MEMORY: np.ascontiguousarray(memory.detach().cpu().numpy(), dtype=np.float32),
            TOKENS: np.ascontiguousarray(tokens.detach().cpu().numpy(), dtype=np.int64),
        }
        return torch.from_numpy(self.decoder_session.run([LOGITS], feed)[0])

    def _read(self, memory: np.ndarray, **generate_kwargs: Any) -> list[Any]:
        """``Tokenizer.decode`` rows of one encoded batch."""
        if self.ctc:  # CTCDecoder's read-out (beam_width, prune) in numpy
            logits = self.decoder_session.run([LOGITS], {MEMORY: memory})[0]
            return self._ctc_read(logits, **generate_kwargs)
        import torch

        loops: dict[str, Any] = {"network": self.network}
        if self.cached_steps is not None:
            loops["cached"] = self.cached_steps
        with torch.inference_mode():
            probs = self.decoder.generate(torch.from_numpy(memory), **loops, **generate_kwargs)
        return self.tokenizer.decode(probs)

    def _ctc_read(
        self, logits: np.ndarray, beam_width: int | None = None, prune: float = 1e-3
    ) -> list[Any]:
        """Frame logits ``[B, T, K]`` -> decoded rows with character positions, as
        ``Recognizer.predict`` reads a CTC model: ``beam_width`` defaults to the model's own."""
        width = self.beam_width if beam_width is None else beam_width
        return read_ctc(self.tokenizer, softmax(logits.astype(np.float32)), width, prune)

    def predict(
        self, images: Sequence[np.ndarray], batch_size: int = 64, **generate_kwargs: Any
    ) -> list[Prediction]:
        """The evaluator's ``Predictor`` method: RGB ``uint8`` arrays -> predictions."""

        def read_batch(batch: list[np.ndarray]) -> list[Any]:
            images = stack_arrays(batch, self.transform)
            if self.fused_ctc:  # one call: the encoder graph writes the frame logits
                logits = self.encoder_session.run([LOGITS], {IMAGES: images})[0]
                return self._ctc_read(logits, **generate_kwargs)
            return self._read(self.encode(images), **generate_kwargs)

        return predict_in_width_order(images, self.transform, batch_size, read_batch)

    def recognize(
        self,
        inputs: ImageInput | Sequence[ImageInput],
        batch_size: int = 64,
        on_error: str = "skip",
        **generate_kwargs: Any,
    ) -> list[Prediction]:
        """Read image paths, PIL images or RGB arrays (one or a list); one prediction each (an
        unreadable input: logged, an empty prediction with ``error`` set; or ``on_error="raise"``)."""
        return recognize_in_batches(self.predict, inputs, batch_size, on_error, **generate_kwargs)


def providers_for(device: str | None) -> list[Any] | None:
    """onnxruntime providers for a torch-style device name: None (default CPU) for ``cpu``,
    CUDA (then CPU) for ``cuda`` / ``cuda:N``."""
    if device is None or device == "cpu":
        return None
    if device == "cuda" or device.startswith("cuda:"):
        index = device.partition(":")[2] or "0"
        if not index.isdigit():
            raise ValueError(f"device {device!r}: expected cuda or cuda:N")
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    raise ValueError(f"ONNX models run on cpu or cuda, not {device!r}")
