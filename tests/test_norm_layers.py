"""The normalisation layers (convcalc/layers/norm.py) against torch 2.13 itself (and torchvision 0.28's LayerNorm2d,
copied verbatim in norm_cases.py as torchvision is not installed).

* forward and input gradient of every type, over random valid shapes and arguments (hypothesis), random
  parameters and buffers, and inputs of random scale and offset, in float64: ``|ours − torch| <= 1e-9 ·
  max|torch|`` (relative to the largest value, no absolute floor), against torch's forward and autograd;
* each refusal's exact message, and that torch refuses the same (or, for convcalc's one-sample conventions, that
  torch would normalise over the batch);
* FlopCounterMode counts no flops for any of them (convcalc counts MACs of convolutions and linear layers only);
* receptive fields against autograd supports (random, non-constant inputs: a normalisation's gradient cancels on
  a constant one), unit by unit where the field is per axis, the reach where it is whole;
* the dependency walk's step (`support_step`, both its per-channel and its uniform path) against autograd;
* a network of all of them through `convcalc.run` with a torch state_dict, against the same torch network.

The registry-parametrized files (test_torch_crosscheck, test_executor_torch, test_backward_torch) check the types
through norm_cases.py's strategies as well.
"""

from __future__ import annotations

import sys
import warnings
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_torch_crosscheck  # noqa: E402,F401  (first: norm_cases imports from it)
from norm_cases import LayerNorm2dReference  # noqa: E402
from test_executor_torch import randomize, state_as_numpy, torch_module  # noqa: E402
from test_torch_crosscheck import Case  # noqa: E402

import convcalc  # noqa: E402
from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402
from convcalc.layers.support import support_step  # noqa: E402

torch.set_num_threads(1)
SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
RELATIVE = 1e-9
CHANNEL_ARG = {"LayerNorm2d": "normalized_shape", "GroupNorm": "num_channels", "InstanceNorm1d": "num_features",
               "InstanceNorm2d": "num_features", "InstanceNorm3d": "num_features"}


# ============================================================================ valid cases

def sizes(rank: int, low: int = 1, top: int = 6) -> st.SearchStrategy:
    return st.lists(st.integers(low, top), min_size=rank, max_size=rank).map(tuple)


EPS = st.sampled_from([1e-5, 1e-6, 1e-3, 0.1])


@st.composite
def valid_cases(draw, type_name: str) -> Case:
    args: dict[str, Any] = {}
    if type_name == "LayerNorm":
        shape = draw(st.integers(1, 4).flatmap(lambda r: sizes(r, 1, 7 if r < 3 else 4)))
        shape = (*shape[:-1], max(shape[-1], 2))    # over one value the gradient is 0: see the degenerate test
        count = draw(st.integers(1, len(shape)))
        args["normalized_shape"] = list(shape[len(shape) - count:])
    elif type_name == "LayerNorm2d":
        shape = (draw(st.integers(2, 6)), *draw(sizes(2)))
        count = draw(st.integers(0, 3))
        if count:
            permuted = (*shape[1:], shape[0])
            args["normalized_shape"] = list(permuted[3 - count:])
    elif type_name == "GroupNorm":
        groups, per_group = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        shape = (groups * per_group, *draw(st.integers(0, 3).flatmap(lambda r: sizes(r, 1, 5))))
        if per_group * int(np.prod(shape[1:])) == 1:
            shape = (*shape, 2)
        args["num_groups"] = groups
    elif type_name.startswith("InstanceNorm"):
        dims = int(type_name[-2])
        args["track_running_stats"] = draw(st.booleans())
        shape = draw(sizes(dims + 1, 1, 7 if dims == 1 else 4))
        if not args["track_running_stats"] and int(np.prod(shape[1:])) == 1:
            shape = (shape[0], *shape[1:-1], 2)
        if draw(st.booleans()):
            args["momentum"] = draw(st.one_of(st.none(), st.floats(0, 1)))
    else:
        shape = draw(st.integers(2, 5).flatmap(lambda r: sizes(r, 1, 9 if r == 2 else 4)))
        args.update(size=draw(st.integers(1, 9)), alpha=draw(st.sampled_from([1e-4, 0.1, 1.0, 3.0])),
                    beta=draw(st.sampled_from([0.75, 0.5, 1.0, 2.0, 0.0, -0.3])),
                    k=draw(st.sampled_from([1.0, 2.0, 0.5])))
        return Case(args, [shape])
    affine = "elementwise_affine" if type_name.startswith("LayerNorm") else "affine"
    for flag in (affine, "bias"):
        if draw(st.booleans()):
            args[flag] = draw(st.booleans())
    if draw(st.booleans()):
        args["eps"] = draw(EPS)
    return Case(args, [shape], channel_arg=CHANNEL_ARG.get(type_name))


