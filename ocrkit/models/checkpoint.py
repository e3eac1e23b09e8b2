"""The recognizer's model-folder format and its config: ``config.json``, ``model.safetensors``,
``charset.json`` (Hugging Face layout; weights written atomically, never pickled)."""

from __future__ import annotations

import copy
import inspect
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrkit.models.recognizer_config import RecognizerConfig, normalize_config  # noqa: F401
from ocrkit.text.charset import Charset
from ocrkit.utils.io import atomic_write, atomic_write_json

if TYPE_CHECKING:
    import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHARSET_NAME = "charset.json"
FORMAT = "ocrkit-recognizer"
logger = logging.getLogger(__name__)

# Backbone kwargs that point at initial weights: once weights live in model.safetensors they must
# not be read again when the folder is loaded.
_INIT_ONLY_KEYS = ("checkpoint_path", "trust_pickle")


def resolve_charset(spec: str | Mapping[str, Any] | Charset) -> Charset:
    """A preset name, a charset file path, a ``{"name", "chars"}`` dict or a Charset."""
    if isinstance(spec, Mapping):
        return Charset.from_json(dict(spec))
    return Charset.resolve(spec)


def split_spec(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    kwargs = dict(spec)
    return kwargs.pop("name"), kwargs


def with_defaults(cls: type, given: Mapping[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    """``given`` plus every JSON-able constructor default of ``cls`` it leaves out.

    Saved configs then spell out every setting, so a model folder means the same model after a
    later release changes a default (``skip``: arguments the caller always passes).
    """
    out = dict(given)
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or name in skip or name in out or p.default is inspect.Parameter.empty:
            continue
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        value = list(p.default) if isinstance(p.default, tuple) else p.default
        try:
            json.dumps(value)
        except TypeError:
            continue
        out[name] = value
    return out


def save_folder(
    directory: str | Path,
    config: Mapping[str, Any],
    charset: Charset,
    state_dict: Mapping[str, torch.Tensor],
    version: str,
) -> Path:
    """Write the three files of a model folder; each write is atomic."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(dict(config))
    for key in _INIT_ONLY_KEYS:
        config["backbone"].pop(key, None)
    config.update({"architecture": "Recognizer", "format": FORMAT, "ocrkit_version": version})
    config["charset"] = charset.to_json()
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write(
        directory / WEIGHTS_NAME,
        lambda p: save_file(tensors, str(p), metadata={"format": "pt", "ocrkit": version}),
    )
    atomic_write_json(directory / CHARSET_NAME, charset.to_json())
    atomic_write_json(directory / CONFIG_NAME, config)  # last: a folder with config is complete
    return directory


def read_folder(directory: str | Path) -> dict[str, Any]:
    """The config of a model folder, with ``charset.json`` (when present) as its charset.

    Its weights are ``model.safetensors``: initial-weight keys (``checkpoint_path``,
    ``trust_pickle``) in the folder's backbone config are dropped with a warning, so a folder can
    never make the loader open a pickle; only the caller may pass ``trust_pickle``.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory} is not a recognizer folder (no {CONFIG_NAME})")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format", FORMAT) != FORMAT:
        raise ValueError(f"{config_path} holds a {config['format']!r} model, not a recognizer")
    backbone = config.get("backbone")
    if isinstance(backbone, dict):
        dropped = [k for k in _INIT_ONLY_KEYS if backbone.pop(k, None) is not None]
        if dropped:
            logger.warning(
                "%s: backbone %s ignored (weights come from %s)",
                config_path,
                " and ".join(dropped),
                WEIGHTS_NAME,
            )
    charset_path = directory / CHARSET_NAME
    if charset_path.is_file():
        config["charset"] = json.loads(charset_path.read_text(encoding="utf-8"))
    return config
