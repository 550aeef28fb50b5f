"""kernels.conv_depthwise against PyTorch's grouped conv (groups == in_channels), both of its layouts (rows for
stride 1 along the last axis without a channel multiplier, the strided einsum for the rest), 1-D to 3-D, strides,
dilations, channel multipliers and batches, split over 1, 2 and 3 threads (the same bits whatever the split); and
through a whole network (Conv2d groups == C) in float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import convcalc
from convcalc.execution.network import Network
from convcalc.kernels import depthwise, parallel
from convcalc.kernels.counting import MacCounter

CONV = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}

CASES = [  # (batch, channels, spatial, kernel, stride, dilation, padding, multiplier)
    (1, 32, (20, 20), 3, 1, 1, 1, 1),
    (3, 5, (9, 11), 3, 1, 1, 1, 1),
    (2, 7, (13, 12), 5, 2, 1, 2, 1),
    (1, 16, (14, 14), 3, 1, 2, 2, 1),
    (2, 3, (10, 9), 3, 1, 1, 0, 2),
    (2, 4, (11, 10), 3, 2, 1, 1, 3),
    (1, 300, (7, 7), 5, 1, 1, 2, 1),
    (2, 6, (30,), 7, 1, 1, 3, 1),
    (2, 6, (31,), 3, 2, 2, 1, 1),
    (1, 4, (6, 7, 5), 3, 1, 1, 1, 1),
    (2, 3, (7, 6, 6), 3, 2, 1, 1, 2),
]


def torch_depthwise(x, weight, stride, dilation, padding, channels):
    with torch.no_grad():
        return CONV[x.ndim - 2](torch.from_numpy(x), torch.from_numpy(weight), None, stride, padding, dilation,
                                channels).numpy()


def split_over(monkeypatch, threads: int) -> None:
    """Kernels split their work over ``threads`` threads however small it is."""
    monkeypatch.setattr(parallel, "threads", lambda: threads)
    monkeypatch.setattr(parallel, "MIN_PART_ELEMENTS", 1)


@pytest.mark.parametrize("layout", ["auto", "strided"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_kernel_matches_torch(case, layout, monkeypatch):
    batch, channels, spatial, k, s, d, p, m = case
    if layout != "auto":
        monkeypatch.setattr(depthwise, "rows_apply", lambda *args: False)
    rng = np.random.default_rng(len(spatial) * 100 + channels)
    dims = len(spatial)
    x = rng.standard_normal((batch, channels, *spatial)).astype(np.float32)
    weight = rng.standard_normal((channels * m, 1, *(k,) * dims)).astype(np.float32)
    expected = torch_depthwise(x, weight, s, d, p, channels)
    padded = np.pad(np.moveaxis(x, 1, -1), [(0, 0), *[(p, p)] * dims, (0, 0)])       # (N, *padded, C)
    taps = weight.reshape(channels, m, -1).transpose(2, 0, 1)                         # (prod(k), C, M)
    out = expected.shape[2:]
    counter = MacCounter()
    got = depthwise.conv_depthwise(padded, np.ascontiguousarray(taps), (k,) * dims, (s,) * dims, (d,) * dims,
                                   out, counter)
    assert got.shape == (batch, *out, channels * m)
    np.testing.assert_allclose(np.moveaxis(got, -1, 1), expected, rtol=1e-5, atol=1e-5)
    assert counter.total == batch * np.prod(out) * channels * m * k ** dims      # the MACs PyTorch's conv does
    again = depthwise.conv_depthwise(padded, np.ascontiguousarray(taps), (k,) * dims, (s,) * dims, (d,) * dims,
                                     out, MacCounter())
    assert np.array_equal(got, again)                                           # deterministic
    for threads in (2, 3):                                    # split along the batch or the rows, evenly or not
        split_over(monkeypatch, threads)
        split = depthwise.conv_depthwise(padded, np.ascontiguousarray(taps), (k,) * dims, (s,) * dims,
                                         (d,) * dims, out, MacCounter())
        assert np.array_equal(got, split)


@pytest.mark.parametrize("channels", [24, 300, 1500])
def test_layouts_agree_bit_for_bit(channels, monkeypatch):
    """Rows and strided sum the same taps in the same order: identical float32 results, so which layout a shape
    gets never changes a value (1500 channels: rows cut into segments of a whole number of pixels)."""
    rng = np.random.default_rng(7)
    padded = rng.standard_normal((2, 18, 17, channels)).astype(np.float32)
    taps = rng.standard_normal((9, channels, 1)).astype(np.float32)
    strided = depthwise._conv_strided(padded, taps, (3, 3), (1, 1), (1, 1), (16, 15))
    for threads in (1, 2, 3):
        split_over(monkeypatch, threads)
        rows = depthwise._conv_rows(padded, taps[:, :, 0], (3, 3), (1, 1), (1, 1), (16, 15))
        assert np.array_equal(rows, strided)
    assert depthwise.segment_pixels(15, 1500, 9, 4) < 15


def test_segments_keep_whole_pixels_and_divide_the_row(monkeypatch):
    monkeypatch.setattr(depthwise, "WEIGHT_ROW_BYTES", 9 * 4 * 4096)  # 9 taps of float32: runs of 4096 at most
    assert depthwise.segment_pixels(112, 32, 9, 4) == 112            # 3584 elements: one run per row
    assert depthwise.segment_pixels(7, 1152, 9, 4) == 1              # 8064 is past the limit, 7 is prime
    assert depthwise.segment_pixels(14, 672, 9, 4) == 2              # 1344
    assert depthwise.segment_pixels(15, 300, 9, 4) == 5              # 1500 (the row's 4500 is past the limit)
    assert depthwise.segment_pixels(15, 300, 9, 8) == 5              # float64: 2 x 1500 x 9 x 8 is too many bytes
    assert depthwise.segment_pixels(15, 200, 9 * 5, 4) == 3          # 45 taps: 600


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_network_depthwise_matches_torch(dtype):
    """MobileNet's block shape through the executor (padding, folded BatchNorm-free bias) against torch."""
    spec = convcalc.spec_from_dict({"name": "dw", "input": [24, 15, 15], "layers": [
        {"name": "conv", "type": "Conv2d", "out_channels": 24, "kernel_size": 3, "stride": 1, "padding": 1,
         "groups": 24, "bias": True},
        {"name": "down", "type": "Conv2d", "out_channels": 48, "kernel_size": 5, "stride": 2, "padding": 2,
         "groups": 24, "bias": False}]})
    network = Network(convcalc.build_graph(spec), (24, 15, 15), dtype=dtype)
    x = np.random.default_rng(3).standard_normal((2, 24, 15, 15))
    result = network.run(x)
    state = network.state
    torch_dtype = torch.float32 if dtype == "float32" else torch.float64
    with torch.no_grad():
        t = torch.from_numpy(x).to(torch_dtype)
        t = torch.nn.functional.conv2d(t, torch.from_numpy(np.asarray(state["conv"]["weight"])).to(torch_dtype),
                                       torch.from_numpy(np.asarray(state["conv"]["bias"])).to(torch_dtype), 1, 1, 1, 24)
        t = torch.nn.functional.conv2d(t, torch.from_numpy(np.asarray(state["down"]["weight"])).to(torch_dtype),
                                       None, 2, 2, 1, 24)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(result.output, t.numpy(), rtol=tolerance, atol=tolerance)
    assert result.ok


def test_reuse_freed_memory_sets_glibc_thresholds():
    """On glibc, both mallopt calls are accepted (HEAP_THRESHOLD is within glibc's limit for M_MMAP_THRESHOLD)."""
    import platform

    from convcalc.execution.memory import reuse_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert reuse_freed_memory() is True
