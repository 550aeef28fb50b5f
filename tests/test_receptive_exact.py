"""Exact per-unit receptive fields (convcalc.algebra) against PyTorch autograd, unit by unit.

The oracle is test_receptive_field's: the same network out of real ``torch.nn`` modules with all-ones weights,
zero bias, max pooling replaced by average pooling, a strictly positive input; the gradient of one output
position (all channels) with respect to the input is non-zero exactly where that position depends on the input.
Linear resampling weights that are zero in exact arithmetic come out as rounding noise (~1e-16) in float64, so
gradients below 1e-9 of a unit's largest are taken as zero.

Per output unit and axis convcalc predicts the unclipped region [first, last] (or nothing). What must hold on an
input of length I (zero padding):

* a unit with an empty region on some axis has no support at all;
* an *interior* unit (first >= 0 and last <= I-1 on every axis) has exactly that extent on every axis;
* any other unit's support lies inside its region clipped to [0, I-1] (at a border the first in-bounds
  index may fall in a dilation hole, or the layer below may have no unit there).

And over the interior units, when they cover every residue of the period, the widest and narrowest extents are
``size`` and ``size_min``.
"""

from __future__ import annotations

import sys
from itertools import product
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_receptive_field import DTYPE, analyze, oracle_module, positive_input  # noqa: E402
from test_receptive_field import supports as oracle_supports  # noqa: E402
from test_resample import ForwardGather  # noqa: E402

import convcalc  # noqa: E402
from convcalc.algebra import AxisField, Field, Reads, merge  # noqa: E402

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])
NOISE = 1e-9


# --------------------------------------------------------------------------- the oracle network

def oracle_forward(layers: Sequence[dict], x: torch.Tensor) -> list[torch.Tensor]:
    """test_receptive_field's oracle walk (``name``/``from``), with nearest Upsamples as test_resample's
    `ForwardGather`: torch's nearest backward does not always route the gradient to the pixel its forward read
    (float32 scale in the forward, shortcuts in the backward)."""
    dims = x.dim() - 2
    values, previous, outputs = {"input": x}, "input", []
    for index, layer in enumerate(layers):
        source = layer.get("from", previous)
        inputs = [values[name] for name in ([source] if isinstance(source, str) else source)]
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items() if k not in ("type", "name", "from")}
        if layer["type"] == "Add":
            out = sum(inputs[1:], inputs[0])
        elif layer["type"] == "Concat":
            out = torch.cat(inputs, dim=layer.get("dim", 1))
        elif layer["type"] == "Upsample" and args.get("mode", "nearest").startswith("nearest"):
            out = ForwardGather(args)(inputs[0])
        else:
            out = oracle_module(layer, dims, inputs[0].shape[1])(inputs[0])
        previous = layer.get("name", f"#{index}")
        values[previous] = out
        outputs.append(out)
    return outputs


def builds(input_shape: Sequence[int], layers: Sequence[dict]) -> torch.Tensor | None:
    """The last output of the oracle network, or None where PyTorch refuses it, or where it holds a circular pad
    that wraps around more than once: torch's 1-D pad refuses that (a memory overlap) while its 2-D and 3-D pads
    compute it, and convcalc refuses it by convention (hypothesis drew [-1, 2] on a width of 2)."""
    try:
        with torch.no_grad():
            out = oracle_forward(layers, torch.ones((1, *input_shape), dtype=DTYPE))[-1]
    except (RuntimeError, ValueError):
        return None
    if out.numel() == 0:       # an empty output (a crop that leaves nothing): the caller draws again
        return out
    try:
        convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": list(layers)}))
    except convcalc.ShapeError as exc:
        if "wraps around more than once" in str(exc):
            return None
        raise
    return out


# --------------------------------------------------------------------------- the comparison

def supports(y: torch.Tensor, x: torch.Tensor, indices: Sequence[Sequence[int]]) -> list[list[list[int]]]:
    """test_receptive_field's oracle, with gradients below NOISE of the batch's largest taken as zero."""
    return oracle_supports(y, x, indices, noise=NOISE)