TYPES = ["LayerNorm", "LayerNorm2d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
         "LocalResponseNorm"]


def close(ours: np.ndarray, theirs: np.ndarray, where: str, terms: float = 0.0) -> None:
    """``|ours − theirs| <= 1e-9 · max(max|theirs|, terms)``: relative to the largest value, or to the largest term
    of a formula whose terms cancel (``terms``)."""
    assert ours.shape == theirs.shape, where
    scale = max(float(np.abs(theirs).max()), terms, 1e-300)
    error = float(np.abs(ours - theirs).max())
    assert error <= RELATIVE * scale, f"{where}: max error {error:.3e} > {RELATIVE:g} x {scale:.3g}"


def torch_side(type_name: str, case: Case, seed: int, batch: int, scale: float, offset: float):
    """(module, x, y, cotangent, dL/dx) from torch: random parameters and buffers, x = N(0,1)·scale + offset."""
    module = torch_module(type_name, case)
    gen = torch.Generator().manual_seed(seed)
    randomize(module, gen)
    x = (torch.randn(batch, *case.in_shapes[0], generator=gen, dtype=torch.float64) * scale + offset)
    x.requires_grad_(True)
    y = module(x)
    cotangent = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad(y, x, cotangent)
    return module, x.detach(), y.detach().numpy(), cotangent.numpy(), grad.numpy()


def gradient_terms(layer, stored: np.ndarray, shape: tuple[int, ...], cotangent: np.ndarray,
                   params: dict[str, np.ndarray]) -> float:
    """The size of the terms of a standardisation's gradient, w·(g − mean(g) − x̂·mean(g·x̂))/σ, which cancel
    (over two values they leave only what eps adds): max|g|·max(1, max|w|)/min σ, σ computed here with NumPy over
    the layer's axes. 0 for the rest (running statistics, LRN)."""
    if not hasattr(layer, "storage_axes") or "running_var" in params:
        return 0.0
    spread = layer.grouped(stored, shape).var(axis=layer.storage_axes(shape)).min() + layer.eps
    weight = max(1.0, float(np.abs(params["weight"]).max())) if "weight" in params else 1.0
    return float(np.abs(cotangent).max()) * weight / float(np.sqrt(spread))


@pytest.mark.parametrize("type_name", TYPES)
def test_forward_and_input_gradient_match_torch_in_float64(type_name: str) -> None:
    @settings(max_examples=60, **SETTINGS)
    @given(case=valid_cases(type_name), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3),
           scale=st.sampled_from([1.0, 0.01, 30.0]), offset=st.sampled_from([0.0, 0.0, 3.0, -20.0]))
    def check(case: Case, seed: int, batch: int, scale: float, offset: float) -> None:
        where = f"{type_name} args={case.args} input={case.in_shapes} batch={batch} seed={seed}"
        layer = lookup(type_name).from_args(case.args)
        shape = tuple(case.in_shapes[0])
        inferred = layer.infer([shape])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module, x, y, cotangent, grad = torch_side(type_name, case, seed, batch, scale, offset)
        params = state_as_numpy(module)
        assert set(params) == set(inferred.params) | set(inferred.buffers), where
        prepared = layer.prepare(params, [shape], inferred.out_shape, np.dtype(np.float64))
        stored = to_storage(x.numpy())
        before = stored.copy()
        counter = MacCounter()
        ours = layer.forward([stored], prepared, counter)
        assert np.array_equal(stored, before) and counter.total == 0, where
        close(np.asarray(to_logical(ours)), y, where + " (forward)", np.abs(params.get("bias", 0.0)).max())
        (ours_grad,) = layer.backward([stored], ours, np.ascontiguousarray(to_storage(cotangent)), prepared)
        close(np.asarray(to_logical(ours_grad)), grad, where + " (input gradient)",
              gradient_terms(layer, stored, shape, cotangent, params))

    check()


