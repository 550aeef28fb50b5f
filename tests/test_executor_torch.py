"""The NumPy executor's numbers against PyTorch's (torch 2.13, CPU), for every registered layer type.

Per layer type (`test_forward_matches_torch`): the cross-check strategies of `test_torch_crosscheck`
draw arguments and input shapes; only cases that both convcalc (`from_args` + `infer`) and torch
accept are kept. The torch module gets random parameters and buffers (BatchNorm running statistics
and affine weights, PReLU slopes, conv/linear weights and biases), all float32-representable, and a
random standard-normal input (batch 1-3; positive for Sqrt), also float32-representable, so that one
float64 torch run is the reference for both of convcalc's dtypes:

* float64: ``|ours - torch| <= 1e-9 * max(1, max|torch|)`` (absolute, scaled up for large outputs);
* float32: ``|ours - torch| <= 1e-4 * max(1, max|torch|)`` (relative to the output's magnitude: a
  per-element relative bound would fail on legitimate cancellation in sums of products);
* the output has the prepared dtype, the inputs are not modified by `forward`;
* ``2 * counter.total`` equals FlopCounterMode's flops of the torch module at that batch for Conv and
  Linear, and ``counter.total == 0`` for every other type.

`test_large_conv_forward_matches_torch` does the same for Conv2d/3d with outputs of 28*28 positions or
more: the crosscheck strategies' inputs are small, and the executor may pick another algorithm for
large outputs; `test_winograd_forward_matches_torch` for every conv algorithm 'winograd' can run.

Whole networks (`test_network_matches_torch`): small random graphs (conv -> bn -> activation -> pool
chains, residual blocks with an Add, optional projection shortcuts, BatchNorms that cannot fold, a
Linear over the rows of a [C, L] tensor followed by BatchNorm1d, a pooled Linear -> BatchNorm1d head)
run through `convcalc.execution.network.Network` with BatchNorm folding (and without), against the same graph
built from torch.nn modules, in float64 within 1e-9 (and float32 within 1e-4).
`test_batchnorm1d_over_the_rows_of_a_linear_output` pins the folding bug those graphs found.

A registered type without a strategy fails by name.
"""

from __future__ import annotations

import itertools
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_torch_crosscheck import (  # noqa: E402
    DEFAULT_CONVENTIONS, FUNCTIONS, MAC_TYPES, MERGES, STRATEGIES, Case, FunctionModule, _torch_value,
    convcalc_layer, reference_kwargs, torch_class)
from resample_cases import EXECUTOR_EXAMPLES, POSITIVE_INPUTS  # noqa: E402
from family_cases import POSITIVE_TYPES  # noqa: E402  (partial convolutions: positive masks)

POSITIVE_INPUTS = POSITIVE_INPUTS | POSITIVE_TYPES

from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.spec.graph import INPUT, Graph, Node  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers.conv import (BIAS_IN_GEMM_MIN_EXPANSION, TRANSPOSED_PATCHES_MAX_RUN,  # noqa: E402
                                  TRANSPOSED_PATCHES_MAX_RUN_STRIDED)
from convcalc.layers import Layer, layer_types, lookup  # noqa: E402

torch.set_num_threads(1)

TOLERANCE = {np.float64: 1e-9, np.float32: 1e-4}

# Valid examples per type (invalid draws are discarded and do not count).
EXAMPLES: dict[str, int] = {
    **{f"Conv{d}d": 100 for d in (1, 2, 3)},
    **{f"{kind}Pool{d}d": 60 for kind in ("Max", "Avg") for d in (1, 2, 3)},
}
DEFAULT_EXAMPLES = 40


# ============================================================================ helpers

def f32_exact(t: torch.Tensor) -> torch.Tensor:
    """The float64 tensor rounded to float32-representable values (so float32 runs see the same numbers)."""
    return t.float().double()


def randomize(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Random values for every floating parameter and buffer; running variances positive."""
    with torch.no_grad():
        for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
            if not tensor.is_floating_point():
                continue                                  # num_batches_tracked
            if name.endswith("running_var"):
                value = torch.rand(tensor.shape, generator=gen, dtype=torch.float64) * 1.5 + 0.25
            else:
                value = torch.randn(tensor.shape, generator=gen, dtype=torch.float64)
            tensor.copy_(f32_exact(value))


def state_as_numpy(module: torch.nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    """The module's state_dict as float64 NumPy arrays (integer buffers keep their dtype)."""
    out = {}
    for name, value in module.state_dict().items():
        array = value.detach().cpu().numpy()
        out[prefix + name] = array.astype(np.float64) if value.is_floating_point() else array.copy()
    return out


def assert_close(ours: np.ndarray, theirs: np.ndarray, dtype: type, where: str) -> None:
    assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != torch {theirs.shape}"
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), f"{where}: NaNs differ from torch's"
    infinite = np.isinf(theirs) | np.isinf(ours)     # e.g. a max-pool window entirely in the padding: -inf
    assert np.array_equal(ours[infinite], theirs[infinite]), (
        f"{where}: infinities differ: ours {ours[infinite]}, torch {theirs[infinite]}")
    finite = np.isfinite(theirs)
    if not finite.any():
        return
    ours, theirs = ours[finite].astype(np.float64), theirs[finite]
    scale = max(1.0, float(np.abs(theirs).max()))
    error = np.abs(ours - theirs)
    tolerance = TOLERANCE[dtype] * scale
    if not (error <= tolerance).all():
        worst = int(np.argmax(error))
        raise AssertionError(
            f"{where} [{np.dtype(dtype).name}]: max |ours - torch| = {error.max():.3e} > {tolerance:.3e}"
            f" (scale {scale:.3g}); worst element ours={ours[worst]!r} torch={theirs[worst]!r};"
            f" {int((error > tolerance).sum())} of {error.size} elements off")


