"""LPPool, MinPool, the global pools, Upsample, PixelShuffle/PixelUnshuffle and MaxUnpool: reference vectors
(semantics.md §3.6-3.9), the edges the random cross-checks reach only rarely, and receptive fields against
autograd. The random cross-checks of every type against torch (shapes, errors, numbers) are in
test_torch_crosscheck.py / test_executor_torch.py (strategies in resample_cases.py).
"""

from __future__ import annotations

import itertools
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_receptive_field import analyze, check_network, oracle_forward, positive_input  # noqa: E402

import convcalc  # noqa: E402

from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

torch.set_num_threads(1)


def layer_of(type_name: str, args: dict[str, Any]):
    return lookup(type_name).from_args(args)


def infer(type_name: str, args: dict[str, Any], *shapes: tuple[int, ...]):
    return layer_of(type_name, args).infer(list(shapes))


def refused(type_name: str, args: dict[str, Any], *shapes: tuple[int, ...]) -> LayerArgError:
    with pytest.raises(LayerArgError) as info:
        infer(type_name, args, *shapes)
    return info.value


def forward(type_name: str, args: dict[str, Any], *inputs: torch.Tensor) -> np.ndarray:
    """convcalc's forward on (N, C, *S) torch tensors, returned as (N, C, *S)."""
    layer = layer_of(type_name, args)
    inferred = layer.infer([tuple(x.shape[1:]) for x in inputs])
    arrays = [to_storage(x.detach().numpy()) for x in inputs]
    prepared = layer.prepare({}, [tuple(x.shape[1:]) for x in inputs], inferred.out_shape, arrays[0].dtype)
    with np.errstate(all="ignore"):
        y = np.asarray(to_logical(layer.forward(arrays, prepared, MacCounter())))
    assert y.shape[1:] == inferred.out_shape
    return y


# ============================================================================ LPPool

def test_lppool_ceil_mode_scales_a_partial_window_to_the_full_kernel():
    """§9: lp_pool1d p=1, k=2, s=2, ceil on ones(5) gives [2, 2, 2] (the true sums are [2, 2, 1])."""
    x = torch.ones(1, 1, 5, dtype=torch.float64)
    ours = forward("LPPool1d", {"norm_type": 1, "kernel_size": 2, "stride": 2, "ceil_mode": True}, x)
    assert ours.tolist() == [[[2.0, 2.0, 2.0]]]
    assert F.lp_pool1d(x, 1, 2, 2, ceil_mode=True).tolist() == ours.tolist()


