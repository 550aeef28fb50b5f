"""ChannelShuffle, the composite convolutions (depthwise-separable, spatially separable, flattened, gated) and the
unshared ones (locally connected, tiled): formulas written from the papers, equivalences, state-dict names,
errors, and how their parts are shown. Their torch cross-checks (shapes, params, MACs, forward numbers) run with
every other type in test_torch_crosscheck / test_executor_torch, with the reference modules of family_cases.py.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from family_references import (DepthwiseSeparableReference, FlattenedReference, GatedReference,  # noqa: E402
                               LocallyConnectedReference, SpatiallySeparableReference, TiledReference)

import convcalc  # noqa: E402
from convcalc.cli import app  # noqa: E402
from convcalc.errors import ConvcalcError, LayerArgError  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

torch.set_num_threads(1)


def layer(type_name: str, **args):
    return lookup(type_name).from_args(args)


def run_layer(unit, x: np.ndarray, params: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """Forward of one unit in float64 on a (N, C, *S) array; returns (output (N, C, *S), MACs counted)."""
    in_shape = tuple(x.shape[1:])
    inferred = unit.infer([in_shape])
    if params is None:
        params = unit.init_params(inferred, np.random.default_rng(0))
    prepared = unit.prepare(params, [in_shape], inferred.out_shape, np.dtype(np.float64))
    counter = MacCounter()
    y = unit.forward([to_storage(x)], prepared, counter)
    return np.asarray(to_logical(y)), counter.total


def graph_of(layers: list[dict], input_shape: list[int]):
    return convcalc.build_graph(convcalc.spec_from_dict({"name": "t", "input": input_shape, "layers": layers}))


# ============================================================================ ChannelShuffle (semantics §6.1)

@pytest.mark.parametrize("channels, groups, order", [
    (6, 2, [0, 3, 1, 4, 2, 5]),          # VERIFIED vectors of semantics §6.1
    (6, 3, [0, 2, 4, 1, 3, 5]),
    (6, 1, [0, 1, 2, 3, 4, 5]),
    (6, 6, [0, 1, 2, 3, 4, 5]),
])
def test_channel_shuffle_order(channels, groups, order):
    x = np.arange(channels, dtype=np.float64).reshape(1, channels, 1, 1) * np.ones((1, 1, 2, 3))
    y, macs = run_layer(layer("ChannelShuffle", groups=groups), x)
    assert y[0, :, 0, 0].tolist() == order
    assert macs == 0


def test_channel_shuffle_element_map_and_inverse():
    channels, groups = 12, 3
    x = np.random.default_rng(1).standard_normal((2, channels, 4))
    y, _ = run_layer(layer("ChannelShuffle", groups=groups), x)
    n = channels // groups
    for k in range(groups):
        for j in range(n):
            assert np.array_equal(y[:, j * groups + k], x[:, k * n + j])    # out[j*g + k] = in[k*(C/g) + j]
    back, _ = run_layer(layer("ChannelShuffle", groups=n), y)               # the inverse: g' = C/g
    assert np.array_equal(back, x)


def test_channel_shuffle_costs_nothing_and_keeps_the_field():
    summary = convcalc.analyze(graph_of([{"type": "Conv2d", "out_channels": 6, "kernel_size": 3, "groups": 3},
                                         {"name": "s", "type": "ChannelShuffle", "groups": 3}], [3, 8, 8]))
    row = summary.layer("s")
    assert (row.params, row.macs, row.output_shape) == (0, 0, (6, 6, 6))
    assert row.rf == summary.layer("conv2d_1").rf


def test_channel_shuffle_errors():
    with pytest.raises(LayerArgError, match="the input's 5 channels are not divisible by groups 2"):
        layer("ChannelShuffle", groups=2).infer([(5, 3)])
    with pytest.raises(LayerArgError, match=r"expects a \[C, \*spatial\] input"):
        layer("ChannelShuffle", groups=1).infer([(6,)])
    with pytest.raises(LayerArgError, match="groups must be at least 1, got 0"):
        layer("ChannelShuffle", groups=0)


# ============================================================================ depthwise-separable (semantics §6.7)

@pytest.mark.parametrize("channels, out, k, multiplier, stride, size", [
    (32, 64, 3, 1, 1, 112), (512, 1024, 3, 1, 2, 14), (3, 8, 5, 2, 1, 9), (16, 4, 7, 3, 3, 20), (1, 1, 1, 1, 1, 1)])
def test_depthwise_separable_params_macs_and_cost_ratio(channels, out, k, multiplier, stride, size):
    unit = layer("DepthwiseSeparableConv2d", out_channels=out, kernel_size=k, stride=stride, padding=k // 2,
                 depth_multiplier=multiplier, bias=False)
    inferred = unit.infer([(channels, size, size)])
    o = (size + 2 * (k // 2) - k) // stride + 1
    mid = channels * multiplier
    # depthwise k*k*C*M, pointwise C*M*N (§6.7); MACs: output positions x inputs per output
    assert inferred.params == {"depthwise.weight": (mid, 1, k, k), "pointwise.weight": (out, mid, 1, 1)}
    assert inferred.param_count == k * k * mid + mid * out
    assert inferred.macs == o * o * mid * k * k + o * o * mid * out
    assert [p.name for p in inferred.parts] == ["depthwise", "pointwise"]
    assert sum(p.inferred.macs for p in inferred.parts) == inferred.macs
    standard = inferred.baseline.inferred
    assert standard.out_shape == inferred.out_shape == (out, o, o)
    assert standard.macs == o * o * channels * out * k * k
    # MobileNet §3.1: cost ratio 1/N + 1/D_K^2 (times M with a channel multiplier), exactly, for any stride
    assert Fraction(inferred.macs, standard.macs) == Fraction(multiplier, out) + Fraction(multiplier, k * k)


def test_depthwise_separable_biases_norm_and_activation_parameters():
    unit = layer("DepthwiseSeparableConv2d", out_channels=4, kernel_size=3, depthwise_bias=True,
                 norm={"type": "BatchNorm2d", "eps": 1e-3}, activation="PReLU")
    inferred = unit.infer([(2, 5, 5)])
    assert dict(inferred.params) == {"depthwise.weight": (2, 1, 3, 3), "depthwise.bias": (2,), "norm.weight": (2,),
                                     "norm.bias": (2,), "activation.weight": (1,), "pointwise.weight": (4, 2, 1, 1),
                                     "pointwise.bias": (4,)}
    assert dict(inferred.buffers) == {"norm.running_mean": (2,), "norm.running_var": (2,),
                                      "norm.num_batches_tracked": ()}
    reference = DepthwiseSeparableReference(2, 4, 3, depthwise_bias=True, norm={"type": "BatchNorm2d", "eps": 1e-3},
                                            activation="PReLU")
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == {**inferred.params, **inferred.buffers}
    assert inferred.parts[1].layer.eps == 1e-3


def spec_layers_dw() -> list[dict]:
    return [{"name": "stem", "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
            {"name": "dw", "type": "DepthwiseSeparableConv2d", "out_channels": 6, "kernel_size": 3, "stride": 2,
             "padding": 1, "norm": "BatchNorm2d", "activation": "ReLU6", "bias": False},
            {"name": "bn", "type": "BatchNorm2d"},
            {"name": "relu", "type": "ReLU"}]


def test_torch_state_dict_with_part_names_loads_and_matches():
    """A torch model whose child module carries the spec's layer name has state_dict keys
    'dw.depthwise.weight', 'dw.norm.running_var', ...: they load as they are, and the numbers agree
    (the composite's inner BatchNorm folds into its depthwise conv, the outer one into its pointwise conv)."""
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
    model.dw = DepthwiseSeparableReference(4, 6, 3, stride=2, padding=1, norm="BatchNorm2d", activation="ReLU6",
                                           bias=False)
    model.bn = torch.nn.BatchNorm2d(6)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif tensor.is_floating_point():
                tensor.normal_()
    model = model.double().eval()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        expected = torch.relu(model.bn(model.dw(model.stem(x)))).numpy()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    assert "dw.depthwise.weight" in state and "dw.norm.running_var" in state
    graph = graph_of(spec_layers_dw(), [3, 9, 9])
    for fold in (True, False):
        result = Network(graph, (3, 9, 9), state=state, dtype="float64", fold_batchnorm=fold).run(x.numpy())
        assert result.ok
        assert np.abs(result.output - expected).max() < 1e-10
        assert [r.folded for r in result.layers] == [False, False, fold, False]


def test_depthwise_separable_part_errors_name_the_part():
    graph = graph_of([{"name": "dw", "type": "DepthwiseSeparableConv2d", "out_channels": 6, "kernel_size": 5}],
                     [3, 3, 3])
    with pytest.raises(ConvcalcError) as info:
        convcalc.analyze(graph)
    assert info.value.message == ("layer 'dw' (DepthwiseSeparableConv2d): depthwise (Conv2d): kernel_size 5 spans 5,"
                                  " but the padded input is 3 wide along the height")
    with pytest.raises(LayerArgError) as info:
        layer("DepthwiseSeparableConv2d", out_channels=6, kernel_size=3, stride=2, padding="same")
    assert info.value.message.startswith("depthwise (Conv2d): padding='same' is not supported for strided")
    assert info.value.arg == "padding"
    with pytest.raises(LayerArgError) as info:
        layer("DepthwiseSeparableConv2d", out_channels=6, kernel_size=3, norm="BatchNorm2")
    assert info.value.arg == "norm"
    assert info.value.message.startswith("norm: unknown layer type 'BatchNorm2'; did you mean 'BatchNorm2d'")
    with pytest.raises(LayerArgError) as info:
        layer("DepthwiseSeparableConv2d", out_channels=6, kernel_size=3, activation={"type": "LeakyReLU", "slope": 1})
    assert info.value.message.startswith("activation: unknown argument 'slope' for LeakyReLU")
    with pytest.raises(LayerArgError, match="activation .MaxPool2d. must keep the shape"):
        layer("DepthwiseSeparableConv2d", out_channels=6, kernel_size=3,
              activation={"type": "MaxPool2d", "kernel_size": 2}).infer([(2, 8, 8)])
    with pytest.raises(LayerArgError, match="in_channels is 4 but the input has 3 channels"):
        layer("DepthwiseSeparableConv2d", in_channels=4, out_channels=6, kernel_size=3).infer([(3, 8, 8)])


def test_composite_json_and_parts_rows():
    graph = graph_of(spec_layers_dw(), [3, 9, 9])
    data = json.loads(json.dumps(convcalc.report.summary.to_json(convcalc.analyze(graph))))
    dw = data["layers"][1]
    assert [p["name"] for p in dw["parts"]] == ["dw.depthwise", "dw.norm", "dw.activation", "dw.pointwise"]
    assert dw["parts"][0]["inputs"] == ["stem"] and dw["parts"][1]["inputs"] == ["dw.depthwise"]
    assert sum(p["params"] for p in dw["parts"]) == dw["params"] == 36 + 8 + 24
    assert sum(p["macs"] for p in dw["parts"]) == dw["macs"] == 25 * 4 * 9 + 25 * 4 * 6
    assert dw["baseline"]["type"] == "Conv2d" and dw["baseline"]["macs"] == 25 * 4 * 6 * 9
    assert dw["baseline"]["macs_ratio_exact"] == str(Fraction(1, 6) + Fraction(1, 9))
    assert data["layers"][0]["parts"] == [] and data["layers"][0]["baseline"] is None
    runner = CliRunner()
    spec = {"name": "t", "input": [3, 9, 9], "layers": spec_layers_dw()}
    text = json.dumps(spec)
    plain = runner.invoke(app, ["analyze", "-", "--format", "csv"], input=text)
    parts = runner.invoke(app, ["analyze", "-", "--format", "csv", "--parts"], input=text)
    assert plain.exit_code == parts.exit_code == 0
    names = [line.split(",")[0] for line in parts.stdout.splitlines()[1:]]
    assert names == ["stem", "dw", "dw.depthwise", "dw.norm", "dw.activation", "dw.pointwise", "dw ≙ standard", "bn",
                     "relu"]
    assert len(plain.stdout.splitlines()) == 5
    table = runner.invoke(app, ["analyze", "-", "--parts"], input=text)
    assert table.exit_code == 0 and "dw.pointwise" in table.stdout and "×0.2778 MACs" in table.stdout


# ============================================================================ spatially separable (semantics §6.5)

def test_spatially_separable_params_beside_the_kernel_it_replaces():
    unit = layer("SpatiallySeparableConv2d", out_channels=192, mid_channels=160, kernel_size=[7, 5], padding=[3, 2])
    inferred = unit.infer([(128, 17, 17)])
    # kh*C_in*C_m + kw*C_m*C_out (+ biases) vs kh*kw*C_in*C_out (+ bias), §6.5
    assert inferred.param_count == 7 * 128 * 160 + 160 + 5 * 160 * 192 + 192
    assert inferred.baseline.inferred.param_count == 7 * 5 * 128 * 192 + 192
    assert inferred.out_shape == inferred.baseline.inferred.out_shape == (192, 17, 17)
    assert inferred.macs == 17 * 17 * (160 * 128 * 7 + 192 * 160 * 5)
    assert inferred.params["vertical.weight"] == (160, 128, 7, 1)
    assert inferred.params["horizontal.weight"] == (192, 160, 1, 5)
    reference = SpatiallySeparableReference(128, 192, (7, 5), padding=(3, 2), mid_channels=160)
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == dict(inferred.params)


@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (2, [3, 1], 1), (1, "same", [2, 1]), (3, 2, 2)])
def test_spatially_separable_is_a_rank_one_kernel(stride, padding, dilation):
    """vertical u (C -> 1) then horizontal v (1 -> O), no bias, equals the k_h×k_w conv with
    W[o, c, y, x] = v[o, x] * u[c, y]: for one channel in and out, the rank-1 kernel u vᵀ (§6.5)."""
    rng = np.random.default_rng(3)
    channels, out, kh, kw = 3, 2, 3, 4
    unit = layer("SpatiallySeparableConv2d", out_channels=out, mid_channels=1, kernel_size=[kh, kw], stride=stride,
                 padding=padding, dilation=dilation, bias=False)
    u, v = rng.standard_normal((1, channels, kh, 1)), rng.standard_normal((out, 1, 1, kw))
    x = rng.standard_normal((2, channels, 11, 12))
    y, macs = run_layer(unit, x, {"vertical.weight": u, "horizontal.weight": v})
    kernel = np.einsum("cy,ox->ocyx", u[0, :, :, 0], v[:, 0, 0, :])
    conv = torch.nn.Conv2d(channels, out, (kh, kw), stride, padding, dilation, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel))
        expected = conv(torch.from_numpy(x)).numpy()
    assert y.shape == expected.shape
    assert np.abs(y - expected).max() < 1e-10
    assert macs == 2 * unit.infer([(channels, 11, 12)]).macs
    assert all(np.linalg.matrix_rank(kernel[o, c]) == 1 for o in range(out) for c in range(channels))


