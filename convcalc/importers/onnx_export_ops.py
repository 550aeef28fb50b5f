"""ONNX forms of the layers that are not windows: activations, merges, layout moves, normalisations, Linear.

Each emitter takes the `Builder` and the layer's `Site` and returns its output tensor; `emitter_for` finds a unit's
emitter by its type name, else by its class (``ConvNd`` serves Conv1d/2d/3d). Where ONNX's op differs from PyTorch's
rule (GroupNorm's opset-18 scale, LRN's window for an even size, Softplus's threshold) the layer is composed from
plain ops instead, so the numbers stay PyTorch's (convcalc's).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..layers.base import Layer
from ..layers.dense import batch_axis
from .onnx_build import Builder, Refused, Site
from .onnx_export_windows import WINDOW_EMITTERS

Emitter = Callable[[Builder, Site], str]


def _rank(site: Site) -> int:
    """The batched rank of the layer's (first) input."""
    return len(site.in_shapes[0]) + 1


def _axis(site: Site, dim: int) -> int:
    """ONNX's axis (batch included) of a dim that counts the batch as 0, checked as the unit checks it."""
    return batch_axis(dim, len(site.in_shapes[0]), "dim", site.layer.type_name) + 1


# --------------------------------------------------------------------------- activations

def _unary(op_type: str, **attrs) -> Emitter:
    return lambda b, s: b.op(op_type, s.inputs[:1], s.name, **attrs)


def _identity(b: Builder, s: Site) -> str:
    return b.op("Identity", s.inputs[:1], s.name)


def _leaky(b: Builder, s: Site) -> str:
    return b.op("LeakyRelu", s.inputs, s.name, alpha=float(s.layer.negative_slope))


def _elu(b: Builder, s: Site) -> str:
    return b.op("Elu", s.inputs, s.name, alpha=float(s.layer.alpha))


def _celu(b: Builder, s: Site) -> str:
    return b.op("Celu", s.inputs, s.name, alpha=float(s.layer.alpha))


def _selu(b: Builder, s: Site) -> str:
    from ..layers.activations import SELU_ALPHA, SELU_SCALE
    return b.op("Selu", s.inputs, s.name, alpha=SELU_ALPHA, gamma=SELU_SCALE)


def _relu6(b: Builder, s: Site) -> str:
    return b.clip(s.inputs[0], 0.0, 6.0, s.name)


def _hardtanh(b: Builder, s: Site) -> str:
    return b.clip(s.inputs[0], float(s.layer.min_val), float(s.layer.max_val), s.name)


def _hardsigmoid(b: Builder, s: Site) -> str:
    """PyTorch's relu6(x + 3)/6 is ONNX's HardSigmoid with alpha 1/6, beta 1/2."""
    return b.op("HardSigmoid", s.inputs, s.name, alpha=1.0 / 6.0, beta=0.5)


def _hardswish(b: Builder, s: Site) -> str:
    if b.opset >= 14:
        return b.op("HardSwish", s.inputs, s.name)
    return b.op("Mul", [s.inputs[0], _hardsigmoid(b, s)], s.name)


def _silu(b: Builder, s: Site) -> str:
    return b.op("Mul", [s.inputs[0], b.op("Sigmoid", s.inputs, s.name)], s.name)


def _gelu(b: Builder, s: Site) -> str:
    """x·Φ(x) = 0.5·x·(1 + erf(x/√2)); 'tanh': 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))); ONNX's Gelu from opset
    20."""
    x, name = s.inputs[0], s.name
    if b.opset >= 20:
        return b.op("Gelu", [x], name, approximate=s.layer.approximate)
    if s.layer.approximate == "tanh":
        cube = b.op("Mul", [b.op("Mul", [x, x], name), x], name)
        inner = b.op("Add", [x, b.op("Mul", [cube, b.const(0.044715, name)], name)], name)
        core = b.op("Tanh", [b.op("Mul", [inner, b.const(math.sqrt(2.0 / math.pi), name)], name)], name)
    else:
        core = b.op("Erf", [b.op("Div", [x, b.const(math.sqrt(2.0), name)], name)], name)
    # torch.onnx's order (opset < 20): x·(1 + erf(x/√2)), then ·0.5: the pattern importers recognise
    return b.op("Mul", [b.op("Mul", [x, b.op("Add", [core, b.const(1.0, name)], name)], name), b.const(0.5, name)],
                name)


def _softplus_core(b: Builder, x: str, name: str) -> str:
    return b.op("Softplus", [x], name)


