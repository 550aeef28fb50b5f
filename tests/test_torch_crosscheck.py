"""Cross-checks of every registered layer type against PyTorch itself (torch 2.13, CPU).

For each type a Hypothesis strategy draws arguments and an input shape, valid or not (kernels wider
than the padded input, pooling padding above half the kernel, groups that do not divide the
channels, padding='same' with a stride, reflect/circular padding too large for the input, ceil_mode
edges, dilation, wrong channel counts, wrong ranks, out-of-range dims, ...). The same arguments build
the torch module, which runs on a batch of one. Then:

* torch raises  <=>  convcalc raises (`LayerArgError`, from `from_args` or `infer`);
* when both succeed: the output shape (batch removed), the parameter names/shapes/count, the
  buffer names/shapes/count are PyTorch's, and ``2 * macs`` is FlopCounterMode's total for Conv and
  Linear (FlopCounterMode counts 2 flops per multiply-accumulate and nothing for the bias; checked
  in `test_flop_counter_counts_two_per_mac_and_no_bias`). Every other type has 0 MACs, and torch
  counts 0 flops for it too.

convcalc's documented conventions, where it is deliberately stricter than a batch-1 torch run,
are asserted explicitly rather than skipped:

* it analyses one sample, so a ``dim``/``start_dim``/``end_dim`` that names the batch axis
  (dim 0) is refused, even where torch would run;
* it never produces an empty tensor: arguments that make torch return a 0-element output
  (Linear(out_features=0), AdaptiveAvgPool(output_size=0)) are refused;
* Add/Multiply broadcast as torch does, but only inputs of one rank: torch aligns shapes from the last
  axis, so a shorter input's batch axis would meet another axis (it runs only at batch 1);
* a per-axis list has one value per spatial axis, even where torch runs with another length (a
  non-'zeros' padding_mode hands ``padding`` to F.pad, which pads other axes with the extras);
* AdaptiveAvgPool2d/3d keep their rank rule even where ATen's 1x1 fast path (a plain mean over the
  last axes) would run on a wrong-rank input.

A registered type without a strategy here fails `test_crosscheck_against_torch` by name.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from convcalc.errors import LayerArgError
from convcalc.layers import Layer, layer_types, lookup
from convcalc.algebra.shapes import adaptive_bin, adaptive_bin_extent

torch.set_num_threads(1)

MAC_TYPES = {"Conv1d", "Conv2d", "Conv3d", "Linear"}
MERGES = {"Add": torch.add, "Multiply": torch.mul, "Concat": torch.cat}
# elementwise types that torch has as functions only: checked against a module wrapping the function
FUNCTIONS = {"Abs": torch.abs, "Sqrt": torch.sqrt}


class FunctionModule(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


# ============================================================================ running both sides

@dataclass
class Case:
    """One drawn example: convcalc's arguments (lists for per-axis values) and the input shapes
    (batch excluded). ``channel_arg`` names the argument torch needs but convcalc infers."""

    args: dict[str, Any]
    in_shapes: list[tuple[int, ...]]
    channel_arg: str | None = None
    batch: int = 1
    # the layers that reference arguments name (MaxUnpool's 'pool'): argument -> (type name, arguments)
    references: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class TorchResult:
    error: Exception | None = None
    full_shape: tuple[int, ...] | None = None  # batch included
    out_shape: tuple[int, ...] | None = None
    params: dict[str, tuple[int, ...]] | None = None
    buffers: dict[str, tuple[int, ...]] | None = None
    param_count: int = 0
    buffer_count: int = 0
    flops: int = 0


def _torch_value(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def run_torch(type_name: str, case: Case) -> TorchResult:
    """Build the torch module (or call the torch function for merges) and run it on zeros."""
    inputs = [torch.zeros(case.batch, *shape) for shape in case.in_shapes]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if type_name in MERGES:
                function = MERGES[type_name]
                with FlopCounterMode(display=False) as counter:
                    if type_name == "Concat":
                        out = function(inputs, dim=case.args.get("dim", 1))
                    else:
                        out = inputs[0]
                        for other in inputs[1:]:
                            out = function(out, other)
                return TorchResult(full_shape=tuple(out.shape), out_shape=tuple(out.shape[1:]),
                                   params={}, buffers={}, flops=counter.get_total_flops())
            kwargs = {name: _torch_value(value) for name, value in case.args.items()}
            if case.channel_arg and kwargs.get(case.channel_arg) is None:
                kwargs[case.channel_arg] = case.in_shapes[0][0] if type_name != "Linear" else case.in_shapes[0][-1]
            if type_name in FUNCTIONS:
                module = FunctionModule(FUNCTIONS[type_name]).eval()
            else:
                module = torch_class(type_name)(**reference_kwargs(type_name, kwargs, case)).eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                out = module(*inputs)
            if isinstance(out, tuple):  # return_indices=True
                out = out[0]
    except Exception as error:  # noqa: BLE001  (any torch refusal counts)
        return TorchResult(error=error)
    return TorchResult(
        full_shape=tuple(out.shape),
        out_shape=tuple(out.shape[1:]),
        params={name: tuple(p.shape) for name, p in module.named_parameters()},
        buffers={name: tuple(b.shape) for name, b in module.named_buffers()},
        param_count=sum(p.numel() for p in module.parameters()),
        buffer_count=sum(b.numel() for b in module.buffers()),
        flops=counter.get_total_flops(),
    )


def convcalc_layer(cls: type[Layer], case: Case) -> Layer:
    """``from_args``, then the layers its reference arguments name bound as the graph would bind them."""
    layer = cls.from_args(case.args)
    for argument, (type_name, args) in case.references.items():
        layer.bind(argument, lookup(type_name).from_args(args))
    return layer


def run_convcalc(cls: type[Layer], case: Case):
    """Returns (layer, inferred, error); only `LayerArgError` is an allowed refusal."""
    layer = None
    try:
        layer = convcalc_layer(cls, case)
        return layer, layer.infer([tuple(s) for s in case.in_shapes]), None
    except LayerArgError as error:
        assert error.message, "an empty LayerArgError message"
        assert error.arg is None or error.arg in cls.arguments or error.arg in ("from",), (
            f"LayerArgError names an argument {error.arg!r} that {cls.type_name} does not take")
        return layer, None, error


def names_batch_axis(dim: Any, rank: int) -> bool:
    """Whether ``dim`` is a valid torch dim of a (batch + rank)-D tensor that resolves to the batch."""
    full = rank + 1
    return isinstance(dim, int) and -full <= dim < full and dim % full == 0


def convention_refusal(type_name: str, case: Case, theirs: TorchResult) -> str | None:
    """Why convcalc must refuse although torch ran (its documented conventions), else None."""
    rank = len(case.in_shapes[0])
    for name in ("dim", "start_dim", "end_dim"):
        if name in case.args and names_batch_axis(case.args[name], rank):
            return f"{name}={case.args[name]} names the batch axis"
    if theirs.error is None and 0 in theirs.out_shape:
        return f"torch returns an empty tensor {theirs.out_shape}"
    padding_reason = padding_convention(type_name, case)
    if padding_reason is not None:
        return padding_reason
    resample_reason = resample_convention(type_name, case, theirs)
    if resample_reason is not None:
        return resample_reason
    if (layout_reason := layout_convention(type_name, case)) is not None:      # layout_cases.py
        return layout_reason
    dims = lookup(type_name).dims
    for name, value in case.args.items():
        if dims and isinstance(value, list) and len(value) != dims and type_name not in PAD_TYPES:
            # e.g. Conv1d(padding=[0, 0], padding_mode='reflect'): torch hands the list to F.pad, which
            # pads other axes with the extra values, and F.conv never sees it.
            return f"{name} has {len(value)} values for {dims} spatial axes"
    if (type_name.startswith("BatchNorm") and case.args.get("track_running_stats") is False
            and math.prod(case.in_shapes[0][1:]) == 1):
        return "batch statistics of one value per channel, which torch refuses at batch 1 (one sample analysed)"
    dilation = case.args.get("dilation")
    if type_name.startswith("ConvTranspose") and 0 in (dilation if isinstance(dilation, list) else [dilation]):
        # torch's check ("dilation should be greater than zero") runs on every path but the grouped transposed
        # conv's oneDNN one, which takes dilation 0 when the kernel is 1 (and fails to build a primitive else)
        return "dilation 0, which torch refuses except on one backend path"
    if type_name in ("Add", "Multiply") and len({len(shape) for shape in case.in_shapes}) > 1:
        return "inputs of different ranks: torch broadcasts the batch axis of the shorter against another axis"
    if type_name in ("AdaptiveAvgPool2d", "AdaptiveAvgPool3d") and rank != lookup(type_name).dims + 1:
        # ATen's adaptive_avg_pool{2,3}d turns a 1x1(x1) target into input.mean(last axes) before its
        # "Expected 3D or 4D tensor" check, so torch runs on any rank (averaging over the batch when
        # the rank is short). convcalc keeps the [C, H, W] / [C, D, H, W] rank rule.
        return "torch's global-average fast path skips the rank check"
    return None


def crosscheck(cls: type[Layer], case: Case) -> None:
    type_name = cls.type_name
    theirs = run_torch(type_name, case)
    _, ours, our_error = run_convcalc(cls, case)
    where = f"{type_name} args={case.args} input={case.in_shapes}"

    reason = convention_refusal(type_name, case, theirs)
    event("torch runs" if theirs.error is None else "torch raises")  # --hypothesis-show-statistics
    if theirs.error is not None:
        event(f"torch error: {str(theirs.error).split(',')[0][:60]}")
    if reason is not None and theirs.error is None:
        event(f"convention: {reason}")
        assert our_error is not None, f"{where}: convcalc must refuse ({reason}) but gave {ours}"
        return
    if theirs.error is not None:
        assert our_error is not None, (
            f"{where}: torch raises {type(theirs.error).__name__}: {theirs.error} but convcalc accepts"
            f" and gives {ours}")
        return
    assert our_error is None, f"{where}: torch runs (output {theirs.out_shape}) but convcalc raises: {our_error}"
    assert theirs.full_shape[0] == case.batch, f"{where}: torch changed the batch axis: {theirs.full_shape}"

    assert ours.out_shape == theirs.out_shape, f"{where}: out_shape {ours.out_shape} != torch {theirs.out_shape}"
    assert dict(ours.params) == theirs.params, f"{where}: params {dict(ours.params)} != torch {theirs.params}"
    assert dict(ours.buffers) == theirs.buffers, f"{where}: buffers {dict(ours.buffers)} != torch {theirs.buffers}"
    assert ours.param_count == theirs.param_count, where
    assert ours.buffer_count == theirs.buffer_count, where
    if type_name in MAC_TYPES:
        assert 2 * ours.macs * case.batch == theirs.flops, (
            f"{where}: 2*macs = {2 * ours.macs} but FlopCounterMode counts {theirs.flops}")
    else:
        assert ours.macs == 0, f"{where}: convcalc counts MACs only in Conv and Linear, got {ours.macs}"
        assert theirs.flops == 0, f"{where}: torch counts {theirs.flops} flops in a layer without MACs"


# ============================================================================ strategies

def rarely(strategy: st.SearchStrategy, other: st.SearchStrategy, weight: float = 0.1) -> st.SearchStrategy:
    """``strategy`` usually, ``other`` with probability about ``weight`` (it shrinks to ``strategy``)."""
    common = round(1 / weight) - 1
    return st.sampled_from([strategy] * common + [other]).flatmap(lambda chosen: chosen)


@st.composite
def per_axis(draw, dims: int, values: st.SearchStrategy) -> Any:
    """An int, or a list of ``dims`` ints; occasionally a list of the wrong length (never 1,
    which torch's C++ expands to every axis)."""
    form = draw(rarely(st.sampled_from(["int", "list"]), st.just("wrong"), 0.04))
    if form == "int":
        return draw(values)
    length = dims if form == "list" else dims + 1
    return draw(st.lists(values, min_size=length, max_size=length))


def spatial(dims: int) -> st.SearchStrategy:
    top = {1: 9, 2: 7, 3: 5}[dims]
    return st.lists(st.integers(1, top), min_size=dims, max_size=dims)


@st.composite
def conv_core(draw, dims: int) -> tuple[int, int, dict[str, Any]]:
    """(input channels, groups, {out_channels, kernel_size}) of a conv-like layer, now and then invalid."""
    channels = draw(st.integers(1, 6))
    divisors = [g for g in range(1, channels + 1) if channels % g == 0]
    groups = draw(rarely(st.sampled_from([1, *divisors]), st.integers(0, 4), 0.1))
    out_channels = draw(rarely(st.integers(1, 3).map(lambda m: m * max(groups, 1)), st.integers(0, 9), 0.1))
    args: dict[str, Any] = {
        "out_channels": out_channels,
        "kernel_size": draw(per_axis(dims, rarely(st.integers(1, 4), st.integers(-1, 0), 0.02))),
    }
    return channels, groups, args


@st.composite
def conv_cases(draw, cls: type[Layer]) -> Case:
    dims = cls.dims
    channels, groups, args = draw(conv_core(dims))
    if draw(st.booleans()):
        args["stride"] = draw(per_axis(dims, rarely(st.integers(1, 3), st.integers(-1, 0), 0.02)))
    if draw(st.booleans()):
        args["dilation"] = draw(per_axis(dims, rarely(st.integers(1, 3), st.integers(-1, 0), 0.02)))
    padding = draw(st.sampled_from(["int", "int", "same", "valid", "none", "explicit", "full", "tf_same"]))
    if padding == "int":
        args["padding"] = draw(per_axis(dims, rarely(st.integers(0, 3), st.integers(-2, -1), 0.05)))
    elif padding == "explicit":   # convcalc's [[before, after], ...]; torch reference: F.pad, then padding 0
        args["padding"] = draw(explicit_pads(dims))
    elif padding != "none":
        args["padding"] = padding
    if groups != 1 or draw(st.booleans()):
        args["groups"] = groups
    if draw(st.booleans()):
        args["bias"] = draw(st.booleans())
    if draw(st.booleans()):
        args["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if draw(st.integers(0, 3)) == 0:   # convcalc's: a true convolution; the executor's algorithm
        args["flip_kernel"] = draw(st.booleans())
    if draw(st.integers(0, 2)) == 0:
        args["algorithm"] = draw(st.sampled_from(["auto", "direct", "fft", "winograd"]))
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.1))
    if which == "same":
        args["in_channels"] = channels
    elif which == "wrong":
        args["in_channels"] = draw(st.integers(1, 7))
    shape = (channels, *draw(spatial(dims)))
    if draw(rarely(st.just(False), st.just(True), 0.05)):  # one axis too many (torch refuses a 2-batch-axis input)
        shape = (channels, 2, *shape[1:])
    return Case(args, [shape], channel_arg="in_channels")


