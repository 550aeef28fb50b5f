"""One-line layer stacks for ``convcalc calc rf "conv3 s1, conv3 d2, pool2 s2, conv3"``: the grammar, and the stack
turned into a real spec whose receptive fields the analyzer computes (the same algebra as ``convcalc rf``; nothing
here knows a receptive-field rule).

Grammar (documented in the README, "The calculator")::

    stack  := layer ("," layer)*                 also ";" between layers
    layer  := head option*                       options after spaces or dashes: "conv3 s2 p1" = "conv3-s2-p1"
    head   := conv K | pool K | maxpool K | avgpool K | tconv K | up F
              (K a kernel size, "3" or one per axis "3x1"; F a scale factor, "2" or "1.5"; also deconv/convt = tconv,
               max = maxpool, avg = avgpool, upsample = up)
    option := sN | pN | dN | opN                 stride, padding, dilation, output_padding (N: "2" or per axis "2x1")
            | same | valid | tf_same | full      a padding rule (PyTorch's 'same' needs stride 1)
            | ceil                               ceil_mode (pools)
            | nearest | linear | bilinear | bicubic | trilinear | nearest-exact   up's mode (linear ones fit the rank)
            | xN | *N | ×N                       the layer N times

Defaults are PyTorch's: stride 1 (a pool's: its kernel), padding 0, dilation 1. Each layer has one channel; the
input is 1-D unless ``--in`` or a per-axis value says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Optional

from ..algebra import Field
from ..errors import ConvcalcError
from ..spec.load import Spec
from .calculator import numbers, run_spec
from .regions import GrowthRow, growth
from .summary import Summary

HEADS = {"conv": "Conv", "pool": "MaxPool", "maxpool": "MaxPool", "max": "MaxPool", "avgpool": "AvgPool",
         "avg": "AvgPool", "tconv": "ConvTranspose", "deconv": "ConvTranspose", "convt": "ConvTranspose",
         "up": "Upsample", "upsample": "Upsample"}
OPTIONS = {"s": "stride", "p": "padding", "d": "dilation", "op": "output_padding"}
PADDING_RULES = {"same": "same", "valid": "valid", "tf_same": "tf_same", "tfsame": "tf_same", "full": "full"}
MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear")
LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}
_HEAD = re.compile(r"^([a-z]+?)(\d+(?:\.\d+)?(?:x\d+(?:\.\d+)?)*)?$")
_OPTION = re.compile(r"^(op|s|p|d)(\d+(?:x\d+)*)$")
_REPEAT = re.compile(r"^[x*×](\d+)$")
MAX_REPEAT = 1_000
AUTO_SIZES = tuple(2 ** n for n in range(6, 41))


@dataclass(frozen=True)
class StackLayer:
    """One item of the stack: the text the user wrote, the layer type's family and its arguments."""

    text: str
    head: str                         # Conv, MaxPool, AvgPool, ConvTranspose, Upsample
    args: dict[str, Any]
    repeat: int
    axes: int                         # the most per-axis values any of its numbers has (1: none)


def _values(text: str, what: str, item: str, integer: bool = True) -> list[Any]:
    if integer:
        return numbers(text, f"{what} in '{item}'")
    try:
        return [float(v) if "." in v else int(v) for v in text.split("x")]
    except ValueError:
        raise ConvcalcError(f"{what} '{text}' in '{item}' must be numbers") from None


def parse_layer(item: str) -> StackLayer:
    """One layer of the grammar (see the module docstring)."""
    text = item.strip()
    tokens = text.lower().replace("×", "x").replace("nearest-exact", "nearest_exact").replace("-", " ").split()
    match = _HEAD.match(tokens[0]) if tokens else None
    if not match or match.group(1) not in HEADS:
        raise ConvcalcError(f"'{text}' must start with a layer: conv3, pool2, avgpool3, tconv4, up2 (kernel size or"
                            " factor right after the name)")
    name, size = match.groups()
    head = HEADS[name]
    if size is None:
        raise ConvcalcError(f"'{tokens[0]}' in '{text}' needs its {'factor' if head == 'Upsample' else 'kernel size'}"
                            f" right after the name, e.g. {name}{2 if head == 'Upsample' else 3}")
    first = _values(size, "the factor" if head == "Upsample" else "the kernel size", text, head != "Upsample")
    args: dict[str, Any] = {"scale_factor" if head == "Upsample" else "kernel_size": first[0] if len(first) == 1
                            else first}
    widest, repeat = len(first), 1
    for token in tokens[1:]:
        option, rule = _OPTION.match(token), PADDING_RULES.get(token)
        if option:
            key = OPTIONS[option.group(1)]
            values = _values(option.group(2), key, text)
            args[key] = values[0] if len(values) == 1 else values
            widest = max(widest, len(values))
        elif rule is not None:
            args["padding"] = rule
        elif token == "ceil":
            args["ceil_mode"] = True
        elif token.replace("_", "-") in MODES:
            args["mode"] = token.replace("_", "-")
        elif _REPEAT.match(token):
            repeat = int(_REPEAT.match(token).group(1))
            if not 1 <= repeat <= MAX_REPEAT:
                raise ConvcalcError(f"'{token}' in '{text}': repeat 1 to {MAX_REPEAT} times")
        else:
            raise ConvcalcError(f"'{token}' in '{text}' is not an option: sN (stride), pN (padding), dN (dilation),"
                                " opN (output_padding), same, valid, tf_same, full, ceil, a mode (up), xN (repeat)")
    if head == "Upsample" and set(args) - {"scale_factor", "mode"}:
        raise ConvcalcError(f"'{text}': up takes a factor and a mode only")
    return StackLayer(text, head, args, repeat, widest)


