"""Pools built from the primitive pools: LPPool (power-average), MinPool, and global average/max pooling.

* LPPool{1,2,3}d is PyTorch's ``(sign(a) * relu(|a|) * prod(k)) ** (1/p)`` with ``a = avg_pool(x ** p)``
  (padding 0, count_include_pad): with ``ceil_mode`` a partial last window is averaged over its in-bounds
  cells and then multiplied by the FULL window size (semantics §3.7). p = ±inf is max_pool(|x|) and
  -max_pool(-|x|), with max_pool's shape rules (no AvgPool3d input-size check).
  convcalc adds ONNX LpPool's arguments: ``abs: true`` pools |x|^p (ONNX's, where torch's x^p is NaN for a
  negative x and a fractional p, and negative for an odd p); ``padding`` (an int, per-axis list or
  [[before, after], ...], each pad below kernel_size; zeros, counted in the window: a full window is the exact
  p-norm of its input cells); ``dilation``. A partial ceil_mode window keeps torch's scaling (ONNX's reference
  evaluator does the same; onnxruntime returns the plain norm of the window's cells).
* MinPool{1,2,3}d has no torch module: it is ``-max_pool(-x)`` (padding counts as +inf).
* GlobalAvgPool / GlobalMaxPool: one value per channel for any number of spatial axes, equal to the adaptive
  pools with output size 1; ``keepdim: false`` drops the spatial axes ([C]).

None of them has parameters or multiply-accumulates.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter
from ..algebra import Field
from ..algebra.shapes import prod
from .args import Arg, _short, boolean, optional, per_axis, real
from .base import LAYOUTS, Inferred, Layer, Shape, WindowAxis, shape_text
from .channels import SAME, ChannelReads
from .factors import EVERY, Factors
from .registry import lookup, register
from .conv import is_explicit
from .pool import MaxPoolNd, pool_padding_arg


# --------------------------------------------------------------------------- LPPool

def torch_sign(x: np.ndarray) -> np.ndarray:
    """torch.sign / torch.sgn of a real array: -1, 0 or 1, and 0 for NaN (NumPy's sign gives NaN)."""
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


class _Listed(tuple):
    """A per-axis value that was written as a list (LPPool1d refuses one with a finite norm_type)."""


def lp_kernel_1d(value: Any, dims: int, name: str) -> tuple[int]:
    """LPPool1d's kernel_size: an integer, or a list of one when norm_type is ±inf (checked in validate):
    with a finite p torch multiplies the average by kernel_size, which fails for a list."""
    parsed = per_axis(1)(value, dims, name)
    return _Listed(parsed) if isinstance(value, list) else parsed


lp_kernel_1d.json_schema = per_axis(1).json_schema


def lp_padding_arg(value: Any, dims: int, name: str) -> tuple[int, ...] | tuple[tuple[int, int], ...]:
    """LPPool's ``padding`` (ONNX LpPool's pads): the pools' int, per-axis list or [[before, after], ...]; no
    'tf_same'."""
    if isinstance(value, str):
        raise LayerArgError(f"{name} of an LPPool must be an integer, a list of {dims} integers or a list of {dims}"
                            f" [before, after] pairs, got the string '{_short(value)}'", name)
    return pool_padding_arg(value, dims, name)


lp_padding_arg.json_schema = lambda dims: {
    "anyOf": [form for form in pool_padding_arg.json_schema(dims)["anyOf"] if "enum" not in form]}


class LPPoolNd(Layer):
    summary = "power-average pooling (Σ x^p)^(1/p) (torch.nn.LPPoolNd; ONNX LpPool's |x|^p, pads, dilation)"
    arguments = {
        "norm_type": Arg(real(), doc="p; inf gives max(|x|), -inf min(|x|)"),
        "kernel_size": Arg(per_axis(1)),
        "stride": Arg(optional(per_axis(1)), None, "defaults to kernel_size"),
        "ceil_mode": Arg(boolean, False, "a partial last window is scaled up to the full window size (PyTorch)"),
        "padding": Arg(lp_padding_arg, 0, "convcalc's (ONNX LpPool's pads): int, per-axis list or"
                       " [[before, after], ...], each pad below kernel_size (ONNX's limit, also for an int);"
                       " zeros counted in the window"),
        "dilation": Arg(per_axis(1), 1, "convcalc's (ONNX LpPool's dilations)"),
        "abs": Arg(boolean, False, "convcalc's: pool |x|^p (ONNX LpPool) instead of torch's x^p"),
    }

    def validate(self) -> None:
        if self.norm_type == 0:
            raise LayerArgError("norm_type must not be 0 (the result is raised to the power 1/norm_type)",
                                "norm_type")
        if isinstance(self.kernel_size, _Listed) and not math.isinf(self.norm_type):
            raise LayerArgError("kernel_size of LPPool1d must be an integer with a finite norm_type, got a list"
                                " (PyTorch multiplies the average by kernel_size, which a list cannot do)",
                                "kernel_size")
        if self.stride is None:
            self.stride = self.kernel_size
        # the primitive pool that does the work: max_pool for p = ±inf, else avg_pool (pads counted). Torch's own
        # case (no padding, dilation 1, x^p) keeps torch's rules; any other goes with [before, after] pads, so that
        # ONNX's rules apply (pads below kernel_size, no AvgPool3d input-size check)
        pads = self.padding if is_explicit(self.padding) else tuple((p, p) for p in self.padding)
        common = {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "ceil_mode": self.ceil_mode,
                  "dilation": list(self.dilation)}
        torchs = not is_explicit(self.padding) and not any(self.padding) and set(self.dilation) == {1} and not self.abs
        if not torchs:
            common["padding"] = [list(pair) for pair in pads]
        if math.isinf(self.norm_type):
            self.inner = lookup(f"MaxPool{self.dims}d").from_args(common)
        else:
            self.inner = lookup(f"AvgPool{self.dims}d").from_args(common)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        return Inferred(self.inner.infer(in_shapes).out_shape)

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel pooled on its own."""
        return SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        return self.inner.receptive_field(fields, in_shapes, out_shape)

    def window_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[WindowAxis, ...] | None:
        return self.inner.window_geometry(in_shapes, out_shape)

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x, p = inputs[0], self.norm_type
        if p == math.inf:
            return self.inner.forward([np.abs(x)], None, counter)
        if p == -math.inf:
            return -self.inner.forward([-np.abs(x)], None, counter)
        average = self.inner.forward([np.power(np.abs(x) if self.abs else x, p)], None, counter)
        # torch: (sign(a) * relu(|a|)).mul(prod(kernel_size)).pow(1/p)
        scaled = np.sign(average) * np.abs(average) * x.dtype.type(prod(self.kernel_size))
        return np.power(scaled, x.dtype.type(1.0 / p))

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Autograd's chain through torch's expression, step by step (its conventions where a term vanishes):
        pow(s, 1/p): (1/p)·s^(1/p - 1) (no mask: inf at s = 0); mul(prod(k)); sign(a)·relu(|a|): the relu mask
        (a ≠ 0) times sign(a)² (so 0, not NaN, where a = 0); avg_pool: its backward; pow(x, p): p·x^(p-1).
        p = ±inf: max_pool(|x|)'s backward (-max_pool(-|x|)'s for -inf) times sgn(x). With ``abs``, pow(|x|, p):
        p·|x|^(p-1)·sgn(x) (torch's abs backward: 0 at x = 0)."""
        x, p = inputs[0], self.norm_type
        if math.isinf(p):
            magnitude = np.abs(x) if p > 0 else -np.abs(x)
            pooled = output if p > 0 else -output
            routed = self.inner.backward([magnitude], pooled, grad, None)[0]        # d/d(±|x|)
            return [routed * torch_sign(x)]
        base = np.abs(x) if self.abs else x
        powered = np.power(base, x.dtype.type(p))
        average = self.inner.forward([powered], None, MacCounter())                # a = avg_pool(x^p)
        size = x.dtype.type(prod(self.kernel_size))
        scaled = np.sign(average) * np.abs(average) * size                         # s = sign(a)·relu(|a|)·prod(k)
        with np.errstate(divide="ignore", invalid="ignore"):   # s = 0 (a window of zeros): inf, masked below
            d_scaled = grad * (x.dtype.type(1.0 / p) * np.power(scaled, x.dtype.type(1.0 / p - 1.0)))
            d_relu = d_scaled * size * torch_sign(average)                          # d/d relu(|a|)
        d_average = np.where(np.abs(average) <= 0, np.zeros((), grad.dtype), d_relu) * torch_sign(average)
        d_powered = self.inner.backward([powered], average, d_average, None)[0]
        d_base = d_powered * (x.dtype.type(p) * np.power(base, x.dtype.type(p - 1.0)))
        return [d_base * torch_sign(x) if self.abs else d_base]

    channelwise_support = True

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """The inner pool's windows."""
        return self.inner.support_factors(in_shapes, out_shape)

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """The inner pool's windows: a max pool's (every tap can be the largest |x|) for p = ±inf, else the
        average's."""
        return self.inner.support_backward(inputs, None, mask, None)


for _dims in (1, 2, 3):
    _arguments = dict(LPPoolNd.arguments)
    if _dims == 1:
        _arguments["kernel_size"] = Arg(lp_kernel_1d, doc="an integer (a list only with norm_type ±inf)")
    register(type(f"LPPool{_dims}d", (LPPoolNd,),
                  {"type_name": f"LPPool{_dims}d", "dims": _dims, "arguments": _arguments}))


# --------------------------------------------------------------------------- MinPool

class MinPoolNd(MaxPoolNd):
    summary = "min over sliding windows, -maxpool(-x); padding counts as +inf (no torch module)"
    arguments = {name: arg for name, arg in MaxPoolNd.arguments.items() if name != "return_indices"}
    argmax_indices = None   # no indices for a MaxUnpool to use

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return -super().forward([-inputs[0]], prepared, counter)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """d(-maxpool(-x))/dx: maxpool's backward at -x (the two signs cancel): the first minimum gets it."""
        return super().backward([-inputs[0]], -output, grad, prepared)


for _dims in (1, 2, 3):
    register(type(f"MinPool{_dims}d", (MinPoolNd,), {"type_name": f"MinPool{_dims}d", "dims": _dims}))


# --------------------------------------------------------------------------- global pools

class GlobalPool(Layer):
    """Reduce every spatial axis (any number of them) to one value per channel."""

    arguments = {"keepdim": Arg(boolean, True, "true: [C, 1, ..., 1] (as an adaptive pool to 1); false: [C]")}

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        if len(shape) < 2:
            raise LayerArgError(f"{self.type_name} expects a [C, *spatial] input with at least one spatial axis"
                                f" ({', '.join(LAYOUTS.values())}, ...), got {shape_text(shape)}", None)
        return Inferred((shape[0], *(1,) * (len(shape) - 1)) if self.keepdim else (shape[0],))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel pooled on its own."""
        return SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        return fields[0].gathered()

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]                                        # (N, *S, C)
        spatial = tuple(range(1, x.ndim - 1))
        return self.reduce(x, axis=spatial, keepdims=self.keepdim)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        x = inputs[0]                                        # (N, *S, C)
        keep = (x.shape[0], *(1,) * (x.ndim - 2), x.shape[-1])
        return [self.spread(x, output.reshape(keep), grad.reshape(keep))]

    channelwise_support = True

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Per channel, every position (kept dims of 1 or none)."""
        if not self.keepdim:
            return None
        return [Factors((None, *(EVERY,) * (len(in_shapes[0]) - 1)))]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Every position of a channel can decide its value (the maximum's position depends on the data)."""
        x = inputs[0]
        keep = (x.shape[0], *(1,) * (x.ndim - 2), mask.shape[-1])
        return [np.broadcast_to(mask.reshape(keep), (*x.shape[:-1], mask.shape[-1])).copy()]


@register
class GlobalAvgPool(GlobalPool):
    type_name = "GlobalAvgPool"
    aliases = ("GlobalAveragePooling",)
    summary = "mean over all spatial axes (= AdaptiveAvgPoolNd(1))"
    reduce = staticmethod(lambda x, **kwargs: np.mean(x, **kwargs))

    @staticmethod
    def spread(x: np.ndarray, output: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The mean's gradient: grad / prod(S) everywhere."""
        return np.broadcast_to(grad / (x.size // (x.shape[0] * x.shape[-1])), x.shape).copy()


@register
class GlobalMaxPool(GlobalPool):
    type_name = "GlobalMaxPool"
    aliases = ("GlobalMaxPooling",)
    summary = "max over all spatial axes (= AdaptiveMaxPoolNd(1))"
    reduce = staticmethod(lambda x, **kwargs: np.max(x, **kwargs))

    @staticmethod
    def spread(x: np.ndarray, output: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """torch.amax's gradient: shared evenly by the positions equal to the maximum, (grad / count) · mask
        (NaN when the maximum is NaN, as torch)."""
        mask = (x == output).astype(grad.dtype)
        count = mask.sum(axis=tuple(range(1, x.ndim - 1)), keepdims=True)
        return grad / count * mask
