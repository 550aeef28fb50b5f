"""Merges of several inputs: Add, Multiply (PyTorch broadcasting) and Concat (along one axis, default channels)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import parallel
from ..kernels import MacCounter, broadcast_channels, per_channel_operand
from ..algebra import Field, concat, merge
from .args import Arg, integer
from .base import Inferred, Layer, Shape, shape_text, storage_axis
from .registry import register
from .factors import Factors, broadcast_relation, gather_relation
from .channels import SAME, ChannelReads, along_channels, joined
from .dense import batch_axis


class BroadcastMerge(Layer):
    """Elementwise merge of two or more inputs with PyTorch's broadcasting of the batchless shapes.

    The inputs have one rank; along each axis their sizes are equal or 1, and the output takes the
    largest (squeeze-and-excitation: [C, 1, 1] * [C, H, W] -> [C, H, W]). Inputs of different ranks are
    refused: PyTorch aligns shapes from the last axis, so a shorter input's batch axis would meet an axis
    of the other (it runs at batch 1 and fails or mixes samples at other batch sizes).

    Receptive field: an input of size 1 along a spatial axis that the output has longer gives every output
    unit the same value, so along that axis it contributes its whole (one-unit) field to every unit: stride
    0, its size and padding kept. Then the usual merge (`algebra.merge`): the union where the strides agree;
    with a broadcast input beside a sliding one the strides differ, so the merge is flagged misaligned and
    reports the widest input's field (a whole-input gate, as in squeeze-and-excitation, makes it whole).
    """

    min_inputs, max_inputs = 2, None
    arguments = {}
    channelwise_support = True

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel reads its own of every input (an input of one channel: that one)."""
        return SAME

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shapes = ", ".join(shape_text(s) for s in in_shapes)
        ranks = {len(s) for s in in_shapes}
        if len(ranks) > 1:
            raise LayerArgError(f"{self.type_name} needs inputs of one rank, got {shapes} (PyTorch would broadcast"
                                f" the batch axis of the shorter against another axis)", "from")
        out = []
        for axis, sizes in enumerate(zip(*in_shapes)):
            largest = max(sizes)
            if any(size not in (1, largest) for size in sizes):
                raise LayerArgError(f"{self.type_name} cannot broadcast {shapes}: the sizes along dim {axis + 1}"
                                    f" (the batch is dim 0) must be equal or 1, got {', '.join(map(str, sizes))}",
                                    "from")
            out.append(largest)
        return Inferred(tuple(out))

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Each input's element under the output's, its one position along a dim it is broadcast along."""
        return [Factors(tuple(broadcast_relation(n, m) for n, m in zip(out_shape, shape))) for shape in in_shapes]

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        """The dims an input is broadcast along (its one unit read by every output unit there)."""
        return tuple(d for d, n in enumerate(out_shape) if any(s[d] == 1 < n for s in in_shapes))

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        spread = []
        for field, shape in zip(fields, in_shapes):
            if not field.whole and len(field.axes) == len(shape) - 1:
                axes = tuple(a.broadcast(out_shape[index + 1]) if shape[index + 1] == 1 < out_shape[index + 1] else a
                             for index, a in enumerate(field.axes))
                field = replace(field, axes=axes)
            spread.append(field)
        return spread[0] if len(spread) == 1 else merge(spread, out_shape[1:])

    def inplace_input(self, in_shapes: Sequence[Shape]) -> int:
        """Which input `forward_inplace` overwrites: the first with the output's shape (a broadcast gate's other
        operand: squeeze-and-excitation's feature map, its scale being input 0)."""
        out = tuple(max(sizes) for sizes in zip(*in_shapes))
        return next((index for index, shape in enumerate(in_shapes) if tuple(shape) == out), 0)

    @staticmethod
    def combine(inputs: Sequence[np.ndarray], ufunc: np.ufunc, out: np.ndarray | None = None) -> np.ndarray:
        """Fold the commutative ``ufunc`` (add, multiply) over the inputs (channels-last arrays of one rank
        broadcast as the logical shapes do), into ``out`` when given (one of the inputs, with the result's shape).
        Two inputs of one shape, or one and a per-channel operand, run split over the threads."""
        if len(inputs) == 2:
            first, second = inputs
            if first.shape == second.shape and first.flags.c_contiguous and second.flags.c_contiguous:
                return _pairwise(ufunc, first, second, out)
            for full, other in ((first, second), (second, first)):
                if per_channel_operand(full, other) and other.shape != full.shape:
                    return broadcast_channels(ufunc, full, other, out)
        whole = out is not None and np.broadcast_shapes(inputs[0].shape, inputs[1].shape) == out.shape
        result = ufunc(inputs[0], inputs[1], out=out) if whole else ufunc(inputs[0], inputs[1])
        for more in inputs[2:]:
            if np.broadcast_shapes(result.shape, more.shape) == result.shape:
                ufunc(result, more, out=result)
            else:
                result = ufunc(result, more)
        return result

    @staticmethod
    def unbroadcast(grad: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """The VJP of broadcasting an array of ``shape`` (same rank) to grad's shape: sum over the stretched axes."""
        axes = tuple(axis for axis, (g, s) in enumerate(zip(grad.shape, shape)) if s == 1 and g != 1)
        return grad.sum(axis=axes, keepdims=True) if axes else grad.copy()


def _pairwise(ufunc: np.ufunc, first: np.ndarray, second: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``ufunc(first, second)`` of two contiguous arrays of one shape, flat blocks split over the threads."""
    result = np.empty_like(first) if out is None else out
    flat = (first.reshape(-1), second.reshape(-1), result.reshape(-1))

    def part(start: int, stop: int) -> None:
        ufunc(flat[0][start:stop], flat[1][start:stop], out=flat[2][start:stop])

    parallel.run_parts(part, first.size)
    return result


def _combine_inplace(layer: BroadcastMerge, inputs: Sequence[np.ndarray], ufunc: np.ufunc) -> np.ndarray:
    """`BroadcastMerge.combine` written into the input `inplace_input` names, when it is contiguous, has the result's
    shape and dtype and no other input overlaps it other than as the very same array (the parts of a split must not
    read what another part writes). Of more than two inputs only the first is written (the fold's order kept)."""
    index = layer.inplace_input([x.shape for x in inputs])
    target = inputs[index]
    if (np.broadcast_shapes(*(x.shape for x in inputs)) != target.shape or not target.flags.c_contiguous
            or target.dtype != np.result_type(*inputs) or (index and len(inputs) > 2)
            or any(position != index and np.may_share_memory(x, target)
                   and not (x.__array_interface__ == target.__array_interface__)
                   for position, x in enumerate(inputs))):
        return layer.combine(inputs, ufunc)
    others = [x for position, x in enumerate(inputs) if position != index]
    return layer.combine([target, *others], ufunc, out=target)


@register
class Add(BroadcastMerge):
    type_name = "Add"
    aliases = ("Sum",)
    summary = "elementwise sum of its inputs (residual connections), with PyTorch broadcasting"
    sums_inputs = True   # the executor may let a producer add its output into the other input (`forward_into`)

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return self.combine(inputs, np.add)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        return [self.unbroadcast(grad, x.shape) for x in inputs]

    def forward_inplace(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        """The sum, written into the input `inplace_input` names (which nothing else needs)."""
        return _combine_inplace(self, inputs, np.add)


@register
class Multiply(BroadcastMerge):
    type_name = "Multiply"
    aliases = ("Mul",)
    summary = "elementwise product of its inputs (gates, attention, squeeze-and-excitation), with PyTorch broadcasting"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return self.combine(inputs, np.multiply)

    def forward_inplace(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        """The product, written into the input `inplace_input` names (which nothing else needs)."""
        return _combine_inplace(self, inputs, np.multiply)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Each input's gradient: grad times the product of the OTHER inputs (never output / x, which a zero
        would spoil), summed over the axes it was broadcast along."""
        grads = []
        for index, x in enumerate(inputs):
            product = grad
            for other, y in enumerate(inputs):
                if other != index:
                    product = product * y
            grads.append(self.unbroadcast(product, x.shape))
        return grads


@register
class Concat(Layer):
    type_name = "Concat"
    aliases = ("Cat",)
    summary = "concatenation along dim (dims count the batch as 0; default 1, the channels)"
    min_inputs, max_inputs = 2, None
    arguments = {"dim": Arg(integer(), 1, "the axis joined along (the batch is dim 0; 1: the channels)")}

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Along the channels: each input's channels in turn; along another axis every channel its own."""
        axis = batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name)
        return along_channels(axis, joined([shape[0] for shape in in_shapes]) if axis == 0 else None)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        first = in_shapes[0]
        ranks = {len(s) for s in in_shapes}
        shapes = ", ".join(shape_text(s) for s in in_shapes)
        if len(ranks) > 1:
            raise LayerArgError(f"Concat needs inputs of one rank, got {shapes}", "from")
        axis = batch_axis(self.dim, len(first), "dim", self.type_name)
        for other in in_shapes[1:]:
            if any(a != b for i, (a, b) in enumerate(zip(first, other)) if i != axis):
                raise LayerArgError(f"Concat along dim {self.dim} needs the other axes equal, got {shapes}", "from")
        total = sum(s[axis] for s in in_shapes)
        return Inferred((*first[:axis], total, *first[axis + 1:]))

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        rank = inputs[0].ndim - 1
        axis = batch_axis(self.dim, rank, "dim", self.type_name)
        return np.concatenate(inputs, axis=storage_axis(axis, rank))

    def joined_axis(self, in_shapes: Sequence[Shape]) -> int:
        """The axis of the stored arrays (batch first, channels last) its inputs are joined along: the executor
        may then write its inputs straight into slices of one buffer (`convcalc.execution.slabs`)."""
        rank = len(in_shapes[0])
        return storage_axis(batch_axis(self.dim, rank, "dim", self.type_name), rank)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Each input gets its own slice of grad along the concatenation axis."""
        rank = inputs[0].ndim - 1
        axis = storage_axis(batch_axis(self.dim, rank, "dim", self.type_name), rank)
        ends = np.cumsum([x.shape[axis] for x in inputs])[:-1]
        return [np.ascontiguousarray(part) for part in np.split(grad, ends, axis=axis)]

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Each input's positions along ``dim`` are the output's from the sum of the lengths before it on."""
        axis = batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name)
        found, offset = [], 0
        for shape in in_shapes:
            source = np.full(out_shape[axis], -1)
            source[offset:offset + shape[axis]] = np.arange(shape[axis])
            relation = gather_relation(shape[axis], source)
            offset += shape[axis]
            found.append(Factors(tuple(relation if d == axis else None for d in range(len(shape)))))
        return found

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """Along the channels every input gets the (uniform) mark; along a spatial axis its own slice."""
        axis = batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name)
        if axis == 0:
            return [mask.copy() for _ in in_shapes]
        inputs = [np.ones((mask.shape[0], *s[1:], 1), dtype=mask.dtype) for s in in_shapes]
        return self.support_backward(inputs, None, mask, None)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Along the channels every unit sees all inputs (a merge). Along a spatial axis each unit comes from
        one input, shifted by the lengths before it: no single window describes every unit, so the field is
        marked misaligned; its regions are exact per unit (one period over the whole axis)."""
        axis = batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name)
        if axis == 0 or any(f.whole for f in fields) or len({len(f.axes) for f in fields}) != 1:
            return merge(fields, out_shape[1:])
        return concat(fields, [shape[axis] for shape in in_shapes], axis - 1, out_shape[1:])
