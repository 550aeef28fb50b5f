"""convcalc.execution.weights (hand-set kernels, PyTorch's default initialisation, state-dict checks) and
convcalc.execution.inputs.default_input, as units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import convcalc
from convcalc.execution.inputs import default_input
from convcalc.execution.weights import FILTER_NAMES, expected_keys, initial_state, state_from_dict

TEXTBOOK = {
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box": [[1 / 9] * 3] * 3,
}


def graph_of(layers: str, input_shape: str = "[2, 9, 9]", filename: str = "w.yaml"):
    text = f"name: w\ninput: {input_shape}\nlayers:\n{layers}"
    graph = convcalc.build_graph(convcalc.parse_spec(text, filename))
    return graph, convcalc.analyze(graph)


def state_of(layers: str, input_shape: str = "[2, 9, 9]", seed: int = 0):
    graph, summary = graph_of(layers, input_shape)
    return initial_state(graph, summary, seed)


def init_error(layers: str, input_shape: str = "[2, 9, 9]") -> convcalc.ConvcalcError:
    graph, summary = graph_of(layers, input_shape)
    with pytest.raises(convcalc.ConvcalcError) as info:
        initial_state(graph, summary)
    return info.value


# --------------------------------------------------------------------------- named filters

def test_filter_names_are_the_documented_ones():
    assert set(FILTER_NAMES) == set(TEXTBOOK) | {"gaussian"}


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_named_filter_is_the_textbook_matrix(name):
    weight = state_of(f"  - {{name: f, type: Conv2d, out_channels: 3, kernel_size: 3, init: {{weight: {name}}}}}\n")[
        "f"]["weight"]
    assert weight.shape == (3, 2, 3, 3)
    for out_channel in range(3):
        for in_channel in range(2):                          # every (out, in) pair holds the filter
            np.testing.assert_array_equal(weight[out_channel, in_channel], np.array(TEXTBOOK[name], dtype=float))


def test_sobel_pair_is_transposed_and_orientation_is_as_documented():
    sx, sy = np.array(TEXTBOOK["sobel_x"]), np.array(TEXTBOOK["sobel_y"])
    assert np.array_equal(sx.T, sy)
    # sobel_x responds positively to intensity increasing to the right (a vertical edge), cross-correlation
    ramp = np.tile(np.arange(3.0), (3, 1))
    assert (sx * ramp).sum() == 8 and (sy * ramp).sum() == 0


@pytest.mark.parametrize("kernel, dims", [("[3, 5]", 2), ("7", 2), ("[2, 3, 4]", 3), ("4", 1)])
def test_box_sums_to_one(kernel, dims):
    conv = {1: "Conv1d", 2: "Conv2d", 3: "Conv3d"}[dims]
    shape = {1: "[2, 12]", 2: "[2, 12, 12]", 3: "[2, 6, 12, 12]"}[dims]
    weight = state_of(f"  - {{name: f, type: {conv}, out_channels: 2, kernel_size: {kernel}, init: {{weight: box}}}}\n",
                      shape)["f"]["weight"]
    kernel_size = weight.shape[2:]
    assert len(kernel_size) == dims
    assert np.allclose(weight.sum(axis=tuple(range(2, 2 + dims))), 1.0)
    assert np.allclose(weight, 1.0 / np.prod(kernel_size))


def opencv_sigma(k: int) -> float:
    """OpenCV's getGaussianKernel default sigma for k taps (sigma <= 0)."""
    return 0.3 * ((k - 1) * 0.5 - 1) + 0.8


@pytest.mark.parametrize("kernel", ["3", "5", "[3, 7]", "9"])
def test_gaussian_sums_to_one_is_symmetric_and_separable(kernel):
    weight = state_of(f"  - {{name: g, type: Conv2d, out_channels: 1, kernel_size: {kernel},"
                      f" init: {{weight: gaussian}}}}\n", "[1, 12, 12]")["g"]["weight"][0, 0]
    kh, kw = weight.shape
    assert math.isclose(weight.sum(), 1.0, rel_tol=1e-12)
    assert np.allclose(weight, weight[::-1, :]) and np.allclose(weight, weight[:, ::-1])
    if kh == kw:
        assert np.allclose(weight, weight.T)
    assert weight.argmax() == (kh // 2) * kw + kw // 2 and (weight > 0).all()
    taps = [np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * opencv_sigma(k) ** 2)) for k in (kh, kw)]
    expected = np.outer(taps[0] / taps[0].sum(), taps[1] / taps[1].sum())
    np.testing.assert_allclose(weight, expected, rtol=1e-12)


