"""Cross-check strategies, torch reference modules and conventions for LPPool, MinPool, the global pools,
Upsample (every mode, and UpsamplingNearest2d/UpsamplingBilinear2d), PixelShuffle/PixelUnshuffle and MaxUnpool.
Imported by `test_torch_crosscheck` (which adds them to its STRATEGIES and REFERENCE_MODULES) and so by
`test_executor_torch` too; not a test module itself.

torch.nn has no MinPool and no global pools: their reference modules are written here from the definitions
(-max_pool(-x); a mean / max over every spatial axis). Their constructors take convcalc's argument names, so
the argument/default check of the cross-check applies to them too.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from test_torch_crosscheck import Case, Strategy, per_axis, pool_cases, rarely, spatial  # noqa: E402

from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.layers import lookup  # noqa: E402


# ============================================================================ LPPool

NORM_TYPES = [1, 2, 3, 1.5, 0.5, -1, math.inf, -math.inf]


@st.composite
def lppool_cases(draw, cls) -> Case:
    dims = cls.dims
    args: dict[str, Any] = {"norm_type": draw(rarely(st.sampled_from(NORM_TYPES), st.just(0), 0.05))}
    kernel = rarely(st.integers(1, 4), st.just(0), 0.02)
    if dims == 1:   # torch multiplies by kernel_size: a list fails there
        args["kernel_size"] = draw(rarely(kernel, st.lists(st.integers(1, 3), min_size=1, max_size=2), 0.05))
    else:
        args["kernel_size"] = draw(per_axis(dims, kernel))
    if draw(st.booleans()):
        args["stride"] = draw(st.one_of(st.none(), per_axis(dims, rarely(st.integers(1, 3), st.just(0), 0.02))))
    if draw(st.booleans()):
        args["ceil_mode"] = draw(st.booleans())
    channels = draw(st.integers(1, 3))
    shape = (channels, *draw(spatial(dims)))
    if draw(rarely(st.just(False), st.just(True), 0.05)):
        shape = (channels, 2, *shape[1:])
    return Case(args, [shape])


# ============================================================================ MinPool

def _min_pool(dims: int) -> type[nn.Module]:
    class MinPool(getattr(nn, f"MaxPool{dims}d")):  # type: ignore[misc]
        """-max_pool(-x): torch.nn.MaxPoolNd's constructor (convcalc has no return_indices here)."""

        def forward(self, input):  # noqa: A002
            return -super().forward(-input)

    MinPool.__name__ = MinPool.__qualname__ = f"MinPool{dims}d"
    return MinPool


# ============================================================================ global pools

class _GlobalPool(nn.Module):
    reduce = staticmethod(torch.mean)

    def __init__(self, keepdim: bool = True):
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x):
        if x.dim() < 3:
            raise ValueError("a global pool needs at least one spatial axis")
        axes = tuple(range(2, x.dim()))
        return self.reduce(x, dim=axes, keepdim=self.keepdim)


class GlobalAvgPool(_GlobalPool):
    reduce = staticmethod(torch.mean)


class GlobalMaxPool(_GlobalPool):
    reduce = staticmethod(torch.amax)


@st.composite
def global_cases(draw, cls) -> Case:
    rank = draw(rarely(st.integers(2, 5), st.just(1), 0.1))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    args = {"keepdim": draw(st.booleans())} if draw(st.booleans()) else {}
    return Case(args, [shape])


# ============================================================================ Upsample

FACTORS = [0.25, 0.3, 0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.1, 2.5, 3.0, 4.0, 2, 3]
UPSAMPLE_MODES = ["nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic", "area"]
ALIGNABLE_RANK = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}    # the modes taking align_corners


