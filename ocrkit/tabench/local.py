"""How models answer TABench queries: over HTTP, or in process without HTTP.

Everything the runner asks goes through one :class:`Answerer` (``key`` + ``answer``):

* :class:`HttpAnswerer`: an OpenAI-compatible server, prompts and parsing from an adapter.
* :class:`VLMAnswerer`: an in-process :class:`LocalModel` (``answer(image, prompt) -> str``),
  e.g. ocrkit's own VLM; its raw text goes through the same adapter as a served model's.
* :class:`AnchorAnswerer`: a :class:`TextAnchorer` (``r2t(image, box)``/``t2r(image, text)``),
  e.g. an OCR engine that answers in pixels directly.

Local models are registered in ``ENGINES`` (``ocrkit tabench run --engine NAME``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ocrkit.registry import Registry
from ocrkit.tabench.adapters import Adapter
from ocrkit.tabench.cache import cache_key
from ocrkit.tabench.client import ChatClient
from ocrkit.tabench.schema import Box, Query, Shape

ENGINES: Registry[Any] = Registry("tabench engine")
# Q-Mask is a model family above TABench: its engine is imported only when asked for.
ENGINES.register_lazy("qmask", "ocrkit.anchoring.inference:qmask_engine")


@runtime_checkable
class LocalModel(Protocol):
    """A VLM in this process: one RGB ``uint8`` image and a prompt in, the answer text out."""

    def answer(self, image: np.ndarray, prompt: str) -> str: ...


@runtime_checkable
class TextAnchorer(Protocol):
    """A model that anchors text natively, in absolute pixels (OCR engines)."""

    def r2t(self, image: np.ndarray, box: Box) -> str: ...

    def t2r(self, image: np.ndarray, text: str) -> list[Shape]: ...


@lru_cache(maxsize=8)
def load_rgb(path: str) -> np.ndarray:
    """An image file as RGB ``uint8`` (:func:`ocrkit.data.image_io.read_image`; the last few
    are kept, read-only: queries come grouped by image)."""
    from ocrkit.data.image_io import read_image

    image = read_image(path)
    image.flags.writeable = False  # the cached array is shared between queries
    return image


class Answerer:
    """Answers one query; ``key`` names what the answer depends on (for the cache)."""

    name = "answerer"

    def key(self, query: Query) -> str:
        raise NotImplementedError

    def answer(self, query: Query) -> dict[str, Any]:
        """``{"raw": ...}`` or ``{"text": ...}`` / ``{"boxes": ...}``; raises on failure."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise one clear error when the model cannot answer at all (called once per run)."""

    def to_prediction(self, query: Query, answer: dict[str, Any]) -> dict[str, Any]:
        """The prediction record the scorer reads (parsed, with ``valid`` and the raw text)."""
        return {"id": query.id, **answer}


class _AdapterAnswerer(Answerer):
    adapter: Adapter

    def to_prediction(self, query: Query, answer: dict[str, Any]) -> dict[str, Any]:
        record = self.adapter.parse(query, answer.get("raw"))
        record["raw"] = answer.get("raw")
        return record


class HttpAnswerer(_AdapterAnswerer):
    def __init__(self, client: ChatClient, adapter: Adapter) -> None:
        self.client, self.adapter = client, adapter
        self.name = f"{client.model}@{client.endpoint}"

    def key(self, query: Query) -> str:
        return cache_key(query.id, query.image, self.adapter.prompt(query), self.client.model)

    def answer(self, query: Query) -> dict[str, Any]:
        return {"raw": self.client.complete(query.image_path, self.adapter.prompt(query))}

    def check(self) -> None:
        self.client.check()


class VLMAnswerer(_AdapterAnswerer):
    def __init__(self, model: LocalModel, adapter: Adapter, name: str) -> None:
        self.model, self.adapter, self.name = model, adapter, name

    def key(self, query: Query) -> str:
        return cache_key(query.id, query.image, self.adapter.prompt(query), self.name)

    def answer(self, query: Query) -> dict[str, Any]:
        image = load_rgb(str(query.image_path))
        return {"raw": self.model.answer(image, self.adapter.prompt(query))}


class AnchorAnswerer(Answerer):
    def __init__(self, model: TextAnchorer, name: str) -> None:
        self.model, self.name = model, name

    def key(self, query: Query) -> str:
        target = query.box if query.task == "r2t" else query.text
        return cache_key(query.id, query.image, query.task, target, self.name)

    def answer(self, query: Query) -> dict[str, Any]:
        image = load_rgb(str(query.image_path))
        if query.task == "r2t":
            assert query.box is not None
            return {"text": self.model.r2t(image, query.box)}
        return {"boxes": self.model.t2r(image, query.text)}


def local_answerer(name: str, adapter: Adapter | None = None, **options: Any) -> Answerer:
    """Build engine ``name`` and wrap it: anchorers directly, VLMs through ``adapter``."""
    model = ENGINES.build(name, **options)
    if isinstance(model, TextAnchorer):
        return AnchorAnswerer(model, name)
    if isinstance(model, LocalModel):
        if adapter is None:
            raise ValueError(f"engine {name!r} answers in text: pass --adapter")
        return VLMAnswerer(model, adapter, name)
    raise TypeError(f"engine {name!r} implements neither TextAnchorer nor LocalModel")
