"""Upsample (torch.nn.Upsample / F.interpolate), UpsamplingNearest2d, UpsamplingBilinear2d, PixelShuffle and
PixelUnshuffle.

Upsample follows semantics §3.8 and ATen's CPU kernels; the per-axis index and weight rules of every mode
(nearest, nearest-exact, linear/bilinear/trilinear, bicubic, area) and what each output unit reads are
`ResampleAxis`'s (``resample_axis.py``, ``resample_reads.py``). Output size: ``size`` as given, or
``floor(i * scale_factor)`` (a double product, truncated). Bilinear, trilinear, bicubic and area apply a 1-D rule
per axis (torch's 2-D bicubic kernel sums the 16 products at once: the same numbers up to rounding).

Receptive field, per axis (`ResampleAxis.reads`): exactly the input units each output unit reads, periodic with
the denominator of the exact coordinate scale ``c`` (nearest 1, linear 2 and 1 where the sample falls on a pixel,
bicubic 4 and 1, area its adaptive bin); the effective stride is multiplied by ``c`` (an upsampling by f divides it
by f).

"Unpooling by copying" (each value repeated over a k×k block) is Upsample with mode 'nearest' and
scale_factor k; it needs no type of its own. MaxUnpool (unpool.py) puts each value at its pool's argmax instead.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter, scatter_add_axis
from ..algebra import Field, Reads
from .args import MAX_SIZE, Arg, _as_int, as_number, boolean, choice, integer, number_string, optional
from .base import Inferred, Layer, Shape, shape_text
from .channels import SAME, ChannelReads
from .registry import register
from .factors import Factors
from .resample_axis import ALIGNABLE, MODE_RANK, MODES, ResampleAxis
from .resample_reads import RESIDUE


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


class Upsample(Layer):
    type_name = "Upsample"
    summary = ("nearest / linear / bicubic / area resampling to a size or by a scale factor (torch.nn.Upsample,"
               " F.interpolate)")
    arguments = {
        "size": Arg(optional(size_arg), None, "output size: int or one per spatial axis"),
        "scale_factor": Arg(optional(scale_arg), None, "multiplier: number or one per spatial axis"),
        "mode": Arg(choice(*MODES), "nearest", "bicubic: [C, H, W] only; area: adaptive average pooling"),
        "align_corners": Arg(optional(boolean), None, "linear modes and bicubic only (null means false)"),
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
        if self.mode not in ALIGNABLE and self.align_corners is not None:
            raise LayerArgError(f"align_corners can only be set with the linear modes (linear, bilinear, trilinear)"
                                f" and bicubic, not with mode '{self.mode}'", "align_corners")

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
        wanted = MODE_RANK.get(self.mode)
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
        if self.recompute_scale_factor or self.mode == "area":
            factors = (None,) * dims                          # ATen then samples with i/o (area: F.interpolate forces it)
        align = bool(self.align_corners)
        return [ResampleAxis(self.mode, i, o, f, align, dims) for i, o, f in zip(spatial, sizes, factors)]

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        return Inferred((in_shape[0], *(axis.o for axis in self.axes(in_shape))))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel resampled on its own."""
        return SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        field = fields[0]
        if field.whole or len(field.axes) != len(in_shapes[0]) - 1:
            return field
        plans = self.axes(in_shapes[0])
        return field.through([plan.reads() for plan in plans], out_shape[1:])

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        """ATen copies an axis whose output length equals its input length (nearest and linear alike; area's bins
        are then single pixels); bicubic only where it samples with a coordinate scale of 1 too."""
        if tuple(out_shape) == tuple(in_shapes[0]) and all(plan.copies() for plan in self.axes(in_shapes[0])):
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
        if self.mode == "bicubic" and all(plan.o == plan.i for plan in plans):
            # upsample_bicubic2d_backward copies the gradient when no axis changes length, although the forward
            # resamples with a scale factor other than 1 (x1.3 on [1, 3]): torch's autograd, followed as it is
            return [grad.copy()]
        for axis, plan in reversed(list(enumerate(plans, start=1))):
            grad = plan.apply_backward(grad, axis)
        return [grad]

    channelwise_support = True

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Per channel; per spatial axis the taps `support_backward` reaches from each output position alone (its
        own per-axis rule, run on the one-hot rows of that axis)."""
        relations = []
        for plan in self.axes(tuple(in_shapes[0])):
            rows = np.eye(plan.o, dtype=np.float32)[:, :, None]                   # (o, o, 1): position q marked
            if plan.linear or plan.cubic or plan.area:
                found = plan.apply_backward(rows, 1, magnitude=True)
            else:
                found = scatter_add_axis(rows, plan.nearest_indices(), 1, plan.i)
            relations.append(np.asarray(found)[:, :, 0] > RESIDUE)
        return [Factors((None, *relations))]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         plans: list[ResampleAxis] | None) -> list[np.ndarray]:
        """The reverse of the forward's reads: nearest modes send each mark to the pixel the forward copied
        (`nearest_indices`: torch's backward scatters elsewhere for 1-D/3-D scale factors with o = 2i), the others
        to the taps with a non-zero weight (bicubic by their magnitudes: its outer weights are negative, and it
        reads its four taps even where torch's backward copies)."""
        x = inputs[0]
        if plans is None:
            plans = self.axes((x.shape[-1], *x.shape[1:-1]))
        for axis, plan in reversed(list(enumerate(plans, start=1))):
            if plan.linear or plan.cubic or plan.area:
                mask = plan.apply_backward(mask, axis, magnitude=True)
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