@st.composite
def pool_cases(draw, cls: type[Layer]) -> Case:
    dims = cls.dims
    small_or_zero = lambda lo, hi: rarely(st.integers(lo, hi), st.just(0), 0.02)  # noqa: E731
    args: dict[str, Any] = {"kernel_size": draw(per_axis(dims, small_or_zero(1, 4)))}
    if draw(st.booleans()):
        args["stride"] = draw(st.one_of(st.none(), per_axis(dims, small_or_zero(1, 3))))
    if draw(st.booleans()):  # often above half the kernel: refused
        args["padding"] = draw(per_axis(dims, rarely(st.integers(0, 2), st.integers(0, 3), 0.2)))
    if "dilation" in cls.arguments and draw(st.booleans()):
        args["dilation"] = draw(per_axis(dims, small_or_zero(1, 3)))
    if draw(st.booleans()):
        args["ceil_mode"] = draw(st.booleans())
    for flag in ("return_indices", "count_include_pad"):
        if flag in cls.arguments and draw(st.booleans()):
            args[flag] = draw(st.booleans())
    if "divisor_override" in cls.arguments and draw(st.booleans()):
        args["divisor_override"] = draw(st.one_of(st.none(), small_or_zero(1, 5)))
    channels = draw(st.integers(1, 3))
    shape = (channels, *draw(spatial(dims)))
    if draw(rarely(st.just(False), st.just(True), 0.05)):
        shape = (channels, 2, *shape[1:])
    return Case(args, [shape])


