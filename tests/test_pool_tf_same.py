"""MaxPool/AvgPool with ``padding: tf_same`` (TensorFlow's SAME pooling) against independent computations.

TensorFlow documents SAME (https://www.tensorflow.org/api_docs/python/tf/nn#notes_on_padding_2):
``out = ceil(in / stride)``, ``pad_total = max((out - 1) * stride + kernel - in, 0)``, ``pad_before = pad_total // 2``,
the rest after. The pads are not values: ``tf.nn.max_pool`` takes the max over the input cells of a window and
``tf.nn.avg_pool`` divides by the number of input cells in the window. The oracles here:

* the pads: the formula above, written out again in this file (`tf_pads`), and TF's own worked example;
* max: ``F.pad`` with -inf by those pads, then ``F.max_poolNd`` with padding 0 (PyTorch, float64);
* average: a brute-force NumPy loop over output positions averaging the in-bounds cells of each window;
* receptive fields: autograd on the same torch chain (`test_receptive_field.check_layer`'s rules).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_receptive_field import check_layer, positive_input  # noqa: E402

import convcalc  # noqa: E402
from convcalc.errors import ConvcalcError, LayerArgError  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=40)


def tf_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME pads, from its documentation (dilated kernel span for dilation > 1)."""
    span = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def per_axis(value: Any, dims: int) -> list[int]:
    return list(value) if isinstance(value, list) else [value] * dims


def run(type_name: str, args: dict, x: np.ndarray) -> np.ndarray:
    """convcalc's analyzer shape and forward on an (N, C, *S) array, returned as (N, C, *S)."""
    layer = lookup(type_name).from_args(args)
    inferred = layer.infer([tuple(x.shape[1:])])
    prepared = layer.prepare({}, [tuple(x.shape[1:])], inferred.out_shape, x.dtype)
    y = np.asarray(to_logical(layer.forward([to_storage(x)], prepared, MacCounter())))
    assert y.shape[1:] == inferred.out_shape
    return y


def torch_pads(spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
               dilation: Sequence[int]) -> list[int]:
    """F.pad's argument (last axis first) for TF SAME on every spatial axis."""
    pairs = [tf_pads(i, k, s, d) for i, k, s, d in zip(spatial, kernel, stride, dilation)]
    return [p for pair in reversed(pairs) for p in pair]


def brute_force_average(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], include_pad: bool) -> np.ndarray:
    """TF's avg_pool by definition: the mean of the input cells of each window (or their sum over the kernel size)."""
    spatial = x.shape[2:]
    before = [tf_pads(i, k, s)[0] for i, k, s in zip(spatial, kernel, stride)]
    out_shape = [-(-i // s) for i, s in zip(spatial, stride)]
    y = np.zeros((*x.shape[:2], *out_shape))
    for position in itertools.product(*(range(o) for o in out_shape)):
        cells = []
        for offsets in itertools.product(*(range(k) for k in kernel)):
            index = [u * s - b + t for u, s, b, t in zip(position, stride, before, offsets)]
            if all(0 <= j < i for j, i in zip(index, spatial)):
                cells.append(x[(slice(None), slice(None), *index)])
        total = np.sum(cells, axis=0)
        y[(slice(None), slice(None), *position)] = total / (np.prod(kernel) if include_pad else len(cells))
    return y


@st.composite
def windows(draw, dilated: bool):
    dims = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 9 if dims < 3 else 6)) for _ in range(dims)]
    kernel = [draw(st.integers(1, 4)) for _ in range(dims)]
    stride = [draw(st.integers(1, 4)) for _ in range(dims)]
    dilation = [draw(st.integers(1, 3)) if dilated else 1 for _ in range(dims)]
    return dims, sizes, kernel, stride, dilation


