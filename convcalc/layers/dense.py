"""Linear and Flatten: the layers after which every unit sees the whole input."""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerArgError
from ..receptive import Field
from ..shapes import prod
from .base import Arg, Inferred, Layer, Shape, boolean, integer, optional, register, shape_text


@register
class Linear(Layer):
    type_name = "Linear"
    summary = "y = x Wᵀ + b over the last axis (torch.nn.Linear)"
    arguments = {
        "in_features": Arg(optional(integer(1)), None, "inferred from the graph"),
        "out_features": Arg(integer(1)),
        "bias": Arg(boolean, True),
    }

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        features = in_shape[-1]
        if self.in_features is not None and self.in_features != features:
            hint = " (a Flatten before it?)" if len(in_shape) > 1 else ""
            raise LayerArgError(f"in_features is {self.in_features} but the input's last axis has {features}"
                                f" features; input {shape_text(in_shape)}{hint}", "in_features")
        out_shape = (*in_shape[:-1], self.out_features)
        params = {"weight": (self.out_features, features)}
        if self.bias:
            params["bias"] = (self.out_features,)
        return Inferred(out_shape, params, {}, prod(out_shape) * features)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        return Field.whole_input()


def batch_axis(dim: int, rank: int, name: str, type_name: str) -> int:
    """Normalise a PyTorch dim (batch included, negatives allowed) for a tensor of ``rank`` axes
    without the batch; returns the index into the batchless shape. The batch axis is refused."""
    full = rank + 1
    if not -full <= dim < full:
        raise LayerArgError(f"{name} {dim} is out of range for a {full}-D tensor (batch included)", name)
    dim %= full
    if dim == 0:
        raise LayerArgError(f"{type_name} over {name} 0 would mix the batch: convcalc analyses one sample,"
                            f" so dims count the batch as dim 0 as PyTorch does", name)
    return dim - 1


@register
class Flatten(Layer):
    type_name = "Flatten"
    summary = "merge axes start_dim..end_dim (torch.nn.Flatten; dims count the batch as 0)"
    arguments = {"start_dim": Arg(integer(), 1), "end_dim": Arg(integer(), -1)}

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = in_shapes[0]
        start = batch_axis(self.start_dim, len(shape), "start_dim", self.type_name)
        end = batch_axis(self.end_dim, len(shape), "end_dim", self.type_name)
        if start > end:
            raise LayerArgError(f"start_dim {self.start_dim} comes after end_dim {self.end_dim}", "start_dim")
        return Inferred((*shape[:start], prod(shape[start:end + 1]), *shape[end + 1:]))

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        if len(out_shape) == len(in_shapes[0]):
            return fields[0]  # nothing merged
        return Field.whole_input()