# ============================================================================ one layer type

def torch_module(type_name: str, case: Case) -> torch.nn.Module:
    kwargs = {name: _torch_value(value) for name, value in case.args.items()}
    for convention_type, name in DEFAULT_CONVENTIONS:
        # convcalc's default differs from torch's on purpose (Softmax dim=1, not torch's implicit dim,
        # which is the batch axis for 3-D tensors): the torch reference gets convcalc's default spelled out
        if convention_type == type_name and name not in kwargs:
            kwargs[name] = lookup(type_name).arguments[name].default
    if case.channel_arg and kwargs.get(case.channel_arg) is None:
        kwargs[case.channel_arg] = case.in_shapes[0][0] if type_name != "Linear" else case.in_shapes[0][-1]
    if type_name in FUNCTIONS:
        module = FunctionModule(FUNCTIONS[type_name])
    else:
        module = torch_class(type_name)(**reference_kwargs(type_name, kwargs, case))
    return module.double().eval()


def torch_reference(type_name: str, case: Case, seed: int, batch: int, requires_grad: bool = False):
    """(module or None, inputs, forward, generator) for one case: seeded float32-representable float64 inputs (|x| +
    0.05 where the function needs positive ones), the torch module with random parameters (None for merges) and
    ``forward()``, torch's output from them; the generator goes on where they left it. Raises where torch refuses
    the case. Shared by the forward (`run_torch_numbers`) and backward (test_backward_torch) cross-checks."""
    gen = torch.Generator().manual_seed(seed)
    inputs = []
    for shape in case.in_shapes:
        x = torch.randn(batch, *shape, generator=gen, dtype=torch.float64)
        if type_name == "Sqrt" or type_name in POSITIVE_INPUTS:
            x = x.abs() + 0.05
        inputs.append(f32_exact(x).requires_grad_(requires_grad))
    module = None
    if type_name not in MERGES:
        module = torch_module(type_name, case)
        randomize(module, gen)

    def forward():
        if type_name == "Concat":
            return torch.cat(inputs, dim=case.args.get("dim", lookup("Concat").arguments["dim"].default))
        if type_name in MERGES:
            result = inputs[0]
            for other in inputs[1:]:
                result = MERGES[type_name](result, other)
            return result
        result = module(*(x.clone() for x in inputs))   # clone: inplace=True must not touch an input (or a leaf)
        return result[0] if isinstance(result, tuple) else result   # return_indices=True

    return module, inputs, forward, gen