@st.composite
def adaptive_cases(draw, cls: type[Layer]) -> Case:
    dims = cls.dims
    size = st.integers(0, 6)
    if draw(st.booleans()):
        output_size: Any = draw(rarely(st.integers(1, 6), st.sampled_from([-1, 0, None]), 0.15))
    else:
        output_size = draw(st.lists(st.one_of(st.none(), size), min_size=dims, max_size=dims))
    args: dict[str, Any] = {"output_size": output_size}
    if "return_indices" in cls.arguments and draw(st.booleans()):
        args["return_indices"] = draw(st.booleans())
    shape = (draw(st.integers(1, 3)), *draw(spatial(dims)))
    if draw(rarely(st.just(False), st.just(True), 0.05)):
        shape = (shape[0], 2, *shape[1:])
    return Case(args, [shape])


def any_shape(max_rank: int = 4, top: int = 4) -> st.SearchStrategy:
    return st.integers(1, max_rank).flatmap(
        lambda rank: st.lists(st.integers(1, top), min_size=rank, max_size=rank).map(tuple))


@st.composite
def linear_cases(draw, cls: type[Layer]) -> Case:
    shape = draw(any_shape(3, 6))
    args: dict[str, Any] = {"out_features": draw(rarely(st.integers(1, 8), st.just(0), 0.05))}
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.15))
    if which == "same":
        args["in_features"] = shape[-1]
    elif which == "wrong":
        args["in_features"] = draw(st.integers(1, 7))
    if draw(st.booleans()):
        args["bias"] = draw(st.booleans())
    return Case(args, [shape], channel_arg="in_features")


