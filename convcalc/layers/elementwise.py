"""Activations, normalisation, dropout and identity: layers that keep the shape."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter, channel_affine, hardsigmoid, hardswish, relu, relu6, sigmoid, silu
from ..algebra import Field, Reads
from ..algebra.shapes import prod
from .args import Arg, boolean, choice, integer, optional, real
from .base import Elementwise, Inferred, Layer, Shape, shape_text, storage_axis
from .channels import SAME, ChannelReads, along_channels
from .registry import lookup, register
from .dense import batch_axis
from .factors import EVERY, Factors

_INPLACE = {"inplace": Arg(boolean, False, "accepted for PyTorch compatibility; no effect on the numbers")}
DROPOUT_P = "the probability of zeroing a value in training (at inference, as here, the identity)"


def _activation(type_name: str, summary: str, apply: Callable[[Any, np.ndarray], np.ndarray],
                overwrite: Callable[[Any, np.ndarray], np.ndarray] | None = None,
                backward: Callable[[Any, np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
                **arguments: Arg) -> type[Layer]:
    """Register an activation: ``apply(layer, x)``, optionally ``overwrite(layer, x)`` (in place) and
    ``backward(layer, x, y, grad)`` -> dL/dx (PyTorch's derivative formula)."""
    namespace = {"type_name": type_name, "summary": summary, "arguments": arguments,
                 "apply": lambda self, x, prepared: apply(self, x)}
    if backward is not None:
        namespace["apply_backward"] = lambda self, x, y, grad, prepared: backward(self, x, y, grad)
    if overwrite is not None:   # the same function writing into x (when the executor allows it)
        namespace["apply_inplace"] = lambda self, x, prepared: overwrite(self, x)
    return register(type(type_name, (Elementwise,), namespace))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1/(1+exp(-x)), written so that no exp overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _erf(x):
    """math.erf over every value of ``x`` (an object array: exact, as torch's default GELU)."""
    return np.frompyfunc(math.erf, 1, 1)(x)


def _gelu(layer: Any, x: np.ndarray) -> np.ndarray:
    if layer.approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(x.dtype))   # exact, as torch's default


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


# ---- derivatives: PyTorch's backward formulas (tools/autograd/derivatives.yaml and the ATen kernels they call),
# with their conventions at the kinks (the subgradient torch picks) and for NaN (which fails every comparison)

def _gelu_backward(layer: Any, x: np.ndarray, y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """GeluBackward: Φ(x) + x·φ(x); for 'tanh', d/dx of 0.5·x·(1 + tanh(β(x + κx³)))."""
    if layer.approximate == "tanh":
        beta, kappa = math.sqrt(2.0 / math.pi), 0.044715
        t = np.tanh(beta * (x + kappa * x ** 3))
        return grad * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * beta * (1.0 + 3.0 * kappa * x * x))
    cdf = 0.5 * (1.0 + _erf(x * math.sqrt(0.5)).astype(x.dtype))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return grad * (cdf + x * pdf)


