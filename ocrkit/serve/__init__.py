"""``ocrkit serve``: ocrkit models behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

Q-Mask VLMs answer the prompt about the image(s); STR recognizers return the recognized text of
the image. See docs/qmask.md (Serving).
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