def run_torch_numbers(type_name: str, case: Case, seed: int, batch: int):
    """(module or None, inputs, output, flops), or None when torch refuses the case."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module, inputs, forward, _ = torch_reference(type_name, case, seed, batch)
            # The reference numbers come from plain eager execution: under FlopCounterMode (a dispatch mode) torch
            # may run a decomposition instead of the ATen kernel, and for 2-D 'nearest' upsampling with o == i the
            # two disagree (the kernel copies; the decomposition samples with the scale factor). Flops: a 2nd pass.
            with torch.no_grad():
                out = forward()
            with torch.no_grad(), FlopCounterMode(display=False) as flop_counter:
                forward()
    except Exception:  # noqa: BLE001  (torch refuses: not a case for the executor)
        return None
    return module, inputs, out.detach().numpy().copy(), flop_counter.get_total_flops()


def both_accept(cls: type[Layer], case: Case, torch_side) -> tuple[Layer, Any, Any]:
    """(layer, inferred, torch_side()) for a case both convcalc and torch accept; any other case is discarded
    (hypothesis draws again), with an event saying who refused."""
    try:
        layer = convcalc_layer(cls, case)
        inferred = layer.infer([tuple(s) for s in case.in_shapes])
    except LayerArgError:
        event("convcalc refuses")
        assume(False)
    theirs = torch_side()
    if theirs is None:
        event("torch refuses")
        assume(False)
    event("both accept")
    return layer, inferred, theirs


def check_forward(cls: type[Layer], case: Case, seed: int, batch: int) -> None:
    type_name = cls.type_name
    where = f"{type_name} args={case.args} input={case.in_shapes} batch={batch} seed={seed}"
    layer, inferred, theirs = both_accept(cls, case, lambda: run_torch_numbers(type_name, case, seed, batch))
    module, inputs, reference, flops = theirs
    assert reference.shape == (batch, *inferred.out_shape), (
        f"{where}: convcalc infers {inferred.out_shape}, torch gives {reference.shape}")

    params = state_as_numpy(module) if module is not None else {}
    assert set(params) == set(inferred.params) | set(inferred.buffers), (
        f"{where}: torch's state_dict {sorted(params)} != convcalc's {sorted({**inferred.params, **inferred.buffers})}")
    in_shapes = [tuple(s) for s in case.in_shapes]

    totals = {}
    for dtype in (np.float64, np.float32):
        prepared = layer.prepare(params, in_shapes, inferred.out_shape, np.dtype(dtype))
        stored = [to_storage(x.numpy().astype(dtype)) for x in inputs]
        originals = [s.copy() for s in stored]
        counter = MacCounter()
        with np.errstate(all="ignore"):
            y = layer.forward(stored, prepared, counter)
        for before, after in zip(originals, stored):
            assert np.array_equal(before, after), f"{where} [{np.dtype(dtype).name}]: forward modified its input"
        assert y.dtype == dtype, f"{where}: forward returned {y.dtype} for {np.dtype(dtype).name} inputs"
        assert_close(np.asarray(to_logical(y)), reference, dtype, where)
        totals[dtype] = counter.total

    for dtype, total in totals.items():
        if type_name in MAC_TYPES:
            assert 2 * total == flops, (
                f"{where} [{np.dtype(dtype).name}]: 2 * counted MACs = {2 * total}, FlopCounterMode counts {flops}")
            assert total == inferred.macs * batch, (
                f"{where}: forward counted {total} MACs, the analyzer predicts {inferred.macs} x {batch}")
        else:
            assert total == 0, f"{where}: {type_name} counted {total} MACs; only Conv and Linear count MACs"


def check_every_case(cls: type[Layer], checker, what: str, examples: int, minimum: int, **settings_kwargs) -> None:
    """Run ``checker(cls, case, seed, batch)`` over ``examples`` cases of the type's cross-check strategy (batch
    1-3). A type without a strategy fails by name, and one with fewer than ``minimum`` cases accepted by both
    convcalc and torch fails too: hypothesis stops early when too many draws are refused, and a type must not
    pass on (almost) nothing."""
    strategy = STRATEGIES.get(cls.type_name)
    if strategy is None:
        pytest.fail(f"layer type {cls.type_name} has no strategy in test_torch_crosscheck.STRATEGIES,"
                    f" so its {what} is not checked against torch")

    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], **settings_kwargs)
    @given(case=strategy.cases(cls), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3))
    def check(case: Case, seed: int, batch: int) -> None:
        checker(cls, case, seed, batch)
        compared[0] += 1

    compared = [0]
    check()
    assert compared[0] >= minimum, (
        f"only {compared[0]} {cls.type_name} cases were accepted by both convcalc and torch")


@pytest.mark.parametrize("cls", layer_types(), ids=lambda cls: cls.type_name)
def test_forward_matches_torch(cls: type[Layer]) -> None:
    check_every_case(cls, check_forward, "executor forward", EXAMPLES.get(cls.type_name, DEFAULT_EXAMPLES), 10)


@st.composite
def large_conv_cases(draw) -> tuple[type[Layer], Case]:
    """Conv2d/3d with outputs of 28*28 positions or more (the crosscheck strategies' inputs are at most
    7x7 / 5x5x5, and the executor may choose another algorithm for large outputs), stride 1 mostly; a quarter
    with kernels of 5-11 (where algorithm 'auto' takes the FFT) and convcalc's own padding/flip_kernel."""
    dims = draw(st.sampled_from([2, 3]))
    channels = draw(st.integers(1, 4))
    groups = draw(st.sampled_from([1, 1, 1, channels]))
    k = draw(st.lists(st.integers(1, 4), min_size=dims, max_size=dims))
    args: dict[str, Any] = {"out_channels": groups * draw(st.integers(1, 3)), "kernel_size": k, "groups": groups,
                            "bias": draw(st.booleans()),
                            "dilation": draw(st.sampled_from([1, 1, 2])),
                            "stride": draw(st.sampled_from([1, 1, 1, 2])),
                            "padding_mode": draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))}
    args["padding"] = "same" if args["stride"] == 1 and draw(st.booleans()) else draw(st.integers(0, 2))
    if draw(st.integers(0, 3)) == 0:   # convcalc's own: large kernels (where 'auto' takes the FFT), other paddings
        args["kernel_size"] = draw(st.lists(st.integers(5, 11 if dims == 2 else 7), min_size=dims, max_size=dims))
        args["padding"] = draw(st.sampled_from(["tf_same", "full", [[3, 1]] * dims]))
        args["flip_kernel"] = draw(st.booleans())
        args["algorithm"] = draw(st.sampled_from(["auto", "direct", "fft"]))
    low, high = {2: (28, 40), 3: (10, 13)}[dims]
    shape = (channels, *draw(st.lists(st.integers(low, high), min_size=dims, max_size=dims)))
    return lookup(f"Conv{dims}d"), Case(args, [shape], channel_arg="in_channels")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drawn=large_conv_cases(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 2))
def test_large_conv_forward_matches_torch(drawn, seed: int, batch: int) -> None:
    cls, case = drawn
    check_forward(cls, case, seed, batch)


