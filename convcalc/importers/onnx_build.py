"""The ONNX graph under construction for `onnx_export`: nodes, constants, and the few helpers every layer's emitter
shares (reshapes that keep a dynamic batch, slices, pads, reductions across opsets).

Tensors are in PyTorch's layout, ``[N, C, *spatial]`` with a symbolic batch ``N``; shapes passed around here are
convcalc's, batchless. Only the network's parameters and buffers become initializers (named by their state_dict
keys); every other constant (shape vectors, ones, masks, identity kernels) is a ``Constant`` node, so that the
model's initializers are exactly its state_dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConvcalcError

OPSET_MIN, OPSET_MAX, OPSET_DEFAULT = 13, 22, 18


def _claim(taken: set[str], base: str) -> str:
    """``base``, else ``base_1``, ``base_2``, ...: the first not in ``taken``, added to it."""
    name, count = base, 0
    while name in taken:
        count += 1
        name = f"{base}_{count}"
    taken.add(name)
    return name


class ExportError(ConvcalcError):
    """A network (or one of its layers) that the exporter cannot write as ONNX."""


class Refused(Exception):
    """Raised by an emitter: this layer, with these arguments, has no exact ONNX form (the reason is the text)."""


@dataclass
class Site:
    """One layer as an emitter sees it: its name (for the nodes' names), unit, input tensors and shapes (batchless),
    output shape and its parameters' tensors by parameter name (``weight``, ``depthwise.bias``, ...)."""

    name: str
    layer: Any
    inputs: list[str]
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    params: Mapping[str, str] = field(default_factory=dict)


class Builder:
    """Collects nodes and makes unique names; ``onnx`` is the lazily imported module."""

    def __init__(self, onnx: Any, opset: int):
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.nodes: list[Any] = []
        self.tensor_names: set[str] = set()
        self.node_names: set[str] = set()

    # ---- names
    def fresh(self, base: str) -> str:
        """A tensor name not used yet: ``base``, else ``base_1``, ``base_2``, ..."""
        return _claim(self.tensor_names, base)

    def _node_name(self, base: str) -> str:
        return _claim(self.node_names, base)

    # ---- nodes
    def op(self, op_type: str, inputs: Sequence[str], name: str, outputs: int = 1, **attrs: Any) -> Any:
        """Add a node; returns its output tensor's name (a list when ``outputs`` > 1). ``name``: the layer's."""
        outs = [self.fresh(f"{name}/{op_type}" + (f":{k}" if k else "")) for k in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=self._node_name(f"{name}/{op_type}"),
                                                **attrs))
        return outs[0] if outputs == 1 else outs

    def const(self, value: Any, name: str, dtype: Any = np.float32) -> str:
        """A Constant node holding ``value`` (float32 unless ``dtype``)."""
        array = np.asarray(value, dtype=dtype)
        out = self.fresh(f"{name}/const")
        tensor = self.onnx.numpy_helper.from_array(array, out)
        self.nodes.append(self.helper.make_node("Constant", [], [out], name=self._node_name(f"{name}/Constant"),
                                                value=tensor))
        return out

    def ints(self, values: Sequence[int], name: str) -> str:
        return self.const(list(values), name, np.int64)

    # ---- shared helpers (shapes are batchless; the batch stays symbolic)
    def reshape(self, x: str, shape: Sequence[int], name: str) -> str:
        """``x`` reshaped to ``[N, *shape]`` (the batch copied: 0 in ONNX's Reshape; -1 allowed once in shape)."""
        return self.op("Reshape", [x, self.ints([0, *shape], name)], name)

    def slice(self, x: str, axis: int, start: int, end: int, name: str, step: int = 1) -> str:
        """``x[..., start:end:step, ...]`` along ``axis`` (batch included: 1 is the channels)."""
        return self.op("Slice", [x, self.ints([start], name), self.ints([end], name), self.ints([axis], name),
                                 self.ints([step], name)], name)

    def reduce(self, op_type: str, x: str, axes: Sequence[int], name: str, keepdims: bool = True) -> str:
        """ReduceMean/Max/Min/Sum over ``axes``: an attribute before opset 18 (13 for ReduceSum), an input after."""
        keep = int(keepdims)
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(list(axes), name)], name, keepdims=keep)
        return self.op(op_type, [x], name, axes=list(axes), keepdims=keep)

    def clip(self, x: str, low: float | None, high: float | None, name: str) -> str:
        inputs = [x, self.const(low, name) if low is not None else "",
                  self.const(high, name) if high is not None else ""]
        while inputs[-1] == "":
            inputs.pop()
        return self.op("Clip", inputs, name)

    def pad(self, x: str, pairs: Sequence[tuple[int, int]], name: str, mode: str = "constant",
            value: float = 0.0, rank: int | None = None) -> str:
        """Pad the last len(pairs) axes of ``x`` (batched ``rank``; default: all the spatial axes, from axis 2) by
        ``pairs`` [(before, after), ...]: negative values crop (a Slice), ``mode`` constant/reflect/edge/wrap (wrap
        as slices and a concat, in every opset)."""
        rank = len(pairs) + 2 if rank is None else rank
        first = rank - len(pairs)
        if any(lo < 0 or hi < 0 for lo, hi in pairs):
            starts = [max(0, -lo) for lo, _ in pairs]
            ends = [-max(0, -hi) if hi < 0 else np.iinfo(np.int64).max for _, hi in pairs]
            x = self.op("Slice", [x, self.ints(starts, name), self.ints(ends, name),
                                  self.ints(list(range(first, rank)), name)], name)
            pairs = [(max(0, lo), max(0, hi)) for lo, hi in pairs]
        if not any(lo or hi for lo, hi in pairs):
            return x
        if mode == "wrap":
            for axis, (lo, hi) in enumerate(pairs, start=first):
                pieces = []
                if lo:
                    pieces.append(self.slice(x, axis, -lo, np.iinfo(np.int64).max, name))
                pieces.append(x)
                if hi:
                    pieces.append(self.slice(x, axis, 0, hi, name))
                if len(pieces) > 1:
                    x = self.op("Concat", pieces, name, axis=axis)
            return x
        pads = [0] * first + [lo for lo, _ in pairs] + [0] * first + [hi for _, hi in pairs]
        inputs = [x, self.ints(pads, name)]
        if mode == "constant" and value != 0:
            inputs.append(self.const(value, name))
        return self.op("Pad", inputs, name, mode=mode)

    def full_shape(self, x: str, spatial: Sequence[int], name: str, channels: int | None = None) -> str:
        """An int64 shape ``[N, C, *spatial]`` with N (and C, unless given) read from ``x`` at run time."""
        shape = self.op("Shape", [x], name)
        keep = self.op("Slice", [shape, self.ints([0], name), self.ints([1 if channels is not None else 2], name),
                                 self.ints([0], name)], name)
        tail = ([channels] if channels is not None else []) + list(spatial)
        return self.op("Concat", [keep, self.ints(tail, name)], name, axis=0)

    def channel_vector(self, tensor: str, rank: int, name: str) -> str:
        """A per-channel ``[C]`` tensor reshaped to ``[C, 1, ...]`` to broadcast over ``[N, C, *spatial]`` of
        batched rank ``rank`` (a vector ``[N, C]`` takes it as it is)."""
        if rank <= 2:
            return tensor
        return self.op("Reshape", [tensor, self.ints([-1] + [1] * (rank - 2), name)], name)


__all__ = ["Builder", "ExportError", "OPSET_DEFAULT", "OPSET_MAX", "OPSET_MIN", "Refused", "Site"]
