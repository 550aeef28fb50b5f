"""``convcalc rf``: growth rows, exact unit regions, the effective receptive field, pictures, and the command.

Oracles, none taken from convcalc's own output:

* regions: PyTorch autograd on an all-ones copy of the network (positive input, so the gradient of a unit is
  non-zero exactly where the unit reads the input: `test_receptive_field.supports`); TensorFlow's SAME padding is
  built here from TensorFlow's formula (pad_total = max((ceil(I/s) - 1)*s + k_eff - I, 0), pad_before =
  pad_total // 2) with ``F.pad``; and Araujo et al.'s closed form (r = 1 + sum (k_l - 1) prod_{i<l} s_i,
  S = prod s_l, P = sum p_l prod_{i<l} s_i; unit u sees [u*S - P, u*S - P + r - 1]) computed from the layer list;
* ERF: Luo et al. (2016): n uniform k-wide linear convolutions give the n-fold convolution of a uniform k-point
  distribution, whose variance is n(k^2 - 1)/12 per axis; sides worked out by hand;
* pictures: the pixel geometry stated in `convcalc.report.drawing` applied to the Araujo region.
"""

from __future__ import annotations

import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_receptive_field import supports  # noqa: E402

import convcalc  # noqa: E402
from convcalc.cli import app  # noqa: E402
from convcalc.report.canvas import GEOMETRY_KEY  # noqa: E402
from convcalc.report.drawing import BOX_COLOUR, PALETTE, STRIP, WINDOW_COLOUR  # noqa: E402
from convcalc.proof.erf import gradient_mass, side_holding, statistics  # noqa: E402
from convcalc.errors import ConvcalcError  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.analysis.regions import growth, parse_units, unit_region  # noqa: E402

DTYPE = torch.float64
RUNNER = CliRunner()


def summary_of(input_shape, layers):
    return convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": layers}))


def write_spec(tmp_path: Path, input_shape, layers, name="net") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "input": list(input_shape), "layers": layers}))
    return path


# --------------------------------------------------------------------------- an independent torch copy

