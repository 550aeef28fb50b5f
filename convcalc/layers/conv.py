"""Conv1d / Conv2d / Conv3d: PyTorch's cross-correlation with stride, padding, dilation and groups."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import LayerArgError
from ..kernels import (MacCounter, conv_depthwise, conv_flat, conv_im2col, conv_rows, conv_weight_columns,
                       pad_spatial)
from ..receptive import Field
from ..shapes import Pads, conv_length, dilated, prod, same_pads
from .base import (LAYOUTS, Arg, Inferred, Layer, Shape, boolean, choice, fan_in_uniform, integer, optional, per_axis,
                   register)

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# stride-1 convs with at least this many output positions per sample use the row (or, batched, the tap-GEMM)
# algorithm instead of im2col: there the patch copy costs more than the GEMM (benchmarks/executor.py, ResNets)
ROWS_MIN_POSITIONS = 28 * 28


def padding_arg(value: Any, dims: int, name: str) -> tuple[int, ...] | str:
    """``padding``: an int, one int per spatial axis, 'valid' or 'same' (PyTorch's spellings)."""
    if isinstance(value, str):
        if value in ("valid", "same"):
            return value
        raise LayerArgError(f"{name} must be an integer, a list of {dims} integers, 'valid' or 'same',"
                            f" got the string '{value}'", name)
    return per_axis()(value, dims, name)  # negative values: see ConvNd.validate


def axis_names(dims: int) -> tuple[str, ...]:
    return {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}[dims]


def axis_label(dims: int, axis: int) -> str:
    """'' in 1-D, else ' along the width' etc., for messages."""
    return "" if dims == 1 else f" along the {axis_names(dims)[axis]}"


class ConvNd(Layer):
    """Shared rules of Conv1d/2d/3d."""

    summary = "cross-correlation with stride, padding, dilation and groups (torch.nn.ConvNd)"
    arguments = {
        "in_channels": Arg(optional(integer(1)), None, "input channels; inferred from the graph"),
        "out_channels": Arg(integer(1), doc="output channels"),
        "kernel_size": Arg(per_axis(1), doc="kernel extent per spatial axis"),
        "stride": Arg(per_axis(1), 1),
        "padding": Arg(padding_arg, 0, "int, per-axis list, 'valid' or 'same' (stride 1 only)"),
        "dilation": Arg(per_axis(1), 1),
        "groups": Arg(integer(1), 1),
        "bias": Arg(boolean, True),
        "padding_mode": Arg(choice(*PADDING_MODES), "zeros"),
    }

    def validate(self) -> None:
        if self.padding == "valid":
            self.padding = (0,) * self.dims
        if self.padding != "same" and any(p < 0 for p in self.padding):
            # F.conv refuses a negative padding; the other modes pad through F.pad first, which
            # crops by a negative amount (the conv then sees i + 2p, checked in out_spatial).
            if self.padding_mode == "zeros":
                raise LayerArgError(f"padding must be at least 0 with padding_mode 'zeros', got"
                                    f" {min(self.padding)} (a negative padding crops, and PyTorch allows it"
                                    f" only with padding_mode 'reflect', 'replicate' or 'circular')", "padding")
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise LayerArgError("padding='same' is not supported for strided convolutions"
                                f" (stride {list(self.stride)}); PyTorch allows it with stride 1 only", "padding")
        if self.out_channels % self.groups:
            raise LayerArgError(f"out_channels {self.out_channels} is not divisible by groups {self.groups}", "groups")
        if self.in_channels is not None and self.in_channels % self.groups:
            raise LayerArgError(f"in_channels {self.in_channels} is not divisible by groups {self.groups}", "groups")

    # ---- shape-dependent rules
    def pads(self, spatial: Sequence[int]) -> Pads:
        """Explicit (before, after) padding per axis."""
        if self.padding == "same":
            return tuple(same_pads(k, d) for k, d in zip(self.kernel_size, self.dilation))
        return tuple((p, p) for p in self.padding)

    def in_channels_of(self, in_shape: Shape) -> int:
        self.expect_rank(in_shape, (self.dims + 1,), LAYOUTS[self.dims])
        channels = in_shape[0]
        if self.in_channels is not None and self.in_channels != channels:
            raise LayerArgError(f"in_channels is {self.in_channels} but the input has {channels} channels",
                                "in_channels")
        if channels % self.groups:
            raise LayerArgError(f"the input's {channels} channels are not divisible by groups {self.groups}",
                                "groups")
        return channels

    def check_padding_mode(self, spatial: Sequence[int], pads: Pads) -> None:
        for axis, (size, (lo, hi)) in enumerate(zip(spatial, pads)):
            where = axis_label(self.dims, axis)
            if self.padding_mode == "reflect" and max(lo, hi) >= size:
                raise LayerArgError(f"reflect padding {max(lo, hi)}{where} must be smaller than the input"
                                    f" size {size}", "padding")
            if self.padding_mode == "circular" and max(lo, hi) > size:
                raise LayerArgError(f"circular padding {max(lo, hi)}{where} wraps around more than once"
                                    f" (input size {size})", "padding")

    def out_spatial(self, spatial: Sequence[int], pads: Pads) -> tuple[int, ...]:
        sizes = []
        for axis, (size, k, s, d, (lo, hi)) in enumerate(
                zip(spatial, self.kernel_size, self.stride, self.dilation, pads)):
            span, padded = dilated(k, d), size + lo + hi
            if padded < span:
                dilation_text = f" with dilation {d}" if d > 1 else ""
                raise LayerArgError(
                    f"kernel_size {k}{dilation_text} spans {span}, but the padded input is {padded} wide"
                    f"{axis_label(self.dims, axis)}", "kernel_size")
            sizes.append(conv_length(size, k, s, d, lo, hi))
        return tuple(sizes)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        channels = self.in_channels_of(in_shape)
        spatial = in_shape[1:]
        pads = self.pads(spatial)
        if self.padding_mode != "zeros":
            self.check_padding_mode(spatial, pads)
        out_shape = (self.out_channels, *self.out_spatial(spatial, pads))
        params = {"weight": (self.out_channels, channels // self.groups, *self.kernel_size)}
        if self.bias:
            params["bias"] = (self.out_channels,)
        macs = prod(out_shape) * (channels // self.groups) * prod(self.kernel_size)
        return Inferred(out_shape, params, {}, macs)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        pads = self.pads(in_shapes[0][1:])
        k_eff = [dilated(k, d) for k, d in zip(self.kernel_size, self.dilation)]
        return fields[0].through_window(k_eff, self.stride, [lo for lo, _ in pads])

    # ---- execution
    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        weight = inferred.params["weight"]
        return fan_in_uniform(rng, inferred.params, prod(weight[1:]))

    def absorb_affine(self, params: Mapping[str, np.ndarray], scale: np.ndarray,
                      shift: np.ndarray) -> dict[str, np.ndarray]:
        """Fold a following per-channel affine map y*scale + shift (an inference BatchNorm) into the weights."""
        weight = np.asarray(params["weight"], dtype=np.float64)
        bias = np.asarray(params["bias"], dtype=np.float64) if "bias" in params else np.zeros(weight.shape[0])
        return {"weight": weight * scale.reshape(-1, *[1] * (weight.ndim - 1)), "bias": bias * scale + shift}

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        """Choose the algorithm for this conv's shapes and lay the weights out for it."""
        channels, spatial = in_shapes[0][0], in_shapes[0][1:]
        weight = np.asarray(params["weight"], dtype=np.float64)
        out = tuple(out_shape[1:])
        plan: dict[str, Any] = {"pads": self.pads(spatial), "out": out,
                                "bias": np.asarray(params["bias"], dtype=dtype) if "bias" in params else None}
        per_group = channels // self.groups
        if self.groups > 1 and per_group == 1:
            multiplier = self.out_channels // channels                    # depthwise
            taps = weight.reshape(channels, multiplier, -1).transpose(2, 0, 1)   # (prod(k), C, M)
            plan.update(method="depthwise", weights=np.ascontiguousarray(taps, dtype=dtype))
        elif self.groups == 1 and all(k == 1 for k in self.kernel_size):
            columns = weight.reshape(self.out_channels, channels).T       # (C, O)
            plan.update(method="pointwise", weights=np.ascontiguousarray(columns, dtype=dtype))
        elif self.groups == 1 and self.dims >= 2 and all(s == 1 for s in self.stride) and prod(out) >= ROWS_MIN_POSITIONS:
            first = self.kernel_size[0]
            rows = np.moveaxis(weight, 1, -1)                              # (O, k0, *k[1:], C)
            rows = np.moveaxis(rows, 1, 0).reshape(first, self.out_channels, -1).transpose(0, 2, 1)
            taps = np.moveaxis(weight, 1, -1).reshape(self.out_channels, -1, channels)   # (O, prod(k), C)
            plan.update(method="rows", weights=np.ascontiguousarray(rows, dtype=dtype),   # (k0, prod(k[1:])*C, O)
                        taps=np.ascontiguousarray(taps.transpose(1, 2, 0), dtype=dtype))  # (prod(k), C, O)
        else:
            plan.update(method="im2col", weights=conv_weight_columns(weight, self.groups).astype(dtype))
        return plan

    def forward(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter) -> np.ndarray:
        x = pad_spatial(inputs[0], plan["pads"], self.padding_mode)
        out, weights, method = plan["out"], plan["weights"], plan["method"]
        args = (self.kernel_size, self.stride, self.dilation, out, counter)
        if method == "pointwise":
            index = (slice(None), *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, self.stride)))
            picked = x[index]                                                 # (N, *out, C)
            y = counter.matmul(picked.reshape(-1, picked.shape[-1]), weights).reshape(*picked.shape[:-1], -1)
        elif method == "depthwise":
            y = conv_depthwise(x, weights, *args)
        elif method == "rows" and x.shape[0] >= 4:
            y = conv_flat(x, plan["taps"], self.kernel_size, self.dilation, out, counter)   # batches: no copies
        elif method == "rows":
            y = conv_rows(x, weights, *args)
        else:
            y = conv_im2col(x, weights, *args)
        if plan["bias"] is not None:
            y += plan["bias"]
        return y


for _dims in (1, 2, 3):
    register(type(f"Conv{_dims}d", (ConvNd,), {"type_name": f"Conv{_dims}d", "dims": _dims}))