@st.composite
def winograd_cases(draw) -> tuple[type[Layer], Case]:
    """Conv1d/2d/3d that algorithm 'winograd' (F(2, 3)) can run: 3-tap kernels, stride 1, dilation 1, groups 1;
    any padding (odd and even output extents: odd ones compute a dropped extra row; uneven pads and crops, which
    the polyphase copy writes), any padding mode, flipped
    or not; channel counts both sides of where 'auto' would choose it."""
    dims = draw(st.sampled_from([1, 2, 3]))
    args: dict[str, Any] = {"out_channels": draw(st.integers(1, 9)), "kernel_size": 3, "algorithm": "winograd",
                            "bias": draw(st.booleans()), "flip_kernel": draw(st.booleans()),
                            "padding_mode": draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])),
                            "padding": draw(st.sampled_from([0, 1, 2, "same", "valid", "full", "tf_same",
                                                             [[2, 0]] * dims, [[-1, 2]] * dims, [[1, -1]] * dims]))}
    high = {1: 40, 2: 17, 3: 8}[dims]
    shape = (draw(st.integers(1, 9)), *draw(st.lists(st.integers(3, high), min_size=dims, max_size=dims)))
    return lookup(f"Conv{dims}d"), Case(args, [shape], channel_arg="in_channels")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drawn=winograd_cases(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3))
def test_winograd_forward_matches_torch(drawn, seed: int, batch: int) -> None:
    cls, case = drawn
    check_forward(cls, case, seed, batch)


@st.composite
def small_channel_cases(draw) -> tuple[type[Layer], Case]:
    """Conv1d/2d/3d, ungrouped, with so few input channels that channels x the last kernel extent is under
    TRANSPOSED_PATCHES_MAX_RUN (stride 1) or TRANSPOSED_PATCHES_MAX_RUN_STRIDED (a first conv on an image): the
    direct algorithm runs them on transposed patches (`kernels.conv_im2col_t`, zero padding written by its
    polyphase copy, other modes padded first; 'auto' may take the FFT for the larger kernels). Any padding
    spelling and mode, strides, dilation, flipped kernels."""
    dims = draw(st.sampled_from([1, 2, 3]))
    stride = draw(st.sampled_from([1, 1, 2, 3]))
    channels = draw(st.integers(1, 3 if stride == 1 else 2))
    limit = TRANSPOSED_PATCHES_MAX_RUN if stride == 1 else TRANSPOSED_PATCHES_MAX_RUN_STRIDED
    k = draw(st.lists(st.integers(1, max(1, (limit - 1) // channels)), min_size=dims,
                      max_size=dims).filter(lambda ks: np.prod(ks) > 1))
    args: dict[str, Any] = {"out_channels": draw(st.integers(1, 6)), "kernel_size": k, "bias": draw(st.booleans()),
                            "stride": stride, "algorithm": "direct",
                            "dilation": draw(st.sampled_from([1, 1, 2])), "flip_kernel": draw(st.booleans()),
                            "padding_mode": draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])),
                            "padding": draw(st.sampled_from([0, 1, 2, "valid", "full", "tf_same", [[2, 0]] * dims,
                                                             [[-1, 2]] * dims, [[1, -1]] * dims]
                                                            + (["same"] if stride == 1 else [])))}
    high = {1: 60, 2: 24, 3: 9}[dims]
    span = [args["dilation"] * (size - 1) + 1 for size in k]
    shape = (channels, *[draw(st.integers(size + 1, max(high, size + 2))) for size in span])
    return lookup(f"Conv{dims}d"), Case(args, [shape], channel_arg="in_channels")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drawn=small_channel_cases(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3))
def test_small_channel_conv_forward_matches_torch(drawn, seed: int, batch: int) -> None:
    cls, case = drawn
    plan = conv_plan(cls, case)
    assert plan["method"] == "im2col_t", plan["method"]      # the path this test is for
    check_forward(cls, case, seed, batch)


def conv_plan(cls: type[Layer], case: Case) -> dict[str, Any]:
    """The plan `prepare` makes for a drawn conv case (zero weights; drawn cases its shape rule refuses are
    skipped)."""
    layer = cls.from_args({**case.args, "in_channels": case.in_shapes[0][0]})
    try:
        inferred = layer.infer([tuple(case.in_shapes[0])])
    except LayerArgError:
        assume(False)
        raise AssertionError("unreachable")
    params = {name: np.zeros(shape) for name, shape in inferred.params.items()}
    return layer.prepare(params, [tuple(case.in_shapes[0])], inferred.out_shape, np.dtype(np.float64))


