"""The layer registry: type names (and aliases, case-insensitive) to unit classes.

Owns ``register`` (the class decorator every layer type wears), ``lookup`` (a spec's ``type`` to its unit, with a
nearest-name suggestion when unknown), ``is_registered``, ``type_names`` and ``layer_types``. Importing the package
`convcalc.layers` registers every type.
"""

from __future__ import annotations

from ..errors import LayerArgError
from .args import documented
from .base import Layer
from .suggest import type_hint

_REGISTRY: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make ``cls`` available to specs under its type name and aliases."""
    cls.arguments = documented(cls.arguments)          # the common arguments' one-line descriptions
    for name in (cls.type_name, *cls.aliases):
        key = name.lower()
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise RuntimeError(f"layer type name '{name}' registered twice")
        _REGISTRY[key] = cls
    return cls


def lookup(type_name: str) -> type[Layer]:
    """The unit for a spec's ``type`` (case-insensitive)."""
    try:
        return _REGISTRY[type_name.lower()]
    except KeyError:
        names = type_names()
        raise LayerArgError(f"unknown layer type '{type_name}'; "
                            f"{type_hint(type_name, names, f'`convcalc layers` lists all {len(names)}')}",
                            "type") from None


def is_registered(type_name: str) -> bool:
    return type_name.lower() in _REGISTRY


def type_names() -> list[str]:
    """Canonical names of all registered types."""
    return sorted({cls.type_name for cls in _REGISTRY.values()}, key=str.lower)


def layer_types() -> list[type[Layer]]:
    return sorted({cls for cls in _REGISTRY.values()}, key=lambda c: c.type_name.lower())


__all__ = ["is_registered", "layer_types", "lookup", "register", "type_names"]
