"""A layer's receptive-field summary (``size_min..size``, centre, padding, even spacing) describes the units away
from the borders, against PyTorch autograd.

The oracle is built here, independently of convcalc: every layer is written with torch's functional ops and all-ones
weights, and every position a layer reads that is not one of its input's units (a conv's or a pool's padding, a
transposed conv's input positions before the first and past the last unit) is an explicit *marker* tensor of zeros
that requires a gradient. On a strictly positive input nothing cancels, so:

* a unit's support is where d out[u] / d input is non-zero; per axis its extent is [min, max] of that support, and
  its size max - min + 1 (0 when it depends on no input);
* a unit is *interior* when d out[u] / d markers is zero for every marker: no chain of taps from it down to the
  network input passes through a position outside some layer's units.

The construction is checked against torch's own modules (``nn.ConvNd``, ``nn.ConvTransposeNd``, ``nn.Upsample``,
``nn.MaxPoolNd`` read as window sums) with the markers at zero. Then for every layer, per axis, when a stretch of
consecutive interior units is at least as long as the product of the layers' periods (upsampling factors and
transposed strides: the field's period divides it), the smallest and largest interior extents are ``size_min`` and
``size``, the mean over such a stretch of (centre - u*stride) is the field's centre (stride computed here as an exact
fraction), ``padding`` is (size - 1)/2 - centre, and ``even_spacing`` holds exactly when every interior unit sees one
size at one offset from u*stride.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Optional, Sequence

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

import convcalc

DTYPE = torch.float64
SETTINGS = dict(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large,
                                                                         HealthCheck.filter_too_much])
RESERVED = ("type", "name", "from")

torch.set_num_threads(1)


def _axes(value: Any, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * dims


def _arg(layer: dict, name: str, default: Any, dims: int) -> tuple[int, ...]:
    return _axes(layer.get(name, default), dims)


# --------------------------------------------------------------------------- the oracle network, with markers

class Marked:
    """The oracle's forward pass: one all-ones layer after another on a 1-channel tensor, reads outside a layer's
    input made through explicit zero ``markers`` (each requires a gradient)."""

    def __init__(self) -> None:
        self.markers: list[torch.Tensor] = []

    def pad(self, x: torch.Tensor, before: Sequence[int], after: Sequence[int]) -> torch.Tensor:
        """``x`` with marker positions ``before``/``after`` it along each spatial axis."""
        dims = x.dim() - 2
        for axis in range(dims):
            dim = 2 + axis
            parts = []
            for count in (before[axis], after[axis]):
                shape = list(x.shape)
                shape[dim] = count
                marker = torch.zeros(shape, dtype=x.dtype, requires_grad=True)
                self.markers.append(marker)
                parts.append(marker)
            x = torch.cat([parts[0], x, parts[1]], dim=dim)
        return x

    def layer(self, layer: dict, x: torch.Tensor) -> torch.Tensor:
        dims, kind = x.dim() - 2, layer["type"]
        if kind.startswith("Conv") and not kind.startswith("ConvTranspose"):
            k, s = _arg(layer, "kernel_size", 1, dims), _arg(layer, "stride", 1, dims)
            d, p = _arg(layer, "dilation", 1, dims), _arg(layer, "padding", 0, dims)
            conv = (F.conv1d, F.conv2d)[dims - 1]
            return conv(self.pad(x, p, p), torch.ones((1, 1, *k), dtype=x.dtype), stride=s, dilation=d)
        if kind.startswith("MaxPool"):                 # its support: the window sum over the same windows
            k = _arg(layer, "kernel_size", 1, dims)
            s, d = _arg(layer, "stride", layer["kernel_size"], dims), _arg(layer, "dilation", 1, dims)
            p = _arg(layer, "padding", 0, dims)
            conv = (F.conv1d, F.conv2d)[dims - 1]
            return conv(self.pad(x, p, p), torch.ones((1, 1, *k), dtype=x.dtype), stride=s, dilation=d)
        if kind.startswith("ConvTranspose"):
            k, s = _arg(layer, "kernel_size", 1, dims), _arg(layer, "stride", 1, dims)
            d, p = _arg(layer, "dilation", 1, dims), _arg(layer, "padding", 0, dims)
            op = _arg(layer, "output_padding", 0, dims)
            # the full transposed conv of the input with K marker units either side, cropped to torch's output:
            # full index j_ext*s + m*d is output index o + p + K*s
            ks = [-(-((kk - 1) * dd + pp + oo) // ss) + 2 for kk, dd, pp, oo, ss in zip(k, d, p, op, s)]
            conv = (F.conv_transpose1d, F.conv_transpose2d)[dims - 1]
            full = conv(self.pad(x, ks, ks), torch.ones((1, 1, *k), dtype=x.dtype), stride=s, dilation=d)
            for axis in range(dims):
                length = (x.shape[2 + axis] - 1) * s[axis] - 2 * p[axis] + d[axis] * (k[axis] - 1) + op[axis] + 1
                full = full.narrow(2 + axis, p[axis] + ks[axis] * s[axis], length)
            return full
        if kind == "Upsample":                         # nearest, integer factors: unit u reads floor(u / r)
            for axis, r in enumerate(_axes(layer["scale_factor"], dims)):
                x = x.index_select(2 + axis, torch.arange(x.shape[2 + axis] * int(r)) // int(r))
            return x
        raise AssertionError(kind)


def torch_module(layer: dict, dims: int, dtype: torch.dtype) -> nn.Module:
    """torch's own module for ``layer`` (all-ones weights, zero bias; a max pool as an average pool times its
    window, which sums the same windows)."""
    args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in layer.items() if k not in RESERVED}
    kind = layer["type"]
    if kind == "Upsample":
        return nn.Upsample(**args)
    if kind.startswith("MaxPool"):
        if any(v != 1 for v in _axes(args.get("dilation", 1), dims)):
            return None                                # no dilated average pool in torch: checked as a conv only
        args.pop("dilation", None)
        pool = (nn.AvgPool1d, nn.AvgPool2d)[dims - 1](**args, count_include_pad=True)
        area = 1
        for k in _axes(args["kernel_size"], dims):
            area *= k
        return nn.Sequential(pool, _Scale(area))
    args.pop("out_channels")
    module = getattr(nn, kind)(1, 1, **args).to(dtype)
    with torch.no_grad():
        module.weight.fill_(1.0)
        module.bias.zero_()
    return module


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def positive_input(shape: Sequence[int], dtype: torch.dtype = DTYPE) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (torch.rand((1, *shape), generator=generator, dtype=dtype) + 0.5).requires_grad_(True)


def oracle(input_shape: Sequence[int], layers: Sequence[dict], dtype: torch.dtype = DTYPE
           ) -> tuple[torch.Tensor, Marked, list[torch.Tensor]]:
    """The input, the markers and every layer's output; the outputs are checked against torch's modules. (The
    gradients are path counts, whole numbers, exact in float32 too.)"""
    x = positive_input(input_shape, dtype)
    marked = Marked()
    outputs, value, plain = [], x, x.detach()
    dims = len(input_shape) - 1
    for layer in layers:
        value = marked.layer(layer, value)
        module = torch_module(layer, dims, dtype)
        plain = module(plain) if module is not None else value.detach()
        rtol = 1e-12 if dtype == torch.float64 else 1e-5
        assert value.shape == plain.shape and torch.allclose(value.detach(), plain, rtol=rtol, atol=0), layer
        outputs.append(value)
    return x, marked, outputs


# --------------------------------------------------------------------------- per-unit supports and interiors

class Units:
    """Per output unit of one layer (``flats``: the flat indices of those wanted; default all): per axis its
    support's extent (None: no support) and whether it is interior."""

    def __init__(self, y: torch.Tensor, x: torch.Tensor, markers: Sequence[torch.Tensor],
                 flats: Optional[Sequence[int]] = None, chunk: int = 512):
        spatial = tuple(y.shape[2:])
        count = y[0, 0].numel()
        flats = list(range(count)) if flats is None else list(flats)
        extents: list[Optional[tuple[tuple[int, int], ...]]] = []
        interior: list[bool] = []
        inputs = [x, *markers]
        for start in range(0, len(flats), chunk):
            stop = min(len(flats), start + chunk)
            eye = torch.zeros((stop - start, count), dtype=y.dtype)
            eye[torch.arange(stop - start), torch.tensor(flats[start:stop])] = 1.0
            grads = torch.autograd.grad(y, inputs, eye.reshape(stop - start, *y.shape), retain_graph=True,
                                        is_grads_batched=True, allow_unused=True)
            gx = grads[0][:, 0, 0] != 0                   # [batch, *spatial_in]
            touched = torch.zeros(stop - start, dtype=torch.bool)
            for g in grads[1:]:
                if g is not None:
                    touched |= g.reshape(stop - start, -1).ne(0).any(dim=1)
            seen = gx.reshape(stop - start, -1).any(dim=1)
            per_axis = []                                   # per axis: the first and last index with a support
            for axis in range(gx.dim() - 1):
                lines = gx.any(dim=tuple(d for d in range(1, gx.dim()) if d != axis + 1)) if gx.dim() > 2 else gx
                n = lines.shape[1]
                first = lines.to(torch.int8).argmax(dim=1)
                last = n - 1 - lines.flip(1).to(torch.int8).argmax(dim=1)
                per_axis.append((first.tolist(), last.tolist()))
            for b, (has, hit) in enumerate(zip(seen.tolist(), touched.tolist())):
                extents.append(tuple((f[b], l[b]) for f, l in per_axis) if has else None)
                interior.append(not hit)
        self.spatial, self.flats, self.extents, self.interior = spatial, flats, extents, interior

    def index(self, flat: int) -> tuple[int, ...]:
        out = []
        for n in reversed(self.spatial):
            flat, u = divmod(flat, n)
            out.append(u)
        return tuple(reversed(out))

    def interior_units(self) -> list[tuple[tuple[int, ...], Optional[tuple[tuple[int, int], ...]]]]:
        return [(self.index(f), e) for f, e, inside in zip(self.flats, self.extents, self.interior) if inside]


