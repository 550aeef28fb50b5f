"""The shared backward kernels of `convcalc.kernels` are the adjoints of their forward kernels.

For a linear map A, the vector-Jacobian product is Aᵀ, which the identity ``<A x, g> = <x, Aᵀ g>`` pins for
random x and g (the forward kernel is the oracle; no value is taken from the backward code):

* `windows_transpose` is the adjoint of `windows` (also for a broadcast view, as a mean pool passes it);
* `pad_spatial_transpose` is the adjoint of `pad_spatial` for every mode and positive, zero or negative pads;
* `conv_input_grad` is the adjoint of `conv_im2col` in its input.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.kernels import (MacCounter, conv_im2col, conv_input_grad, conv_weight_columns, pad_spatial,
                              pad_spatial_transpose, windows, windows_transpose)

SETTINGS = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def inner(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * b))


def assert_adjoint(forward_inner: float, backward_inner: float) -> None:
    assert abs(forward_inner - backward_inner) <= 1e-10 * max(1.0, abs(forward_inner)), (forward_inner, backward_inner)


@st.composite
def geometry(draw):
    dims = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    stride = draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dilation = draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    spatial = [d * (k - 1) + 1 + draw(st.integers(0, 4)) for k, d in zip(kernel, dilation)]
    out = [(p - d * (k - 1) - 1) // s + 1 for p, k, s, d in zip(spatial, kernel, stride, dilation)]
    return kernel, stride, dilation, spatial, out


@SETTINGS
@given(drawn=geometry(), batch=st.integers(1, 2), channels=st.integers(1, 3), broadcast=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_windows_transpose_is_the_adjoint_of_windows(drawn, batch, channels, broadcast, seed) -> None:
    kernel, stride, dilation, spatial, out = drawn
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *spatial, channels))
    if broadcast:    # one value per window, spread over its taps (a mean pool's backward)
        per_window = rng.standard_normal((batch, *out, *[1] * len(kernel), channels))
        cols = np.broadcast_to(per_window, (batch, *out, *kernel, channels))
    else:
        cols = rng.standard_normal((batch, *out, *kernel, channels))
    back = windows_transpose(cols, spatial, kernel, stride, dilation)
    assert back.shape == x.shape
    assert_adjoint(inner(windows(x, kernel, stride, dilation, out), cols), inner(x, back))


@SETTINGS
@given(data=st.data(), mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
       seed=st.integers(0, 2**31 - 1))
def test_pad_spatial_transpose_is_the_adjoint_of_pad_spatial(data, mode, seed) -> None:
    dims = data.draw(st.integers(1, 3))
    spatial = data.draw(st.lists(st.integers(1, 6), min_size=dims, max_size=dims))
    pads = []
    for size in spatial:   # within F.pad's limits: reflect < size, circular <= size, crops leave something
        limit = size - 1 if mode == "reflect" else size
        lo, hi = data.draw(st.integers(-size + 1, limit)), data.draw(st.integers(-size + 1, limit))
        assume(size + min(lo, 0) + min(hi, 0) >= 1 and size + lo + hi >= 1)
        if mode == "circular":
            assume(max(lo, 0) <= size + min(lo, 0) + min(hi, 0) and max(hi, 0) <= size + min(lo, 0) + min(hi, 0))
        pads.append((lo, hi))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *spatial, 3))
    padded = pad_spatial(x, pads, mode)
    g = rng.standard_normal(padded.shape)
    back = pad_spatial_transpose(g, spatial, pads, mode)
    assert back.shape == x.shape
    assert_adjoint(inner(padded, g), inner(x, back))


@SETTINGS
@given(drawn=geometry(), batch=st.integers(1, 2), groups=st.integers(1, 3), per_group_in=st.integers(1, 2),
       per_group_out=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_conv_input_grad_is_the_adjoint_of_the_convolution(drawn, batch, groups, per_group_in, per_group_out,
                                                           seed) -> None:
    kernel, stride, dilation, spatial, out = drawn
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((groups * per_group_out, per_group_in, *kernel))
    columns = conv_weight_columns(weight, groups)
    x = rng.standard_normal((batch, *spatial, groups * per_group_in))
    y = conv_im2col(x, columns, kernel, stride, dilation, out, MacCounter())
    g = rng.standard_normal(y.shape)
    back = conv_input_grad(g, columns, spatial, kernel, stride, dilation)
    assert back.shape == x.shape
    assert_adjoint(inner(y, g), inner(x, back))