def test_tensorflow_worked_example():
    """TF's docs: in 13, kernel 6, stride 5, SAME: out 3, pads 1 before and 2 after."""
    assert tf_pads(13, 6, 5) == (1, 2)
    x = np.arange(13, dtype=np.float64).reshape(1, 1, 13)
    summary = convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": [1, 13], "layers": [
        {"name": "pool", "type": "MaxPool1d", "kernel_size": 6, "stride": 5, "padding": "tf_same"}]}))
    assert summary.layer("pool").output_shape == (1, 3)
    # windows [-1, 4], [4, 9], [9, 14]: the max over the input cells of each
    assert run("MaxPool1d", {"kernel_size": 6, "stride": 5, "padding": "tf_same"}, x).ravel().tolist() == [4, 9, 12]
    # averages over 5, 6 and 4 cells
    average = run("AvgPool1d", {"kernel_size": 6, "stride": 5, "padding": "tf_same"}, x).ravel().tolist()
    assert average == [sum(range(0, 5)) / 5, sum(range(4, 10)) / 6, sum(range(9, 13)) / 4]
    (axis,) = summary.layer("pool").rf.axes
    assert (axis.size, axis.stride, axis.padding) == (6, 5, 1)


@settings(**SETTINGS)
@given(windows(dilated=True), st.integers(0, 2 ** 31 - 1))
def test_max_pool_matches_minus_infinity_padding_in_torch(window, seed):
    dims, sizes, kernel, stride, dilation = window
    x = np.random.default_rng(seed).standard_normal((2, 3, *sizes))
    ours = run(f"MaxPool{dims}d", {"kernel_size": kernel, "stride": stride, "dilation": dilation,
                                   "padding": "tf_same"}, x)
    padded = F.pad(torch.from_numpy(x), torch_pads(sizes, kernel, stride, dilation), value=-float("inf"))
    theirs = getattr(F, f"max_pool{dims}d")(padded, kernel, stride, 0, dilation).numpy()
    assert ours.shape[2:] == tuple(-(-i // s) for i, s in zip(sizes, stride))
    np.testing.assert_array_equal(ours, theirs)
    # MinPool shares the rule: -max(-x)
    minimum = run(f"MinPool{dims}d", {"kernel_size": kernel, "stride": stride, "dilation": dilation,
                                      "padding": "tf_same"}, x)
    theirs = -getattr(F, f"max_pool{dims}d")(F.pad(torch.from_numpy(-x), torch_pads(sizes, kernel, stride, dilation),
                                                   value=-float("inf")), kernel, stride, 0, dilation).numpy()
    np.testing.assert_array_equal(minimum, theirs)


@settings(**SETTINGS)
@given(windows(dilated=False), st.booleans(), st.integers(0, 2 ** 31 - 1))
def test_avg_pool_matches_brute_force(window, include_pad, seed):
    dims, sizes, kernel, stride, _ = window
    x = np.random.default_rng(seed).standard_normal((1, 2, *sizes))
    args = {"kernel_size": kernel, "stride": stride, "padding": "tf_same"}
    if include_pad:
        args["count_include_pad"] = True
    ours = run(f"AvgPool{dims}d", args, x)
    np.testing.assert_allclose(ours, brute_force_average(x, kernel, stride, include_pad), rtol=1e-12, atol=1e-12)
    if include_pad:   # pads counted as zeros: F.pad then avg_pool without padding agrees
        theirs = getattr(F, f"avg_pool{dims}d")(F.pad(torch.from_numpy(x), torch_pads(sizes, kernel, stride, [1] * dims)),
                                                kernel, stride).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def oracle_chain(layers: Sequence[dict], x: torch.Tensor) -> list[torch.Tensor]:
    """The chain in torch with explicit TF pads: all-ones convs, and average pools (a window's support does not
    depend on what is taken over it; padding with zeros adds no support)."""
    outputs = []
    for layer in layers:
        dims = x.dim() - 2
        kernel, stride = per_axis(layer["kernel_size"], dims), per_axis(layer.get("stride", 1), dims)
        dilation = per_axis(layer.get("dilation", 1), dims)
        if layer["type"].startswith("Conv"):
            stride = per_axis(layer.get("stride", 1), dims)
        elif "stride" not in layer:
            stride = kernel
        x = F.pad(x, torch_pads(x.shape[2:], kernel, stride, dilation))
        if layer["type"].startswith("Conv"):
            weight = torch.ones((x.shape[1], x.shape[1], *kernel), dtype=x.dtype)
            x = getattr(F, f"conv{dims}d")(x, weight, None, stride, 0, dilation)
        elif layer["type"].startswith("MaxPool") and any(d > 1 for d in dilation):
            weight = torch.ones((x.shape[1], 1, *kernel), dtype=x.dtype)
            x = getattr(F, f"conv{dims}d")(x, weight, None, stride, 0, dilation, groups=x.shape[1])
        else:
            x = getattr(F, f"avg_pool{dims}d")(x, kernel, stride)
        outputs.append(x)
    return outputs


@st.composite
def tf_chains(draw):
    dims = draw(st.integers(1, 2))
    sizes = [draw(st.integers(6, 24)) for _ in range(dims)]
    layers = []
    for index in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["Conv", "MaxPool", "AvgPool"]))
        layer = {"name": f"l{index}", "type": f"{kind}{dims}d", "kernel_size": draw(st.integers(1, 4)),
                 "stride": draw(st.integers(1, 3)), "padding": "tf_same"}
        if kind == "Conv":
            layer.update(out_channels=2)
        if kind != "AvgPool":
            layer["dilation"] = draw(st.sampled_from([1, 1, 2]))
        layers.append(layer)
    return dims, sizes, layers


