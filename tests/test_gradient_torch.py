"""`convcalc.proof.gradient.input_gradient` (the generic backward walk over a network) against torch autograd.

Random small networks (the `networks` strategy of `test_executor_torch`: conv -> bn -> activation -> pool chains,
residual blocks with an Add, projection shortcuts, BatchNorms that cannot fold, a Linear over the rows of a
[C, L] tensor, a pooled Linear head) and branching ones with Concat and Add (`branching_networks` below) are
built both as a convcalc graph and from torch.nn modules with the same random weights. For a layer drawn at
random (or the network input) and a random cotangent ``g`` shaped like its output, convcalc's
``d(sum(g * y))/dx``, with BatchNorm folding and without, must equal ``torch.autograd.grad(y, x, g)`` in float64
within ``1e-9 * max(1, max|torch's gradient|)`` (float32: 1e-4).
"""

from __future__ import annotations

import copy
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_executor_torch import (ACTIVATIONS, GraphBuilder, TorchGraph, assert_close, f32_exact,  # noqa: E402
                                 networks, randomize, state_as_numpy)

import convcalc  # noqa: E402
from convcalc.errors import ConvcalcError, LayerArgError  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.proof.gradient import input_gradient  # noqa: E402
from convcalc.spec.graph import INPUT  # noqa: E402

torch.set_num_threads(1)