def test_spatially_separable_receptive_field_is_the_full_kernels():
    summary = convcalc.analyze(graph_of([
        {"name": "a", "type": "SpatiallySeparableConv2d", "out_channels": 2, "kernel_size": [7, 3], "stride": 2,
         "padding": [3, 1]},
        {"name": "b", "type": "Conv2d", "out_channels": 2, "kernel_size": [7, 3], "stride": 2, "padding": [3, 1],
         "from": "input"}], [1, 20, 20]))
    assert summary.layer("a").rf == summary.layer("b").rf
    assert summary.layer("a").output_shape == summary.layer("b").output_shape


# ============================================================================ flattened (Jin et al. 2014, §6.6)

def test_flattened_params_formula_and_rank_one_equivalence():
    channels, filters, k = 3, 4, 3
    unit = layer("FlattenedConv2d", out_channels=filters, kernel_size=k, bias=False)
    inferred = unit.infer([(channels, 8, 8)])
    assert inferred.param_count == channels * filters + filters * k + filters * k == 36     # §6.6: 36 vs 108
    assert inferred.baseline.inferred.param_count == channels * filters * k * k == 108
    assert layer("FlattenedConv2d", out_channels=filters, kernel_size=k).infer([(channels, 8, 8)]).param_count == \
        36 + 3 * filters                                                                        # a bias after each
    assert inferred.macs == 8 * 8 * filters * channels + 6 * 8 * filters * k + 6 * 6 * filters * k   # L, V, H
    rng = np.random.default_rng(5)
    alpha = rng.standard_normal((filters, channels, 1, 1))
    beta = rng.standard_normal((filters, 1, k, 1))
    gamma = rng.standard_normal((filters, 1, 1, k))
    x = rng.standard_normal((1, channels, 8, 8))
    y, _ = run_layer(unit, x, {"lateral.weight": alpha, "vertical.weight": beta, "horizontal.weight": gamma})
    kernel = np.einsum("fc,fy,fx->fcyx", alpha[:, :, 0, 0], beta[:, 0, :, 0], gamma[:, 0, 0, :])
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(kernel)).numpy()
    assert np.abs(y - expected).max() < 1e-10
    reference = FlattenedReference(channels, filters, k)
    assert sorted(reference.state_dict()) == sorted(layer("FlattenedConv2d", out_channels=filters, kernel_size=k)
                                                    .infer([(channels, 8, 8)]).params)