def _silu_backward(layer: Any, x: np.ndarray, y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """silu_backward: σ(x)·(1 + x·(1 − σ(x)))."""
    sigmoid = _sigmoid(x)
    return grad * sigmoid * (1.0 + x * (1.0 - sigmoid))


def _zero(grad: np.ndarray) -> np.ndarray:
    return np.zeros((), dtype=grad.dtype)


_activation("ReLU", "max(0, x)", lambda layer, x: relu(x), lambda layer, x: relu(x, out=x),
            lambda layer, x, y, grad: np.where(y <= 0, _zero(grad), grad),          # threshold_backward(y)
            **_INPLACE)
_activation("ReLU6", "min(max(0, x), 6)", lambda layer, x: relu6(x), lambda layer, x: relu6(x, out=x),
            lambda layer, x, y, grad: np.where((x <= 0) | (x >= 6), _zero(grad), grad),   # hardtanh_backward
            **_INPLACE)
_activation("LeakyReLU", "x if x > 0 else negative_slope·x",
            lambda layer, x: np.where(x > 0, x, x * x.dtype.type(layer.negative_slope)), None,
            lambda layer, x, y, grad: np.where(x > 0, grad, grad * grad.dtype.type(layer.negative_slope)),
            negative_slope=Arg(real(), 0.01, "the slope for negative inputs"), **_INPLACE)
_activation("ELU", "x if x > 0 else alpha·(exp(x) − 1)",
            lambda layer, x: np.where(x > 0, x, x.dtype.type(layer.alpha) * np.expm1(np.minimum(x, 0))), None,
            lambda layer, x, y, grad: np.where(x <= 0, grad * grad.dtype.type(layer.alpha) * np.exp(np.minimum(x, 0)),
                                               grad),
            alpha=Arg(real(), 1.0, "the value negative inputs saturate to is −alpha"), **_INPLACE)
# the exact GELU runs math.erf over an object array: a Python float and a pointer per value, whatever the dtype
# (the executor's memory estimate reads this, `convcalc.execution.memory.generic_use`)
_activation("GELU", "x·Φ(x)", _gelu, None, _gelu_backward,
            approximate=Arg(choice("none", "tanh"), "none", "none: the exact x·Φ(x); tanh: the tanh approximation"
                            )).temporary_bytes_per_value = 48
_activation("SiLU", "x·σ(x) (swish)", lambda layer, x: silu(x), lambda layer, x: silu(x, out=x), _silu_backward,
            **_INPLACE)
_activation("Hardswish", "x·relu6(x + 3)/6", lambda layer, x: hardswish(x), lambda layer, x: hardswish(x, out=x),
            lambda layer, x, y, grad: np.where(x <= -3, _zero(grad), np.where(x < 3, grad * (x / 3 + 0.5), grad)),
            **_INPLACE)
# hardsigmoid_backward multiplies by 1/6 rounded to float32 (ATen's constant is 1.0f / 6.0f), in every dtype
_activation("Hardsigmoid", "relu6(x + 3)/6", lambda layer, x: hardsigmoid(x), lambda layer, x: hardsigmoid(x, out=x),
            lambda layer, x, y, grad: np.where((x > -3) & (x < 3), grad * np.float32(1.0 / 6.0).astype(grad.dtype),
                                               _zero(grad)),
            **_INPLACE)
_activation("Sigmoid", "1/(1 + exp(−x))", lambda layer, x: sigmoid(x), lambda layer, x: sigmoid(x, out=x),
            lambda layer, x, y, grad: grad * (1.0 - y) * y)
_activation("Tanh", "tanh(x)", lambda layer, x: np.tanh(x), None, lambda layer, x, y, grad: grad * (1.0 - y * y))
_activation("Identity", "y = x", lambda layer, x: x, None, lambda layer, x, y, grad: grad.copy())
_activation("Abs", "|x| (torch.abs)", lambda layer, x: np.abs(x), None,   # grad·sgn(x), sgn(0) = sgn(NaN) = 0
            lambda layer, x, y, grad: grad * ((x > 0).astype(grad.dtype) - (x < 0).astype(grad.dtype)))
_activation("Sqrt", "√x (torch.sqrt; NaN below 0)", lambda layer, x: np.sqrt(x), None,
            lambda layer, x, y, grad: grad / (2.0 * y))
for _dims in ("", "2d", "3d"):
    # Dropout2d/3d only warn about an unexpected rank; Dropout1d refuses one (below).
    _activation(f"Dropout{_dims}", "identity at inference (torch.nn.Dropout" + _dims + ")", lambda layer, x: x,
                None, lambda layer, x, y, grad: grad.copy(), p=Arg(real(0.0, 1.0), 0.5, DROPOUT_P), **_INPLACE)


# ---- no-ops (`Layer.is_noop`, read by `convcalc lint`)
def _never_drops(layer: Layer, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
    """Dropout's `Layer.is_noop`: with p = 0 it returns its input in training too (at inference it always does)."""
    return "p = 0: it drops nothing, in training either" if layer.p == 0 else None


lookup("Identity").noop_by_design = True     # a placeholder by design: lint flags it only in a chain of no-ops
lookup("Identity").is_noop = lambda layer, in_shapes, out_shape: "Identity returns its input"
for _dims in ("", "2d", "3d"):
    lookup(f"Dropout{_dims}").is_noop = _never_drops


@register
class Dropout1d(Elementwise):
    type_name = "Dropout1d"
    summary = "identity at inference (torch.nn.Dropout1d); needs a [C, L] input"
    arguments = {"p": Arg(real(0.0, 1.0), 0.5, DROPOUT_P), **_INPLACE}
    is_noop = _never_drops

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        # F.dropout1d raises for anything but a 2-D or 3-D tensor, even at inference: batched
        # [N, C, L], or [N, C], which it reads as an unbatched [C, L].
        self.expect_rank(in_shapes[0], (1, 2), "[C, L] (or [C])")
        return Inferred(tuple(in_shapes[0]))

    def apply(self, x: np.ndarray, prepared: Any) -> np.ndarray:
        return x

    def apply_backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray, prepared: Any) -> np.ndarray:
        return grad.copy()


@register
class Softmax(Elementwise):
    type_name = "Softmax"
    summary = "exp(x)/Σexp(x) along dim (dims count the batch as 0; default 1, the channels)"
    arguments = {"dim": Arg(integer(), 1, "the axis normalised over (the batch is dim 0; 1: the channels)")}

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name)
        return Inferred(tuple(in_shapes[0]))

    def apply(self, x: np.ndarray, prepared: Any) -> np.ndarray:
        rank = x.ndim - 1
        axis = storage_axis(batch_axis(self.dim, rank, "dim", self.type_name), rank)
        shifted = np.exp(x - x.max(axis=axis, keepdims=True))
        return shifted / shifted.sum(axis=axis, keepdims=True)

    def apply_backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray, prepared: Any) -> np.ndarray:
        """_softmax_backward_data: y·(g − Σ g·y) along dim."""
        rank = x.ndim - 1
        axis = storage_axis(batch_axis(self.dim, rank, "dim", self.type_name), rank)
        return y * (grad - (grad * y).sum(axis=axis, keepdims=True))

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Every position along ``dim``, the same along the others."""
        axis = batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name)
        return [Factors(tuple(EVERY if index == axis else None for index in range(len(in_shapes[0]))))]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Each output depends on every input along ``dim`` (the VJP can cancel: over the channels of a constant
        map it is 0): a mark spreads along that axis."""
        rank = mask.ndim - 1
        axis = storage_axis(batch_axis(self.dim, rank, "dim", self.type_name), rank)
        return [np.broadcast_to(mask.max(axis=axis, keepdims=True), mask.shape).copy()]

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        return (batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name),)

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Along the channels every channel reads them all; along another axis each channel its own."""
        return along_channels(batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name), None)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Along a spatial ``dim`` every unit reads every position of that axis: the union of the n windows
        there, the same for every unit (a whole axis, stride 0). Along the channels: elementwise."""
        field = fields[0]
        axis = batch_axis(self.dim, len(in_shapes[0]), "dim", self.type_name) - 1
        if axis < 0 or field.whole or axis >= len(field.axes):
            return field
        spatial = in_shapes[0][1:]
        reads = [Reads.everything(n) if index == axis else Reads.identity() for index, n in enumerate(spatial)]
        return field.through(reads, spatial)


