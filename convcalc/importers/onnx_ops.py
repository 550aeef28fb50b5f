"""Translation rules of the windowed and spatial ONNX ops: Conv, ConvTranspose, the pools, MaxUnpool, Pad, Resize,
Upsample, DepthToSpace, SpaceToDepth and the normalisations; ONNX's attribute semantics (pool strides default 1,
count_include_pad default 0, SAME_UPPER/SAME_LOWER, LpPool over |x|^p) written as convcalc's arguments."""

from __future__ import annotations

import math

import numpy as np

from .onnx_translate import PoolIndices, Translator, padding_arg, per_axis, rule, spatial_rank


def _pairs(t: Translator, a: dict, n: int) -> list[tuple[int, int]]:
    pads = a.get("pads", [0] * (2 * n))
    if len(pads) != 2 * n:
        raise t.fail(f"pads {pads} do not have 2 values per spatial axis ({n})")
    return [(int(pads[i]), int(pads[i + n])) for i in range(n)]


def same_pairs(sizes, kernel, stride, dilation, upper: bool) -> list[tuple[int, int]]:
    """ONNX's SAME_UPPER/SAME_LOWER pads at these input sizes: total = max((⌈i/s⌉ − 1)·s + d(k−1) + 1 − i, 0), the
    odd one after (UPPER) or before (LOWER)."""
    pairs = []
    for i, k, s, d in zip(sizes, kernel, stride, dilation):
        total = max((math.ceil(i / s) - 1) * s + d * (k - 1) + 1 - i, 0)
        small, large = total // 2, total - total // 2
        pairs.append((small, large) if upper else (large, small))
    return pairs