def parse_stack(text: str) -> list[StackLayer]:
    items = [item for item in re.split(r"[,;\n]", text) if item.strip()]
    if not items:
        raise ConvcalcError("the stack is empty: give layers such as \"conv3 s1, conv3 d2, pool2 s2\"")
    return [parse_layer(item) for item in items]


def _layer_dict(layer: StackLayer, dims: int, name: str) -> dict[str, Any]:
    args = dict(layer.args)
    if layer.head == "Upsample":
        mode = args.get("mode", "nearest")
        args["mode"] = LINEAR[dims] if mode in ("linear", "bilinear", "trilinear") else mode
        return {"name": name, "type": "Upsample", **args}
    if layer.head in ("Conv", "ConvTranspose"):
        args["out_channels"] = 1
    return {"name": name, "type": f"{layer.head}{dims}d", **args}


@dataclass(frozen=True)
class StackRow:
    """A layer of the stack after the analysis: its output's spatial size and its receptive field."""

    index: int                          # 1-based position in the stack (repeats share it)
    copy: int                           # 1-based copy of a repeated layer (0: not repeated)
    text: str
    name: str
    type: str
    output: tuple[int, ...]
    field: Field
    growth: GrowthRow

    @property
    def centre(self) -> tuple[Fraction, ...]:
        """The start: where unit 0's field is centred, in input positions (Araujo's -P + (r - 1)/2)."""
        return tuple(axis.centre for axis in self.field.axes)


@dataclass(frozen=True)
class StackAnswer:
    text: str
    input_shape: tuple[int, ...]
    auto_size: bool                     # the input size was chosen (not given): big enough for interior units
    rows: tuple[StackRow, ...]
    spec: Spec
    summary: Summary


def stack_fields(text: str, in_text: Optional[str] = None) -> StackAnswer:
    """Receptive field size, jump (stride) and start of every layer of the one-line stack ``text``, at the spatial
    input size ``in_text`` ('224', '224x224'), or at the least power of two from 64 on whose last output has 8 units
    per axis, up to 2**40 (the fields of interior units do not depend on it)."""
    layers = parse_stack(text)
    dims = len(numbers(in_text, "--in")) if in_text is not None else max(layer.axes for layer in layers)
    if dims not in (1, 2, 3):
        raise ConvcalcError(f"a stack has 1 to 3 spatial axes, not {dims}")
    for layer in layers:
        if layer.axes not in (1, dims):
            raise ConvcalcError(f"'{layer.text}' has {layer.axes} values per option but the stack is {dims}-D")
    entries, names = [], []
    for index, layer in enumerate(layers, 1):
        for copy in range(layer.repeat):
            name = f"layer{index}" if layer.repeat == 1 else f"layer{index}_{copy + 1}"
            entries.append(_layer_dict(layer, dims, name))
            names.append((index, layer.text, name, 0 if layer.repeat == 1 else copy + 1))
    if in_text is not None:
        sizes = numbers(in_text, "--in")
        if min(sizes) < 1:
            raise ConvcalcError(f"--in '{in_text}' must be positive")
        spec, summary = _analyze(entries, (1, *sizes), names)
    else:
        spec, summary = _auto(entries, dims, names)
    grown = {row.name: row for row in growth(summary)}
    rows = tuple(StackRow(index, copy, item, name, summary.layer(name).type, summary.layer(name).output_shape[1:],
                          summary.layer(name).rf, grown[name]) for index, item, name, copy in names)
    return StackAnswer(text, summary.input_shape, in_text is None, rows, spec, summary)


def _analyze(entries: list[dict[str, Any]], shape: tuple[int, ...],
             names: list[tuple[int, str, str, int]]) -> tuple[Spec, Summary]:
    try:
        return run_spec({"name": "calc rf", "input": list(shape), "layers": entries})
    except ConvcalcError as exc:
        message = str(exc)
        for index, item, name, copy in names:      # "layer 'layer2' (Conv1d)" -> "layer 2 'conv3 d2' (Conv1d)"
            message = message.replace(f"layer '{name}'", f"layer {index}{f'.{copy}' if copy else ''} '{item}'")
        raise ConvcalcError(message) from None


def _auto(entries: list[dict[str, Any]], dims: int, names: list[tuple[int, str, str, int]]) -> tuple[Spec, Summary]:
    """The stack at the least of `AUTO_SIZES` where it fits with 8 output units per axis (else the error at the
    largest)."""
    error: Optional[ConvcalcError] = None
    for size in AUTO_SIZES:
        try:
            spec, summary = _analyze(entries, (1, *[size] * dims), names)
        except ConvcalcError as exc:
            error = exc
            continue
        if min(summary.output_shape[1:] or (8,)) >= 8 or size == AUTO_SIZES[-1]:
            return spec, summary
    assert error is not None
    raise ConvcalcError(f"{error} (at input {AUTO_SIZES[-1]:,}, the longest tried; give --in)") from None