def test_gaussian_in_one_and_three_dimensions():
    w1 = state_of("  - {name: g, type: Conv1d, out_channels: 1, kernel_size: 5, init: {weight: gaussian}}\n",
                  "[1, 20]")["g"]["weight"][0, 0]
    w3 = state_of("  - {name: g, type: Conv3d, out_channels: 1, kernel_size: 5, init: {weight: gaussian}}\n",
                  "[1, 8, 8, 8]")["g"]["weight"][0, 0]
    assert math.isclose(w1.sum(), 1.0, rel_tol=1e-12) and math.isclose(w3.sum(), 1.0, rel_tol=1e-12)
    np.testing.assert_allclose(w3, np.multiply.outer(np.multiply.outer(w1, w1), w1), rtol=1e-12)


# --------------------------------------------------------------------------- init: forms

def test_init_one_filter_per_output_channel():
    weight = state_of("  - {name: s, type: Conv2d, out_channels: 3, kernel_size: 3, bias: false,"
                      " init: {weight: [sobel_x, sobel_y, identity]}}\n")["s"]["weight"]
    assert weight.shape == (3, 2, 3, 3)
    for out_channel, name in enumerate(["sobel_x", "sobel_y", "identity"]):
        for in_channel in range(2):
            np.testing.assert_array_equal(weight[out_channel, in_channel], TEXTBOOK[name])


def test_init_list_forms():
    kernel = [[1, 2], [3, 4]]
    per_output = [[[1, 0], [0, 0]], [[0, 0], [0, 2]], [[5, 5], [5, 5]]]
    full = np.arange(3 * 2 * 2 * 2, dtype=float).reshape(3, 2, 2, 2)
    state = state_of(
        f"  - {{name: k, type: Conv2d, out_channels: 3, kernel_size: 2, init: {{weight: {kernel}, bias: 0.5}}}}\n"
        f"  - {{name: p, type: Conv2d, out_channels: 3, kernel_size: 2, from: input,"
        f" init: {{weight: {per_output}, bias: [1, 2, 3]}}}}\n"
        f"  - {{name: f, type: Conv2d, out_channels: 3, kernel_size: 2, from: input,"
        f" init: {{weight: {full.tolist()}}}}}\n"
        f"  - {{name: n, type: Conv2d, out_channels: 3, kernel_size: 2, from: input, init: {{weight: -2}}}}\n"
        f"  - {{name: mixed, type: Conv2d, out_channels: 2, kernel_size: 3, from: input,"
        f" init: {{weight: [laplacian, [[0, 0, 0], [0, 3, 0], [0, 0, 0]]]}}}}\n"
        "  - {name: bn, type: BatchNorm2d, from: mixed, init: {running_var: [4, 9], weight: 2}}\n")
    assert np.array_equal(state["k"]["weight"], np.broadcast_to(np.array(kernel, float), (3, 2, 2, 2)))
    assert np.array_equal(state["k"]["bias"], np.full(3, 0.5))
    for out_channel in range(3):
        for in_channel in range(2):
            assert np.array_equal(state["p"]["weight"][out_channel, in_channel], per_output[out_channel])
    assert np.array_equal(state["p"]["bias"], [1, 2, 3])
    assert np.array_equal(state["f"]["weight"], full)
    assert np.array_equal(state["n"]["weight"], np.full((3, 2, 2, 2), -2.0))
    assert np.array_equal(state["mixed"]["weight"][0, 1], TEXTBOOK["laplacian"])
    assert np.array_equal(state["mixed"]["weight"][1, 0], [[0, 0, 0], [0, 3, 0], [0, 0, 0]])
    assert np.array_equal(state["bn"]["running_var"], [4, 9]) and np.array_equal(state["bn"]["weight"], [2, 2])
    assert np.array_equal(state["bn"]["running_mean"], [0, 0])             # not preset: the default
    # a bias not preset keeps PyTorch's default initialisation
    bound = 1 / math.sqrt(2 * 2 * 2)
    assert np.abs(state["f"]["bias"]).max() <= bound and np.abs(state["f"]["bias"]).max() > 0


