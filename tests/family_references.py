"""Torch reference modules for the convcalc layer types torch.nn does not have: the composite convolutions
(depthwise-separable, spatially separable, flattened, gated) and the unshared ones (locally connected, tiled).

Each is written from its definition with plain torch: the composites out of nn.Conv2d parts laid out as an
nn.Sequential would be (so their state_dict keys are the spec's ``<layer>.depthwise.weight`` ...). Their
constructors take convcalc's argument names, so the cross-check's argument/default test applies to them too.
Not a test module; used by family_cases.py (the cross-check strategies) and test_family_layers.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


# ============================================================================ composites: torch references

def torch_part(spec: Any, channels: int) -> nn.Module | None:
    """A part named like the spec's ``norm``/``activation`` (a type name or {type: ..., args}) as a torch module."""
    if spec is None:
        return None
    if isinstance(spec, str):
        type_name, args = spec, {}
    else:
        type_name, args = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    cls = getattr(nn, type_name)
    if type_name.startswith("BatchNorm"):
        args = {"num_features": channels, **args}
    return cls(**args)


def axis_only(value: Any, axis: int, rest: int, dims: int = 2) -> Any:
    """The value of one axis of a per-axis argument, ``rest`` on the others ('same'/'valid' pass through)."""
    if isinstance(value, str):
        return value
    values = (value,) * dims if isinstance(value, int) else tuple(value)
    if len(values) != dims:
        raise ValueError(f"{values} has not {dims} values")
    return tuple(v if a == axis else rest for a, v in enumerate(values))


class DepthwiseSeparableReference(nn.Module):
    """nn.Sequential-like: depthwise nn.ConvNd (groups = C) -> [norm] -> [activation] -> pointwise 1×1 nn.ConvNd."""

    dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, depth_multiplier=1,
                 bias=True, depthwise_bias=False, padding_mode="zeros", norm=None, activation=None):
        super().__init__()
        conv = getattr(nn, f"Conv{self.dims}d")
        mid = in_channels * depth_multiplier
        self.depthwise = conv(in_channels, mid, kernel_size, stride, padding, dilation, groups=in_channels,
                              bias=depthwise_bias, padding_mode=padding_mode)
        self.norm = torch_part(norm, mid)
        self.activation = torch_part(activation, mid)
        self.pointwise = conv(mid, out_channels, 1, bias=bias)

    def forward(self, x):
        x = self.depthwise(x)
        for module in (self.norm, self.activation):
            if module is not None:
                x = module(x)
        return self.pointwise(x)


class SpatiallySeparableReference(nn.Module):
    """vertical nn.Conv2d k_h×1 -> [norm] -> [activation] -> horizontal nn.Conv2d 1×k_w."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, mid_channels=None,
                 groups=1, bias=True, padding_mode="zeros", norm=None, activation=None):
        super().__init__()
        mid = mid_channels or out_channels
        shared = {"groups": groups, "bias": bias, "padding_mode": padding_mode}
        self.vertical = nn.Conv2d(in_channels, mid, axis_only(kernel_size, 0, 1), axis_only(stride, 0, 1),
                                  axis_only(padding, 0, 0), axis_only(dilation, 0, 1), **shared)
        self.norm = torch_part(norm, mid)
        self.activation = torch_part(activation, mid)
        self.horizontal = nn.Conv2d(mid, out_channels, axis_only(kernel_size, 1, 1), axis_only(stride, 1, 1),
                                    axis_only(padding, 1, 0), axis_only(dilation, 1, 1), **shared)

    def forward(self, x):
        x = self.vertical(x)
        for module in (self.norm, self.activation):
            if module is not None:
                x = module(x)
        return self.horizontal(x)


class FlattenedReference(nn.Module):
    """Jin et al. 2014: lateral 1×1 -> vertical k_h×1 depthwise -> horizontal 1×k_w depthwise, biases after each."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 padding_mode="zeros"):
        super().__init__()
        f = out_channels
        self.lateral = nn.Conv2d(in_channels, f, 1, bias=bias)
        self.vertical = nn.Conv2d(f, f, axis_only(kernel_size, 0, 1), axis_only(stride, 0, 1), axis_only(padding, 0, 0),
                                  axis_only(dilation, 0, 1), groups=f, bias=bias, padding_mode=padding_mode)
        self.horizontal = nn.Conv2d(f, f, axis_only(kernel_size, 1, 1), axis_only(stride, 1, 1),
                                    axis_only(padding, 1, 0), axis_only(dilation, 1, 1), groups=f, bias=bias,
                                    padding_mode=padding_mode)

    def forward(self, x):
        return self.horizontal(self.vertical(self.lateral(x)))


