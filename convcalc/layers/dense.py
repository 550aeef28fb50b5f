"""Linear and Flatten: the layers after which every unit sees the whole input."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter, to_logical, to_storage
from ..algebra import Field, Reads
from ..algebra.shapes import prod
from .args import Arg, boolean, integer, optional
from .base import Inferred, Layer, Shape, fan_in_uniform, shape_text, storage_axis
from .channels import SAME, ChannelReads
from .registry import register
from .factors import EVERY, Factors


@register
class Linear(Layer):
    type_name = "Linear"
    summary = "y = x Wᵀ + b over the last axis (torch.nn.Linear)"
    arguments = {
        "in_features": Arg(optional(integer(1)), None, "inferred from the graph"),
        "out_features": Arg(integer(1), doc="the output's last axis: features out"),
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

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        """The last axis (the features)."""
        return (len(in_shapes[0]) - 1,)

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """On a [C, *S] input each channel its own (the Linear mixes the last axis); on a vector every feature."""
        return SAME if len(in_shapes[0]) >= 2 else None

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """A vector input: every output reads every unit before (whole). On a [C, *S] input the Linear acts on the
        last spatial axis only: there each unit reads every position (a whole axis, stride 0), the other axes
        keep their windows. After a reshape (a permutation, Flatten keeping a spatial axis: `Field.reshaped`) the
        last axis is no window's: still only what the units reach together (into a vector: whole)."""
        field = fields[0]
        if field.reshaped and len(out_shape) > 1:
            return field
        if field.whole or len(in_shapes[0]) < 2 or len(field.axes) != len(in_shapes[0]) - 1:
            return field.gathered()
        spatial = in_shapes[0][1:]
        reads = [Reads.identity()] * (len(spatial) - 1) + [Reads.everything(spatial[-1])]
        return field.through(reads, out_shape[1:])

    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return fan_in_uniform(rng, inferred.params, inferred.params["weight"][1])

    def can_absorb_affine(self, out_shape: Shape) -> bool:
        """A per-channel map (channels: batchless axis 0) is per-feature only when the output is a vector [F].

        On a [C, ..., F] output a BatchNorm1d scales the C rows, which share the weights: not absorbable.
        """
        return len(out_shape) == 1

    def absorb_affine(self, params: Mapping[str, np.ndarray], scale: np.ndarray,
                      shift: np.ndarray) -> dict[str, np.ndarray]:
        """Fold a following per-feature affine map (an inference BatchNorm1d after a vector output) into the weights."""
        weight = np.asarray(params["weight"], dtype=np.float64)
        bias = np.asarray(params["bias"], dtype=np.float64) if "bias" in params else np.zeros(weight.shape[0])
        return {"weight": weight * scale[:, None], "bias": bias * scale + shift}

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        rank = len(in_shapes[0])
        return {"weight": np.ascontiguousarray(np.asarray(params["weight"]).T, dtype=dtype),   # (in, out)
                "bias": np.asarray(params["bias"], dtype=dtype) if "bias" in params else None,
                "axis": storage_axis(rank - 1, rank)}

    def forward(self, inputs: Sequence[np.ndarray], prepared: dict[str, Any], counter: MacCounter) -> np.ndarray:
        x = np.moveaxis(inputs[0], prepared["axis"], -1)                       # features last
        weight = prepared["weight"]
        y = counter.matmul(x.reshape(-1, x.shape[-1]), weight).reshape(*x.shape[:-1], weight.shape[-1])
        if prepared["bias"] is not None:
            y += prepared["bias"]
        return np.moveaxis(y, -1, prepared["axis"])

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: dict[str, Any]) -> list[np.ndarray]:
        """dL/dx = grad Wᵀ over the features axis."""
        g = np.moveaxis(grad, prepared["axis"], -1)                            # features last
        dx = np.matmul(g.reshape(-1, g.shape[-1]), prepared["weight"].T).reshape(*g.shape[:-1], -1)
        return [np.ascontiguousarray(np.moveaxis(dx, -1, prepared["axis"]))]

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Every feature along the last dim; the other dims their own position."""
        rank = len(in_shapes[0])
        return [Factors((None,) * (rank - 1) + (EVERY,))]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Every output feature reads every input feature along the features axis (no weight matrix needed)."""
        x = inputs[0]
        rank = x.ndim - 1
        axis = storage_axis(rank - 1, rank)
        shape = list(mask.shape)
        shape[axis] = x.shape[axis]
        return [np.broadcast_to(mask.max(axis=axis, keepdims=True), shape).copy()]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """The same on one channel (a vector's features: one)."""
        shape = in_shapes[0]
        x = np.ones((mask.shape[0], *shape[1:], 1) if len(shape) > 1 else (mask.shape[0], 1), dtype=mask.dtype)
        return self.support_backward([x], None, mask, None)


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

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = to_logical(inputs[0])                                              # PyTorch's (N, C, *S) order
        out_shape = self.infer([x.shape[1:]]).out_shape
        return to_storage(np.ascontiguousarray(x).reshape(x.shape[0], *out_shape))

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """The reshape undone on the gradient (in PyTorch's order, as the forward)."""
        x = to_logical(inputs[0])
        g = np.ascontiguousarray(to_logical(grad)).reshape(x.shape)
        return [np.array(to_storage(g))]                                       # a copy: never a view of grad

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """Into a vector, a mark on every feature (one channel kept) is a mark on every input element."""
        if len(out_shape) != 1 or len(in_shapes[0]) < 2:
            return None
        spatial = tuple(in_shapes[0][1:])
        return [np.broadcast_to(mask.reshape(len(mask), *(1,) * len(spatial), 1), (len(mask), *spatial, 1)).copy()]

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Nothing merged: the input's. Into a vector: whole (what all units read together). Axes merged with
        spatial axes kept ([C, H, W] -> [C, H*W] or [C*H, W]): a reshape, whose units read single positions in no
        window order (`Field.reshaped`)."""
        if len(out_shape) == len(in_shapes[0]):
            return fields[0]
        gathered = fields[0].gathered()
        return replace(gathered, reshaped=True) if len(out_shape) > 1 else gathered
