"""Padding layers and convcalc's Conv extensions: hand-picked vectors, receptive fields, whole networks.

(The registry-wide cross-checks against torch, for these types too, are in test_torch_crosscheck and
test_executor_torch; the strategies and torch references in padding_cases.py.)

* padding layers: semantics §3.2's table, PyTorch's mixed-sign (pad one side, crop the other) rules, channel
  padding (ResNet "option A"), fields against autograd;
* Conv padding: 'tf_same' against TensorFlow's documented rule over a grid and §9's vectors, 'full', explicit
  [[before, after]] (WaveNet's causal conv), fields against autograd.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_torch_crosscheck  # noqa: E402,F401  (first: padding_cases imports from it)
from padding_cases import CONV_REFERENCES, reference_pads  # noqa: E402
from test_receptive_field import check_layer, positive_input, supports  # noqa: E402
from test_receptive_exact import check_regions  # noqa: E402

import convcalc  # noqa: E402
from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

torch.set_num_threads(1)


def forward(type_name: str, args: dict[str, Any], x: np.ndarray, params: dict[str, np.ndarray] | None = None):
    """convcalc's forward of one layer on a PyTorch-layout batch (N, C, *S); returns (output, MACs counted)."""
    layer = lookup(type_name).from_args(args)
    shape = tuple(x.shape[1:])
    inferred = layer.infer([shape])
    prepared = layer.prepare(params or {}, [shape], inferred.out_shape, np.dtype(np.float64))
    counter = MacCounter()
    y = to_logical(layer.forward([to_storage(x.astype(np.float64))], prepared, counter))
    assert y.shape[1:] == inferred.out_shape
    return np.asarray(y), counter.total


def analyze(input_shape: Sequence[int], layers: Sequence[dict]) -> convcalc.Summary:
    return convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": list(layers)}))


# ============================================================================ padding layers

ONE_TO_FOUR = np.array([[[1.0, 2, 3, 4]]])


@pytest.mark.parametrize("type_name, expected", [
    # semantics §3.2's table: [1,2,3,4] padded by 3 on each side
    ("ReflectionPad1d", [4, 3, 2, 1, 2, 3, 4, 3, 2, 1]),
    ("ReplicationPad1d", [1, 1, 1, 1, 2, 3, 4, 4, 4, 4]),
    ("CircularPad1d", [2, 3, 4, 1, 2, 3, 4, 1, 2, 3]),
    ("ZeroPad1d", [0, 0, 0, 1, 2, 3, 4, 0, 0, 0]),
])
def test_padding_modes_table(type_name: str, expected: list[float]) -> None:
    y, macs = forward(type_name, {"padding": 3}, ONE_TO_FOUR)
    assert y.tolist() == [[expected]]
    assert macs == 0


@pytest.mark.parametrize("type_name, padding, expected", [
    # PyTorch mirrors / clamps within the UNcropped input (torch 2.13: F.pad(arange(4), ...)):
    ("ReflectionPad1d", [3, -1], [3, 2, 1, 0, 1, 2]),        # cropping first would refuse (3 >= 3)
    ("ReplicationPad1d", [-4, 1], [3]),                      # cropping first leaves nothing to replicate
    ("CircularPad1d", [2, -1], [1, 2, 0, 1, 2]),             # circular does crop first, then wrap
    ("ConstantPad1d", [6, -3], [7] * 6 + [0]),               # crop first, then fill
])
def test_mixed_sign_padding_as_pytorch(type_name: str, padding: list[int], expected: list[float]) -> None:
    args = {"padding": padding, **({"value": 7.0} if type_name.startswith("Constant") else {})}
    y, _ = forward(type_name, args, np.arange(4.0).reshape(1, 1, 4))
    assert y.tolist() == [[expected]]
    reference = getattr(nn, type_name)(tuple(padding), *([7.0] if "value" in args else []))
    assert y.tolist() == reference(torch.arange(4.0).reshape(1, 1, 4)).tolist()


def test_reflection_pad_2d_mixed_signs_matches_torch() -> None:
    x = np.arange(24.0).reshape(2, 1, 3, 4)
    y, _ = forward("ReflectionPad2d", {"padding": [2, -1, -1, 2]}, x)
    assert np.array_equal(y, nn.ReflectionPad2d((2, -1, -1, 2))(torch.from_numpy(x)).numpy())


