"""Recipe loading: YAML files, ``_base_`` inheritance, ``key=value`` overrides, env expansion.

A recipe is a plain nested ``dict``. :func:`load_config` reads it and applies, in order:

1. ``_base_`` (a path or list of paths, relative to the file): bases are merged first, the file's
   own keys win; dicts merge recursively, every other value (lists included) is replaced.
2. overrides ``a.b.c=value``: the value is parsed as a YAML scalar (``lr=3e-4`` is a float,
   ``ema=null`` is None, ``size=[32,128]`` a list); integer parts index lists (``data.train.0=..``).
   Overriding a key that does not exist is an error naming close keys, unless written ``+a.b=v``.
3. expansion in every string: ``${VAR}`` / ``${VAR:-default}`` from the environment and a leading
   ``~/``. ``${OCRKIT_DATA}`` falls back to :func:`ocrkit.utils.paths.shared_data_dir`.

Errors are :class:`ConfigError` (a ``ValueError``) and name the key that is wrong.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
T = TypeVar("T")
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class ConfigError(ValueError):
    """A recipe problem; the message names the key and what to do."""


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Load the recipe at ``path`` (or start from ``base``), apply ``overrides`` and expand."""
    if path is None and base is None:
        raise ConfigError("give a recipe path or a base dict")
    config = _load_file(Path(path), stack=()) if path is not None else copy.deepcopy(dict(base))
    for item in overrides:
        apply_override(config, item)
    return expand(config)


def _load_file(path: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
    path = path.expanduser().resolve()
    if path in stack:
        chain = " -> ".join(str(p) for p in (*stack, path))
        raise ConfigError(f"_base_ cycle: {chain}")
    if not path.is_file():
        raise ConfigError(
            f"recipe {path} does not exist; check the path (recipes live in recipes/)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a mapping at the top level")
    bases = data.pop("_base_", None) or []
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        base_path = Path(base) if Path(base).is_absolute() else path.parent / base
        merged = merge(merged, _load_file(base_path, (*stack, path)))
    return merge(merged, data)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values of ``update`` win, non-dict values are replaced whole."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_scalar(text: str) -> Any:
    """A command-line value as YAML would read it (``1e-4`` counts as a float too)."""
    if _FLOAT.match(text.strip()):
        value = yaml.safe_load(text)
        return float(text) if isinstance(value, str) else value
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(config: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` (or ``+a.b.c=value`` to add a new key) to ``config`` in place."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value (example: train.lr=3e-4)")
    key, _, raw = item.partition("=")
    key = key.strip()
    add = key.startswith("+")
    key = key.lstrip("+")
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    parts = key.split(".")
    node: Any = config
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise ConfigError(
                    f"override {key}: {where} is not an index of a list of {len(node)}"
                )
            part = int(part)  # type: ignore[assignment]
        elif isinstance(node, dict):
            if part not in node:
                if not add:
                    close = difflib.get_close_matches(part, [str(k) for k in node], n=3)
                    hint = f" Did you mean {', '.join(close)}?" if close else ""
                    raise ConfigError(
                        f"override {key}: unknown key {where}.{hint} Write +{key}=... to add it."
                    )
                if not last:
                    node[part] = {}
        else:
            parent = ".".join(parts[:depth])
            raise ConfigError(f"override {key}: {parent} is a {type(node).__name__}, not a mapping")
        if last:
            node[part] = parse_scalar(raw)
        else:
            node = node[part]


def expand(value: Any, key: str = "") -> Any:
    """Expand ``${VAR}`` and a leading ``~/`` in every string of a nested structure."""
    if isinstance(value, dict):
        return {k: expand(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, f"{key}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        if name == "OCRKIT_DATA":
            from ocrkit.utils.paths import shared_data_dir

            found = shared_data_dir()
            if found is not None:
                return str(found)
        raise ConfigError(
            f"recipe key {key}: environment variable {name} is not set; "
            f"export {name}=... or override {key}=..."
        )

    value = _ENV.sub(substitute, value)
    return os.path.expanduser(value) if value.startswith("~/") else value


def get(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``config["a"]["b"]`` for ``"a.b"``, or ``default`` when a part is missing."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for every leaf (lists become strings); for tracker hyper-parameters."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        elif isinstance(value, (int, float, str, bool)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def dump(config: Mapping[str, Any]) -> str:
    """The config as YAML, keys in recipe order."""
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)


def to_dataclass(cls: type[T], data: Mapping[str, Any] | None, section: str) -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types name ``section.key``."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=3)
            hint = f" Did you mean {', '.join(f'{section}.{c}' for c in close)}?" if close else ""
            raise ConfigError(f"recipe key {section}.{name}: unknown.{hint}")
    values = {
        name: _check_type(value, hints[name], f"{section}.{name}") for name, value in data.items()
    }
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(section)
    return obj


def _check_type(value: Any, hint: Any, key: str) -> Any:
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    if value is None and type(None) in options:
        return None
    for option in options:
        base = typing.get_origin(option) or option
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is float and isinstance(value, str) and _FLOAT.match(value.strip()):
            return float(value)
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base in (str, bool, dict, list) and isinstance(value, base):
            return value
        if base is list and isinstance(value, tuple):  # from Python callers
            return list(value)
        if base is dict and isinstance(value, Mapping):
            return dict(value)
        if base is typing.Any:
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"recipe key {key}: expected {names}, got {value!r} ({type(value).__name__})")
