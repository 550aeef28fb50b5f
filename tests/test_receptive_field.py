"""Receptive fields checked against an independent oracle: PyTorch autograd.

convcalc reports, per layer and spatial axis, a field (size r, effective stride S, effective padding P) in
the convention of Araujo, Norris & Sim (Distill 2019): output index u sees input indices
[u*S - P, u*S - P + r - 1].

The oracle builds the same network from the same layer dicts out of real ``torch.nn`` modules with all-ones
weights and zero bias (max pooling becomes average pooling, or an all-ones depthwise convolution when it is
dilated: the support of a window does not depend on what is taken over it), feeds a strictly positive input
and takes the gradient of one output unit with respect to the input. Everything is positive, so nothing
cancels and the non-zero gradient positions are exactly the input positions the unit depends on.

What the oracle must show, per axis, for an output unit with predicted interval [a, b] on an input of
length I (zero padding; derivation in `check_unit`):

* the support lies inside [max(a, 0), min(b, I-1)];
* if a >= 0 and the support is not empty, its first index is a;
* if b <= I-1 and the support is not empty, its last index is b;
* if 0 <= a and b <= I-1 (an interior unit) the support is not empty, so the extent is exactly [a, b].

With dilation or kernels smaller than strides the support has holes; only its extent is compared. Where the
predicted interval is clipped by the border the first in-bounds index may fall in a hole, hence the one-sided
rules. With reflect/replicate/circular padding only interior units are checked (border units then see
mirrored or wrapped positions, which no (r, S, P) describes).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import pytest
import torch
import torch.nn.functional as F
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

import convcalc

DTYPE = torch.float64
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ELEMENTWISE = ("ReLU", "LeakyReLU", "SiLU", "GELU", "Identity", "Dropout", "PReLU", "BatchNorm")
RESERVED = ("type", "name", "from")


# --------------------------------------------------------------------------- the oracle network

def _per_axis(value: Any, dims: int) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * dims


def _args(layer: dict) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in layer.items() if k not in RESERVED}


def _ones(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name == "bias":
                param.zero_()
            elif name == "weight":
                param.fill_(1.0)
    return module.to(DTYPE).eval()


class _DilatedWindowSum(nn.Module):
    """The support of MaxPoolNd (dilation > 1): an all-ones depthwise convolution over the same windows.

    The output size is taken from a real ``nn.MaxPoolNd`` (ceil_mode and all); the input is zero-padded by
    ``padding`` on both sides, plus on the right whatever the last (ceil-mode) window overhangs.
    """

    def __init__(self, dims: int, args: dict):
        super().__init__()
        self.dims = dims
        self.k = _per_axis(args["kernel_size"], dims)
        stride = args.get("stride")
        self.s = self.k if stride is None else _per_axis(stride, dims)
        self.p = _per_axis(args.get("padding", 0), dims)
        self.d = _per_axis(args.get("dilation", 1), dims)
        self.real = getattr(nn, f"MaxPool{dims}d")(self.k, self.s, self.p, self.d,
                                                   ceil_mode=args.get("ceil_mode", False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.real(x).shape[2:]
        pads: list[int] = []
        for axis in reversed(range(self.dims)):
            k_eff = self.d[axis] * (self.k[axis] - 1) + 1
            needed = (out[axis] - 1) * self.s[axis] + k_eff
            extra = max(0, needed - (x.shape[2 + axis] + 2 * self.p[axis]))
            pads += [self.p[axis], self.p[axis] + extra]
        channels = x.shape[1]
        weight = torch.ones(channels, 1, *self.k, dtype=x.dtype)
        conv = getattr(F, f"conv{self.dims}d")
        y = conv(F.pad(x, pads), weight, stride=self.s, dilation=self.d, groups=channels)
        return y[(slice(None), slice(None), *(slice(0, o) for o in out))]


def oracle_module(layer: dict, dims: int, channels: int) -> nn.Module:
    """A torch module with the support of ``layer`` (PyTorch's own argument names)."""
    kind, args = layer["type"], _args(layer)
    if kind.startswith("Conv"):
        return _ones(getattr(nn, kind)(in_channels=channels, **args))
    if kind.startswith(("MaxPool", "MinPool")):   # MinPool: -maxpool(-x), the same windows
        if all(d == 1 for d in _per_axis(args.get("dilation", 1), dims)):
            return getattr(nn, f"AvgPool{dims}d")(args["kernel_size"], args.get("stride"), args.get("padding", 0),
                                                  ceil_mode=args.get("ceil_mode", False))
        return _DilatedWindowSum(dims, args)
    if kind.startswith("AvgPool"):
        return getattr(nn, kind)(**args)
    if kind.startswith(("AdaptiveAvgPool", "AdaptiveMaxPool")):
        return getattr(nn, f"AdaptiveAvgPool{dims}d")(args["output_size"])
    if kind.startswith("BatchNorm"):
        return _ones(getattr(nn, kind)(channels))
    if kind == "Linear":
        return _ones(nn.Linear(args.get("in_features") or 0, args["out_features"]))
    if kind == "Softmax" and args.get("dim") == 1 and channels > 1:
        # over the channels: every channel at the same position, the support of an all-ones 1x1 conv. The softmax
        # itself would be constant where the channels are equal (all-ones convs make them so): no gradient at all
        return _ones(getattr(nn, f"Conv{dims}d")(channels, channels, 1))
    if kind == "Softmax" and args.get("dim") not in (None, 0, 1):
        # along a spatial axis: every position of that axis. The softmax's own gradient is the difference of what a
        # position adds to the unit and to the whole axis, which cancels exactly where an input reaches every
        # position alike (AdaptiveAvgPool1d(2) over 9 positions after a wrap: input 0 and 4 weigh 1/5 in both bins)
        return _AxisSum(args["dim"])
    return _ones(getattr(nn, kind)(**args))


class _AxisSum(nn.Module):
    """Every position of axis ``dim`` replaced by the sum along it: a softmax's support, with positive gradients."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=self.dim, keepdim=True).expand_as(x)


def oracle_forward(layers: Sequence[dict], x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output, walking the same graph as convcalc (``name``/``from``, default: previous)."""
    dims = x.dim() - 2
    values = {"input": x}
    previous = "input"
    outputs = []
    for index, layer in enumerate(layers):
        source = layer.get("from", previous)
        inputs = [values[name] for name in ([source] if isinstance(source, str) else source)]
        if layer["type"] == "Add":
            out = sum(inputs[1:], inputs[0])
        elif layer["type"] == "Concat":
            out = torch.cat(inputs, dim=layer.get("dim", 1))
        else:
            out = oracle_module(layer, dims, inputs[0].shape[1])(inputs[0])
        previous = layer.get("name", f"#{index}")
        values[previous] = out
        outputs.append(out)
    return outputs


def positive_input(shape: Sequence[int]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (torch.rand((1, *shape), generator=generator, dtype=DTYPE) + 0.5).requires_grad_(True)


def analyze(input_shape: Sequence[int], layers: Sequence[dict]) -> convcalc.Summary:
    return convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": list(layers)}))


# --------------------------------------------------------------------------- the comparison

def supports(y: torch.Tensor, x: torch.Tensor, indices: Sequence[Sequence[int]],
             noise: float = 0.0) -> list[list[list[int]]]:
    """For each output position in ``indices`` (all channels), per axis, the input positions it depends on.

    Every layer acts on each axis separately and nothing cancels, so a unit's support is the product of
    these sets (all empty when it depends on no input at all). Channels are weighted 1, 2, 3, ... so that
    a softmax over the channels, whose plain sum is constant, keeps its gradient. One batched backward pass
    (vmap) computes the gradients of all the units at once. ``noise``: gradients below this fraction of the
    largest one of the batch count as zero (linear resampling weights that are 0 in exact arithmetic come out
    as ~1e-16 in float64; relative to the batch, not to the unit, so a unit with only such residue has none).
    """
    if not indices:
        return []
    weights = torch.arange(1, y.shape[1] + 1, dtype=y.dtype)
    seeds = torch.zeros((len(indices), *y.shape), dtype=y.dtype)
    for row, index in enumerate(indices):
        seeds[(row, 0, slice(None), *index)] = weights
    (grads,) = torch.autograd.grad(y, x, seeds, retain_graph=True, is_grads_batched=True)
    magnitude = grads[:, 0].abs().amax(dim=1)                       # (units, *spatial)
    masks = magnitude > noise * magnitude.max() if noise else magnitude.ne(0)
    result = []
    for mask in masks:
        per_axis = []
        for axis in range(mask.dim()):
            other = tuple(d for d in range(mask.dim()) if d != axis)
            per_axis.append(torch.nonzero(mask.any(dim=other) if other else mask).flatten().tolist())
        result.append(per_axis)
    return result


def support(y: torch.Tensor, x: torch.Tensor, index: Sequence[int]) -> list[list[int]]:
    return supports(y, x, [index])[0]


def check_unit(positions: list[int], a: int, b: int, length: int, nonempty: bool, what: str) -> None:
    """Compare one unit's gradient support along one axis with the predicted interval [a, b].

    Why these rules hold (zero padding): every tap of every window is an index of the layer below, and
    windows move right as u grows. The leftmost input index a is reached along the path of first taps. As
    all effective paddings are >= 0, a >= 0 puts that path at non-negative positions in every layer; if it
    leaves a layer's range to the right, every other path does too and the support is empty. Likewise
    b <= I-1 keeps the path of last taps inside every layer's range (a unit exists iff its window ends
    within input + right padding, by the output-size formulas of conv, floor/ceil pooling and divisible
    adaptive pooling); if that path is in left padding so is every other one. A unit interior on every axis
    therefore has a non-empty support (``nonempty``).
    """
    detail = f"{what}: predicted [{a}, {b}] on input length {length}, gradient support {positions}"
    if nonempty:
        assert positions, detail
    if not positions:
        return
    assert max(a, 0) <= positions[0] and positions[-1] <= min(b, length - 1), detail
    if a >= 0:
        assert positions[0] == a, detail
    if b <= length - 1:
        assert positions[-1] == b, detail


def as_int(value: Fraction, what: str) -> int:
    assert value.denominator == 1, f"{what} is {value}, expected an integer"
    return int(value)


def check_layer(y: torch.Tensor, x: torch.Tensor, rf: convcalc.Field, what: str,
                interior_only: bool = False, units: Sequence[int] | None = None) -> int:
    """Check every output unit along each axis (the other axes at their middle unit).

    Returns how many units were interior (predicted interval inside the input on every axis).
    """
    spatial_in = x.shape[2:]
    spatial_out = y.shape[2:]
    assert not rf.whole, what
    assert len(rf.axes) == len(spatial_in), what
    fields = [(as_int(f.size, f"{what} size"), as_int(f.stride, f"{what} stride"),
               as_int(f.padding, f"{what} padding")) for f in rf.axes]
    middle = [o // 2 for o in spatial_out]
    indices = []
    for axis in range(len(spatial_out)):
        for u in (range(spatial_out[axis]) if units is None else units):
            index = list(middle)
            index[axis] = u
            indices.append(index)
    pinned = 0
    wanted = []
    for index in indices:
        intervals = [(v * S - P, v * S - P + r - 1) for v, (r, S, P) in zip(index, fields)]
        inside = all(a >= 0 and b <= length - 1 for (a, b), length in zip(intervals, spatial_in))
        pinned += inside
        if inside or not interior_only:
            wanted.append((index, intervals, inside))
    for (index, intervals, inside), found in zip(wanted, supports(y, x, [w[0] for w in wanted])):
        for axis, (positions, (a, b), (r, S, P)) in enumerate(zip(found, intervals, fields)):
            check_unit(positions, a, b, spatial_in[axis], inside,
                       f"{what}, unit {index}, axis {axis} (r={r}, S={S}, P={P})")
    return pinned


def _crops(layer: dict) -> bool:
    padding = layer.get("padding", 0)
    return any(p < 0 for p in (padding if isinstance(padding, list) else [padding]) if isinstance(p, int))


def check_network(input_shape: Sequence[int], layers: Sequence[dict], every_layer: bool = True) -> convcalc.Summary:
    """Every layer's field against the gradients on ``input_shape`` (the rules of `check_unit`).

    With reflect/replicate/circular padding only interior units are checked. After a negative padding
    (a crop) an interval inside the input may still reach past an intermediate layer's border, so no unit
    is checked on this input: `check_embedded` covers those networks.
    """
    summary = analyze(input_shape, layers)
    x = positive_input(input_shape)
    outputs = oracle_forward(layers, x)
    assert len(outputs) == len(summary.layers)
    mirrored = cropped = False
    for index, (layer, y, row) in enumerate(zip(layers, outputs, summary.layers)):
        mirrored = mirrored or layer.get("padding_mode", "zeros") != "zeros"
        cropped = cropped or _crops(layer)
        assert tuple(y.shape[1:]) == tuple(row.output_shape), f"layer {index} {layer}: torch {tuple(y.shape)}"
        if (every_layer or index == len(layers) - 1) and not cropped:
            check_layer(y, x, row.rf, f"layer {index} {layer}", interior_only=mirrored)
    return summary


def _window(layer: dict) -> tuple[int, int]:
    """(stride, a bound on how far the window reaches: k_eff + |padding| + stride) of a 1-D layer."""
    kind = layer["type"]
    if not kind.startswith(("Conv", "MaxPool", "AvgPool")):
        return 1, 0
    k = layer["kernel_size"]
    d = layer.get("dilation", 1)
    k_eff = d * (k - 1) + 1
    padding = layer.get("padding", 0)
    padding = k_eff if isinstance(padding, str) else abs(padding)
    stride = layer.get("stride") or (1 if kind.startswith("Conv") else k)
    return stride, k_eff + padding + stride


def check_embedded(input_shape: Sequence[int], layers: Sequence[dict], summary: convcalc.Summary) -> None:
    """The field without borders: run the (1-D, non-adaptive) chain on the input with M extra positions on
    each side, M a multiple of every layer's total stride and beyond any window's reach. Output unit u of
    the small network is unit u + M/S there, far from every border whatever the padding mode or crops, so
    its gradient extent must be exactly [u*S - P + M, u*S - P + r - 1 + M]."""
    total, reach = 1, 0
    for layer in layers:
        stride, extent = _window(layer)
        reach += extent * total
        total *= stride
    margin = total * (-(-reach // total) + 1)
    channels, length = input_shape
    x = positive_input((channels, length + 2 * margin))
    outputs = oracle_forward(layers, x)
    for index, (y, row) in enumerate(zip(outputs, summary.layers)):
        (field,) = row.rf.axes
        r, S, P = (as_int(v, f"layer {index}") for v in (field.size, field.stride, field.padding))
        shift = margin // S
        units = range(row.output_shape[1])
        for u, (positions,) in zip(units, supports(y, x, [[u + shift] for u in units])):
            a = u * S - P + margin
            detail = (f"layer {index} {layers[index]}, unit {u} (r={r}, S={S}, P={P}) with {margin} more input"
                      f" on each side: predicted [{a}, {a + r - 1}], gradient support {positions}")
            assert positions and positions[0] == a and positions[-1] == a + r - 1, detail


# --------------------------------------------------------------------------- random networks

def _axis_value(draw, values: list[int], dims: int) -> int | list[int]:
    """One int for every axis, or (2-D, sometimes) one per axis."""
    if dims > 1 and draw(st.booleans()):
        return list(values)
    return values[0]


def draw_conv(draw, dims: int, channels: int) -> dict:
    k = [draw(st.integers(1, 4)) for _ in range(dims)]
    d = [draw(st.integers(1, 3)) for _ in range(dims)]
    s = [draw(st.integers(1, 3)) for _ in range(dims)]
    if dims > 1 and draw(st.booleans()):
        k, d, s = k[:1] * dims, d[:1] * dims, s[:1] * dims
    layer: dict[str, Any] = {"type": f"Conv{dims}d", "kernel_size": _axis_value(draw, k, dims),
                             "dilation": _axis_value(draw, d, dims)}
    kernel, dilation = _per_axis(layer["kernel_size"], dims), _per_axis(layer["dilation"], dims)
    style = draw(st.sampled_from(["int", "int", "int", "same", "valid"]))
    if style == "same":
        layer["padding"] = "same"
    else:
        layer["stride"] = _axis_value(draw, s, dims)
        if style == "valid":
            layer["padding"] = "valid"
        else:
            pads = [draw(st.integers(0, dd * (kk - 1) + 1)) for kk, dd in zip(kernel, dilation)]
            layer["padding"] = _axis_value(draw, pads, dims)
    groups = draw(st.sampled_from([1, 1, channels]))
    layer["groups"] = groups
    layer["out_channels"] = groups * draw(st.integers(1, 2))
    layer["bias"] = draw(st.booleans())
    layer["padding_mode"] = draw(st.sampled_from(["zeros"] * 5 + ["reflect", "replicate", "circular"]))
    if dims == 1 and layer["padding_mode"] != "zeros" and style == "int" and draw(st.integers(0, 2)) == 0:
        layer["padding"] = -draw(st.integers(1, 2))  # F.pad crops: a negative effective padding
    return layer


def draw_pool(draw, dims: int) -> dict:
    kind = draw(st.sampled_from(["MaxPool", "AvgPool"]))
    k = [draw(st.integers(1, 4)) for _ in range(dims)]
    layer: dict[str, Any] = {"type": f"{kind}{dims}d", "kernel_size": _axis_value(draw, k, dims)}
    kernel = _per_axis(layer["kernel_size"], dims)
    if draw(st.booleans()):
        layer["stride"] = _axis_value(draw, [draw(st.integers(1, 3)) for _ in range(dims)], dims)
    layer["padding"] = _axis_value(draw, [draw(st.integers(0, kk // 2)) for kk in kernel], dims)
    layer["ceil_mode"] = draw(st.booleans())
    if kind == "MaxPool":
        layer["dilation"] = _axis_value(draw, [draw(st.integers(1, 2)) for _ in range(dims)], dims)
    else:
        layer["count_include_pad"] = draw(st.booleans())
    return layer


def draw_adaptive(draw, dims: int, spatial: Sequence[int]) -> dict:
    """Output sizes that divide the input (all bins equal); null (keep the axis) in 2-D only, as PyTorch."""
    sizes = []
    for length in spatial:
        divisors = [o for o in range(1, length + 1) if length % o == 0]
        sizes.append(draw(st.sampled_from([None, *divisors] if dims > 1 else divisors)))
    if all(o == 1 or (o is None and i == 1) for o, i in zip(sizes, spatial)):
        return {"type": "Identity"}  # a global pool (whole input) is tested separately
    kind = draw(st.sampled_from(["AdaptiveAvgPool", "AdaptiveMaxPool"]))
    return {"type": f"{kind}{dims}d", "output_size": sizes if dims > 1 or draw(st.booleans()) else sizes[0]}


def draw_elementwise(draw, dims: int) -> dict:
    kind = draw(st.sampled_from(ELEMENTWISE))
    return {"type": f"BatchNorm{dims}d" if kind == "BatchNorm" else kind}


def builds(input_shape: Sequence[int], layers: Sequence[dict]) -> torch.Tensor | None:
    """The last output of the oracle network, or None where PyTorch refuses it."""
    try:
        with torch.no_grad():
            return oracle_forward(layers, torch.ones((1, *input_shape), dtype=DTYPE))[-1]
    except (RuntimeError, ValueError):
        return None


def draw_chain(draw, dims: int, input_shape: Sequence[int], count: int) -> list[dict]:
    """Up to ``count`` layers PyTorch accepts; layers PyTorch refuses are drawn again (at most twice)."""
    layers: list[dict] = []
    shape = tuple(input_shape)
    for _ in range(count):
        for _attempt in range(3):
            kind = draw(st.sampled_from(["conv", "conv", "pool", "pool", "adaptive", "elementwise"]))
            if kind == "conv":
                layer = draw_conv(draw, dims, shape[0])
            elif kind == "pool":
                layer = draw_pool(draw, dims)
            elif kind == "adaptive":
                layer = draw_adaptive(draw, dims, shape[1:])
            else:
                layer = draw_elementwise(draw, dims)
            out = builds(input_shape, [*layers, layer])
            if out is not None:
                layers.append(layer)
                shape = tuple(out.shape[1:])
                break
    return layers


@st.composite
def chains(draw, dims: int):
    channels = draw(st.integers(1, 2))
    spatial = [draw(st.integers(6, 40 if dims == 1 else 18)) for _ in range(dims)]
    input_shape = (channels, *spatial)
    layers = draw_chain(draw, dims, input_shape, draw(st.integers(1, 5 if dims == 1 else 4)))
    if not layers:
        layers = [{"type": "ReLU"}]
    return input_shape, layers


@settings(max_examples=200, **SETTINGS)
@given(chains(1))
def test_random_chains_1d_match_autograd(network):
    input_shape, layers = network
    summary = check_network(input_shape, layers)
    if not any(layer["type"].startswith("Adaptive") for layer in layers):  # bins depend on the input length
        check_embedded(input_shape, layers, summary)
    for row in summary.layers:  # no merges, adaptive bins all equal: the field has one size
        assert all(a.size_min == a.size for a in row.rf.axes), row


@settings(max_examples=100, **SETTINGS)
@given(chains(2))
def test_random_chains_2d_match_autograd(network):
    input_shape, layers = network
    summary = check_network(input_shape, layers)
    for row in summary.layers:
        assert all(a.size_min == a.size for a in row.rf.axes), row


# --------------------------------------------------------------------------- hand-picked chains

@pytest.mark.parametrize("layers", [
    # even kernel, 'same': pads (1, 2), the left one counts
    [{"type": "Conv1d", "out_channels": 1, "kernel_size": 4, "padding": "same"}],
    [{"type": "Conv1d", "out_channels": 1, "kernel_size": 4, "dilation": 3, "padding": "same"},
     {"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "stride": 2, "padding": 1}],
    # kernels smaller than strides: holes between the pieces
    [{"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "stride": 3},
     {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 2, "dilation": 2}],
    # ceil-mode pooling whose last window hangs over the right border
    [{"type": "MaxPool1d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
     {"type": "AvgPool1d", "kernel_size": 2, "stride": 3, "ceil_mode": True},
     {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1}],
    [{"type": "MaxPool1d", "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True},
     {"type": "ReLU"}],
    [{"type": "AdaptiveAvgPool1d", "output_size": 10},
     {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1},
     {"type": "AdaptiveMaxPool1d", "output_size": 5}],
    # padding larger than the kernel: windows that only see padding
    [{"type": "Conv1d", "out_channels": 1, "kernel_size": 5},
     {"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "padding": 2}],
], ids=["same-even", "same-dilated-then-strided", "holes", "ceil-pools", "dilated-maxpool", "adaptive",
        "all-padding-windows"])
def test_hand_picked_1d(layers):
    check_network((1, 30), layers)


def test_hand_picked_2d_per_axis_arguments():
    layers = [
        {"type": "Conv2d", "out_channels": 2, "kernel_size": [3, 2], "stride": 2, "padding": 1, "dilation": 2},
        {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "Conv2d", "out_channels": 2, "kernel_size": [1, 3], "stride": [1, 2], "padding": [0, 1],
         "groups": 2},
        {"type": "AdaptiveAvgPool2d", "output_size": [5, None]},
    ]
    summary = check_network((1, 40, 37), layers)
    assert summary.layers[-1].output_shape == (2, 5, 5)


def test_negative_padding_crops():
    """padding -1 with a non-zero padding_mode crops one position per side: k=3 then sees [u+1, u+3]."""
    layers = [
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": -1, "padding_mode": "reflect"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "stride": 2, "padding": 1,
         "padding_mode": "replicate"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "dilation": 2, "padding": -2,
         "padding_mode": "circular"},
    ]
    summary = check_network((1, 30), layers)
    (axis,) = summary.layers[0].rf.axes
    assert (axis.size, axis.stride, axis.padding) == (3, 1, -1)
    check_embedded((1, 30), layers, summary)


def test_3d():
    layers = [
        {"type": "Conv3d", "out_channels": 1, "kernel_size": [3, 1, 2], "stride": [1, 2, 1], "padding": [1, 0, 1],
         "dilation": [1, 1, 2]},
        {"type": "MaxPool3d", "kernel_size": 2, "stride": [2, 1, 2], "padding": 1, "ceil_mode": True},
    ]
    check_network((1, 6, 7, 8), layers)


def test_interior_units_are_exercised():
    """A deep chain on a long input: most units are interior, so both ends are pinned exactly."""
    layers = [
        {"type": "Conv1d", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2},
        {"type": "MaxPool1d", "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "Conv1d", "out_channels": 2, "kernel_size": 2, "stride": 1, "padding": 0, "dilation": 3,
         "padding_mode": "circular"},
        {"type": "AvgPool1d", "kernel_size": 2, "ceil_mode": True},
    ]
    summary = analyze((1, 200), layers)
    x = positive_input((1, 200))
    y = oracle_forward(layers, x)[-1]
    pinned = check_layer(y, x, summary.layers[-1].rf, "deep chain", interior_only=True)
    assert pinned >= y.shape[-1] - 4


# --------------------------------------------------------------------------- branches and merges

def branch_size(input_shape: Sequence[int], layers: Sequence[dict], axis: int) -> int:
    """The oracle's field size of a network: the widest gradient extent over its output units.

    Measured on an input 48 longer per axis (a size that does not depend on the input length), so that
    some units are interior and reach their whole field.
    """
    shape = (input_shape[0], *(length + 48 for length in input_shape[1:]))
    x = positive_input(shape)
    y = oracle_forward(layers, x)[-1]
    middle = [o // 2 for o in y.shape[2:]]
    indices = []
    for u in range(y.shape[2 + axis]):
        index = list(middle)
        index[axis] = u
        indices.append(index)
    widest = 0
    for found in supports(y, x, indices):
        positions = found[axis]
        if positions:
            widest = max(widest, positions[-1] - positions[0] + 1)
    return widest


def _only(layers: list[dict], keep: str) -> list[dict]:
    """The single path of ``layers`` that ends at ``keep``, as a chain without names."""
    by_name, sources, previous = {}, {}, "input"
    for layer in layers:
        if "name" in layer:
            by_name[layer["name"]] = layer
            sources[layer["name"]] = layer.get("from", previous)
            previous = layer["name"]
        else:
            previous = None
    path, wanted = [], keep
    while wanted != "input":
        path.append({k: v for k, v in by_name[wanted].items() if k not in ("name", "from")})
        wanted = sources[wanted]
    return path[::-1]


@st.composite
def branched(draw, dims: int):
    """An optional strided trunk, two branches of 1-3 layers, Add or Concat, an optional tail.

    Branch layers keep the shape (padding 'same', odd average pools) so that the branches always meet;
    'same' with an even k_eff - 1 pads one more on the right, which moves that branch's centre. Sometimes
    each branch starts with a strided conv of its own (explicit padding); those meet only now and then.
    """
    spatial = [draw(st.integers(12, 40 if dims == 1 else 16)) for _ in range(dims)]
    input_shape = (1, *spatial)
    layers: list[dict] = []
    source = "input"
    if draw(st.booleans()):
        layers.append({"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": draw(st.integers(1, 3)),
                       "stride": draw(st.integers(1, 2)), "name": "trunk"})
        source = "trunk"
    strided = draw(st.integers(0, 3)) == 0
    stride = draw(st.integers(2, 3))
    ends = []
    for branch in ("a", "b"):
        previous = source
        for position in range(draw(st.integers(1, 3))):
            k = draw(st.sampled_from([1, 2, 2, 3, 4, 4]))  # even k with odd d: asymmetric 'same'
            d = draw(st.sampled_from([1, 1, 2]))
            k_eff = d * (k - 1) + 1
            layer: dict[str, Any]
            if strided and position == 0:
                layer = {"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": k, "dilation": d,
                         "stride": stride, "padding": draw(st.integers(0, k_eff - 1))}
            elif draw(st.integers(0, 3)) == 0:
                k = 2 * draw(st.integers(0, 2)) + 1
                layer = {"type": f"AvgPool{dims}d", "kernel_size": k, "stride": 1, "padding": k // 2}
            else:
                layer = {"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": k, "dilation": d,
                         "padding": "same"}
            layer.update(name=f"{branch}{position}", **{"from": previous})
            layers.append(layer)
            previous = layer["name"]
        ends.append(previous)
    merge = draw(st.sampled_from(["Add", "Concat"]))
    layers.append({"type": merge, "from": ends, "name": "merged"})
    if draw(st.booleans()):
        layers.append({"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": 3, "padding": 1,
                       "stride": draw(st.integers(1, 2)), "name": "after"})
    return input_shape, layers, ends


def check_branched(input_shape, layers, ends):
    summary = check_network(input_shape, layers)
    merged = summary.layer("merged").rf
    for axis in range(len(input_shape) - 1):
        sizes = [branch_size(input_shape, _only(layers, end), axis) for end in ends]
        # the merge's field is the union of the branch fields: as wide as the oracle's widest merged unit,
        # and never narrower than the wider branch; the narrowest single path is the narrower branch
        # (size_min, what the merged units see, is checked per unit in test_receptive_exact.py)
        hull = branch_size(input_shape, _only_merged(layers), axis)
        assert merged.axes[axis].size == hull, (axis, sizes, hull, merged)
        assert merged.axes[axis].size >= max(sizes)
        assert merged.axes[axis].path_size_min == min(sizes), (axis, sizes, merged)
    return summary


def _only_merged(layers: list[dict]) -> list[dict]:
    end = next(index for index, layer in enumerate(layers) if layer.get("name") == "merged")
    return layers[:end + 1]


@settings(max_examples=100, **SETTINGS)
@given(st.data())
def test_random_branches_match_autograd(data):
    dims = data.draw(st.sampled_from([1, 1, 2]))
    input_shape, layers, ends = data.draw(branched(dims))
    shapes = [builds(input_shape, _only(layers, end)) for end in ends]
    if any(s is None for s in shapes) or shapes[0].shape[2:] != shapes[1].shape[2:]:
        return  # the branches do not meet (PyTorch would refuse the merge)
    summary = check_branched(input_shape, layers, ends)
    merged = summary.layer("merged").rf
    widest = [max(row.rf.axes[i].size for row in map(summary.layer, ends)) for i in range(dims)]
    event("aligned merge" if not merged.misaligned else
          "misaligned, union wider than either branch" if [a.size for a in merged.axes] != widest else
          "misaligned, union is one branch")


def test_add_of_two_kernels_is_the_wider_field():
    """3x3 and 7x7 'same' branches (aligned): every merged unit sees the 7x7 window; the narrowest path is 3."""
    layers = [
        {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1, "name": "a", "from": "input"},
        {"type": "Conv2d", "out_channels": 1, "kernel_size": 7, "padding": 3, "name": "b", "from": "input"},
        {"type": "Add", "from": ["a", "b"], "name": "merged"},
        {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": 1},
    ]
    summary = check_branched((1, 16, 16), layers, ["a", "b"])
    merged = summary.layer("merged").rf
    assert [(a.size, a.size_min, a.padding, a.path_size_min) for a in merged.axes] == [(7, 7, 3, 3)] * 2
    assert not merged.misaligned
    assert (merged.max_path, merged.min_path) == (("b", "merged"), ("a", "merged"))
    last = summary.layers[-1].rf
    assert [(a.size, a.size_min, a.stride, a.path_size_min) for a in last.axes] == [(9, 9, 2, 5)] * 2


def test_add_of_off_centre_branches_is_the_union():
    """Same stride, different centres. Two k=2 'same' convs (pads (0, 1)) reach [u, u+2]; a k=3 conv with
    padding 1 reaches [u-1, u+1]. Unit u of the sum sees their union [u-1, u+2]: size 4, padding 1."""
    layers = [
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "padding": "same", "name": "a0", "from": "input"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "padding": "same", "name": "a1"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "name": "b", "from": "input"},
        {"type": "Add", "from": ["a1", "b"], "name": "merged"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "stride": 2},
    ]
    summary = check_branched((1, 20), layers, ["a1", "b"])
    merged = summary.layer("merged").rf
    assert merged.misaligned
    (axis,) = merged.axes
    assert (axis.size, axis.size_min, axis.stride, axis.padding, axis.path_size_min) == (4, 4, 1, 1, 3)
    (axis,) = summary.layers[-1].rf.axes
    assert (axis.size, axis.size_min, axis.stride, axis.padding, axis.path_size_min) == (6, 6, 2, 1, 5)


def test_merge_of_different_strides_is_flagged():
    """Branches with strides 2 and 1 meet at one shape: no single (r, S, P) describes every unit."""
    layers = [
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "stride": 2, "name": "a", "from": "input"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 5, "name": "b", "from": "input"},
        {"type": "Add", "from": ["a", "b"]},
    ]
    summary = analyze((1, 8), layers)
    assert summary.layers[-1].output_shape == (1, 4)
    assert summary.layers[-1].rf.misaligned


@pytest.mark.parametrize("input_shape, layers", [
    # depthwise, so that the two channels differ (ones-weight convs make every channel alike)
    ((2, 12, 10), [{"type": "Conv2d", "out_channels": 2, "groups": 2, "kernel_size": 3},
                   {"type": "Softmax", "dim": 1}]),
    ((1, 12, 10), [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "Softmax", "dim": 2},
                   {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": 1}]),
    ((1, 12, 10), [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": 1},
                   {"type": "Softmax", "dim": -1}, {"type": "AvgPool2d", "kernel_size": 2}]),
    ((2, 20), [{"type": "MaxPool1d", "kernel_size": 3, "stride": 2},
               {"type": "Softmax", "dim": 2}, {"type": "Conv1d", "out_channels": 1, "kernel_size": 2}]),
], ids=["channels", "height", "width-negative-dim", "1d"])
def test_softmax(input_shape, layers):
    """Over the channels softmax is elementwise; over a spatial axis every unit sees that whole axis."""
    check_network(input_shape, layers)


def test_softmax_over_an_axis_sees_all_of_it():
    """k=3 valid conv on 12, then softmax over the length: each unit sees the 10 windows, i.e. [0, 11]."""
    summary = check_network((1, 12), [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3},
                                      {"type": "Softmax", "dim": -1}])
    (axis,) = summary.layers[-1].rf.axes
    assert (axis.size, axis.stride, axis.padding) == (12, 0, 0)


def test_concat_along_a_spatial_axis_is_flagged():
    """Units of a spatial concat come from one input each, shifted: sizes 3 (first part) and 5 (second)."""
    layers = [
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "name": "a", "from": "input"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 5, "padding": 1, "name": "b", "from": "input"},
        {"type": "Concat", "from": ["a", "b"], "dim": -1},
    ]
    summary = analyze((1, 12), layers)
    rf = summary.layers[-1].rf
    assert summary.layers[-1].output_shape == (1, 20)
    assert rf.misaligned
    x = positive_input((1, 12))
    y = oracle_forward(layers, x)[-1]
    extents = [positions[-1] - positions[0] + 1 for (positions,) in supports(y, x, [[u] for u in range(20)])]
    (axis,) = rf.axes
    assert (axis.size, axis.size_min) == (max(extents), min(extents)) == (5, 3)
    # along the channels it is an ordinary merge: both inputs, aligned here
    channels = analyze((1, 12), [{**layers[0], "padding": 1}, {**layers[1], "padding": 2}, {**layers[2], "dim": 1}]).layers[-1]
    assert not channels.rf.misaligned


# --------------------------------------------------------------------------- published figures

def test_yu_koltun_dilated_stack():
    """Yu & Koltun (ICLR 2016), Fig. 1: 3x3 convs with dilation 1, 2, 4 -> fields 3x3, 7x7, 15x15."""
    layers = [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "dilation": d, "padding": d} for d in (1, 2, 4)]
    summary = analyze((1, 32, 32), layers)
    assert [[a.size for a in row.rf.axes] for row in summary.layers] == [[3, 3], [7, 7], [15, 15]]
    assert [[a.stride for a in row.rf.axes] for row in summary.layers] == [[1, 1]] * 3
    assert [[a.padding for a in row.rf.axes] for row in summary.layers] == [[1, 1], [3, 3], [7, 7]]
    check_network((1, 20, 20), layers)


def test_wavenet_dilated_causal_stack():
    """van den Oord et al. (2016): kernel 2, dilations 1, 2, ..., 512 -> a receptive field of 1024 samples."""
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "dilation": 2 ** i, "padding": 0}
              for i in range(10)]
    summary = analyze((1, 1100), layers)
    (axis,) = summary.layers[-1].rf.axes
    assert (axis.size, axis.size_min, axis.stride, axis.padding) == (1024, 1024, 1, 0)
    assert summary.layers[-1].output_shape == (1, 1100 - 1023)
    x = positive_input((1, 1100))
    y = oracle_forward(layers, x)[-1]
    pinned = check_layer(y, x, summary.layers[-1].rf, "wavenet", units=[0, 1, 40, 76])
    assert pinned == 4


def test_vgg16_pool5():
    """Araujo et al. (Distill 2019), table: VGG-16 has r = 212, S = 32, P = 90 at its last pooling layer."""
    layers = []
    for convs in (2, 2, 3, 3, 3):
        layers += [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1}] * convs
        layers.append({"type": "MaxPool2d", "kernel_size": 2, "stride": 2})
    summary = analyze((3, 224, 224), layers)
    assert summary.layers[-1].output_shape == (1, 7, 7)
    assert [(a.size, a.stride, a.padding) for a in summary.layers[-1].rf.axes] == [(212, 32, 90)] * 2
    assert [a.size for a in summary.layers[-2].rf.axes] == [196, 196]  # conv5_3
    one_d = [{**layer, "type": layer["type"].replace("2d", "1d")} for layer in layers]
    x = positive_input((1, 224))
    y = oracle_forward(one_d, x)[-1]
    check_layer(y, x, analyze((1, 224), one_d).layers[-1].rf, "vgg16 (1-D)")


# --------------------------------------------------------------------------- whole-input fields

@pytest.mark.parametrize("tail", [
    [{"type": "Flatten"}],
    [{"type": "Flatten"}, {"type": "Linear", "out_features": 3}],
    [{"type": "Flatten"}, {"type": "Linear", "out_features": 3}, {"type": "ReLU"}],
    [{"type": "AdaptiveAvgPool2d", "output_size": 1}],
    [{"type": "AdaptiveAvgPool2d", "output_size": [1, 1]}],
    [{"type": "AdaptiveMaxPool2d", "output_size": 1}],
    [{"type": "AdaptiveAvgPool2d", "output_size": 1},
     {"type": "Conv2d", "out_channels": 2, "kernel_size": 1}, {"type": "Flatten"}],
], ids=["flatten", "linear", "linear-relu", "gap", "gap-list", "gmp", "gap-conv-flatten"])
def test_whole_input_layers(tail):
    head = [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1}]
    summary = analyze((1, 12, 12), head + tail)
    assert not summary.layers[0].rf.whole
    for row in summary.layers[1:]:
        assert row.rf.whole is True, row
    # the oracle agrees: the first output unit depends on every input position
    if tail[0]["type"] != "Flatten":
        x = positive_input((1, 12, 12))
        y = oracle_forward(head + tail[:1], x)[-1]
        (grad,) = torch.autograd.grad(y[0, 0].sum(), x)
        assert bool(grad.ne(0).all())


def test_global_pool_1d_is_whole():
    summary = analyze((2, 9), [{"type": "AdaptiveAvgPool1d", "output_size": 1}])
    assert summary.layers[0].rf.whole is True


def test_batchnorm_with_batch_statistics_sees_the_whole_input():
    """Without running statistics BatchNorm normalises with the batch's own mean and variance, even in eval():
    every unit depends on every position of its channel. Oracle: the support of torch's input gradient of one
    output unit of conv -> BatchNorm(track_running_stats=False) -> conv. With running statistics the field
    stays the convs' (5x5)."""
    torch.manual_seed(0)
    for track, whole in ((False, True), (True, False)):
        spec = {"input": [3, 12, 12], "layers": [
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3},
            {"type": "BatchNorm2d", "track_running_stats": track},
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3}]}
        rf = convcalc.analyze(convcalc.build_graph(convcalc.parse_spec(yaml.safe_dump(spec)))).layers[-1].rf
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=track),
                              nn.Conv2d(4, 4, 3)).eval()
        x = torch.randn(1, 3, 12, 12, requires_grad=True)
        model(x)[0, :, 4, 4].sum().backward()
        reached = x.grad[0].abs().sum(dim=0) != 0
        assert rf.whole == whole == bool(reached.all())
        if not whole:
            assert tuple(a.size for a in rf.axes) == (5, 5) and int(reached.sum()) == 25