@pytest.mark.parametrize("norm_type", [1, 2, 3, 1.5, -1, math.inf, -math.inf])
def test_lppool_on_negative_inputs_matches_torch_including_nans(norm_type: float):
    """x ** p of a negative x is NaN for a fractional p; odd p keeps the sign (then the 1/p-th root of a
    negative mean is NaN); ±inf pool |x|."""
    x = torch.randn(2, 3, 7, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    args = {"norm_type": norm_type, "kernel_size": [2, 3], "stride": [2, 1], "ceil_mode": True}
    theirs = torch.nn.LPPool2d(norm_type, (2, 3), (2, 1), ceil_mode=True)(x).numpy()
    ours = forward("LPPool2d", args, x)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    finite = ~np.isnan(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-12, atol=1e-12)


def test_lppool_arguments():
    assert "must not be 0" in refused("LPPool2d", {"norm_type": 0, "kernel_size": 2}, (1, 4, 4)).message
    error = refused("LPPool1d", {"norm_type": 2, "kernel_size": [2]}, (1, 4))
    assert error.arg == "kernel_size" and "must be an integer" in error.message
    assert infer("LPPool1d", {"norm_type": "-inf", "kernel_size": [2]}, (1, 4)).out_shape == (1, 2)
    assert infer("LPPool1d", {"norm_type": "inf", "kernel_size": 2, "stride": [1]}, (1, 4)).out_shape == (1, 3)
    # p = inf runs max_pool3d (no input-size check); a finite p runs avg_pool3d, which wants input >= kernel
    args = {"kernel_size": 3, "stride": 2, "ceil_mode": True}
    assert infer("LPPool3d", {"norm_type": math.inf, **args}, (1, 2, 2, 2)).out_shape == (1, 1, 1, 1)
    assert "at least as large as kernel_size" in refused("LPPool3d", {"norm_type": 2, **args}, (1, 2, 2, 2)).message


# ============================================================================ MinPool

def test_minpool_is_minus_maxpool_of_minus_x_and_pads_with_plus_infinity():
    x = torch.randn(1, 2, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    # k=2, d=3, p=1 on length 2: the window at 0 reads positions -1 and 2, both outside: +inf
    args = {"kernel_size": 2, "dilation": 3, "padding": 1, "ceil_mode": True, "stride": 1}
    for length in (2, 5):
        y = x[..., :length]
        theirs = -F.max_pool1d(-y, 2, 1, 1, 3, ceil_mode=True)
        ours = forward("MinPool1d", args, y)
        np.testing.assert_array_equal(ours, theirs.numpy())
    assert np.isposinf(forward("MinPool1d", args, x[..., :2])).any()
    assert "return_indices" not in lookup("MinPool2d").arguments


# ============================================================================ global pools

@pytest.mark.parametrize("dims", [1, 2, 3])
def test_global_pools_equal_adaptive_pools_to_one(dims: int):
    x = torch.randn(2, 3, *[4, 5, 3][:dims], generator=torch.Generator().manual_seed(dims), dtype=torch.float64)
    for kind in ("Avg", "Max"):
        adaptive = getattr(torch.nn, f"Adaptive{kind}Pool{dims}d")(1)(x).numpy()
        shape = tuple(x.shape[1:])
        assert infer(f"Global{kind}Pool", {}, shape).out_shape == adaptive.shape[1:]
        assert infer(f"Adaptive{kind}Pool{dims}d", {"output_size": 1}, shape).out_shape == adaptive.shape[1:]
        np.testing.assert_allclose(forward(f"Global{kind}Pool", {}, x), adaptive, rtol=1e-12, atol=1e-15)
        flat = forward(f"Global{kind}Pool", {"keepdim": False}, x)
        np.testing.assert_allclose(flat, adaptive.reshape(2, 3), rtol=1e-12, atol=1e-15)


def test_global_pools_take_any_number_of_spatial_axes_but_need_one():
    assert infer("GlobalAvgPool", {}, (3, 2, 2, 2, 2)).out_shape == (3, 1, 1, 1, 1)
    assert infer("GlobalMaxPool", {"keepdim": False}, (3, 2, 2, 2, 2)).out_shape == (3,)
    assert "at least one spatial axis" in refused("GlobalAvgPool", {}, (3,)).message


def test_global_pool_field_is_the_whole_input():
    summary = analyze((1, 9, 9), [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3},
                                  {"type": "GlobalMaxPool"}, {"type": "Flatten"}])
    assert not summary.layers[0].rf.whole
    assert summary.layers[1].rf.whole and summary.layers[2].rf.whole


# ============================================================================ receptive fields of the pools

@pytest.mark.parametrize("layers", [
    [{"type": "LPPool1d", "norm_type": 2, "kernel_size": 3, "stride": 2, "ceil_mode": True},
     {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1},
     {"type": "LPPool1d", "norm_type": 1.5, "kernel_size": 2}],
    [{"type": "MinPool1d", "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True},
     {"type": "MinPool1d", "kernel_size": 2}],
], ids=["lppool", "minpool"])
def test_pool_fields_match_autograd(layers):
    check_network((1, 31), layers)


def test_pool_fields_2d():
    check_network((1, 17, 14), [
        {"type": "LPPool2d", "norm_type": 3, "kernel_size": [3, 2], "stride": [2, 1]},
        {"type": "MinPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    ])


# ============================================================================ Upsample

def test_upsample_output_sizes_from_scale_factors():
    """§3.8: floor(i * scale) of the double product: 5 x 0.3 -> 1, 5 x 0.1 -> 0 (refused), 10 x 2.9999999 -> 29."""
    assert infer("Upsample", {"scale_factor": 0.3}, (1, 5)).out_shape == (1, 1)
    assert infer("Upsample", {"scale_factor": 2.9999999}, (1, 10)).out_shape == (1, 29)
    assert infer("Upsample", {"scale_factor": [1.5, 2]}, (2, 5, 3)).out_shape == (2, 7, 6)
    error = refused("Upsample", {"scale_factor": 0.1}, (1, 5))
    assert error.arg == "scale_factor" and "floor(5 x 0.1) = 0" in error.message
    assert refused("Upsample", {"size": [3, 4]}, (1, 5)).arg == "size"


@pytest.mark.parametrize("args, message", [
    ({"size": 3, "scale_factor": 2}, "not both"),
    ({}, "needs size or scale_factor"),
    ({"size": 3, "recompute_scale_factor": True}, "not meaningful with an explicit size"),
    ({"scale_factor": 2, "align_corners": False}, "only be set with the linear modes"),
    ({"scale_factor": 2, "mode": "nearest-exact", "align_corners": True}, "only be set with the linear modes"),
    ({"scale_factor": 2, "mode": "cubic"}, "mode must be one of"),
    ({"scale_factor": 2, "mode": "area", "align_corners": False}, "only be set with the linear modes"),
    ({"scale_factor": "inf"}, "must be finite"),
])
def test_upsample_argument_errors(args, message):
    with pytest.raises(LayerArgError) as info:
        layer_of("Upsample", args)
    assert message in info.value.message


def test_upsample_mode_rank_rules():
    assert "needs a [C, H, W] input" in refused("Upsample", {"scale_factor": 2, "mode": "bilinear"}, (1, 4)).message
    assert "needs a [C, L] input" in refused("Upsample", {"scale_factor": 2, "mode": "linear"}, (1, 4, 4)).message
    assert refused("UpsamplingBilinear2d", {"scale_factor": 2}, (1, 4, 4, 4)).arg is None
    assert infer("UpsamplingNearest2d", {"scale_factor": 2}, (1, 4)).out_shape == (1, 8)     # any rank, as torch
    assert "[C, L], [C, H, W] or [C, D, H, W]" in refused("Upsample", {"scale_factor": 2}, (3,)).message
    assert "needs a [C, H, W] input" in refused("Upsample", {"scale_factor": 2, "mode": "bicubic"}, (1, 4)).message
    for shape in ((2, 5), (2, 5, 4), (2, 5, 4, 3)):                                   # area: any rank, as torch
        assert infer("Upsample", {"scale_factor": 0.5, "mode": "area"}, shape).out_shape == (2, *[n // 2 for n in
                                                                                                  shape[1:]])


def _line(values, dims: int = 1) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(1, 1, *[1] * (dims - 1), -1)


def test_upsample_vectors():
    x = _line([1.0, 2.0, 3.0, 4.0, 5.0])
    # linear 5 -> 1 with align_corners=False samples the centre, x[2]
    assert forward("Upsample", {"size": 1, "mode": "linear"}, x).ravel().tolist() == [3.0]
    # x 1.5 samples with 1/1.5, not i/o = 5/7: differs from size=7; recompute_scale_factor gives size=7
    by_factor = forward("Upsample", {"scale_factor": 1.5, "mode": "linear"}, x)
    by_size = forward("Upsample", {"size": 7, "mode": "linear"}, x)
    recomputed = forward("Upsample", {"scale_factor": 1.5, "mode": "linear", "recompute_scale_factor": True}, x)
    assert not np.allclose(by_factor, by_size) and np.array_equal(recomputed, by_size)
    np.testing.assert_allclose(by_factor, F.interpolate(x, scale_factor=1.5, mode="linear").numpy(), atol=1e-15)
    # nearest-exact 2 -> 1 picks index 1 (round half up of 0.5)
    assert forward("Upsample", {"size": 1, "mode": "nearest-exact"}, _line([7.0, 9.0])).ravel().tolist() == [9.0]
    # a linear axis whose length does not change is copied, whatever the factor (ATen's shortcut)
    three = _line([1.0, 2.0, 4.0])
    assert forward("Upsample", {"scale_factor": 1.3, "mode": "linear"}, three).ravel().tolist() == [1.0, 2.0, 4.0]
    assert F.interpolate(three, scale_factor=1.3, mode="linear").ravel().tolist() == [1.0, 2.0, 4.0]


def test_upsample_2d_nearest_shortcuts_differ_from_1d():
    """ATen's 2-D 'nearest' kernel takes u // 2 when o == 2i whatever the factor; 1-D and 3-D use floor(u/2.1)."""
    x = _line([0.0, 1.0, 2.0, 3.0, 4.0])
    one_d = forward("Upsample", {"scale_factor": 2.1}, x).ravel().tolist()
    two_d = forward("Upsample", {"scale_factor": [1, 2.1]}, x.unsqueeze(2)).ravel().tolist()
    assert one_d == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4] == F.interpolate(x, scale_factor=2.1).ravel().tolist()
    assert two_d == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] == F.interpolate(x.unsqueeze(2), scale_factor=[1, 2.1]).ravel().tolist()


def test_upsampling_bilinear2d_aligns_corners():
    x = torch.randn(1, 2, 3, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = forward("UpsamplingBilinear2d", {"size": [5, 7]}, x)
    aligned = F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=True).numpy()
    np.testing.assert_allclose(ours, aligned, atol=1e-14)
    assert not np.allclose(ours, F.interpolate(x, size=(5, 7), mode="bilinear").numpy())
    assert ours[0, :, 0, 0].tolist() == x[0, :, 0, 0].tolist() and ours[0, :, -1, -1].tolist() == x[0, :, -1, -1].tolist()


@pytest.mark.parametrize("args, shape, expected", [
    # (size, size_min, stride, padding) per axis, on the unclipped axis (a unit clamped at the border reads one
    # pixel there, but no sample x = c*(u + 1/2) - 1/2 of x2 or x4 falls on a pixel: every unit reads two)
    ({"scale_factor": 2}, (1, 8), (1, 1, Fraction(1, 2), Fraction(1, 4))),
    ({"scale_factor": 3, "mode": "nearest-exact"}, (1, 8), (1, 1, Fraction(1, 3), Fraction(1, 3))),
    ({"scale_factor": 2, "mode": "linear"}, (1, 8), (2, 2, Fraction(1, 2), Fraction(3, 4))),
    ({"scale_factor": 4, "mode": "linear"}, (1, 8), (2, 2, Fraction(1, 4), Fraction(7, 8))),
    ({"size": 15, "mode": "linear", "align_corners": True}, (1, 8), (2, 1, Fraction(1, 2), Fraction(1, 2))),
    ({"scale_factor": 0.5, "mode": "linear"}, (1, 8), (2, 2, 2, 0)),               # 2 taps, on no pixel
    ({"scale_factor": 1.3, "mode": "linear"}, (1, 3), (1, 1, 1, 0)),                # a copied axis
])
def test_upsample_field_numbers(args, shape, expected):
    (axis,) = analyze(shape, [{"type": "Upsample", **args}]).layers[0].rf.axes
    assert (axis.size, axis.size_min, axis.stride, axis.padding) == expected


def test_upsampling_then_conv_field():
    """x2 nearest then a 3-tap conv reads 2 input pixels per unit on average (r = 1 + 2/2), jump 1/2."""
    summary = check_resampling_chain((1, 20), [{"type": "Upsample", "scale_factor": 2},
                                               {"type": "Conv1d", "out_channels": 1, "kernel_size": 3}])
    (axis,) = summary.layers[-1].rf.axes
    assert (axis.size, axis.stride) == (2, Fraction(1, 2))


# ============================================================================ Upsample: bicubic and area

def keys_cubic(t: float) -> list[float]:
    """Keys' cubic convolution kernel (Keys 1981) with A = -0.75 (OpenCV's and PyTorch's) at the taps -1, 0, 1, 2
    of a sample t past pixel 0: W(s) = (A+2)|s|³ - (A+3)|s|² + 1 for |s| <= 1, A|s|³ - 5A|s|² + 8A|s| - 4A for
    1 < |s| < 2."""
    a = -0.75

    def w(s: float) -> float:
        s = abs(s)
        return (a + 2) * s ** 3 - (a + 3) * s ** 2 + 1 if s <= 1 else a * s ** 3 - 5 * a * s ** 2 + 8 * a * s - 4 * a

    return [w(t + 1), w(t), w(1 - t), w(2 - t)]


def test_bicubic_vectors_from_keys_kernel():
    """align_corners, 5 -> 9 along the width: even outputs sit on pixels (copied), odd ones halfway (t = 1/2:
    weights -3/32, 19/32, 19/32, -3/32); a tap past a border reads the border pixel (torch clamps the index)."""
    row = [1.0, 4.0, 2.0, 8.0, 3.0]
    weights = keys_cubic(0.5)
    assert weights == [-3 / 32, 19 / 32, 19 / 32, -3 / 32]
    expected = []
    for u in range(9):
        k, odd = divmod(u, 2)
        expected.append(sum(w * row[min(max(k - 1 + j, 0), 4)] for j, w in enumerate(weights)) if odd else row[k])
    x = torch.tensor(row, dtype=torch.float64).view(1, 1, 1, 5)
    ours = forward("Upsample", {"size": [1, 9], "mode": "bicubic", "align_corners": True}, x).ravel()
    theirs = F.interpolate(x, size=(1, 9), mode="bicubic", align_corners=True).ravel().numpy()
    np.testing.assert_allclose(theirs, expected, atol=1e-14)
    np.testing.assert_allclose(ours, expected, atol=1e-14)
    # without align_corners, x2: x = u/2 - 1/4 is never a pixel: t alternates 3/4 and 1/4 (clamped taps at the ends)
    x2 = forward("Upsample", {"scale_factor": [1, 2], "mode": "bicubic"}, x).ravel()
    for u, t in ((3, 0.25), (4, 0.75), (6, 0.75)):
        k = math.floor(u / 2 - 0.25)
        value = sum(w * row[min(max(k - 1 + j, 0), 4)] for j, w in enumerate(keys_cubic(t)))
        assert x2[u] == pytest.approx(value, abs=1e-14)


def test_area_is_adaptive_average_pooling_to_the_output_size():
    """F.interpolate(mode='area') is adaptive_avg_pool (semantics §3.5): a scale factor only sizes the output
    (floor(i * s)); bins [floor(j*i/o), ceil((j+1)*i/o)) overlap where o does not divide i."""
    x = torch.randn(2, 3, 10, 7, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for args, size in [({"scale_factor": 0.3}, (3, 2, 1)), ({"size": [4, 7, 9]}, (4, 7, 9)),
                       ({"scale_factor": [0.5, 1.5, 2.5]}, (5, 10, 12))]:
        ours = forward("Upsample", {"mode": "area", **args}, x)
        np.testing.assert_allclose(ours, F.adaptive_avg_pool3d(x, size).numpy(), atol=1e-14)
        torch_args = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
        np.testing.assert_allclose(ours, F.interpolate(x, mode="area", **torch_args).numpy(), atol=1e-14)
    assert forward("Upsample", {"mode": "area", "size": 3}, _line(range(10))).ravel().tolist() == [1.5, 4.5, 7.5]


@st.composite
def interpolation_cases(draw):
    """Bicubic on [C, H, W] and area on every rank: sizes, integer and non-integer scale factors (decimals with a
    long period too), align_corners, recompute_scale_factor."""
    mode = draw(st.sampled_from(["bicubic", "area"]))
    dims = 2 if mode == "bicubic" else draw(st.integers(1, 3))
    spatial = [draw(st.integers(1, 9 if dims < 3 else 5)) for _ in range(dims)]
    args: dict[str, Any] = {"mode": mode}
    if draw(st.integers(0, 2)) == 0:
        args["size"] = [draw(st.integers(1, 13)) for _ in range(dims)]
    else:
        factors = st.sampled_from([0.3, 0.5, 0.7, 1.0, 1.3, 1.5, 2, 2.1, 2.5, 3, 1 / 3, 1.5000001, 0.6000000238418579])
        args["scale_factor"] = [draw(factors) for _ in range(dims)]
        if draw(st.integers(0, 3)) == 0:
            args["recompute_scale_factor"] = True
    if mode == "bicubic" and draw(st.booleans()):
        args["align_corners"] = draw(st.booleans())
    return (draw(st.integers(1, 3)), *spatial), args


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=interpolation_cases(), seed=st.integers(0, 2 ** 31 - 1))
def test_bicubic_and_area_forward_and_backward_match_torch(drawn, seed):
    """float64 forward and vector-Jacobian product against F.interpolate and torch autograd, within 1e-12 of the
    largest value (torch's bicubic backward copies the gradient where no axis changes length: so does convcalc's)."""
    shape, args = drawn
    layer = layer_of("Upsample", args)
    try:
        out_shape = layer.infer([shape]).out_shape
    except LayerArgError:
        event("refused (an empty output)")          # torch refuses it too, or returns an empty tensor (area)
        try:
            empty = F.interpolate(torch.zeros(1, *shape), **{k: tuple(v) if isinstance(v, list) else v
                                                             for k, v in args.items()})
        except RuntimeError:
            return
        assert empty.numel() == 0
        return
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, *shape, generator=generator, dtype=torch.float64, requires_grad=True)
    y = F.interpolate(x, **{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    assert tuple(y.shape[1:]) == out_shape
    cotangent = torch.randn(y.shape, generator=generator, dtype=torch.float64)
    (expected,) = torch.autograd.grad(y, x, cotangent)
    plans = layer.prepare({}, [shape], out_shape, np.dtype(np.float64))
    stored = to_storage(x.detach().numpy())
    ours = to_logical(layer.forward([stored], plans, MacCounter()))
    (grad,) = layer.backward([stored], None, to_storage(cotangent.numpy()), plans)
    for mine, theirs in ((ours, y.detach().numpy()), (to_logical(grad), expected.numpy())):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12 * max(1.0, float(np.abs(theirs).max())))
    # float32: the prepared dtype kept, the numbers within float32's rounding
    plans = layer.prepare({}, [shape], out_shape, np.dtype(np.float32))
    single = [stored.astype(np.float32)]
    y32 = layer.forward(single, plans, MacCounter())
    (grad32,) = layer.backward(single, y32, to_storage(cotangent.numpy()).astype(np.float32), plans)
    assert y32.dtype == grad32.dtype == np.float32
    np.testing.assert_allclose(to_logical(grad32), expected.numpy(), rtol=0,
                               atol=1e-4 * max(1.0, float(expected.abs().max())))


def test_bicubic_backward_copies_where_no_axis_changes_length_as_torch_does():
    """x1.3 on [2, 3]: floor(2 x 1.3) = 2 and floor(3 x 1.3) = 3, yet the forward samples with 1/1.3 (no copy, unlike
    the linear modes). upsample_bicubic2d_backward copies the gradient there (its 'input/output same size' case);
    convcalc's backward follows torch's autograd, and its receptive field and dependency masks the forward's reads,
    measured by torch's forward-mode Jacobian."""
    x = torch.randn(1, 1, 2, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64, requires_grad=True)
    args = {"scale_factor": 1.3, "mode": "bicubic"}
    y = F.interpolate(x, **args)
    assert y.shape == x.shape and not torch.allclose(y, x)
    np.testing.assert_allclose(forward("Upsample", args, x.detach()), y.detach().numpy(), atol=1e-14)
    cotangent = torch.randn(y.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    (expected,) = torch.autograd.grad(y, x, cotangent)
    assert torch.equal(expected, cotangent)
    layer = layer_of("Upsample", args)
    plans = layer.prepare({}, [(1, 2, 3)], (1, 2, 3), np.dtype(np.float64))
    (grad,) = layer.backward([to_storage(x.detach().numpy())], None, to_storage(cotangent.numpy()), plans)
    np.testing.assert_array_equal(to_logical(grad), cotangent.numpy())
    assert layer.is_noop([(1, 2, 3)], (1, 2, 3)) is None
    jacobian = torch.func.jacfwd(lambda v: F.interpolate(v, **args))(x.detach())[0, 0, :, :, 0, 0]   # (2, 3, 2, 3)
    rf = analyze((1, 2, 3), [{"type": "Upsample", **args}]).layers[0].rf
    for unit in itertools.product(range(2), range(3)):
        rows, cols = torch.nonzero(jacobian[unit].abs() > 1e-12, as_tuple=True)
        assert rf.extent(unit) == ((rows.min().item(), rows.max().item()), (cols.min().item(), cols.max().item()))
    assert rf.extent((0, 1)) == ((0, 1), (0, 2))            # every pixel: 4 taps a row and a column, clamped
    assert layer_of("Upsample", {"size": [2, 3], "mode": "bicubic"}).is_noop([(1, 2, 3)], (1, 2, 3))


@pytest.mark.parametrize("args, shape, expected", [
    # (size, size_min, stride, padding) on the unclipped axis, from the taps floor(x)-1 .. floor(x)+2 (x alone on a
    # pixel) and the adaptive bins
    ({"scale_factor": 2, "mode": "bicubic"}, (1, 8, 8), (4, 4, Fraction(1, 2), Fraction(7, 4))),
    ({"size": 15, "mode": "bicubic", "align_corners": True}, (1, 8, 8), (4, 1, Fraction(1, 2), Fraction(3, 2))),
    ({"scale_factor": 0.5, "mode": "bicubic"}, (1, 8, 8), (4, 4, 2, 1)),           # x = 2u + 1/2: 4 taps
    ({"size": 8, "mode": "bicubic"}, (1, 8, 8), (1, 1, 1, 0)),                      # x = u: each on its pixel
    ({"size": 3, "mode": "area"}, (1, 10), (4, 4, Fraction(10, 3), Fraction(1, 3))),  # bins [0,4), [3,7), [6,10)
    ({"scale_factor": 2, "mode": "area"}, (1, 5), (1, 1, Fraction(1, 2), Fraction(1, 4))),
])
def test_bicubic_and_area_field_numbers(args, shape, expected):
    axes = analyze(shape, [{"type": "Upsample", **args}]).layers[0].rf.axes
    assert (axes[0].size, axes[0].size_min, axes[0].stride, axes[0].padding) == expected


@pytest.mark.parametrize("input_shape, layers", [
    ((1, 13, 9), [{"type": "Upsample", "mode": "bicubic", "scale_factor": [2.5, 1.3]},
                  {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1},
                  {"type": "Upsample", "mode": "bicubic", "scale_factor": 0.7, "align_corners": True}]),
    ((1, 12, 10), [{"type": "Upsample", "mode": "bicubic", "size": [20, 11]},
                   {"type": "MaxPool2d", "kernel_size": 2},
                   {"type": "Upsample", "mode": "area", "size": [5, 3]},
                   {"type": "Upsample", "mode": "bicubic", "scale_factor": 3, "align_corners": False}]),
    ((1, 31), [{"type": "Upsample", "mode": "area", "scale_factor": 0.3},
               {"type": "Conv1d", "out_channels": 1, "kernel_size": 2},
               {"type": "Upsample", "mode": "area", "size": 17}]),
    ((1, 7, 6, 9), [{"type": "Upsample", "mode": "area", "size": [3, 4, 13]}]),
])
def test_bicubic_and_area_fields_match_autograd(input_shape, layers):
    check_resampling_chain(input_shape, layers)


# ============================================================================ PixelShuffle / PixelUnshuffle

def test_pixel_shuffle_element_map_and_inverse():
    """§3.9: out[c, h*r + a, w*r + b] = in[c*r*r + a*r + b, h, w]; PixelUnshuffle is its exact inverse."""
    r = 3
    x = torch.arange(2 * r * r * 2 * 3, dtype=torch.float64).view(1, 2 * r * r, 2, 3)
    y = forward("PixelShuffle", {"upscale_factor": r}, x)
    for c, a, b, h, w in [(0, 0, 0, 0, 0), (1, 2, 1, 1, 2), (1, 0, 2, 0, 1)]:
        assert y[0, c, h * r + a, w * r + b] == x[0, c * r * r + a * r + b, h, w]
    assert np.array_equal(forward("PixelUnshuffle", {"downscale_factor": r}, torch.from_numpy(y)), x.numpy())


def test_pixel_shuffle_errors():
    assert "not divisible by upscale_factor² = 4" in refused("PixelShuffle", {"upscale_factor": 2}, (6, 2, 2)).message
    assert "width 5 is not divisible" in refused("PixelUnshuffle", {"downscale_factor": 2}, (1, 4, 5)).message
    assert "[C, H, W]" in refused("PixelShuffle", {"upscale_factor": 1}, (4, 2)).message
    with pytest.raises(LayerArgError):
        layer_of("PixelShuffle", {"upscale_factor": 0})


def test_pixel_shuffle_fields_match_autograd():
    summary = check_resampling_chain((1, 12, 10), [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "PixelShuffle", "upscale_factor": 2},
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3},
        {"type": "PixelUnshuffle", "downscale_factor": 2},
    ])
    shuffled = summary.layers[1].rf.axes[0]
    assert (shuffled.size, shuffled.stride, shuffled.padding) == (3, Fraction(1, 2), Fraction(5, 4))


# ============================================================================ MaxUnpool

def unpool_spec(input_shape: list[int], pool: dict, unpool: dict, between: list[dict] = ()) -> convcalc.Spec:
    dims = len(input_shape) - 1
    return convcalc.spec_from_dict({"name": "t", "input": input_shape, "layers": [
        {"type": "ReLU", "name": "r"},
        {"type": f"MaxPool{dims}d", "name": "p", **pool},
        *between,
        {"type": f"MaxUnpool{dims}d", "name": "u", "pool": "p", **unpool},
    ]})


def unpool_error(input_shape, pool, unpool) -> str:
    with pytest.raises(convcalc.ConvcalcError) as info:
        convcalc.analyze(unpool_spec(input_shape, pool, unpool))
    return str(info.value)


def torch_unpool_on_increasing_data(input_shape, kernel: int, output_size):
    """torch on data that puts each window's maximum on its last in-bounds tap (the largest indices)."""
    x = torch.arange(float(np.prod(input_shape[1:]))).view(1, 1, *input_shape[1:])
    values, indices = F.max_pool2d(x, kernel, return_indices=True)
    return F.max_unpool2d(values, indices, kernel, output_size=output_size)


def test_unpool_of_an_odd_input_needs_its_size():
    """§3.6/§9: 5x5 -> MaxPool k2 s2 -> 2x2; the default unpool (4x4) cannot hold index 18; 3x3 and 4x4 pass
    torch's range check and fail all the same; 5x5 works."""
    pool = {"kernel_size": 2}
    message = unpool_error([1, 5, 5], pool, {})
    assert "flat index 18 of its [5, 5] input plane" in message and "output_size [5, 5]" in message
    for size in (3, 4):
        assert "invalid max index" in unpool_error([1, 5, 5], pool, {"output_size": size})
        with pytest.raises(RuntimeError, match="invalid max index"):
            torch_unpool_on_increasing_data([1, 5, 5], 2, (size, size))
    summary = convcalc.analyze(unpool_spec([1, 5, 5], pool, {"output_size": [5, 5]}))
    assert summary.layer("u").output_shape == (1, 5, 5)
    assert summary.layer("u").inputs == ("p", "r")          # the values, and the pool's input (for its indices)
    assert torch_unpool_on_increasing_data([1, 5, 5], 2, (5, 5)).shape == (1, 1, 5, 5)


def test_unpool_output_size_range():
    message = unpool_error([1, 8, 8], {"kernel_size": 2}, {"output_size": [10, 8]})
    assert "output_size 10 along the height is out of range: PyTorch allows 7 to 9" in message
    with pytest.raises(ValueError, match="invalid output_size"):
        F.max_unpool2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.long), 2, output_size=(10, 8))