def _anchor(rf: Field, spatial_out: Sequence[int]) -> list[int]:
    """Per axis a unit near the middle that depends on some input, for the lines along the other axes."""
    anchor = []
    for axis, o in enumerate(spatial_out):
        order = sorted(range(o), key=lambda u: abs(u - o // 2))
        seen = [u for u in order if rf.axes[axis].extent(u) is not None]
        anchor.append((seen or order)[0])
    return anchor


def check_regions(y: torch.Tensor, x: torch.Tensor, rf: Field, what: str, mirrored: bool = False) -> dict[str, int]:
    """Every unit on a line through an anchor unit, along each axis, against the gradient support:

    * `Field.extent` (the actual network, borders included) is the support's extent exactly, or None exactly
      when the support is empty;
    * with zero padding the support lies inside the unclipped `Field.region` clipped to the input;
    * where every residue of the period has a unit whose support reaches its whole region ("clean" units),
      the widest and narrowest of their extents are ``size`` and ``size_min`` (for separable fields: the
      per-axis numbers of a merge whose inputs miss some units on another axis are the per-axis union's).
    """
    spatial_in, spatial_out = x.shape[2:], y.shape[2:]
    assert not rf.whole, what
    assert len(rf.axes) == len(spatial_in), what
    anchor = _anchor(rf, spatial_out)
    indices = []
    for axis in range(len(spatial_out)):
        for u in range(spatial_out[axis]):
            index = list(anchor)
            index[axis] = u
            indices.append(index)
    counts = {"units": 0, "clean": 0, "extremes": 0}
    extents: dict[int, dict[int, set[int]]] = {axis: {} for axis in range(len(spatial_out))}
    for index, found in zip(indices, supports(y, x, indices)):
        extent, regions = rf.extent(index), rf.region(index)
        counts["units"] += 1
        detail = f"{what}: unit {index}, extent {extent}, region {regions}, support {found}, field {rf.axes}"
        if extent is None:
            assert not any(found), detail
            continue
        for positions, (a, b) in zip(found, extent):
            assert positions and (positions[0], positions[-1]) == (a, b), detail
        if not mirrored:
            assert all(r is not None and max(r[0], 0) <= a and b <= min(r[1], n - 1)
                       for (a, b), r, n in zip(extent, regions, spatial_in)), detail
        if tuple(extent) == tuple(regions):
            counts["clean"] += 1
            for axis, ((a, b), field) in enumerate(zip(extent, rf.axes)):
                extents[axis].setdefault(index[axis] % field.period, set()).add(b - a + 1)
    for axis, field in enumerate(rf.axes):
        if rf.separable and len(extents[axis]) == field.period and all(r is not None for r in field.regions()):
            seen = set().union(*extents[axis].values())
            assert (max(seen), min(seen)) == (field.size, field.size_min), f"{what}, axis {axis}: {seen}, {field}"
            counts["extremes"] += 1
    return counts


def check_all_layers(input_shape: Sequence[int], layers: Sequence[dict], every_layer: bool = True
                     ) -> tuple[convcalc.Summary, dict[str, int]]:
    summary = analyze(input_shape, layers)
    x = positive_input(input_shape)
    outputs = oracle_forward(layers, x)
    totals = {"units": 0, "clean": 0, "extremes": 0}
    mirrored = False
    for index, (layer, y, row) in enumerate(zip(layers, outputs, summary.layers)):
        assert tuple(y.shape[1:]) == tuple(row.output_shape), f"layer {index} {layer}: torch {tuple(y.shape)}"
        mirrored = mirrored or layer.get("padding_mode", "zeros") != "zeros" or \
            layer["type"].startswith(("Reflection", "Replication", "Circular"))
        if (every_layer or index == len(layers) - 1) and not row.rf.whole:
            for key, value in check_regions(y, x, row.rf, f"layer {index} {layer}", mirrored).items():
                totals[key] += value
    return summary, totals


# --------------------------------------------------------------------------- random layers

def draw_layer(draw, dims: int, shape: Sequence[int]) -> dict:
    """A conv, pool, transposed conv, upsampling, PixelShuffle or adaptive pool (arguments PyTorch may refuse:
    the caller draws again then)."""
    channels, spatial = shape[0], shape[1:]
    kind = draw(st.sampled_from(["conv", "conv", "pool", "transposed", "transposed", "upsample", "upsample",
                                 "adaptive", "other"] + (["shuffle"] if dims == 2 else [])))
    if kind == "other":      # padding layers (mirrored, wrapped, cropping), softmax along an axis, LPPool
        other = draw(st.sampled_from(["ReflectionPad", "ReplicationPad", "CircularPad", "ConstantPad", "Softmax",
                                      "LPPool"] + (["PixelUnshuffle"] if dims == 2 else [])))
        if other == "Softmax":
            # (over a single channel softmax is the constant 1: it depends on nothing)
            return {"type": "Softmax", "dim": draw(st.sampled_from([*([1] if channels > 1 else []),
                                                                    *range(2, dims + 2)]))}
        if other == "LPPool":
            k = draw(st.integers(1, 3))
            return {"type": f"LPPool{dims}d", "norm_type": 2, "kernel_size": k, "stride": draw(st.integers(1, 3))}
        if other == "PixelUnshuffle":
            return {"type": "PixelUnshuffle", "downscale_factor": 2}
        pads = [draw(st.integers(-2, 3)) for _ in range(2 * dims)]      # negative: F.pad crops (circular: first)
        layer = {"type": f"{other}{dims}d", "padding": pads}
        if other == "ConstantPad":
            layer["value"] = 0.5
        return layer
    if kind == "conv":
        k, d = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        layer = {"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": k, "dilation": d,
                 "stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, d * (k - 1)))}
        mode = draw(st.sampled_from(["zeros"] * 5 + ["reflect", "replicate", "circular"]))
        if mode != "zeros":     # the border units then read mirrored or wrapped positions (`Field.extent`)
            layer["padding_mode"] = mode
            if draw(st.integers(0, 3)) == 0:
                layer["padding"] = -draw(st.integers(1, 2))       # F.pad crops
        return layer
    if kind == "pool":
        k = draw(st.integers(1, 4))
        return {"type": f"{draw(st.sampled_from(['Max', 'Avg']))}Pool{dims}d", "kernel_size": k,
                "stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, k // 2)),
                "ceil_mode": draw(st.booleans())}
    if kind == "transposed":
        k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        return {"type": f"ConvTranspose{dims}d", "out_channels": 1, "kernel_size": k, "stride": s, "dilation": d,
                "padding": draw(st.integers(0, d * (k - 1))), "output_padding": draw(st.integers(0, max(s, d) - 1))}
    if kind == "upsample":
        mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear"]))
        layer: dict[str, Any] = {"type": "Upsample",
                                 "mode": mode if mode != "linear" else {1: "linear", 2: "bilinear"}[dims]}
        if draw(st.integers(0, 2)) == 0:
            layer["size"] = [draw(st.integers(2, 30 if dims == 1 else 16)) for _ in range(dims)]
        else:
            layer["scale_factor"] = draw(st.sampled_from([2, 3, 1.5, 2.5, 0.5, 0.75, 1.25]))
        if mode == "linear" and draw(st.booleans()):
            layer["align_corners"] = True
        return layer
    if kind == "shuffle":
        return {"type": "PixelShuffle", "upscale_factor": draw(st.integers(1, 2))}
    sizes = [draw(st.integers(1, max(1, n))) for n in spatial]
    return {"type": f"Adaptive{draw(st.sampled_from(['Avg', 'Max']))}Pool{dims}d", "output_size": sizes}


def _fits(shape: Sequence[int], dims: int) -> bool:
    return all(2 <= n <= (90 if dims == 1 else 28) for n in shape[1:])


def draw_chain(draw, dims: int, input_shape: Sequence[int], count: int, prefix: Sequence[dict] = (),
               softmax_last: bool = True) -> list[dict]:
    """Up to ``count`` layers PyTorch accepts. A softmax along a spatial axis only at the end (``softmax_last``):
    a later all-ones window over the whole axis would sum it to the constant 1 (no gradient to compare)."""
    layers = list(prefix)
    shape = tuple(input_shape)
    if layers:
        shape = tuple(builds(input_shape, layers).shape[1:])
    added = []
    for step in range(count):
        for _attempt in range(4):
            layer = draw_layer(draw, dims, shape)
            if layer["type"] == "Softmax" and layer["dim"] >= 2 and not (softmax_last and step == count - 1):
                continue
            if layer["type"] == "PixelShuffle":
                widen = {"type": f"Conv{dims}d", "out_channels": layer["upscale_factor"] ** 2, "kernel_size": 1}
                layer_pair = [widen, layer]
            else:
                layer_pair = [layer]
            out = builds(input_shape, [*layers, *layer_pair])
            if out is not None and _fits(out.shape[1:], dims):
                layers += layer_pair
                added += layer_pair
                shape = tuple(out.shape[1:])
                break
    return added


@st.composite
def chains(draw, dims: int):
    spatial = [draw(st.integers(8, 40 if dims == 1 else 14)) for _ in range(dims)]
    input_shape = (1, *spatial)
    layers = draw_chain(draw, dims, input_shape, draw(st.integers(1, 5 if dims == 1 else 3)))
    return input_shape, layers or [{"type": "ReLU"}]


@settings(max_examples=300, **SETTINGS)
@given(chains(1))
def test_random_chains_1d_every_unit(network):
    _, counts = check_all_layers(*network)
    event("extremes compared" if counts["extremes"] else "no interior period")


@settings(max_examples=60, **SETTINGS)
@given(chains(2))
def test_random_chains_2d_every_unit(network):
    check_all_layers(*network)


@st.composite
def graphs(draw, dims: int):
    """A trunk, two branches drawn freely, brought to one shape (the second ends in an Upsample or an
    adaptive pool to the first's size), merged by Add or Concat (channels; in 1-D sometimes the length), a tail."""
    spatial = [draw(st.integers(10, 40 if dims == 1 else 14)) for _ in range(dims)]
    input_shape = (1, *spatial)
    trunk = draw_chain(draw, dims, input_shape, draw(st.integers(0, 2)), softmax_last=False)
    for index, layer in enumerate(trunk):
        layer["name"] = f"t{index}"
    source = trunk[-1]["name"] if trunk else "input"
    ends, layers = [], list(trunk)
    for branch in ("a", "b"):
        path = draw_chain(draw, dims, input_shape, draw(st.integers(0, 2)), prefix=trunk, softmax_last=False)
        path = path or [{"type": "Identity"}]
        for index, layer in enumerate(path):
            layer["name"] = f"{branch}{index}"
        path[0]["from"] = source
        layers += path
        ends.append(path[-1]["name"])
    shape_a = tuple(_shape_of(input_shape, layers, ends[0]))
    shape_b = tuple(_shape_of(input_shape, layers, ends[1]))
    merge_kind = draw(st.sampled_from(["Add", "Concat", "Concat-length"] if dims == 1 else ["Add", "Concat"]))
    if merge_kind != "Concat-length" and shape_a[1:] != shape_b[1:]:
        fix = draw(st.sampled_from(["upsample", "adaptive"]))
        if fix == "upsample":
            mode = draw(st.sampled_from(["nearest", "linear"]))
            layer = {"type": "Upsample", "size": list(shape_a[1:]),
                     "mode": mode if mode == "nearest" else {1: "linear", 2: "bilinear"}[dims]}
            if mode == "linear" and draw(st.booleans()):
                layer["align_corners"] = True
        else:
            layer = {"type": f"AdaptiveAvgPool{dims}d", "output_size": list(shape_a[1:])}
        layers.append({**layer, "name": "fix", "from": ends[1]})
        ends[1] = "fix"
    if merge_kind == "Add" and shape_a[0] != shape_b[0]:
        merge_kind = "Concat"
    merged: dict[str, Any] = {"type": "Add" if merge_kind == "Add" else "Concat", "from": ends, "name": "merged"}
    if merge_kind == "Concat-length":
        merged["dim"] = -1
        if shape_a[0] != shape_b[0]:
            return input_shape, None
    layers.append(merged)
    if draw(st.booleans()):
        tail = draw_chain(draw, dims, input_shape, 1, prefix=layers)
        for index, layer in enumerate(tail):
            layer["name"] = f"tail{index}"
        layers += tail
    return input_shape, layers


def _shape_of(input_shape, layers, name):
    x = torch.ones((1, *input_shape), dtype=DTYPE)
    with torch.no_grad():
        outputs = oracle_forward(layers, x)
    return outputs[[layer.get("name") for layer in layers].index(name)].shape[1:]


@settings(max_examples=300, **SETTINGS)
@given(st.data())
def test_random_graphs_every_unit(data):
    dims = data.draw(st.sampled_from([1, 1, 1, 2]))
    input_shape, layers = data.draw(graphs(dims))
    if layers is None or builds(input_shape, layers) is None:
        event("merge refused")
        return
    summary, _ = check_all_layers(input_shape, layers)
    merged = summary.layer("merged").rf
    event("misaligned merge" if merged.misaligned else "aligned merge")
    # the paths end at the merge and start from the trunk
    assert merged.max_path[-1] == merged.min_path[-1] == "merged"
    assert {merged.max_path[-2], merged.min_path[-2]} <= set(summary.layer("merged").inputs)
    for axis in merged.axes:
        assert axis.path_size_min <= axis.size


# --------------------------------------------------------------------------- hand-picked

def test_unet_like_uneven_field_after_a_transposed_conv():
    """k=2 s=2 up-conv: units 2m and 2m+1 both read input m; a 3-tap conv after it reads up-conv units 2m-1..2m+1
    (inputs m-1, m) or 2m..2m+2 (m, m+1); a second one reads 2m-2..2m+2 or 2m-1..2m+3, inputs m-1..m+1 or
    m-1..m+1 again: size 3 everywhere, but units 2m and 2m+1 see the same inputs (a stride of 1/2 on average)."""
    layers = [{"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 2, "stride": 2},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1}]
    summary, counts = check_all_layers((1, 12), layers)
    up, first, second = (row.rf.axes[0] for row in summary.layers)
    assert (up.period, up.size, up.size_min, up.stride) == (2, 1, 1, Fraction(1, 2))
    assert [first.region(u) for u in range(4)] == [(-1, 0), (0, 1), (0, 1), (1, 2)]
    assert (second.size, second.size_min, second.period) == (3, 3, 2)
    assert [second.region(u) for u in range(4)] == [(-1, 1), (-1, 1), (0, 2), (0, 2)]
    assert not second.even_spacing
    assert counts["extremes"] >= 1


def test_transposed_conv_residues_without_taps():
    """k=1, s=2: odd outputs get the bias only (empty region, size_min 0); a k=1 s=2 conv that picks the odd
    ones (padding 0 after cropping 1) sees nothing at all."""
    layers = [{"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 1, "stride": 2, "output_padding": 1},
              {"type": "ConstantPad1d", "padding": [-1, 0], "value": 0.0}]
    summary = analyze((1, 6), layers[:1])
    (axis,) = summary.layers[0].rf.axes
    assert [axis.region(u) for u in range(4)] == [(0, 0), None, (1, 1), None]
    assert (axis.size, axis.size_min) == (1, 0)
    check_all_layers((1, 6), layers[:1])
    nothing = Field.identity(1).through([Reads.transposed(1, 2, 0)], [12]).through([Reads.window(1, 2, -1)], [6])
    assert [nothing.axes[0].region(u) for u in range(3)] == [None] * 3
    assert nothing.axes[0].size == 0


def test_bilinear_align_points_read_one_pixel():
    """size 7 from 4 with align_corners: x = u/2, on a pixel for even u (one tap), between two for odd u."""
    layers = [{"type": "Upsample", "size": 7, "mode": "linear", "align_corners": True}]
    summary, _ = check_all_layers((1, 4), layers)
    (axis,) = summary.layers[0].rf.axes
    assert [axis.region(u) for u in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]
    assert (axis.size, axis.size_min, axis.stride, axis.padding) == (2, 1, Fraction(1, 2), Fraction(1, 2))


def test_nearest_samples_read_what_pytorchs_float32_kernel_reads():
    """x2.3 on 31: output 69 samples 69/2.3 = 30 in exact arithmetic, but ATen's float32 kernel rounds 1/2.3 and
    reads 29 (the oracle gathers with torch's float32 kernel too); the stride stays exactly 10/23."""
    layers = [{"type": "Upsample", "scale_factor": 2.3}]
    summary, _ = check_all_layers((1, 31), layers)
    (axis,) = summary.layers[0].rf.axes
    assert axis.region(69) == (29, 29) and axis.region(68) == (29, 29) and axis.region(70) == (30, 30)
    assert axis.stride == Fraction(10, 23)


def test_softmax_along_an_axis_is_whole():
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1},
              {"type": "Softmax", "dim": -1}]
    summary = analyze((1, 12), layers)
    (axis,) = summary.layers[-1].rf.axes
    assert axis.whole and (axis.size, axis.stride) == (14, 0)
    assert axis.region(0) == axis.region(11) == (-1, 12)
    check_all_layers((1, 12), layers)


def test_softmax_along_an_axis_whose_input_cancels():
    """Found by hypothesis: after a wrap, AdaptiveAvgPool1d(2) over 9 positions weighs inputs 0 and 4 by 1/5 in both
    bins, so the softmax of the two is exactly invariant to them. The field is structural (every position of the
    axis), and so is the oracle (a sum along the axis stands for the softmax): it must reach inputs 0..7."""
    one = {"type": "Conv1d", "out_channels": 1, "kernel_size": 1}
    layers = [one, {"type": "CircularPad1d", "padding": [0, 1]}, one,
              {"type": "AdaptiveAvgPool1d", "output_size": [2]}, {"type": "Softmax", "dim": 2}]
    summary, counts = check_all_layers((1, 8), layers)
    assert summary.layers[-1].rf.extent([0]) == ((0, 7),) and counts["units"] > 0


def test_spatial_concat_regions_are_each_inputs():
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "name": "a", "from": "input"},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 5, "padding": 1, "name": "b", "from": "input"},
              {"type": "Concat", "from": ["a", "b"], "dim": -1, "name": "merged"},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1}]
    summary, _ = check_all_layers((1, 12), layers)
    (axis,) = summary.layer("merged").rf.axes
    assert axis.region(9) == (9, 11) and axis.region(10) == (-1, 3)
    assert summary.layer("merged").rf.misaligned


