"""ConvTranspose1d/2d/3d beyond the registry-wide cross-checks (test_torch_crosscheck, test_executor_torch).

* table-driven shapes and errors from semantics.md §3.3/§9 and PyTorch, messages pinned;
* ``output_size`` (torch's forward argument) and its range rule; refusing it together with output_padding;
* the reference module's signature is torch's plus ``output_size`` (so the argument/default check is torch's);
* MACs from the published FlopCounterMode rule (input positions x C_in x C_out/g x prod(k));
* BatchNorm folding into a transposed conv, against torch, through `convcalc.execution.network.Network`;
* the receptive-field rule against the autograd oracle of test_receptive_field: a transposed conv after any
  chain of integer-stride convs and pools, per output unit: extent between size_min and size, both attained,
  centre near u*S - P + (size-1)/2.
"""

from __future__ import annotations

import inspect
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_torch_crosscheck import REFERENCE_MODULES  # noqa: E402  (imports transposed_cases too)
from test_executor_torch import GraphBuilder, check_network  # noqa: E402
from test_receptive_field import analyze, builds, oracle_forward, positive_input, supports  # noqa: E402

import convcalc  # noqa: E402
from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.spec.graph import INPUT  # noqa: E402
from convcalc.layers import lookup  # noqa: E402
from convcalc.layers.transposed import transposed_reach  # noqa: E402

torch.set_num_threads(1)


def infer(dims: int, args: dict[str, Any], shape: tuple[int, ...]):
    return lookup(f"ConvTranspose{dims}d").from_args(args).infer([shape])


def refused(dims: int, args: dict[str, Any], shape: tuple[int, ...]) -> LayerArgError:
    with pytest.raises(LayerArgError) as info:
        infer(dims, args, shape)
    return info.value


# --------------------------------------------------------------------------- shapes (semantics §3.3, §9)

@pytest.mark.parametrize("i, k, s, p, d, op, o", [
    (3, 3, 3, 1, 1, 0, 7),      # §9: default 7
    (4, 3, 1, 0, 2, 1, 9),      # §9: s=1, d=2, op=1 is legal (op < d)
    (4, 3, 2, 1, 1, 1, 8),      # the usual "x2" up-sampler
    (32, 4, 2, 1, 1, 0, 64),    # DCGAN's stages
    (1, 4, 1, 0, 1, 0, 4),      # DCGAN's first stage: 1x1 -> 4x4
    (28, 2, 2, 0, 1, 0, 56),    # U-Net's up-conv
    (2, 1, 3, 0, 1, 2, 6),      # output_padding past the full output (2 > p): bias-only positions
    (5, 1, 1, 0, 1, 0, 5),
])
def test_output_length(i, k, s, p, d, op, o):
    args = {"out_channels": 2, "kernel_size": k, "stride": s, "padding": p, "dilation": d, "output_padding": op}
    assert infer(1, args, (3, i)).out_shape == (2, o)
    assert tuple(torch.nn.ConvTranspose1d(3, 2, k, s, p, op, dilation=d)(torch.zeros(1, 3, i)).shape) == (1, 2, o)


def test_output_padding_must_be_smaller_than_stride_or_dilation():
    error = refused(1, {"out_channels": 1, "kernel_size": 3, "stride": 2, "output_padding": 2}, (1, 4))
    assert error.message == "output_padding 2 must be smaller than either the stride 2 or the dilation 1"
    assert error.arg == "output_padding"
    error = refused(2, {"out_channels": 1, "kernel_size": 3, "output_padding": [0, 1]}, (1, 4, 4))
    assert error.message == ("output_padding 1 along the width must be smaller than either the stride 1 or the"
                             " dilation 1")


def test_output_too_small():
    error = refused(1, {"out_channels": 1, "kernel_size": 2, "padding": 1}, (1, 1))
    assert error.message == ("the output would be 0 long: (input 1 - 1) x stride 1 - 2 x padding 1"
                             " + (kernel_size 2 - 1) + output_padding 0 + 1 = 0; it must be at least 1")
    assert error.arg == "padding"
    error = refused(2, {"out_channels": 1, "kernel_size": 3, "dilation": 2, "padding": [0, 3]}, (1, 1, 1))
    assert error.message == ("the output would be -1 long along the width: (input 1 - 1) x stride 1 - 2 x padding 3"
                             " + dilation 2 x (kernel_size 3 - 1) + output_padding 0 + 1 = -1; it must be at least 1")