@register
class PReLU(Elementwise):
    type_name = "PReLU"
    summary = "x if x > 0 else a·x with a learned a (one, or one per channel)"
    arguments = {"num_parameters": Arg(integer(1), 1, "learned slopes: 1, or one per channel"),
                 "init": Arg(real(), 0.25, "the slopes' initial value")}

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = in_shapes[0]
        if self.num_parameters != 1 and self.num_parameters != shape[0]:
            raise LayerArgError(f"num_parameters must be 1 or the number of channels ({shape[0]}),"
                                f" got {self.num_parameters}", "num_parameters")
        return Inferred(tuple(shape), {"weight": (self.num_parameters,)})

    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"weight": np.full(inferred.params["weight"], self.init)}

    def apply(self, x: np.ndarray, prepared: Mapping[str, np.ndarray]) -> np.ndarray:
        weight = prepared["weight"]                       # one value, or one per channel (the last stored axis)
        return np.where(x >= 0, x, x * (weight[0] if weight.size == 1 else weight))

    def apply_backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray,
                       prepared: Mapping[str, np.ndarray]) -> np.ndarray:
        """_prelu_kernel_backward: grad where x > 0, else a·grad (at 0 and NaN too). The slope's own gradient
        is not an input's."""
        weight = prepared["weight"]
        return np.where(x > 0, grad, grad * (weight[0] if weight.size == 1 else weight))


