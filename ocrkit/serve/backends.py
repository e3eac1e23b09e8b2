"""What the server runs: a Q-Mask VLM or an STR recognizer behind one ``answer`` method."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ocrkit.serve.protocol import ChatRequest, RequestError
from ocrkit.utils import model_folder


class Backend(Protocol):
    """A model that answers one chat request: ``(text, extra)``; ``extra`` may be empty."""

    name: str
    kind: str

    def answer(self, request: ChatRequest) -> tuple[str, dict[str, Any]]: ...


class QMaskBackend:
    """A Q-Mask folder: the answer text, with the mask's boxes under ``ocrkit.boxes``."""

    kind = "qmask"

    def __init__(
        self,
        directory: str | Path,
        name: str | None = None,
        device: str | None = None,
        max_new_tokens: int = 256,
    ) -> None:
        from ocrkit.anchoring.inference import QMaskPredictor

        self.predictor = QMaskPredictor.load(
            directory, device=device, max_new_tokens=max_new_tokens
        )
        self.name = name or Path(directory).name

    def answer(self, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        if not request.images:
            raise RequestError(400, "a Q-Mask model needs at least one image_url part", "messages")
        if not request.prompt.strip():
            raise RequestError(
                400, "a Q-Mask model needs a text part with the question", "messages"
            )
        result = self.predictor.anchor(
            request.images, request.prompt, max_new_tokens=request.max_tokens
        )
        return result.answer, {"boxes": result.boxes, "box_scores": result.scores}


class RecognizerBackend:
    """An STR recognizer folder: the answer is the recognized text of the (cropped) image."""

    kind = "recognizer"

    def __init__(
        self, directory: str | Path, name: str | None = None, device: str | None = None
    ) -> None:
        from ocrkit.models import Recognizer

        self.model = Recognizer.from_pretrained(directory, device=device)
        self.name = name or Path(directory).name

    def answer(self, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        if len(request.images) != 1:
            raise RequestError(
                400, "a recognizer reads exactly one (word or line) image per request", "messages"
            )
        pred = self.model.predict(request.images)[0]
        return pred.text, pred.details()


def load_backend(
    directory: str | Path, name: str | None = None, device: str | None = None
) -> Backend:
    """The backend for the folder's ``format`` (:func:`ocrkit.utils.model_folder.read_config`):
    a Q-Mask folder or an ocrkit recognizer; ``default`` and ``tiny`` name the embedded
    recognizers, as everywhere else."""
    from ocrkit.models.default import resolve_model_path

    name = name or Path(directory).name
    directory = resolve_model_path(directory)
    backends = {model_folder.QMASK: QMaskBackend, model_folder.RECOGNIZER: RecognizerBackend}
    try:
        fmt = model_folder.read_config(directory).format
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{directory} is neither a Q-Mask folder nor an ocrkit recognizer ({exc}); pass a "
            "folder written by 'ocrkit train'"
        ) from None
    if fmt not in backends:
        raise ValueError(
            f"{directory} holds a {fmt!r} model; serve runs a Q-Mask or recognizer folder"
        )
    return backends[fmt](directory, name, device)