def tf_same_pads(length: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (tf.nn.conv2d docs): before, after."""
    out = -(-length // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - length, 0)
    return total // 2, total - total // 2


def torch_chain(x: torch.Tensor, layers: list[dict]) -> torch.Tensor:
    """Conv and pool layers (per-axis args, int or 'tf_same' padding) with all-ones weights; a max pool becomes
    an all-ones window sum over zero padding (same support)."""
    dims = x.dim() - 2
    for layer in layers:
        k = layer["kernel_size"]
        k = list(k) if isinstance(k, list) else [k] * dims
        s = layer.get("stride", 1 if layer["type"].startswith("Conv") else k)
        s = list(s) if isinstance(s, list) else [s] * dims
        d = layer.get("dilation", 1)
        d = list(d) if isinstance(d, list) else [d] * dims
        padding = layer.get("padding", 0)
        if padding == "tf_same":
            pads = [tf_same_pads(x.shape[2 + a], k[a], s[a], d[a]) for a in range(dims)]
        else:
            p = list(padding) if isinstance(padding, list) else [padding] * dims
            pads = [(v, v) for v in p]
        flat = [v for pair in reversed(pads) for v in pair]
        channels = x.shape[1]
        out_channels = layer.get("out_channels", channels)
        groups = 1 if layer["type"].startswith("Conv") else channels
        weight = torch.ones(out_channels, channels // groups, *k, dtype=DTYPE)
        x = getattr(F, f"conv{dims}d")(F.pad(x, flat), weight, stride=s, dilation=d, groups=groups)
    return x


def araujo(layers: list[dict], axis: int, lengths: list[int]) -> tuple[int, int, int]:
    """(r, S, P) along ``axis`` from the closed form, with each layer's left pad (TF SAME: from its input length)."""
    r, jump, P = 1, 1, 0
    length = lengths[axis]
    for layer in layers:
        def at(name, default):
            value = layer.get(name, default)
            return value[axis] if isinstance(value, list) else value
        k, d = at("kernel_size", None), at("dilation", 1)
        s = at("stride", 1 if layer["type"].startswith("Conv") else k)
        padding = layer.get("padding", 0)
        lo, hi = tf_same_pads(length, k, s, d) if padding == "tf_same" else (at("padding", 0),) * 2
        k_eff = d * (k - 1) + 1
        r += (k_eff - 1) * jump
        P += lo * jump
        jump *= s
        length = (length + lo + hi - k_eff) // s + 1
    return r, jump, P


def check_every_unit(input_shape, layers):
    """Every unit of the last layer: region == Araujo's interval, reads == the gradient's extent, padding count ==
    the interval's positions outside the input."""
    summary = summary_of(input_shape, layers)
    x = (torch.rand((1, *input_shape), generator=torch.Generator().manual_seed(1), dtype=DTYPE) + 0.5)
    x.requires_grad_(True)
    y = torch_chain(x, layers)
    assert tuple(y.shape[1:]) == tuple(summary.output_shape)
    lengths = list(input_shape[1:])
    closed = [araujo(layers, a, lengths) for a in range(len(lengths))]
    grid = list(np.ndindex(*y.shape[2:]))
    for index, found in zip(grid, supports(y, x, [list(i) for i in grid])):
        region = unit_region(summary, summary.output, index)
        for axis, (info, positions, (r, S, P), length) in enumerate(zip(region.axes, found, closed, lengths)):
            a, b = index[axis] * S - P, index[axis] * S - P + r - 1
            what = f"unit {index} axis {axis}: {info} vs Araujo [{a}, {b}], support {positions}"
            assert (info.first, info.last) == (a, b), what
            assert info.extent == ((positions[0], positions[-1]) if positions else None), what
            assert info.in_padding == max(0, -a) + max(0, b - (length - 1)), what
            assert info.padding_fraction == Fraction(info.in_padding, r), what
            assert info.centre == Fraction(a + b, 2), what
            if info.clipped is not None:
                assert info.clipped == (max(a, 0), min(b, length - 1)), what
    return summary


TF_SAME = [
    {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": "tf_same"},
    {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": "tf_same"},
    {"type": "Conv2d", "out_channels": 1, "kernel_size": [2, 3], "stride": [1, 2], "padding": "tf_same"},
]


def test_tf_same_regions_depend_on_the_input_size_exactly():
    even = check_every_unit((1, 16, 16), TF_SAME)
    odd = check_every_unit((1, 17, 17), TF_SAME)
    # TF pads 0 before at 16 and 1 before at 17 in the first layer: the same unit sees different inputs
    assert tf_same_pads(16, 3, 2) == (0, 1) and tf_same_pads(17, 3, 2) == (1, 1)
    first_even = unit_region(even, even.output, (0, 0)).axes[0].first
    first_odd = unit_region(odd, odd.output, (0, 0)).axes[0].first
    assert first_even != first_odd


@pytest.mark.parametrize("input_shape, layers", [
    ((1, 23), [{"type": "Conv1d", "out_channels": 2, "kernel_size": 5, "stride": 2, "padding": 2},
               {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "dilation": 2, "padding": 1}]),
    ((1, 13, 11), [{"type": "Conv2d", "out_channels": 1, "kernel_size": [3, 5], "stride": [1, 2], "padding": [1, 2]},
                   {"type": "MaxPool2d", "kernel_size": 2},
                   {"type": "Conv2d", "out_channels": 1, "kernel_size": [1, 3], "padding": [0, 3]}]),
    ((1, 7, 8, 9), [{"type": "Conv3d", "out_channels": 1, "kernel_size": [1, 3, 5], "stride": [1, 2, 2],
                     "padding": [0, 1, 2]},
                    {"type": "Conv3d", "out_channels": 1, "kernel_size": 3, "padding": 1}]),
])
def test_every_unit_region_matches_autograd_and_araujo(input_shape, layers):
    check_every_unit(input_shape, layers)


@st.composite
def window_chains(draw):
    """1-D or 2-D chains of convs and max pools, integer or TensorFlow SAME padding, every output length >= 1."""
    dims = draw(st.sampled_from([1, 2]))
    lengths = [draw(st.integers(6, 18)) for _ in range(dims)]
    layers, current = [], list(lengths)
    for _ in range(draw(st.integers(1, 3))):
        conv = draw(st.booleans())
        k = draw(st.integers(1, 4) if conv else st.integers(2, 3))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2)) if conv else 1
        k_eff = d * (k - 1) + 1
        padding = draw(st.sampled_from(["tf_same", draw(st.integers(0, k_eff // 2 if conv else k // 2))]))
        layer = {"type": f"{'Conv' if conv else 'MaxPool'}{dims}d", "kernel_size": k, "stride": s,
                 "padding": padding}
        if conv:
            layer.update(out_channels=1, dilation=d)
        pads = [tf_same_pads(n, k, s, d) if padding == "tf_same" else (padding, padding) for n in current]
        current = [(n + lo + hi - k_eff) // s + 1 for n, (lo, hi) in zip(current, pads)]
        if min(current) < 1:
            break
        layers.append(layer)
    if not layers:
        layers = [{"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": 1}]
    return (1, *lengths), layers


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window_chains())
def test_random_chains_every_unit_region_is_exact(chain):
    check_every_unit(*chain)


def test_reflect_padding_positions_are_labelled_mirrored():
    # conv1: reflect padding 2, k=3: its unit v reads input v-2..v; conv2: zero padding 1, k=3: its unit 0 reads
    # conv1 units -1 (zero padding: input -3..-1 stand for zeros), 0 (input -2..0: -2, -1 mirrored onto 2, 1),
    # and 1 (input -1..1). So -3 is zero only; -2 and -1 are mirrored on one path and zero on another.
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 2, "padding_mode": "reflect"},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1}]
    summary = summary_of((1, 10), layers)
    (axis,) = unit_region(summary, summary.output, (0,)).axes
    assert (axis.first, axis.last, axis.in_padding) == (-3, 1, 3)
    assert [(r.first, r.last, r.fill) for r in axis.padding] == [(-3, -3, "zeros"), (-2, -1, "reflect+zeros")]
    assert axis.extent == (0, 2)                     # -2 -> 2 and -1 -> 1 are real reads
    x = torch.ones((1, 1, 10), dtype=DTYPE, requires_grad=True)
    y = F.conv1d(F.conv1d(F.pad(x, (2, 2), mode="reflect"), torch.ones(1, 1, 3, dtype=DTYPE)),
                 torch.ones(1, 1, 3, dtype=DTYPE), padding=1)
    (found,) = supports(y, x, [[0]])
    assert (found[0][0], found[0][-1]) == axis.extent


def test_circular_padding_wraps():
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 5, "padding": 2, "padding_mode": "circular"}]
    summary = summary_of((1, 8), layers)
    (axis,) = unit_region(summary, summary.output, (7,)).axes
    assert (axis.first, axis.last) == (5, 9)
    assert [(r.first, r.last, r.fill) for r in axis.padding] == [(8, 9, "circular")]
    assert axis.extent == (0, 7)                     # 8, 9 wrap to 0, 1: the hull spans the whole input
    assert "wrapped" in axis.padding[0].label


def test_merged_padding_modes_and_unread_positions():
    # Add of a reflect-padded and a zero-padded 3-wide conv: unit 0 reads index -1 as a mirror on one branch and
    # as a zero on the other
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "padding_mode": "reflect",
               "name": "a"},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "from": "input", "name": "b"},
              {"type": "Add", "from": ["a", "b"]}]
    summary = summary_of((1, 6), layers)
    (axis,) = unit_region(summary, summary.output, (0,)).axes
    assert [(r.first, r.last, r.fill) for r in axis.padding] == [(-1, -1, "reflect+zeros")]
    # a 1-wide stride-2 conv, then a 3-wide conv padded by 1: unit 0 reads the first layer's units -1, 0, 1, that
    # is input -2 (zero padding), 0 and 2; -1 lies in the region but nothing reads it
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "stride": 2},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1}]
    summary = summary_of((1, 8), layers)
    (axis,) = unit_region(summary, summary.output, (0,)).axes
    assert (axis.first, axis.last) == (-2, 2)
    assert [(r.first, r.last, r.fill) for r in axis.padding] == [(-2, -2, "zeros"), (-1, -1, "")]
    assert axis.padding[1].label.startswith("not read")


