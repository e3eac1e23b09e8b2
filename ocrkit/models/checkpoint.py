"""The recognizer's model-folder format and its config: ``config.json``, ``model.safetensors``,
``charset.json`` (Hugging Face layout; written by :mod:`ocrkit.utils.model_folder`, config last,
never pickled)."""

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
from ocrkit.utils import model_folder
from ocrkit.utils.io import atomic_write_json

if TYPE_CHECKING:
    import torch

CONFIG_NAME = model_folder.CONFIG_NAME
WEIGHTS_NAME = model_folder.WEIGHTS_NAME
CHARSET_NAME = "charset.json"
FORMAT = model_folder.RECOGNIZER
logger = logging.getLogger(__name__)

# Backbone kwargs that point at initial weights: once weights live in model.safetensors they must
# not be read again when the folder is loaded.
_INIT_ONLY_KEYS = ("checkpoint_path", "trust_pickle")


def resolve_charset(spec: str | Mapping[str, Any] | Charset) -> Charset:
    """A preset name, a charset file path, a ``{"name", "chars"}`` dict or a Charset."""
    if isinstance(spec, Mapping):
        return Charset.from_json(dict(spec))
    return Charset.resolve(spec)


def split_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A registry spec, ``"vit_small"`` or ``{"name": "vit_small", **kwargs}`` -> (name, kwargs)."""
    if isinstance(spec, str):
        return spec, {}
    kwargs = dict(spec)
    if "name" not in kwargs:
        raise ValueError(f"spec {dict(spec)} needs a 'name' (e.g. vit_small)")
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
    """Write a recognizer folder through :func:`ocrkit.utils.model_folder.write_folder`."""
    return model_folder.write_folder(
        directory, FORMAT, lambda tmp: write_files(tmp, config, charset, state_dict, version)
    )


def write_files(
    directory: Path,
    config: Mapping[str, Any],
    charset: Charset,
    state_dict: Mapping[str, torch.Tensor] | None,
    version: str,
) -> dict[str, Any]:
    """``model.safetensors`` (unless ``state_dict`` is None) and ``charset.json`` into
    ``directory``; returns the config to write last."""
    from safetensors.torch import save_file

    config = copy.deepcopy(dict(config))
    for key in _INIT_ONLY_KEYS:
        config["backbone"].pop(key, None)
    config.update({"architecture": "Recognizer", "format": FORMAT, "ocrkit_version": version})
    config["charset"] = charset.to_json()
    if state_dict is not None:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
        save_file(
            tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "ocrkit": version}
        )
    atomic_write_json(directory / CHARSET_NAME, charset.to_json())
    return config


def read_folder(directory: str | Path) -> dict[str, Any]:
    """The config of a model folder, with ``charset.json`` (when present) as its charset.

    Its weights are ``model.safetensors``: initial-weight keys (``checkpoint_path``,
    ``trust_pickle``) in the folder's backbone config are dropped with a warning, so a folder can
    never make the loader open a pickle; only the caller may pass ``trust_pickle``.
    """
    directory = Path(directory)
    found = model_folder.read_config(directory, expect=FORMAT)
    config, config_path = found.config, found.file
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
