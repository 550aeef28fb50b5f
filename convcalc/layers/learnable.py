"""Learnable tensors and stochastic depth: `LearnableTensor` (x times, or plus, a learned tensor of a given shape,
broadcast as PyTorch broadcasts) and `StochasticDepth` (torchvision.ops.StochasticDepth: the identity at inference).

`LearnableTensor` is what a torch model writes as ``x * self.layer_scale`` (ConvNeXt's CNBlock: a
``nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)``) or ``x + self.pos_embedding`` (ViT). The parameter's
state_dict key is the layer's own name by default (``param: ""``: a layer named ``features.1.0.layer_scale`` has the
key ``features.1.0.layer_scale``, as torchvision's attribute), or ``<layer>.<param>`` (``param: gamma``: timm's
LayerScale). Its value at initialisation is 1 for ``op: multiply`` and 0 for ``op: add`` (the identity); a spec sets
another with the layer's ``init:`` (``init: 1e-6``, torchvision's layer_scale).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter
from ..algebra import Field
from ..algebra.shapes import prod
from .args import MAX_SIZE, Arg, choice, real
from .base import Elementwise, Inferred, Layer, Shape, shape_text
from .channels import SAME, ChannelReads
from .merge import BroadcastMerge
from .registry import register
from .factors import Factors


def tensor_shape(value: Any, dims: int, name: str) -> tuple[int, ...]:
    """A tensor's shape as torch writes it: a list of positive integers (an integer alone: a 1-D tensor)."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise LayerArgError(f"{name} must be a list of positive integers, got an empty list", name)
    for size in values:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
            raise LayerArgError(f"{name} must be a list of positive integers (torch's parameter shape),"
                                f" got {value!r}", name)
    if prod(values) > MAX_SIZE:
        raise LayerArgError(f"{name} {list(values)} holds more than {MAX_SIZE:,} values", name)
    return tuple(values)


tensor_shape.json_schema = lambda dims: {"anyOf": [
    {"type": "integer", "minimum": 1}, {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}]}


def parameter_name(value: Any, dims: int, name: str) -> str:
    """The parameter's name in its state_dict key: '' (the key is the layer's name) or an identifier."""
    if not isinstance(value, str) or (value and not value.isidentifier()):
        raise LayerArgError(f"{name} must be '' (the state_dict key is the layer's own name) or a name such as"
                            f" 'gamma' (the key is '<layer>.gamma'), got {value!r}", name)
    return value


parameter_name.json_schema = lambda dims: {"type": "string", "pattern": r"^([A-Za-z_][A-Za-z0-9_]*)?$"}