def dim_for(rank: int) -> st.SearchStrategy:
    """Any dim of a (batch + rank)-D tensor, plus one out of range on each side."""
    return st.integers(-rank - 2, rank + 1)


@st.composite
def flatten_cases(draw, cls: type[Layer]) -> Case:
    shape = draw(any_shape())
    args = {}
    if draw(st.booleans()):
        args["start_dim"] = draw(dim_for(len(shape)))
    if draw(st.booleans()):
        args["end_dim"] = draw(dim_for(len(shape)))
    return Case(args, [shape])


@st.composite
def softmax_cases(draw, cls: type[Layer]) -> Case:
    shape = draw(any_shape())
    args = {"dim": draw(dim_for(len(shape)))} if draw(rarely(st.just(True), st.just(False), 0.2)) else {}
    return Case(args, [shape])


@st.composite
def prelu_cases(draw, cls: type[Layer]) -> Case:
    shape = draw(any_shape())
    args: dict[str, Any] = {}
    if draw(st.booleans()):
        args["num_parameters"] = draw(st.one_of(st.just(1), st.just(shape[0]), st.integers(0, 5)))
    if draw(st.booleans()):
        args["init"] = draw(st.floats(-1, 1))
    return Case(args, [shape])


@st.composite
def batchnorm_cases(draw, cls: type[Layer]) -> Case:
    # Batch 2: with track_running_stats=False torch normalises with batch statistics even in eval
    # mode, and refuses one value per channel ("Expected more than 1 value per channel"); that is
    # about the batch size, which a one-sample analysis does not have.
    ranks = {"1d": [1, 2], "2d": [3], "3d": [4]}[cls.type_name[-2:]]  # torch's docs, batch excluded
    rank = draw(rarely(st.sampled_from(ranks), st.integers(1, 5), 0.25))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    args: dict[str, Any] = {}
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.15))
    if which == "same":
        args["num_features"] = shape[0]
    elif which == "wrong":
        args["num_features"] = draw(st.integers(1, 4))
    for flag in ("affine", "track_running_stats"):
        if draw(st.booleans()):
            args[flag] = draw(st.booleans())
    if draw(st.booleans()):
        args["eps"] = draw(rarely(st.sampled_from([1e-5, 1e-3, 0.0]), st.just(-1e-3)))
    if draw(st.booleans()):
        args["momentum"] = draw(st.one_of(st.none(), st.floats(0, 1)))
    return Case(args, [shape], channel_arg="num_features", batch=2)