def longest_run(values: set[int]) -> tuple[int, int]:
    """(first, length) of the longest run of consecutive integers in ``values``."""
    best, first = (0, 0), None
    for v in sorted(values):
        if first is None or v != last + 1:
            first = v
        last = v
        if last - first + 1 > best[1]:
            best = (first, last - first + 1)
    return best


def stride_and_bound(layers: Sequence[dict], dims: int) -> list[tuple[list[Fraction], list[int]]]:
    """Per layer, per axis: the exact effective stride (input positions per unit) and the product of the periods
    of what the layers read (upsampling factors, transposed strides), which the field's period divides."""
    stride, bound, out = [Fraction(1)] * dims, [1] * dims, []
    for layer in layers:
        kind = layer["type"]
        for axis in range(dims):
            if kind == "Upsample":
                r = int(_axes(layer["scale_factor"], dims)[axis])
                stride[axis] /= r
                bound[axis] *= r
            elif kind.startswith("ConvTranspose"):
                s = _arg(layer, "stride", 1, dims)[axis]
                stride[axis] /= s
                bound[axis] *= s
            else:
                default = layer["kernel_size"] if kind.startswith("MaxPool") else 1
                stride[axis] *= _arg(layer, "stride", default, dims)[axis]
        out.append((list(stride), list(bound)))
    return out


