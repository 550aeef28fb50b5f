"""Upsample (torch.nn.Upsample / F.interpolate), UpsamplingNearest2d, UpsamplingBilinear2d, PixelShuffle and
PixelUnshuffle.

Upsample follows semantics §3.8 and ATen's CPU kernels (``UpSample.h``, ``UpSampleKernel.cpp``):

* output size: ``size`` as given, or ``floor(i * scale_factor)`` (a double product, truncated);
* coordinate scale ``c``: ``1/scale_factor`` when a scale_factor is given and ``recompute_scale_factor`` is not
  true, else ``i/o``; with ``align_corners`` (linear modes) ``(i-1)/(o-1)`` (0 when o = 1);
* 'nearest': ``src = min(floor(u * c), i-1)`` and 'nearest-exact': ``src = min(floor((u + 0.5) * c), i-1)``,
  both with ``c`` in float32 as ATen computes it (so the executor reads exactly torch's pixels). ATen's 2-D
  'nearest' kernel alone copies an axis with o = i and takes u // 2 where o = 2i, whatever the scale factor;
* linear modes: ``x = c*(u + 0.5) - 0.5`` clamped at 0 (align_corners=False) or ``x = c*u``; taps
  ``i0 = min(floor(x), i-1)``, ``i1 = i0 + (i0 < i-1)``, weight ``λ = clamp(x - i0, 0, 1)``. An axis whose
  output length equals its input length is copied (ATen's shortcut, whatever the scale factor). Bilinear and
  trilinear apply the 1-D rule per axis.

Receptive field, per axis (`ResampleAxis.reads`): exactly the input units each output unit reads, periodic with
the denominator of the exact coordinate scale ``c`` (nearest 1, linear 2 and 1 where the sample falls on a pixel);
the effective stride is multiplied by ``c`` (an upsampling by f divides it by f).

"Unpooling by copying" (each value repeated over a k×k block) is Upsample with mode 'nearest' and
scale_factor k; it needs no type of its own. MaxUnpool (unpool.py) puts each value at its pool's argmax instead.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from ..errors import LayerArgError
from ..kernels import MacCounter, scatter_add_axis
from ..algebra import Field, Reads, limits
from .args import MAX_SIZE, Arg, _as_int, as_number, boolean, choice, integer, number_string, optional
from .base import Inferred, Layer, Shape, shape_text
from .registry import register
from .resample_reads import RESIDUE, fitted_scale, resample_reads

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear")
LINEAR_RANK = {"linear": 1, "bilinear": 2, "trilinear": 3}    # spatial axes each linear mode needs


def size_arg(value: Any, dims: int, name: str) -> int | tuple[int, ...]:
    """``size``: an int (every spatial axis) or a list with one int per spatial axis (checked against the input)."""
    if isinstance(value, list):
        if not value:
            raise LayerArgError(f"{name} must be an integer or a list of integers, got an empty list", name)
        return tuple(_as_int(v, name) for v in value)
    return _as_int(value, name)


size_arg.json_schema = lambda dims: {"anyOf": [{"type": "integer"},
                                               {"type": "array", "items": {"type": "integer"}, "minItems": 1}]}


def _factor(value: Any, name: str) -> float:
    value = as_number(value, name, "a number or a list of numbers")
    if not math.isfinite(value):
        raise LayerArgError(f"{name} must be finite, got {value}", name)
    return float(value)


def scale_arg(value: Any, dims: int, name: str) -> float | tuple[float, ...]:
    """``scale_factor``: a number (every spatial axis) or one number per spatial axis."""
    if isinstance(value, list):
        if not value:
            raise LayerArgError(f"{name} must be a number or a list of numbers, got an empty list", name)
        return tuple(_factor(v, name) for v in value)
    return _factor(value, name)


_FACTOR_SCHEMA = {"anyOf": [{"type": "number"}, number_string()]}
scale_arg.json_schema = lambda dims: {"anyOf": [*_FACTOR_SCHEMA["anyOf"],
                                                {"type": "array", "items": _FACTOR_SCHEMA, "minItems": 1}]}


def exact(value: float) -> Fraction:
    """A scale factor as the decimal it was written as (2.1 -> 21/10), for exact receptive-field arithmetic."""
    return Fraction(repr(value))


class ResampleAxis:
    """How one spatial axis of length ``i`` is resampled to ``o``: ATen's index and weight rules."""

    def __init__(self, mode: str, i: int, o: int, factor: float | None, align_corners: bool, dims: int):
        self.mode, self.i, self.o, self.factor, self.align_corners = mode, i, o, factor, align_corners
        self.linear = mode in LINEAR_RANK
        # ATen's 2-D 'nearest' kernel (nearest_idx) copies when o == i and takes u >> 1 when o == 2i, whatever
        # the scale factor; the 1-D and 3-D kernels and 'nearest-exact' always use the scale
        self.shortcut = mode == "nearest" and dims == 2 and o in (i, 2 * i)

    # ---- ATen's numbers (executor)
    def nearest_indices(self) -> np.ndarray:
        """Source index of every output position (float32 scale, as nearest_neighbor_compute_source_index)."""
        if self.shortcut:
            return np.arange(self.o) * self.i // self.o
        if self.factor is not None:
            scale = np.float32(1.0 / self.factor)
        else:
            scale = np.float32(self.i) / np.float32(self.o)
        u = np.arange(self.o)
        if self.mode == "nearest":
            src = np.floor(u.astype(np.float32) * scale)
        else:   # nearest-exact: floorf of the double (u + 0.5) * scale
            src = np.floor(((u + 0.5) * np.float64(scale)).astype(np.float32))
        return np.minimum(src.astype(np.int64), self.i - 1)

    def linear_taps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(i0, i1, λ) per output position: out = (1-λ)·x[i0] + λ·x[i1] (compute_source_index_and_lambda)."""
        i, o = self.i, self.o
        u = np.arange(o)
        if o == i:                                   # ATen copies (any scale factor)
            return u, u, np.zeros(o)
        if self.align_corners:
            scale = (i - 1) / (o - 1) if o > 1 else 0.0
            src = scale * u
        else:
            scale = 1.0 / self.factor if self.factor is not None else i / o
            src = np.maximum(scale * (u + 0.5) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), i - 1)   # floorf, as guard_index_and_lambda
        i1 = i0 + (i0 < i - 1)
        lam = np.clip(src - i0, 0.0, 1.0)
        return i0, i1, lam

    def apply(self, x: np.ndarray, axis: int) -> np.ndarray:
        if self.linear:
            i0, i1, lam = self.linear_taps()
            shape = [1] * x.ndim
            shape[axis] = self.o
            lam = lam.reshape(shape).astype(x.dtype)
            return np.take(x, i0, axis=axis) * (1 - lam) + np.take(x, i1, axis=axis) * lam
        return np.take(x, self.nearest_indices(), axis=axis)

    def apply_backward(self, grad: np.ndarray, axis: int) -> np.ndarray:
        """The VJP of `apply` along ``axis``: each output's gradient added to the input pixels it read, weighted as
        it read them (ATen's upsample backward kernels use the same indices and λ as the forward ones)."""
        if self.linear:
            if self.o == self.i:
                return grad.copy()
            i0, i1, lam = self.linear_taps()
            shape = [1] * grad.ndim
            shape[axis] = self.o
            lam = lam.reshape(shape).astype(grad.dtype)
            return scatter_add_axis(grad * (1 - lam), i0, axis, self.i) + scatter_add_axis(grad * lam, i1, axis, self.i)
        if self.mode == "nearest" and self.o in (self.i, 2 * self.i):
            # ATen's nearest backward kernel (cpu_upsample_nearest_backward, every rank) indexes with nearest_idx,
            # whose shortcut (copy where o = i, u // 2 where o = 2i) only the 2-D FORWARD kernel shares: for 1-D and
            # 3-D with a scale factor torch's gradient then goes elsewhere than the value came from
            # (scale_factor 2.1 on 2 pixels: forward reads [0, 0, 0, 1], backward adds to [0, 0, 1, 1])
            return scatter_add_axis(grad, np.arange(self.o) * self.i // self.o, axis, self.i)
        return scatter_add_axis(grad, self.nearest_indices(), axis, self.i)

    # ---- receptive field (exact)
    def scale_and_fit(self) -> tuple[Fraction, str]:
        """The coordinate scale c of the receptive field, and where it comes from: "exact" (the sizes, or the
        scale factor's decimal), "fitted" (the simplest scale whose exact rule reads what every real unit reads,
        for a factor whose decimal has a period past `limits.MAX_SCALE_DENOMINATOR`), or "table" (no simple
        scale does: the real units' reads are a table, c only their average). See `resample_reads`."""
        if self.linear and self.align_corners:
            return (Fraction(self.i - 1, self.o - 1) if self.o > 1 else Fraction(0)), "exact"
        if self.shortcut or self.factor is None:
            return Fraction(self.i, self.o), "exact"
        decimal = 1 / exact(self.factor)
        if decimal.denominator <= limits.MAX_SCALE_DENOMINATOR:
            return decimal, "exact"
        fitted = fitted_scale(self, decimal)
        if fitted is not None:
            return fitted, "fitted"
        return decimal.limit_denominator(max(self.o, 1)), "table"

    def coordinate_scale(self) -> Fraction:
        return self.scale_and_fit()[0]

    def reads(self) -> Reads:
        """Which input units each output unit reads, on the unclipped axis (period q for a coordinate scale
        c = p/q): linear the two around x = c*(u + 1/2) - 1/2 (x = c*u with align_corners), one where x falls on
        a pixel, in exact fractions; nearest one: for the real units exactly the pixel ATen's kernels read, with
        their float32 scale (`nearest_indices`, as the executor), which can differ from floor(u*c) (or
        floor((u + 1/2)*c)) by one where a sample falls on a pixel boundary (x2.3 on 31: unit 69 reads 29, not
        30 = 69/2.3); past the output, on the extension, the exact rule. The period is then q*ceil(o/q), so the
        stride stays exactly c (or q where the exact rule gives every real unit's pixel and the table would be
        long). (ATen's 1-D float64 kernel computes in double and reads 30 there: convcalc follows the float32
        kernels, PyTorch's default dtype.) Built in runs: `resample_reads`."""
        return resample_reads(self)


class Upsample(Layer):
    type_name = "Upsample"
    summary = "nearest / linear resampling to a size or by a scale factor (torch.nn.Upsample, F.interpolate)"
    arguments = {
        "size": Arg(optional(size_arg), None, "output size: int or one per spatial axis"),
        "scale_factor": Arg(optional(scale_arg), None, "multiplier: number or one per spatial axis"),
        "mode": Arg(choice(*MODES), "nearest"),
        "align_corners": Arg(optional(boolean), None, "linear modes only (null means false)"),
        "recompute_scale_factor": Arg(optional(boolean), None, "true: sample with i/o instead of 1/scale_factor"),
    }

    def validate(self) -> None:
        if not self.scale_factor and not isinstance(self.scale_factor, tuple):
            self.scale_factor = None       # torch.nn.Upsample turns a zero scale_factor into None
        if self.size is not None and self.scale_factor is not None:
            raise LayerArgError("give either size or scale_factor, not both", "scale_factor")
        if self.size is None and self.scale_factor is None:
            raise LayerArgError("Upsample needs size or scale_factor", None)
        if self.recompute_scale_factor and self.size is not None:
            raise LayerArgError("recompute_scale_factor is not meaningful with an explicit size", "recompute_scale_factor")
        if self.mode not in LINEAR_RANK and self.align_corners is not None:
            raise LayerArgError(f"align_corners can only be set with the linear modes (linear, bilinear, trilinear),"
                                f" not with mode '{self.mode}'", "align_corners")

    def axis_values(self, value: Any, dims: int, name: str) -> tuple:
        if not isinstance(value, tuple):
            return (value,) * dims
        if len(value) != dims:
            raise LayerArgError(f"{name} has {len(value)} values but the input has {dims} spatial"
                                f" ax{'es' if dims != 1 else 'is'}", name)
        return value

    def axes(self, in_shape: Shape) -> list[ResampleAxis]:
        """The per-axis plans for ``in_shape``, checking ranks and sizes as torch does."""
        dims = len(in_shape) - 1
        if not 1 <= dims <= 3:
            raise LayerArgError(f"{self.type_name} expects a [C, L], [C, H, W] or [C, D, H, W] input, got"
                                f" {shape_text(in_shape)}", None)
        wanted = LINEAR_RANK.get(self.mode)
        if wanted is not None and wanted != dims:
            layout = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}[wanted]
            raise LayerArgError(f"mode '{self.mode}' needs a {layout} input, got {shape_text(in_shape)}",
                                "mode" if "mode" in self.arguments else None)
        spatial = in_shape[1:]
        if self.size is not None:
            sizes = self.axis_values(self.size, dims, "size")
            factors: tuple = (None,) * dims
        else:
            factors = self.axis_values(self.scale_factor, dims, "scale_factor")
            sizes = tuple(math.trunc(i * f) if abs(i * f) <= MAX_SIZE else None for i, f in zip(spatial, factors))
        for i, o, f in zip(spatial, sizes, factors):
            if o is None or o > MAX_SIZE:
                raise LayerArgError(f"the output size would be larger than {MAX_SIZE:,}",
                                    "size" if self.size is not None else "scale_factor")
            if o < 1 and self.size is not None:
                raise LayerArgError(f"size must be at least 1, got {o}", "size")
            if o < 1:
                raise LayerArgError(f"scale_factor {f!r} on an input of {i} gives an output of floor({i} x {f!r})"
                                    f" = {o}; it must be at least 1", "scale_factor")
        if self.recompute_scale_factor:
            factors = (None,) * dims                          # ATen then samples with i/o
        align = bool(self.align_corners)
        return [ResampleAxis(self.mode, i, o, f, align, dims) for i, o, f in zip(spatial, sizes, factors)]

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        return Inferred((in_shape[0], *(axis.o for axis in self.axes(in_shape))))

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        field = fields[0]
        if field.whole or len(field.axes) != len(in_shapes[0]) - 1:
            return field
        plans = self.axes(in_shapes[0])
        return field.through([plan.reads() for plan in plans], out_shape[1:])

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        """ATen copies an axis whose output length equals its input length (nearest and linear alike)."""
        if tuple(out_shape) == tuple(in_shapes[0]):
            return f"the output size equals the input's {shape_text(in_shapes[0][1:])}: it copies its input"
        return None

    def prepare(self, params, in_shapes: Sequence[Shape], out_shape: Shape, dtype: np.dtype) -> list[ResampleAxis]:
        return self.axes(in_shapes[0])

    def forward(self, inputs: Sequence[np.ndarray], plans: list[ResampleAxis], counter: MacCounter) -> np.ndarray:
        x = inputs[0]                                         # (N, *S, C)
        if plans is None:
            plans = self.axes((x.shape[-1], *x.shape[1:-1]))
        for axis, plan in enumerate(plans, start=1):
            x = plan.apply(x, axis)
        return x

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 plans: list[ResampleAxis]) -> list[np.ndarray]:
        x = inputs[0]
        if plans is None:
            plans = self.axes((x.shape[-1], *x.shape[1:-1]))
        for axis, plan in reversed(list(enumerate(plans, start=1))):
            grad = plan.apply_backward(grad, axis)
        return [grad]

    channelwise_support = True

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         plans: list[ResampleAxis] | None) -> list[np.ndarray]:
        """The reverse of the forward's reads: nearest modes send each mark to the pixel the forward copied
        (`nearest_indices`: torch's backward scatters elsewhere for 1-D/3-D scale factors with o = 2i), linear
        ones to the taps with a non-zero weight."""
        x = inputs[0]
        if plans is None:
            plans = self.axes((x.shape[-1], *x.shape[1:-1]))
        for axis, plan in reversed(list(enumerate(plans, start=1))):
            if plan.linear:
                mask = plan.apply_backward(mask, axis)
            else:
                mask = scatter_add_axis(mask, plan.nearest_indices(), axis, plan.i)
            # a linear tap whose weight is 0 in exact arithmetic can get a rounding residue (62 -> 30: x = 46 exactly
            # is 46.00000000000001 in float64, a 7e-15 weight on pixel 47): not a dependency (a real weight is at
            # least 1/(2*o))
            mask = (mask > RESIDUE).astype(x.dtype)
        return [mask.copy() if mask is inputs[0] else mask]