# Shape-preserving types whose arguments do not touch shapes: values drawn per argument name.
ELEMENTWISE_VALUES: dict[str, st.SearchStrategy] = {
    "inplace": st.booleans(),
    "negative_slope": st.floats(-1, 1),
    "alpha": st.floats(-2, 2),
    "approximate": rarely(st.sampled_from(["none", "tanh"]), st.just("erf")),
    "p": st.floats(-0.25, 1.25),
}


@st.composite
def elementwise_cases(draw, cls: type[Layer]) -> Case:
    args = {}
    for name in cls.arguments:
        assert name in ELEMENTWISE_VALUES, f"no value strategy for {cls.type_name}.{name}"
        if draw(st.booleans()):
            args[name] = draw(ELEMENTWISE_VALUES[name])
    return Case(args, [draw(any_shape(5, 3))])


@st.composite
def broadcast_merge_cases(draw, cls: type[Layer]) -> Case:
    """Equal shapes, broadcastable ones (size 1 on some axes: [C, 1, 1] * [C, H, W]; 1s on different axes
    of different inputs), sizes that do not broadcast, and other ranks."""
    base = draw(any_shape(3, 4))
    shapes = [base]
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["equal", "equal", "other size", "size 1", "ones", "cross", "other rank"]))
        if kind == "equal":
            shapes.append(base)
        elif kind in ("other size", "size 1"):
            axis = draw(st.integers(0, len(base) - 1))
            size = 1 if kind == "size 1" else draw(st.integers(1, 5).filter(lambda n: n != base[axis]))
            shapes.append((*base[:axis], size, *base[axis + 1:]))
        elif kind == "ones":
            mask = draw(st.lists(st.booleans(), min_size=len(base), max_size=len(base)))
            shapes.append(tuple(1 if ones else size for ones, size in zip(mask, base)))
        elif kind == "cross" and len(base) >= 2:      # [C, 1, W] with [C, H, 1]: both broadcast
            first, second = draw(st.permutations(range(len(base))))[:2]
            shapes[0] = tuple(1 if axis == first else size for axis, size in enumerate(shapes[0]))
            shapes.append(tuple(1 if axis == second else size for axis, size in enumerate(base)))
        else:
            shapes.append(draw(any_shape(4, 4)))
    return Case({}, draw(st.permutations(shapes)).copy())


@st.composite
def concat_cases(draw, cls: type[Layer]) -> Case:
    base = draw(any_shape(3, 4))
    dim = draw(dim_for(len(base)))
    axis = dim % (len(base) + 1) - 1  # batchless axis the dim names (if in range and not the batch)
    shapes = [base]
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["ok", "ok", "ok", "other axis", "other rank"]))
        shape = list(base)
        if kind == "ok" and 0 <= axis < len(base):
            shape[axis] = draw(st.integers(1, 4))
        elif kind == "other axis":
            which = draw(st.integers(0, len(base) - 1))
            shape[which] = draw(st.integers(1, 5))
        elif kind == "other rank":
            shape = list(draw(any_shape(4, 4)))
        shapes.append(tuple(shape))
    args = {"dim": dim} if dim != 1 or draw(st.booleans()) else {}
    return Case(args, shapes)


@dataclass(frozen=True)
class Strategy:
    cases: Callable[[type[Layer]], st.SearchStrategy]
    examples: int


CONV = Strategy(conv_cases, 300)
POOL = Strategy(pool_cases, 300)
ADAPTIVE = Strategy(adaptive_cases, 60)
ELEMENTWISE = Strategy(elementwise_cases, 25)