def per_axis(inside, axis: int, dims: int) -> dict[int, Optional[tuple[int, int]]]:
    """Per index along ``axis``, the extent along it of the interior units there (None: it sees nothing). A unit's
    support is the product of what it sees along each axis, so a unit with no support at all says nothing about
    ``axis`` unless another unit of its line along the other axis sees something (then this index sees nothing)."""
    seen: dict[int, Optional[tuple[int, int]]] = {}
    lines_seeing = set()                       # the other axes' indices of interior units with a support
    for u, extent in inside:
        if extent is not None:
            seen[u[axis]] = extent[axis]
            lines_seeing.add(u[:axis] + u[axis + 1:])
    for u, extent in inside:
        if extent is None and u[axis] not in seen and (dims == 1 or u[:axis] + u[axis + 1:] in lines_seeing):
            seen[u[axis]] = None
    return seen


def analyze(input_shape: Sequence[int], layers: Sequence[dict]) -> convcalc.Summary:
    return convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": list(layers)}))


def check(input_shape: Sequence[int], layers: Sequence[dict]) -> int:
    """Every layer's summary against the interior units' autograd extents; returns how many (layer, axis) pairs
    had interior units covering a period (and were compared)."""
    dims = len(input_shape) - 1
    summary = analyze(input_shape, layers)
    x, marked, outputs = oracle(input_shape, layers)
    compared = 0
    for row, y, (stride, bound), layer in zip(summary.layers, outputs, stride_and_bound(layers, dims), layers):
        units = Units(y, x, marked.markers)
        inside = units.interior_units()
        for axis in range(dims):
            rf = row.rf.axes[axis]
            assert rf.stride == stride[axis], (row.name, axis)
            positions = {u[axis] for u, _ in inside}
            first, length = longest_run(positions)
            if length < bound[axis]:
                continue
            what = f"layer {row.name} ({layer}), axis {axis}, interior units {first}..{first + length - 1}"
            per_unit = per_axis(inside, axis, dims)
            if any(u not in per_unit for u in range(first, first + length)):
                continue                                    # (2-D: no unit of the row tells what the row sees)
            compared += 1
            sizes = [0 if e is None else e[1] - e[0] + 1 for e in per_unit.values()]
            assert (min(sizes), max(sizes)) == (rf.size_min, rf.size), what
            window = range(first, first + bound[axis])       # whole periods of consecutive interior units
            seen = [(u, per_unit[u]) for u in window if per_unit[u] is not None]
            if not seen:
                continue
            offsets = [Fraction(e[0] + e[1], 2) - u * stride[axis] for u, e in seen]
            centre = sum(offsets) / len(offsets)
            # convcalc's centre averages the phases that see something over one period: the same mean
            assert rf.centre == centre, what
            assert rf.padding == Fraction(max(sizes) - 1, 2) - centre, what
            even = min(sizes) == max(sizes) and len({Fraction(e[0] + e[1], 2) - u * stride[axis]
                                                      for u, e in per_unit.items() if e is not None}) == 1
            assert rf.even_spacing == even, what
    return compared