# ============================================================================ gated (Yu et al. 2019, §6.2)

@pytest.mark.parametrize("activation", ["ELU", "ReLU", {"type": "LeakyReLU", "negative_slope": 0.2}, None])
def test_gated_conv_is_two_convs_and_matches_its_definition(activation):
    channels, out, k = 4, 6, 3
    unit = layer("GatedConv2d", out_channels=out, kernel_size=k, padding=2, dilation=2, activation=activation)
    inferred = unit.infer([(channels, 10, 10)])
    one_conv = k * k * channels * out + out
    assert inferred.param_count == 2 * one_conv                                   # §6.2: 2*(k*k*C_in*C_out + C_out)
    assert inferred.macs == 2 * 10 * 10 * out * channels * k * k
    assert inferred.baseline.inferred.param_count == one_conv
    torch.manual_seed(1)
    reference = GatedReference(channels, out, k, padding=2, dilation=2, activation=activation).double()
    x = torch.randn(2, channels, 10, 10, dtype=torch.float64)
    state = {key: value.numpy() for key, value in reference.state_dict().items()}
    y, _ = run_layer(unit, x.numpy(), state)
    with torch.no_grad():                                                         # O = φ(W_f∗I) ⊙ σ(W_g∗I)
        phi = {"ELU": torch.nn.functional.elu, "ReLU": torch.relu, None: lambda t: t}.get(
            activation if not isinstance(activation, dict) else "",
            lambda t: torch.nn.functional.leaky_relu(t, 0.2))
        expected = phi(reference.feature(x)) * torch.sigmoid(reference.gate(x))
    assert np.abs(y - expected.numpy()).max() < 1e-12