def _geometry(t: Translator, node, a: dict, kernel: list[int], sizes, pool: bool):
    """(stride, dilation, pairs, auto_pad) of a conv or pool node."""
    n = len(kernel)
    stride = [int(s) for s in a.get("strides", [1] * n)]
    dilation = [int(d) for d in a.get("dilations", [1] * n)]
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pairs = _pairs(t, a, n)
    elif auto == "VALID":
        pairs = [(0, 0)] * n
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = same_pairs(sizes, kernel, stride, dilation, auto == "SAME_UPPER")
    else:
        raise t.fail(f"auto_pad '{auto}' is not one of ONNX's NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    return stride, dilation, pairs, auto


@rule("Conv")
def conv(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    weight = t.const(node, 1, "weight")
    n = weight.ndim - 2
    if not 1 <= n <= 3:
        raise t.fail(f"a weight of rank {weight.ndim}: convcalc's convs have 1-3 spatial axes")
    kernel = list(weight.shape[2:])
    if "kernel_shape" in a and list(a["kernel_shape"]) != kernel:
        raise t.fail(f"kernel_shape {a['kernel_shape']} differs from the weight's {kernel}")
    sizes = t.shape(node)[2:]
    stride, dilation, pairs, auto = _geometry(t, node, a, kernel, sizes, pool=False)
    groups = int(a.get("group", 1))
    bias = t.const(node, 2, "bias") if len(node.input) > 2 and node.input[2] else None
    args = {"out_channels": int(weight.shape[0]), "kernel_size": per_axis(kernel)}
    if any(s != 1 for s in stride):
        args["stride"] = per_axis(stride)
    padding = "tf_same" if auto == "SAME_UPPER" else padding_arg(pairs)
    if padding != 0:
        args["padding"] = padding
    if any(d != 1 for d in dilation):
        args["dilation"] = per_axis(dilation)
    if groups != 1:
        args["groups"] = groups
    weights = {"weight": weight}
    if bias is None:
        args["bias"] = False
    else:
        weights["bias"] = bias
    t.bind(node.output[0], t.emit(node, f"Conv{n}d", args, [x], weights, prefer_from=1))


@rule("ConvTranspose")
def conv_transpose(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    weight = t.const(node, 1, "weight")
    n = weight.ndim - 2
    if not 1 <= n <= 3:
        raise t.fail(f"a weight of rank {weight.ndim}: convcalc's transposed convs have 1-3 spatial axes")
    groups = int(a.get("group", 1))
    kernel = list(weight.shape[2:])
    sizes = t.shape(node)[2:]
    stride = [int(s) for s in a.get("strides", [1] * n)]
    dilation = [int(d) for d in a.get("dilations", [1] * n)]
    extra = [int(p) for p in a.get("output_padding", [0] * n)]
    full = [s * (i - 1) + d * (k - 1) + 1 + e for i, k, s, d, e in zip(sizes, kernel, stride, dilation, extra)]
    auto = a.get("auto_pad", "NOTSET")
    if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
        wanted = [int(v) for v in a["output_shape"][-n:]] if "output_shape" in a else [i * s for i, s in
                                                                                       zip(sizes, stride)]
        totals = [f - w for f, w in zip(full, wanted)]      # negative: longer than the full conv (at the end)
        upper = auto == "SAME_UPPER"
        pairs = [(tot // 2, tot - tot // 2) if upper else (tot - tot // 2, tot // 2) for tot in totals]
    elif auto == "VALID":
        pairs = [(0, 0)] * n
    else:
        pairs = _pairs(t, a, n)
    # torch crops p from both ends and adds output_padding at the end: take the largest symmetric p that fits,
    # an output_padding reaching ONNX's end, and crop the rest with a negative ZeroPad
    torch_pad, torch_extra, crops = [], [], []
    for (lo, hi), e, s, d in zip(pairs, extra, stride, dilation):
        p = max(min(lo, hi - e), 0)
        op = max(e - hi, 0) if p == 0 else 0
        if op >= max(s, d):
            raise t.fail(f"output_padding {extra} with pads {pairs}: convcalc (as torch) needs output_padding below"
                         " the stride or the dilation")
        torch_pad.append(p)
        torch_extra.append(op)
        crops.append((lo - p, (hi - e) - (p - op)))
    args = {"out_channels": int(weight.shape[1]) * groups, "kernel_size": per_axis(kernel)}
    if any(s != 1 for s in stride):
        args["stride"] = per_axis(stride)
    if any(torch_pad):
        args["padding"] = per_axis(torch_pad)
    if any(torch_extra):
        args["output_padding"] = per_axis(torch_extra)
    if groups != 1:
        args["groups"] = groups
    if any(d != 1 for d in dilation):
        args["dilation"] = per_axis(dilation)
    bias = t.const(node, 2, "bias") if len(node.input) > 2 and node.input[2] else None
    weights = {"weight": weight}
    if bias is None:
        args["bias"] = False
    else:
        weights["bias"] = bias
    ref = t.emit(node, f"ConvTranspose{n}d", args, [x], weights, prefer_from=1)
    if any(lo or hi for lo, hi in crops):
        ref = t.emit(node, f"ZeroPad{n}d", {"padding": torch_pad_list([(-lo, -hi) for lo, hi in crops])}, [ref])
    t.bind(node.output[0], ref)


def torch_pad_list(pairs: list[tuple[int, int]]) -> list[int]:
    """F.pad's list (last axis first: left, right, top, bottom, ...) of per-axis (before, after) pairs."""
    out = []
    for lo, hi in reversed(pairs):
        out += [int(lo), int(hi)]
    return out


def _pool(t: Translator, node, a: dict, kind: str) -> None:
    x = t.x(node)
    shape = t.shape(node)
    n = spatial_rank(t, node, shape)
    kernel = [int(k) for k in a["kernel_shape"]]
    stride, dilation, pairs, auto = _geometry(t, node, a, kernel, shape[2:], pool=True)
    ceil = int(a.get("ceil_mode", 0))
    args = {}
    if kind == "lp":
        args["norm_type"] = float(a.get("p", 2))
    args["kernel_size"] = per_axis(kernel)
    args["stride"] = per_axis(stride)
    include_pad = bool(a.get("count_include_pad", 0))
    symbolic = (auto == "SAME_UPPER" and not ceil and all(d == 1 for d in dilation)
                and (kind == "max" or (kind == "avg" and not include_pad)))
    padding = "tf_same" if symbolic else padding_arg(pairs)
    if isinstance(padding, (int, list)) and not symbolic and any(
            max(lo, hi) > k // 2 for (lo, hi), k in zip(pairs, kernel)):
        padding = [[lo, hi] for lo, hi in pairs]      # beyond torch's kernel_size // 2: ONNX's pairs
    if padding != 0:
        args["padding"] = padding
    if any(d != 1 for d in dilation):
        args["dilation"] = per_axis(dilation)
    if ceil:
        args["ceil_mode"] = True
    if kind == "avg" and padding != 0 and padding != "tf_same":
        args["count_include_pad"] = include_pad
    if kind == "lp":
        args["abs"] = True
    types = {"max": "MaxPool", "avg": "AvgPool", "lp": "LPPool"}
    indices = len(node.output) > 1 and node.output[1] and t.consumers(node.output[1])
    if indices:
        if int(a.get("storage_order", 0)):
            raise t.fail("storage_order 1 (column-major indices) feeding a MaxUnpool: convcalc's MaxUnpool reads"
                         " row-major argmax indices")
        args["return_indices"] = True
    ref = t.emit(node, f"{types[kind]}{n}d", args, [x])
    t.bind(node.output[0], ref)
    if indices:
        t.bind(node.output[1], PoolIndices(int(ref[1:])))


@rule("MaxPool")
def max_pool(t, node, a):
    _pool(t, node, a, "max")


@rule("AveragePool")
def average_pool(t, node, a):
    _pool(t, node, a, "avg")


@rule("LpPool")
def lp_pool(t, node, a):
    _pool(t, node, a, "lp")


@rule("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    n = spatial_rank(t, node, shape)
    if node.op_type == "GlobalLpPool":
        args = {"norm_type": float(a.get("p", 2)), "kernel_size": per_axis(shape[2:]), "abs": True}
        t.bind(node.output[0], t.emit(node, f"LPPool{n}d", args, [x]))
        return
    kind = "GlobalAvgPool" if node.op_type == "GlobalAveragePool" else "GlobalMaxPool"
    t.bind(node.output[0], t.emit(node, kind, {}, [x]))


@rule("MaxUnpool")
def max_unpool(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    indices = t.refs.get(node.input[1])
    if not isinstance(indices, PoolIndices):
        raise t.fail("its indices do not come from a MaxPool's Indices output; convcalc's MaxUnpool scatters to the"
                     " argmax positions of a named MaxPool")
    shape = t.shape(node)
    n = spatial_rank(t, node, shape)
    kernel = [int(k) for k in a["kernel_shape"]]
    stride = [int(s) for s in a.get("strides", [1] * n)]
    pairs = _pairs(t, a, n)
    args = {"kernel_size": per_axis(kernel), "stride": per_axis(stride)}
    wanted = t.const(node, 2, "output_shape")
    default = [(i - 1) * s - lo - hi + k for i, s, (lo, hi), k in zip(shape[2:], stride, pairs, kernel)]
    if wanted is not None:
        args["output_size"] = [int(v) for v in wanted[-n:]]
    elif any(lo != hi for lo, hi in pairs):
        args["output_size"] = default
    elif any(lo for lo, _ in pairs):
        args["padding"] = per_axis([lo for lo, _ in pairs])
    args["pool"] = indices
    t.bind(node.output[0], t.emit(node, f"MaxUnpool{n}d", args, [x]))