@pytest.mark.parametrize("args, message", [
    ({"padding": -1}, "padding must be at least 0, got -1"),
    ({"output_padding": -1}, "output_padding must be at least 0, got -1"),
    ({"padding": "same"}, "padding must be an integer, got the string 'same'"),
    ({"padding_mode": "reflect"}, "padding_mode must be one of 'zeros', got the string 'reflect'"),
    ({"groups": 2}, "out_channels 3 is not divisible by groups 2"),
    ({"output_size": [5, 5], "output_padding": 1},
     "give output_size or output_padding, not both (PyTorch ignores output_padding when output_size is given)"),
])
def test_argument_errors(args, message):
    with pytest.raises(LayerArgError) as info:
        lookup("ConvTranspose2d").from_args({"out_channels": 3, "kernel_size": 3, **args})
    assert info.value.message == message


def test_channel_errors():
    assert refused(2, {"out_channels": 2, "kernel_size": 1, "in_channels": 3}, (4, 2, 2)).message == \
        "in_channels is 3 but the input has 4 channels"
    assert refused(2, {"out_channels": 2, "kernel_size": 1, "groups": 2}, (3, 2, 2)).message == \
        "the input's 3 channels are not divisible by groups 2"
    assert refused(2, {"out_channels": 2, "kernel_size": 1}, (3, 2)).message == \
        "ConvTranspose2d expects a [C, H, W] input, got [3, 2]"


# --------------------------------------------------------------------------- output_size

@pytest.mark.parametrize("wanted, ok", [(6, False), (7, True), (8, True), (9, True), (10, False)])
def test_output_size_range(wanted, ok):
    """§9: i=3, k=3, s=3, p=1 -> valid output sizes 7..9 (output_padding 0..2)."""
    args = {"out_channels": 1, "kernel_size": 3, "stride": 3, "padding": 1, "output_size": [wanted]}
    module = torch.nn.ConvTranspose1d(1, 1, 3, 3, 1)
    if ok:
        assert infer(1, args, (1, 3)).out_shape == (1, wanted)
        assert module(torch.zeros(1, 1, 3), output_size=[wanted]).shape[-1] == wanted
    else:
        error = refused(1, args, (1, 3))
        assert error.message == (f"output_size {wanted} is not reachable: an input of 3 gives 7 to 9"
                                 " (output_padding 0 to 2)")
        assert error.arg == "output_size"
        with pytest.raises(ValueError):
            module(torch.zeros(1, 1, 3), output_size=[wanted])


def test_output_size_ignores_the_dilation_rule():
    """torch's output_size check allows output_padding up to s-1 only, even where dilation would allow more."""
    assert infer(1, {"out_channels": 1, "kernel_size": 3, "dilation": 3, "output_size": 9}, (1, 3)).out_shape == (1, 9)
    refused(1, {"out_channels": 1, "kernel_size": 3, "dilation": 3, "output_size": 10}, (1, 3))
    assert infer(1, {"out_channels": 1, "kernel_size": 3, "dilation": 3, "output_padding": 2}, (1, 3)).out_shape \
        == (1, 11)


def test_output_size_int_is_every_axis_and_matches_output_padding():
    by_size = infer(2, {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "output_size": 8}, (2, 4, 4))
    by_padding = infer(2, {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
                       (2, 4, 4))
    assert by_size == by_padding
    assert by_size.out_shape == (4, 8, 8)


def test_reference_module_signature_is_torchs_plus_output_size():
    for dims in (1, 2, 3):
        theirs = dict(inspect.signature(getattr(torch.nn, f"ConvTranspose{dims}d").__init__).parameters)
        ours = dict(inspect.signature(REFERENCE_MODULES[f"ConvTranspose{dims}d"].__init__).parameters)
        assert ours.pop("output_size").default is None
        assert [(n, p.default) for n, p in ours.items()] == [(n, p.default) for n, p in theirs.items()]


# --------------------------------------------------------------------------- parameters and MACs

def test_weight_layout_and_macs():
    """§2: weight (C_in, C_out/g, *k); MACs walk the input: N*prod(in)*C_in*(C_out/g)*prod(k) (FlopCounterMode)."""
    inferred = infer(2, {"out_channels": 6, "kernel_size": [3, 2], "stride": 2, "groups": 2}, (4, 5, 7))
    assert inferred.params == {"weight": (4, 3, 3, 2), "bias": (6,)}
    assert inferred.param_count == 4 * 3 * 3 * 2 + 6
    assert inferred.macs == (5 * 7) * 4 * 3 * (3 * 2)
    module = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, groups=2)
    with FlopCounterMode(display=False) as counter:
        out = module(torch.zeros(2, 4, 5, 7))
    assert tuple(out.shape[1:]) == inferred.out_shape
    assert counter.get_total_flops() == 2 * 2 * inferred.macs


