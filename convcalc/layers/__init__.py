"""The layer registry: importing this package registers every layer type."""

from . import conv, dense, elementwise, merge, pool  # noqa: F401  (registration side effects)
from .base import Inferred, Layer, is_registered, layer_types, lookup, type_names

__all__ = ["Inferred", "Layer", "is_registered", "layer_types", "lookup", "type_names"]