STRATEGIES: dict[str, Strategy] = {
    **{f"Conv{d}d": CONV for d in (1, 2, 3)},
    **{f"MaxPool{d}d": POOL for d in (1, 2, 3)},
    **{f"AvgPool{d}d": POOL for d in (1, 2, 3)},
    **{f"AdaptiveAvgPool{d}d": ADAPTIVE for d in (1, 2, 3)},
    **{f"AdaptiveMaxPool{d}d": ADAPTIVE for d in (1, 2, 3)},
    **{f"BatchNorm{d}d": Strategy(batchnorm_cases, 60) for d in (1, 2, 3)},
    "Linear": Strategy(linear_cases, 100),
    "Flatten": Strategy(flatten_cases, 80),
    "Softmax": Strategy(softmax_cases, 50),
    "PReLU": Strategy(prelu_cases, 50),
    "Add": Strategy(broadcast_merge_cases, 80),
    "Multiply": Strategy(broadcast_merge_cases, 80),
    "Concat": Strategy(concat_cases, 100),
    **{name: ELEMENTWISE for name in (
        "ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh",
        "Identity", "Dropout", "Abs", "Sqrt")},
    **{f"Dropout{d}d": Strategy(elementwise_cases, 40) for d in (1, 2, 3)},
}

# ChannelShuffle, composite and unshared convolutions: strategies and torch reference modules in family_cases.py
from family_cases import FAMILY_STRATEGIES, MAC_FAMILY, REFERENCE_MODULES  # noqa: E402

STRATEGIES.update(FAMILY_STRATEGIES)
MAC_TYPES |= MAC_FAMILY

# ZeroPad/ConstantPad/ReflectionPad/ReplicationPad/CircularPad: strategies and conventions in padding_cases.py;
# there too the torch reference for convcalc's Conv extensions (explicit/'full'/'tf_same' padding, flip_kernel)
from padding_cases import CONV_REFERENCES, PAD_TYPES, PADDING_STRATEGIES, explicit_pads, padding_convention  # noqa: E402

STRATEGIES.update(PADDING_STRATEGIES)
REFERENCE_MODULES.update(CONV_REFERENCES)


def torch_class(type_name: str) -> type:
    """torch.nn's module for a type, or the reference module of family_cases.py where torch has none."""
    return REFERENCE_MODULES.get(type_name) or getattr(torch.nn, type_name)


def reference_kwargs(type_name: str, kwargs: dict[str, Any], case: Case) -> dict[str, Any]:
    """A reference module that sizes its weights by the input (locally connected) is told the input size."""
    if getattr(REFERENCE_MODULES.get(type_name), "needs_input_size", False):
        return {**kwargs, "input_size": tuple(case.in_shapes[0][1:])}
    if case.references:   # a reference module gets the (type, arguments) of each layer the case names
        return {**kwargs, **case.references}
    return kwargs


# ============================================================================ the cross-check

@pytest.mark.parametrize("cls", layer_types(), ids=lambda cls: cls.type_name)
def test_crosscheck_against_torch(cls: type[Layer]) -> None:
    strategy = STRATEGIES.get(cls.type_name)
    if strategy is None:
        pytest.fail(f"layer type {cls.type_name} lacks a cross-check strategy in {__name__}.STRATEGIES")

    @settings(max_examples=strategy.examples, deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=strategy.cases(cls))
    def check(case: Case) -> None:
        crosscheck(cls, case)

    check()


def test_no_strategy_for_unregistered_types() -> None:
    registered = {cls.type_name for cls in layer_types()}
    assert set(STRATEGIES) <= registered, f"strategies for unknown types: {set(STRATEGIES) - registered}"


# Defaults that deliberately differ from torch's signature (convcalc analyses one sample; dims count
# the batch as 0, and merging or normalising over the batch is refused, so the default is channels).
DEFAULT_CONVENTIONS = {("Softmax", "dim"), ("Concat", "dim")}


@pytest.mark.parametrize("cls", layer_types(), ids=lambda cls: cls.type_name)
def test_argument_names_and_defaults_are_torchs(cls: type[Layer]) -> None:
    if cls.type_name in FUNCTIONS:
        assert cls.arguments == {}, f"torch.{cls.type_name.lower()} takes no arguments"
        return
    if cls.type_name in MERGES:
        accepted = {"dim"} if cls.type_name == "Concat" else set()
        assert set(cls.arguments) == accepted
        return
    signature = inspect.signature(torch_class(cls.type_name).__init__)
    for name, arg in cls.arguments.items():
        assert name in signature.parameters, f"{cls.type_name} takes '{name}' but torch.nn.{cls.type_name} does not"
        theirs = signature.parameters[name].default
        if theirs is inspect.Parameter.empty or (cls.type_name, name) in DEFAULT_CONVENTIONS:
            continue  # required in torch (convcalc infers channel counts from the graph)
        assert arg.default == theirs, f"{cls.type_name}.{name} defaults to {arg.default!r}, torch to {theirs!r}"
    for name, parameter in signature.parameters.items():
        if (name in ("self", "device", "dtype") or parameter.default is not inspect.Parameter.empty
                or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)):
            continue
        assert name in cls.arguments, f"torch.nn.{cls.type_name} requires '{name}', which convcalc does not accept"


# ============================================================================ the MAC convention