register(Upsample)


@register
class UpsamplingNearest2d(Upsample):
    type_name = "UpsamplingNearest2d"
    summary = "Upsample with mode 'nearest' (torch.nn.UpsamplingNearest2d; any rank, as torch)"
    arguments = {name: Upsample.arguments[name] for name in ("size", "scale_factor")}

    def __init__(self, **args: Any):
        super().__init__(**args, mode="nearest", align_corners=None, recompute_scale_factor=None)


@register
class UpsamplingBilinear2d(Upsample):
    type_name = "UpsamplingBilinear2d"
    summary = "Upsample with mode 'bilinear' and align_corners=True (torch.nn.UpsamplingBilinear2d)"
    arguments = {name: Upsample.arguments[name] for name in ("size", "scale_factor")}

    def __init__(self, **args: Any):
        super().__init__(**args, mode="bilinear", align_corners=True, recompute_scale_factor=None)


# --------------------------------------------------------------------------- PixelShuffle / PixelUnshuffle

class PixelShuffleBase(Layer):
    """Rearrangements between channels and space (semantics §3.9) on a [C, H, W] input."""

    def factor(self) -> int:
        raise NotImplementedError

    def check(self, in_shape: Shape) -> tuple[int, int, int]:
        if len(in_shape) != 3:
            raise LayerArgError(f"{self.type_name} expects a [C, H, W] input, got {shape_text(in_shape)}", None)
        return in_shape