def test_gated_conv_receptive_field_is_the_conv_s():
    summary = convcalc.analyze(graph_of([
        {"name": "g", "type": "GatedConv2d", "out_channels": 2, "kernel_size": 5, "stride": 2, "padding": 2},
        {"name": "c", "type": "Conv2d", "out_channels": 2, "kernel_size": 5, "stride": 2, "padding": 2,
         "from": "input"}], [1, 20, 20]))
    assert summary.layer("g").rf == summary.layer("c").rf


# ============================================================================ locally connected (semantics §6.4)

def test_locally_connected_keras_example():
    """Keras LocallyConnected2D: 32×32×3 input, 64 filters 3×3 -> 30×30×64 and 1,612,800 parameters (§9)."""
    inferred = layer("LocallyConnected2d", out_channels=64, kernel_size=3).infer([(3, 32, 32)])
    assert inferred.out_shape == (64, 30, 30)
    assert inferred.param_count == 30 * 30 * 64 * 3 * 3 * 3 + 30 * 30 * 64 == 1_612_800
    assert inferred.params == {"weight": (30, 30, 64, 3, 3, 3), "bias": (30, 30, 64)}
    assert inferred.macs == 30 * 30 * 64 * 3 * 3 * 3
    # Keras LocallyConnected1D's docstring example: (10, 32) input, 64 filters of width 3 -> (8, 64)
    one = layer("LocallyConnected1d", out_channels=64, kernel_size=3).infer([(32, 10)])
    assert one.out_shape == (64, 8)
    assert one.param_count == 8 * 64 * 32 * 3 + 8 * 64 == 49_664