def test_misaligned_merge_paths_and_union():
    """Branches with strides 2 and 1 meet: flagged; unit u sees the union of [2u, 2u] and [u-2, u+2]."""
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "stride": 2, "name": "a", "from": "input"},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 5, "name": "b0", "from": "input"},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "name": "b", "from": "b0"},
              {"type": "Add", "from": ["a", "b"], "name": "merged"}]
    summary = analyze((1, 8), layers)
    rf = summary.layer("merged").rf
    assert rf.misaligned
    assert [rf.axes[0].region(u) for u in range(4)] == [(0, 4), (1, 5), (2, 6), (3, 7)]
    assert (rf.max_path, rf.min_path) == (("b0", "b", "merged"), ("a", "merged"))
    assert (rf.axes[0].path_size_max, rf.axes[0].path_size_min) == (5, 1)


@pytest.mark.parametrize("type_name", [c.type_name for c in convcalc.layers.layer_types()])
def test_every_layer_type_has_a_rule(type_name):
    """Every registered type's receptive_field is its own or a deliberate default (elementwise or merge)."""
    from convcalc.layers.base import Layer
    cls = convcalc.layers.lookup(type_name)
    own = cls.receptive_field is not Layer.receptive_field
    default_ok = cls.max_inputs != 1 or cls.__module__.endswith(("elementwise", "shuffle", "channel_pool")) or \
        type_name in ("Identity",)
    assert own or default_ok, type_name


