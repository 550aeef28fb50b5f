"""Convolutions that do not share (all) their weights across positions: LocallyConnected1d/2d and TiledConv2d.

Both have the output shape, receptive field and argument rules of the ordinary convolution with the same
kernel, stride, padding and dilation; they take them from a `ConvNd` unit (never re-derived).

* Locally connected ("unshared convolution"; DL book §9.5, semantics §6.4; Keras LocallyConnected2D; DeepFace,
  Taigman et al. 2014): one kernel per output position.
  ``Z[i, *u] = b[*u, i] + Σ_{l, m} V[l, *(u·s + m·d)] · W[*u, i, l, *m]``; weight ``(*out, C_out, C_in/g, *k)``,
  bias ``(*out, C_out)``: ``weight[u]`` is an ordinary (grouped) conv kernel ``(C_out, C_in/g, *k)``.
* Tiled (Ngiam et al., NIPS 2010; DL book §9.5, semantics §6.3): t kernels per axis, the one at output position
  u being ``weight[*(u mod t)]``; weight ``(*t, C_out, C_in/g, *k)``, one shared bias ``(C_out,)``. t = 1 is the
  ordinary convolution, t >= the output size a locally connected layer (with a shared bias).

Both take ``groups`` (the seed's "several groups" variants; default 1) with the grouped conv's meaning: the input
and output channels split into g groups, output channel i reading only the C_in/g input channels of group
``i // (C_out/g)``; the conv's checks (g divides both channel counts) and messages apply.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._numpy import np

from ..kernels import (MacCounter, conv_im2col, conv_input_grad, conv_weight_columns, pad_spatial,
                       pad_spatial_transpose, windows, windows_transpose)
from ..algebra import Field
from ..algebra.shapes import prod
from .args import Arg, boolean, integer, per_axis
from .base import Inferred, Layer, Shape, WindowAxis, fan_in_uniform
from .factors import Factors
from .registry import lookup, register
from .args import _spelled
from .conv import GEOMETRY_ARGUMENTS


class UnsharedConvNd(Layer):
    """Shared rules: the shape, receptive field and argument checks of the `ConvNd` with the same geometry."""

    arguments = {**GEOMETRY_ARGUMENTS, "groups": Arg(integer(1), 1, "channel groups, as a grouped conv's"),
                 "bias": Arg(boolean, True)}

    def validate(self) -> None:
        args = {name: _spelled(value) for name, value in self.args.items() if name in UnsharedConvNd.arguments}
        args["bias"] = False
        self.conv = lookup(f"Conv{self.dims}d").from_args(args)    # the geometry: shapes, pads, receptive field

    def geometry(self, in_shapes: Sequence[Shape]) -> tuple[int, tuple[int, ...]]:
        """(input channels per group, output spatial size), with the conv's checks and messages."""
        out_shape = self.conv.infer(in_shapes).out_shape
        return in_shapes[0][0] // self.groups, tuple(out_shape[1:])

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        return self.conv.receptive_field(fields, in_shapes, out_shape)

    def window_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[WindowAxis, ...] | None:
        return self.conv.window_geometry(in_shapes, out_shape)

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """As the conv of the same geometry: the channels of a group, per spatial axis the window (the kernels
        differ per position, their taps do not)."""
        return self.conv.support_factors(in_shapes, out_shape)

    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """As a conv of the same kernel: U(±1/sqrt(C_in·∏k)) (PyTorch has no such layer to follow)."""
        return fan_in_uniform(rng, inferred.params, prod(inferred.params["weight"][-self.dims - 1:]))