def test_unpool_refuses_to_move_values_where_torch_does():
    """6x6 -> k2 s2 -> 3x3 -> output_size 7x7 (in torch's range): torch puts index h*6 + w at row (h*6 + w) // 7."""
    message = unpool_error([1, 6, 6], {"kernel_size": 2}, {"output_size": 7})
    assert "laid out unlike the pool's input plane [6, 6]" in message and "output_size [6, 6]" in message
    moved = torch_unpool_on_increasing_data([1, 6, 6], 2, (7, 7))[0, 0]      # values are the flat input index
    h, w = (moved == 35).nonzero()[0].tolist()
    assert (h, w) == (35 // 7, 35 % 7) != (35 // 6, 35 % 6)


def test_unpool_defaults_and_own_arguments():
    # without a kernel_size: the pool's kernel, stride and padding (3, 2, 1 -> default 2*(4-1) - 2 + 3 = 7)
    summary = convcalc.analyze(unpool_spec([1, 7, 7], {"kernel_size": 3, "stride": 2, "padding": 1}, {}))
    assert summary.layer("p").output_shape == (1, 4, 4) and summary.layer("u").output_shape == (1, 7, 7)
    # with one: torch's defaults (stride = kernel_size, padding 0): 4 x 2 = 8 > 7 rows, and the index layout moves
    message = unpool_error([1, 7, 7], {"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 2})
    assert "[8, 8]" in message


@pytest.mark.parametrize("layers, message", [
    ([{"type": "ReLU", "name": "r"}, {"type": "MaxUnpool2d", "pool": "r"}], "pool must name a MaxPool2d layer, got a ReLU"),
    ([{"type": "MinPool2d", "kernel_size": 2, "name": "m"}, {"type": "MaxUnpool2d", "pool": "m"}],
     "pool must name a MaxPool2d layer, got a MinPool2d"),
    ([{"type": "MaxPool1d", "kernel_size": 2, "name": "m", "from": "input"}, {"type": "MaxUnpool2d", "pool": "m"}],
     "pool must name a MaxPool2d layer, got a MaxPool1d"),
    ([{"type": "MaxUnpool2d", "pool": "input"}], "'pool' must name a layer, not the input"),
    ([{"type": "MaxPool2d", "kernel_size": 2, "name": "pool1"}, {"type": "MaxUnpool2d", "pool": "pool2"}],
     "'pool' refers to 'pool2', which is not a layer defined before this one"),
    ([{"type": "MaxPool2d", "kernel_size": 2, "name": "p"}, {"type": "MaxUnpool2d"}], "MaxUnpool2d needs 'pool'"),
    ([{"type": "MaxPool2d", "kernel_size": 2, "name": "p"},
      {"type": "MaxUnpool2d", "pool": "p", "from": ["p", "input"]}], "takes one input ('from') besides the pool"),
])
def test_unpool_spec_errors(layers, message):
    with pytest.raises(convcalc.ConvcalcError) as info:
        convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": [1, 6, 6], "layers": layers}))
    assert message in str(info.value)


def test_unpool_runs_in_a_network_like_torch():
    """SegNet-style: the decoder's features are unpooled with the encoder pool's indices (float64, 1e-12)."""
    from convcalc.execution.network import Network

    spec = unpool_spec([2, 7, 9], {"kernel_size": 3, "stride": 2, "padding": 1},
                       {"output_size": [7, 9]},
                       between=[{"type": "Conv2d", "name": "c", "out_channels": 2, "kernel_size": 3, "padding": 1}])
    graph = convcalc.build_graph(spec)
    network = Network(graph, (2, 7, 9), dtype="float64")
    x = np.random.default_rng(5).standard_normal((3, 2, 7, 9))
    result = network.run(x)
    assert result.ok
    conv = torch.nn.Conv2d(2, 2, 3, padding=1).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(network.state["c"]["weight"]))
        conv.bias.copy_(torch.from_numpy(network.state["c"]["bias"]))
        values, indices = F.max_pool2d(torch.from_numpy(x).relu(), 3, 2, 1, return_indices=True)
        expected = F.max_unpool2d(conv(values), indices, 3, 2, 1, output_size=(7, 9))
    np.testing.assert_allclose(result.output, expected.numpy(), atol=1e-12)


def test_unpool_field_is_nearest_upsampling_for_non_overlapping_pools():
    """k = s: each position is written by one window: unpooling's field is nearest upsampling's (size 1, stride
    1/2, centred), i.e. 'unpooling by copying' is Upsample(mode='nearest')."""
    spec = unpool_spec([1, 8, 8], {"kernel_size": 2}, {})
    unpooled = convcalc.analyze(spec).layer("u").rf.axes
    copied = analyze((1, 4, 4), [{"type": "Upsample", "scale_factor": 2}]).layers[0].rf.axes
    pooled = analyze((1, 8, 8), [{"type": "MaxPool2d", "kernel_size": 2}]).layers[0].rf.axes
    for u, c, p in zip(unpooled, copied, pooled):
        assert (u.size, u.stride, u.padding) == (p.size + (c.size - 1) * p.stride, c.stride * p.stride,
                                                 p.padding + c.padding * p.stride) == (2, 1, Fraction(1, 2))


@pytest.mark.parametrize("pool", [
    {"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 1, "stride": 3},
    {"kernel_size": 2, "stride": 2, "dilation": 2}, {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True},
])
def test_unpool_fields_match_autograd(pool):
    layers = [{"type": "MaxPool1d", "name": "p", **pool},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1},
              {"type": "MaxUnpool1d", "pool": "p", "output_size": 39},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 2}]
    check_resampling_chain((1, 39), layers)


# ============================================================================ receptive fields through resampling
# A resampling layer moves the effective stride by its coordinate scale c (an upsampling by f divides it by f):
# fields then hold fractions, and unit u's field [u*S - P, u*S - P + r - 1] is where its taps lie on average.
# What is checked against autograd (tests/test_receptive_field.py's oracle):
# * each resampling layer alone: every interior unit's first and last tap lie within 1/2 input pixel of its
#   window (the documented guarantee), measured as e_l;
# * a chain: the rounding of each resampling layer shifts taps by at most e_l of its own input pixels, i.e.
#   e_l * S_l network-input pixels (S_l the jump at its input); with E the sum so far, the first (last) index of
#   every unit far from the borders (where no layer clamps or pads) lies within E of a (b).

class ForwardGather(torch.nn.Module):
    """A nearest-mode Upsample as a gather with the indices its FORWARD reads. The autograd oracle cannot use
    torch's own backward here: for 1-D and 3-D 'nearest', upsample_nearest*_backward routes the gradient with
    ATen's nearest_idx shortcuts (a copy where o == i, u // 2 where o == 2i), while the forward samples with
    the scale factor (F.interpolate(arange(3), scale_factor=1.25) reads [0, 0, 1]; its gradient flows to
    [0, 1, 2])."""

    def __init__(self, args: dict):
        super().__init__()
        self.args = args

    def forward(self, x):
        dims = x.dim() - 2
        out = x
        for axis in range(dims):
            shape = [1] * dims
            shape[axis] = x.shape[2 + axis]
            index = torch.arange(x.shape[2 + axis], dtype=torch.float32).view(1, 1, *shape)   # float32: PyTorch's default kernels
            index = index.expand(1, 1, *x.shape[2:])
            picked = F.interpolate(index, **self.args)                     # the source index of every output
            line = [0] * dims
            line[axis] = slice(None)
            out = out.index_select(2 + axis, picked[(0, 0, *line)].long())
        return out


class WindowsCovering(torch.nn.Module):
    """The support of a MaxUnpool: every position receives every pool window that covers it (an all-ones
    depthwise transposed convolution with the pool's kernel, stride, padding and dilation), cut or padded to
    the unpool's output size."""

    def __init__(self, pool: dict, dims: int, sizes: tuple[int, ...]):
        super().__init__()
        per = lambda value: tuple(value) if isinstance(value, list) else (value,) * dims  # noqa: E731
        self.k, self.d, self.p = per(pool["kernel_size"]), per(pool.get("dilation", 1)), per(pool.get("padding", 0))
        self.s = per(pool.get("stride") or pool["kernel_size"])
        self.dims, self.sizes = dims, sizes

    def forward(self, x):
        channels = x.shape[1]
        weight = torch.ones(channels, 1, *self.k, dtype=x.dtype)
        full = getattr(F, f"conv_transpose{self.dims}d")(x, weight, stride=self.s, dilation=self.d, groups=channels)
        pads = []
        for axis in reversed(range(self.dims)):    # output position t is full[t + p]
            pads += [-self.p[axis], self.sizes[axis] + self.p[axis] - full.shape[2 + axis]]
        return F.pad(full, pads)


def chain_forward(layers: list[dict], x: torch.Tensor, summary=None, named: dict | None = None) -> list[torch.Tensor]:
    """test_receptive_field's oracle for a chain, with nearest-mode Upsamples as `ForwardGather` and MaxUnpools as
    `WindowsCovering` of the pool their 'pool' names (in ``named``, else in ``layers``)."""
    outputs = []
    by_name = named if named is not None else {layer.get("name"): layer for layer in layers}
    for index, layer in enumerate(layers):
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items() if k not in ("type", "name")}
        if layer["type"] == "Upsample" and args.get("mode", "nearest").startswith("nearest"):
            x = ForwardGather(args)(x)
        elif layer["type"].startswith("MaxUnpool"):
            x = WindowsCovering(by_name[layer["pool"]], x.dim() - 2, summary.layers[index].output_shape[1:])(x)
        else:
            x = oracle_forward([{k: v for k, v in layer.items() if k != "name"}], x)[-1]
        outputs.append(x)
    return outputs


