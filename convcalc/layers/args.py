"""Argument parsing and validation for layer units: the parsers a unit's ``arguments`` name.

Each parser takes (value, spatial_dims, argument name) and returns the normalised value or raises `LayerArgError`;
most carry ``json_schema(dims)``, the JSON Schema of what they accept (`convcalc schema` reads it). Owns the
``REQUIRED`` marker, the size limit ``MAX_SIZE``, the parsers (``integer``, ``per_axis``, ``boolean``, ``real``,
``choice``, ``layer_name``, ``optional``, ``as_number``), the numeric-string schema ``number_string``, and ``Arg``,
one declared argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import LayerArgError, brief
from .suggest import list_hint


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


# --------------------------------------------------------------------------- argument parsers
# Each parser takes (value, spatial_dims, argument name) and returns the normalised value.

def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _type_name(value: Any) -> str:
    """What a value is, in the spec's (YAML's) words: 'the number 0.5', 'the mapping {'a': 1}', 'null'."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string '{_short(value)}'"
    if isinstance(value, (list, tuple)):
        return f"the list {brief(list(value), 60)}"
    if isinstance(value, dict):
        return f"the mapping {brief(value, 60)}"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return f"the number {brief(value, 60)}"
    return f"{brief(value, 60)}"


MAX_SIZE = 2 ** 40   # no real network comes near; far beyond it, arithmetic on sizes stops meaning anything


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayerArgError(f"{name} must be an integer, got {_type_name(value)}", name)
    if abs(value) > MAX_SIZE:
        raise LayerArgError(f"{name} {_short(str(value), 20)} is too large (at most {MAX_SIZE:,})", name)
    return value


# A parser may carry ``json_schema(dims) -> dict``: the JSON Schema of the values it accepts for a layer with
# ``dims`` spatial axes (`convcalc schema` reads it; a parser without one accepts anything there).

def _integer_schema(minimum: int | None) -> dict:
    return {"type": "integer", **({"minimum": minimum} if minimum is not None else {})}


def integer(minimum: int | None = None) -> Callable[[Any, int, str], int]:
    def parse(value: Any, dims: int, name: str) -> int:
        number = _as_int(value, name)
        if minimum is not None and number < minimum:
            raise LayerArgError(f"{name} must be at least {minimum}, got {number}", name)
        return number
    parse.json_schema = lambda dims: _integer_schema(minimum)
    return parse


def per_axis(minimum: int | None = None) -> Callable[[Any, int, str], tuple[int, ...]]:
    """An int (the same on every spatial axis) or a list with one int per spatial axis."""
    def parse(value: Any, dims: int, name: str) -> tuple[int, ...]:
        written = list_hint(value)
        if written is not None:             # '3x3', '(3, 3)', '3,3': a list written as text
            raise LayerArgError(f"{name} must be an integer or a list, got the string '{_short(value)}': write"
                                f" {name}: {written}", name)
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
    parse.json_schema = lambda dims: {"anyOf": [_integer_schema(minimum), {
        "type": "array", "items": _integer_schema(minimum), "minItems": dims, "maxItems": dims}]}
    return parse


def boolean(value: Any, dims: int, name: str) -> bool:
    if not isinstance(value, bool):
        raise LayerArgError(f"{name} must be true or false, got {_type_name(value)}", name)
    return value


boolean.json_schema = lambda dims: {"type": "boolean"}