class GatedReference(nn.Module):
    """Yu et al. 2019 from two nn.Conv2d (nn.Conv1d): activation(feature(x)) * sigmoid(gate(x))."""

    dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", activation="ELU"):
        super().__init__()
        args = (in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode)
        conv = getattr(nn, f"Conv{self.dims}d")
        self.feature = conv(*args)
        self.gate = conv(*args)
        self.activation = torch_part(activation, out_channels)

    def forward(self, x):
        features = self.feature(x)
        if self.activation is not None:
            features = self.activation(features)
        return features * torch.sigmoid(self.gate(x))


# ============================================================================ unshared: naive loops from the definitions

class _UnsharedReference(nn.Module):
    """Shape rules from torch itself: an nn.ConvNd of the same geometry is run once on zeros of the input size
    (at construction, outside any FlopCounterMode), which raises where torch's conv would."""

    dims = 2
    needs_input_size = True

    def _geometry(self, in_channels, kernel_size, stride, padding, dilation, input_size):
        conv = getattr(nn, f"Conv{self.dims}d")(in_channels, 1, kernel_size, stride, padding, dilation, bias=False)
        with torch.no_grad():
            out = tuple(conv(torch.zeros(1, in_channels, *input_size)).shape[2:])
        self.in_channels, self.input_size = in_channels, tuple(input_size)
        self.kernel_size, self.stride, self.dilation = conv.kernel_size, conv.stride, conv.dilation
        self.pads = conv._reversed_padding_repeated_twice        # F.pad order (last axis first), 'same' resolved
        self.out_size = out
        return out

    def _windows(self, x):
        """(position, window (N, C, *k)) for every output position, from the definition."""
        if tuple(x.shape[1:]) != (self.in_channels, *self.input_size):
            raise ValueError(f"built for input {(self.in_channels, *self.input_size)}, got {tuple(x.shape[1:])}")
        x = F.pad(x, self.pads)
        for position in itertools.product(*(range(o) for o in self.out_size)):
            index = [slice(None), slice(None)]
            for u, k, s, d in zip(position, self.kernel_size, self.stride, self.dilation):
                index.append(slice(u * s, u * s + d * (k - 1) + 1, d))
            yield position, x[tuple(index)]

    def _correlate(self, x, kernel_of, bias_of):
        out = x.new_zeros(x.shape[0], self.out_channels, *self.out_size)
        for position, window in self._windows(x):
            kernel = kernel_of(position)                                          # (C_out, C_in, *k)
            value = torch.matmul(window.reshape(x.shape[0], -1), kernel.reshape(kernel.shape[0], -1).T)
            if bias_of is not None:
                value = value + bias_of(position)
            out[(slice(None), slice(None), *position)] = value
        return out


class LocallyConnectedReference(_UnsharedReference):
    """Z[:, i, *u] = b[*u, i] + Σ W[*u, i, l, *m] · V[:, l, *(u·s + m·d)] (DL book §9.5), one loop step per position."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 input_size=None):
        super().__init__()
        out = self._geometry(in_channels, kernel_size, stride, padding, dilation, input_size)
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.randn(*out, out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.randn(*out, out_channels)) if bias else None

    def forward(self, x):
        return self._correlate(x, lambda u: self.weight[u], None if self.bias is None else lambda u: self.bias[u])


class TiledReference(_UnsharedReference):
    """Ngiam et al. 2010: output position u uses kernel weight[*(u mod t)], one shared bias per channel."""

    def __init__(self, in_channels, out_channels, kernel_size, tile_size, stride=1, padding=0, dilation=1, bias=True,
                 input_size=None):
        super().__init__()
        self._geometry(in_channels, kernel_size, stride, padding, dilation, input_size)
        tiles = (tile_size,) * self.dims if isinstance(tile_size, int) else tuple(tile_size)
        if len(tiles) != self.dims or min(tiles) < 1:
            raise ValueError(f"tile_size {tile_size} must be {self.dims} positive values")
        self.out_channels, self.tile_size = out_channels, tiles
        self.weight = nn.Parameter(torch.randn(*tiles, out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.randn(out_channels)) if bias else None

    def forward(self, x):
        return self._correlate(x, lambda u: self.weight[tuple(p % t for p, t in zip(u, self.tile_size))],
                           None if self.bias is None else lambda u: self.bias)