# --------------------------------------------------------------------------- the issue's example

EXAMPLE = [
    {"type": "ConvTranspose2d", "out_channels": 1, "kernel_size": 1, "stride": 2},
    {"type": "Upsample", "scale_factor": 2, "mode": "nearest"},
    {"type": "Conv2d", "out_channels": 1, "kernel_size": 4, "stride": 2, "dilation": 2, "padding": 2},
    {"type": "Conv2d", "out_channels": 1, "kernel_size": 2, "stride": 2, "dilation": 2, "padding": 2},
    {"type": "ConvTranspose2d", "out_channels": 1, "kernel_size": 5, "stride": 3, "padding": 2},
]


def test_issue_example_interior_units_read_three_or_four_rows():
    """Issue 17: every interior output unit reads 3 or 4 input rows (and columns); the summary said 3..5 (size 5
    only at border units 4-5, region [-1, 3]). Every layer's summary (centre and padding too) is checked on the
    same stack in 1-D, whose axis is each of the 2-D net's. (Along each axis the units of three whole lines through
    the middle, a period of 3 across: all 20,164 units cost 20 s of backward passes.)"""
    x, marked, outputs = oracle([1, 48, 48], EXAMPLE, torch.float32)
    side = outputs[-1].shape[-1]
    assert side == 142
    middle = range(side // 2 - 1, side // 2 + 2)
    rf = analyze([1, 48, 48], EXAMPLE).layers[-1].rf
    for axis in (0, 1):
        lines = [(u, v) if axis == 0 else (v, u) for u in range(side) for v in middle]
        units = Units(outputs[-1], x, marked.markers, [i * side + j for i, j in lines])
        inside = units.interior_units()
        assert len(inside) > 3 * 130 and all(e is not None for _, e in inside)
        sizes = {e[axis][1] - e[axis][0] + 1 for _, e in inside}
        assert (min(sizes), max(sizes)) == (3, 4)
        assert (rf.axes[axis].size_min, rf.axes[axis].size) == (3, 4)
    one_d = [{**layer, "type": layer["type"].replace("2d", "1d")} for layer in EXAMPLE]
    assert check([1, 48], one_d) == len(EXAMPLE)


def test_a_period_longer_than_the_axis_summarises_the_interior_units():
    """After the x3 upsampling a stride-4 conv has period 3 (stride 8 = 24 input positions per 3 units); the last
    conv (stride 4) would have period 3 too, longer than its 2 units, so its table is the axis's own 2 units. Unit 0
    reads position -1 of the layer below (padding): only unit 1 is interior, and the summary is its extent (the
    summary said 23..29, 29 from unit 0's region [-22, 6] on the extension)."""
    layers = [
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 5, "stride": 2, "padding": 4},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 4, "stride": 3, "padding": 3},
        {"type": "Upsample", "scale_factor": 3, "mode": "nearest"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "stride": 4},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "stride": 4, "dilation": 2, "padding": 1},
    ]
    x, marked, outputs = oracle([1, 45], layers)
    units = Units(outputs[-1], x, marked.markers)
    assert units.interior == [False, True]
    ((_, ((first, last),)),) = units.interior_units()
    rf = analyze([1, 45], layers).layers[-1].rf.axes[0]
    assert (rf.size_min, rf.size) == (last - first + 1, last - first + 1)
    assert rf.stride == 32 and rf.centre == Fraction(first + last, 2) - 1 * 32
    assert rf.extent(0) == units.extents[0][0]          # the border unit stays exact in `extent` (rf --unit)