class TorchValues(TorchGraph):
    """TorchGraph with Concat (torch.cat) too, returning every layer's output."""

    def __init__(self, builder: GraphBuilder):
        without_concat = copy.copy(builder)             # TorchGraph builds a module for every layer but Add
        without_concat.specs = [spec for spec in builder.specs if spec[1] != "Concat"]
        super().__init__(without_concat)
        self.order = builder.specs

    def values(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        values = {INPUT: x}
        for name, type_name, args, inputs in self.order:
            if type_name == "Add":
                values[name] = torch.add(values[inputs[0]], values[inputs[1]])
            elif type_name == "Concat":
                values[name] = torch.cat([values[i] for i in inputs], dim=args.get("dim", 1))
            else:
                values[name] = self.blocks[name](values[inputs[0]])
        return values


@st.composite
def branching_networks(draw) -> GraphBuilder:
    """An Inception-like block: parallel conv branches (different kernels, widths, a pool branch) concatenated
    along the channels, a 1x1 conv after, an Add with a projection of the block's input, then an activation;
    sometimes a second Concat that reads one tensor twice."""
    dims = draw(st.sampled_from([1, 2, 2]))
    top = {1: 12, 2: 8}[dims]
    builder = GraphBuilder((draw(st.integers(1, 3)), *draw(st.lists(st.integers(4, top), min_size=dims,
                                                                      max_size=dims))))
    conv, bn = f"Conv{dims}d", f"BatchNorm{dims}d"
    branches = []
    for _ in range(draw(st.integers(2, 3))):
        k = draw(st.sampled_from([1, 3, 5]))
        h = builder.add(conv, {"out_channels": draw(st.integers(1, 3)), "kernel_size": k, "padding": k // 2,
                               "padding_mode": draw(st.sampled_from(["zeros", "zeros", "reflect", "circular"]))},
                        INPUT)
        if draw(st.booleans()):
            h = builder.add(bn, {}, h)
        activation, args = draw(ACTIVATIONS)
        branches.append(builder.add(activation, args, h))
    if draw(st.booleans()):
        branches.append(builder.add(f"MaxPool{dims}d", {"kernel_size": 3, "stride": 1, "padding": 1}, INPUT))
    merged = builder.add("Concat", {}, *branches)
    width = draw(st.integers(1, 4))
    mixed = builder.add(conv, {"out_channels": width, "kernel_size": 1}, merged)
    shortcut = builder.add(conv, {"out_channels": width, "kernel_size": 1, "bias": False}, INPUT)
    out = builder.add("ReLU", {}, builder.add("Add", {}, mixed, shortcut))
    if draw(st.booleans()):
        builder.add("Concat", {}, out, mixed, out)
    return builder


def torch_input_gradient(model: TorchValues, x: torch.Tensor, layer: str, cotangent: np.ndarray) -> np.ndarray:
    x = x.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = model.values(x)[layer]
    (grad,) = torch.autograd.grad(y, x, torch.from_numpy(cotangent))
    return grad.numpy()


def check_gradient(builder: GraphBuilder, seed: int, batch: int, pick: int) -> str:
    """Returns the chosen layer's type (for the hypothesis statistics)."""
    graph = builder.graph()
    gen = torch.Generator().manual_seed(seed)
    model = TorchValues(builder).double().eval()
    randomize(model, gen)
    x = f32_exact(torch.randn(batch, *builder.input_shape, generator=gen, dtype=torch.float64))
    names = [INPUT, *(node.name for node in graph.nodes)]
    layer = names[pick % len(names)]
    cotangent = f32_exact(torch.randn(batch, *builder.shapes[layer], generator=gen, dtype=torch.float64)).numpy()
    expected = torch_input_gradient(model, x, layer, cotangent)
    state: dict[str, np.ndarray] = {}
    for name, module in model.blocks.items():
        state.update(state_as_numpy(module, f"{name}."))
    where = (f"network {[(n, t, a, i) for n, t, a, i in builder.specs]} input={builder.input_shape}"
             f" batch={batch} seed={seed} layer={layer}")
    for dtype, fold in (("float64", True), ("float64", False), ("float32", True)):
        network = Network(graph, builder.input_shape, state=state, dtype=dtype, fold_batchnorm=fold)
        ours = input_gradient(network, x.numpy(), layer, cotangent)
        assert ours.dtype == network.dtype, f"{where}: gradient dtype {ours.dtype}"
        assert_close(ours, expected, np.float64 if dtype == "float64" else np.float32, f"{where} fold={fold}")
    return "input" if layer == INPUT else graph.node(layer).type_name


def draw_builder(data, strategy) -> GraphBuilder:
    try:
        return data.draw(strategy)
    except LayerArgError:
        assume(False)   # e.g. a stride-2 conv and a pool shrank the input below a kernel
        raise AssertionError("unreachable")


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3), pick=st.integers(0, 10**6))
def test_input_gradient_of_random_networks_matches_torch(data, seed: int, batch: int, pick: int) -> None:
    event(check_gradient(draw_builder(data, networks()), seed, batch, pick))


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3), pick=st.integers(0, 10**6))
def test_input_gradient_of_branching_networks_matches_torch(data, seed: int, batch: int, pick: int) -> None:
    event(check_gradient(draw_builder(data, branching_networks()), seed, batch, pick))


def conv_bn_relu() -> GraphBuilder:
    builder = GraphBuilder((2, 6, 6))
    c = builder.add("Conv2d", {"out_channels": 3, "kernel_size": 3, "padding": 1}, INPUT)
    b = builder.add("BatchNorm2d", {}, c)
    builder.add("ReLU", {}, b)
    return builder


@pytest.mark.parametrize("target", [0, 1, 2, 3])
def test_the_folded_conv_and_its_batchnorm_each_get_their_own_gradient(target: int) -> None:
    """With folding, the conv's array holds the BatchNorm's output; the gradient of the conv's own output (target 1)
    must still be the conv's, and that of the BatchNorm (target 2) the composition's."""
    builder = conv_bn_relu()
    network = Network(builder.graph(), builder.input_shape, dtype="float64")
    assert network.folded == {"n1_batchnorm2d"}
    check_gradient(builder, seed=7, batch=2, pick=target)


