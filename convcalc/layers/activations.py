"""The rest of torch.nn's elementwise family: Mish, Softplus, SELU, CELU, Hardtanh, Threshold (shape-keeping, each
value on its own), LogSoftmax and Softmin (along ``dim``, as Softmax) and GLU (halves ``dim``).

Forward and backward follow ATen's CPU kernels and ``tools/autograd/derivatives.yaml``: SELU and CELU are ATen's
``elu(x, alpha, scale, input_scale)`` (CELU with ``input_scale = 1/alpha``, so a negative alpha gives
``alpha·expm1(x/alpha)`` below 0, not the documented ``min(0, ...)``), Softplus returns x where ``beta·x >
threshold``, Hardtanh's and Threshold's gradients are 0 at the kinks (``hardtanh_backward``: ``x <= min_val or x >=
max_val``; ``threshold_backward``: ``x <= threshold``). Dims count the batch as dim 0 (dim 0 is refused: one sample
is analysed); LogSoftmax and Softmin default to dim 1, the channels, as Softmax does (torch's implicit dim would be
the batch axis for a [C, L] input).
"""

from __future__ import annotations

from typing import Any, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..algebra import Field, Reads
from .args import Arg, integer, real
from .base import Inferred, Layer, Shape, shape_text, storage_axis
from .channels import Block, ChannelReads, Source, along_channels
from .dense import batch_axis
from .elementwise import _INPLACE, Softmax, _activation, _sigmoid, _zero
from .registry import register

# torch.nn.SELU's constants (Klambauer et al. 2017), as ATen's selu passes them to elu
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _elu(x: np.ndarray, alpha: float, scale: float, input_scale: float) -> np.ndarray:
    """ATen's elu kernel: x·scale where x > 0, else alpha·scale·expm1(x·input_scale)."""
    kind = x.dtype.type
    negative = kind(alpha * scale) * np.expm1(np.minimum(x, 0) * kind(input_scale))
    return np.where(x > 0, x * kind(scale), negative)


def _elu_backward(x: np.ndarray, grad: np.ndarray, alpha: float, scale: float, input_scale: float) -> np.ndarray:
    """elu_backward (is_result false): grad·input_scale·alpha·scale·exp(x·input_scale) where x <= 0, else
    grad·scale."""
    kind = grad.dtype.type
    slope = kind(input_scale * alpha * scale) * np.exp(np.minimum(x, 0) * kind(input_scale))
    return np.where(x <= 0, grad * slope, grad * kind(scale))