def _softplus(b: Builder, s: Site) -> str:
    """x where beta·x > threshold, else log(1 + exp(beta·x))/beta (ONNX's Softplus has no threshold)."""
    x, name, beta = s.inputs[0], s.name, float(s.layer.beta)
    scaled = b.op("Mul", [x, b.const(beta, name)], name)
    smooth = b.op("Div", [_softplus_core(b, scaled, name), b.const(beta, name)], name)
    above = b.op("Greater", [scaled, b.const(float(s.layer.threshold), name)], name)
    return b.op("Where", [above, x, smooth], name)


def _mish(b: Builder, s: Site) -> str:
    if b.opset >= 18:
        return b.op("Mish", s.inputs, s.name)
    soft = _softplus_core(b, s.inputs[0], s.name)
    return b.op("Mul", [s.inputs[0], b.op("Tanh", [soft], s.name)], s.name)


def _threshold(b: Builder, s: Site) -> str:
    below = b.op("LessOrEqual", [s.inputs[0], b.const(float(s.layer.threshold), s.name)], s.name)
    return b.op("Where", [below, b.const(float(s.layer.value), s.name), s.inputs[0]], s.name)


def _softmax(op_type: str, negate: bool = False) -> Emitter:
    def emit(b: Builder, s: Site) -> str:
        x = b.op("Neg", s.inputs, s.name) if negate else s.inputs[0]
        return b.op(op_type, [x], s.name, axis=_axis(s, s.layer.dim))
    return emit


def _glu(b: Builder, s: Site) -> str:
    axis = batch_axis(s.layer.dim, len(s.in_shapes[0]), "dim", "GLU")
    half = s.in_shapes[0][axis] // 2
    first = b.slice(s.inputs[0], axis + 1, 0, half, s.name)
    second = b.slice(s.inputs[0], axis + 1, half, 2 * half, s.name)
    return b.op("Mul", [first, b.op("Sigmoid", [second], s.name)], s.name)


def _prelu(b: Builder, s: Site) -> str:
    slope = b.channel_vector(s.params["weight"], _rank(s), s.name)
    return b.op("PRelu", [s.inputs[0], slope], s.name)


# --------------------------------------------------------------------------- merges and learned tensors

def _add(b: Builder, s: Site) -> str:
    return b.op("Add" if len(s.inputs) == 2 else "Sum", s.inputs, s.name)


def _multiply(b: Builder, s: Site) -> str:
    out = s.inputs[0]
    for other in s.inputs[1:]:
        out = b.op("Mul", [out, other], s.name)
    return out


def _concat(b: Builder, s: Site) -> str:
    return b.op("Concat", s.inputs, s.name, axis=_axis(s, s.layer.dim))


def _learnable(b: Builder, s: Site) -> str:
    tensor = next(iter(s.params.values()))
    return b.op("Mul" if s.layer.op == "multiply" else "Add", [s.inputs[0], tensor], s.name)


def _linear(b: Builder, s: Site) -> str:
    """Gemm for a vector input; MatMul with the transposed weight (and Add) on the last axis of a longer one."""
    weight, bias = s.params["weight"], s.params.get("bias")
    if len(s.in_shapes[0]) == 1:
        return b.op("Gemm", [s.inputs[0], weight] + ([bias] if bias else []), s.name, transB=1)
    out = b.op("MatMul", [s.inputs[0], b.op("Transpose", [weight], s.name, perm=[1, 0])], s.name)
    return b.op("Add", [out, bias], s.name) if bias else out


# --------------------------------------------------------------------------- layout

def _reshape_to_output(b: Builder, s: Site) -> str:
    return b.reshape(s.inputs[0], s.out_shape, s.name)


def _permute(b: Builder, s: Site) -> str:
    return b.op("Transpose", s.inputs, s.name, perm=list(s.layer.dims))


def _slices(b: Builder, s: Site) -> str:
    axis, start, length = s.layer.span(tuple(s.in_shapes[0]))
    return b.slice(s.inputs[0], axis + 1, start, start + length, s.name)