# --------------------------------------------------------------------------- random stacks

def _value(draw, values, dims: int):
    """One value for every axis, or (2-D) sometimes one per axis."""
    if dims == 2 and draw(st.booleans()):
        return [draw(values), draw(values)]
    return draw(values)


@st.composite
def layer_of(draw, dims: int) -> dict:
    kind = draw(st.sampled_from(["Conv", "Conv", "ConvTranspose", "ConvTranspose", "Upsample", "Upsample",
                                 "MaxPool"]))
    if kind == "Upsample":
        return {"type": "Upsample", "scale_factor": _value(draw, st.integers(2, 3), dims), "mode": "nearest"}
    k = _value(draw, st.integers(1, 5), dims)
    s = _value(draw, st.integers(1, 4), dims)
    d = _value(draw, st.integers(1, 3), dims)
    k_axes, d_axes, s_axes = _axes(k, dims), _axes(d, dims), _axes(s, dims)
    if kind == "MaxPool":
        k = _value(draw, st.integers(2, 4), dims)
        k_axes = _axes(k, dims)
        p = [draw(st.integers(0, kk // 2)) for kk in k_axes]
        return {"type": f"MaxPool{dims}d", "kernel_size": k, "stride": s, "dilation": d,
                "padding": p if dims == 2 else p[0]}
    if kind == "Conv":
        p = [draw(st.integers(0, (kk - 1) * dd + 1)) for kk, dd in zip(k_axes, d_axes)]
        return {"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": k, "stride": s, "dilation": d,
                "padding": p if dims == 2 else p[0]}
    p = [draw(st.integers(0, (kk - 1) * dd)) for kk, dd in zip(k_axes, d_axes)]
    op = [draw(st.integers(0, max(ss, dd) - 1)) for ss, dd in zip(s_axes, d_axes)]
    return {"type": f"ConvTranspose{dims}d", "out_channels": 1, "kernel_size": k, "stride": s, "dilation": d,
            "padding": p if dims == 2 else p[0], "output_padding": op if dims == 2 else op[0]}


def _lengths(input_shape: Sequence[int], layers: Sequence[dict]) -> Optional[list[int]]:
    """Every layer's output lengths by torch's rules (None where one is below 1 or the network grows too big)."""
    dims = len(input_shape) - 1
    lengths, out = list(input_shape[1:]), []
    for layer in layers:
        kind = layer["type"]
        for axis in range(dims):
            n = lengths[axis]
            if kind == "Upsample":
                n *= int(_axes(layer["scale_factor"], dims)[axis])
            else:
                k, d = _arg(layer, "kernel_size", 1, dims)[axis], _arg(layer, "dilation", 1, dims)[axis]
                p = _arg(layer, "padding", 0, dims)[axis]
                default = layer["kernel_size"] if kind.startswith("MaxPool") else 1
                s = _arg(layer, "stride", default, dims)[axis]
                if kind.startswith("ConvTranspose"):
                    n = (n - 1) * s - 2 * p + d * (k - 1) + _arg(layer, "output_padding", 0, dims)[axis] + 1
                else:
                    n = (n + 2 * p - d * (k - 1) - 1) // s + 1
            lengths[axis] = n
        if min(lengths) < 1 or max(lengths) > (400 if dims == 1 else 60):
            return None
        out.append(list(lengths))
    return out


@st.composite
def stacks(draw, dims: int):
    length = draw(st.integers(4, 48 if dims == 1 else 14))
    shape = [1] + [length if dims == 1 or draw(st.booleans()) else draw(st.integers(4, 14))
                   for _ in range(dims)] if dims == 2 else [1, length]
    layers: list[dict] = []
    for _ in range(draw(st.integers(1, 5 if dims == 1 else 4))):
        layer = draw(layer_of(dims))
        if _lengths(shape, [*layers, layer]) is None:
            continue
        layers.append(layer)
    if not layers:
        layers = [{"type": "Upsample", "scale_factor": 2, "mode": "nearest"}]
    return shape, layers


@settings(**SETTINGS)
@given(stacks(1))
def test_random_1d_stacks_interior_units_match_the_summary(stack):
    shape, layers = stack
    event(f"(layer, axis) pairs compared: {min(check(shape, layers), 5)}")


@settings(**{**SETTINGS, "max_examples": 40})
@given(stacks(2))
def test_random_2d_stacks_interior_units_match_the_summary(stack):
    shape, layers = stack
    event(f"(layer, axis) pairs compared: {min(check(shape, layers), 4)}")