def check_resampling_chain(input_shape: tuple[int, ...], layers: list[dict]) -> convcalc.Summary:
    """Every layer's exact per-unit regions against the gradient support (test_receptive_exact.check_regions),
    with nearest Upsamples as `ForwardGather` and MaxUnpools as `WindowsCovering` (every window that can write
    a position: the reach over all data)."""
    from test_receptive_exact import check_regions
    summary = analyze(input_shape, layers)
    x = positive_input(input_shape)
    outputs = chain_forward(layers, x, summary)
    for index, (layer, y, row) in enumerate(zip(layers, outputs, summary.layers)):
        what = f"layer {index} {layer} of {layers} on {input_shape}"
        assert tuple(y.shape[1:]) == row.output_shape, what
        if not row.rf.whole:
            counts = check_regions(y, x, row.rf, what)
            if currently_in_test_context():
                event(f"extremes compared: {'yes' if counts['extremes'] else 'no'}")
    return summary


def draw_resampling_layer(draw, dims: int) -> dict:
    kind = draw(st.sampled_from(["conv", "pool", "upsample", "upsample", "upsample"]))
    if kind == "conv":
        k = draw(st.integers(1, 4))
        return {"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": k, "stride": draw(st.integers(1, 2)),
                "padding": draw(st.integers(0, k // 2)), "dilation": draw(st.sampled_from([1, 1, 2]))}
    if kind == "pool":
        return {"type": f"{draw(st.sampled_from(['Max', 'Avg']))}Pool{dims}d", "kernel_size": draw(st.integers(2, 3)),
                "stride": draw(st.integers(1, 2)), "ceil_mode": draw(st.booleans())}
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "area"] + (["bicubic"] if dims == 2 else [])))
    layer: dict[str, Any] = {"type": "Upsample", "mode": mode if mode != "linear" else
                             {1: "linear", 2: "bilinear"}[dims]}
    if draw(st.integers(0, 3)) == 0:
        layer["size"] = [draw(st.integers(3, 24)) for _ in range(dims)]
    else:
        layer["scale_factor"] = draw(st.sampled_from([2, 3, 4, 1.5, 2.5, 0.5, 0.75, 1.25]))
        if draw(st.integers(0, 3)) == 0:
            layer["recompute_scale_factor"] = True
    if mode in ("linear", "bicubic") and draw(st.booleans()):
        layer["align_corners"] = draw(st.booleans())
    return layer