class LocallyConnectedNd(UnsharedConvNd):
    summary = "a conv with its own kernel (and bias) at every output position (unshared; Keras LocallyConnected)"

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        channels, out = self.geometry(in_shapes)
        params = {"weight": (*out, self.out_channels, channels, *self.kernel_size)}
        if self.bias:
            params["bias"] = (*out, self.out_channels)
        macs = prod(out) * self.out_channels * channels * prod(self.kernel_size)
        return Inferred((self.out_channels, *out), params, {}, macs)

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        out = tuple(out_shape[1:])
        groups = self.groups
        positions, per_group = prod(out), in_shapes[0][0] // groups
        weight = np.asarray(params["weight"]).reshape(positions, groups, self.out_channels // groups, per_group,
                                                      *self.kernel_size)             # (P, g, O/g, C/g, *k)
        order = (0, 1, *range(4, 4 + self.dims), 3, 2)                               # (P, g, *k, C/g, O/g): one copy
        weight = np.ascontiguousarray(weight.transpose(order), dtype=dtype).reshape(
            positions, groups, -1, self.out_channels // groups)
        bias = params.get("bias")
        return {"pads": self.conv.pads(in_shapes[0][1:]), "out": out, "groups": groups,
                "weight": weight,                                                     # (P, g, prod(k)*C/g, O/g)
                "bias": None if bias is None else np.asarray(bias, dtype=dtype).reshape(positions, 1, -1)}

    def forward(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter) -> np.ndarray:
        x = pad_spatial(inputs[0], plan["pads"])
        batch, out, groups = x.shape[0], plan["out"], plan["groups"]
        taps = prod(self.kernel_size)
        patches = windows(x, self.kernel_size, self.stride, self.dilation, out)    # (N, *out, *k, C)
        patches = patches.reshape(batch, prod(out), taps, groups, -1)               # (N, P, prod(k), g, C/g)
        patches = patches.transpose(1, 3, 0, 2, 4).reshape(prod(out), groups, batch, -1)   # (P, g, N, prod(k)*C/g)
        y = counter.matmul(patches, plan["weight"])                                # (P, g, N, O/g)
        y = y.transpose(0, 2, 1, 3).reshape(prod(out), batch, self.out_channels)   # (P, N, O)
        if plan["bias"] is not None:
            y += plan["bias"]
        return np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(batch, *out, self.out_channels)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 plan: dict[str, Any]) -> list[np.ndarray]:
        """dL/dx: per output position and group, grad @ its own kernelᵀ (one batched GEMM), scattered back to the
        window it read (`windows_transpose`), then the padding's VJP."""
        x = inputs[0]
        spatial, channels = x.shape[1:-1], x.shape[-1]
        batch, out, groups = x.shape[0], plan["out"], plan["groups"]
        rows = grad.reshape(batch, prod(out), groups, -1).transpose(1, 2, 0, 3)         # (P, g, N, O/g)
        cols = np.matmul(rows, plan["weight"].transpose(0, 1, 3, 2))                    # (P, g, N, prod(k)*C/g)
        cols = cols.reshape(prod(out), groups, batch, prod(self.kernel_size), -1)       # (P, g, N, prod(k), C/g)
        cols = cols.transpose(2, 0, 3, 1, 4).reshape(batch, *out, *self.kernel_size, channels)  # (N, *out, *k, C)
        pads = plan["pads"]
        padded = tuple(size + lo + hi for size, (lo, hi) in zip(spatial, pads))
        grad_padded = windows_transpose(cols, padded, self.kernel_size, self.stride, self.dilation)
        return [pad_spatial_transpose(grad_padded, spatial, pads)]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """A mark the same on every output channel reaches every input channel alike: this layer's own backward
        with all-ones weights on one input channel (the mark spread over the output channels as a view)."""
        spatial, out = tuple(in_shapes[0][1:]), tuple(out_shape[1:])
        plan = {"pads": self.conv.pads(spatial), "out": out, "bias": None, "groups": 1,
                "weight": np.ones((prod(out), 1, prod(self.kernel_size), self.out_channels), dtype=mask.dtype)}
        x = np.broadcast_to(np.ones((), dtype=mask.dtype), (mask.shape[0], *spatial, 1))
        grad = np.broadcast_to(mask, (*mask.shape[:-1], self.out_channels))
        return [(g != 0).astype(mask.dtype) for g in self.backward([x], None, grad, plan)]


for _dims in (1, 2):
    register(type(f"LocallyConnected{_dims}d", (LocallyConnectedNd,),
                  {"type_name": f"LocallyConnected{_dims}d", "dims": _dims}))