def as_number(value: Any, name: str, expected: str = "a number") -> int | float:
    """An int or float; numeric strings such as '1e-5' (which YAML 1.1 loads as text) are converted. Else a
    LayerArgError saying ``name`` must be ``expected``."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise LayerArgError(f"{name} must be a number, got {_type_name(value)}", name) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LayerArgError(f"{name} must be {expected}, got {_type_name(value)}", name)
    return value


_DECIMAL = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_INFINITY, _NAN = r"[iI][nN][fF]([iI][nN][iI][tT][yY])?", r"[-+]?[nN][aA][nN]"


def number_string(positive_infinity: bool = False, negative_infinity: bool = False, nan: bool = False) -> dict:
    """The JSON Schema of the numeric strings `as_number` converts (YAML 1.1 loads '1e-5' as text): decimals, and
    where the parser keeps them, 'inf'/'infinity' with a sign, and 'nan' (as Python's float() spells them)."""
    forms = [_DECIMAL]
    if positive_infinity:
        forms.append(r"\+?" + _INFINITY)
    if negative_infinity:
        forms.append("-" + _INFINITY)
    if nan:
        forms.append(_NAN)
    return {"type": "string", "pattern": r"^\s*(" + "|".join(f"({form})" for form in forms) + r")\s*$"}


def real(minimum: float | None = None, maximum: float | None = None) -> Callable[[Any, int, str], float]:
    """A real number; numeric strings such as '1e-5' (which YAML 1.1 loads as text) are accepted."""
    def parse(value: Any, dims: int, name: str) -> float:
        value = as_number(value, name)
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            if maximum is None:
                raise LayerArgError(f"{name} must be at least {minimum}, got {value}", name)
            raise LayerArgError(f"{name} must be between {minimum} and {maximum}, got {value}", name)
        return float(value)
    bounds = {**({"minimum": minimum} if minimum is not None else {}),
              **({"maximum": maximum} if maximum is not None else {})}
    strings = number_string(maximum is None, minimum is None, nan=True)   # NaN fails no bound; torch takes it too
    parse.json_schema = lambda dims: {"anyOf": [{"type": "number", **bounds}, strings]}
    return parse


def choice(*options: str) -> Callable[[Any, int, str], str]:
    def parse(value: Any, dims: int, name: str) -> str:
        if not isinstance(value, str) or value not in options:
            raise LayerArgError(
                f"{name} must be one of {', '.join(repr(o) for o in options)}, got {_type_name(value)}", name)
        return value
    parse.json_schema = lambda dims: {"enum": list(options)}
    return parse


def layer_name(value: Any, dims: int, name: str) -> str:
    """The name of an earlier layer (resolved by the graph, see ``Layer.references``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LayerArgError(f"{name} must name an earlier layer, got {_type_name(value)}", name)
    return str(value)


layer_name.json_schema = lambda dims: {"type": ["string", "integer"]}


def optional(parser: Callable[[Any, int, str], Any]) -> Callable[[Any, int, str], Any]:
    def parse(value: Any, dims: int, name: str) -> Any:
        return None if value is None else parser(value, dims, name)
    inner = getattr(parser, "json_schema", None)
    if inner is not None:
        parse.json_schema = lambda dims: {"anyOf": [{"type": "null"}, inner(dims)]}
    return parse


@dataclass(frozen=True)
class Arg:
    """One accepted argument: its parser, its default (PyTorch's) and a one-line description."""

    parse: Callable[[Any, int, str], Any]
    default: Any = REQUIRED
    doc: str = ""


# One-line descriptions of the arguments that mean the same in every layer type that takes them (PyTorch's
# meanings); a unit describes its other arguments where it declares them, and may override one of these.
COMMON_DOCS = {
    "kernel_size": "the window's size per spatial axis (an int: the same on every axis)",
    "stride": "the step between windows per spatial axis (an int: the same on every axis)",
    "dilation": "the spacing between the window's taps per spatial axis (1: adjacent)",
    "groups": "split the channels into this many groups, each mapped separately (in and out channels divisible)",
    "bias": "learn an additive bias",
    "padding_mode": "what the padding holds: zeros, or the input reflected, replicated or wrapped around (circular)",
    "ceil_mode": "round the output size up: a last window that starts inside the input (or left padding) counts",
    "return_indices": "also return the argmax indices (for MaxUnpool); the output itself is unchanged",
    "eps": "added to the variance before its square root, for numerical stability",
    "affine": "learn a per-channel scale (weight) and shift (bias)",
    "track_running_stats": "keep running mean and variance buffers, used at inference (eval mode)",
    "momentum": "the weight of the newest batch in the running statistics (training only)",
    "inplace": "accepted for PyTorch compatibility; no effect on the numbers",
    "in_channels": "input channels; inferred from the graph (a mismatch is an error)",
    "num_features": "channels; inferred from the graph (a mismatch is an error)",
    "start_dim": "the first axis flattened (the batch is dim 0)",
    "end_dim": "the last axis flattened (-1: the last axis)",
}


def documented(arguments: dict[str, "Arg"]) -> dict[str, "Arg"]:
    """``arguments`` with COMMON_DOCS filling the descriptions left empty where they were declared."""
    from dataclasses import replace

    return {name: replace(arg, doc=COMMON_DOCS[name]) if not arg.doc and name in COMMON_DOCS else arg
            for name, arg in arguments.items()}


def _spelled(value: Any) -> Any:
    """A normalised argument back in spec form (tuples -> lists), to build a part with ``from_args``."""
    return [_spelled(v) for v in value] if isinstance(value, (tuple, list)) else value


__all__ = [
    "COMMON_DOCS", "MAX_SIZE", "REQUIRED", "Arg", "documented", "as_number", "boolean", "choice", "integer", "layer_name", "number_string",
    "optional", "per_axis", "real",
]