def test_region_api_of_an_even_field():
    """Araujo's VGG-16 pool5 (r = 212, S = 32, P = 90): unit u sees [32u - 90, 32u + 121]."""
    layers = []
    for convs in (2, 2, 3, 3, 3):
        layers += [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1}] * convs
        layers.append({"type": "MaxPool2d", "kernel_size": 2, "stride": 2})
    rf = analyze((3, 224, 224), layers).layers[-1].rf
    assert rf.region((0, 3)) == ((-90, 121), (6, 217))
    assert all(axis.even_spacing and axis.period == 1 for axis in rf.axes)
    assert AxisField.even(212, 32, 90) == rf.axes[0]
    assert merge([rf, rf], [7, 7]).axes == rf.axes


def test_3d_uneven_chain():
    """3-D: a strided conv, a transposed conv with per-axis residues, trilinear resampling to a size."""
    layers = [{"type": "Conv3d", "out_channels": 1, "kernel_size": [3, 1, 2], "stride": [1, 2, 1], "padding": 1},
              {"type": "ConvTranspose3d", "out_channels": 1, "kernel_size": [2, 3, 1], "stride": [2, 2, 3]},
              {"type": "Upsample", "size": [9, 7, 11], "mode": "trilinear"}]
    summary, counts = check_all_layers((1, 5, 6, 7), layers)
    assert counts["units"] > 0
    assert summary.layers[1].rf.axes[2].size_min == 0          # k=1 < s=3: two residues in three get no input


