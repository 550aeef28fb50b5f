"""ONNX forms of the window layers: convolutions (plain, transposed, locally connected, tiled, partial), pools
(max, min, average, power-average, adaptive, global, unpooling), padding and resampling.

Where ONNX's op follows PyTorch's rule it is used as it is (Conv, ConvTranspose, MaxPool, AveragePool without
ceil_mode, GlobalAveragePool, Pad). Elsewhere the layer is composed from ops whose result is exactly convcalc's rule:
an average whose divisor ONNX would count otherwise is a window sum (a depthwise Conv of ones) divided by the
unit's own divisor map; resampling along an axis is a Gather of the unit's own source indices (nearest) or a MatMul
by the unit's own interpolation matrix (linear, cubic, area); adaptive bins the same.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..algebra.shapes import prod
from .onnx_build import Builder, Refused, Site

Emitter = Callable[[Builder, Site], str]
PAD_MODES = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge",
             "circular": "wrap"}


def _sub(site: Site, layer, inputs: list[str] | None = None, params=None) -> Site:
    """The same site for another unit (a layer's inner pool or geometry conv)."""
    return Site(site.name, layer, inputs or site.inputs, site.in_shapes, site.out_shape,
                site.params if params is None else params)


# --------------------------------------------------------------------------- convolutions

def _conv_input(b: Builder, s: Site, x: str, layer) -> tuple[str, list[int]]:
    """The conv's input and ONNX pads: zero pads as Conv's own attribute, other modes and crops as a Pad first."""
    pairs = list(layer.pads(s.in_shapes[0][1:]))
    mode = getattr(layer, "padding_mode", "zeros")
    if mode == "zeros" and all(lo >= 0 and hi >= 0 for lo, hi in pairs):
        return x, [lo for lo, _ in pairs] + [hi for _, hi in pairs]
    return b.pad(x, pairs, s.name, PAD_MODES[mode]), [0] * (2 * len(pairs))


def conv(b: Builder, s: Site, x: str | None = None, weight: str | None = None, bias: str | None = "default") -> str:
    layer = s.layer
    x, pads = _conv_input(b, s, s.inputs[0] if x is None else x, layer)
    weight = weight or s.params["weight"]
    if getattr(layer, "flip_kernel", False):      # a true convolution: the kernel flipped in every spatial axis
        axes = list(range(2, 2 + layer.dims))
        end = np.iinfo(np.int64).min
        weight = b.op("Slice", [weight, b.ints([-1] * layer.dims, s.name), b.ints([end] * layer.dims, s.name),
                                b.ints(axes, s.name), b.ints([-1] * layer.dims, s.name)], s.name)
    bias = s.params.get("bias") if bias == "default" else bias
    return b.op("Conv", [x, weight] + ([bias] if bias else []), s.name, kernel_shape=list(layer.kernel_size),
                strides=list(layer.stride), dilations=list(layer.dilation), pads=pads, group=layer.groups)


def conv_transpose(b: Builder, s: Site) -> str:
    layer, spatial = s.layer, s.in_shapes[0][1:]
    bias = s.params.get("bias")
    pads = list(layer.padding) * 2
    return b.op("ConvTranspose", [s.inputs[0], s.params["weight"]] + ([bias] if bias else []), s.name,
                kernel_shape=list(layer.kernel_size), strides=list(layer.stride), dilations=list(layer.dilation),
                pads=pads, group=layer.groups, output_padding=list(layer.output_paddings(spatial)))


def _ones_conv(b: Builder, s: Site, x: str, channels: int, kernel, stride, dilation, pads, out) -> str:
    """Window sums per channel (a depthwise Conv of ones over the already padded ``x``), cut to ``out``."""
    weight = b.const(np.ones((channels, 1, *kernel)), s.name)
    summed = b.op("Conv", [x, weight], s.name, kernel_shape=list(kernel), strides=list(stride),
                  dilations=list(dilation), pads=[0] * (2 * len(kernel)), group=channels)
    padded = [size + lo + hi for size, (lo, hi) in zip(s.in_shapes[0][1:], pads)]
    made = [(p - d * (k - 1) - 1) // st + 1 for p, k, st, d in zip(padded, kernel, stride, dilation)]
    if list(made) != list(out):
        summed = b.op("Slice", [summed, b.ints([0] * len(out), s.name), b.ints(list(out), s.name),
                                b.ints(list(range(2, 2 + len(out))), s.name)], s.name)
    return summed


def locally_connected(b: Builder, s: Site) -> str:
    """Unfold by identity kernels (a depthwise Conv whose C·∏k outputs each copy one tap), then per position an
    Einsum with that position's own kernel: exact, as the executor's batched GEMM."""
    layer = s.layer
    channels, out = s.in_shapes[0][0], tuple(s.out_shape[1:])
    taps, positions, groups = prod(layer.kernel_size), prod(out), layer.groups
    identity = np.zeros((channels * taps, 1, *layer.kernel_size))
    for c in range(channels):
        for t, index in enumerate(np.ndindex(*layer.kernel_size)):
            identity[(c * taps + t, 0, *index)] = 1.0
    x, pads = _conv_input(b, s, s.inputs[0], layer.conv)
    patches = b.op("Conv", [x, b.const(identity, s.name)], s.name, kernel_shape=list(layer.kernel_size),
                   strides=list(layer.stride), dilations=list(layer.dilation), pads=pads, group=channels)
    patches = b.reshape(patches, (groups, channels // groups, taps, positions), s.name)      # (N, g, C/g, T, P)
    weight = b.op("Reshape", [s.params["weight"], b.ints([positions, groups, layer.out_channels // groups,
                                                          channels // groups, taps], s.name)], s.name)  # (P,g,O/g,C/g,T)
    y = b.op("Einsum", [patches, weight], s.name, equation="ngctp,pgoct->ngop")
    y = b.reshape(y, s.out_shape, s.name)
    if "bias" in s.params:                                                                 # (*out, O) -> (O, *out)
        bias = b.op("Transpose", [s.params["bias"]], s.name, perm=[len(out), *range(len(out))])
        y = b.op("Add", [y, bias], s.name)
    return y


def tiled(b: Builder, s: Site) -> str:
    """Every tile's kernel as one conv of t_h·t_w·O channels over all positions, then per position the output of
    the tile it belongs to (a 0/1 mask and a sum over the tiles: exact, adding zeros)."""
    layer = s.layer
    channels, out = s.in_shapes[0][0], tuple(s.out_shape[1:])
    tiles, groups, filters = prod(layer.tile_size), layer.groups, layer.out_channels
    kernel = list(layer.kernel_size)
    weight = b.op("Reshape", [s.params["weight"], b.ints([tiles, groups, filters // groups, channels // groups,
                                                          *kernel], s.name)], s.name)     # (T, g, O/g, C/g, *k)
    weight = b.op("Transpose", [weight], s.name, perm=[1, 0, 2, 3, 4, 5])
    weight = b.op("Reshape", [weight, b.ints([groups * tiles * filters // groups, channels // groups, *kernel],
                                             s.name)], s.name)
    y = conv(b, _sub(s, layer.conv), weight=weight, bias=None)                             # (N, g·T·O/g, *out)
    y = b.reshape(y, (groups, tiles, filters // groups, *out), s.name)
    mask = np.zeros((1, tiles, 1, *out))
    for t, offsets in enumerate(np.ndindex(*layer.tile_size)):
        mask[(0, t, 0, *(slice(a, None, period) for a, period in zip(offsets, layer.tile_size)))] = 1.0
    y = b.reduce("ReduceSum", b.op("Mul", [y, b.const(mask, s.name)], s.name), [2], s.name, keepdims=False)
    y = b.reshape(y, s.out_shape, s.name)
    if "bias" in s.params:
        y = b.op("Add", [y, b.channel_vector(s.params["bias"], 4, s.name)], s.name)
    return y


def _mask_counts(b: Builder, s: Site, mask: str | None, layer) -> str:
    """Σ of the mask over each window and all its channels, (N or 1, 1, OH, OW): a Conv of ones (zero padded)."""
    shape = s.in_shapes[0]
    if mask is None:
        summed = b.const(np.full((1, 1, *shape[1:]), float(shape[0] if layer.multi_channel else 1)), s.name)
    else:
        summed = b.reduce("ReduceSum", mask, [1], s.name)
    pairs = list(layer.conv.pads(shape[1:]))
    summed = b.pad(summed, pairs, s.name)
    return _ones_conv(b, s, summed, 1, layer.kernel_size, layer.stride, layer.dilation, pairs, s.out_shape[1:])


def _mask_of(b: Builder, s: Site, derive: str | None) -> str | None:
    if derive is None:
        return s.inputs[-1]
    if derive == "ones":
        return None
    nonzero = b.op("Not", [b.op("Equal", [s.inputs[0], b.const(0.0, s.name)], s.name)], s.name)
    if not s.layer.multi_channel:
        nonzero = b.reduce("ReduceMax", b.op("Cast", [nonzero], s.name, to=6), [1], s.name)   # int32: any channel
    return b.op("Cast", [nonzero], s.name, to=1)


def partial_conv(b: Builder, s: Site) -> str:
    """NVIDIA's PartialConv2d: (W∗(X⊙M)·ratio + b)·update, ratio = winsize/(count + eps)·update, update =
    clamp(count, 0, 1), count the mask's window sums."""
    layer = s.layer
    derive = layer.derive(len(s.inputs))
    mask = _mask_of(b, s, derive)
    x = b.op("Mul", [s.inputs[0], mask], s.name) if derive is None else s.inputs[0]
    raw = conv(b, _sub(s, layer.conv, [x]), bias=None)
    count = _mask_counts(b, s, mask, layer)
    update = b.clip(count, 0.0, 1.0, s.name)
    winsize = float((s.in_shapes[0][0] if layer.multi_channel else 1) * prod(layer.kernel_size))
    ratio = b.op("Div", [b.const(winsize, s.name), b.op("Add", [count, b.const(float(layer.eps), s.name)], s.name)],
                 s.name)
    valid = b.op("Greater", [update, b.const(0.0, s.name)], s.name)
    ratio = b.op("Mul", [b.op("Where", [valid, ratio, b.const(0.0, s.name)], s.name), update], s.name)
    y = b.op("Mul", [raw, ratio], s.name)
    if "bias" in s.params:
        y = b.op("Add", [y, b.channel_vector(s.params["bias"], 4, s.name)], s.name)
    return b.op("Mul", [y, update], s.name)


def partial_mask(b: Builder, s: Site) -> str:
    layer = s.layer
    mask = _mask_of(b, s, layer.derive_mask)
    update = b.clip(_mask_counts(b, s, mask, layer), 0.0, 1.0, s.name)
    if s.out_shape[0] == 1:
        return update
    return b.op("Mul", [update, b.const(np.ones((1, s.out_shape[0], 1, 1)), s.name)], s.name)


# --------------------------------------------------------------------------- pools

def _pool_attrs(layer, spatial) -> dict:
    pairs = list(layer.pads(spatial))
    return {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride),
            "pads": [lo for lo, _ in pairs] + [hi for _, hi in pairs]}


def max_pool(b: Builder, s: Site, x: str | None = None) -> str:
    layer = s.layer
    attrs = _pool_attrs(layer, s.in_shapes[0][1:])
    return b.op("MaxPool", [x or s.inputs[0]], s.name, ceil_mode=int(bool(layer.ceil_mode)),
                dilations=list(layer.dilation), **attrs)


def min_pool(b: Builder, s: Site) -> str:
    return b.op("Neg", [max_pool(b, s, b.op("Neg", s.inputs[:1], s.name))], s.name)


def avg_pool(b: Builder, s: Site, x: str | None = None) -> str:
    """AveragePool where ONNX's divisor is PyTorch's; else window sums / the unit's own divisor map."""
    layer, spatial, out = s.layer, s.in_shapes[0][1:], s.out_shape[1:]
    x = x or s.inputs[0]
    dilated = any(d != 1 for d in layer.dilation)
    if not layer.ceil_mode and not getattr(layer, "divisor_override", None) and (not dilated or b.opset >= 19):
        return b.op("AveragePool", [x], s.name, count_include_pad=int(bool(layer.count_include_pad)),
                    dilations=list(layer.dilation) if dilated else None, **_pool_attrs(layer, spatial))
    pads = layer.window_pads(spatial, out)
    summed = _ones_conv(b, s, b.pad(x, pads, s.name), s.in_shapes[0][0], layer.kernel_size, layer.stride,
                        layer.dilation, pads, out)
    divisor = layer.divisor(spatial, out, pads)
    return b.op("Div", [summed, b.const(divisor.reshape(1, 1, *out), s.name)], s.name)


def lp_pool(b: Builder, s: Site) -> str:
    """torch's (sign(a)·|a|·∏k)^(1/p), a = the average of x^p (|x|^p with abs); p = ±inf: ±max(±|x|)."""
    layer, name, p = s.layer, s.name, s.layer.norm_type
    inner = _sub(s, layer.inner)
    magnitude = b.op("Abs", s.inputs[:1], name)
    if p == math.inf:
        return max_pool(b, inner, magnitude)
    if p == -math.inf:
        return b.op("Neg", [max_pool(b, inner, b.op("Neg", [magnitude], name))], name)
    powered = b.op("Pow", [magnitude if layer.abs else s.inputs[0], b.const(float(p), name)], name)
    average = avg_pool(b, inner, powered)
    scaled = b.op("Mul", [b.op("Mul", [b.op("Sign", [average], name), b.op("Abs", [average], name)], name),
                          b.const(float(prod(layer.kernel_size)), name)], name)
    return b.op("Pow", [scaled, b.const(1.0 / p, name)], name)


def _along_axis(b: Builder, s: Site, x: str, shape: tuple[int, ...], axis: int, matrix: np.ndarray) -> tuple[str, tuple]:
    """``x`` (batchless ``shape``) times ``matrix`` [o, i] along batchless ``axis``: MatMul over [N, A, i, B]."""
    before, after = prod(shape[:axis]), prod(shape[axis + 1:])
    flat = b.reshape(x, (before, shape[axis], after), s.name)
    y = b.op("MatMul", [b.const(matrix, s.name), flat], s.name)
    new_shape = (*shape[:axis], matrix.shape[0], *shape[axis + 1:])
    return b.reshape(y, new_shape, s.name), new_shape


def _bins(i: int, o: int) -> list[tuple[int, int]]:
    """Adaptive pooling's bins [floor(j·i/o), ceil((j+1)·i/o))."""
    return [((j * i) // o, -((-(j + 1) * i) // o)) for j in range(o)]


def adaptive_pool(b: Builder, s: Site) -> str:
    """Global or evenly divided: GlobalAveragePool/AveragePool (max alike); uneven bins: per axis a MatMul by the
    bins' averaging matrix, or slices, ReduceMax and a Concat."""
    spatial, out = s.in_shapes[0][1:], s.out_shape[1:]
    average = type(s.layer).__name__.startswith("AdaptiveAvg")
    if all(o == 1 for o in out):
        return b.op("GlobalAveragePool" if average else "GlobalMaxPool", s.inputs, s.name)
    if all(i % o == 0 for i, o in zip(spatial, out)):
        kernel = [i // o for i, o in zip(spatial, out)]
        return b.op("AveragePool" if average else "MaxPool", s.inputs, s.name, kernel_shape=kernel, strides=kernel)
    x, shape = s.inputs[0], tuple(s.in_shapes[0])
    for axis, (i, o) in enumerate(zip(spatial, out), start=1):
        if i == o:
            continue
        if average:
            matrix = np.zeros((o, i))
            for j, (lo, hi) in enumerate(_bins(i, o)):
                matrix[j, lo:hi] = 1.0 / (hi - lo)
            x, shape = _along_axis(b, s, x, shape, axis, matrix)
        else:
            pieces = [b.reduce("ReduceMax", b.slice(x, axis + 1, lo, hi, s.name), [axis + 1], s.name)
                      for lo, hi in _bins(i, o)]
            x = b.op("Concat", pieces, s.name, axis=axis + 1)
            shape = (*shape[:axis], o, *shape[axis + 1:])
    return x


def global_pool(b: Builder, s: Site) -> str:
    average = s.layer.type_name == "GlobalAvgPool"
    y = b.op("GlobalAveragePool" if average else "GlobalMaxPool", s.inputs, s.name)
    return y if s.layer.keepdim else b.reshape(y, s.out_shape, s.name)


def max_unpool(b: Builder, s: Site) -> str:
    """The pool run again on its input for ONNX's indices, then MaxUnpool to the unit's output size."""
    pool = s.layer.pool_layer
    if not type(pool).__name__.startswith("MaxPool"):
        raise Refused(f"its pool is a {pool.type_name}; ONNX's MaxUnpool takes a MaxPool's indices")
    attrs = _pool_attrs(pool, s.in_shapes[1][1:])
    _, indices = b.op("MaxPool", [s.inputs[1]], s.name, outputs=2, ceil_mode=int(bool(pool.ceil_mode)),
                      dilations=list(pool.dilation), **attrs)
    shape = b.full_shape(s.inputs[0], s.out_shape[1:], s.name)
    layer = s.layer
    kernel, stride, padding = layer.windows()
    return b.op("MaxUnpool", [s.inputs[0], indices, shape], s.name, kernel_shape=list(kernel), strides=list(stride),
                pads=list(padding) * 2)


# --------------------------------------------------------------------------- padding and resampling

def pad_layer(b: Builder, s: Site) -> str:
    from ..layers.padding import pad_pairs
    layer = s.layer
    pairs = list(pad_pairs(layer.padding))
    rank = len(s.in_shapes[0]) + 1
    return b.pad(s.inputs[0], pairs, s.name, PAD_MODES[layer.mode], float(layer.fill_value()), rank=rank)


def resample(b: Builder, s: Site) -> str:
    """Per axis, ATen's own rule as the unit computes it: nearest modes a Gather of its source indices, the others
    (linear, cubic, area) a MatMul by its interpolation matrix (the unit's resampling of an identity)."""
    x, shape = s.inputs[0], tuple(s.in_shapes[0])
    plans = s.layer.axes(shape)
    if all(not (p.linear or p.cubic or p.area) and p.o % p.i == 0
           and list(p.nearest_indices()) == list(np.arange(p.o) // (p.o // p.i)) for p in plans):
        # whole-number nearest upsampling whose sources are u // r (PyTorch's 2x and most others): ONNX's Resize,
        # asymmetric coordinates rounded down, gives the very same pixels
        scales = b.const([1.0, 1.0, *(p.o / p.i for p in plans)], s.name)
        return b.op("Resize", [x, "", scales], s.name, mode="nearest", nearest_mode="floor",
                    coordinate_transformation_mode="asymmetric")
    if all(p.linear and p.o > 1 and not (p.o == p.i and p.copies()) for p in plans):
        return _resize_linear(b, s, plans)
    for axis, plan in enumerate(plans, start=1):
        if plan.o == plan.i and plan.copies():
            continue
        if not (plan.linear or plan.cubic or plan.area):
            x = b.op("Gather", [x, b.ints(list(plan.nearest_indices()), s.name)], s.name, axis=axis + 1)
            shape = (*shape[:axis], plan.o, *shape[axis + 1:])
            continue
        eye = np.eye(plan.i)[None]                       # (1, i, i): the identity along a stored spatial axis
        matrix = plan.apply(eye, 1)[0]                   # (o, i): output u = Σ_j matrix[u, j]·x[j]
        x, shape = _along_axis(b, s, x, shape, axis, np.asarray(matrix, dtype=np.float64))
    if x == s.inputs[0]:
        return b.op("Identity", [x], s.name)
    return x


def _resize_linear(b: Builder, s: Site, plans) -> str:
    """(Bi/tri)linear resampling as ONNX's Resize: align_corners as 'align_corners', else 'pytorch_half_pixel' (the
    source (u + 0.5)/scale − 0.5, clamped at 0), by PyTorch's scale factor where it samples with one, else to the
    sizes (coordinates equal to PyTorch's up to float rounding)."""
    mode = "align_corners" if plans[0].align_corners else "pytorch_half_pixel"
    if all(p.factor is not None for p in plans) and not plans[0].align_corners:
        scales = b.const([1.0, 1.0, *(float(p.factor) for p in plans)], s.name)
        return b.op("Resize", [s.inputs[0], "", scales], s.name, mode="linear", coordinate_transformation_mode=mode)
    sizes = b.full_shape(s.inputs[0], [p.o for p in plans], s.name)
    return b.op("Resize", [s.inputs[0], "", "", sizes], s.name, mode="linear", coordinate_transformation_mode=mode)


WINDOW_EMITTERS: dict[str, Emitter] = {
    "ConvNd": conv, "ConvTransposeNd": conv_transpose, "LocallyConnectedNd": locally_connected,
    "TiledConv2d": tiled, "PartialConv2d": partial_conv, "PartialConvMask2d": partial_mask,
    "MinPoolNd": min_pool, "MaxPoolNd": max_pool, "AvgPoolNd": avg_pool, "LPPoolNd": lp_pool,
    "AdaptivePoolNd": adaptive_pool, "GlobalPool": global_pool, "MaxUnpoolNd": max_unpool,
    "PadNd": pad_layer, "Upsample": resample,
}

__all__ = ["WINDOW_EMITTERS", "conv"]