@pytest.mark.parametrize("type_name, args, shape", [("LayerNorm", {"normalized_shape": 1}, (3, 1)),
                                                   ("LayerNorm2d", {}, (1, 2, 3))])
def test_over_one_value_the_output_is_the_bias_and_the_gradient_zero(type_name, args, shape) -> None:
    """x − mean(x) is exactly 0: torch's output is exactly the bias, and its gradient rounding residue of the
    1/√eps-sized terms that cancel (the exact value is 0, which convcalc returns)."""
    case = Case(args, [shape], channel_arg=CHANNEL_ARG.get(type_name))
    layer = lookup(type_name).from_args(args)
    module, x, y, cotangent, grad = torch_side(type_name, case, 7, 2, 1.0, 0.0)
    params = state_as_numpy(module)
    prepared = layer.prepare(params, [shape], shape, np.dtype(np.float64))
    ours = layer.forward([to_storage(x.numpy())], prepared, MacCounter())
    assert np.array_equal(to_logical(ours), y) and np.array_equal(y, np.broadcast_to(params["bias"].reshape(
        (1, -1, 1, 1) if type_name == "LayerNorm2d" else (1, 1, 1)), y.shape))
    (ours_grad,) = layer.backward([to_storage(x.numpy())], ours, to_storage(cotangent), prepared)
    assert not ours_grad.any()
    assert np.abs(grad).max() <= 1e-9 * np.abs(cotangent).max() * np.abs(params["weight"]).max() / np.sqrt(1e-5)


# ============================================================================ refusals, word for word

def refusal(type_name: str, args: dict[str, Any], shape: tuple[int, ...]) -> str:
    with pytest.raises(LayerArgError) as info:
        lookup(type_name).from_args(args).infer([shape])
    return info.value.message


