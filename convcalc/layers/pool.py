"""Max/average pooling (1d/2d/3d) with PyTorch's ceil_mode rule, and adaptive pooling."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from ..errors import LayerArgError
from ..kernels import (MacCounter, adaptive_reduce, avg_divisor, pad_spatial, pool_pads_for_ceil, reduce_windows,
                       window_argmax)
from ..receptive import Field
from ..shapes import adaptive_bin_extent, dilated, pool_length
from .base import LAYOUTS, Arg, Inferred, Layer, Shape, boolean, integer, optional, per_axis, register
from .conv import axis_label


class PoolNd(Layer):
    """Shared rules of sliding-window pooling: stride defaults to the kernel size."""

    def validate(self) -> None:
        if self.stride is None:
            self.stride = self.kernel_size
        dilation = getattr(self, "dilation", (1,) * self.dims)
        for axis, (k, p) in enumerate(zip(self.kernel_size, self.padding)):
            if p > k // 2:
                raise LayerArgError(
                    f"padding {p}{axis_label(self.dims, axis)} is more than half the kernel size {k}"
                    f" (PyTorch allows at most {k // 2})", "padding")
        self.dilation = dilation

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        self.expect_rank(in_shape, (self.dims + 1,), LAYOUTS[self.dims])
        sizes = []
        for axis, (i, k, s, d, p) in enumerate(
                zip(in_shape[1:], self.kernel_size, self.stride, self.dilation, self.padding)):
            o = pool_length(i, k, s, d, p, p, self.ceil_mode)
            if o < 1:
                dilation_text = f" with dilation {d}" if d > 1 else ""
                raise LayerArgError(
                    f"kernel_size {k}{dilation_text} spans {dilated(k, d)}, but the padded input is"
                    f" {i + 2 * p} wide{axis_label(self.dims, axis)}: the output would be empty", "kernel_size")
            sizes.append(o)
        return Inferred((in_shape[0], *sizes))

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        k_eff = [dilated(k, d) for k, d in zip(self.kernel_size, self.dilation)]
        return fields[0].through_window(k_eff, self.stride, self.padding)


class MaxPoolNd(PoolNd):
    summary = "max over sliding windows; padding counts as -inf (torch.nn.MaxPoolNd)"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        spatial = x.shape[1:-1]
        out = self.infer([(x.shape[-1], *spatial)]).out_shape[1:]
        pads = pool_pads_for_ceil(spatial, self.kernel_size, self.stride, self.dilation, self.padding, out)
        padded = pad_spatial(x, pads, value=-np.inf)
        return reduce_windows(padded, self.kernel_size, self.stride, self.dilation, out, np.maximum)

    def argmax_indices(self, x: np.ndarray) -> np.ndarray:
        """PyTorch's return_indices (per-plane flat index of each window's max), for a MaxUnpool naming this pool."""
        out = self.infer([(x.shape[-1], *x.shape[1:-1])]).out_shape[1:]
        return window_argmax(x, self.kernel_size, self.stride, self.dilation, self.padding, out)
    arguments = {
        "kernel_size": Arg(per_axis(1)),
        "stride": Arg(optional(per_axis(1)), None, "defaults to kernel_size"),
        "padding": Arg(per_axis(0), 0, "at most half the kernel size"),
        "dilation": Arg(per_axis(1), 1),
        "return_indices": Arg(boolean, False),
        "ceil_mode": Arg(boolean, False),
    }


class AvgPoolNd(PoolNd):
    summary = "mean over sliding windows (torch.nn.AvgPoolNd)"
    arguments = {
        "kernel_size": Arg(per_axis(1)),
        "stride": Arg(optional(per_axis(1)), None, "defaults to kernel_size"),
        "padding": Arg(per_axis(0), 0, "at most half the kernel size"),
        "ceil_mode": Arg(boolean, False),
        "count_include_pad": Arg(boolean, True),
        "divisor_override": Arg(optional(integer(1)), None, "divide by this instead of the window size"),
    }

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        spatial = x.shape[1:-1]
        out = self.infer([(x.shape[-1], *spatial)]).out_shape[1:]
        pads = pool_pads_for_ceil(spatial, self.kernel_size, self.stride, self.dilation, self.padding, out)
        total = reduce_windows(pad_spatial(x, pads), self.kernel_size, self.stride, self.dilation, out, np.add)
        override = getattr(self, "divisor_override", None)
        if override:
            return total / np.asarray(override, dtype=x.dtype)
        divisor = avg_divisor(spatial, self.kernel_size, self.stride, self.padding, out, self.count_include_pad)
        return total / divisor[..., None].astype(x.dtype)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        if self.dims == 3 and len(in_shape) == 4:
            # avg_pool3d alone (pool3d_shape_check with check_input_size) wants the UNpadded input
            # at least as large as the kernel on every axis, whatever the padding or ceil_mode.
            for axis, (i, k) in enumerate(zip(in_shape[1:], self.kernel_size)):
                if i < k:
                    raise LayerArgError(
                        f"AvgPool3d needs the input at least as large as kernel_size {k}"
                        f"{axis_label(self.dims, axis)}, got {i} (PyTorch checks this before padding)",
                        "kernel_size")
        return super().infer(in_shapes)


def output_size_arg(value: Any, dims: int, name: str) -> tuple[int | None, ...]:
    """Adaptive ``output_size``: an int, or one int-or-null per spatial axis (null keeps the input size).

    PyTorch takes null entries only in 2-D and 3-D (``_list_with_default``); the 1-D pools pass
    ``output_size`` straight to ATen, which wants ints, and a bare null is refused in every dimension.
    """
    if value is None:
        raise LayerArgError(f"{name} must be an integer or a list of {dims} values, got null"
                            + (" (to keep an axis, give null as its entry in the list, e.g. [null, 7])"
                               if dims > 1 else ""),
                            name)
    values = value if isinstance(value, list) else [value] * dims
    if dims == 1 and None in values:
        raise LayerArgError(f"{name} of a 1-D adaptive pool must be an integer, got null"
                            " (null entries, which keep an axis, are accepted in 2-D and 3-D only)", name)
    if len(values) != dims:
        raise LayerArgError(f"{name} must be an integer or a list of {dims} values, got {len(values)} values", name)
    return tuple(None if v is None else integer(1)(v, dims, name) for v in values)


class AdaptivePoolNd(Layer):
    """Pooling to a fixed output size; bin j covers [floor(j*I/O), ceil((j+1)*I/O))."""

    def targets(self, spatial: Sequence[int]) -> tuple[int, ...]:
        return tuple(i if o is None else o for i, o in zip(spatial, self.output_size))

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        self.expect_rank(in_shape, (self.dims + 1,), LAYOUTS[self.dims])
        return Inferred((in_shape[0], *self.targets(in_shape[1:])))

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        field = fields[0]
        spatial = in_shapes[0][1:]
        targets = self.targets(spatial)
        if field.whole or all(o == 1 for o in targets):
            return Field.whole_input()
        axes = []
        for axis, i, o in zip(field.axes, spatial, targets):
            smallest, largest = adaptive_bin_extent(i, o)
            axes.append(axis.through_window(largest, Fraction(i, o), 0, k_eff_min=smallest))
        return Field(tuple(axes), misaligned=field.misaligned)


class AdaptiveAvgPoolNd(AdaptivePoolNd):
    summary = "mean over adaptive bins (torch.nn.AdaptiveAvgPoolNd)"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return adaptive_reduce(inputs[0], self.targets(inputs[0].shape[1:-1]), np.mean)
    arguments = {"output_size": Arg(output_size_arg, doc="int or per-axis list; in 2-D/3-D null keeps that axis")}


class AdaptiveMaxPoolNd(AdaptivePoolNd):
    summary = "max over adaptive bins (torch.nn.AdaptiveMaxPoolNd)"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return adaptive_reduce(inputs[0], self.targets(inputs[0].shape[1:-1]), np.max)
    arguments = {
        "output_size": Arg(output_size_arg, doc="int or per-axis list; in 2-D/3-D null keeps that axis"),
        "return_indices": Arg(boolean, False),
    }


for _dims in (1, 2, 3):
    register(type(f"MaxPool{_dims}d", (MaxPoolNd,), {"type_name": f"MaxPool{_dims}d", "dims": _dims}))
    avg_arguments = dict(AvgPoolNd.arguments)
    if _dims == 1:
        del avg_arguments["divisor_override"]  # AvgPool1d has none in PyTorch
    register(type(f"AvgPool{_dims}d", (AvgPoolNd,),
                  {"type_name": f"AvgPool{_dims}d", "dims": _dims, "arguments": avg_arguments}))
    register(type(f"AdaptiveAvgPool{_dims}d", (AdaptiveAvgPoolNd,),
                  {"type_name": f"AdaptiveAvgPool{_dims}d", "dims": _dims}))
    register(type(f"AdaptiveMaxPool{_dims}d", (AdaptiveMaxPoolNd,),
                  {"type_name": f"AdaptiveMaxPool{_dims}d", "dims": _dims}))