@pytest.mark.parametrize("args, shape", [
    ({"out_channels": 3, "kernel_size": [3, 2], "stride": 2, "padding": 1, "dilation": [1, 2]}, (2, 9, 8)),
    ({"out_channels": 2, "kernel_size": 4, "padding": "same"}, (3, 5, 6)),
    ({"out_channels": 1, "kernel_size": 1, "bias": False}, (1, 3, 3)),
])
def test_locally_connected_matches_the_loop_of_its_definition(args, shape):
    unit = layer("LocallyConnected2d", **args)
    torch.manual_seed(2)
    reference = LocallyConnectedReference(shape[0], input_size=shape[1:],
                                          **{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    reference = reference.double()
    x = torch.randn(2, *shape, dtype=torch.float64)
    state = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    inferred = unit.infer([shape])
    assert {k: tuple(v.shape) for k, v in state.items()} == dict(inferred.params)
    y, macs = run_layer(unit, x.numpy(), state)
    with torch.no_grad():
        expected = reference(x).numpy()
    assert np.abs(y - expected).max() < 1e-10
    assert macs == 2 * inferred.macs


def test_locally_connected_with_one_position_is_a_dense_layer_and_a_shared_kernel_is_a_conv():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 5, 5))
    unit = layer("LocallyConnected2d", out_channels=4, kernel_size=3, padding=1)
    kernel, bias = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    shared = {"weight": np.broadcast_to(kernel, (5, 5, 4, 2, 3, 3)), "bias": np.broadcast_to(bias, (5, 5, 4))}
    y, _ = run_layer(unit, x, shared)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(kernel), torch.from_numpy(bias),
                                          padding=1).numpy()
    assert np.abs(y - expected).max() < 1e-10