@st.composite
def upsample_cases(draw, cls) -> Case:
    """Sizes and scale factors (ints or per-axis lists, occasionally of the wrong length, zero or negative),
    both or neither of them, every mode on every rank (linear modes and bicubic refuse the others), align_corners
    with the nearest modes and area, recompute_scale_factor with a size."""
    dims = draw(rarely(st.integers(1, 3), st.sampled_from([0, 4]), 0.05))
    args: dict[str, Any] = {}
    if cls.type_name == "UpsamplingBilinear2d":
        dims = draw(rarely(st.just(2), st.sampled_from([1, 3]), 0.1))
    if "mode" in cls.arguments:
        mode = draw(rarely(st.sampled_from(UPSAMPLE_MODES), st.just("cubic"), 0.03))
        if mode != "nearest" or draw(st.booleans()):
            args["mode"] = mode
        if mode in ALIGNABLE_RANK and draw(rarely(st.just(True), st.just(False), 0.3)):
            dims = ALIGNABLE_RANK[mode]                                 # mostly the rank the mode needs
        if draw(rarely(st.just(False), st.just(True), 0.6 if mode in ALIGNABLE_RANK else 0.3)):
            args["align_corners"] = draw(st.sampled_from([True, False, None]))
    which = draw(rarely(st.sampled_from(["size", "scale_factor"]), st.sampled_from(["both", "neither"]), 0.05))
    length = max(dims, 1)
    if which in ("size", "both"):
        size = rarely(st.integers(1, 10), st.integers(-1, 0), 0.03)
        args["size"] = draw(per_axis(length, size))
    if which in ("scale_factor", "both"):
        factor = rarely(st.sampled_from(FACTORS), st.sampled_from([0.0, -1.0, 0.1]), 0.04)
        args["scale_factor"] = draw(per_axis(length, factor))
    if "recompute_scale_factor" in cls.arguments and draw(st.integers(0, 3)) == 0:
        args["recompute_scale_factor"] = draw(st.sampled_from([True, False, None]))
    shape = (draw(st.integers(1, 3)), *draw(st.lists(st.integers(1, 6), min_size=dims, max_size=dims)))
    return Case(args, [shape])


# ============================================================================ PixelShuffle / PixelUnshuffle