@settings(**SETTINGS)
@given(tf_chains())
def test_receptive_fields_of_tf_same_chains_match_autograd(chain):
    dims, sizes, layers = chain
    summary = convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": [2, *sizes], "layers": layers}))
    x = positive_input([2, *sizes])
    for layer, y, row in zip(layers, oracle_chain(layers, x), summary.layers):
        assert tuple(y.shape[1:]) == tuple(row.output_shape), layer
        check_layer(y, x, row.rf, f"{layer}")


def test_receptive_field_takes_the_left_pad_only():
    """Kernel 3, stride 2 on 8: TF pads (0, 1), PyTorch's padding 1 would pad (1, 1): the fields differ by P."""
    summary = convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": [1, 8], "layers": [
        {"name": "tf", "type": "AvgPool1d", "kernel_size": 3, "stride": 2, "padding": "tf_same"}]}))
    (axis,) = summary.layer("tf").rf.axes
    assert (axis.size, axis.stride, axis.padding) == (3, 2, 0)
    assert summary.layer("tf").output_shape == (1, 4)


@pytest.mark.parametrize("type_name, args, message", [
    ("MaxPool2d", {"kernel_size": 3, "padding": "same"},
     "padding must be an integer, a list of 2 integers or 'tf_same', got the string 'same'"),
    ("AvgPool1d", {"kernel_size": 3, "stride": 2, "padding": "tf_same", "ceil_mode": True},
     "ceil_mode does not apply with padding 'tf_same' (TensorFlow's SAME output is already ceil(input / stride))"),
])
def test_refusals(type_name, args, message):
    with pytest.raises(LayerArgError) as info:
        lookup(type_name).from_args(args)
    assert str(info.value) == message


def test_max_unpool_refuses_a_tf_same_pool():
    spec = {"name": "t", "input": [1, 8], "layers": [
        {"name": "pool", "type": "MaxPool1d", "kernel_size": 2, "padding": "tf_same"},
        {"name": "unpool", "type": "MaxUnpool1d", "pool": "pool"}]}
    with pytest.raises(ConvcalcError) as info:
        convcalc.analyze(convcalc.spec_from_dict(spec))
    assert "pool names a MaxPool with padding 'tf_same'" in str(info.value)


def test_count_include_pad_defaults():
    """PyTorch's default (true) is kept for integer padding; TF's SAME never counts its pads."""
    assert lookup("AvgPool2d").from_args({"kernel_size": 3, "padding": 1}).count_include_pad is True
    assert lookup("AvgPool2d").from_args({"kernel_size": 3, "padding": "tf_same"}).count_include_pad is False