@st.composite
def bias_in_gemm_cases(draw) -> tuple[type[Layer], Case]:
    """Biased convs whose bias the GEMM adds (a ones column in its left operand): im2col's (ungrouped, stride 2
    so that neither the row algorithm nor Winograd takes them, enough channels for no transposed patches), strided
    1x1 convs, and stride-1 1x1 convs expanding to at least BIAS_IN_GEMM_MIN_EXPANSION x (C + 1) channels."""
    dims = draw(st.sampled_from([1, 2, 3]))
    kind = draw(st.sampled_from(["im2col", "strided 1x1", "expanding 1x1"]))
    channels = draw(st.integers(1, 6)) if kind != "im2col" else draw(st.integers(8, 12))
    args: dict[str, Any] = {"bias": True, "kernel_size": 1 if kind != "im2col" else draw(st.integers(2, 3)),
                            "stride": 1 if kind == "expanding 1x1" else draw(st.integers(2, 3)),
                            "padding": draw(st.integers(0, 1)), "algorithm": "direct",
                            "out_channels": draw(st.integers(BIAS_IN_GEMM_MIN_EXPANSION * (channels + 1), 20))
                            if kind == "expanding 1x1" else draw(st.integers(1, 9))}
    high = {1: 30, 2: 12, 3: 6}[dims]
    shape = (channels, *draw(st.lists(st.integers(4, high), min_size=dims, max_size=dims)))
    return lookup(f"Conv{dims}d"), Case(args, [shape], channel_arg="in_channels")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drawn=bias_in_gemm_cases(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3))
def test_bias_added_by_the_gemm_matches_torch(drawn, seed: int, batch: int) -> None:
    """Outputs as torch's, and MACs still the conv's own (the ones column's products are not counted)."""
    cls, case = drawn
    plan = conv_plan(cls, case)
    assert plan["bias_in_gemm"], plan["method"]      # the path this test is for
    check_forward(cls, case, seed, batch)


# ============================================================================ whole networks

class GraphBuilder:
    """Nodes for a convcalc Graph and the specs TorchGraph builds the same graph from; shapes from convcalc's infer."""

    def __init__(self, input_shape: tuple[int, ...]):
        self.input_shape = input_shape
        self.nodes: list[Node] = []
        self.specs: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = []
        self.shapes: dict[str, tuple[int, ...]] = {INPUT: input_shape}

    def add(self, type_name: str, args: dict[str, Any], *inputs: str) -> str:
        name = f"n{len(self.nodes)}_{type_name.lower()}"
        layer = lookup(type_name).from_args(args)
        out_shape = layer.infer([self.shapes[i] for i in inputs]).out_shape   # LayerArgError: drawn invalid
        self.nodes.append(Node(name, type_name, layer, tuple(inputs)))
        self.specs.append((name, type_name, dict(args), tuple(inputs)))
        self.shapes[name] = out_shape
        return name

    def graph(self) -> Graph:
        return Graph("random", self.input_shape, tuple(self.nodes), self.nodes[-1].name)