# --------------------------------------------------------------------------- growth

def test_growth_rows_follow_the_closed_form_per_axis():
    layers = [{"type": "Conv2d", "out_channels": 2, "kernel_size": [3, 5], "stride": [1, 2], "padding": [1, 2]},
              {"type": "MaxPool2d", "kernel_size": [2, 3], "stride": [2, 3]},
              {"type": "Conv2d", "out_channels": 2, "kernel_size": [3, 1], "dilation": [2, 1]}]
    input_shape = (1, 40, 60)
    rows = growth(summary_of(input_shape, layers))
    for count, row in enumerate(rows, start=1):
        for axis in range(2):
            r, S, _ = araujo(layers[:count], axis, [40, 60])
            assert row.size[axis] == row.size_min[axis] == r
            assert row.stride[axis] == S
            assert row.coverage[axis] == Fraction(min(r, input_shape[1 + axis]), input_shape[1 + axis])


def test_growth_marks_merges_and_misalignment():
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "name": "wide"},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "padding": [[1, 0]], "from": "input",
               "name": "shifted"},
              {"type": "Add", "from": ["wide", "shifted"], "name": "sum"}]
    rows = {row.name: row for row in growth(summary_of((1, 9), layers))}
    # wide: unit 0 sees [-1, 1] (centre 0); shifted: [-1, 0] (centre -1/2): same stride, different centres
    assert rows["sum"].merge and rows["sum"].max_input == "wide" and rows["sum"].misaligned
    assert not rows["wide"].merge and not rows["wide"].misaligned