def test_init_expressions_use_args():
    text = ("name: w\ninput: [1, 9, 9]\nargs: {gain: 3}\nlayers:\n"
            "  - {name: c, type: Conv2d, out_channels: 1, kernel_size: 1,"
            " init: {weight: $gain, bias: '${gain * 2}'}}\n")
    graph = convcalc.build_graph(convcalc.parse_spec(text, "w.yaml"), {"gain": 5})
    state = initial_state(graph, convcalc.analyze(graph))
    assert state["c"]["weight"].item() == 5 and state["c"]["bias"].item() == 10


@pytest.mark.parametrize("layer, message", [
    ("{name: c5, type: Conv2d, out_channels: 2, kernel_size: 5, init: {weight: sobel_x}}",
     "w.yaml:4:{col}: layer 'c5' (Conv2d): init of 'weight': filter 'sobel_x' is 3x3, but the kernel is 5x5"),
    ("{name: bad, type: Conv2d, out_channels: 2, kernel_size: 3, init: {weight: sobelx}}",
     "w.yaml:4:{col}: layer 'bad' (Conv2d): init of 'weight': unknown filter 'sobelx'; valid: sobel_x, sobel_y,"
     " laplacian, sharpen, emboss, box, identity, gaussian"),
    ("{name: even, type: Conv2d, out_channels: 2, kernel_size: 2, init: {weight: identity}}",
     "w.yaml:4:{col}: layer 'even' (Conv2d): init of 'weight': filter 'identity' needs odd kernel sizes, got 2x2"),
    ("{name: gam, type: Conv2d, out_channels: 2, kernel_size: 3, init: {gamma: 1}}",
     "w.yaml:4:{col}: layer 'gam' (Conv2d): 'init' names 'gamma', which this layer does not have"
     " (it has: weight, bias)"),
    ("{name: rag, type: Conv2d, out_channels: 2, kernel_size: 3, init: {weight: [[1, 2], [3]]}}",
     "w.yaml:4:{col}: layer 'rag' (Conv2d): init of 'weight': the list is ragged or holds something other than"
     " numbers and filter names"),
    ("{name: fit, type: Conv2d, out_channels: 2, kernel_size: 3, init: {bias: [1, 2, 3]}}",
     "w.yaml:4:{col}: layer 'fit' (Conv2d): init of 'bias': a list of shape [3] does not fit [2]"),
    ("{name: lin, type: Linear, out_features: 4, init: {weight: box}}",
     "w.yaml:4:{col}: layer 'lin' (Linear): init of 'weight': a named filter needs a kernel, but the shape is [4, 2]"),
])
def test_bad_init_is_located_and_names_the_layer(layer, message):
    line = f"  - {layer}\n"
    column = line.index("init: {") + len("init: {") + 1                   # the parameter's key
    input_shape = "[2]" if "Linear" in layer else "[2, 9, 9]"
    error = init_error(line, input_shape)
    assert str(error) == message.format(col=column)
    assert error.location is not None and (error.location.line, error.location.column) == (4, column)