@register
class LearnableTensor(Layer):
    """x ∘ T for a learned tensor T of torch's shape ``shape``, ∘ = * or +.

    Broadcasting is torch's for a batched input [N, *sample] and T: shapes are aligned from the last axis, so a
    per-channel scale of a [C, H, W] input has shape [C, 1, 1] (a [C] tensor would meet the last axis, W). A
    ``shape`` one axis longer than the sample puts its first axis on the batch axis, where it must be 1 (ViT's
    pos_embedding [1, L, D]); a longer one is refused. Where the sample has size 1 and T does not, the output takes
    T's size (torch's broadcasting), as Add/Multiply do. No MACs (torch counts no flops for an elementwise product).
    """

    type_name = "LearnableTensor"
    summary = "x * T or x + T with a learned tensor T of a given shape, broadcast as PyTorch (layer scale, embeddings)"
    arguments = {
        "shape": Arg(tensor_shape, doc="the parameter's shape, as torch's (e.g. [C, 1, 1] for a per-channel scale)"),
        "op": Arg(choice("multiply", "add"), "multiply", "multiply: x * T (init 1); add: x + T (init 0)"),
        "param": Arg(parameter_name, "", "the state_dict key: '' = the layer's own name; 'gamma' = '<layer>.gamma'"),
    }
    mixed_dims = BroadcastMerge.mixed_dims      # only where x is broadcast up to T: a channels-last scale keeps fields

    def _sample_shape(self, rank: int) -> tuple[int, ...]:
        """T's shape against a sample of ``rank`` axes: the batch axis dropped, leading 1s added (torch's
        alignment from the last axis)."""
        shape = self.shape
        if len(shape) == rank + 1:
            if shape[0] != 1:
                raise LayerArgError(f"shape {shape_text(shape)} has one axis more than the {rank}-axis sample, which"
                                    f" stands on the batch axis and must be 1, got {shape[0]}", "shape")
            shape = shape[1:]
        elif len(shape) > rank + 1:
            raise LayerArgError(f"shape {shape_text(shape)} has more axes than the batch and the sample"
                                f" ({rank + 1}): torch would add batch axes", "shape")
        return (1,) * (rank - len(shape)) + tuple(shape)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        sample = tuple(in_shapes[0])
        aligned = self._sample_shape(len(sample))
        out = []
        for axis, (a, b) in enumerate(zip(sample, aligned)):
            if a != b and 1 not in (a, b):
                raise LayerArgError(f"shape {shape_text(self.shape)} does not broadcast against the input"
                                    f" {shape_text(sample)}: dim {axis + 1} (the batch is dim 0) is {a} there and"
                                    f" {b} here", "shape")
            out.append(max(a, b))
        return Inferred(tuple(out), {self.param: tuple(self.shape)})

    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """torch.ones for a scale, torch.zeros for an addend (a spec's ``init:`` sets another value)."""
        return {self.param: (np.ones if self.op == "multiply" else np.zeros)(self.shape)}

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> np.ndarray:
        """T laid out channels-last against (N, *S, C): the batch axis 1, the channels last."""
        aligned = np.asarray(params[self.param], dtype=dtype).reshape(self._sample_shape(len(in_shapes[0])))
        if aligned.ndim > 1:
            aligned = np.moveaxis(aligned, 0, -1)
        return np.ascontiguousarray(aligned[None])

    def forward(self, inputs: Sequence[np.ndarray], prepared: np.ndarray, counter: MacCounter) -> np.ndarray:
        return inputs[0] * prepared if self.op == "multiply" else inputs[0] + prepared

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: np.ndarray) -> list[np.ndarray]:
        """d(x*T)/dx = T, d(x+T)/dx = 1, summed over the axes the input was broadcast along."""
        scaled = grad * prepared if self.op == "multiply" else grad
        return [BroadcastMerge.unbroadcast(scaled, inputs[0].shape)]

    channelwise_support = True

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Each element its input element, the one position of a dim the input is broadcast along."""
        return BroadcastMerge.support_factors(self, in_shapes, out_shape)

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Each output depends on the input element it is computed from (a scale of 0 is still a dependency of
        the architecture); an axis the input was broadcast along gathers its marks."""
        return [(BroadcastMerge.unbroadcast(mask, inputs[0].shape) != 0).astype(mask.dtype)]

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel its own (an input of one channel broadcast: that one)."""
        return SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Per element; along an axis the input is broadcast along, every unit reads its one unit (Add's rule)."""
        return BroadcastMerge.receptive_field(self, fields, in_shapes, out_shape)


@register
class StochasticDepth(Elementwise):
    """torchvision.ops.StochasticDepth(p, mode): drops whole residual branches per sample ('row') or per batch
    ('batch') in training; at inference it returns its input. torchvision checks p and mode on every call, at
    inference too, with these rules (a NaN p passes its comparisons, as here)."""

    type_name = "StochasticDepth"
    summary = "identity at inference (torchvision.ops.StochasticDepth: drops residual branches in training)"
    arguments = {"p": Arg(real(0.0, 1.0), doc="drop probability, 0 to 1"),
                 "mode": Arg(choice("batch", "row"), doc="'row': per sample; 'batch': the whole batch")}

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        return "p = 0: it drops nothing, in training either" if self.p == 0 else None

    def apply(self, x: np.ndarray, prepared: Any) -> np.ndarray:
        return x

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """The identity's: each unit is its input unit."""
        return fields[0]

    def apply_backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray, prepared: Any) -> np.ndarray:
        return grad.copy()


__all__ = ["LearnableTensor", "StochasticDepth", "parameter_name", "tensor_shape"]
