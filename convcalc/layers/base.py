"""The layer unit contract, argument parsing, and the registry.

A layer type is one subclass of `Layer`. It declares its arguments (PyTorch's names and defaults)
in ``arguments`` and owns, in one place:

* ``validate()``            checks that need no input shape (groups divide out_channels, ...)
* ``infer(in_shapes)``      output shape, parameter and buffer shapes, MACs; raises where PyTorch would
* ``receptive_field(...)``  how it transforms the receptive field
* ``init_params(...)``      PyTorch's default initialisation of its parameters and buffers
* ``prepare(...)``          the parameters laid out for execution, once, at load time
* ``forward(...)``          its NumPy execution on channels-last arrays ``(N, *spatial, C)``

Shapes are channels first without the batch: ``(C, H, W)``. Errors are `LayerArgError`, which the
caller turns into a located `ShapeError`/`SpecError` naming the layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from ..errors import LayerArgError, SpecError, did_you_mean
from ..receptive import Field, merge
from ..kernels import MacCounter
from ..shapes import prod

Shape = tuple[int, ...]
LAYOUTS = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


# --------------------------------------------------------------------------- argument parsers
# Each parser takes (value, spatial_dims, argument name) and returns the normalised value.

def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string '{_short(value)}'"
    if isinstance(value, list):
        return f"the list {_short(str(list(value)))}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {_short(repr(value))}"


MAX_SIZE = 2 ** 40   # no real network comes near; far beyond it, arithmetic on sizes stops meaning anything


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayerArgError(f"{name} must be an integer, got {_type_name(value)}", name)
    if abs(value) > MAX_SIZE:
        raise LayerArgError(f"{name} {_short(str(value), 20)} is too large (at most {MAX_SIZE:,})", name)
    return value


def integer(minimum: int | None = None) -> Callable[[Any, int, str], int]:
    def parse(value: Any, dims: int, name: str) -> int:
        number = _as_int(value, name)
        if minimum is not None and number < minimum:
            raise LayerArgError(f"{name} must be at least {minimum}, got {number}", name)
        return number
    return parse


def per_axis(minimum: int | None = None) -> Callable[[Any, int, str], tuple[int, ...]]:
    """An int (the same on every spatial axis) or a list with one int per spatial axis."""
    def parse(value: Any, dims: int, name: str) -> tuple[int, ...]:
        if isinstance(value, list):
            if len(value) != dims:
                raise LayerArgError(
                    f"{name} must be an integer or a list of {dims} integer{'s' if dims > 1 else ''}"
                    f" (one per spatial axis), got {len(value)} values", name)
            values = tuple(_as_int(v, name) for v in value)
        else:
            values = (_as_int(value, name),) * dims
        if minimum is not None:
            for v in values:
                if v < minimum:
                    what = "positive" if minimum == 1 else f"at least {minimum}"
                    raise LayerArgError(f"{name} must be {what}, got {v}", name)
        return values
    return parse


def boolean(value: Any, dims: int, name: str) -> bool:
    if not isinstance(value, bool):
        raise LayerArgError(f"{name} must be true or false, got {_type_name(value)}", name)
    return value


def real(minimum: float | None = None, maximum: float | None = None) -> Callable[[Any, int, str], float]:
    """A real number; numeric strings such as '1e-5' (which YAML 1.1 loads as text) are accepted."""
    def parse(value: Any, dims: int, name: str) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise LayerArgError(f"{name} must be a number, got {_type_name(value)}", name) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LayerArgError(f"{name} must be a number, got {_type_name(value)}", name)
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            if maximum is None:
                raise LayerArgError(f"{name} must be at least {minimum}, got {value}", name)
            raise LayerArgError(f"{name} must be between {minimum} and {maximum}, got {value}", name)
        return float(value)
    return parse


def choice(*options: str) -> Callable[[Any, int, str], str]:
    def parse(value: Any, dims: int, name: str) -> str:
        if not isinstance(value, str) or value not in options:
            raise LayerArgError(
                f"{name} must be one of {', '.join(repr(o) for o in options)}, got {_type_name(value)}", name)
        return value
    return parse


def layer_name(value: Any, dims: int, name: str) -> str:
    """The name of an earlier layer (resolved by the graph, see ``Layer.references``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LayerArgError(f"{name} must name an earlier layer, got {_type_name(value)}", name)
    return str(value)


def optional(parser: Callable[[Any, int, str], Any]) -> Callable[[Any, int, str], Any]:
    def parse(value: Any, dims: int, name: str) -> Any:
        return None if value is None else parser(value, dims, name)
    return parse


@dataclass(frozen=True)
class Arg:
    """One accepted argument: its parser, its default (PyTorch's) and a one-line description."""

    parse: Callable[[Any, int, str], Any]
    default: Any = REQUIRED
    doc: str = ""


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Inferred:
    """What a layer does to shapes and what it costs, for one input shape."""

    out_shape: Shape
    params: Mapping[str, Shape] = field(default_factory=dict)
    buffers: Mapping[str, Shape] = field(default_factory=dict)
    macs: int = 0
    parts: tuple["Part", ...] = ()          # a composite's primitive parts (their params/MACs sum to the above)
    baseline: "Part | None" = None          # the standard layer a composite replaces, for comparison

    @property
    def param_count(self) -> int:
        return sum(prod(s) for s in self.params.values())

    @property
    def buffer_count(self) -> int:
        return sum(prod(s) for s in self.buffers.values())


@dataclass(frozen=True)
class Part:
    """One primitive unit inside a composite layer (see `convcalc.layers.composite`).

    Its parameters appear in the composite's as ``<part name>.<param>`` (so state_dict keys read
    ``<layer>.<part>.<param>``, as for a torch module with the part as a child). ``inputs`` name earlier
    parts, or ``input`` for the composite's input.
    """

    name: str
    type: str
    layer: "Layer"
    inputs: tuple[str, ...]
    inferred: Inferred


def shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


# --------------------------------------------------------------------------- the unit contract

class Layer:
    """Base of every layer type. Subclasses set the class attributes and override the rules."""

    type_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    dims: ClassVar[int | None] = None          # spatial dims fixed by the type (Conv2d: 2), else None
    arguments: ClassVar[dict[str, Arg]] = {}
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    # arguments that name an earlier layer (MaxUnpool's 'pool'): the graph resolves each name, hands that
    # layer's unit to `bind`, and appends that layer's inputs to this layer's inputs (so that this unit can
    # recompute from them what the named layer computed: the pool's argmax indices)
    references: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""

    def __init__(self, **args: Any):
        self.args = dict(args)
        for name, value in args.items():
            setattr(self, name, value)
        self.validate()

    @classmethod
    def from_args(cls, raw: Mapping[str, Any]) -> "Layer":
        """Parse and validate the spec's arguments (PyTorch names; defaults filled in)."""
        unknown = [name for name in raw if name not in cls.arguments]
        if unknown:
            name = unknown[0]
            valid = did_you_mean(str(name), cls.arguments) if cls.arguments else "it takes no arguments"
            raise LayerArgError(f"unknown argument '{name}' for {cls.type_name}; {valid}", name)
        parsed: dict[str, Any] = {}
        for name, spec in cls.arguments.items():
            if name in raw:
                parsed[name] = spec.parse(raw[name], cls.dims or 1, name)
            elif spec.default is REQUIRED:
                raise LayerArgError(f"{cls.type_name} needs '{name}'", None)
            else:
                parsed[name] = spec.parse(spec.default, cls.dims or 1, name)
        return cls(**parsed)

    def validate(self) -> None:
        """Checks that need no input shape. Raise `LayerArgError`."""

    def bind(self, argument: str, layer: "Layer") -> None:
        """Receive the unit of the earlier layer that reference ``argument`` names; raise `LayerArgError` if it
        does not fit (see ``references``)."""
        raise NotImplementedError(f"{self.type_name} takes no layer references")

    def check_inputs(self, in_shapes: Sequence[Shape]) -> None:
        count = len(in_shapes)
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            if self.max_inputs == 1:
                wanted = "exactly one input"
            elif self.max_inputs is None:
                wanted = f"at least {self.min_inputs} inputs"
            else:
                wanted = f"{self.min_inputs} to {self.max_inputs} inputs"
            raise LayerArgError(f"{self.type_name} takes {wanted}, got {count}", "from")

    def expect_rank(self, shape: Shape, ranks: Sequence[int], layout: str) -> None:
        """Raise unless ``shape`` has one of ``ranks`` dimensions (batch excluded)."""
        if len(shape) not in ranks:
            raise LayerArgError(f"{self.type_name} expects a {layout} input, got {shape_text(shape)}", None)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        raise NotImplementedError

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Default: elementwise (one input) or a merge (several)."""
        return fields[0] if len(fields) == 1 else merge(fields)

    # ---- execution. Arrays are channels-last: a [C, *S] tensor is stored (N, *S, C); a [F] one (N, F).
    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """PyTorch's default initialisation of the parameters and buffers (float64)."""
        if inferred.params or inferred.buffers:
            raise NotImplementedError(f"{self.type_name} does not say how to initialise its parameters")
        return {}

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> Any:
        """The parameters laid out for `forward` (done once, when the network is loaded)."""
        return {name: np.asarray(value, dtype=dtype) for name, value in params.items()}

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        raise NotImplementedError(f"{self.type_name} cannot be executed yet")


class Elementwise(Layer):
    """A layer that keeps the shape and touches each element independently of its neighbours."""

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        return Inferred(tuple(in_shapes[0]))

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return self.apply(inputs[0], prepared)

    def apply(self, x: np.ndarray, prepared: Any) -> np.ndarray:
        """The elementwise function itself."""
        raise NotImplementedError(f"{self.type_name} cannot be executed yet")

    def forward_inplace(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        """`forward`, allowed to overwrite its input (the executor calls it when nothing else needs it)."""
        inplace = getattr(self, "apply_inplace", None)
        if inplace is None:
            return self.forward(inputs, prepared, counter)
        return inplace(inputs[0], prepared)


def storage_axis(axis: int, rank: int) -> int:
    """Index into a stored (channels-last, batch-first) array of batchless axis ``axis`` of a rank-``rank`` tensor."""
    return rank if axis == 0 else axis


def fan_in_uniform(rng: np.random.Generator, shapes: Mapping[str, Shape], fan_in: int) -> dict[str, np.ndarray]:
    """torch.nn.Conv*/Linear defaults: kaiming_uniform(a=sqrt(5)) and the bias rule both give U(±1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    return {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make ``cls`` available to specs under its type name and aliases."""
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
        raise LayerArgError(f"unknown layer type '{type_name}'; {did_you_mean(type_name, type_names())}",
                            "type") from None


def is_registered(type_name: str) -> bool:
    return type_name.lower() in _REGISTRY


def type_names() -> list[str]:
    """Canonical names of all registered types."""
    return sorted({cls.type_name for cls in _REGISTRY.values()}, key=str.lower)


def layer_types() -> list[type[Layer]]:
    return sorted({cls for cls in _REGISTRY.values()}, key=lambda c: c.type_name.lower())


__all__ = [
    "Arg", "Elementwise", "Inferred", "Part", "fan_in_uniform", "storage_axis", "Layer", "REQUIRED", "Shape", "SpecError", "boolean", "choice",
    "integer", "is_registered", "layer_types", "lookup", "optional", "per_axis", "real", "register",
    "shape_text", "type_names",
]