@register
class PixelShuffle(PixelShuffleBase):
    type_name = "PixelShuffle"
    summary = "[C·r², H, W] -> [C, H·r, W·r]: out[c, h·r+a, w·r+b] = in[c·r²+a·r+b, h, w] (torch.nn.PixelShuffle)"
    arguments = {"upscale_factor": Arg(integer(1), doc="r")}

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        channels, height, width = self.check(in_shapes[0])
        r = self.upscale_factor
        if channels % (r * r):
            raise LayerArgError(f"the input's {channels} channels are not divisible by upscale_factor² = {r * r}",
                                "upscale_factor")
        return Inferred((channels // (r * r), height * r, width * r))

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Unit h reads input row h // r: a nearest upsampling by r (period r, stride 1/r)."""
        return fields[0].through([Reads.repeat(self.upscale_factor)] * 2, out_shape[1:])

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        batch, height, width, channels = x.shape
        r = self.upscale_factor
        c = channels // (r * r)
        x = x.reshape(batch, height, width, c, r, r)             # channel c·r² + a·r + b -> (c, a, b)
        x = x.transpose(0, 1, 4, 2, 5, 3)                         # (N, H, a, W, b, C)
        return x.reshape(batch, height * r, width * r, c)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """The inverse permutation (a PixelUnshuffle of grad)."""
        batch, height, width, channels = inputs[0].shape
        r = self.upscale_factor
        grad = grad.reshape(batch, height, r, width, r, channels // (r * r))   # (N, H, a, W, b, C)
        grad = grad.transpose(0, 1, 3, 5, 2, 4)                                # (N, H, W, C, a, b)
        return [np.ascontiguousarray(grad).reshape(batch, height, width, channels)]


@register
class PixelUnshuffle(PixelShuffleBase):
    type_name = "PixelUnshuffle"
    summary = "[C, H·r, W·r] -> [C·r², H, W], the inverse of PixelShuffle (torch.nn.PixelUnshuffle)"
    arguments = {"downscale_factor": Arg(integer(1), doc="r")}

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        channels, height, width = self.check(in_shapes[0])
        r = self.downscale_factor
        for name, size in (("height", height), ("width", width)):
            if size % r:
                raise LayerArgError(f"the input's {name} {size} is not divisible by downscale_factor {r}",
                                    "downscale_factor")
        return Inferred((channels * r * r, height // r, width // r))

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Unit h gathers rows h·r .. h·r + r - 1 (over its channels): an r-window with stride r."""
        r = self.downscale_factor
        return fields[0].through_window([r, r], [r, r], [0, 0], out_shape[1:])

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        batch, height, width, channels = x.shape
        r = self.downscale_factor
        x = x.reshape(batch, height // r, r, width // r, r, channels)   # (N, H, a, W, b, C)
        x = x.transpose(0, 1, 3, 5, 2, 4)                                 # (N, H, W, C, a, b)
        return x.reshape(batch, height // r, width // r, channels * r * r)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """The inverse permutation (a PixelShuffle of grad)."""
        batch, height, width, channels = inputs[0].shape
        r = self.downscale_factor
        grad = grad.reshape(batch, height // r, width // r, channels, r, r)    # (N, H, W, C, a, b)
        grad = grad.transpose(0, 1, 4, 2, 5, 3)                                # (N, H, a, W, b, C)
        return [np.ascontiguousarray(grad).reshape(batch, height, width, channels)]