def test_bad_init_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from convcalc.cli import app

    spec = tmp_path / "bad.yaml"
    line = "  - {name: edge, type: Conv2d, out_channels: 1, kernel_size: 3, init: {weight: sobel}}\n"
    spec.write_text("name: b\ninput: [1, 8, 8]\nlayers:\n" + line)
    column = line.index("weight") + 1
    result = CliRunner().invoke(app, ["run", str(spec)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {spec}:4:{column}: layer 'edge' (Conv2d): init of 'weight':"
                             " unknown filter 'sobel'; valid: sobel_x, sobel_y, laplacian, sharpen, emboss, box,"
                             " identity, gaussian\n")


# --------------------------------------------------------------------------- PyTorch's default initialisation

def test_conv_and_linear_initialisation_distribution():
    state = state_of("  - {name: conv, type: Conv2d, out_channels: 128, kernel_size: 3}\n"
                     "  - {name: pool, type: AdaptiveAvgPool2d, output_size: 1}\n"
                     "  - {name: flat, type: Flatten}\n"
                     "  - {name: fc, type: Linear, out_features: 300}\n", "[64, 9, 9]")
    for layer, fan_in, count in (("conv", 64 * 9, 128 * 64 * 9), ("fc", 128, 300 * 128)):
        weight, bias = state[layer]["weight"], state[layer]["bias"]
        assert weight.size == count
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
        assert np.abs(weight).max() > 0.99 * bound                          # the whole interval is used
        assert abs(weight.std() / (bound / math.sqrt(3)) - 1) < 0.02         # U(-b, b): std = b/√3
        assert abs(weight.mean()) < 0.02 * bound
    # the same bound as torch's own default (kaiming_uniform(a=√5) for the weight, 1/√fan_in for the bias)
    torch.manual_seed(0)
    torch_conv = torch.nn.Conv2d(64, 128, 3)
    bound = 1 / math.sqrt(64 * 9)
    assert 0.99 * bound < torch_conv.weight.abs().max().item() <= bound
    assert torch_conv.bias.abs().max().item() <= bound
    assert abs(torch_conv.weight.std().item() / state["conv"]["weight"].std() - 1) < 0.03


def test_batchnorm_initialisation_and_seed():
    layers = ("  - {name: conv, type: Conv2d, out_channels: 5, kernel_size: 3}\n"
              "  - {name: bn, type: BatchNorm2d}\n"
              "  - {name: bn_plain, type: BatchNorm2d, affine: false}\n")
    state = state_of(layers)
    bn = state["bn"]
    assert set(bn) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert np.array_equal(bn["weight"], np.ones(5)) and np.array_equal(bn["bias"], np.zeros(5))
    assert np.array_equal(bn["running_mean"], np.zeros(5)) and np.array_equal(bn["running_var"], np.ones(5))
    assert bn["num_batches_tracked"].shape == () and bn["num_batches_tracked"] == 0
    assert set(state["bn_plain"]) == {"running_mean", "running_var", "num_batches_tracked"}
    # one seeded generator: the same seed draws the same weights, another seed others
    assert np.array_equal(state_of(layers, seed=0)["conv"]["weight"], state["conv"]["weight"])
    assert not np.allclose(state_of(layers, seed=1)["conv"]["weight"], state["conv"]["weight"])


def test_state_from_dict_checks_everything_at_once():
    graph, summary = graph_of("  - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3}\n"
                              "  - {name: bn, type: BatchNorm2d}\n")
    keys = expected_keys(summary)
    assert keys == {"conv.weight": (4, 2, 3, 3), "conv.bias": (4,), "bn.weight": (4,), "bn.bias": (4,),
                    "bn.running_mean": (4,), "bn.running_var": (4,), "bn.num_batches_tracked": ()}
    flat = {k: np.zeros(shape) for k, shape in keys.items() if k != "bn.num_batches_tracked"}
    state = state_from_dict(flat, summary)                               # num_batches_tracked is optional
    assert set(state) == {"conv", "bn"} and set(state["bn"]) == {"weight", "bias", "running_mean", "running_var"}
    flat.pop("conv.bias")
    flat["bn.weight"] = np.zeros(5)
    flat["fc.weight"] = np.zeros(1)
    with pytest.raises(convcalc.ConvcalcError) as info:
        state_from_dict(flat, summary, source="w.npz")
    assert str(info.value) == ("w.npz do not fit the network: missing 1: conv.bias | unexpected 1: fc.weight"
                               " | wrong shape 1: bn.weight is [5], expected [4]")


# --------------------------------------------------------------------------- the built-in test image

@pytest.mark.parametrize("shape", [(2, 50), (1, 7), (3, 40, 30), (1, 17, 64), (4, 9, 9), (2, 6, 20, 24), (7,)],
                         ids=str)
def test_default_input_is_deterministic_in_range_and_shaped(shape):
    first, second = default_input(shape), default_input(list(shape))
    assert first.shape == tuple(shape)
    assert first.dtype == np.float64
    assert np.array_equal(first, second)
    assert np.isfinite(first).all() and first.min() >= 0.0 and first.max() <= 1.0
    if first.size > 8:
        assert first.std() > 0.05                                        # a signal, not a constant


def test_default_input_content():
    image = default_input((3, 64, 64))
    assert not np.array_equal(image[0], image[1]) and not np.array_equal(image[1], image[2])   # tinted channels
    assert image.max() > 0.9 and image.min() < 0.15                     # bright disc, dark bar
    # edges in both orientations
    assert np.abs(np.diff(image[0], axis=0)).max() > 0.3 and np.abs(np.diff(image[0], axis=1)).max() > 0.3
    volume = default_input((1, 4, 32, 32))
    assert not np.array_equal(volume[0, 0], volume[0, -1])              # the disc moves with depth
    signal = default_input((1, 100))[0]
    assert len(np.unique(signal)) > 10
    # 4 channels: the tint repeats with period 3
    four = default_input((4, 16, 16))
    assert np.array_equal(four[0], four[3])