@pytest.mark.parametrize("bias", [True, False])
def test_flop_counter_counts_two_per_mac_and_no_bias(bias: bool) -> None:
    """What `2*macs == FlopCounterMode` relies on: 2 flops per multiply-accumulate, grouped convs
    count C_in/groups inputs per output, and the bias add is not counted."""
    module = torch.nn.Conv2d(6, 4, (3, 2), stride=(2, 1), padding=1, groups=2, bias=bias)
    with FlopCounterMode(display=False) as counter:
        out = module(torch.zeros(1, 6, 7, 5))
    assert tuple(out.shape) == (1, 4, 4, 6)
    assert counter.get_total_flops() == 2 * (4 * 4 * 6) * (6 // 2) * (3 * 2)
    linear = torch.nn.Linear(5, 3, bias=bias)
    with FlopCounterMode(display=False) as counter:
        linear(torch.zeros(1, 7, 5))
    assert counter.get_total_flops() == 2 * 7 * 3 * 5


# ============================================================================ reference test vectors
# semantics.md section 9 (and the examples in 3.1-3.5), all VERIFIED there against torch 2.13.

def infer(type_name: str, args: dict[str, Any], *shapes: tuple[int, ...]):
    return lookup(type_name).from_args(args).infer(list(shapes))


def refused(type_name: str, args: dict[str, Any], *shapes: tuple[int, ...]) -> str:
    with pytest.raises(LayerArgError) as info:
        infer(type_name, args, *shapes)
    return info.value.message


def test_vector_conv1d_same_even_kernel_pads_the_extra_at_the_end() -> None:
    layer = lookup("Conv1d").from_args({"out_channels": 1, "kernel_size": 4, "padding": "same"})
    assert layer.pads((7,)) == ((1, 2),)
    assert layer.infer([(1, 7)]).out_shape == (1, 7)


def test_vector_conv1d_same_with_dilation() -> None:
    # §3.1: (L=7, k=2, d=3) -> pads (1, 2); (L=5, k=6) -> pads (2, 3); the length is kept
    layer = lookup("Conv1d").from_args({"out_channels": 1, "kernel_size": 2, "dilation": 3, "padding": "same"})
    assert layer.pads((7,)) == ((1, 2),)
    assert layer.infer([(1, 7)]).out_shape == (1, 7)
    layer = lookup("Conv1d").from_args({"out_channels": 1, "kernel_size": 6, "padding": "same"})
    assert layer.pads((5,)) == ((2, 3),)
    assert layer.infer([(1, 5)]).out_shape == (1, 5)


def test_vector_conv1d_same_with_stride_is_refused() -> None:
    with pytest.raises(LayerArgError) as info:
        lookup("Conv1d").from_args({"out_channels": 1, "kernel_size": 3, "padding": "same", "stride": 2})
    assert "stride" in info.value.message and info.value.arg == "padding"


def test_vector_conv1d_kernel_wider_than_input_is_refused() -> None:
    message = refused("Conv1d", {"out_channels": 1, "kernel_size": 3}, (1, 2))
    assert "kernel_size 3" in message and "2" in message


@pytest.mark.parametrize("mode, pad, ok", [("reflect", 4, False), ("reflect", 3, True),
                                           ("circular", 4, True), ("circular", 5, False)])
def test_vector_reflect_and_circular_pad_limits(mode: str, pad: int, ok: bool) -> None:
    args = {"out_channels": 1, "kernel_size": 1, "padding": pad, "padding_mode": mode}
    if ok:
        assert infer("Conv1d", args, (1, 4)).out_shape == (1, 4 + 2 * pad)
    else:
        message = refused("Conv1d", args, (1, 4))
        assert mode in message and str(pad) in message and "4" in message


def test_vector_maxpool_ceil_mode_drops_a_window_starting_in_the_right_padding() -> None:
    args = {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}
    assert infer("MaxPool1d", args, (1, 5)).out_shape == (1, 3)  # a naive ceil gives 4


def test_vector_maxpool_padding_limit_uses_the_undilated_kernel() -> None:
    message = refused("MaxPool1d", {"kernel_size": 2, "padding": 2, "dilation": 3}, (1, 9))
    assert "padding 2" in message and "kernel size 2" in message


def test_vector_maxpool_empty_output_is_refused() -> None:
    refused("MaxPool1d", {"kernel_size": 2}, (1, 1))


@pytest.mark.parametrize("length", [5, 6])
def test_vector_avgpool_ceil_mode_lengths(length: int) -> None:
    # §9: ones(5) k3 s2 p1 ceil -> [2/3, 1, 2/3]; ones(6) k3 s2 p0 ceil -> [1, 1, 1]: both 3 long
    args = {"kernel_size": 3, "stride": 2, "padding": 1 if length == 5 else 0, "ceil_mode": True}
    assert infer("AvgPool1d", args, (1, length)).out_shape == (1, 3)


@pytest.mark.parametrize("i, o, bins", [
    (10, 3, [(0, 4), (3, 7), (6, 10)]),
    (3, 5, [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]),
    (1, 3, [(0, 1), (0, 1), (0, 1)]),
])
def test_vector_adaptive_bins(i: int, o: int, bins: list[tuple[int, int]]) -> None:
    assert [adaptive_bin(j, i, o) for j in range(o)] == bins
    lengths = [hi - lo for lo, hi in bins]
    assert adaptive_bin_extent(i, o) == (min(lengths), max(lengths))
    assert infer("AdaptiveAvgPool1d", {"output_size": o}, (2, i)).out_shape == (2, o)


def test_vector_linear_applies_to_the_last_axis() -> None:
    # §3.11: (2, 7, 5) -> (2, 7, 3); params in*out + out
    inferred = infer("Linear", {"out_features": 3}, (7, 5))
    assert inferred.out_shape == (7, 3)
    assert inferred.param_count == 5 * 3 + 3


def test_vector_grouped_conv_weight_layout() -> None:
    # §2 / §6.7: weight (C_out, C_in/g, k...), params kh*kw*(C_in/g)*C_out + C_out
    inferred = infer("Conv2d", {"out_channels": 6, "kernel_size": 3, "groups": 2}, (4, 5, 5))
    assert inferred.params == {"weight": (6, 2, 3, 3), "bias": (6,)}
    assert inferred.param_count == 3 * 3 * 2 * 6 + 6


# ConvTranspose1d/2d/3d: strategy and torch reference modules (forward with output_size) in transposed_cases.py
from transposed_cases import TRANSPOSED_MODULES, TRANSPOSED_STRATEGIES  # noqa: E402

STRATEGIES.update(TRANSPOSED_STRATEGIES)
MAC_TYPES |= set(TRANSPOSED_STRATEGIES)
REFERENCE_MODULES.update(TRANSPOSED_MODULES)

# LPPool, MinPool, global pools, Upsample, PixelShuffle/Unshuffle, MaxUnpool: strategies, reference modules and
# conventions in resample_cases.py
from resample_cases import RESAMPLE_MODULES, RESAMPLE_STRATEGIES, resample_convention  # noqa: E402

STRATEGIES.update(RESAMPLE_STRATEGIES)
REFERENCE_MODULES.update(RESAMPLE_MODULES)

# Max/Min/Avg/LPPool with ONNX's arguments ([[before, after]] pads, AvgPool/LPPool dilation, LPPool abs): torch.nn's
# module where torch has the case, else a pool built from torch primitives (checked against onnxruntime there)
from pool_onnx_cases import POOL_ONNX_MODULES, POOL_ONNX_STRATEGIES  # noqa: E402

STRATEGIES.update(POOL_ONNX_STRATEGIES)
REFERENCE_MODULES.update(POOL_ONNX_MODULES)

# LayerNorm, LayerNorm2d (torchvision's, as its reference module), GroupNorm, InstanceNorm1d/2d/3d, LocalResponseNorm
from norm_cases import NORM_MODULES, NORM_STRATEGIES  # noqa: E402

STRATEGIES.update(NORM_STRATEGIES)
REFERENCE_MODULES.update(NORM_MODULES)

# Mish, Softplus, SELU, CELU, Hardtanh, Threshold, LogSoftmax, Softmin, GLU: strategies in activation_cases.py
from activation_cases import ACTIVATION_CONVENTIONS, ACTIVATION_STRATEGIES  # noqa: E402

STRATEGIES.update(ACTIVATION_STRATEGIES)
DEFAULT_CONVENTIONS |= ACTIVATION_CONVENTIONS

# LearnableTensor (x * T, x + T; torch's broadcasting) and StochasticDepth (torchvision's, transcribed) in learnable_cases.py
from learnable_cases import LEARNABLE_MODULES, LEARNABLE_STRATEGIES  # noqa: E402

STRATEGIES.update(LEARNABLE_STRATEGIES)
REFERENCE_MODULES.update(LEARNABLE_MODULES)

# Permute, Unflatten, Reshape/View, Narrow, Chunk, Split: strategies, references and conventions in layout_cases.py
from layout_cases import LAYOUT_DEFAULT_CONVENTIONS, LAYOUT_MODULES, LAYOUT_STRATEGIES, layout_convention  # noqa: E402

STRATEGIES.update(LAYOUT_STRATEGIES)
REFERENCE_MODULES.update(LAYOUT_MODULES)
DEFAULT_CONVENTIONS |= LAYOUT_DEFAULT_CONVENTIONS


def test_batch_statistics_of_one_value_per_channel_are_refused_as_torch_refuses_them_at_batch_1():
    for shape, type_name in (((8,), "BatchNorm1d"), ((8, 1), "BatchNorm1d"), ((4, 1, 1), "BatchNorm2d")):
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            getattr(torch.nn, type_name)(shape[0], track_running_stats=False).eval()(torch.zeros(1, *shape))
        with pytest.raises(LayerArgError, match="more than 1 value per channel"):
            lookup(type_name).from_args({"track_running_stats": False}).infer([shape])
        lookup(type_name).from_args({}).infer([shape])      # with running statistics: fine
