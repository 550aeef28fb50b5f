"""The kernels' thread pool (kernels.parallel) and the kernels split over it: activations, merges, pooling, padding.

Every split kernel is checked against PyTorch (an independent oracle) and against itself at 1, 2 and 3 threads
with parts forced down to a single element's work (odd sizes, so parts are uneven): the bits must not change with
the split. The executor's in-place paths (an activation writing into its input, squeeze-and-excitation's product
written into the feature map) must give the same bits as the out-of-place ones."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import convcalc
from convcalc.execution.network import Network
from convcalc.kernels import (adaptive_reduce, broadcast_channels, hardsigmoid, hardswish, pad_spatial, parallel,
                              reduce_windows, relu, relu6, sigmoid, silu)
from convcalc.kernels import elementwise, pooling
from convcalc.layers.merge import Add, Multiply


def split_over(monkeypatch, threads: int) -> None:
    """Kernels split their work over ``threads`` threads however small it is."""
    monkeypatch.setattr(parallel, "threads", lambda: threads)
    monkeypatch.setattr(parallel, "MIN_PART_ELEMENTS", 1)


def test_spans_cover_the_range_in_near_even_parts():
    assert parallel.spans(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert parallel.spans(2, 5) == [(0, 1), (1, 2)]
    assert parallel.spans(7, 1) == [(0, 7)]


def test_run_parts_runs_every_part_once_on_two_threads_and_raises_a_parts_error(monkeypatch):
    split_over(monkeypatch, 2)
    seen, names = [], set()

    def task(start, stop):
        seen.append((start, stop))
        names.add(threading.current_thread().name)

    assert parallel.run_parts(task, 9) == 2
    assert sorted(seen) == [(0, 5), (5, 9)]
    assert len(names) == 2                                  # the caller and one pool thread

    def failing(start, stop):
        if start:
            raise ValueError("part two")

    with pytest.raises(ValueError, match="part two"):
        parallel.run_parts(failing, 9)


def test_a_part_that_asks_for_parts_runs_them_itself(monkeypatch):
    split_over(monkeypatch, 2)
    inner_counts = []

    def outer(start, stop):
        inner_counts.append(parallel.run_parts(lambda a, b: None, 100))

    parallel.run_parts(outer, 2)
    assert inner_counts == [1, 1]                          # no nested pool use (it could deadlock)


def test_one_thread_never_uses_the_pool(monkeypatch):
    monkeypatch.setattr(parallel, "threads", lambda: 1)
    monkeypatch.setattr(parallel, "MIN_PART_ELEMENTS", 1)
    assert parallel.run_parts(lambda a, b: None, 1000) == 1


ACTIVATIONS = [
    (relu, torch.relu), (relu6, lambda t: torch.nn.functional.relu6(t)), (silu, torch.nn.functional.silu),
    (sigmoid, torch.sigmoid), (hardswish, torch.nn.functional.hardswish),
    (hardsigmoid, torch.nn.functional.hardsigmoid),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, reference", ACTIVATIONS, ids=[k.__name__ for k, _ in ACTIVATIONS])
def test_activations_match_torch_and_any_split(kernel, reference, dtype, monkeypatch):
    monkeypatch.setattr(elementwise, "BLOCK", 1000)           # many blocks, the last one short
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 17, 13, 11)) * 5).astype(dtype)
    x[0, 0, 0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    expected = reference(torch.from_numpy(x)).numpy()
    tolerance = 2e-6 if dtype == np.float32 else 1e-14
    with np.errstate(invalid="ignore"):                     # -inf·0: NaN, as torch's
        check_splits(kernel, x, expected, tolerance, monkeypatch)


def check_splits(kernel, x, expected, tolerance, monkeypatch):
    whole = kernel(x)
    np.testing.assert_allclose(whole, expected, rtol=tolerance, atol=tolerance)
    for threads in (1, 2, 3):
        split_over(monkeypatch, threads)
        assert np.array_equal(kernel(x), whole, equal_nan=True)
        inplace = x.copy()
        assert kernel(inplace, out=inplace) is inplace
        assert np.array_equal(inplace, whole, equal_nan=True)
    strided = x[:, ::2]                                      # not contiguous: one block, the same values
    assert np.array_equal(kernel(strided), whole[:, ::2], equal_nan=True)


@pytest.mark.parametrize("ufunc", [np.add, np.multiply])
@pytest.mark.parametrize("batch, per_batch", [(1, 1), (3, 3), (3, 1)])
def test_per_channel_broadcast_is_numpys_broadcast_at_any_split(ufunc, batch, per_batch, monkeypatch):
    rng = np.random.default_rng(11)
    full = rng.standard_normal((batch, 9, 7, 5)).astype(np.float32)
    scale = rng.standard_normal((per_batch, 1, 1, 5)).astype(np.float32)
    expected = ufunc(scale, full)
    for threads in (1, 2, 3):
        split_over(monkeypatch, threads)
        assert np.array_equal(broadcast_channels(ufunc, full, scale), expected)
        inplace = full.copy()
        broadcast_channels(ufunc, inplace, scale, out=inplace)
        assert np.array_equal(inplace, expected)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_merges_in_and_out_of_place_match_torch(threads, monkeypatch):
    split_over(monkeypatch, threads)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
    b = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
    gate = rng.standard_normal((2, 1, 1, 7)).astype(np.float32)
    add, multiply = Add.from_args({}), Multiply.from_args({})
    expected_sum = (torch.from_numpy(a) + torch.from_numpy(b)).numpy()
    expected_gated = (torch.from_numpy(gate) * torch.from_numpy(a)).numpy()
    assert np.array_equal(add.forward([a, b], None, None), expected_sum)
    assert np.array_equal(multiply.forward([gate, a], None, None), expected_gated)
    target = a.copy()
    assert multiply.inplace_input([gate.shape, target.shape]) == 1
    result = multiply.forward_inplace([gate, target], None, None)
    assert result is target and np.array_equal(result, expected_gated)
    target = a.copy()
    result = add.forward_inplace([target, b], None, None)
    assert result is target and np.array_equal(result, expected_sum)
    three = add.forward_inplace([a.copy(), b, a], None, None)                # (a + b) + a, the fold's order
    assert np.array_equal(three, (a + b) + a)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_global_pool_maxpool_and_padding_at_any_split(threads, monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 15, 13, 6)).astype(np.float32)
    mean = adaptive_reduce(x, (1, 1), np.mean)
    pooled = reduce_windows(x, [(1, 1), (1, 1)], (3, 3), (2, 2), (1, 1), (8, 7), np.maximum, -np.inf)
    padded = pad_spatial(x, [(2, 1), (0, 3)])
    one = x[:1]
    mean_one = adaptive_reduce(one, (1, 1), np.mean)
    split_over(monkeypatch, threads)
    assert np.array_equal(adaptive_reduce(x, (1, 1), np.mean), mean)
    assert np.array_equal(adaptive_reduce(one, (1, 1), np.mean), mean_one)
    assert np.array_equal(reduce_windows(x, [(1, 1), (1, 1)], (3, 3), (2, 2), (1, 1), (8, 7), np.maximum, -np.inf),
                          pooled)
    monkeypatch.setattr(pooling, "CHUNK_BYTES", 1)                           # the batch one sample at a time
    assert np.array_equal(reduce_windows(x, [(1, 1), (1, 1)], (3, 3), (2, 2), (1, 1), (8, 7), np.maximum, -np.inf),
                          pooled)
    assert np.array_equal(pad_spatial(x, [(2, 1), (0, 3)]), padded)
    logical = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    np.testing.assert_allclose(np.moveaxis(mean, -1, 1), logical.mean(dim=(2, 3), keepdim=True).numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.moveaxis(pooled, -1, 1),
                                  torch.nn.functional.max_pool2d(logical, 3, 2, 1).numpy())


SQUEEZE_EXCITE = {"name": "se", "input": [16, 23, 19], "layers": [
    {"name": "expand", "type": "Conv2d", "out_channels": 32, "kernel_size": 1},
    {"name": "act", "type": "SiLU"},
    {"name": "dw", "type": "Conv2d", "out_channels": 32, "kernel_size": 3, "padding": 1, "groups": 32},
    {"name": "act2", "type": "Hardswish"},
    {"name": "pool", "type": "AdaptiveAvgPool2d", "output_size": 1},
    {"name": "fc", "type": "Conv2d", "out_channels": 32, "kernel_size": 1},
    {"name": "gate", "type": "Sigmoid"},
    {"name": "scaled", "type": "Multiply", "from": ["gate", "act2"]},
    {"name": "relu", "type": "ReLU6"},
    {"name": "sum", "type": "Add", "from": ["relu", "act2"]},
]}


def torch_se(state, x):
    t = torch.from_numpy(x)

    def weight(name):
        return torch.from_numpy(np.asarray(state[name]["weight"], dtype=np.float32))

    def bias(name):
        return torch.from_numpy(np.asarray(state[name]["bias"], dtype=np.float32))

    with torch.no_grad():
        t = torch.nn.functional.silu(torch.nn.functional.conv2d(t, weight("expand"), bias("expand")))
        t = torch.nn.functional.hardswish(torch.nn.functional.conv2d(t, weight("dw"), bias("dw"), 1, 1, 1, 32))
        gate = torch.sigmoid(torch.nn.functional.conv2d(t.mean(dim=(2, 3), keepdim=True), weight("fc"), bias("fc")))
        return (torch.nn.functional.relu6(gate * t) + t).numpy()


@pytest.mark.parametrize("batch", [1, 3])
def test_squeeze_excitation_block_in_place_at_any_split_matches_torch(batch, monkeypatch):
    """The block's in-place steps (SiLU into the conv's output, the gate's product into the feature map, ReLU6)
    and its split kernels: the same bits as keeping every layer's output (nothing in place), at 1-3 threads,
    and PyTorch's values."""
    network = Network(convcalc.build_graph(convcalc.spec_from_dict(SQUEEZE_EXCITE)), (16, 23, 19))
    x = np.random.default_rng(batch).standard_normal((batch, 16, 23, 19)).astype(np.float32)
    kept = network.run(x, keep=True).output                 # nothing overwritten
    np.testing.assert_allclose(kept, torch_se(network.state, x), rtol=1e-5, atol=1e-5)
    for threads in (1, 2, 3):
        split_over(monkeypatch, threads)
        result = network.run(x)
        assert result.ok and np.array_equal(result.output, kept)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 4])
def test_copy_into_copies_windows_and_slices_at_any_split(threads, batch, monkeypatch):
    """`parallel.copy_into` (im2col's patches with a ones column, a join's slice of its buffer): numpy's own copy,
    split over the batch or the rows, and `with_ones_column` still the patches beside ones."""
    from convcalc.kernels import windows, with_ones_column

    split_over(monkeypatch, threads)
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 9, 8, 5)).astype(np.float32)
    patches = windows(x, (3, 3), (2, 1), (1, 1), (4, 6))                      # (N, 4, 6, 3, 3, 5), strided
    matrix = with_ones_column(patches, 3)
    assert np.array_equal(matrix[:, :-1], patches.reshape(batch * 24, 45)) and (matrix[:, -1] == 1).all()
    buffer = np.zeros((batch, 9, 8, 12), dtype=np.float32)
    parallel.copy_into(buffer[..., 5:10], x)
    assert np.array_equal(buffer[..., 5:10], x) and not buffer[..., :5].any() and not buffer[..., 10:].any()
    flat = np.zeros(7)
    parallel.copy_into(flat, np.arange(7.0))
    assert np.array_equal(flat, np.arange(7.0))
