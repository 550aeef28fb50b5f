"""Padding layers: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad (1d/2d/3d), as torch.nn has them.

``padding`` is PyTorch's: an int (every side of every padded axis) or F.pad's flat list, LAST axis first:
``[left, right]`` (1d), ``[left, right, top, bottom]`` (2d), ``[left, right, top, bottom, front, back]`` (3d).
A negative value crops. The layer pads the last 1/2/3 axes of its input (semantics §3.2):

* zeros/constant: any input with at least that many axes; crop first, then fill with ``value``.
  On a [C, L] input ZeroPad2d pads the channels too (ResNet's "option A" shortcut pads channels this way).
* reflect/replicate/circular: [C, *S] or, as PyTorch's unbatched form, [*S] (then the channels axis is padded).
  reflect: each pad < the input size; output j reads input |j - lo| mirrored within the UNcropped input.
  replicate: output j reads input clamp(j - lo, 0, size-1) (any pad).
  circular: crop, then wrap; a pad may not exceed what is left after the crop.

Every rule: 0 parameters, 0 MACs; size o = i + lo + hi (at least 1); receptive field: a window of
size 1 and stride 1 whose left padding is ``lo`` (P += lo*S).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter, cropped_range, pad_spatial, pad_spatial_transpose
from ..algebra import Field
from .args import REQUIRED, Arg, _as_int, real
from .base import LAYOUTS, Inferred, Layer, Shape, shape_text, storage_axis
from .channels import SAME, ChannelReads
from .registry import register
from .factors import Factors, gather_relation
from ..kernels.padding import pad_source_index

UNBATCHED = {1: "[L]", 2: "[H, W]", 3: "[D, H, W]"}
SIDE_NAMES = {1: "left, right", 2: "left, right, top, bottom", 3: "left, right, top, bottom, front, back"}


def pad_arg(value: Any, dims: int, name: str) -> tuple[int, ...]:
    """``padding``: an int, or 2*dims ints in F.pad's order (last axis first); returned in F.pad's order."""
    count = 2 * dims
    if isinstance(value, list):
        if len(value) != count:
            raise LayerArgError(f"{name} must be an integer or a list of {count} integers ({SIDE_NAMES[dims]}:"
                                f" F.pad's order, last axis first), got {len(value)} values", name)
        return tuple(_as_int(v, name) for v in value)
    return (_as_int(value, name),) * count


pad_arg.json_schema = lambda dims: {"anyOf": [{"type": "integer"}, {
    "type": "array", "items": {"type": "integer"}, "minItems": 2 * dims, "maxItems": 2 * dims}]}


def pad_pairs(flat: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """F.pad's flat (last axis first) -> one (lo, hi) per padded axis, first axis first."""
    pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
    return tuple(reversed(pairs))


def pad_problem(mode: str, size: int, lo: int, hi: int, where: str = "") -> str | None:
    """Why F.pad(mode) refuses (lo, hi) on an axis of ``size`` (semantics §3.2), else None.

    reflect: lo, hi < size. circular: lo, hi <= size, and a positive pad no longer than what the crop
    leaves (PyTorch otherwise fails on overlapping memory or reads uninitialised memory).
    zeros/constant: the crop may not exceed the size. replicate: no limit. (The output size, i + lo + hi,
    is the caller's to check.)
    """
    cropped = size + min(lo, 0) + min(hi, 0)
    widest = max(lo, hi)
    if mode == "reflect":
        if widest >= size:
            return f"reflect padding {widest}{where} must be smaller than the input size {size}"
    elif mode == "circular":
        if widest > size:
            return f"circular padding {widest}{where} wraps around more than once (input size {size})"
        if widest > 0 and widest > cropped:
            return (f"circular padding {widest}{where} wraps around more than once: the crop"
                    f" leaves {max(cropped, 0)} of the input's {size} positions")
    elif mode != "replicate" and cropped < 0:
        return f"padding ({lo}, {hi}){where} crops {-min(lo, 0) - min(hi, 0)} positions from an input of size {size}"
    return None


def _axis_label(rank: int, axis: int, padded: int) -> str:
    """'' for the only axis of a [C, L] input, else ' along the width' etc."""
    if axis == 0:
        return " along the channels"
    spatial = rank - 1
    if spatial == 1 and padded == 1:
        return ""
    names = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}.get(spatial)
    return f" along the {names[axis - 1]}" if names else f" along axis {axis}"