def test_unit_parsing():
    summary = summary_of((1, 12, 10), [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3}])
    name = summary.output
    assert parse_units("3,-1", summary, name) == (3, 7)
    with pytest.raises(ConvcalcError, match=r"index 10 on axis 0 is out of range: layer 'conv2d_1' has 10 units"
                                            r" there \(valid: -10\.\.9\)"):
        parse_units("10,0", summary, name)
    with pytest.raises(ConvcalcError, match="gives 1 index"):
        parse_units("3", summary, name)
    with pytest.raises(ConvcalcError, match="must be integers separated by commas"):
        parse_units("3;4", summary, name)


# --------------------------------------------------------------------------- ERF: Luo et al.

def uniform_stack(n: int, k: int, dims: int, length: int):
    layers = [{"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": k, "bias": False} for _ in range(n)]
    graph = convcalc.build_graph(convcalc.spec_from_dict({"name": "u", "input": [1] + [length] * dims,
                                                          "layers": layers}))
    summary = convcalc.analyze(graph)
    state = {row.name: {"weight": np.full(row.weights["weight"], 1.0 / k ** dims)} for row in summary.layers}
    return graph, summary, Network(graph, state=state, dtype="float64")


@pytest.mark.parametrize("n, k", [(1, 3), (2, 3), (3, 5), (4, 2), (5, 3)])
def test_uniform_linear_stack_has_luo_variance(n, k):
    graph, summary, network = uniform_stack(n, k, 2, n * (k - 1) + 5)
    units = tuple(n_ // 2 for n_ in summary.output_shape[1:])
    x = np.random.default_rng(0).standard_normal(graph.input_shape)
    mass = gradient_mass(network, x, summary.output, units)
    axes, inside = statistics(mass, unit_region(summary, summary.output, units))
    for axis in axes:
        assert axis.variance == pytest.approx(n * (k * k - 1) / 12, rel=1e-9)
        assert axis.theoretical_size == n * (k - 1) + 1
    assert inside == pytest.approx(1.0)


def test_erf_side_by_hand():
    assert side_holding(np.full(5, 0.2), 2.0, 0.95) == 5                    # a box: all five
    assert side_holding(np.array([1, 2, 3, 2, 1]) / 9, 2.0, 0.95) == 5     # 7/9 in the middle three
    assert side_holding(np.array([0.01, 0.02, 0.94, 0.02, 0.01]), 2.0, 0.95) == 3
    assert side_holding(np.array([0.0, 0.5, 0.5, 0.0]), 1.5, 0.95) == 2   # half-integer centre: even windows


# --------------------------------------------------------------------------- the command and its pictures

NET_2D = [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1},
          {"type": "ReLU"},
          {"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1, "name": "c2"},
          {"type": "ReLU"},
          {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1, "name": "c3"},
          {"type": "Flatten"},
          {"type": "Linear", "out_features": 4}]


def geometry(path) -> dict:
    """Where a picture's plot lies (its PNG text chunk, convcalc.report.drawing)."""
    with Image.open(path) as image:
        return json.loads(image.text[GEOMETRY_KEY])


def outline(picture: np.ndarray, box, plot: dict) -> np.ndarray:
    """The pixels the outline of ``box`` (rows, columns) occupies, per convcalc.report.drawing's geometry: the
    outermost 2 pixels (1 when zoom < 4) of the blocks it spans, the plot's top-left block being ``first``."""
    (r0, r1), (c0, c1) = box
    zoom, (first_r, first_c), x, y = plot["zoom"], plot["first"], plot["x"], plot["y"]
    top, bottom = y + (r0 - first_r) * zoom, y + (r1 - first_r + 1) * zoom - 1
    left, right = x + (c0 - first_c) * zoom, x + (c1 - first_c + 1) * zoom - 1
    width = 2 if zoom >= 4 else 1
    mask = np.zeros(picture.shape[:2], dtype=bool)
    mask[top:bottom + 1, left:right + 1] = True
    mask[top + width:bottom + 1 - width, left + width:right + 1 - width] = False
    return mask


def plot_area(picture: np.ndarray, plot: dict) -> np.ndarray:
    """The plot's pixels."""
    mask = np.zeros(picture.shape[:2], dtype=bool)
    rows, columns = (l - f + 1 for f, l in zip(plot["first"], plot["last"]))
    mask[plot["y"]:plot["y"] + rows * plot["zoom"], plot["x"]:plot["x"] + columns * plot["zoom"]] = True
    return mask


def test_growth_command_table_and_json(tmp_path):
    spec = write_spec(tmp_path, (1, 20, 20), NET_2D)
    result = RUNNER.invoke(app, ["rf", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema_version"] == 2 and data["layer"] == "c3"           # the output sees the whole input
    assert [row["size"] for row in data["growth"]] == [[3, 3], [3, 3], [5, 5], [5, 5], [9, 9]]
    assert data["growth"][2]["stride_text"] == ["2", "2"]
    table = RUNNER.invoke(app, ["rf", str(spec)])
    assert table.exit_code == 0 and "receptive-field growth" in table.stdout and "c2" in table.stdout


def test_region_command(tmp_path):
    spec = write_spec(tmp_path, (1, 20, 20), NET_2D)
    result = RUNNER.invoke(app, ["rf", str(spec), "--layer", "c2", "--unit", "0,-1", "--format", "json"])
    assert result.exit_code == 0, result.output
    region = json.loads(result.stdout)["region"]
    # c2 (r=5, S=2, P=2): unit 0 sees [-2, 2], unit 9 sees [16, 20] on a 20-long axis
    assert [a["region"] for a in region["axes"]] == [[-2, 2], [16, 20]]
    assert [a["in_padding"] for a in region["axes"]] == [2, 1]
    assert region["padding_fraction"] == pytest.approx(1 - (3 * 4) / 25)


@pytest.mark.parametrize("args, message", [
    (["--unit", "1"], "error: --unit '1' gives 1 index(es), but layer 'c3' has 2 spatial axes (output [2, 10, 10])"),
    (["--unit", "0,10"], "error: --unit '0,10': index 10 on axis 1 is out of range: layer 'c3' has 10 units there"
                         " (valid: -10..9)"),
    (["--layer", "linear_1", "--unit", "0"], "error: every unit of layer 'linear_1' sees the whole input (its output"
                                             " [4] has no spatial axes left); choose a layer with spatial axes, e.g."
                                             " 'c3'"),
    (["--layer", "c22"], "error: no layer 'c22' in 'net'; did you mean 'c2'? valid: c2, c3, conv2d_1, flatten_1,"
                        " linear_1, relu_1, relu_2\n"),
])
def test_command_errors(tmp_path, args, message):
    spec = write_spec(tmp_path, (1, 20, 20), NET_2D)
    result = RUNNER.invoke(app, ["rf", str(spec), *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr


def test_erf_command_writes_the_heatmap_with_the_theoretical_box(tmp_path):
    spec = write_spec(tmp_path, (1, 20, 20), NET_2D)
    picture_path = tmp_path / "erf.png"
    result = RUNNER.invoke(app, ["rf", str(spec), "--erf", str(picture_path), "--samples", "3", "--unit", "2,7",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    erf = json.loads(result.stdout)["erf"]
    picture = np.asarray(Image.open(picture_path).convert("RGB"))
    plot = geometry(picture_path)
    # c3 (r = 3 + 2 + 2*2 = 9, S = 2, P = 1 + 1 + 1*2 = 4): unit (2, 7) sees [0, 8] x [10, 18]; the plot shows
    # it with a margin of 4 (half its size), within the 20x20 input
    box = ((0, 8), (10, 18))
    assert plot["first"] == [0, 6] and plot["last"] == [12, 19] and plot["zoom"] == math.ceil(320 / 14)
    assert [a["inside"] for a in erf["axes"]] == [list(b) for b in box]
    mask = outline(picture, box, plot)
    on_box = picture[mask]
    cyan, green = (on_box == BOX_COLOUR).all(axis=-1), (on_box == WINDOW_COLOUR).all(axis=-1)
    assert (cyan | green).all() and cyan.mean() > 0.3     # the 95 % window's dashes may lie on it
    assert not (picture[plot_area(picture, plot) & ~mask] == BOX_COLOUR).all(axis=-1).any()
    assert erf["inside_theoretical"] == pytest.approx(1.0)
    assert all(a["side"] <= 9 for a in erf["axes"])


def test_overlay_command_draws_the_regions(tmp_path):
    spec = write_spec(tmp_path, (3, 20, 20), [{**NET_2D[0], "out_channels": 2}, *NET_2D[1:]])
    picture_path = tmp_path / "overlay.png"
    result = RUNNER.invoke(app, ["rf", str(spec), "--overlay", str(picture_path)])
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(picture_path).convert("RGB"))
    plot = geometry(picture_path)
    assert plot["first"] == [0, 0] and plot["last"] == [19, 19] and plot["zoom"] == math.ceil(320 / 20)
    # default units of c3 (10x10; r=9, S=2, P=4): the centre (5, 5) sees [6, 14]^2, the corner (0, 0) [-4, 4]^2,
    # inside the input [0, 4]^2; the units' centres (10.5 and 0.5) are marked with crosses, which may cross them
    for box, colour in (((6, 14), (6, 14)), PALETTE[0]), (((0, 4), (0, 4)), PALETTE[1]):
        on_box = (picture[outline(picture, box, plot)] == colour).all(axis=-1)
        assert on_box.mean() > 0.9


def test_one_and_three_dimensional_pictures(tmp_path):
    spec1 = write_spec(tmp_path, (1, 40), [{"type": "Conv1d", "out_channels": 1, "kernel_size": 5, "stride": 2}])
    picture_path = tmp_path / "erf1.png"
    result = RUNNER.invoke(app, ["rf", str(spec1), "--erf", str(picture_path), "--samples", "2"])
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(picture_path).convert("RGB"))
    plot = geometry(picture_path)
    # unit 9 of 18 (n // 2) sees [18, 22]: shown with a margin of 3, [15, 25], 11 positions
    assert plot["first"] == [15] and plot["last"] == [25]
    zoom, x, y = plot["zoom"], plot["x"], plot["y"]
    assert zoom == math.ceil(320 / 11)
    strip = picture[y:y + STRIP]
    left, right = x + (18 - 15) * zoom, x + (23 - 15) * zoom - 1      # vertical edges of the span
    for column in (left, right):            # cyan, or where the 95 % window coincides, its green dashes
        edge = strip[:, column]
        assert ((edge == BOX_COLOUR).all(axis=-1) | (edge == WINDOW_COLOUR).all(axis=-1)).all()
        assert (edge == BOX_COLOUR).all(axis=-1).any()
    spec3 = write_spec(tmp_path, (1, 5, 12, 12), [{"type": "Conv3d", "out_channels": 1, "kernel_size": 3}], "v")
    picture_path = tmp_path / "overlay3.png"
    result = RUNNER.invoke(app, ["rf", str(spec3), "--overlay", str(picture_path), "--unit", "1,2,3"])
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(picture_path).convert("RGB"))
    plot = geometry(picture_path)
    assert plot["zoom"] == math.ceil(320 / 12) and plot["depth"] == 2      # the slice through the region's centre
    mask = outline(picture, ((2, 4), (3, 5)), plot)
    assert (picture[mask] == PALETTE[0]).all()


def test_verify_is_wired_to_the_checks(tmp_path, monkeypatch):
    pytest.importorskip("convcalc.report.rf_checks")
    import convcalc.proof.verify as verify_rf

    spec = write_spec(tmp_path, (1, 20, 20), NET_2D)
    result = RUNNER.invoke(app, ["rf", str(spec), "--verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "verify" in json.loads(result.stdout)
    real = verify_rf.verify_fields

    def one_wrong(network, layers=None, **kwargs):
        checks = real(network, layers, **kwargs)
        return (checks[0].__class__(**{**checks[0].__dict__, "ok": False}), *checks[1:])

    monkeypatch.setattr(verify_rf, "verify_fields", one_wrong)
    result = RUNNER.invoke(app, ["rf", str(spec), "--verify", "--layer", "c2"])
    assert result.exit_code == 1, result.output


def test_a_global_pool_keeps_its_axes_but_not_regions(tmp_path):
    """A global pool's [C, 1, 1] output still has spatial axes (of length 1): the refusal must not say otherwise."""
    spec = write_spec(tmp_path, (1, 20, 20), NET_2D[:5] + [{"type": "AdaptiveAvgPool2d", "output_size": 1,
                                                             "name": "g"}])
    result = RUNNER.invoke(app, ["rf", str(spec), "--layer", "g", "--unit", "0,0"])
    assert result.exit_code == 2
    assert result.stderr == ("error: every unit of layer 'g' sees the whole input (its output [2, 1, 1] comes after"
                             " a layer that reads every position: global pooling, a Linear, a softmax over an axis);"
                             " choose a layer whose units see part of it, e.g. 'c3'\n"), result.stderr
