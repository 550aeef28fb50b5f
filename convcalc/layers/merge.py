"""Merges of several inputs: Add, Multiply (equal shapes) and Concat (along one axis, default channels)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import LayerArgError
from ..kernels import MacCounter
from ..receptive import AxisField, Field, merge
from .base import Arg, Inferred, Layer, Shape, integer, register, shape_text, storage_axis
from .dense import batch_axis


class SameShapeMerge(Layer):
    """Elementwise merge of two or more inputs of identical shape."""

    min_inputs, max_inputs = 2, None
    arguments = {}

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        first = in_shapes[0]
        for other in in_shapes[1:]:
            if tuple(other) != tuple(first):
                shapes = ", ".join(shape_text(s) for s in in_shapes)
                raise LayerArgError(f"{self.type_name} needs inputs of one shape, got {shapes}", "from")
        return Inferred(tuple(first))


@register
class Add(SameShapeMerge):
    type_name = "Add"
    aliases = ("Sum",)
    summary = "elementwise sum of its inputs (residual connections)"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        total = inputs[0] + inputs[1]
        for more in inputs[2:]:
            total += more
        return total

    def forward_inplace(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        """The sum, written into the first input (which nothing else needs)."""
        total = inputs[0]
        for more in inputs[1:]:
            total += more
        return total


@register
class Multiply(SameShapeMerge):
    type_name = "Multiply"
    aliases = ("Mul",)
    summary = "elementwise product of its inputs (gates, attention)"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        product = inputs[0] * inputs[1]
        for more in inputs[2:]:
            product *= more
        return product


@register
class Concat(Layer):
    type_name = "Concat"
    aliases = ("Cat",)
    summary = "concatenation along dim (dims count the batch as 0; default 1, the channels)"
    min_inputs, max_inputs = 2, None
    arguments = {"dim": Arg(integer(), 1)}

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

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Along the channels every unit sees all inputs (a merge). Along a spatial axis each unit comes from
        one input, shifted by the lengths before it: no single window describes every unit, so the field is
        marked misaligned; sizes span the inputs' sizes, stride and padding are the first input's."""
        axis = batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name)
        if axis == 0 or any(f.whole for f in fields) or len({len(f.axes) for f in fields}) != 1:
            return merge(fields)
        first = fields[0].axes
        return Field(tuple(
            AxisField(size=max(f.axes[i].size for f in fields), size_min=min(f.axes[i].size_min for f in fields),
                      stride=first[i].stride, padding=first[i].padding)
            for i in range(len(first))), misaligned=True)