@st.composite
def resampling_chains(draw, dims: int):
    shape = (1, *[draw(st.integers(12, 40 if dims == 1 else 16)) for _ in range(dims)])
    layers: list[dict] = []
    for position in range(draw(st.integers(1, 4))):
        for _attempt in range(3):
            if draw(st.integers(0, 4)) == 0:     # a MaxPool and its MaxUnpool, perhaps a 'same' conv between
                k = draw(st.integers(1, 3))
                pool = {"type": f"MaxPool{dims}d", "name": f"pool{position}", "kernel_size": k,
                        "stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, k // 2)),
                        "dilation": draw(st.sampled_from([1, 1, 2])), "ceil_mode": draw(st.booleans())}
                between = [{"type": f"Conv{dims}d", "out_channels": 1, "kernel_size": 3, "padding": 1}] \
                    if draw(st.booleans()) else []
                unpool = {"type": f"MaxUnpool{dims}d", "pool": pool["name"]}
                if draw(st.booleans()):
                    try:
                        unpool["output_size"] = list(analyze(shape, layers).layers[-1].output_shape[1:] if layers
                                                     else shape[1:])
                    except convcalc.ConvcalcError:
                        pass
                new = [pool, *between, unpool]
            else:
                new = [draw_resampling_layer(draw, dims)]
            try:
                summary = analyze(shape, [*layers, *new])
            except convcalc.ConvcalcError:
                continue
            before = summary.layers[-2].output_shape if len(summary.layers) > 1 else shape
            if new[-1].get("mode") == "bicubic" and summary.layers[-1].output_shape == tuple(before):
                continue     # torch's bicubic backward then copies the gradient: no oracle of the forward's reads
            if max(summary.layers[-1].output_shape[1:]) <= (80 if dims == 1 else 40):
                layers.extend(new)
                break
    return shape, layers or [{"type": "Upsample", "scale_factor": 2}]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resampling_chains(1))
