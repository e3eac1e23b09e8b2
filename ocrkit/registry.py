"""A small generic registry: where a family of interchangeable parts meets.

Used for backbones, decoders, whole model families, label protocols, dataset sources and TABench
adapters. Like timm's ``register_model``/``create_model``, but one class for every family::

    BACKBONES = Registry("backbone")

    @BACKBONES.register("vit_tiny")
    def vit_tiny(**kwargs): ...

    model = BACKBONES.build("vit_tiny", img_size=(32, 128))

``register_lazy(name, "package.module:attribute")`` (or ``"module:Class.method"``) records where
a factory lives without importing it: the module is imported by the first ``get``/``build`` of
that name, so a model that does not use timm (say) never imports it.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories (classes or functions) of one family."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, Callable[..., T] | str] = {}

    def register(
        self, name: str | None = None, *, overwrite: bool = False
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers a factory under ``name`` (default: its ``__name__``)."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            key = name or factory.__name__
            if key in self._entries and not overwrite and self._entries[key] is not factory:
                raise KeyError(f"{self.family} {key!r} is already registered")
            self._entries[key] = factory
            return factory

        return decorator

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``name`` as ``"module:attribute"``, imported on its first ``get``."""
        module, sep, attribute = target.partition(":")
        if not sep or not module or not attribute:
            raise ValueError(f"lazy target must be 'module:attribute', got {target!r}")
        if name in self._entries and self._entries[name] != target:
            raise KeyError(f"{self.family} {name!r} is already registered")
        self._entries[name] = target

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory registered as ``name``; the error suggests close names."""
        try:
            entry = self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise KeyError(f"unknown {self.family} {name!r}.{hint} Known: {known}") from None
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = importlib.import_module(module)
            for part in attribute.split("."):  # "Class.method" names a classmethod
                entry = getattr(entry, part)
            self._entries[name] = entry
        return entry

    def build(self, name: str, /, **kwargs: Any) -> T:
        """Call the factory registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def list(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style ``pattern``."""
        names = sorted(self._entries)
        return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.list()})"