def test_zero_pad_3d_pads_the_channels_of_an_image() -> None:
    """ResNet's CIFAR "option A" shortcut: F.pad(x, (0, 0, 0, 0, p, p)) widens the channels with zeros."""
    inferred = lookup("ZeroPad3d").from_args({"padding": [0, 0, 0, 0, 2, 2]}).infer([(4, 6, 5)])
    assert inferred.out_shape == (8, 6, 5) and inferred.param_count == 0 and inferred.macs == 0
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 5))
    y, _ = forward("ZeroPad3d", {"padding": [0, 0, 0, 0, 2, 2]}, x)
    assert np.array_equal(y, F.pad(torch.from_numpy(x), (0, 0, 0, 0, 2, 2)).numpy())


@pytest.mark.parametrize("type_name, padding, shape, message", [
    ("ReflectionPad1d", [1, 4], (2, 4), "reflect padding 4 must be smaller than the input size 4"),
    ("CircularPad1d", 5, (2, 4), "circular padding 5 wraps around more than once (input size 4)"),
    ("CircularPad1d", [4, -1], (2, 4), "circular padding 4 wraps around more than once: the crop leaves 3 of the"
                                        " input's 4 positions"),
    ("ZeroPad1d", [-5, 2], (2, 4), "padding (-5, 2) crops 5 positions from an input of size 4"),
    ("ZeroPad2d", [0, 0, -2, -2], (2, 4, 4), "padding (-2, -2) along the height leaves 0 of the input's 4"
                                             " positions (an empty output)"),
    ("ReplicationPad2d", 1, (2, 3, 4, 4), "ReplicationPad2d expects a [C, H, W] or [H, W] input, got [2, 3, 4, 4]"),
    ("ZeroPad2d", 1, (4,), "ZeroPad2d pads the last 2 axes of its input, got [4] (the batch is never padded)"),
])
def test_padding_layer_errors(type_name: str, padding: Any, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(LayerArgError) as info:
        lookup(type_name).from_args({"padding": padding}).infer([shape])
    assert info.value.message == message


def _pad_oracle(layers: Sequence[dict], x: torch.Tensor) -> list[torch.Tensor]:
    """Every output of a chain of padding layers and (all-ones, zero-bias) convs, built from torch modules."""
    outputs = []
    for layer in layers:
        args = {k: (tuple(v) if isinstance(v, list) and not any(isinstance(e, list) for e in v) else v)
                for k, v in layer.items() if k != "type"}
        if layer["type"].startswith("Conv"):
            module = CONV_REFERENCES[layer["type"]](in_channels=x.shape[1] if not outputs else outputs[-1].shape[1],
                                                     **args).double()
            with torch.no_grad():
                module.weight.fill_(1.0)
                if module.bias is not None:
                    module.bias.zero_()
        else:
            module = getattr(nn, layer["type"])(**args)
        outputs.append(module(outputs[-1] if outputs else x))
    return outputs


def check_chain(input_shape: Sequence[int], layers: Sequence[dict], interior_only: bool = False) -> convcalc.Summary:
    summary = analyze(input_shape, layers)
    x = positive_input(input_shape)
    for index, (y, row) in enumerate(zip(_pad_oracle(layers, x), summary.layers)):
        assert tuple(y.shape[1:]) == row.output_shape, (index, layers[index])
        check_layer(y, x, row.rf, f"layer {index} {layers[index]}", interior_only=interior_only)
    return summary


def test_padding_layer_fields_match_autograd() -> None:
    """ZeroPad1d (2, 1) then a k=3 conv: unit u sees padded [u, u+2] = input [u-2, u]: r=3, S=1, P=2."""
    layers = [{"type": "ZeroPad1d", "padding": [2, 1]},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "stride": 2},
              {"type": "ConstantPad1d", "padding": [1, 3], "value": 0.0},
              {"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "dilation": 2}]
    summary = check_chain((1, 17), layers)
    fields = [[(a.size, a.stride, a.padding) for a in row.rf.axes] for row in summary.layers]
    assert fields == [[(1, 1, 2)], [(3, 2, 2)], [(3, 2, 4)], [(7, 2, 4)]]


def test_mirrored_padding_layer_fields_match_autograd_inside() -> None:
    layers = [{"type": "ReflectionPad2d", "padding": [2, 1, 0, 3]},
              {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "stride": [1, 2]},
              {"type": "ReplicationPad2d", "padding": 1},
              {"type": "CircularPad2d", "padding": [1, 0, 2, 2]},
              {"type": "Conv2d", "out_channels": 1, "kernel_size": 2}]
    summary = check_chain((1, 14, 15), layers, interior_only=True)
    assert [(a.size, a.stride, a.padding) for a in summary.layers[-1].rf.axes] == [(4, 1, 3), (5, 2, 6)]


def test_cropping_padding_layer_field() -> None:
    """A crop (negative padding) moves the field the other way: ZeroPad1d (-2, 1) then k=3 sees [u+2, u+4]."""
    summary = analyze((1, 12), [{"type": "ZeroPad1d", "padding": [-2, 1]},
                                {"type": "Conv1d", "out_channels": 1, "kernel_size": 3}])
    (axis,) = summary.layers[-1].rf.axes
    assert (axis.size, axis.stride, axis.padding) == (3, 1, -2)
    x = positive_input((1, 12))
    y = _pad_oracle([{"type": "ZeroPad1d", "padding": [-2, 1]},
                     {"type": "Conv1d", "out_channels": 1, "kernel_size": 3}], x)[-1]
    for u, (positions,) in enumerate(supports(y, x, [[u] for u in range(y.shape[-1])])):
        assert positions == [p for p in range(u + 2, u + 5) if p < 12]


def test_padding_layers_in_a_network_run() -> None:
    spec = convcalc.spec_from_dict({"input": [2, 9, 8], "layers": [
        {"type": "ReflectionPad2d", "padding": [1, 2, 0, 1]},
        {"type": "Conv2d", "out_channels": 3, "kernel_size": 3},
        {"type": "ZeroPad2d", "padding": [0, 0, 0, 0]},                 # returns its input: no copy
        {"type": "ReLU"},                                                # may then work in place
        {"type": "ConstantPad2d", "padding": [-1, 1, 1, -1], "value": 0.5},
    ]})
    graph = convcalc.build_graph(spec)
    x = np.random.default_rng(3).standard_normal((2, 2, 9, 8))
    result = Network(graph, (2, 9, 8), dtype="float64").run(x, keep=True)
    assert result.ok and result.output.shape == (2, 3, 8, 9)
    conv = result.maps["conv2d_1"]
    expected = F.pad(torch.relu(torch.from_numpy(conv)), (-1, 1, 1, -1), value=0.5).numpy()
    assert np.array_equal(result.output, expected)
    again = Network(graph, (2, 9, 8), dtype="float64").run(x)       # same seed; nothing kept: in-place layers
    assert again.ok and np.array_equal(again.output, expected)


# ============================================================================ Conv padding spellings

def tf_doc_pads(i: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's "Notes on padding" (nn_ops.py), filter size after dilation."""
    k_eff = d * (k - 1) + 1
    along = max(k_eff - s, 0) if i % s == 0 else max(k_eff - i % s, 0)
    return along // 2, along - along // 2


def test_tf_same_is_tensorflows_rule_over_a_grid() -> None:
    for i in range(1, 13):
        for k in range(1, 6):
            for s in range(1, 5):
                for d in range(1, 4):
                    layer = lookup("Conv1d").from_args({"out_channels": 1, "kernel_size": k, "stride": s,
                                                        "dilation": d, "padding": "tf_same"})
                    assert layer.pads((i,)) == (tf_doc_pads(i, k, s, d),), (i, k, s, d)
                    assert layer.infer([(1, i)]).out_shape == (1, -(-i // s)), (i, k, s, d)   # ceil(i/s)


@pytest.mark.parametrize("i, pads", [(5, (1, 1)), (6, (0, 1))])
def test_tf_same_vectors(i: int, pads: tuple[int, int]) -> None:
    """§4.1/§9: k=3, s=2 pads (1, 1) on 5 but (0, 1) on 6 — which PyTorch's symmetric padding cannot express."""
    layer = lookup("Conv1d").from_args({"out_channels": 1, "kernel_size": 3, "stride": 2, "padding": "tf_same"})
    assert layer.pads((i,)) == (pads,)
    assert layer.infer([(1, i)]).out_shape == (1, 3)


def test_tf_same_differs_from_pytorch_same() -> None:
    """Even kernel, stride 1: both pad (k-1) in total with the extra at the end; a stride is TF-only."""
    tf = lookup("Conv2d").from_args({"out_channels": 1, "kernel_size": 4, "padding": "tf_same"})
    torch_same = lookup("Conv2d").from_args({"out_channels": 1, "kernel_size": 4, "padding": "same"})
    assert tf.pads((7, 8)) == torch_same.pads((7, 8)) == ((1, 2), (1, 2))
    strided = lookup("Conv2d").from_args({"out_channels": 1, "kernel_size": 4, "stride": 3, "padding": "tf_same"})
    assert strided.pads((7, 9)) == ((1, 2), (0, 1)) and strided.infer([(1, 7, 9)]).out_shape == (1, 3, 3)


@pytest.mark.parametrize("i, k, s, d", [(5, 3, 1, 1), (7, 4, 2, 1), (6, 3, 3, 2), (1, 5, 2, 1)])
def test_full_padding(i: int, k: int, s: int, d: int) -> None:
    """'full': d(k-1) on each side, o = ceil((i + k_eff - 1)/s) (Keras conv_output_length 'full')."""
    layer = lookup("Conv1d").from_args({"out_channels": 1, "kernel_size": k, "stride": s, "dilation": d,
                                        "padding": "full"})
    k_eff = d * (k - 1) + 1
    assert layer.pads((i,)) == ((k_eff - 1, k_eff - 1),)
    assert layer.infer([(1, i)]).out_shape == (1, -(-(i + k_eff - 1) // s))


def test_full_padding_is_numpy_full_correlation() -> None:
    x = np.random.default_rng(1).standard_normal((1, 1, 9))
    weight = np.random.default_rng(2).standard_normal((1, 1, 4))
    y, macs = forward("Conv1d", {"out_channels": 1, "kernel_size": 4, "padding": "full", "bias": False}, x,
                      {"weight": weight})
    assert np.allclose(y[0, 0], np.correlate(x[0, 0], weight[0, 0], "full"), atol=1e-12)
    assert macs == 12 * 4


def test_wavenet_causal_conv_keeps_the_length_and_sees_only_the_past() -> None:
    """WaveNet (van den Oord et al. 2016): kernel 2, dilations 1..512, causal padding [[d, 0]]: 1024 samples of
    the past, none of the future, length kept; the oracle agrees at every unit."""
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "dilation": 2 ** j, "padding": [[2 ** j, 0]]}
              for j in range(10)]
    summary = analyze((1, 1100), layers)
    assert summary.layers[-1].output_shape == (1, 1100)
    (axis,) = summary.layers[-1].rf.axes
    assert (axis.size, axis.stride, axis.padding) == (1024, 1, 1023)      # unit u sees [u - 1023, u]
    small = [{**layer, "dilation": 2 ** j, "padding": [[2 ** j, 0]]} for j, layer in enumerate(layers[:4])]
    check_chain((1, 40), small)


@pytest.mark.parametrize("padding, mode", [
    ([[2, 0], [0, 1]], "zeros"), ([[-1, 2], [1, -1]], "reflect"), ([[1, 1], [2, 0]], "circular"),
    ("full", "replicate"), ("tf_same", "zeros"), ("tf_same", "reflect"),
])
def test_conv_padding_spellings_match_torch_with_explicit_pad(padding: Any, mode: str) -> None:
    args = {"out_channels": 3, "kernel_size": [3, 2], "stride": [2, 1], "padding": padding, "padding_mode": mode}
    x = np.random.default_rng(4).standard_normal((2, 2, 7, 6))
    module = CONV_REFERENCES["Conv2d"](in_channels=2, **args).double()
    params = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    y, macs = forward("Conv2d", args, x, params)
    pads = reference_pads(padding, (7, 6), (3, 2), (2, 1), (1, 1))
    flat = [v for lo, hi in reversed(pads) for v in (lo, hi)]
    expected = F.conv2d(F.pad(torch.from_numpy(x), flat, mode="constant" if mode == "zeros" else mode),
                        module.weight, module.bias, stride=(2, 1)).detach().numpy()
    assert np.allclose(y, expected, atol=1e-12)
    assert macs == 2 * int(np.prod(expected.shape[1:])) * 2 * 6


def test_explicit_padding_fields_match_autograd() -> None:
    layers = [{"type": "Conv2d", "out_channels": 1, "kernel_size": [3, 2], "padding": [[2, 0], [0, 3]],
               "stride": [2, 1]},
              {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": "tf_same", "stride": 2},
              {"type": "Conv2d", "out_channels": 1, "kernel_size": 2, "padding": "full", "dilation": 2}]
    summary = check_chain((1, 15, 12), layers)
    assert [(a.size, a.stride, a.padding) for a in summary.layers[0].rf.axes] == [(3, 2, 2), (2, 1, 0)]


# ============================================================================ flip_kernel and the FFT

def _run(dims: int, args: dict[str, Any], x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None):
    params = {"weight": weight, **({"bias": bias} if bias is not None else {})}
    layer = lookup(f"Conv{dims}d").from_args({**args, "bias": bias is not None})
    shape = tuple(x.shape[1:])
    inferred = layer.infer([shape])
    plan = layer.prepare(params, [shape], inferred.out_shape, np.dtype(np.float64))
    counter = MacCounter()
    y = np.asarray(to_logical(layer.forward([to_storage(x)], plan, counter)))
    return y, counter, plan["method"], inferred


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("algorithm", ["direct", "fft"])
@pytest.mark.parametrize("padding, mode", [("valid", "valid"), ("full", "full")])
def test_flip_kernel_is_scipy_convolve(dims: int, algorithm: str, padding: str, mode: str) -> None:
    """flip_kernel: true convolution, y[o] = sum_c scipy.signal.convolve(x[c], w[o, c]) (semantics §7)."""
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(dims)
    kernel = {1: (5,), 2: (3, 4), 3: (2, 3, 2)}[dims]
    spatial = {1: (11,), 2: (7, 6), 3: (5, 4, 6)}[dims]
    x = rng.standard_normal((1, 2, *spatial))
    weight = rng.standard_normal((3, 2, *kernel))
    y, counter, method, inferred = _run(dims, {"out_channels": 3, "kernel_size": list(kernel), "padding": padding,
                                               "flip_kernel": True, "algorithm": algorithm}, x, weight)
    expected = np.stack([sum(signal.convolve(x[0, c], weight[o, c], mode=mode) for c in range(2))
                         for o in range(3)])
    assert method == algorithm or (algorithm == "direct" and method != "fft")
    assert np.allclose(y[0], expected, atol=1e-12)
    unflipped = lookup(f"Conv{dims}d").from_args({"out_channels": 3, "kernel_size": list(kernel), "padding": padding,
                                                  "bias": False})
    assert unflipped.infer([(2, *spatial)]) == inferred          # shape, params and MACs unchanged
    assert counter.total == inferred.macs


def test_flip_kernel_with_stride_dilation_and_groups() -> None:
    """Stride subsamples the full convolution; dilation convolves with the zero-stuffed kernel; groups split."""
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 4, 13, 12))
    weight = rng.standard_normal((6, 2, 3, 2))
    stuffed = np.zeros((6, 2, 5, 3))
    stuffed[:, :, ::2, ::2] = weight
    for algorithm in ("direct", "fft"):
        y, *_ = _run(2, {"out_channels": 6, "kernel_size": [3, 2], "groups": 2, "dilation": 2, "stride": [2, 3],
                         "padding": "full", "flip_kernel": True, "algorithm": algorithm}, x, weight)
        for o in range(6):
            group = o // 3
            full = sum(signal.convolve(x[0, 2 * group + c], stuffed[o, c], mode="full") for c in range(2))
            assert np.allclose(y[0, o], full[::2, ::3], atol=1e-12), (algorithm, o)


def test_flip_kernel_same_is_scipy_same_for_odd_kernels() -> None:
    """'same' agrees with scipy's centred 'same' for odd kernels (for even ones scipy puts the extra pad on the
    left, PyTorch on the right: §7)."""
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(8)
    x, weight = rng.standard_normal((1, 1, 9, 10)), rng.standard_normal((1, 1, 5, 3))
    y, *_ = _run(2, {"out_channels": 1, "kernel_size": [5, 3], "padding": "same", "flip_kernel": True}, x, weight)
    assert np.allclose(y[0, 0], signal.convolve(x[0, 0], weight[0, 0], mode="same"), atol=1e-12)


FFT_CASES = [
    # dims, channels, args, spatial
    (1, 3, {"out_channels": 4, "kernel_size": 7, "stride": 3, "dilation": 2, "padding": 5}, (40,)),
    (1, 4, {"out_channels": 4, "kernel_size": 3, "groups": 4, "padding": "same", "padding_mode": "circular"}, (17,)),
    (2, 4, {"out_channels": 6, "kernel_size": [5, 3], "groups": 2, "stride": [1, 2], "padding": "tf_same"}, (19, 23)),
    (2, 1, {"out_channels": 1, "kernel_size": 15, "padding": [[14, 0], [7, 7]], "padding_mode": "reflect"}, (33, 31)),
    (2, 3, {"out_channels": 2, "kernel_size": 1, "stride": 2}, (9, 8)),
    (3, 2, {"out_channels": 3, "kernel_size": [3, 2, 4], "dilation": [1, 2, 1], "padding": "full"}, (6, 7, 5)),
]


@pytest.mark.parametrize("dims, channels, args, spatial", FFT_CASES)
def test_fft_equals_direct_and_counts_the_same_macs(dims: int, channels: int, args: dict, spatial: tuple) -> None:
    rng = np.random.default_rng(dims + channels)
    x = rng.standard_normal((2, channels, *spatial))
    layer = lookup(f"Conv{dims}d").from_args(args)
    weight = rng.standard_normal(layer.infer([(channels, *spatial)]).params["weight"])
    bias = rng.standard_normal(args["out_channels"])
    direct, direct_counter, method, inferred = _run(dims, {**args, "algorithm": "direct"}, x, weight, bias)
    fft, fft_counter, fft_method, _ = _run(dims, {**args, "algorithm": "fft"}, x, weight, bias)
    assert method != "fft" and fft_method == "fft"
    assert np.abs(fft - direct).max() <= 1e-11 * max(1.0, np.abs(direct).max())
    # both count the conv's MACs; the FFT also says what it really multiplied (complex, in the spectrum)
    assert direct_counter.total == fft_counter.total == 2 * inferred.macs
    assert direct_counter.transform_macs == 0 and fft_counter.transform_macs > 0


def planned_method(args: dict, shape: tuple) -> str:
    """The algorithm a float32 plan of this conv takes at this input shape."""
    layer = lookup(f"Conv{len(shape) - 1}d").from_args(args)
    inferred = layer.infer([shape])
    params = {name: np.zeros(s) for name, s in inferred.params.items()}
    return layer.prepare(params, [shape], inferred.out_shape, np.dtype(np.float32))["method"]


def test_auto_takes_the_fft_for_large_kernels_only() -> None:
    assert planned_method({"out_channels": 16, "kernel_size": 15, "padding": 7}, (16, 64, 64)) == "fft"
    assert planned_method({"out_channels": 16, "kernel_size": 15, "padding": 7, "algorithm": "direct"}, (16, 64, 64)) != "fft"
    assert planned_method({"out_channels": 64, "kernel_size": 3, "padding": 1}, (64, 56, 56)) != "fft"
    assert planned_method({"out_channels": 64, "kernel_size": 1}, (64, 56, 56)) != "fft"
    assert planned_method({"out_channels": 1, "kernel_size": 3, "algorithm": "fft"}, (1, 8, 8)) == "fft"


def test_auto_takes_winograd_for_wide_3x3_convs_only() -> None:
    three = {"out_channels": 256, "kernel_size": 3, "padding": 1}
    assert planned_method(three, (256, 14, 14)) == "winograd"                       # ResNet-50's layer3
    assert planned_method({**three, "out_channels": 128}, (128, 28, 28)) == "winograd"
    assert planned_method({**three, "algorithm": "direct"}, (256, 14, 14)) != "winograd"
    assert planned_method({**three, "out_channels": 64}, (3, 224, 224)) != "winograd"      # few input channels
    assert planned_method({**three, "out_channels": 512}, (512, 7, 7)) != "winograd"       # 16 tiles, a third dropped
    assert planned_method({**three, "stride": 2}, (256, 28, 28)) != "winograd"
    assert planned_method({**three, "dilation": 2, "padding": 2}, (256, 14, 14)) != "winograd"
    assert planned_method({**three, "algorithm": "winograd", "out_channels": 1}, (1, 5, 5)) == "winograd"


@pytest.mark.parametrize("args", [{"kernel_size": 5}, {"kernel_size": [3, 1]}, {"stride": 2}, {"dilation": 2},
                                  {"groups": 2}])
def test_winograd_refuses_convs_it_cannot_run(args: dict) -> None:
    with pytest.raises(LayerArgError, match="algorithm 'winograd'") as error:
        lookup("Conv2d").from_args({"out_channels": 4, "kernel_size": 3, "algorithm": "winograd", **args})
    assert error.value.arg == "algorithm"


@pytest.mark.parametrize("dims, spatial", [(1, (9,)), (2, (6, 7)), (3, (4, 5, 3))])
def test_winograd_counts_the_conv_macs_and_reports_its_tile_products(dims: int, spatial: tuple) -> None:
    rng = np.random.default_rng(dims)
    args = {"out_channels": 5, "kernel_size": 3, "padding": 1}
    layer = lookup(f"Conv{dims}d").from_args(args)
    weight = rng.standard_normal(layer.infer([(3, *spatial)]).params["weight"])
    x = rng.standard_normal((2, 3, *spatial))
    direct, direct_counter, method, inferred = _run(dims, {**args, "algorithm": "direct"}, x, weight)
    fast, fast_counter, fast_method, _ = _run(dims, {**args, "algorithm": "winograd"}, x, weight)
    assert method != "winograd" and fast_method == "winograd"
    assert np.abs(fast - direct).max() <= 1e-12 * max(1.0, np.abs(direct).max())
    assert direct_counter.total == fast_counter.total == 2 * inferred.macs
    tiles = int(np.prod([-(-size // 2) for size in spatial]))             # 'same' padding: outputs = inputs
    assert fast_counter.transform == "winograd" and direct_counter.transform == ""
    assert fast_counter.transform_macs == 4 ** dims * 2 * tiles * 3 * 5
    # fewer products than the direct path's in 2-D and 3-D (1-D: 4 per 2 outputs, against 6)
    assert fast_counter.transform_macs < fast_counter.total or dims == 1


def test_network_run_with_an_fft_conv_passes_its_checks_and_reports_the_spectral_work() -> None:
    spec = convcalc.spec_from_dict({"input": [4, 48, 48], "layers": [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 13, "padding": "same", "name": "big"},
        {"type": "ReLU"},
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "name": "small"},
    ]})
    graph = convcalc.build_graph(spec)
    network = Network(graph, (4, 48, 48), dtype="float64")
    assert network.prepared["big"]["method"] == "fft" and network.prepared["small"]["method"] != "fft"
    x = np.random.default_rng(5).standard_normal((2, 4, 48, 48))
    result = network.run(x)
    assert result.ok
    big, small = result.layers[0], result.layers[2]
    assert big.executed_macs == big.predicted_macs == 2 * 48 * 48 * 8 * 4 * 169
    # padded 60 x 60 -> FFT 60 x 60, 60 x 31 frequencies, each a (2 x 4) @ (4 x 8) complex product
    assert big.transform_macs == 60 * 31 * 2 * 4 * 8 and small.transform_macs == 0
    module = nn.Sequential(nn.Conv2d(4, 8, 13, padding="same"), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)).double()
    state = {f"big.{k}": v.detach().numpy() for k, v in module[0].state_dict().items()}
    state.update({f"small.{k}": v.detach().numpy() for k, v in module[2].state_dict().items()})
    result = Network(graph, (4, 48, 48), state=state, dtype="float64").run(x)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    assert np.abs(result.output - expected).max() < 1e-10


# ============================================================================ broadcasting Add / Multiply

def test_squeeze_and_excitation_broadcasts_the_gate() -> None:
    """Hu et al. (CVPR 2018): x * sigmoid(W2 relu(W1 GAP(x))), the [C, 1, 1] gate broadcast over [C, H, W].
    The gate depends on the whole input, so every unit of the product does too."""
    layers = [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "name": "x"},
        {"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "squeeze"},
        {"type": "Conv2d", "out_channels": 2, "kernel_size": 1, "name": "reduce"},
        {"type": "ReLU", "name": "relu"},
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 1, "name": "expand"},
        {"type": "Sigmoid", "name": "gate"},
        {"type": "Multiply", "from": ["gate", "x"], "name": "excite"},     # the small one first
        {"type": "Add", "from": ["gate", "excite"], "name": "plus"},       # its first input dies here: no in-place
    ]
    summary = analyze((3, 10, 9), layers)
    assert summary.layer("excite").output_shape == (8, 10, 9) and summary.layer("plus").output_shape == (8, 10, 9)
    assert summary.layer("excite").rf.whole and summary.layer("excite").macs == 0
    graph = convcalc.build_graph(convcalc.spec_from_dict({"input": [3, 10, 9], "layers": layers}))
    torch.manual_seed(0)
    conv, reduce, expand = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 1)
    state = {f"{name}.{key}": value.double().detach().numpy()
             for name, module in (("x", conv), ("reduce", reduce), ("expand", expand))
             for key, value in module.state_dict().items()}
    x = np.random.default_rng(6).standard_normal((2, 3, 10, 9))
    result = Network(graph, (3, 10, 9), state=state, dtype="float64").run(x)
    with torch.no_grad():
        features = conv.double()(torch.from_numpy(x))
        gate = torch.sigmoid(expand.double()(torch.relu(reduce.double()(features.mean((2, 3), keepdim=True)))))
        expected = gate + features * gate
    assert result.ok and np.abs(result.output - expected.numpy()).max() < 1e-12


@pytest.mark.parametrize("shapes, expected", [
    ([(4, 1, 1), (4, 5, 6)], (4, 5, 6)),
    ([(1, 5, 6), (4, 5, 6)], (4, 5, 6)),              # a spatial attention map over every channel
    ([(4, 1, 6), (4, 5, 1)], (4, 5, 6)),              # both broadcast
    ([(3, 1), (1, 7), (3, 7)], (3, 7)),
    ([(1,), (5,)], (5,)),
])
def test_broadcast_shapes_and_values(shapes: list[tuple[int, ...]], expected: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shapes))
    arrays = [rng.standard_normal((2, *shape)) for shape in shapes]
    for type_name, function in (("Add", torch.add), ("Multiply", torch.mul)):
        layer = lookup(type_name).from_args({})
        assert layer.infer(shapes).out_shape == expected
        counter = MacCounter()
        stored = [to_storage(a) for a in arrays]
        ours = np.asarray(to_logical(layer.forward(stored, None, counter)))
        theirs = torch.from_numpy(arrays[0])
        for other in arrays[1:]:
            theirs = function(theirs, torch.from_numpy(other))
        assert np.allclose(ours, theirs.numpy(), atol=1e-14) and counter.total == 0


@pytest.mark.parametrize("shapes, message", [
    ([(4, 5, 6), (4, 5)], "Add needs inputs of one rank, got [4, 5, 6], [4, 5] (PyTorch would broadcast the batch"
                          " axis of the shorter against another axis)"),
    ([(4, 5, 6), (4, 3, 6)], "Add cannot broadcast [4, 5, 6], [4, 3, 6]: the sizes along dim 2 (the batch is dim 0)"
                             " must be equal or 1, got 5, 3"),
])
def test_broadcast_errors(shapes: list[tuple[int, ...]], message: str) -> None:
    with pytest.raises(LayerArgError) as info:
        lookup("Add").from_args({}).infer(shapes)
    assert info.value.message == message and info.value.arg == "from"


def test_broadcast_input_gives_every_unit_its_whole_field() -> None:
    """A [C, 1, W] input (averaged over the height) broadcast over [C, H, W]: along the height every unit sees
    that input's one window, rows [0, H-1] (stride 0), joined with a's rows [u-1, u+1]: 12 at the interior units the
    summary describes, 13 at the first and last unit (border units: a's padding row counts on the unclipped axis,
    as their regions say); along the width the union of [u-1, u+1] and [u-2, u+2]."""
    layers = [
        {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1, "name": "a", "from": "input"},
        {"type": "AdaptiveAvgPool2d", "output_size": [1, None], "name": "rows", "from": "input"},
        {"type": "Conv2d", "out_channels": 1, "kernel_size": [1, 5], "padding": [0, 2], "name": "b"},
        {"type": "Multiply", "from": ["a", "b"], "name": "product"},
    ]
    summary = analyze((1, 12, 10), layers)
    height, width = summary.layer("product").rf.axes
    assert (height.size, height.size_min, height.stride) == (12, 12, 0)   # b's whole column, for every unit
    assert [height.region(u) for u in (0, 1, 10, 11)] == [(-1, 11), (0, 11), (0, 11), (0, 12)]
    assert (width.size, width.size_min, width.stride, width.padding, width.path_size_min) == (5, 5, 1, 2, 3)
    assert summary.layer("product").rf.misaligned                         # strides 1 and 0 meet
    x = positive_input((1, 12, 10))
    a = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    b = nn.Conv2d(1, 1, (1, 5), padding=(0, 2), bias=False).double()
    with torch.no_grad():
        a.weight.fill_(1.0)
        b.weight.fill_(1.0)
    y = a(x) * b(x.mean(2, keepdim=True))
    check_regions(y, x, summary.layer("product").rf, "broadcast product")
