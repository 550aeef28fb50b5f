"""Layout layers: Permute, Unflatten, Reshape (alias View), and the slicing layers Narrow, Chunk and Split.

Every rule: 0 parameters, 0 MACs; the values are moved, never combined. Dims count the batch as dim 0, as PyTorch
(and `Flatten`) count them; a layer that would move or cut the batch axis is refused, since convcalc analyses one
sample. Shapes in arguments (`Reshape`'s ``shape``) are written without the batch, like every shape convcalc
prints and like the spec's ``input``.

* ``Permute(dims)``: torchvision.ops.misc.Permute, ``torch.permute(x, dims)``; ``dims`` lists every axis of the
  batched tensor, so ``dims[0]`` must be 0 (ConvNeXt: ``[0, 2, 3, 1]`` puts the channels last).
* ``Unflatten(dim, unflattened_size)``: torch.nn.Unflatten; one size may be -1 (inferred).
* ``Reshape(shape)`` / ``View``: ``x.reshape(x.size(0), *shape)``; one size may be -1.
* ``Narrow(dim, start, length)``: ``torch.narrow``; a negative ``start`` counts from the end.
* ``Chunk(chunks, dim=1)`` / ``Split(split_size_or_sections, dim=1)``: ``torch.chunk`` / ``torch.split``, whose
  parts later layers name as ``NAME.K`` (``from: split.1``). Without ``part`` such a layer has several outputs
  and no node of its own: the graph builder (`convcalc.spec.parts`) turns each reference ``NAME.K`` into a node
  ``NAME.K``, the same layer with ``part: K`` (one output: that part). ``dim`` defaults to 1 (the channels), not
  torch's 0 (the batch), as Concat's does.

Receptive fields: slicing along the channels keeps the field; along a spatial axis it is a crop (a 1-wide window of
stride 1 whose left padding is ``-start``, the rule of a negative pad). A permutation keeps every unit's field
exactly and records which output dims the field's axes are (`Field.layout`: ConvNeXt's ``[0, 2, 3, 1]`` makes
[H, W, C]); layers that read position for position along the spatial dims (elementwise ones, a Linear or
LayerNorm or Softmax over the channels now last, Add) keep it (`Layer.field_of`), the Permute back restores the
standard field, and any other layer given a permuted tensor claims only what its units reach together. A reshape
that changes the shape is a reshape of the field (`Field.reshaped`, as Flatten's that keeps a spatial axis): a
tensor whose axes were regrouped has no per-unit window, so only what the units reach together is stated (into a
vector: whole, as Flatten's). An identity (the same shape back) keeps the field exactly. A slice of a reshaped tensor keeps the whole
tensor's claim, which can be more than the part reaches (`run --rf-check` marks it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter, to_logical, to_storage
from ..algebra import Field
from ..algebra.shapes import prod
from .args import REQUIRED, Arg, _as_int, _type_name, integer, optional
from .base import Inferred, Layer, Shape, shape_text, storage_axis
from .dense import batch_axis
from .registry import register
from .factors import Factors, gather_relation
from .channels import ChannelReads, along_channels, sliced


# --------------------------------------------------------------------------- argument parsers

_INT = {"type": "integer"}
_SIZE = {"type": "integer", "minimum": -1, "not": {"const": 0}}


def _int_list(value: Any, name: str, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise LayerArgError(f"{name} must be a non-empty list of {what}, got {_type_name(value)}", name)
    return tuple(_as_int(v, name) for v in value)


def dims_list(value: Any, dims: int, name: str) -> tuple[int, ...]:
    """A non-empty list of dims (batch included; negatives count from the end)."""
    return _int_list(value, name, "dims")


dims_list.json_schema = lambda dims: {"type": "array", "items": _INT, "minItems": 1}


def size_list(value: Any, dims: int, name: str) -> tuple[int, ...]:
    """A non-empty list of sizes, each positive or -1 (inferred; at most one, checked with the input's shape)."""
    sizes = _int_list(value, name, "sizes")
    for size in sizes:
        if size < 1 and size != -1:
            raise LayerArgError(f"{name} sizes must be positive, or -1 for the one inferred from the input, got"
                                f" {size}", name)
    return sizes


size_list.json_schema = lambda dims: {"type": "array", "items": _SIZE, "minItems": 1}


def split_sizes(value: Any, dims: int, name: str) -> int | tuple[int, ...]:
    """torch.split's split_size_or_sections: one size (positive) or a list of sizes (not negative)."""
    if isinstance(value, list):
        sizes = _int_list(value, name, "sizes")
        if any(size < 0 for size in sizes):
            raise LayerArgError(f"{name} sizes may not be negative, got {min(sizes)}", name)
        return sizes
    size = _as_int(value, name)
    if size < 1:
        raise LayerArgError(f"{name} must be a positive size or a list of sizes, got {size}", name)
    return size


split_sizes.json_schema = lambda dims: {"anyOf": [{"type": "integer", "minimum": 1}, {
    "type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}]}


# --------------------------------------------------------------------------- shared helpers

def logical_shape(stored: np.ndarray) -> Shape:
    """The batchless PyTorch shape of a stored (channels-last) array."""
    return (stored.shape[-1], *stored.shape[1:-1]) if stored.ndim > 2 else tuple(stored.shape[1:])


def _own(result: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``result``, copied if it may share memory with ``source`` (an output is never a view of an input)."""
    return result.copy() if np.may_share_memory(result, source) else result


def regrouped(field: Field, in_shape: Shape, out_shape: Shape) -> Field:
    """The field after a permutation or reshape: the input's if the shape and order are kept (``out_shape`` None:
    they are not), else Flatten's rule: into a vector whole, else reshaped (what the units reach together)."""
    if out_shape is not None and tuple(out_shape) == tuple(in_shape):
        return field
    shape = out_shape if out_shape is not None else in_shape
    gathered = field.gathered()
    return replace(gathered, reshaped=True) if len(shape) > 1 else gathered


def sized(sizes: Sequence[int], total: int, name: str, where: str) -> tuple[int, ...]:
    """``sizes`` with its -1 (at most one) inferred so that they multiply to ``total`` (view's rule)."""
    unknown = [i for i, s in enumerate(sizes) if s == -1]
    if len(unknown) > 1:
        raise LayerArgError(f"{name} {list(sizes)} has more than one -1; only one size can be inferred", name)
    known = prod(s for s in sizes if s != -1)
    if unknown:
        if total % known:
            raise LayerArgError(f"{name} {list(sizes)}: {where} has {total:,} elements, not a multiple of"
                                f" {known:,}, so the -1 cannot be inferred", name)
        sizes = (*sizes[:unknown[0]], total // known, *sizes[unknown[0] + 1:])
    elif known != total:
        raise LayerArgError(f"{name} {list(sizes)} holds {known:,} elements but {where} has {total:,}", name)
    return tuple(sizes)


class Moves(Layer):
    """A layer that moves values without combining them: no parameters, no MACs."""

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = to_logical(inputs[0])                                              # PyTorch's (N, C, *S) order
        return _own(np.ascontiguousarray(to_storage(self.move(x))), inputs[0])

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        x_shape = (inputs[0].shape[0], *logical_shape(inputs[0]))
        g = self.move_back(to_logical(grad), x_shape)
        return [_own(np.ascontiguousarray(to_storage(g)), grad)]

    def move(self, x: np.ndarray) -> np.ndarray:
        """The values moved, in PyTorch's order (batch first)."""
        raise NotImplementedError

    def move_back(self, grad: np.ndarray, x_shape: Shape) -> np.ndarray:
        """The gradient moved back onto the input's positions (``x_shape``: its batched PyTorch shape)."""
        raise NotImplementedError


# --------------------------------------------------------------------------- Permute, Unflatten, Reshape

@register
class Permute(Moves):
    type_name = "Permute"
    summary = "reorder the axes, dims batch included with dims[0] = 0 (torchvision.ops.misc.Permute)"
    arguments = {"dims": Arg(dims_list, REQUIRED, "every axis of the batched tensor, in the new order; dims[0] = 0")}

    def order(self, rank: int) -> tuple[int, ...]:
        """The dims, normalised, for a tensor of ``rank`` axes without the batch (batch included in the result)."""
        full = rank + 1
        if len(self.dims) != full:
            raise LayerArgError(f"dims {list(self.dims)} has {len(self.dims)} entries but the input has {full} axes"
                                f" (batch included)", "dims")
        order = []
        for dim in self.dims:
            if not -full <= dim < full:
                raise LayerArgError(f"dim {dim} in dims is out of range for a {full}-D tensor (batch included)",
                                    "dims")
            order.append(dim % full)
        if len(set(order)) != full:
            raise LayerArgError(f"dims {list(self.dims)} repeats an axis", "dims")
        if order[0] != 0:
            raise LayerArgError(f"dims {list(self.dims)} would move the batch axis: convcalc analyses one sample, so"
                                f" dims (which count the batch as 0, as torch's do) must start with 0", "dims")
        return tuple(order)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        order = self.order(len(shape))
        return Inferred(tuple(shape[d - 1] for d in order[1:]))

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        order = self.order(len(in_shapes[0]))
        return "dims keep every axis in place" if order == tuple(range(len(order))) else None

    def move(self, x: np.ndarray) -> np.ndarray:
        return np.transpose(x, self.order(x.ndim - 1))

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Every element reads one input element: input dim j is the output's dim i where dims[i] is j."""
        rank = len(in_shapes[0])
        moved = [d - 1 for d in self.order(rank)[1:]]                 # output dim i holds input dim moved[i]
        return [Factors((None,) * rank, tuple(moved.index(j) for j in range(rank)))]

    def move_back(self, grad: np.ndarray, x_shape: Shape) -> np.ndarray:
        return np.transpose(grad, np.argsort(self.order(grad.ndim - 1)))

    layout_aware = True

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """The input's per-axis fields, its dims reordered (`Field.permuted`: exact; back in the standard order, a
        standard field). A whole field stays as it is; a field not of this rank (none known): a reshape's."""
        field, rank = fields[0], len(in_shapes[0])
        order = self.order(rank)
        if field.whole or len(field.dims(rank)) != rank or len(field.axes) != rank - 1:
            return regrouped(field, in_shapes[0], out_shape if order == tuple(range(len(order))) else None)
        return field.permuted([d - 1 for d in order[1:]])


class Reshapes(Moves):
    """Unflatten and Reshape: the values in PyTorch's order, regrouped into ``out_shape``."""

    def move(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], *self.infer([x.shape[1:]]).out_shape)

    def move_back(self, grad: np.ndarray, x_shape: Shape) -> np.ndarray:
        return grad.reshape(x_shape)

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        """The same shape: none (each value stays where it was); else not a per-dim rule."""
        return () if tuple(in_shapes[0]) == tuple(out_shape) else None

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """The same shape: the input's field; else a reshape of it (into a vector: whole)."""
        return regrouped(fields[0], in_shapes[0], out_shape)

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        return "the shape is kept" if tuple(in_shapes[0]) == tuple(out_shape) else None


@register
class Unflatten(Reshapes):
    type_name = "Unflatten"
    summary = "split axis dim into unflattened_size, one -1 allowed (torch.nn.Unflatten; dim counts the batch as 0)"
    arguments = {
        "dim": Arg(integer(), REQUIRED, "the axis to split (the batch is dim 0)"),
        "unflattened_size": Arg(size_list, REQUIRED, "its new sizes; one may be -1"),
    }

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        axis = batch_axis(self.dim, len(shape), "dim", self.type_name)
        sizes = sized(self.unflattened_size, shape[axis], "unflattened_size", f"axis {axis + 1} (dim {self.dim})")
        return Inferred((*shape[:axis], *sizes, *shape[axis + 1:]))


@register
class Reshape(Reshapes):
    type_name = "Reshape"
    aliases = ("View",)
    summary = "the same values in a new shape, given without the batch, one -1 allowed (x.reshape(x.size(0), *shape))"
    arguments = {"shape": Arg(size_list, REQUIRED, "the new shape without the batch ([C, H, W] order); one may be -1")}

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        return Inferred(sized(self.shape, prod(shape), "shape", f"the input {shape_text(shape)}"))


# --------------------------------------------------------------------------- Narrow, Chunk, Split

class Slices(Layer):
    """A layer whose output is the positions ``start .. start + length - 1`` of one axis of its input."""

    def span(self, shape: Shape) -> tuple[int, int, int]:
        """(batchless axis, start, length) for an input of ``shape``; raises where torch would."""
        raise NotImplementedError

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        axis, _, length = self.span(shape)
        return Inferred((*shape[:axis], length, *shape[axis + 1:]))

    def _slices(self, stored: np.ndarray) -> tuple[slice, ...]:
        shape = logical_shape(stored)
        axis, start, length = self.span(shape)
        where = storage_axis(axis, len(shape))
        return (slice(None),) * where + (slice(start, start + length),)

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return inputs[0][self._slices(inputs[0])].copy()

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Position j of the cut axis reads position start + j; every other dim its own."""
        shape = tuple(in_shapes[0])
        axis, start, length = self.span(shape)
        cut = gather_relation(shape[axis], range(start, start + length))
        return [Factors(tuple(cut if d == axis else None for d in range(len(shape))))]

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """The gradient at the kept positions, 0 at the others."""
        result = np.zeros(inputs[0].shape, dtype=grad.dtype)
        result[self._slices(inputs[0])] = grad
        return [result]

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Along the channels: the input's field. Along a spatial axis: a crop, a 1-wide window of stride 1 with
        left padding -start (as a negative pad). A whole field stays as it is: for a reshaped one that is the whole
        tensor's reach, which can be more than the part's (a known limit, stated in the README)."""
        field = fields[0]
        shape = tuple(in_shapes[0])
        axis, start, _ = self.span(shape)
        if axis == 0 or field.whole or len(field.axes) != len(shape) - 1:
            return field
        lows = [0] * len(field.axes)
        lows[axis - 1] = -start
        ones = [1] * len(field.axes)
        return field.through_window(ones, ones, lows, out_shape[1:])

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        return "it keeps the whole axis" if tuple(in_shapes[0]) == tuple(out_shape) else None

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Along the channels: the channels kept; along another axis every channel its own."""
        axis, start, length = self.span(tuple(in_shapes[0]))
        return along_channels(axis, sliced(start, length) if axis == 0 else None)

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        """The axis cut (along a spatial one the units move: a crop)."""
        return (self.span(tuple(in_shapes[0]))[0],)

    channelwise_support = True

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """A mark the same on every channel stays so, unless the channels themselves are cut."""
        if self.span(tuple(in_shapes[0]))[0] == 0:
            return None
        return super().support_uniform(mask, in_shapes, out_shape)


def _part_axis(layer: Layer, shape: Shape) -> tuple[int, int]:
    axis = batch_axis(layer.dim, len(shape), "dim", layer.type_name)
    return axis, shape[axis]


@register
class Narrow(Slices):
    type_name = "Narrow"
    summary = "positions start .. start+length-1 of axis dim (torch.narrow; dim counts the batch as 0)"
    arguments = {
        "dim": Arg(integer(), REQUIRED, "the axis to cut (the batch is dim 0)"),
        "start": Arg(integer(), REQUIRED, "the first position kept; negative: from the end"),
        "length": Arg(integer(1), REQUIRED, "how many positions are kept"),
    }

    def span(self, shape: Shape) -> tuple[int, int, int]:
        axis, size = _part_axis(self, shape)
        if not -size <= self.start <= size:
            raise LayerArgError(f"start {self.start} is out of range for axis {axis + 1} (dim {self.dim}) of size"
                                f" {size}: it must lie in [{-size}, {size}]", "start")
        start = self.start % size if self.start < 0 else self.start
        if start + self.length > size:
            raise LayerArgError(f"start {start} + length {self.length} goes past the end of axis {axis + 1} (dim"
                                f" {self.dim}), whose size is {size}", "length")
        return axis, start, self.length


class Parts(Slices):
    """Chunk and Split: several parts of one axis. Without ``part`` the layer has several outputs, which later
    layers name ``NAME.K`` (the graph builder makes each named part a node, this layer with ``part: K``)."""

    @property
    def splits(self) -> bool:
        """Whether this is the layer of several outputs (no ``part`` chosen), not one of its parts."""
        return self.part is None

    def known_parts(self) -> int | None:
        """How many parts there can be at most, known without the input's shape (None: it depends on it)."""
        raise NotImplementedError

    def with_part(self, index: int) -> "Parts":
        """The layer of part ``index``; raises when there cannot be that many parts."""
        bound = self.known_parts()
        if bound is not None and index >= bound:
            raise LayerArgError(f"there is no part {index}: it has at most {bound} part{'s' if bound > 1 else ''}"
                                f" (0 to {bound - 1})", "part")
        return type(self)(**{**self.args, "part": index})

    def step(self, size: int) -> int | tuple[int, ...]:
        """Along an axis of ``size``: the length of every part but the last (which may be shorter), or the list of
        the parts' lengths, as torch makes them (without listing a long axis's parts one by one)."""
        raise NotImplementedError

    def span(self, shape: Shape) -> tuple[int, int, int]:
        axis, size = _part_axis(self, shape)
        step = self.step(size)
        count = len(step) if isinstance(step, tuple) else -(-size // step)
        if isinstance(step, tuple):
            made = str(list(step))
        else:
            last = size - (count - 1) * step
            made = f"of {step}" + (f" (the last {last})" if last != step else "")
        if self.part is None:
            raise LayerArgError(f"{self.type_name} has {count} outputs here; a later layer names one as NAME.K"
                                f" (or give 'part')", "part")
        if self.part >= count:
            raise LayerArgError(f"there is no part {self.part}: axis {axis + 1} (dim {self.dim}) of size {size} makes"
                                f" {count} part{'s' if count > 1 else ''} {made}", "part")
        if isinstance(step, tuple):
            start, length = sum(step[:self.part]), step[self.part]
            if length == 0:
                raise LayerArgError(f"part {self.part} is empty (the sizes are {made})", "part")
        else:
            start = self.part * step
            length = min(step, size - start)
        return axis, start, length


PART = Arg(optional(integer(0)), None, "which part this layer is (a reference NAME.K sets it); null: all parts, named"
                                        " NAME.0, NAME.1, ... by later layers")


@register
class Chunk(Parts):
    type_name = "Chunk"
    summary = "chunks parts of axis dim, each ceil(size/chunks) long, named NAME.K by later layers (torch.chunk)"
    arguments = {
        "chunks": Arg(integer(1), REQUIRED, "how many parts (at most: torch makes fewer when they come out empty)"),
        "dim": Arg(integer(), 1, "the axis to split (the batch is dim 0; torch's default 0 is the batch)"),
        "part": PART,
    }

    def known_parts(self) -> int | None:
        return self.chunks

    def step(self, size: int) -> int:
        """torch.chunk: parts of ceil(size/chunks), the last one shorter; fewer than chunks if they run out."""
        return -(-size // self.chunks)


@register
class Split(Parts):
    type_name = "Split"
    summary = "parts of axis dim of the given size(s), named NAME.K by later layers (torch.split)"
    arguments = {
        "split_size_or_sections": Arg(split_sizes, REQUIRED, "one size (the last part may be shorter) or a list"
                                                              " of sizes adding up to the axis"),
        "dim": Arg(integer(), 1, "the axis to split (the batch is dim 0; torch's default 0 is the batch)"),
        "part": PART,
    }

    def known_parts(self) -> int | None:
        sections = self.split_size_or_sections
        return len(sections) if isinstance(sections, tuple) else None

    def step(self, size: int) -> int | tuple[int, ...]:
        sections = self.split_size_or_sections
        if isinstance(sections, tuple) and sum(sections) != size:
            raise LayerArgError(f"split_size_or_sections {list(sections)} adds up to {sum(sections)}, but the"
                                f" axis has {size}", "split_size_or_sections")
        return sections


__all__ = ["Chunk", "Narrow", "Permute", "Reshape", "Split", "Unflatten"]