@pytest.mark.parametrize("type_name, args, shape, message, theirs", [
    ("LayerNorm", {"normalized_shape": [4]}, (2, 3),
     "normalized_shape [4] must equal the last 1 axis of the input [2, 3]", lambda: nn.LayerNorm(4)),
    ("LayerNorm", {"normalized_shape": [2, 4]}, (3, 2, 3),
     "normalized_shape [2, 4] must equal the last 2 axes of the input [3, 2, 3]", lambda: nn.LayerNorm([2, 4])),
    ("LayerNorm", {"normalized_shape": []}, (2, 3), "normalized_shape must name at least one axis, got an empty list"
     " (PyTorch: 'Expected normalized_shape to be at least 1-dimensional')", lambda: nn.LayerNorm([])),
    ("LayerNorm", {"normalized_shape": 0}, (2, 3), "normalized_shape sizes must be positive, got 0",
     lambda: nn.LayerNorm(0)),
    ("LayerNorm", {"normalized_shape": 2.5}, (2, 3),
     "normalized_shape must be an integer or a list of integers, got the number 2.5", None),
    ("LayerNorm2d", {}, (2, 3), "LayerNorm2d expects a [C, H, W] input, got [2, 3]", lambda: LayerNorm2dReference(2)),
    ("LayerNorm2d", {"normalized_shape": 4}, (3, 2, 4),
     "normalized_shape [4] must equal the last 1 axis of the permuted input [H, W, C] [2, 4, 3]",
     lambda: LayerNorm2dReference(4)),
    ("GroupNorm", {"num_groups": 0}, (4, 3), "num_groups must be positive, got 0 (PyTorch: 'integer modulo by zero')",
     lambda: nn.GroupNorm(0, 4)),
    ("GroupNorm", {"num_groups": -1}, (4, 3), "num_groups must be positive, got -1", lambda: nn.GroupNorm(-1, 4)),
    ("GroupNorm", {"num_groups": 3, "num_channels": 4}, (4, 3), "num_channels (4) must be divisible by num_groups (3)",
     lambda: nn.GroupNorm(3, 4)),
    ("GroupNorm", {"num_groups": 4}, (6, 3),
     "the input's 6 channels are not divisible by num_groups 4; input [6, 3]", lambda: nn.GroupNorm(4, 6)),
    ("GroupNorm", {"num_groups": 2, "num_channels": 4}, (6, 3),
     "num_channels is 4 but the input has 6 channels; input [6, 3]", lambda: nn.GroupNorm(2, 4)),
    ("GroupNorm", {"num_groups": 4}, (4, 1, 1), "each group holds 1 value (input [4, 1, 1], 4 groups): PyTorch refuses"
     " that at batch 1 ('Expected more than 1 value per channel when training'), and convcalc analyses one sample",
     lambda: nn.GroupNorm(4, 4)),
    ("InstanceNorm2d", {}, (3, 5, 4, 2), "InstanceNorm2d expects a [C, H, W] input, got [3, 5, 4, 2]",
     lambda: nn.InstanceNorm2d(3)),
    ("InstanceNorm1d", {"affine": True, "num_features": 4}, (3, 5),
     "num_features is 4 but the input has 3 channels; input [3, 5]", lambda: nn.InstanceNorm1d(4, affine=True)),
    ("InstanceNorm1d", {"track_running_stats": True, "num_features": 4}, (3, 5),
     "num_features is 4 but the input has 3 channels; input [3, 5]",
     lambda: nn.InstanceNorm1d(4, track_running_stats=True)),
    ("InstanceNorm2d", {}, (3, 1, 1), "instance statistics of 1 value per channel (input [3, 1, 1]): PyTorch refuses"
     " them ('Expected more than 1 spatial element when training')", lambda: nn.InstanceNorm2d(3)),
    ("LocalResponseNorm", {"size": 2}, (5,), "LocalResponseNorm expects a [C, *spatial] input (at least [C, L]), got"
     " [5]", lambda: nn.LocalResponseNorm(2)),
    ("LocalResponseNorm", {"size": 0}, (5, 3), "size must be at least 1, got 0", lambda: nn.LocalResponseNorm(0)),
])
def test_refusals_name_the_rule_and_torch_refuses_too(type_name, args, shape, message, theirs) -> None:
    assert refusal(type_name, args, shape) == message
    if theirs is not None:
        with pytest.raises((RuntimeError, ValueError, ZeroDivisionError, TypeError)), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs().eval()(torch.randn(1, *shape))


