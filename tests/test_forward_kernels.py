"""The executor's layout helpers against their plain definitions (randomized): the polyphase copy and its tap
views against padding then strided slicing, the repeated bias rows against NumPy's broadcasting add, and the ufunc
buffer context restoring NumPy's setting, the transposed patches' tap blocks against the kernel's taps and the
conv they run against a plain loop over taps. (The layers using them are cross-checked against PyTorch in
test_executor_torch.py; these pin the helpers on shapes those draws rarely reach, such as bias rows long enough to
be repeated.)"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.kernels import (MacCounter, add_bias, bias_rows, conv_im2col_t, pad_spatial, phase_tap, polyphase,
                              tap_block_columns, tap_blocks, ufunc_runs)


@st.composite
def strided_windows(draw):
    """A channels-last input, per-axis pads (some negative: crops), strides, kernel taps and output extents that
    stay inside the padded input."""
    dims = draw(st.integers(1, 3))
    batch, channels = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    spatial = [draw(st.integers(2, 12)) for _ in range(dims)]
    pads = [(draw(st.integers(-1, 3)), draw(st.integers(-1, 3))) for _ in range(dims)]
    stride = [draw(st.integers(1, 3)) for _ in range(dims)]
    padded = [size + lo + hi for size, (lo, hi) in zip(spatial, pads)]
    offsets = [draw(st.integers(0, max(p - 1, 0))) for p in padded]
    out = [max(1, (p - 1 - o) // s + 1) for p, o, s in zip(padded, offsets, stride)]
    return batch, spatial, channels, pads, stride, offsets, out


@settings(max_examples=200, deadline=None)
@given(drawn=strided_windows(), value=st.sampled_from([0.0, -np.inf, 2.5]), seed=st.integers(0, 2**31 - 1))
def test_polyphase_taps_are_the_padded_input_strided(drawn, value, seed) -> None:
    batch, spatial, channels, pads, stride, offsets, out = drawn
    if any(size + lo + hi < 1 for size, (lo, hi) in zip(spatial, pads)):
        return
    x = np.random.default_rng(seed).standard_normal((batch, *spatial, channels))
    padded = pad_spatial(x, pads, value=value)
    extent = [o + (n - 1) * s + 1 for o, n, s in zip(offsets, out, stride)]
    q = polyphase(x, pads, stride, extent, value)
    want = padded[(slice(None), *(slice(o, o + (n - 1) * s + 1, s) for o, n, s in zip(offsets, out, stride)))]
    got = phase_tap(q, offsets, stride, out)
    assert got.shape == want.shape
    assert np.array_equal(got, want)


@settings(max_examples=100, deadline=None)
@given(drawn=strided_windows(), seed=st.integers(0, 2**31 - 1))
def test_channels_first_polyphase_is_the_same_values_channels_first(drawn, seed) -> None:
    batch, spatial, channels, pads, stride, offsets, out = drawn
    if any(size + lo + hi < 1 for size, (lo, hi) in zip(spatial, pads)):
        return
    x = np.random.default_rng(seed).standard_normal((batch, *spatial, channels))
    extent = [o + (n - 1) * s + 1 for o, n, s in zip(offsets, out, stride)]
    last = polyphase(x, pads, stride, extent)
    first = polyphase(x, pads, stride, extent, channels_first=True)
    dims = len(spatial)
    assert first.flags.c_contiguous
    assert np.array_equal(first, np.moveaxis(last, -1, dims))     # (*s, N, *rows, C) -> (*s, C, N, *rows)


@settings(max_examples=200, deadline=None)
@given(kernel=st.lists(st.integers(1, 7), min_size=1, max_size=3), data=st.data())
def test_tap_blocks_hold_every_tap_once_at_its_phase_and_offset(kernel, data) -> None:
    dims = len(kernel)
    stride = data.draw(st.lists(st.integers(1, 4), min_size=dims, max_size=dims))
    dilation = data.draw(st.lists(st.integers(1, 4), min_size=dims, max_size=dims))
    seen = []
    for phases, axes, taps in tap_blocks(kernel, stride, dilation):
        for axis, (phase, (first, step, count), held) in enumerate(zip(phases, axes, taps)):
            assert len(held) == count
            for j, t in enumerate(held):   # tap t reads padded position s o + d t = s (o + first + j step) + phase
                assert dilation[axis] * t == stride[axis] * (first + j * step) + phase
        seen += [tuple(combo) for combo in np.ndindex(*[len(t) for t in taps])
                 for combo in [tuple(t[i] for t, i in zip(taps, combo))]]
    assert sorted(seen) == sorted(np.ndindex(*kernel))


@settings(max_examples=150, deadline=None)
@given(kernel=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_transposed_patch_conv_is_the_sum_over_taps(kernel, data, seed) -> None:
    """conv_im2col_t against the definition: out[n, o, c'] = sum over taps t and channels c of
    padded[n, s o + d t, c] w[c', c, t], the tap loop written out with strided slices of the padded input."""
    dims = len(kernel)
    stride = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dilation = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    pads = [(data.draw(st.integers(-1, 3)), data.draw(st.integers(-1, 3))) for _ in range(dims)]
    batch, channels, out_channels = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    spatial = [data.draw(st.integers(max(1, sp - lo - hi, 1 - min(lo, 0) - min(hi, 0)), sp + 6))
               for sp, (lo, hi) in zip(span, pads)]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *spatial, channels))
    weight = rng.standard_normal((out_channels, channels, *kernel))
    padded = pad_spatial(x, pads)
    out = [(p - sp) // s + 1 for p, sp, s in zip(padded.shape[1:-1], span, stride)]
    want = np.zeros((batch, *out, out_channels))
    for taps in np.ndindex(*kernel):
        index = (slice(None), *(slice(d * t, d * t + s * (o - 1) + 1, s)
                                for t, d, s, o in zip(taps, dilation, stride, out)))
        want += padded[index] @ weight[(slice(None), slice(None), *taps)].T
    blocks = tap_blocks(kernel, stride, dilation)
    counter = MacCounter()
    got = conv_im2col_t(x, tap_block_columns(weight, blocks), blocks, pads, kernel, stride, dilation, out, counter)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert counter.total == want.size * channels * int(np.prod(kernel))


def test_polyphase_fills_positions_past_the_padded_input() -> None:
    """Winograd reads one row past an odd extent: it must hold the padding value."""
    x = np.arange(5.0).reshape(1, 5, 1)
    q = polyphase(x, [(1, 1)], [2], [8], value=-1.0)          # padded: [-1, 0, 1, 2, 3, 4, -1] and one more
    assert q[0, 0, :, 0].tolist() == [-1.0, 1.0, 3.0, -1.0]    # even positions 0, 2, 4, 6
    assert q[1, 0, :, 0].tolist() == [0.0, 2.0, 4.0, -1.0]     # odd positions 1, 3, 5, 7 (past the end)


@settings(max_examples=100, deadline=None)
@given(positions=st.integers(1, 5000), channels=st.integers(1, 300), batch=st.integers(1, 3),
       seed=st.integers(0, 2**31 - 1))
def test_bias_rows_add_as_broadcasting_does(positions, channels, batch, seed) -> None:
    rng = np.random.default_rng(seed)
    bias = rng.standard_normal(channels).astype(np.float32)
    rows = bias_rows(bias, positions)
    assert rows.shape[0] % channels == 0 and np.array_equal(rows[:channels], bias)
    y = rng.standard_normal((batch, positions, channels)).astype(np.float32)
    want = y + bias
    assert np.array_equal(add_bias(y, rows), want)
    strided = rng.standard_normal((batch, positions, 2 * channels)).astype(np.float32)[..., ::2]   # not contiguous
    assert np.array_equal(add_bias(strided.copy(order="K"), rows), strided + bias)


def test_bias_rows_repeat_past_numpy_buffer_where_positions_allow() -> None:
    assert bias_rows(np.ones(64), 56 * 56).shape[0] >= 8192      # ResNet's 56x56x64: repeated
    assert bias_rows(np.ones(64), 1).shape[0] == 64                # one position: the bias itself
    assert bias_rows(np.ones(64), 127).shape[0] == 64              # a prime count of positions cannot reach 8192


def test_ufunc_runs_sets_and_restores_numpy_buffer() -> None:
    before = np.getbufsize()
    with ufunc_runs(1800):
        assert np.getbufsize() == 1792                   # the run, rounded down to NumPy's multiple of 16
    assert np.getbufsize() == before
    with ufunc_runs(64):                                 # short runs: buffering is cheaper, left alone
        assert np.getbufsize() == before
    try:
        with ufunc_runs(4096):
            raise KeyError("inside")
    except KeyError:
        pass
    assert np.getbufsize() == before
