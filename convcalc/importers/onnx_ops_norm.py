"""Translation rules of ONNX's normalisations and activations: BatchNormalization, InstanceNormalization,
LayerNormalization, GroupNormalization, LRN, and the elementwise activations with their ONNX attributes."""

from __future__ import annotations

import math

import numpy as np

from .onnx_patterns import mish, silu
from .onnx_translate import Translator, f32, rule

EPS = 1e-5


def _eps(a: dict, default: float = EPS) -> dict:
    """``{'eps': ...}`` unless it is convcalc's default (compared as float32, as ONNX stores it)."""
    eps = float(a.get("epsilon", default))
    return {} if np.float32(eps) == np.float32(EPS) else {"eps": f32(eps)}


def _norm_rank(t: Translator, shape) -> int:
    if len(shape) == 2:
        return 1
    if not 3 <= len(shape) <= 5:
        raise t.fail(f"an input of rank {len(shape)}: convcalc's normalisations take [N, C] and 1-3 spatial axes")
    return max(len(shape) - 2, 1)


@rule("BatchNormalization")
def batch_norm(t: Translator, node, a: dict) -> None:
    if int(a.get("training_mode", 0)) or (len(node.output) > 1 and any(node.output[1:])):
        raise t.fail("training_mode (batch statistics and running updates): convcalc imports inference graphs")
    x = t.x(node)
    n = _norm_rank(t, t.shape(node))
    scale, bias, mean, var = (t.const(node, i, what) for i, what in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    weights = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var}
    t.bind(node.output[0], t.emit(node, f"BatchNorm{n}d", _eps(a), [x], weights, prefer_from=1))