@register
class TiledConv2d(UnsharedConvNd):
    type_name = "TiledConv2d"
    dims = 2
    summary = "a conv whose kernel cycles with period tile_size over the output positions (Ngiam et al. 2010)"
    arguments = {
        **UnsharedConvNd.arguments,
        "tile_size": Arg(per_axis(1), doc="t: kernels per axis; position u uses kernel u mod t (1: a plain conv)"),
    }

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        channels, out = self.geometry(in_shapes)
        params = {"weight": (*self.tile_size, self.out_channels, channels, *self.kernel_size)}
        if self.bias:
            params["bias"] = (self.out_channels,)
        macs = prod(out) * self.out_channels * channels * prod(self.kernel_size)
        return Inferred((self.out_channels, *out), params, {}, macs)

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        channels = in_shapes[0][0]
        weight = np.asarray(params["weight"], dtype=np.float64)                   # (*t, O, C/g, *k)
        tiles = {offsets: conv_weight_columns(weight[offsets], self.groups).astype(dtype)  # (g, prod(k)*C/g, O/g)
                 for offsets in np.ndindex(*self.tile_size)}
        bias = params.get("bias")
        return {"pads": self.conv.pads(in_shapes[0][1:]), "out": tuple(out_shape[1:]), "tiles": tiles,
                "channels": channels, "bias": None if bias is None else np.asarray(bias, dtype=dtype)}

    def forward(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter) -> np.ndarray:
        """One strided conv per tile offset a: output positions a, a+t, ... read inputs from a·s with stride s·t."""
        x = pad_spatial(inputs[0], plan["pads"])
        out = plan["out"]
        y = np.empty((x.shape[0], *out, self.out_channels), dtype=x.dtype)
        for offsets, columns in plan["tiles"].items():
            counts = tuple(-(-(o - a) // t) for o, a, t in zip(out, offsets, self.tile_size))   # ceil((o - a)/t)
            if min(counts) <= 0:
                continue                                      # a tile beyond the output (t > output size)
            start = (slice(None), *(slice(a * s, None) for a, s in zip(offsets, self.stride)))
            strides = tuple(s * t for s, t in zip(self.stride, self.tile_size))
            part = conv_im2col(x[start], columns, self.kernel_size, strides, self.dilation, counts, counter)
            y[(slice(None), *(slice(a, None, t) for a, t in zip(offsets, self.tile_size)))] = part
        if plan["bias"] is not None:
            y += plan["bias"]
        return y

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 plan: dict[str, Any]) -> list[np.ndarray]:
        """dL/dx: per tile offset, the VJP of its strided conv (`conv_input_grad`) added where that conv read."""
        x = inputs[0]
        spatial, pads, out = x.shape[1:-1], plan["pads"], plan["out"]
        padded = tuple(size + lo + hi for size, (lo, hi) in zip(spatial, pads))
        grad_padded = np.zeros((x.shape[0], *padded, x.shape[-1]), dtype=grad.dtype)
        strides = tuple(s * t for s, t in zip(self.stride, self.tile_size))
        for offsets, columns in plan["tiles"].items():
            counts = tuple(-(-(o - a) // t) for o, a, t in zip(out, offsets, self.tile_size))
            if min(counts) <= 0:
                continue
            part = grad[(slice(None), *(slice(a, None, t) for a, t in zip(offsets, self.tile_size)))]
            start = tuple(a * s for a, s in zip(offsets, self.stride))
            grad_padded[(slice(None), *(slice(b, None) for b in start))] += conv_input_grad(
                part, columns, tuple(p - b for p, b in zip(padded, start)), self.kernel_size, strides, self.dilation)
        return [pad_spatial_transpose(grad_padded, spatial, pads)]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """A mark the same on every output channel reaches every input channel alike: this layer's own backward
        on one channel with all-ones kernels at every tile offset."""
        spatial = tuple(in_shapes[0][1:])
        ones = np.ones((1, prod(self.kernel_size), 1), dtype=mask.dtype)
        plan = {"pads": self.conv.pads(spatial), "out": tuple(out_shape[1:]), "channels": 1, "bias": None,
                "tiles": {offsets: ones for offsets in np.ndindex(*self.tile_size)}}
        x = np.broadcast_to(np.ones((), dtype=mask.dtype), (mask.shape[0], *spatial, 1))
        return [(g != 0).astype(mask.dtype) for g in self.backward([x], None, mask, plan)]