@st.composite
def pixel_shuffle_cases(draw, cls) -> Case:
    """Channels / sizes that the factor divides (mostly) or not, factors 0 and negative, other ranks."""
    name = "upscale_factor" if cls.type_name == "PixelShuffle" else "downscale_factor"
    r = draw(rarely(st.integers(1, 3), st.integers(-1, 0), 0.05))
    rank = draw(rarely(st.just(3), st.sampled_from([2, 4]), 0.1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    if draw(rarely(st.just(True), st.just(False), 0.2)) and r > 0:
        if cls.type_name == "PixelShuffle":
            sizes[0] *= r * r
        else:
            sizes[-2:] = [v * r for v in sizes[-2:]]
    return Case({name: r}, [tuple(sizes)])


# ============================================================================ MaxUnpool

def _axis_tuple(value: Any, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * dims


def _max_pool(dims: int, args: dict[str, Any]) -> nn.Module:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    return getattr(nn, f"MaxPool{dims}d")(**kwargs, return_indices=True)


def _max_unpool(dims: int) -> type[nn.Module]:
    class MaxUnpool(nn.Module):
        """torch.nn.MaxUnpoolNd fed by the indices of the MaxPool that ``pool`` describes (type, arguments), on
        the pool's input (the second input). kernel_size/stride/padding default to the pool's when kernel_size
        is not given (convcalc's convention); an int output_size means every axis (torch wants a sequence).

        The forward first unpools the indices of an increasing input (each window's maximum on its last
        in-bounds tap: the largest indices the pool can produce), so that it fails wherever some data makes
        torch fail ("Found an invalid max index"), then unpools the indices of the real input."""

        def __init__(self, pool, kernel_size=None, stride=None, padding=None, output_size=None):
            super().__init__()
            pool_type, pool_args = pool
            self.pool = _max_pool(dims, pool_args)
            if kernel_size is None:
                kernel_size = self.pool.kernel_size
                stride = self.pool.stride if stride is None else stride
                padding = self.pool.padding if padding is None else padding
            self.unpool = getattr(nn, f"MaxUnpool{dims}d")(
                _torch(kernel_size), _torch(stride), 0 if padding is None else _torch(padding))
            self.output_size = _axis_tuple(output_size, dims) if output_size is not None else None

        def forward(self, x, pool_input):
            ramp = torch.arange(pool_input[0, 0].numel(), dtype=pool_input.dtype).view(pool_input.shape[2:])
            _, worst = self.pool(ramp.expand_as(pool_input).contiguous())
            self.unpool(x, worst, self.output_size)
            _, indices = self.pool(pool_input)
            return self.unpool(x, indices, self.output_size)

    MaxUnpool.__name__ = MaxUnpool.__qualname__ = f"MaxUnpool{dims}d"
    return MaxUnpool


def _torch(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@st.composite
def unpool_cases(draw, cls) -> Case:
    """A MaxPool (kernel, stride, padding, dilation, ceil_mode) on a small input and its MaxUnpool: defaults,
    output sizes at and past both ends of torch's range, sizes that drop the pool's last row (invalid indices
    or positions moved to other places), own kernel_size/stride/padding, inputs of another shape."""
    dims = cls.dims
    kernel = [draw(st.integers(1, 3)) for _ in range(dims)]
    pool_args: dict[str, Any] = {"kernel_size": kernel if dims > 1 or draw(st.booleans()) else kernel[0]}
    if draw(st.booleans()):
        pool_args["stride"] = [draw(st.integers(1, 3)) for _ in range(dims)]
    if draw(st.booleans()):
        pool_args["padding"] = [draw(st.integers(0, k // 2)) for k in kernel]
    if draw(st.integers(0, 3)) == 0:
        pool_args["dilation"] = [draw(st.integers(1, 2)) for _ in range(dims)]
    if draw(st.booleans()):
        pool_args["ceil_mode"] = draw(st.booleans())
    channels = draw(st.integers(1, 2))
    spatial = [max(k, 1) * draw(st.integers(1, 2)) + draw(st.integers(0, {1: 4, 2: 3, 3: 2}[dims]))
               for k in kernel]                                 # mostly large enough for the pool
    pool_input = (channels, *spatial)
    try:
        pooled = tuple(lookup(f"MaxPool{dims}d").from_args(pool_args).infer([pool_input]).out_shape)
    except LayerArgError:
        pooled = pool_input
    x_shape = pooled
    if draw(rarely(st.just(False), st.just(True), 0.05)):
        axis = draw(st.integers(0, dims))
        x_shape = tuple(v + 1 if a == axis else v for a, v in enumerate(pooled))
    args: dict[str, Any] = {"pool": "pool"}
    if draw(st.integers(0, 4)) == 0:
        args["kernel_size"] = draw(per_axis(dims, st.integers(1, 3)))
        if draw(st.booleans()):
            args["stride"] = draw(per_axis(dims, st.integers(1, 3)))
        if draw(st.booleans()):
            args["padding"] = draw(per_axis(dims, st.integers(0, 2)))
    which = draw(st.sampled_from(["none", "none", "input", "input", "near", "int"]))
    if which == "input":
        args["output_size"] = list(spatial)
    elif which == "near":
        args["output_size"] = [max(v + draw(st.integers(-2, 2)), 0) for v in spatial]
    elif which == "int":
        args["output_size"] = draw(st.integers(1, 9))
    return Case(args, [x_shape, pool_input], references={"pool": (f"MaxPool{dims}d", pool_args)})


def unpool_moves_positions(type_name: str, case: Case) -> bool:
    """Whether torch's unpool would put some pooled value at another position than the one it came from: for
    every sign pattern (increasing or decreasing along each axis), the pool's indices unravelled in the input
    plane and in the output plane must agree (the patterns reach the corners of the reachable box)."""
    dims = lookup(type_name).dims
    pool_type, pool_args = case.references["pool"]
    module = _max_unpool(dims)(case.references["pool"], **{k: v for k, v in case.args.items() if k != "pool"})
    spatial = case.in_shapes[1][1:]
    x = torch.zeros(1, *case.in_shapes[0])
    sizes = module.unpool(x, torch.zeros(x.shape, dtype=torch.long), module.output_size).shape[2:]
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in spatial], indexing="ij")
    for signs in itertools.product((1, -1), repeat=dims):
        ramp = sum(sign * grid * 100.0 ** (dims - 1 - axis) for axis, (sign, grid) in enumerate(zip(signs, grids)))
        values, indices = module.pool(ramp.view(1, 1, *spatial))
        for index in indices[torch.isfinite(values)].tolist():
            if _unravel(index, spatial) != _unravel(index, sizes):
                return True
    return False


def _unravel(index: int, shape) -> tuple[int, ...]:
    coords = []
    for size in reversed(list(shape)):
        coords.append(index % size)
        index //= size
    return tuple(reversed(coords)) if index == 0 else ()


# ============================================================================ the registry of this file

RESAMPLE_STRATEGIES: dict[str, Strategy] = {
    **{f"LPPool{d}d": Strategy(lppool_cases, 150) for d in (1, 2, 3)},
    **{f"MinPool{d}d": Strategy(pool_cases, 100) for d in (1, 2, 3)},
    "GlobalAvgPool": Strategy(global_cases, 40),
    "GlobalMaxPool": Strategy(global_cases, 40),
    "Upsample": Strategy(upsample_cases, 250),
    "UpsamplingNearest2d": Strategy(upsample_cases, 60),
    "UpsamplingBilinear2d": Strategy(upsample_cases, 60),
    "PixelShuffle": Strategy(pixel_shuffle_cases, 80),
    "PixelUnshuffle": Strategy(pixel_shuffle_cases, 80),
    **{f"MaxUnpool{d}d": Strategy(unpool_cases, 120) for d in (1, 2, 3)},
}

# type name -> reference module class (constructor takes convcalc's argument names)
RESAMPLE_MODULES: dict[str, type[nn.Module]] = {
    **{f"MinPool{d}d": _min_pool(d) for d in (1, 2, 3)},
    "GlobalAvgPool": GlobalAvgPool,
    "GlobalMaxPool": GlobalMaxPool,
    **{f"MaxUnpool{d}d": _max_unpool(d) for d in (1, 2, 3)},
}

# executor cases per type (test_executor_torch's EXAMPLES): the index rules have many edges
EXECUTOR_EXAMPLES: dict[str, int] = {"Upsample": 160, **{f"MaxUnpool{d}d": 60 for d in (1, 2, 3)}}

# types whose executor test draws positive inputs (x ** p of a negative x is NaN for a fractional p, and
# float32 cancellation in sums of odd powers flips signs; NaN handling is pinned in test_resample.py)
POSITIVE_INPUTS = {f"LPPool{d}d" for d in (1, 2, 3)}


def resample_convention(type_name: str, case: Case, theirs) -> str | None:
    """Why convcalc must refuse although torch ran, for the types of this file (else None)."""
    if type_name in ("PixelShuffle", "PixelUnshuffle") and len(case.in_shapes[0]) != 3:
        # torch takes any (*, C, H, W): the leading axes of a [C, L] or [A, C, H, W] input become batch axes;
        # convcalc's axis 0 is always the channels, so it wants [C, H, W]
        return "PixelShuffle/PixelUnshuffle take a [C, H, W] input"
    if type_name.startswith("MaxUnpool") and theirs.error is None and unpool_moves_positions(type_name, case):
        return "torch scatters the pooled values to other positions than they came from"
    return None