def test_locally_connected_receptive_field_and_errors_are_the_conv_s():
    summary = convcalc.analyze(graph_of([
        {"name": "lc", "type": "LocallyConnected2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "dilation": 2},
        {"name": "c", "type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "dilation": 2,
         "from": "input"}], [1, 20, 20]))
    assert summary.layer("lc").rf == summary.layer("c").rf
    with pytest.raises(LayerArgError) as info:
        layer("LocallyConnected2d", out_channels=2, kernel_size=3).infer([(1, 2, 8)])
    assert info.value.message == "kernel_size 3 spans 3, but the padded input is 2 wide along the height"
    with pytest.raises(LayerArgError, match="padding='same' is not supported for strided"):
        layer("LocallyConnected1d", out_channels=2, kernel_size=3, stride=2, padding="same")


# ============================================================================ tiled (Ngiam et al. 2010, §6.3)

def test_tiled_params_formula():
    inferred = layer("TiledConv2d", out_channels=8, kernel_size=[3, 5], tile_size=[2, 3]).infer([(4, 12, 12)])
    assert inferred.param_count == 2 * 3 * 8 * 4 * 3 * 5 + 8               # t_h*t_w*C_out*C_in*kh*kw + C_out
    assert inferred.params == {"weight": (2, 3, 8, 4, 3, 5), "bias": (8,)}
    assert inferred.out_shape == (8, 10, 8)
    assert inferred.macs == 10 * 8 * 8 * 4 * 3 * 5                        # as the plain conv


@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (2, 1, 1), (1, "same", 2), ([3, 1], [2, 0], [1, 2])])
def test_tiled_with_tile_1_is_the_conv(stride, padding, dilation):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 11, 9))
    kernel, bias = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    unit = layer("TiledConv2d", out_channels=4, kernel_size=[3, 2], tile_size=1, stride=stride, padding=padding,
                 dilation=dilation)
    y, macs = run_layer(unit, x, {"weight": kernel[None, None], "bias": bias})
    torch_padding = tuple(padding) if isinstance(padding, list) else padding
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(kernel), torch.from_numpy(bias),
                                          tuple(stride) if isinstance(stride, list) else stride, torch_padding,
                                          tuple(dilation) if isinstance(dilation, list) else dilation).numpy()
    assert np.abs(y - expected).max() < 1e-10
    conv = layer("Conv2d", out_channels=4, kernel_size=[3, 2], stride=stride, padding=padding, dilation=dilation)
    assert unit.infer([(3, 11, 9)]).macs == conv.infer([(3, 11, 9)]).macs == macs // 2
    assert unit.infer([(3, 11, 9)]).param_count == conv.infer([(3, 11, 9)]).param_count


