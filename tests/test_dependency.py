"""Exact dependency propagation (`convcalc.proof.dependency`) against two independent oracles (one walk per layer
and every layer's walks in one reverse sweep, `Dependencies.propagate_many`, alike).

1. PyTorch autograd on the oracle networks of test_receptive_field / test_receptive_exact: the same layers out of
   real ``torch.nn`` modules with random weights in [0.5, 1.5], zero bias, max pooling replaced by average pooling
   (the support of a max is its whole window), a strictly positive input. The gradient of one output position (all channels,
   weighted 1, 2, ...) is non-zero exactly where that position depends on the input: compared with convcalc's mask
   position by position (not just its hull), for random chains and branching graphs of convs, pools, transposed
   convs, upsampling, PixelShuffle and adaptive pools, and hand-picked reflect/replicate/circular paddings.
2. Brute-force perturbation of convcalc's own forward (random weights): output u depends on input position p when
   changing x at p changes u. One forward per position (as a batch). This is the true reverse of convcalc's
   forward, also where torch's VJP drops a dependency (ReLU6 saturating, a softmax over the channels, a max's
   argmax routing, MaxUnpool, the 1-D nearest upsampling whose torch backward differs from its forward).
   Perturbation finds a subset of the dependencies in general (a dead ReLU hides one), so the masks must contain
   what it finds, and equal it on these networks (random weights, twelve random inputs, large perturbations of either sign).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_receptive_field  # noqa: E402
from test_receptive_field import DTYPE, builds, oracle_forward, positive_input  # noqa: E402
from test_receptive_exact import SETTINGS, chains, graphs  # noqa: E402

import convcalc  # noqa: E402
from convcalc.proof.dependency import Dependencies, dependency_masks  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.spec.build import build_graph  # noqa: E402
from convcalc.spec.graph import INPUT  # noqa: E402
from convcalc.layers import lookup  # noqa: E402
from convcalc.layers.base import Inferred  # noqa: E402

NOISE = 1e-9
RESIDUE_ONLY = 1e-12   # a unit whose largest gradient is below this reads no input: every path to it has an exact-0
                       # linear weight, left as a float rounding residue (~1e-16 x the path's weights in [0.5, 1.5])


def summary_of(input_shape: Sequence[int], layers: Sequence[dict]) -> convcalc.Summary:
    return convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": list(layers)}))


# --------------------------------------------------------------------------- oracle 1: torch autograd

def torch_masks(y: torch.Tensor, x: torch.Tensor, units: Sequence[Sequence[int]]) -> np.ndarray:
    """Per unit (all channels, weighted 1, 2, ...), the input positions with a gradient above the noise level
    (linear resampling weights that are 0 in exact arithmetic come out as ~1e-16), relative to the unit's largest
    gradient, none where even that is a residue (RESIDUE_ONLY: a unit fed only through exact-0 weights, say an
    upsampled sample landing exactly on a zero a stride-2 transposed conv inserted): bool (units, *spatial)."""
    weights = torch.arange(1, y.shape[1] + 1, dtype=y.dtype)
    seeds = torch.zeros((len(units), *y.shape), dtype=y.dtype)
    for row, unit in enumerate(units):
        seeds[(row, 0, slice(None), *unit)] = weights
    (grads,) = torch.autograd.grad(y, x, seeds, retain_graph=True, is_grads_batched=True)
    magnitude = grads[:, 0].abs().amax(dim=1)                           # (units, *spatial)
    largest = magnitude.flatten(1).amax(dim=1).clamp_min(1e-300)
    masks = (magnitude > NOISE * largest.view(-1, *[1] * (magnitude.dim() - 1))) & (magnitude > 0)
    masks &= (largest > RESIDUE_ONLY).view(-1, *[1] * (magnitude.dim() - 1))
    return masks.numpy()


def some_units(spatial: Sequence[int], rng: np.random.Generator, count: int = 6) -> list[tuple[int, ...]]:
    """The corners, the middle and a few random positions."""
    units = [tuple(0 for _ in spatial), tuple(n - 1 for n in spatial), tuple(n // 2 for n in spatial)]
    units += [tuple(int(rng.integers(n)) for n in spatial) for _ in range(count)]
    return list(dict.fromkeys(units))


@contextlib.contextmanager
def positive_weights(seed: int):
    """The oracle modules with random weights in [0.5, 1.5] instead of all ones (zero bias): nothing cancels, and
    a softmax along an axis after a conv keeps every dependency (with all-ones weights an input that enters every
    logit equally shifts them all, which a softmax ignores)."""
    generator = torch.Generator().manual_seed(seed)

    def positive(module: torch.nn.Module) -> torch.nn.Module:
        with torch.no_grad():
            for name, param in module.named_parameters():
                if name == "bias":
                    param.zero_()
                elif name == "weight":
                    param.copy_(torch.rand(param.shape, generator=generator, dtype=param.dtype) + 0.5)
        return module.to(DTYPE).eval()

    original = test_receptive_field._ones
    test_receptive_field._ones = positive
    try:
        yield
    finally:
        test_receptive_field._ones = original


def torch_backward_differs(summary: convcalc.Summary) -> bool:
    """A 1-D/3-D nearest upsampling whose torch backward scatters elsewhere than its forward reads (o = i or 2i
    with a scale factor: ATen's backward uses the 2-D forward's shortcut). Autograd is no oracle there (the
    perturbation test covers it)."""
    shapes = {INPUT: summary.input_shape, **{row.name: row.output_shape for row in summary.layers}}
    for node in summary.graph.nodes:
        axes = getattr(node.layer, "axes", None)
        if not callable(axes) or getattr(node.layer, "mode", None) != "nearest":
            continue
        for plan in axes(shapes[node.inputs[0]]):
            if plan.o in (plan.i, 2 * plan.i) and \
                    plan.nearest_indices().tolist() != (np.arange(plan.o) * plan.i // plan.o).tolist():
                return True
    return False


def compare_with_autograd(input_shape: Sequence[int], layers: Sequence[dict], every_layer: bool = False,
                          seed: int = 0) -> int:
    """Every (or the last) layer's masks for some units against torch's gradient support; returns units compared."""
    summary = summary_of(input_shape, layers)
    if torch_backward_differs(summary):
        event("torch's nearest backward differs from its forward")
        return 0
    x = positive_input(input_shape)
    with positive_weights(seed):
        outputs = oracle_forward(layers, x)
    dependencies = Dependencies(summary)
    rng = np.random.default_rng(seed)
    compared = 0
    chosen = range(len(layers)) if every_layer else [len(layers) - 1]
    seeds, wanted = {}, {}
    for index in chosen:
        row, y = summary.layers[index], outputs[index]
        assert tuple(y.shape[1:]) == tuple(row.output_shape), f"layer {index}: torch {tuple(y.shape)}"
        units = some_units(row.output_shape[1:], rng)
        expected = torch_masks(y, x, units)
        found = dependencies.masks(row.name, units)
        for unit, want, got in zip(units, expected, found):
            assert np.array_equal(want, got), (f"layer {index} {layers[index]} unit {unit}:\n"
                                               f"torch {np.argwhere(want).tolist()}\nconvcalc {np.argwhere(got).tolist()}")
        compared += len(units)
        seeds[row.name], wanted[row.name] = dependencies.seeds(row.name, units), expected
    masks, reached = dependencies.propagate_many(seeds)        # every chosen layer's walks in one reverse sweep
    for name, expected in wanted.items():
        assert np.array_equal(masks[reached[name]], expected), f"{name}: one sweep differs from torch"
    return compared


@settings(max_examples=150, **SETTINGS)
@given(chains(1))
def test_random_chains_1d_match_autograd(network):
    compare_with_autograd(*network, every_layer=True)


@settings(max_examples=60, **SETTINGS)
@given(chains(2))
def test_random_chains_2d_match_autograd(network):
    compare_with_autograd(*network)


@settings(max_examples=60, **SETTINGS)
@given(st.data())
def test_random_graphs_match_autograd(data):
    dims = data.draw(st.sampled_from([1, 1, 2]))
    input_shape, layers = data.draw(graphs(dims))
    if layers is None or builds(input_shape, layers) is None:
        event("merge refused")
        return
    compare_with_autograd(input_shape, layers)


@pytest.mark.parametrize("layers", [
    [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 2, "padding_mode": "reflect"}],
    [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1, "padding_mode": "replicate",
      "stride": 2}],
    [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 2, "padding_mode": "circular",
      "dilation": 2}],
    [{"type": "ReflectionPad2d", "padding": [3, 1, 2, 0]}, {"type": "Conv2d", "out_channels": 1, "kernel_size": 3}],
    [{"type": "ReplicationPad2d", "padding": 2}, {"type": "MaxPool2d", "kernel_size": 3, "stride": 2}],
    [{"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}],
    [{"type": "ConvTranspose2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1,
      "output_padding": 1}, {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1}],
    [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "groups": 2},
     {"type": "Upsample", "scale_factor": 2.5, "mode": "bilinear"}, {"type": "AdaptiveMaxPool2d", "output_size": 5}],
], ids=["reflect", "replicate-strided", "circular-dilated", "reflection-pad", "replication-pad-maxpool",
        "maxpool-dilated-ceil", "transposed", "grouped-bilinear-adaptive-max"])
def test_hand_picked_match_autograd(layers):
    assert compare_with_autograd((2, 9, 11), layers, every_layer=True) > 0


# --------------------------------------------------------------------------- oracle 2: perturbation

def perturbation_masks(graph, layer: str, units: Sequence[Sequence[int]], trials: int = 12) -> np.ndarray:
    """Per unit, the input positions whose change (all channels, by random large amounts) changes the unit (any
    channel) in convcalc's float64 forward with random weights: bool (units, *input spatial)."""
    network = Network(graph, dtype="float64", seed=7)
    shape = tuple(network.summary.input_shape)
    spatial = shape[1:]
    rng = np.random.default_rng(3)
    found = np.zeros((len(units), *spatial), dtype=bool)
    positions = list(np.ndindex(*spatial))
    for _ in range(trials):
        x = rng.normal(size=shape)
        batch = np.repeat(x[None], len(positions) + 1, axis=0)                 # row 0: unperturbed
        for row, position in enumerate(positions, start=1):
            batch[(row, slice(None), *position)] += rng.normal(size=shape[0]) * 10
        values = network.values(batch)[layer]                                  # channels-last
        base = values[0]
        for index, unit in enumerate(units):
            changed = np.abs(values[1:][(slice(None), *unit)] - base[unit]).max(axis=-1) > 1e-9
            for row in np.flatnonzero(changed):
                found[(index, *positions[row])] = True
    return found