class BatchNormNd(Layer):
    summary = "batch normalisation over channels; running statistics are buffers, not parameters"
    arguments = {
        "num_features": Arg(optional(integer(1)), None, "channels; inferred from the graph"),
        "eps": Arg(real(minimum=0.0), 1e-5),
        "momentum": Arg(optional(real()), 0.1, "null: a cumulative moving average"),
        "affine": Arg(boolean, True),
        "track_running_stats": Arg(boolean, True),
        "bias": Arg(boolean, True, "with affine: learn the shift too (torch 2.13 keyword)"),
    }
    ranks: tuple[int, ...] = ()
    layout = ""

    def validate(self) -> None:
        if not self.track_running_stats and self.eps == 0:
            # Without running statistics F.batch_norm normalises with the batch's own, even at
            # inference, and then requires eps > 0 ("batch_norm eps must be positive during training").
            raise LayerArgError("eps must be positive when track_running_stats is false (the layer then"
                                " normalises with batch statistics, even at inference), got 0.0", "eps")

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = in_shapes[0]
        self.expect_rank(shape, self.ranks, self.layout)
        channels = shape[0]
        # With neither affine weights nor running statistics, PyTorch never uses num_features.
        uses_num_features = self.affine or self.track_running_stats
        if self.num_features is not None and self.num_features != channels and uses_num_features:
            raise LayerArgError(f"num_features is {self.num_features} but the input has {channels} channels;"
                                f" input {shape_text(shape)}", "num_features")
        if not self.track_running_stats and prod(shape[1:]) == 1:
            raise LayerArgError(f"BatchNorm without running statistics normalises with the batch's own, which at"
                                f" batch 1 needs more than 1 value per channel; input {shape_text(shape)}"
                                " (PyTorch raises 'Expected more than 1 value per channel')", "track_running_stats")
        params = {}
        if self.affine:
            params["weight"] = (channels,)
            if self.bias:
                params["bias"] = (channels,)
        buffers = ({"running_mean": (channels,), "running_var": (channels,), "num_batches_tracked": ()}
                   if self.track_running_stats else {})
        return Inferred(tuple(shape), params, buffers)

    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        channels = inferred.out_shape[0]
        values = {name: (np.ones if name == "weight" else np.zeros)(channels)
                  for name in self.infer([inferred.out_shape]).params}
        if self.track_running_stats:
            values.update(running_mean=np.zeros(channels), running_var=np.ones(channels),
                          num_batches_tracked=np.zeros((), dtype=np.int64))
        return values

    def affine_of(self, params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """The inference map as y = x*scale + shift per channel (float64), or None when it uses batch statistics."""
        if not self.track_running_stats:
            return None
        scale = 1.0 / np.sqrt(np.asarray(params["running_var"], dtype=np.float64) + self.eps)
        shift = -np.asarray(params["running_mean"], dtype=np.float64) * scale
        if self.affine:
            weight = np.asarray(params["weight"], dtype=np.float64)
            scale, shift = scale * weight, shift * weight
            if "bias" in params:
                shift = shift + np.asarray(params["bias"], dtype=np.float64)
        return scale, shift

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        affine = self.affine_of(params)
        if affine is not None:
            return {"scale": affine[0].astype(dtype), "shift": affine[1].astype(dtype)}
        return {name: np.asarray(params[name], dtype=dtype) for name in ("weight", "bias") if name in params}

    def forward(self, inputs: Sequence[np.ndarray], prepared: Mapping[str, np.ndarray],
                counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        if "scale" in prepared:
            return channel_affine(x, prepared["scale"], prepared["shift"])   # x * scale + shift, in one pass
        axes = tuple(range(x.ndim - 1))                   # batch statistics over everything but the channels
        mean = x.mean(axis=axes)
        variance = x.var(axis=axes)
        y = (x - mean) / np.sqrt(variance + x.dtype.type(self.eps))
        if "weight" in prepared:
            y = y * prepared["weight"]
        if "bias" in prepared:
            y = y + prepared["bias"]
        return y

    def forward_then(self, inputs: Sequence[np.ndarray], prepared: Mapping[str, np.ndarray], counter: MacCounter,
                     then: Callable[[np.ndarray], None]) -> np.ndarray | None:
        """`forward` with ``then(block)`` applied in place to each block of the output as it is written (the
        executor's fusion of an activation that reads only this layer, `Network`); None (nothing run) with batch
        statistics."""
        if "scale" not in prepared:
            return None
        return channel_affine(inputs[0], prepared["scale"], prepared["shift"], then)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Running statistics: the per-channel scale. Batch statistics (no running ones), as
        native_batch_norm_backward: w·invstd·(g − mean(g) − x̂·mean(g·x̂)), means over all axes but the
        channels."""
        x = inputs[0]
        if "scale" in prepared:
            return [grad * prepared["scale"]]
        axes = tuple(range(x.ndim - 1))
        inverse_std = 1.0 / np.sqrt(x.var(axis=axes) + x.dtype.type(self.eps))
        normalised = (x - x.mean(axis=axes)) * inverse_std
        scaled = grad * prepared["weight"] if "weight" in prepared else grad
        centred = scaled - scaled.mean(axis=axes) - normalised * (scaled * normalised).mean(axis=axes)
        return [centred * inverse_std]

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        """Running statistics: none (per element). The batch's: every dim but the channels (dim 1, as torch's)."""
        return () if self.track_running_stats else tuple(range(1, len(in_shapes[0])))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel its own statistics and affine map."""
        return SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """With running statistics, per element. With the batch's own, every unit depends on every position of its
        channel (its mean and variance): whole."""
        if self.track_running_stats or len(in_shapes[0]) < 2:
            return fields[0]
        return fields[0].gathered()

    channelwise_support = True

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Per element; with batch statistics every position of the element's channel."""
        rank = len(in_shapes[0])
        spread = not self.track_running_stats and rank > 1
        return [Factors((None, *((EVERY if spread else None),) * (rank - 1)))]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """With running statistics, per element (a positive scale). With batch statistics every position of a
        channel enters its mean and variance: a mark spreads over the spatial axes (of its own sample: the walk
        measures one sample per batch row)."""
        if self.track_running_stats or mask.ndim <= 2:
            return [mask.copy()]
        axes = tuple(range(1, mask.ndim - 1))
        return [np.broadcast_to(mask.max(axis=axes, keepdims=True), mask.shape).copy()]


register(type("BatchNorm1d", (BatchNormNd,), {"type_name": "BatchNorm1d", "ranks": (1, 2), "layout": "[C] or [C, L]"}))
register(type("BatchNorm2d", (BatchNormNd,), {"type_name": "BatchNorm2d", "ranks": (3,), "layout": "[C, H, W]"}))
register(type("BatchNorm3d", (BatchNormNd,), {"type_name": "BatchNorm3d", "ranks": (4,), "layout": "[C, D, H, W]"}))