class TorchGraph(torch.nn.Module):
    """The same graph evaluated with torch.nn modules (torch.add for Add)."""

    def __init__(self, builder: GraphBuilder):
        super().__init__()
        self.order = builder.specs
        self.blocks = torch.nn.ModuleDict()
        for name, type_name, args, inputs in builder.specs:
            if type_name == "Add":
                continue
            in_shape = builder.shapes[inputs[0]]
            kwargs = {key: _torch_value(value) for key, value in args.items()}
            if type_name.startswith("Conv"):
                kwargs["in_channels"] = in_shape[0]
            elif type_name.startswith("BatchNorm"):
                kwargs["num_features"] = in_shape[0]
            elif type_name == "Linear":
                kwargs["in_features"] = in_shape[-1]
            self.blocks[name] = getattr(torch.nn, type_name)(**kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {INPUT: x}
        for name, type_name, _, inputs in self.order:
            if type_name == "Add":
                values[name] = torch.add(values[inputs[0]], values[inputs[1]])
            else:
                values[name] = self.blocks[name](values[inputs[0]])
        return values[self.order[-1][0]]


ACTIVATIONS = st.sampled_from([("ReLU", {}), ("ReLU6", {}), ("SiLU", {}), ("LeakyReLU", {"negative_slope": 0.1}),
                               ("Hardswish", {}), ("Identity", {})])


@st.composite
def networks(draw) -> GraphBuilder:
    dims = draw(st.sampled_from([1, 2, 2, 3]))
    top = {1: 16, 2: 9, 3: 5}[dims]
    channels = draw(st.integers(1, 4))
    builder = GraphBuilder((channels, *draw(st.lists(st.integers(3, top), min_size=dims, max_size=dims))))
    conv, bn = f"Conv{dims}d", f"BatchNorm{dims}d"
    previous = INPUT

    def bn_args() -> dict[str, Any]:
        return {"affine": draw(st.booleans()), "eps": draw(st.sampled_from([1e-5, 1e-3]))}

    for _ in range(draw(st.integers(1, 3))):
        kinds = ["plain", "plain", "residual", "projection", "bn_unfoldable"]
        if dims == 1:
            kinds.append("linear_rows")
        kind = draw(st.sampled_from(kinds))
        width = draw(st.integers(1, 4))
        if kind == "plain":
            k = draw(st.integers(1, 3))
            groups = draw(st.sampled_from([1, 1, builder.shapes[previous][0]]))
            previous = builder.add(conv, {"out_channels": width * groups, "kernel_size": k, "groups": groups,
                                          "stride": draw(st.integers(1, 2)), "padding": draw(st.integers(0, k // 2)),
                                          "bias": draw(st.booleans())}, previous)
            previous = builder.add(bn, bn_args(), previous)
            activation, args = draw(ACTIVATIONS)
            previous = builder.add(activation, args, previous)
            if draw(st.booleans()):
                pool = draw(st.sampled_from(["MaxPool", "AvgPool"]))
                previous = builder.add(f"{pool}{dims}d", {"kernel_size": 2, "ceil_mode": draw(st.booleans())},
                                       previous)
        elif kind in ("residual", "projection"):
            skip = previous
            out_channels = builder.shapes[previous][0] if kind == "residual" else width
            h = builder.add(conv, {"out_channels": out_channels, "kernel_size": 3, "padding": 1, "bias": False},
                            previous)
            h = builder.add(bn, bn_args(), h)
            h = builder.add("ReLU", {}, h)
            h = builder.add(conv, {"out_channels": out_channels, "kernel_size": 3, "padding": "same"}, h)
            h = builder.add(bn, bn_args(), h)
            if kind == "projection":
                skip = builder.add(conv, {"out_channels": out_channels, "kernel_size": 1, "bias": False}, skip)
                skip = builder.add(bn, bn_args(), skip)
            previous = builder.add("ReLU", {}, builder.add("Add", {}, h, skip))
        elif kind == "linear_rows":
            # Linear over the last axis of a [C, L] tensor, then BatchNorm1d over its rows (axis 0): a per-row map
            # that the Linear's weights cannot absorb
            previous = builder.add("Linear", {"out_features": draw(st.integers(1, 6))}, previous)
            previous = builder.add("BatchNorm1d", bn_args(), previous)
        else:
            # a conv read by two layers (its BatchNorm cannot fold), then a BatchNorm after an Add (nothing to fold into)
            c = builder.add(conv, {"out_channels": width, "kernel_size": 1}, previous)
            b = builder.add(bn, bn_args(), c)
            previous = builder.add(bn, bn_args(), builder.add("Add", {}, b, c))
    if draw(st.booleans()):
        previous = builder.add(f"AdaptiveAvgPool{dims}d", {"output_size": 1}, previous)
        previous = builder.add("Flatten", {}, previous)
        previous = builder.add("Linear", {"out_features": draw(st.integers(1, 5))}, previous)
        builder.add("BatchNorm1d", bn_args(), previous)
    return builder


def draw_network(data) -> GraphBuilder:
    try:
        return data.draw(networks())
    except LayerArgError:
        assume(False)  # e.g. a stride-2 conv and a pool shrank the input below a kernel
        raise AssertionError("unreachable")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3))
def test_network_matches_torch(data, seed: int, batch: int) -> None:
    folded = check_network(draw_network(data), seed, batch)
    event(f"folded {folded}")


@pytest.mark.parametrize("rows, length, features", [(3, 5, 3), (3, 5, 4), (2, 3, 1), (1, 3, 2)])
def test_batchnorm1d_over_the_rows_of_a_linear_output(rows: int, length: int, features: int) -> None:
    """Linear on [C, L] -> [C, F], then BatchNorm1d over the C rows (torch normalises dim 1 of (N, C, F)).
    Folding it into the Linear's weights, which scale the F features, gave wrong numbers (C == F) or
    crashed (C != F); the fold must be skipped (or be exact, for a single row)."""
    builder = GraphBuilder((rows, length))
    linear = builder.add("Linear", {"out_features": features}, INPUT)
    builder.add("BatchNorm1d", {}, linear)
    for seed in range(3):
        check_network(builder, seed, batch=2)


def check_network(builder: GraphBuilder, seed: int, batch: int) -> int:
    """Run the graph in torch and in convcalc's Network (folded and not, float64 and float32); returns the
    number of folded layers."""
    graph = builder.graph()
    gen = torch.Generator().manual_seed(seed)
    model = TorchGraph(builder).double().eval()
    randomize(model, gen)
    x = f32_exact(torch.randn(batch, *builder.input_shape, generator=gen, dtype=torch.float64))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = model(x).numpy()
    state: dict[str, np.ndarray] = {}
    for name, module in model.blocks.items():
        state.update(state_as_numpy(module, f"{name}."))
    where = (f"network {[(n, t, a, i) for n, t, a, i in builder.specs]} input={builder.input_shape}"
             f" batch={batch} seed={seed}")

    folded_count = 0
    for dtype, fold in (("float64", True), ("float64", False), ("float32", True)):
        network = Network(graph, builder.input_shape, state=state, dtype=dtype, fold_batchnorm=fold)
        result = network.run(x.numpy())
        assert result.ok, f"{where}: executor self-check failed: {[r for r in result.layers if not r.ok]}"
        assert_close(result.output, reference, np.float64 if dtype == "float64" else np.float32,
                     f"{where} fold={fold}")
        if fold:
            # torch's BatchNorm is a per-channel (batchless axis 0) affine map. Only a BatchNorm whose producer
            # (a Conv or Linear) has no other reader may fold; it must fold when the producer's weights absorb
            # a per-channel map: a Conv's always (out_channels are axis 0), a Linear's when its output is a
            # vector (out_features, the last axis, is then axis 0). Anything else is judged by the numbers.
            producers = {name: inputs[0] for name, type_name, _, inputs in builder.specs
                         if type_name.startswith("BatchNorm") and inputs[0] != INPUT
                         and graph.node(inputs[0]).type_name.startswith(("Conv", "Linear"))
                         and sum(inputs[0] in other for *_, other in builder.specs) == 1}
            must_fold = {name for name, producer in producers.items()
                         if graph.node(producer).type_name.startswith("Conv") or len(builder.shapes[producer]) == 1}
            folded = {r.name for r in result.layers if r.folded}
            assert must_fold <= folded, f"{where}: {sorted(must_fold - folded)} not folded"
            assert folded <= set(producers), f"{where}: folded {sorted(folded - set(producers))}"
            folded_count = len(folded)
    return folded_count


def test_in_place_layers_never_overwrite_an_array_still_needed():
    """ReLU and Add write into their input only when nothing later reads it: here every input is read again
    (a branch, a folded BatchNorm sharing its conv's array, the network input, the output)."""
    import convcalc
    from convcalc.execution.network import Network

    spec = convcalc.spec_from_dict({"input": [3, 9, 9], "layers": [
        {"type": "ReLU", "name": "r0"},                                   # reads the network input
        {"type": "Conv2d", "name": "c", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "BatchNorm2d", "name": "bn"},                             # folded: shares c's array
        {"type": "ReLU", "name": "r1"},                                    # bn is read again by 'sum'
        {"type": "Add", "name": "sum", "from": ["r1", "bn"]},             # r1 is read again by 'again'
        {"type": "Add", "name": "again", "from": ["r1", "sum"]},
        {"type": "Add", "name": "with_input", "from": ["r0", "input"]},   # never overwrite the caller's input
        {"type": "Conv2d", "name": "c2", "out_channels": 4, "kernel_size": 1, "from": "with_input"},
        {"type": "Add", "name": "out", "from": ["again", "c2"]},
    ]})
    graph = convcalc.build_graph(spec)
    torch.manual_seed(0)
    conv, bn, conv2 = torch.nn.Conv2d(3, 4, 3, padding=1).double(), torch.nn.BatchNorm2d(4).double(), \
        torch.nn.Conv2d(3, 4, 1).double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    bn.eval()
    state = {f"c.{k}": v.detach().numpy() for k, v in conv.state_dict().items()}
    state.update({f"bn.{k}": v.detach().numpy() for k, v in bn.state_dict().items()})
    state.update({f"c2.{k}": v.detach().numpy() for k, v in conv2.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9))
    before = x.copy()
    with torch.no_grad():
        t = torch.from_numpy(x)
        b = bn(conv(torch.relu(t)))
        r1 = torch.relu(b)
        expected = (r1 + (r1 + b)) + conv2(torch.relu(t) + t)
    result = Network(graph, (3, 9, 9), state=state, dtype="float64").run(x)
    assert result.ok
    assert np.abs(result.output - expected.numpy()).max() < 1e-12
    assert np.array_equal(x, before)


def torch_run(builder: GraphBuilder, batch: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, dict[str, np.ndarray]]:
    """The builder's graph in torch (float64, randomized parameters and input): the input, torch's output and
    the parameters as a state dict for convcalc's Network."""
    gen = torch.Generator().manual_seed(seed)
    model = TorchGraph(builder).double().eval()
    randomize(model, gen)
    x = torch.randn(batch, *builder.input_shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        reference = model(x).numpy()
    state: dict[str, np.ndarray] = {}
    for name, module in model.blocks.items():
        state.update(state_as_numpy(module, f"{name}."))
    return x, reference, state


def test_sums_a_conv_writes_into_the_other_input_only_where_nothing_else_reads_it():
    """A residual sum whose conv's output nothing else reads is written by the conv itself (its GEMM adds into
    the other input, `Network.accumulate`); never when that other input is read after the sum (directly, or
    through Identity, which hands on the same array), is kept, or is the network's input. Every case against
    torch, fused or not."""
    builder = GraphBuilder((3, 8, 8))

    def conv(source: str, kernel: int = 1, **args: Any) -> str:
        return builder.add("Conv2d", {"out_channels": 4, "kernel_size": kernel, "padding": kernel // 2, **args}, source)

    def branch(source: str) -> str:                                          # a conv reading something else
        return conv(builder.add("ReLU", {}, conv(source, 3)))

    r0 = builder.add("ReLU", {}, conv(INPUT, 3))
    h = builder.add("ReLU", {}, conv(r0, 3))
    conv1 = conv(h)
    fused = builder.add("Add", {}, builder.add("BatchNorm2d", {}, conv1), r0)   # a bottleneck's sum (BN folded)
    down = conv(fused, stride=2)
    main = conv(fused, 3, stride=2)
    projected = builder.add("Add", {}, main, down)                             # the later conv (main) adds
    view = builder.add("Identity", {}, projected)
    aliased = builder.add("Add", {}, branch(projected), projected)             # 'view' still reads it after
    reread = builder.add("Add", {}, branch(aliased), aliased)                  # 'aliased' is read again below
    last = builder.add("Add", {}, builder.add("Add", {}, reread, aliased), view)
    own = builder.add("Add", {}, conv(last), last)                             # the conv reads what it would add to
    from_input = builder.add("Add", {}, builder.add("Conv2d", {"out_channels": 3, "kernel_size": 1}, INPUT), INPUT)
    final = builder.add("Add", {}, own, conv(from_input, 5, stride=2))        # fused
    x, reference, state = torch_run(builder, batch=2)
    network = Network(builder.graph(), (3, 8, 8), state=state, dtype="float64")
    x_before = x.numpy().copy()
    for keep, expect in (((), {fused, projected, final}), ((r0,), {projected, final}), (True, set())):
        result = network.run(x.numpy(), keep=keep)
        assert result.ok
        assert {r.name for r in result.layers if r.fused_into} == expect, keep
        assert_close(result.output, reference, np.float64, f"keep={keep}")
        assert np.array_equal(x.numpy(), x_before)
    by_name = {r.name: r for r in network.run(x.numpy()).layers}
    assert (by_name[fused].fused_into, by_name[projected].fused_into) == (conv1, main)


def test_one_channel_input_is_never_written_through_a_view_that_outlived_it():
    """A one-channel input needs no copy to be channels-last, so the executor's input array is the caller's
    memory; once no layer reads 'input' any more, an Identity of it (the same array) must still not be written
    by an in-place ReLU or by a conv adding its output into it."""
    builder = GraphBuilder((1, 6, 6))
    view = builder.add("Identity", {}, INPUT)
    relu = builder.add("ReLU", {}, builder.add("Identity", {}, INPUT))
    h = builder.add("ReLU", {}, builder.add("Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1}, relu))
    total = builder.add("Add", {}, builder.add("Conv2d", {"out_channels": 1, "kernel_size": 1}, h), view)
    builder.add("Add", {}, total, relu)
    x, reference, state = torch_run(builder, batch=2)
    caller = x.numpy().copy()
    result = Network(builder.graph(), (1, 6, 6), state=state, dtype="float64").run(caller)
    assert np.array_equal(caller, x.numpy())
    assert_close(result.output, reference, np.float64, "one-channel input")


def test_a_sum_that_overflows_is_blamed_on_the_sum_not_its_conv():
    """When a conv adds its output into the other input of a sum, the run reports whether the conv's own output was
    finite, so a sum that alone overflows is the first non-finite layer, as without the fusion."""
    builder = GraphBuilder((1, 4, 4))
    r = builder.add("ReLU", {}, builder.add("Conv2d", {"out_channels": 1, "kernel_size": 1}, INPUT))
    h = builder.add("ReLU", {}, builder.add("Conv2d", {"out_channels": 1, "kernel_size": 1}, r))
    c = builder.add("Conv2d", {"out_channels": 1, "kernel_size": 1}, h)
    total = builder.add("Add", {}, c, r)
    state = {f"{name}.{key}": (np.ones((1, 1, 1, 1)) if key == "weight" else np.zeros(1))
             for name, type_name, _, _ in builder.specs if type_name == "Conv2d" for key in ("weight", "bias")}
    network = Network(builder.graph(), (1, 4, 4), state=state, dtype="float32")
    x = np.full((1, 1, 4, 4), 3e38, dtype=np.float32)              # each conv passes 3e38 on; the sum is inf
    fused = network.run(x)
    assert {layer.name: layer.fused_into for layer in fused.layers}[total] == c
    assert fused.first_nonfinite == total == network.run(x, keep=True).first_nonfinite


def test_in_place_layers_never_overwrite_a_view_of_an_array_still_needed():
    """A Flatten of a 1x1 map and Identity hand on their input's memory (a view, the same array): a ReLU after
    them must not overwrite it while another branch still reads the conv's output, nor a kept map."""
    import convcalc
    from convcalc.execution.network import Network

    spec = convcalc.spec_from_dict({"input": [2, 4, 4], "layers": [
        {"type": "Conv2d", "name": "c", "out_channels": 3, "kernel_size": 4},   # a 1x1 map
        {"type": "Flatten", "name": "f"},                                     # a view of c's array
        {"type": "Identity", "name": "i"},
        {"type": "ReLU", "name": "r"},
        {"type": "Flatten", "name": "f2", "from": "c"},                       # c is read again here
        {"type": "Add", "name": "s", "from": ["r", "f2"]},
    ]})
    graph = convcalc.build_graph(spec)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 4).double()
    state = {f"c.{k}": v.detach().numpy() for k, v in conv.state_dict().items()}
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4))
    with torch.no_grad():
        flat = torch.flatten(conv(torch.from_numpy(x)), 1)
        expected = (torch.relu(flat) + flat).numpy()
    network = Network(graph, (2, 4, 4), state=state, dtype="float64")
    assert (expected != 2 * np.maximum(expected / 2, 0)).any()   # some conv outputs are negative: ReLU matters
    assert np.abs(network.run(x).output - expected).max() < 1e-12
    kept = network.run(x, keep=["f"])
    assert np.abs(kept.output - expected).max() < 1e-12
    assert np.abs(kept.maps["f"] - flat.numpy()).max() < 1e-12        # the kept map is not the ReLU's output


# ConvTranspose1d/2d/3d (strategy and torch reference in transposed_cases.py): more examples, the scatter-add has edges
EXAMPLES.update({f"ConvTranspose{d}d": 80 for d in (1, 2, 3)})

# Upsample and MaxUnpool (strategies and torch references in resample_cases.py): more examples
EXAMPLES.update(EXECUTOR_EXAMPLES)