def _channel_shuffle(b: Builder, s: Site) -> str:
    channels, spatial, groups = s.in_shapes[0][0], s.in_shapes[0][1:], s.layer.groups
    split = b.reshape(s.inputs[0], (groups, channels // groups, *spatial), s.name)
    moved = b.op("Transpose", [split], s.name, perm=[0, 2, 1, *range(3, 3 + len(spatial))])
    return b.reshape(moved, s.out_shape, s.name)


def _pixel_shuffle(b: Builder, s: Site) -> str:
    """torch.pixel_shuffle on the last two axes: (C·r², H, W) -> (C, H·r, W·r), channel c·r² + i·r + j to (c, i, j)."""
    *lead, height, width = s.in_shapes[0]
    r = s.layer.upscale_factor
    channels = lead[-1] // (r * r)
    front = lead[:-1]
    k = len(front)
    x = b.reshape(s.inputs[0], (*front, channels, r, r, height, width), s.name)
    base = 1 + k                      # the axis of C (batch first)
    perm = [*range(base + 1), base + 3, base + 1, base + 4, base + 2]
    x = b.op("Transpose", [x], s.name, perm=perm)
    return b.reshape(x, s.out_shape, s.name)


def _pixel_unshuffle(b: Builder, s: Site) -> str:
    """The inverse: (C, H·r, W·r) -> (C·r², H, W), (c, i, j) of each r×r block to channel c·r² + i·r + j."""
    *lead, height, width = s.in_shapes[0]
    r = s.layer.downscale_factor
    front, channels = lead[:-1], lead[-1]
    base = 1 + len(front)
    x = b.reshape(s.inputs[0], (*front, channels, height // r, r, width // r, r), s.name)
    perm = [*range(base + 1), base + 2, base + 4, base + 1, base + 3]
    x = b.op("Transpose", [x], s.name, perm=perm)
    return b.reshape(x, s.out_shape, s.name)


def _maxout(b: Builder, s: Site) -> str:
    channels, spatial, k = s.in_shapes[0][0], s.in_shapes[0][1:], s.layer.pool_size
    split = b.reshape(s.inputs[0], (channels // k, k, *spatial), s.name)
    return b.reduce("ReduceMax", split, [2], s.name, keepdims=False)


def _channel_window(b: Builder, s: Site) -> str:
    """k channels s apart as a pool over the channel axis: [N, 1, C, positions] through MaxPool/AveragePool."""
    k, stride = s.layer.window()
    shape = s.in_shapes[0]
    positions = 1
    for size in shape[1:]:
        positions *= size
    flat = b.reshape(s.inputs[0], (1, shape[0], positions), s.name)
    op_type = "MaxPool" if s.layer.reduce == "max" else "AveragePool"
    pooled = b.op(op_type, [flat], s.name, kernel_shape=[k, 1], strides=[stride, 1])
    return b.reshape(pooled, s.out_shape, s.name)


# --------------------------------------------------------------------------- normalisations

def _standardize(b: Builder, x: str, axes: list[int], eps: float, name: str) -> str:
    """(x − mean)/√(var + eps) over ``axes`` (the biased variance, as torch)."""
    mean = b.reduce("ReduceMean", x, axes, name)
    centred = b.op("Sub", [x, mean], name)
    variance = b.reduce("ReduceMean", b.op("Mul", [centred, centred], name), axes, name)
    return b.op("Div", [centred, b.op("Sqrt", [b.op("Add", [variance, b.const(eps, name)], name)], name)], name)


def _affine(b: Builder, x: str, s: Site, per_channel: bool) -> str:
    for key, op_type in (("weight", "Mul"), ("bias", "Add")):
        if key in s.params:
            tensor = b.channel_vector(s.params[key], _rank(s), s.name) if per_channel else s.params[key]
            x = b.op(op_type, [x, tensor], s.name)
    return x


def _batch_norm_running(b: Builder, s: Site) -> str:
    """BatchNormalization with the running statistics (the missing weight/bias as constant ones/zeros)."""
    channels = s.in_shapes[0][0]
    scale = s.params.get("weight") or b.const([1.0] * channels, s.name)
    shift = s.params.get("bias") or b.const([0.0] * channels, s.name)
    return b.op("BatchNormalization", [s.inputs[0], scale, shift, s.params["running_mean"], s.params["running_var"]],
                s.name, epsilon=float(s.layer.eps))


def _batch_norm(b: Builder, s: Site) -> str:
    if s.layer.track_running_stats:
        return _batch_norm_running(b, s)
    axes = [0, *range(2, _rank(s))]                      # batch statistics: everything but the channels
    return _affine(b, _standardize(b, s.inputs[0], axes, float(s.layer.eps), s.name), s, True)


def _instance_norm(b: Builder, s: Site) -> str:
    if s.layer.track_running_stats:
        return _batch_norm_running(b, s)
    axes = list(range(2, _rank(s)))
    return _affine(b, _standardize(b, s.inputs[0], axes, float(s.layer.eps), s.name), s, True)


def _normalized(b: Builder, s: Site, x: str, count: int, shape: tuple[int, ...]) -> str:
    """Layer norm over the last ``count`` axes of ``x`` (batchless ``shape``): ONNX's LayerNormalization from opset
    17 (the missing weight/bias as constant ones/zeros), composed before."""
    rank = len(shape) + 1
    if b.opset < 17:
        return _affine(b, _standardize(b, x, list(range(rank - count, rank)), float(s.layer.eps), s.name), s, False)
    normalized = list(shape[len(shape) - count:])
    scale = s.params.get("weight") or b.const(np.ones(normalized), s.name)
    inputs = [x, scale] + ([s.params["bias"]] if "bias" in s.params else [])
    return b.op("LayerNormalization", inputs, s.name, axis=-count, epsilon=float(s.layer.eps))


def _layer_norm(b: Builder, s: Site) -> str:
    return _normalized(b, s, s.inputs[0], len(s.layer.normalized_shape), tuple(s.in_shapes[0]))


def _layer_norm_2d(b: Builder, s: Site) -> str:
    """torchvision's: permute to [N, H, W, C], layer norm over the trailing axes, permute back."""
    rank, shape = _rank(s), tuple(s.in_shapes[0])
    x = b.op("Transpose", s.inputs, s.name, perm=[0, *range(2, rank), 1])
    x = _normalized(b, s, x, s.layer.count(), (*shape[1:], shape[0]))
    return b.op("Transpose", [x], s.name, perm=[0, rank - 1, *range(1, rank - 1)])


def _group_norm(b: Builder, s: Site) -> str:
    """Composed (ONNX's GroupNormalization had per-group scales until opset 21): statistics over [N, G, -1]."""
    groups = s.layer.num_groups
    grouped = b.reshape(s.inputs[0], (groups, -1), s.name)
    x = b.reshape(_standardize(b, grouped, [2], float(s.layer.eps), s.name), s.in_shapes[0], s.name)
    return _affine(b, x, s, True)


def _local_response_norm(b: Builder, s: Site) -> str:
    """PyTorch's F.local_response_norm: x / (k + alpha·avg of x² over channels c − size//2 .. c + (size−1)//2)^beta,
    the average a zero-padded AveragePool (ONNX's LRN centres an even window the other way)."""
    layer, shape, name = s.layer, s.in_shapes[0], s.name
    positions = 1
    for size in shape[1:]:
        positions *= size
    square = b.op("Mul", [s.inputs[0], s.inputs[0]], name)
    flat = b.reshape(square, (1, shape[0], positions), name)
    padded = b.pad(flat, [(layer.size // 2, (layer.size - 1) // 2), (0, 0)], name)
    mean = b.op("AveragePool", [padded], name, kernel_shape=[layer.size, 1])
    mean = b.reshape(mean, shape, name)
    base = b.op("Add", [b.op("Mul", [mean, b.const(float(layer.alpha), name)], name), b.const(float(layer.k), name)],
                name)
    return b.op("Div", [s.inputs[0], b.op("Pow", [base, b.const(float(layer.beta), name)], name)], name)


# --------------------------------------------------------------------------- the table

EMITTERS: dict[str, Emitter] = {
    "ReLU": _unary("Relu"), "Sigmoid": _unary("Sigmoid"), "Tanh": _unary("Tanh"), "Abs": _unary("Abs"),
    "Sqrt": _unary("Sqrt"), "Identity": _identity, "Dropout": _identity, "Dropout1d": _identity,
    "Dropout2d": _identity, "Dropout3d": _identity, "StochasticDepth": _identity,
    "LeakyReLU": _leaky, "ELU": _elu, "CELU": _celu, "SELU": _selu, "ReLU6": _relu6, "Hardtanh": _hardtanh,
    "Hardsigmoid": _hardsigmoid, "Hardswish": _hardswish, "SiLU": _silu, "GELU": _gelu, "Softplus": _softplus,
    "Mish": _mish, "Threshold": _threshold, "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"),
    "Softmin": _softmax("Softmax", negate=True), "GLU": _glu, "PReLU": _prelu,
    "Add": _add, "Multiply": _multiply, "Concat": _concat, "LearnableTensor": _learnable, "Linear": _linear,
    "Flatten": _reshape_to_output, "Reshapes": _reshape_to_output, "Permute": _permute, "Slices": _slices,
    "ChannelShuffle": _channel_shuffle, "PixelShuffle": _pixel_shuffle, "PixelUnshuffle": _pixel_unshuffle,
    "Maxout": _maxout, "ChannelWindowPool": _channel_window,
    "BatchNormNd": _batch_norm, "InstanceNormNd": _instance_norm, "LayerNorm2d": _layer_norm_2d,
    "LayerNorm": _layer_norm, "GroupNorm": _group_norm, "LocalResponseNorm": _local_response_norm,
    **WINDOW_EMITTERS,
}


def emitter_for(layer: Layer) -> Emitter:
    """The emitter of a unit: by its type name, else by the nearest class of its own that has one."""
    found = EMITTERS.get(layer.type_name)
    if found is not None:
        return found
    for cls in type(layer).__mro__:
        if cls.__name__ in EMITTERS:
            return EMITTERS[cls.__name__]
    raise Refused("convcalc has no ONNX form for this layer type")


__all__ = ["EMITTERS", "emitter_for"]