def test_what_torch_accepts_without_affine_weights_is_accepted() -> None:
    """num_channels / num_features only matter to torch with affine weights (or running statistics)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert nn.GroupNorm(2, 4, affine=False)(torch.randn(1, 6, 3)).shape == (1, 6, 3)
        assert nn.InstanceNorm1d(4)(torch.randn(1, 6, 3)).shape == (1, 6, 3)
    assert lookup("GroupNorm").from_args({"num_groups": 2, "num_channels": 4, "affine": False}).infer([(6, 3)])
    assert lookup("InstanceNorm1d").from_args({"num_features": 4}).infer([(6, 3)]).params == {}
    # negative eps: torch computes with it (NaN where var + eps < 0); so does convcalc
    assert lookup("LayerNorm").from_args({"normalized_shape": 3, "eps": -1.0}).infer([(2, 3)]).out_shape == (2, 3)


def test_a_normalized_shape_reaching_the_batch_is_refused_as_torch_runs_it_at_one_batch_size_only() -> None:
    norm = nn.LayerNorm([1, 2, 3])
    assert norm(torch.randn(1, 2, 3)).shape == (1, 2, 3)          # the batch axis is one of the normalised axes
    with pytest.raises(RuntimeError, match="expected input with shape"):
        norm(torch.randn(2, 2, 3))
    assert refusal("LayerNorm", {"normalized_shape": [1, 2, 3]}, (2, 3)) == (
        "normalized_shape [1, 2, 3] names 3 axes but the input [2, 3] has 2 without the batch: it would normalise"
        " over the batch, and convcalc analyses one sample")


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_instance_norm_one_rank_short_is_refused_as_torch_reads_the_batch_as_channels(dims: int) -> None:
    shape = (3, *[4] * (dims - 1))
    x = torch.randn(2, *shape, dtype=torch.float64)
    norm = getattr(nn, f"InstanceNorm{dims}d")(2)
    assert norm(x).shape == x.shape                              # unbatched: the 2 samples are its channels
    message = refusal(f"InstanceNorm{dims}d", {}, shape)
    assert message.startswith(f"InstanceNorm{dims}d expects a ") and "the batch as one unbatched sample" in message


@pytest.mark.parametrize("module, shape", [
    (nn.LayerNorm([4, 5]), (3, 4, 5)), (LayerNorm2dReference(3), (3, 4, 5)), (nn.GroupNorm(3, 6), (6, 4)),
    (nn.InstanceNorm2d(3, affine=True), (3, 4, 5)), (nn.LocalResponseNorm(3), (4, 3, 3)),
    (nn.LocalResponseNorm(3), (4, 5))])
def test_flop_counter_counts_nothing_for_normalisations(module: nn.Module, shape: tuple[int, ...]) -> None:
    with FlopCounterMode(display=False) as counter:
        module.eval()(torch.randn(2, *shape))
    assert counter.get_total_flops() == 0


# ============================================================================ receptive fields and dependencies

def network(input_shape, layers):
    """convcalc's analysis, and the torch network (convs with weights in [0.5, 1.5]; the norms' torch modules with
    random parameters), on one random input."""
    gen = torch.Generator().manual_seed(1)
    summary = convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": layers}))
    modules, channels = [], input_shape[0]
    for layer, row in zip(layers, summary.layers):
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items() if k != "type"}
        if layer["type"].startswith("Conv"):
            module = getattr(nn, layer["type"])(channels, **args)
            with torch.no_grad():
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
        else:
            module = torch_module(layer["type"], Case(args, [tuple(summary.layers[len(modules) - 1].output_shape)
                                                            if modules else tuple(input_shape)],
                                                      channel_arg=CHANNEL_ARG.get(layer["type"])))
            randomize(module, gen)
        modules.append(module.double().eval())
        channels = row.output_shape[0]
    x = (torch.randn(1, *input_shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
    y = x
    for module in modules:
        y = module(y)
    return summary, x, y


def support_hull(grad: torch.Tensor) -> tuple[tuple[int, int], ...]:
    support = grad[0].abs().sum(dim=0) > 0
    hull = []
    for axis in range(support.dim()):
        other = tuple(d for d in range(support.dim()) if d != axis)
        found = torch.nonzero(support.any(dim=other) if other else support).flatten().tolist()
        hull.append((min(found), max(found)))
    return tuple(hull)


CONV3 = {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}
CONV1D = {"type": "Conv1d", "out_channels": 4, "kernel_size": 3, "stride": 2}


@pytest.mark.parametrize("input_shape, layers", [
    ((2, 7, 6), [CONV3, {"type": "LayerNorm", "normalized_shape": 6}]),                        # last axis only
    ((2, 7, 6), [CONV3, {"type": "LayerNorm", "normalized_shape": 6}, CONV3]),
    ((2, 7, 6), [CONV3, {"type": "LayerNorm2d"}, CONV3]),                                      # channels only
    ((2, 7, 6), [CONV3, {"type": "LayerNorm2d", "normalized_shape": [6, 4]}]),                 # W and C
    ((2, 7, 6), [CONV3, {"type": "InstanceNorm2d", "track_running_stats": True}, CONV3]),       # running statistics
    ((2, 7, 6), [CONV3, {"type": "LocalResponseNorm", "size": 3, "alpha": 1.0}, CONV3]),
    ((2, 11), [CONV1D, {"type": "LocalResponseNorm", "size": 2, "alpha": 0.5}]),
])
def test_per_axis_fields_are_every_units_autograd_support(input_shape, layers) -> None:
    summary, x, y = network(input_shape, layers)
    rf = summary.layers[-1].rf
    assert not rf.whole
    for unit in product(*(range(n) for n in y.shape[2:])):
        (grad,) = torch.autograd.grad(y[(0, slice(None), *unit)].sum(), x, retain_graph=True)
        assert rf.extent(unit) == support_hull(grad), unit


@pytest.mark.parametrize("input_shape, layers", [
    ((2, 7, 6), [CONV3, {"type": "GroupNorm", "num_groups": 2}]),
    ((2, 7, 6), [CONV3, {"type": "InstanceNorm2d", "affine": True}, CONV3]),
    ((2, 7, 6), [CONV3, {"type": "LayerNorm", "normalized_shape": [7, 6]}]),
    ((2, 7, 6), [CONV3, {"type": "LayerNorm2d", "normalized_shape": [7, 6, 4]}]),
    ((2, 14), [CONV1D, {"type": "InstanceNorm1d"}]),     # a stride-2 VALID conv drops the last input position
    ((2, 14), [CONV1D, {"type": "GroupNorm", "num_groups": 4}]),
])
def test_whole_fields_reach_what_all_units_depend_on(input_shape, layers) -> None:
    summary, x, y = network(input_shape, layers)
    rf = summary.layers[-1].rf
    assert rf.whole
    for unit in [(0,) * (y.dim() - 2), tuple(n - 1 for n in y.shape[2:])]:
        (grad,) = torch.autograd.grad(y[(0, slice(None), *unit)].sum(), x, retain_graph=True)
        assert support_hull(grad) == rf.reach, unit          # every unit alike: each reaches all of it


DEPENDENCY_CASES = [
    ("LayerNorm", {"normalized_shape": [5]}, (3, 4, 5)), ("LayerNorm", {"normalized_shape": [3, 4, 5]}, (3, 4, 5)),
    ("LayerNorm", {"normalized_shape": 6}, (6,)), ("LayerNorm2d", {}, (3, 4, 5)),
    ("LayerNorm2d", {"normalized_shape": [5, 3]}, (3, 4, 5)), ("GroupNorm", {"num_groups": 2}, (6, 4, 3)),
    ("GroupNorm", {"num_groups": 3}, (6,)), ("InstanceNorm1d", {"affine": True}, (3, 6)),
    ("InstanceNorm2d", {"track_running_stats": True}, (3, 4, 5)),
    ("LocalResponseNorm", {"size": 3, "alpha": 1.0}, (6, 4, 3)), ("LocalResponseNorm", {"size": 4, "alpha": 2.0}, (7, 5)),
]


@pytest.mark.parametrize("type_name, args, shape", DEPENDENCY_CASES)
def test_support_step_is_the_autograd_support_of_a_random_instance(type_name, args, shape) -> None:
    """One marked output (a single channel, then all channels at one position through the uniform fast path)."""
    layer = lookup(type_name).from_args(args)
    inferred = layer.infer([shape])
    module = torch_module(type_name, Case(args, [shape], channel_arg=CHANNEL_ARG.get(type_name)))
    randomize(module, torch.Generator().manual_seed(3))
    x = torch.randn(1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4)).requires_grad_(True)
    y = module(x)
    rng = np.random.default_rng(5)
    for _ in range(4):
        unit = tuple(int(rng.integers(n)) for n in shape)
        for channels in ([unit[0]], list(range(shape[0]))):
            (grad,) = torch.autograd.grad(y[(0, channels, *unit[1:])].sum(), x, retain_graph=True)
            expected = to_storage((grad != 0).double().numpy())
            seed = np.zeros((1, *shape))
            seed[(0, channels, *unit[1:])] = 1
            mask = to_storage(seed).astype(np.float32)
            if len(channels) > 1 and len(shape) > 1:
                mask = np.ascontiguousarray(mask[..., :1])          # the same on every channel: one kept
            (found,) = support_step(layer, mask, [shape], inferred.out_shape)
            assert np.array_equal(np.broadcast_to(found, expected.shape) != 0, expected != 0), (unit, channels)


# ============================================================================ a network of them, run

def test_a_network_of_every_normalisation_runs_as_torch_with_its_state_dict() -> None:
    spec = {"name": "norms", "input": [3, 9, 8], "layers": [
        {"name": "conv", "type": "Conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1},
        {"name": "gn", "type": "GroupNorm", "num_groups": 3},
        {"type": "ReLU"},
        {"name": "ln2d", "type": "LayerNorm2d", "eps": 1e-6},
        {"name": "lrn", "type": "LocalResponseNorm", "size": 3, "alpha": 0.5, "k": 2.0},
        {"name": "inorm", "type": "InstanceNorm2d", "affine": True},
        {"name": "conv2", "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"name": "itrs", "type": "InstanceNorm2d", "affine": True, "track_running_stats": True},
        {"name": "ln", "type": "LayerNorm", "normalized_shape": 8, "bias": False},
        {"type": "Flatten"},
        {"name": "lnflat", "type": "LayerNorm", "normalized_shape": 288},
        {"name": "fc", "type": "Linear", "out_features": 5}]}
    model = nn.ModuleDict(dict(
        conv=nn.Conv2d(3, 6, 3, padding=1), gn=nn.GroupNorm(3, 6), ln2d=LayerNorm2dReference(6, eps=1e-6),
        lrn=nn.LocalResponseNorm(3, 0.5, 0.75, 2.0), inorm=nn.InstanceNorm2d(6, affine=True),
        conv2=nn.Conv2d(6, 4, 3, padding=1), itrs=nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
        ln=nn.LayerNorm(8, bias=False), lnflat=nn.LayerNorm(288), fc=nn.Linear(288, 5))).double().eval()
    randomize(model, torch.Generator().manual_seed(0))
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model.conv(x)
        for name in ("gn", "relu", "ln2d", "lrn", "inorm", "conv2", "itrs", "ln", "flatten", "lnflat", "fc"):
            y = y.relu() if name == "relu" else y.flatten(1) if name == "flatten" else model[name](y)
    checked = convcalc.run(convcalc.spec_from_dict(spec), x.numpy(), weights=state_as_numpy(model), dtype="float64")
    assert checked.ok                               # shapes, MACs, finiteness and the receptive-field proof
    close(checked.output, y.numpy(), "network")
    summary = convcalc.analyze(convcalc.spec_from_dict(spec))
    assert summary.totals.params == sum(p.numel() for p in model.parameters())
    assert summary.totals.buffers == sum(b.numel() for b in model.buffers())
    assert summary.totals.macs == 6 * 72 * 27 + 4 * 72 * 54 + 288 * 5


def test_convnext_block_layer_norm_after_permute_runs_as_torch() -> None:
    """torchvision's CNBlock body: depthwise 7x7 → Permute → LayerNorm(eps 1e-6) over the last axis → Linear → GELU →
    Linear → Permute back (uses the layout family's Permute)."""
    spec = {"name": "cn", "input": [8, 7, 7], "layers": [
        {"name": "dw", "type": "Conv2d", "out_channels": 8, "kernel_size": 7, "padding": 3, "groups": 8},
        {"type": "Permute", "dims": [0, 2, 3, 1]},
        {"name": "norm", "type": "LayerNorm", "normalized_shape": 8, "eps": 1e-6},
        {"name": "fc1", "type": "Linear", "out_features": 32}, {"type": "GELU"},
        {"name": "fc2", "type": "Linear", "out_features": 8},
        {"type": "Permute", "dims": [0, 3, 1, 2]}]}
    model = nn.ModuleDict(dict(dw=nn.Conv2d(8, 8, 7, padding=3, groups=8), norm=nn.LayerNorm(8, eps=1e-6),
                               fc1=nn.Linear(8, 32), fc2=nn.Linear(32, 8))).double()
    randomize(model, torch.Generator().manual_seed(0))
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model.fc2(F.gelu(model.fc1(model.norm(model.dw(x).permute(0, 2, 3, 1))))).permute(0, 3, 1, 2)
    checked = convcalc.run(convcalc.spec_from_dict(spec), x.numpy(), weights=state_as_numpy(model), dtype="float64")
    assert checked.ok
    close(checked.output, y.numpy(), "ConvNeXt block")