# --------------------------------------------------------------------------- BatchNorm folding

@pytest.mark.parametrize("dims, groups, bias", [(1, 1, True), (2, 2, False), (2, 1, True), (3, 1, False)])
def test_batchnorm_folds_into_a_transposed_conv(dims, groups, bias):
    shape = {1: (4, 7), 2: (4, 5, 6), 3: (2, 3, 4, 3)}[dims]
    if dims == 3:
        groups = 1
    builder = GraphBuilder(shape)
    t = builder.add(f"ConvTranspose{dims}d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1,
                                              "output_padding": 1, "groups": groups, "bias": bias}, INPUT)
    bn = builder.add(f"BatchNorm{dims}d", {}, t)
    builder.add("ReLU", {}, bn)
    for seed in range(2):
        assert check_network(builder, seed, batch=2) == 1      # folded, and equal to torch's numbers


# --------------------------------------------------------------------------- receptive field

@pytest.mark.parametrize("k, s, d, reach", [
    (2, 2, 1, [0, 0]),            # U-Net's 2x2 up-conv: one input unit per output unit
    (4, 2, 1, [1, 1]),            # DCGAN's 4x4 stride 2: always two
    (3, 2, 1, [1, 0]),            # k_eff mod s != 0: two or one
    (1, 2, 1, [0, None]),         # k_eff < s: every other unit sees nothing
    (3, 2, 2, [2, None]),         # dilation 2, stride 2: taps land on one parity only
    (4, 3, 1, [1, 0, 0]),
    (5, 2, 3, [6, 3]),            # taps 0, 2, 4 (reach 4*3/2) or 1, 3 (reach 2*3/2)
])
def test_reach_table(k, s, d, reach):
    """Output o gets input (o + p - m*d)/s for the taps m < k that divide: written out by hand."""
    assert transposed_reach(k, s, d) == reach


@pytest.mark.parametrize("layer, expected", [
    ({"kernel_size": 2, "stride": 2}, (1, 1, Fraction(1, 2))),
    ({"kernel_size": 4, "stride": 2, "padding": 1}, (2, 2, Fraction(1, 2))),
    ({"kernel_size": 3, "stride": 2}, (2, 1, Fraction(1, 2))),
    ({"kernel_size": 1, "stride": 2}, (1, 0, Fraction(1, 2))),
    ({"kernel_size": 3, "stride": 2, "dilation": 2}, (3, 0, Fraction(1, 2))),
    ({"kernel_size": 3, "stride": 1, "padding": 1}, (3, 3, 1)),   # stride 1: a conv with a flipped kernel
])
def test_single_layer_fields(layer, expected):
    layers = [{"type": "ConvTranspose1d", "out_channels": 1, **layer}]
    (axis,) = check_transposed_chain((1, 40), layers)[0].layers[-1].rf.axes
    assert (axis.size, axis.size_min, axis.stride) == expected