def graph_of(input_shape: Sequence[int], layers: Sequence[dict]):
    return build_graph(convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": list(layers)}))


PERTURBED = {
    "relu6-saturates": ((2, 12), [{"type": "Conv1d", "out_channels": 3, "kernel_size": 3, "padding": 1},
                                  {"type": "ReLU6"}, {"type": "Conv1d", "out_channels": 2, "kernel_size": 3}]),
    "softmax-channels-after-groups": ((4, 10), [
        {"type": "Conv1d", "out_channels": 4, "kernel_size": 3, "groups": 2, "padding": 1},
        {"type": "Softmax", "dim": 1}, {"type": "Conv1d", "out_channels": 4, "kernel_size": 1, "groups": 4}]),
    "softmax-spatial": ((2, 9), [{"type": "Conv1d", "out_channels": 2, "kernel_size": 3}, {"type": "Softmax", "dim": 2}]),
    "maxpool-window": ((2, 7, 8), [{"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1}]),
    "minpool-lppool-inf": ((1, 13), [{"type": "MinPool1d", "kernel_size": 2},
                                     {"type": "LPPool1d", "norm_type": "inf", "kernel_size": 3, "stride": 1}]),
    "global-and-adaptive-max": ((2, 6, 7), [{"type": "AdaptiveMaxPool2d", "output_size": [4, 3]},
                                            {"type": "Conv2d", "out_channels": 2, "kernel_size": 2},
                                            {"type": "GlobalMaxPool"}]),
    "maxunpool": ((2, 11), [{"type": "MaxPool1d", "kernel_size": 3, "stride": 2, "name": "pool"},
                            {"type": "Conv1d", "out_channels": 2, "kernel_size": 3, "padding": 1},
                            {"type": "MaxUnpool1d", "pool": "pool", "output_size": 11}]),
    "nearest-1d-scale-2.1": ((1, 2), [{"type": "Upsample", "scale_factor": 2.1}]),
    "nearest-3d-scale-2.1": ((1, 2, 3, 2), [{"type": "Upsample", "scale_factor": 2.1}]),
    "gated-conv": ((2, 7, 6), [{"type": "GatedConv2d", "out_channels": 2, "kernel_size": 3, "padding": 1,
                                "activation": "ReLU6"}]),
    "depthwise-separable-bn": ((2, 9, 9), [{"type": "DepthwiseSeparableConv2d", "out_channels": 3,
                                            "kernel_size": 3, "stride": 2, "norm": "BatchNorm2d",
                                            "activation": "ReLU"}]),
    "pixel-shuffle-then-depthwise": ((4, 4, 5), [{"type": "PixelShuffle", "upscale_factor": 2},
                                                 {"type": "Conv2d", "out_channels": 1, "kernel_size": 3,
                                                  "padding": 1}]),
    "locally-connected-and-tiled": ((2, 9, 8), [
        {"type": "LocallyConnected2d", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "TiledConv2d", "out_channels": 2, "kernel_size": 2, "tile_size": 2}]),
    "linear-rows-and-flatten": ((2, 5, 4), [{"type": "Linear", "out_features": 3},
                                            {"type": "Conv2d", "out_channels": 2, "kernel_size": 2},
                                            {"type": "Flatten"}, {"type": "Linear", "out_features": 2}]),
}


@pytest.mark.parametrize("name", list(PERTURBED))
def test_masks_equal_perturbation_of_the_forward(name):
    input_shape, layers = PERTURBED[name]
    graph = graph_of(input_shape, layers)
    summary = convcalc.analyze(graph)
    dependencies = Dependencies(summary)
    rng = np.random.default_rng(1)
    for row in summary.layers:
        if len(row.output_shape) < 2:
            units: Any = [()]
            found = dependencies.masks(row.name, None)
        else:
            units = some_units(row.output_shape[1:], rng, 4)
            found = dependencies.masks(row.name, units)
        expected = perturbation_masks(graph, row.name, units)
        for unit, want, got in zip(units, expected, found):
            assert np.array_equal(want, got), (f"{name}: {row.name} unit {unit}:\nperturbation "
                                               f"{np.argwhere(want).tolist()}\nconvcalc {np.argwhere(got).tolist()}")


def test_nearest_1d_follows_the_forward_not_torchs_backward():
    """scale_factor 2.1 on 2 pixels: the forward reads [0, 0, 0, 1]; torch's backward (and convcalc's VJP)
    scatters to [0, 0, 1, 1]. Output 2 depends on pixel 0 only."""
    summary = summary_of((1, 2), [{"type": "Upsample", "scale_factor": 2.1}])
    masks = dependency_masks(summary, summary.layers[0].name, [(0,), (1,), (2,), (3,)])
    assert masks.tolist() == [[True, False], [True, False], [True, False], [False, True]]


def test_a_max_pool_depends_on_its_whole_window_even_with_ties():
    summary = summary_of((1, 6), [{"type": "MaxPool1d", "kernel_size": 3, "stride": 3}])
    assert dependency_masks(summary, summary.layers[0].name, [(1,)]).tolist() == [[False] * 3 + [True] * 3]


def test_linear_rule_equals_the_structural_backward():
    """Linear's own rule (no weight matrix) is what the default (its backward with all-ones weights) computes."""
    layer = lookup("Linear").from_args({"out_features": 3})
    for in_shape in [(5,), (2, 4), (2, 3, 4)]:
        inferred = layer.infer([in_shape])
        prepared = layer.prepare(layer.structural_params(inferred), [in_shape], inferred.out_shape, np.dtype("float64"))
        rng = np.random.default_rng(0)
        store_in = (*in_shape[1:], in_shape[0]) if len(in_shape) > 1 else in_shape
        store_out = (*inferred.out_shape[1:], inferred.out_shape[0]) if len(in_shape) > 1 else inferred.out_shape
        x = np.ones((2, *store_in))
        mask = (rng.random((2, *store_out)) < 0.3).astype(np.float64)
        default = type(layer).__mro__[1].support_backward(layer, [x], None, mask, prepared)
        assert np.array_equal(layer.support_backward([x], None, mask, prepared)[0], default[0])


def test_structural_params_by_name():
    layer = lookup("BatchNorm2d").from_args({})
    values = layer.structural_params(Inferred((3, 4, 4), {"weight": (3,), "bias": (3,)},
                                              {"running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}))
    assert {k: float(v.sum()) for k, v in values.items()} == {"weight": 3, "bias": 0, "running_mean": 0,
                                                              "running_var": 3, "num_batches_tracked": 0}


def test_units_outside_the_output_are_refused():
    summary = summary_of((1, 6), [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3}])
    with pytest.raises(convcalc.ConvcalcError, match=r"unit \[4\] is not a position"):
        dependency_masks(summary, summary.layers[0].name, [(4,)])
    with pytest.raises(convcalc.ConvcalcError, match="no layer 'nope'"):
        Dependencies(summary).propagate("nope", np.ones((1, 4, 1), dtype=np.float32))


def test_input_layer_is_itself():
    summary = summary_of((1, 6), [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3}])
    assert dependency_masks(summary, INPUT, [(2,)]).tolist() == [[False, False, True, False, False, False]]