class PadNd(Layer):
    """Shared rules of the padding layers; ``mode`` is F.pad's (PyTorch's padding_mode names)."""

    mode: ClassVar[str] = "zeros"
    arguments = {"padding": Arg(pad_arg, doc="int, or F.pad's list (left, right[, top, bottom[, front, back]])")}

    def fill_value(self) -> float:
        return 0.0

    def padded_axes(self, shape: Shape) -> tuple[int, ...]:
        """Batchless axes this layer pads (the last ``dims``); checks the rank as PyTorch does."""
        rank = len(shape)
        if self.mode == "zeros":
            if rank < self.dims:
                raise LayerArgError(f"{self.type_name} pads the last {self.dims} axes of its input, got"
                                    f" {shape_text(shape)} (the batch is never padded)", None)
        elif rank not in (self.dims, self.dims + 1):
            raise LayerArgError(f"{self.type_name} expects a {LAYOUTS[self.dims]} or {UNBATCHED[self.dims]} input,"
                                f" got {shape_text(shape)}", None)
        return tuple(range(rank - self.dims, rank))

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        axes = self.padded_axes(shape)
        out = list(shape)
        for axis, (lo, hi) in zip(axes, pad_pairs(self.padding)):
            size = shape[axis]
            where = _axis_label(len(shape), axis, len(axes))
            problem = pad_problem(self.mode, size, lo, hi, where)
            if problem:
                raise LayerArgError(problem, "padding")
            if size + lo + hi < 1:
                raise LayerArgError(f"padding ({lo}, {hi}){where} leaves {size + lo + hi} of the input's {size}"
                                    f" positions (an empty output)", "padding")
            out[axis] = size + lo + hi
        return Inferred(tuple(out))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel padded on its own (unless the channels are padded too: a [C, L] input of a 2-D pad)."""
        return None if 0 in self.padded_axes(tuple(in_shapes[0])) else SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """A 1-wide window of stride 1 with left padding lo on every padded spatial axis (P += lo*S)."""
        field = fields[0]
        shape = in_shapes[0]
        if field.whole or len(field.axes) != len(shape) - 1:
            return field
        lows = [0] * len(field.axes)
        wraps: list[tuple[int, int] | None] = [None] * len(field.axes)
        for axis, (lo, hi) in zip(self.padded_axes(shape), pad_pairs(self.padding)):
            if axis > 0:
                lows[axis - 1] = lo
                if self.mode == "circular" and min(lo, hi) < 0:        # cropped first: the wrap cycles the rest
                    wraps[axis - 1] = cropped_range(shape[axis], lo, hi)
        return field.through_window([1] * len(lows), [1] * len(lows), lows, out_shape[len(out_shape) - len(lows):],
                                    border=self.mode, wraps=wraps)

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        return "every padding is 0" if not any(self.padding) else None

    def storage_pads(self, x: np.ndarray) -> list[tuple[int, int]]:
        """(lo, hi) for each stored axis 1..rank of ``x`` (the channels last)."""
        rank = x.ndim - 1
        shape = (x.shape[-1], *x.shape[1:-1]) if rank > 1 else tuple(x.shape[1:])   # PyTorch's order
        pads = [(0, 0)] * rank                                                     # storage axes 1..rank
        for axis, pair in zip(self.padded_axes(shape), pad_pairs(self.padding)):
            pads[storage_axis(axis, rank) - 1] = pair
        return pads

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        return pad_spatial(x, self.storage_pads(x), self.mode, self.fill_value())

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Each output position's gradient goes back to the input position it copies (reflected, replicated and
        wrapped copies add up); the fill value's positions and cropped inputs get none."""
        x = inputs[0]
        pads = self.storage_pads(x)
        result = pad_spatial_transpose(grad, x.shape[1:1 + len(pads)], pads, self.mode)
        return [result.copy() if result is grad else result]

    channelwise_support = True

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Along a padded dim, each position reads the input position it copies (none for the fill value); the
        other dims their own position."""
        shape = tuple(in_shapes[0])
        relations: list = [None] * len(shape)
        for axis, (lo, hi) in zip(self.padded_axes(shape), pad_pairs(self.padding)):
            relations[axis] = gather_relation(shape[axis], pad_source_index(shape[axis], lo, hi, self.mode))
        return [Factors(tuple(relations))]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """On one channel, unless this layer pads (or crops) the channel axis itself."""
        if 0 in self.padded_axes(tuple(in_shapes[0])):
            return None
        return super().support_uniform(mask, in_shapes, out_shape)


class ConstantPadNd(PadNd):
    arguments = {**PadNd.arguments, "value": Arg(real(), REQUIRED, "the fill value")}

    def fill_value(self) -> float:
        return self.value


FAMILIES = {
    "ZeroPad": (PadNd, "zeros", "pads with zeros; negative padding crops (torch.nn.ZeroPadNd)"),
    "ConstantPad": (ConstantPadNd, "zeros", "pads with `value`; negative padding crops (torch.nn.ConstantPadNd)"),
    "ReflectionPad": (PadNd, "reflect", "mirrors the input without repeating the edge (torch.nn.ReflectionPadNd)"),
    "ReplicationPad": (PadNd, "replicate", "repeats the edge values (torch.nn.ReplicationPadNd)"),
    "CircularPad": (PadNd, "circular", "wraps around (torch.nn.CircularPadNd)"),
}

for _family, (_base, _mode, _summary) in FAMILIES.items():
    for _dims in (1, 2, 3):
        _name = f"{_family}{_dims}d"
        register(type(_name, (_base,), {"type_name": _name, "dims": _dims, "mode": _mode, "summary": _summary}))
