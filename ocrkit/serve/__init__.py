"""``ocrkit serve``: ocrkit models behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

Q-Mask VLMs answer the prompt about the image(s); STR recognizers return the recognized text of
the image. uvicorn + Starlette carry the HTTP side with bounded admission, body and header limits
(docs/serving.md, with load figures); docs/qmask.md (Serving) covers scoring a served model.
"""

from ocrkit.serve.backends import Backend, QMaskBackend, RecognizerBackend, load_backend
from ocrkit.serve.protocol import ChatRequest, RequestError, chat_reply, parse_chat_request
from ocrkit.serve.server import ModelServer

__all__ = [
    "Backend",
    "ChatRequest",
    "ModelServer",
    "QMaskBackend",
    "RecognizerBackend",
    "RequestError",
    "chat_reply",
    "load_backend",
    "parse_chat_request",
]