def check_transposed_chain(input_shape: Sequence[int], layers: Sequence[dict], require_all: bool = True):
    """The last layer is a transposed conv whose input field has integer strides: on every axis, for each
    output unit whose nominal support lies inside the input (the other axes at a unit that sees something),
    the gradient support's extent lies in [size_min, size], its centre within d*(s-1)*S/(2s) of
    u*S' - P' + (size-1)/2 (S the incoming stride); where s or more units are such, both extremes are attained
    (``require_all``: there must be that many)."""
    summary = analyze(input_shape, layers)
    x = positive_input(input_shape)
    y = oracle_forward(layers, x)[-1]
    assert tuple(y.shape[1:]) == summary.layers[-1].output_shape
    field = summary.layers[-1].rf
    incoming = summary.layers[-2].rf.axes if len(layers) > 1 else [convcalc.AxisField.identity()] * len(field.axes)
    last = layers[-1]
    dims = len(input_shape) - 1
    per_axis = lambda name, default: (last.get(name, default) if isinstance(last.get(name, default), list)  # noqa: E731
                                      else [last.get(name, default)] * dims)
    strides, dilations = per_axis("stride", 1), per_axis("dilation", 1)
    out = y.shape[2:]
    # on the other axes: a middle unit whose support is not empty
    anchor = []
    for axis in range(dims):
        middle = out[axis] // 2
        candidates = sorted(range(out[axis]), key=lambda u: abs(u - middle))[:8]
        anchor.append(candidates)
    base = None
    for index in np.ndindex(*[len(c) for c in anchor]):
        unit = [anchor[axis][i] for axis, i in enumerate(index)]
        if all(supports(y, x, [unit])[0]):
            base = unit
            break
    if base is None:     # tiny outputs: every unit near the middle is on a residue no tap reaches, or clipped
        assert not require_all
        return summary, False
    compared = True
    for axis, (f, prev, s, d) in enumerate(zip(field.axes, incoming, strides, dilations)):
        length = input_shape[1 + axis]
        units, centres = [], {}
        for u in range(out[axis]):
            centre = u * f.stride - f.padding + (f.size - 1) / 2
            margin = f.size / 2 + d * prev.stride / 2 + 1
            if centre - margin >= 0 and centre + margin <= length - 1:
                index = list(base)
                index[axis] = u
                units.append(index)
                centres[tuple(index)] = centre
        if require_all:
            assert len(units) >= s, f"axis {axis}: only {len(units)} interior units"
        compared = compared and len(units) >= s       # s consecutive units: every residue mod s
        extents = []
        for index, found in zip(units, supports(y, x, units)):
            positions = found[axis]
            extent = positions[-1] - positions[0] + 1 if positions else 0
            detail = f"axis {axis}, unit {index}: support {positions}, field {f}"
            assert f.size_min <= extent <= f.size, detail
            if positions:
                offset = abs(Fraction(positions[0] + positions[-1], 2) - centres[tuple(index)])
                assert offset <= Fraction(d * (s - 1), 2 * s) * prev.stride, detail
            extents.append(extent)
        if len(units) >= s:
            assert (max(extents), min(extents)) == (f.size, f.size_min), (axis, extents, f)
    return summary, compared


def _integer_layer(draw, channels: int) -> dict:
    kind = draw(st.sampled_from(["conv", "conv", "pool"]))
    k = draw(st.integers(1, 4))
    if kind == "pool":
        return {"type": "MaxPool1d", "kernel_size": k, "stride": draw(st.integers(1, 3)),
                "padding": draw(st.integers(0, k // 2))}
    d = draw(st.integers(1, 2))
    return {"type": "Conv1d", "out_channels": 1, "kernel_size": k, "stride": draw(st.integers(1, 3)), "dilation": d,
            "padding": draw(st.integers(0, d * (k - 1)))}


@st.composite
def transposed_chains(draw):
    input_shape = (1, draw(st.integers(40, 90)))
    layers: list[dict] = []
    for _ in range(draw(st.integers(0, 3))):
        layer = _integer_layer(draw, 1)
        if builds(input_shape, [*layers, layer]) is not None:
            layers.append(layer)
    k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    last = {"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": k, "stride": s, "dilation": d,
            "padding": draw(st.integers(0, d * (k - 1))), "output_padding": draw(st.integers(0, max(s, d) - 1))}
    assume(builds(input_shape, [*layers, last]) is not None)
    return input_shape, [*layers, last]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(transposed_chains())
def test_random_chains_ending_in_a_transposed_conv(network):
    input_shape, layers = network
    _, compared = check_transposed_chain(input_shape, layers, require_all=False)
    event("extremes compared" if compared else "bounds only (few interior units)")


def test_2d_per_axis_arguments():
    layers = [
        {"type": "Conv2d", "out_channels": 2, "kernel_size": [3, 2], "stride": [2, 1], "padding": 1},
        {"type": "ConvTranspose2d", "out_channels": 2, "kernel_size": [3, 4], "stride": [2, 3],
         "dilation": [1, 2], "padding": [1, 2], "output_padding": [1, 0]},
    ]
    summary, _ = check_transposed_chain((1, 30, 24), layers)
    assert [(a.size, a.size_min, a.stride) for a in summary.layers[-1].rf.axes] == [
        (5, 3, 1), (4, 2, Fraction(1, 3))]


def test_3d():
    layers = [{"type": "ConvTranspose3d", "out_channels": 1, "kernel_size": [2, 3, 1], "stride": [2, 2, 3]}]
    summary, _ = check_transposed_chain((1, 6, 7, 8), layers)
    assert [(a.size, a.size_min) for a in summary.layers[-1].rf.axes] == [(1, 1), (2, 1), (1, 0)]


def test_whole_input_passes_through():
    summary = analyze((2, 6), [{"type": "Flatten"}, {"type": "Linear", "out_features": 8}])
    assert summary.layers[-1].rf.whole
    field = lookup("ConvTranspose1d").from_args({"out_channels": 1, "kernel_size": 2}).receptive_field(
        [summary.layers[-1].rf], [(1, 8)], (1, 9))
    assert field.whole