def test_the_input_as_the_layer_and_a_batchless_input() -> None:
    """``input`` as the layer: the gradient is the cotangent. A batchless x (and cotangent) gives the batchless
    gradient, that of a batch of one."""
    builder = conv_bn_relu()
    network = Network(builder.graph(), builder.input_shape, dtype="float64")
    rng = np.random.default_rng(0)
    x, g, h = rng.standard_normal((2, 6, 6)), rng.standard_normal((2, 6, 6)), rng.standard_normal((3, 6, 6))
    assert np.array_equal(input_gradient(network, x, "input", g), g)
    single = input_gradient(network, x, "n2_relu", h)
    assert single.shape == (2, 6, 6)
    assert np.array_equal(single, input_gradient(network, x[None], "n2_relu", h[None])[0])
    assert np.abs(single).max() > 0


@pytest.mark.parametrize("spec", ["resnet18", "alexnet", "deepface_lc"])
def test_an_empty_batch_has_empty_values_and_gradient(spec: str) -> None:
    """N = 0, as torch takes it: every layer's value is empty with the shape a batch of one has (the kernels'
    reshapes would fail on 0 rows), and the input gradient is empty with the input's shape."""
    graph = convcalc.build_graph(convcalc.load_spec(Path(__file__).resolve().parent.parent / "specs" / f"{spec}.yaml"))
    network = Network(graph, tuple(graph.input_shape))
    one = network.values(np.zeros((1, *graph.input_shape), dtype=np.float32))
    empty = network.values(np.zeros((0, *graph.input_shape), dtype=np.float32))
    assert empty.keys() == one.keys()
    assert all(empty[name].shape == (0, *one[name].shape[1:]) for name in one)
    out = tuple(network.summary.layer(graph.output).output_shape)
    x = np.zeros((0, *graph.input_shape), dtype=np.float32)
    assert input_gradient(network, x, graph.output, np.zeros((0, *out))).shape == x.shape


def test_errors_name_the_layer_and_the_shapes() -> None:
    builder = conv_bn_relu()
    network = Network(builder.graph(), builder.input_shape, dtype="float64")
    x = np.zeros((1, 2, 6, 6))
    with pytest.raises(ConvcalcError) as error:
        input_gradient(network, x, "n0_conv", np.zeros((1, 3, 6, 6)))
    assert str(error.value) == ("no layer 'n0_conv' in the network; did you mean 'n0_conv2d'? valid: input,"
                                " n0_conv2d, n1_batchnorm2d, n2_relu")
    with pytest.raises(ConvcalcError) as error:
        input_gradient(network, x, "n2_relu", np.zeros((1, 3, 5, 6)))
    assert str(error.value) == "the cotangent of 'n2_relu' is [1, 3, 5, 6], but its output is [1, 3, 6, 6]"


def test_effective_receptive_field_of_stacked_convs_is_the_kernel_convolved() -> None:
    """Luo et al. 2016: with all-ones 3x3 kernels (no bias, no nonlinearity) the gradient of the centre output of
    n stacked stride-1 convs w.r.t. the input is the n-fold convolution of the 3x3 box, i.e. the product of
    binomial-like counts per axis: for n = 2 the 1-D profile is [1, 2, 3, 2, 1]."""
    spec = convcalc.spec_from_dict({"input": [1, 9, 9], "layers": [
        {"type": "Conv2d", "name": "a", "out_channels": 1, "kernel_size": 3, "padding": 1, "bias": False},
        {"type": "Conv2d", "name": "b", "out_channels": 1, "kernel_size": 3, "padding": 1, "bias": False},
    ]})
    graph = convcalc.build_graph(spec)
    ones = np.ones((1, 1, 3, 3))
    network = Network(graph, (1, 9, 9), state={"a.weight": ones, "b.weight": ones}, dtype="float64")
    cotangent = np.zeros((1, 1, 9, 9))
    cotangent[0, 0, 4, 4] = 1.0
    erf = input_gradient(network, np.random.default_rng(0).standard_normal((1, 1, 9, 9)), "b", cotangent)
    profile = np.array([0, 0, 1, 2, 3, 2, 1, 0, 0], dtype=float)
    assert np.array_equal(erf[0, 0], np.outer(profile, profile))