@rule("InstanceNormalization")
def instance_norm(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    n = _norm_rank(t, t.shape(node))
    weights = {"weight": t.const(node, 1, "scale"), "bias": t.const(node, 2, "bias")}
    args = {**_eps(a), "affine": True}
    t.bind(node.output[0], t.emit(node, f"InstanceNorm{n}d", args, [x], weights, prefer_from=1))


@rule("LayerNormalization")
def layer_norm(t: Translator, node, a: dict) -> None:
    if len(node.output) > 1 and any(node.output[1:]) and any(t.consumers(o) for o in node.output[1:] if o):
        raise t.fail("its Mean/InvStdDev outputs are used: convcalc's LayerNorm has one output")
    x = t.x(node)
    shape = t.shape(node)
    axis = int(a.get("axis", -1)) % len(shape)
    if axis == 0:
        raise t.fail("axis 0 normalises over the batch: convcalc's LayerNorm normalises within a sample")
    normalized = list(shape[axis:])
    weights = {"weight": np.broadcast_to(t.const(node, 1, "scale"), normalized).copy()}
    bias = t.const(node, 2, "bias")
    args = {"normalized_shape": normalized[0] if len(normalized) == 1 else normalized, **_eps(a)}
    if bias is None:
        args["bias"] = False
    else:
        weights["bias"] = np.broadcast_to(bias, normalized).copy()
    t.bind(node.output[0], t.emit(node, "LayerNorm", args, [x], weights, prefer_from=1))


@rule("GroupNormalization")
def group_norm(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    groups = int(a["num_groups"])
    channels = shape[1]
    scale, bias = t.const(node, 1, "scale").ravel(), t.const(node, 2, "bias").ravel()
    if scale.size == groups and groups != channels:     # opset 18: one scale and bias per group
        scale, bias = np.repeat(scale, channels // groups), np.repeat(bias, channels // groups)
    if scale.size != channels:
        raise t.fail(f"a scale of {scale.size} values for {channels} channels in {groups} groups")
    args = {"num_groups": groups, **_eps(a)}
    t.bind(node.output[0], t.emit(node, "GroupNorm", args, [x], {"weight": scale, "bias": bias}, prefer_from=1))


@rule("LRN")
def lrn(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    size = int(a["size"])
    if size % 2 == 0:
        raise t.fail(f"size {size}: ONNX's even window puts the extra channel after, torch's LocalResponseNorm"
                     " before (convcalc's); only odd sizes agree")
    args = {"size": size, "alpha": f32(a.get("alpha", 1e-4)), "beta": f32(a.get("beta", 0.75)),
            "k": f32(a.get("bias", 1.0))}
    t.bind(node.output[0], t.emit(node, "LocalResponseNorm", args, [x]))


_SIMPLE = {"Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Softplus": "Softplus", "Mish": "Mish",
           "HardSwish": "Hardswish", "Abs": "Abs", "Sqrt": "Sqrt"}
_SELU = (1.67326319217681884765625, 1.05070102214813232421875)


def _close(value: float, wanted: float) -> bool:
    return math.isclose(float(np.float32(value)), float(np.float32(wanted)), rel_tol=1e-6)


@rule(*_SIMPLE)
def simple(t: Translator, node, a: dict) -> None:
    if (node.op_type == "Sigmoid" and silu(t, node)) or (node.op_type == "Softplus" and mish(t, node)):
        return
    t.bind(node.output[0], t.emit(node, _SIMPLE[node.op_type], {}, [t.x(node)]))


@rule("Swish")
def swish(t: Translator, node, a: dict) -> None:
    if not _close(a.get("alpha", 1.0), 1.0):
        raise t.fail(f"alpha {a['alpha']:g}: convcalc's SiLU is x·sigmoid(x) (alpha 1)")
    t.bind(node.output[0], t.emit(node, "SiLU", {}, [t.x(node)]))


@rule("LeakyRelu", "Elu", "Celu", "Selu", "HardSigmoid", "Gelu", "ThresholdedRelu")
def parametrised(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    op = node.op_type
    if op == "LeakyRelu":
        kind, args = "LeakyReLU", {"negative_slope": f32(a.get("alpha", 0.01))}
    elif op in ("Elu", "Celu"):
        kind, args = op.upper(), {"alpha": f32(a.get("alpha", 1.0))}
    elif op == "Selu":
        if not (_close(a.get("alpha", _SELU[0]), _SELU[0]) and _close(a.get("gamma", _SELU[1]), _SELU[1])):
            raise t.fail(f"alpha {a.get('alpha')} and gamma {a.get('gamma')}: convcalc's SELU has the fixed"
                         f" constants {_SELU[0]:.6f} and {_SELU[1]:.6f}")
        kind, args = "SELU", {}
    elif op == "HardSigmoid":
        alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
        if not (_close(alpha, 1 / 6) and _close(beta, 0.5)):
            raise t.fail(f"alpha {alpha:g}, beta {beta:g}: convcalc's Hardsigmoid is relu6(x + 3)/6 (alpha 1/6,"
                         " beta 1/2)")
        kind, args = "Hardsigmoid", {}
    elif op == "Gelu":
        approximate = a.get("approximate", "none")
        kind, args = "GELU", ({} if approximate == "none" else {"approximate": approximate})
    else:
        alpha = f32(a.get("alpha", 1.0))
        kind, args = "Threshold", {"threshold": alpha, "value": 0.0}
    t.bind(node.output[0], t.emit(node, kind, args, [x]))


@rule("Softmax", "LogSoftmax")
def softmax(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    rank = len(shape)
    default = -1 if t.model.opset >= 13 else 1
    axis = int(a.get("axis", default)) % rank
    if t.model.opset < 13:      # over every axis from `axis` on: one axis where the others have length 1
        longer = [i for i in range(axis, rank) if shape[i] != 1]
        if len(longer) > 1:
            raise t.fail(f"axis {axis} before opset 13 normalises over every axis from {axis} on (a flattened 2-D"
                         f" softmax over {list(shape[axis:])}); convcalc's Softmax takes one dim")
        axis = longer[0] if longer else axis
    if axis == 0:
        raise t.fail("axis 0 is the batch: convcalc's Softmax normalises within a sample")
    t.bind(node.output[0], t.emit(node, "Softmax" if node.op_type == "Softmax" else "LogSoftmax", {"dim": axis}, [x]))


@rule("PRelu")
def prelu(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    slope = t.const(node, 1, "slope")
    channels = shape[1]
    if slope.size == 1:
        count = 1
    elif slope.size == channels and slope.ndim <= len(shape) - 1 and \
            slope.shape == (channels,) + (1,) * (len(shape) - 2) or (len(shape) == 2 and slope.size == channels):
        count = channels
    else:
        raise t.fail(f"a slope of shape {list(slope.shape)} on an input {list(shape)}: convcalc's PReLU has one"
                     " slope or one per channel")
    args = {} if count == 1 else {"num_parameters": count}
    t.bind(node.output[0], t.emit(node, "PReLU", args, [x], {"weight": slope.reshape(count)}, prefer_from=1))


@rule("Clip")
def clip(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    if t.model.opset >= 11:
        low, high = t.const(node, 1, "min"), t.const(node, 2, "max")
        low = None if low is None else f32(np.asarray(low).ravel()[0])
        high = None if high is None else f32(np.asarray(high).ravel()[0])
    else:
        low, high = a.get("min"), a.get("max")
    if low is not None and math.isinf(low) and low < 0:
        low = None
    if high is not None and math.isinf(high) and high > 0:
        high = None
    if low == 0 and high == 6:
        kind, args = "ReLU6", {}
    elif low == 0 and high is None:
        kind, args = "ReLU", {}
    elif low is None and high is None:
        t.bind(node.output[0], x)
        return
    elif high is None:
        kind, args = "Threshold", {"threshold": low, "value": low}
    else:
        kind, args = "Hardtanh", {"min_val": low if low is not None else -math.inf, "max_val": high}
    t.bind(node.output[0], t.emit(node, kind, args, [x]))