def test_random_resampling_chains_1d_match_autograd(network):
    check_resampling_chain(*network)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resampling_chains(2))
def test_random_resampling_chains_2d_match_autograd(network):
    check_resampling_chain(*network)


def test_pool_references_resolve_inside_blocks_and_repeats():
    """Each block instance's 'pool: p' names its own pool; the error of a bad reference carries its line."""
    from test_spec_graph import load

    text = """
        input: [2, 16, 16]
        blocks:
          Down:
            layers:
              - {name: p, type: MaxPool2d, kernel_size: 2}
              - {name: c, type: Conv2d, out_channels: 2, kernel_size: 3, padding: 1}
              - {name: u, type: MaxUnpool2d, pool: p}
              - {type: Add, from: [u, input]}
        layers:
          - {name: stage, type: Down, repeat: 2}
        """
    graph = convcalc.build_graph(load(text))
    assert graph.node("stage.0.u").inputs == ("stage.0.c", "input")
    assert graph.node("stage.1.u").inputs == ("stage.1.c", "stage.0.add_1")
    assert graph.node("stage.1.u").layer.pool_layer is graph.node("stage.1.p").layer
    assert convcalc.analyze(graph).output_shape == (2, 16, 16)
    with pytest.raises(convcalc.ConvcalcError) as info:
        convcalc.build_graph(load(text.replace("pool: p}", "pool: c}")))
    assert str(info.value) == ("net.yaml:7:38: layer 'stage.0.u' (MaxUnpool2d): pool must name a MaxPool2d layer,"
                               " got a Conv2d (in block 'Down' used at net.yaml:10:5)")