def _celu_backward(layer: Any, x: np.ndarray, y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """derivatives.yaml: elu_backward(grad, alpha, 1, 1.0/alpha.toFloat(), is_result, ...), i.e. 1/alpha of the
    float32 alpha (the forward divides by the double); in place (celu_) from the result: grad/alpha·(y + alpha)
    where y <= 0."""
    input_scale = 1.0 / float(np.float32(layer.alpha))
    if not layer.inplace:
        return _elu_backward(x, grad, layer.alpha, 1.0, input_scale)
    kind = grad.dtype.type
    return np.where(y <= 0, grad * kind(input_scale) * (y + kind(layer.alpha)), grad)


def _softplus(layer: Any, x: np.ndarray) -> np.ndarray:
    """x where beta·x > threshold, else log1p(exp(beta·x))/beta (ATen's softplus kernel)."""
    kind = x.dtype.type
    scaled = x * kind(layer.beta)
    return np.where(scaled > layer.threshold, x, np.log1p(np.exp(scaled)) / kind(layer.beta))


def _softplus_backward(layer: Any, x: np.ndarray, y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """softplus_backward: grad where beta·x > threshold, else grad·z/(z + 1), z = exp(beta·x)."""
    scaled = x * grad.dtype.type(layer.beta)
    z = np.exp(scaled)
    return np.where(scaled > layer.threshold, grad, grad * z / (z + 1))


def _mish(layer: Any, x: np.ndarray) -> np.ndarray:
    """x·tanh(softplus(x)), softplus without a threshold (ATen's mish kernel)."""
    return x * np.tanh(np.log1p(np.exp(x)))


def _mish_backward(layer: Any, x: np.ndarray, y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """mish_backward: grad·(t + x·σ(x)·(1 − t²)), t = tanh(softplus(x))."""
    t = np.tanh(np.log1p(np.exp(x)))
    return grad * (t + x * _sigmoid(x) * (1 - t * t))


_activation("Mish", "x·tanh(softplus(x))", _mish, None, _mish_backward, **_INPLACE)
_activation("Softplus", "log(1 + exp(beta·x))/beta; x where beta·x > threshold", _softplus, None,
            _softplus_backward, beta=Arg(real(), 1.0, "the sharpness: log(1 + exp(beta·x))/beta"),
            threshold=Arg(real(), 20.0, "above this beta·x the output is x itself (numerical stability)"))
_activation("SELU", "scale·(x if x > 0 else alpha·(exp(x) − 1)), alpha ≈ 1.6733, scale ≈ 1.0507",
            lambda layer, x: _elu(x, SELU_ALPHA, SELU_SCALE, 1.0), None,
            lambda layer, x, y, grad: _elu_backward(x, grad, SELU_ALPHA, SELU_SCALE, 1.0), **_INPLACE)
_CELU = _activation("CELU", "x if x > 0 else alpha·(exp(x/alpha) − 1)",
                    lambda layer, x: _elu(x, layer.alpha, 1.0, 1.0 / layer.alpha), None,
                    lambda layer, x, y, grad: _celu_backward(layer, x, y, grad),
                    alpha=Arg(real(), 1.0, "the negative saturation value and scale of x (not 0)"), **_INPLACE)
_HARDTANH = _activation(
    "Hardtanh", "min(max(x, min_val), max_val)",
    lambda layer, x: np.clip(x, x.dtype.type(layer.min_val), x.dtype.type(layer.max_val)),
    lambda layer, x: np.clip(x, x.dtype.type(layer.min_val), x.dtype.type(layer.max_val), out=x),
    lambda layer, x, y, grad: np.where((x <= layer.min_val) | (x >= layer.max_val), _zero(grad), grad),
    min_val=Arg(real(), -1.0, "the lower clip"), max_val=Arg(real(), 1.0, "the upper clip"), **_INPLACE)
_activation("Threshold", "x if x > threshold else value",
            lambda layer, x: np.where(x <= layer.threshold, x.dtype.type(layer.value), x), None,
            lambda layer, x, y, grad: np.where(x <= layer.threshold, _zero(grad), grad),
            threshold=Arg(real(), doc="inputs at or below it are replaced"),
            value=Arg(real(), doc="what replaces them"), **_INPLACE)


def _celu_validate(layer: Layer) -> None:
    if layer.alpha == 0:            # torch.celu: "ZeroDivisionError: alpha cannot be 0 for CELU"
        raise LayerArgError("alpha cannot be 0 for CELU (it divides by alpha)", "alpha")


def _hardtanh_validate(layer: Layer) -> None:
    if layer.max_val <= layer.min_val:       # torch.nn.Hardtanh's own check
        raise LayerArgError(f"max_val ({layer.max_val}) must be greater than min_val ({layer.min_val})", "max_val")


_CELU.validate = _celu_validate
_HARDTANH.validate = _hardtanh_validate


def _along(layer: Layer, x: np.ndarray) -> int:
    """The stored axis of ``layer.dim`` in a channels-last array ``x`` (batch first)."""
    rank = x.ndim - 1
    return storage_axis(batch_axis(layer.dim, rank, "dim", layer.type_name), rank)


@register
class LogSoftmax(Softmax):
    type_name = "LogSoftmax"
    summary = "log(softmax(x)) along dim (dims count the batch as 0; default 1, the channels)"

    def apply(self, x: np.ndarray, prepared: Any) -> np.ndarray:
        axis = _along(self, x)
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def apply_backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray, prepared: Any) -> np.ndarray:
        """_log_softmax_backward_data: g − exp(y)·Σ g along dim."""
        return grad - np.exp(y) * grad.sum(axis=_along(self, x), keepdims=True)


@register
class Softmin(Softmax):
    type_name = "Softmin"
    summary = "softmax(−x) along dim (dims count the batch as 0; default 1, the channels)"

    def apply(self, x: np.ndarray, prepared: Any) -> np.ndarray:
        return super().apply(-x, prepared)

    def apply_backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray, prepared: Any) -> np.ndarray:
        """softmax's backward at −x, negated: −y·(g − Σ g·y) along dim."""
        return -super().apply_backward(-x, y, grad, prepared)


@register
class GLU(Layer):
    type_name = "GLU"
    summary = "a·σ(b), a and b the two halves of the input along dim (torch.nn.GLU; dims count the batch as 0)"
    arguments = {"dim": Arg(integer(), -1, "the axis halved (dims count the batch as 0)")}

    def axis(self, shape: Shape) -> int:
        """The batchless axis ``dim`` names (batch refused)."""
        return batch_axis(self.dim, len(shape), "dim", self.type_name)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = in_shapes[0]
        axis = self.axis(shape)
        if shape[axis] % 2:
            raise LayerArgError(f"GLU halves dim {self.dim}, which must then be even, but it is {shape[axis]} long;"
                                f" input {shape_text(shape)}", "dim")
        return Inferred((*shape[:axis], shape[axis] // 2, *shape[axis + 1:]))

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: Any) -> np.ndarray:
        first, second = np.split(inputs[0], 2, axis=_along(self, inputs[0]))
        return first * _sigmoid(second)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """glu_backward: g·σ(b) for the first half, g·a·σ(b)·(1 − σ(b)) for the second."""
        axis = _along(self, inputs[0])
        first, second = np.split(inputs[0], 2, axis=axis)
        gate = _sigmoid(second)
        return [np.concatenate([grad * gate, grad * first * gate * (1 - gate)], axis=axis)]

    channelwise_support = True

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Output unit j along dim reads input units j and j + n/2 (whatever the gate's slope)."""
        return [np.concatenate([mask, mask], axis=_along(self, inputs[0]))]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """Along the channels a mark the same on every channel stays so; along a spatial axis both halves get it."""
        shape = in_shapes[0]
        if len(shape) < 2:
            return None
        axis = self.axis(shape)
        if axis == 0:
            return [mask.copy()]
        return [np.concatenate([mask, mask], axis=axis)]

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        return (self.axis(in_shapes[0]),)

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Along the channels output channel c reads channels c and c + C/2; along another axis each its own."""
        half = in_shapes[0][0] // 2
        halves = (Block(0, half, (Source(0, 0, half), Source(0, half, 2 * half))),)
        return along_channels(self.axis(in_shapes[0]), halves)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Along a spatial ``dim`` unit j reads positions j and j + n/2 of that axis: a 2-tap window dilated by n/2
        (stride 1, no padding). Along the channels the spatial field is unchanged: out channel c reads in
        channels c and c + C/2 at its own position (as Softmax along the channels)."""
        field = fields[0]
        axis = self.axis(in_shapes[0]) - 1
        if axis < 0 or field.whole or axis >= len(field.axes):
            return field
        half = in_shapes[0][axis + 1] // 2
        reads = [Reads.window(2, 1, 0, half) if index == axis else Reads.identity()
                 for index in range(len(field.axes))]
        return field.through(reads, out_shape[1:])


__all__ = ["GLU", "LogSoftmax", "SELU_ALPHA", "SELU_SCALE", "Softmin"]