@pytest.mark.parametrize("tiles", [[4, 3], [6, 5], 7])
def test_tiled_with_tiles_covering_the_output_is_locally_connected(tiles):
    """t >= the output size: every position has its own kernel, as in a locally connected layer, whose bias is the
    tiled layer's shared bias at every position (the tiled layer does not untie its bias)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 6, 5))
    args = {"out_channels": 3, "kernel_size": [3, 3]}
    tiled = layer("TiledConv2d", tile_size=tiles, **args)
    out = tiled.infer([(2, 6, 5)]).out_shape[1:]
    assert out == (4, 3)
    shape = tiled.infer([(2, 6, 5)]).params["weight"]
    weight, bias = rng.standard_normal(shape), rng.standard_normal(3)
    y, _ = run_layer(tiled, x, {"weight": weight, "bias": bias})
    local = layer("LocallyConnected2d", **args)
    lc_params = {"weight": weight[:out[0], :out[1]], "bias": np.broadcast_to(bias, (*out, 3))}
    expected, _ = run_layer(local, x, lc_params)
    assert np.abs(y - expected).max() < 1e-10
    without_bias, _ = run_layer(layer("TiledConv2d", tile_size=tiles, bias=False, **args), x, {"weight": weight})
    expected, _ = run_layer(layer("LocallyConnected2d", bias=False, **args), x, {"weight": weight[:out[0], :out[1]]})
    assert np.abs(without_bias - expected).max() < 1e-10


def test_tiled_matches_the_loop_of_its_definition():
    torch.manual_seed(3)
    reference = TiledReference(2, 3, (3, 2), (2, 3), stride=2, padding=1, input_size=(9, 11)).double()
    x = torch.randn(2, 2, 9, 11, dtype=torch.float64)
    state = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    y, _ = run_layer(layer("TiledConv2d", out_channels=3, kernel_size=[3, 2], tile_size=[2, 3], stride=2, padding=1),
                     x.numpy(), state)
    with torch.no_grad():
        assert np.abs(y - reference(x).numpy()).max() < 1e-10


# ============================================================================ shared by the family

@pytest.mark.parametrize("type_name, extra", [
    ("DepthwiseSeparableConv2d", {"depth_multiplier": 2, "norm": "BatchNorm2d", "activation": "ReLU"}),
    ("SpatiallySeparableConv2d", {"mid_channels": 3}),
    ("FlattenedConv2d", {}),
    ("GatedConv2d", {}),
    ("TiledConv2d", {"tile_size": [2, 3]}),
    ("LocallyConnected2d", {}),
])
@pytest.mark.parametrize("geometry", [
    {"kernel_size": [5, 3], "stride": 2, "padding": [2, 1]},
    {"kernel_size": 3, "dilation": [2, 3], "padding": "same"},
    {"kernel_size": [4, 2], "stride": [1, 3], "padding": [[2, 1], [0, 1]]},
])
def test_receptive_field_and_output_shape_are_the_plain_conv_s(type_name, extra, geometry):
    """Every family member has the geometry of the conv with the same kernel, stride, padding and dilation."""
    layers = [{"name": "a", "type": "Conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2},
              {"name": "x", "type": type_name, "out_channels": 4, **geometry, **extra},
              {"name": "c", "type": "Conv2d", "out_channels": 4, **geometry, "from": "a"}]
    summary = convcalc.analyze(graph_of(layers, [2, 31, 29]))
    assert summary.layer("x").rf == summary.layer("c").rf
    assert summary.layer("x").output_shape == summary.layer("c").output_shape


def test_spec_errors_in_a_part_argument_are_located():
    text = "name: t\ninput: [3, 8, 8]\nlayers:\n  - {name: dw, type: SeparableConv2d, out_channels: 4,\n" \
           "     kernel_size: 3, activation: Relu6x}\n"
    result = CliRunner().invoke(app, ["analyze", "-"], input=text)
    assert result.exit_code == 2
    assert "<stdin>:5:" in result.stderr
    assert ("layer 'dw' (DepthwiseSeparableConv2d): activation: unknown layer type 'Relu6x'; did you mean 'ReLU6'?"
            in result.stderr)