@pytest.mark.parametrize("mode, length, args", [
    ("nearest-exact", 30, {"size": 29}),          # unit 14: float32 scale reads 14, exact arithmetic 15
    ("nearest-exact", 26, {"size": 11}),          # unit 5
    ("nearest", 31, {"scale_factor": 2.3}),       # unit 69: 29 in float32, 30 = 69/2.3 exactly
    ("nearest", 7, {"scale_factor": 1.7}),
])
def test_nearest_fields_read_the_pixels_of_pytorchs_float32_kernels(mode, length, args):
    """On a boundary sample the receptive field follows the pixel PyTorch's (float32) kernel reads, as the
    executor does, unit by unit, in 1-D and 2-D."""
    for dims in (1, 2):
        shape = (1, length) if dims == 1 else (1, length, 3)
        layer_args = {"mode": mode, **{k: (v if dims == 1 else [v, 1] if k == "scale_factor" else [v, 3])
                                       for k, v in args.items()}}
        summary = convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(shape), "layers": [
            {"type": "Upsample", **layer_args}]}))
        rf = summary.layers[-1].rf
        index = torch.arange(length, dtype=torch.float32).view(1, 1, length, *([1] * (dims - 1)))
        index = index.expand(1, 1, *shape[1:]).contiguous()
        torch_args = {k: tuple(v) if isinstance(v, list) else v for k, v in layer_args.items()}
        read = F.interpolate(index, **torch_args)[(0, 0, slice(None), *([0] * (dims - 1)))].long().tolist()
        assert [rf.axes[0].region(u) for u in range(len(read))] == [(r, r) for r in read], (dims, read)