def test_repeated_layers_that_share_their_border_stretches_keep_exact_extents():
    """Deep stacks of one layer (what a `repeat:` builds), where the layers' border stretches come out alike and are
    worked out once (`finite._KNOWN`), then layers that differ (other padding modes, strides), every unit of every
    layer against autograd; the known stretches were really reused."""
    from convcalc.algebra import finite

    finite._KNOWN.clear()
    same = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1}] * 8
    reflect = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "padding_mode": "reflect"}] * 4
    dilated = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "dilation": 2, "padding": 1}] * 5
    strided = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": 1},
               {"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 2, "stride": 2}] * 3
    for layers, shape in ((same + strided + same, (1, 11)), (same + reflect + same, (1, 9)), (dilated * 2, (1, 7)),
                          (strided + dilated + same, (1, 13))):
        _, counts = check_all_layers(shape, layers)
        assert counts["units"] > 0
    assert finite._KNOWN                    # the memo held entries (shared stretches were looked up)


# --------------------------------------------------------------------------- whole fields that miss input rows

@pytest.mark.parametrize("layers, input_shape", [
    # (8 - 3) mod 2 = 1: the last row and column reach no unit of the conv, hence none of the Linear's
    ([{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2}, {"type": "Flatten"},
      {"type": "Linear", "in_features": 24, "out_features": 3}], (1, 8, 9)),
    ([{"type": "Conv2d", "out_channels": 2, "kernel_size": [2, 3], "stride": 3},
      {"type": "AdaptiveAvgPool2d", "output_size": 1}], (1, 8, 10)),
    ([{"type": "Conv1d", "out_channels": 2, "kernel_size": 2, "stride": 4}, {"type": "Flatten"}], (1, 11)),
    ([{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1}, {"type": "Flatten"}], (1, 6, 5)),
    # a spatial concat keeps separate terms (each input's units along the height): the reach is their union
    ([{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "name": "a", "from": "input"},
      {"type": "Conv2d", "out_channels": 2, "kernel_size": [1, 2], "stride": [4, 2], "name": "b", "from": "input"},
      {"type": "Concat", "dim": 2, "from": ["a", "b"]}, {"type": "AdaptiveAvgPool2d", "output_size": 1}], (1, 10, 11)),
])
def test_a_whole_field_reaches_exactly_the_positions_its_units_depend_on(layers, input_shape):
    """Flatten/Linear/global pooling gather every unit before them, but not necessarily every input position:
    the field's ``reach`` is the hull of the gradient support of all its units together (a Linear's or global
    pool's units all depend on it alike; a Flatten's each on their own part)."""
    x = positive_input(input_shape)
    y = oracle_forward(layers, x)[-1]
    (grad,) = torch.autograd.grad(y.sum(), x)
    support = grad[0].abs().sum(dim=0) > 0                         # (*spatial)
    expected = []
    for axis in range(support.dim()):
        other = tuple(d for d in range(support.dim()) if d != axis)
        found = torch.nonzero(support.any(dim=other) if other else support).flatten().tolist()
        expected.append((min(found), max(found)))
    rf = analyze(input_shape, layers).layers[-1].rf
    assert rf.whole and rf.reach == tuple(expected)
    assert rf.partial == (tuple(expected) != tuple((0, n - 1) for n in input_shape[1:]))


@pytest.mark.parametrize("input_shape, layers", [
    ((2, 6, 9), [{"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "stride": [1, 2]},
                 {"type": "Linear", "in_features": 4, "out_features": 5}]),
    ((2, 10), [{"type": "Conv1d", "out_channels": 3, "kernel_size": 3, "stride": 2},
               {"type": "Linear", "in_features": 4, "out_features": 2}]),
    ((1, 5, 4, 7), [{"type": "Conv3d", "out_channels": 2, "kernel_size": [3, 1, 3], "padding": [1, 0, 0]},
                    {"type": "Linear", "in_features": 5, "out_features": 3}]),
])
def test_linear_on_a_spatial_input_sees_its_whole_last_axis_only(input_shape, layers):
    """torch.nn.Linear acts on the last axis: each output unit reads that whole axis and keeps the window of the
    other axes. Every unit's extent against autograd's support."""
    x = positive_input(input_shape)
    y = oracle_forward(layers, x)[-1]
    rf = analyze(input_shape, layers).layers[-1].rf
    assert not rf.whole and rf.axes[-1].whole
    for unit in product(*(range(n) for n in y.shape[2:])):
        (grad,) = torch.autograd.grad(y[(0, slice(None), *unit)].sum(), x, retain_graph=True)
        support = grad[0].abs().sum(dim=0) > 0
        measured = []
        for axis in range(support.dim()):
            other = tuple(d for d in range(support.dim()) if d != axis)
            found = torch.nonzero(support.any(dim=other) if other else support).flatten().tolist()
            measured.append((min(found), max(found)))
        assert rf.extent(unit) == tuple(measured), unit
