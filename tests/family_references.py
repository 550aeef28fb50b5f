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

    def _geometry(self, in_channels, kernel_size, stride, padding, dilation, input_size, out_channels=1, groups=1):
        conv = getattr(nn, f"Conv{self.dims}d")(in_channels, out_channels, kernel_size, stride, padding, dilation,
                                                groups=groups, bias=False)
        with torch.no_grad():
            out = tuple(conv(torch.zeros(1, in_channels, *input_size)).shape[2:])
        self.in_channels, self.input_size, self.groups = in_channels, tuple(input_size), groups
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
        """Per position and group j: the window's channels of group j times the kernels of the outputs of group j."""
        out = x.new_zeros(x.shape[0], self.out_channels, *self.out_size)
        per_in, per_out = self.in_channels // self.groups, self.out_channels // self.groups
        for position, window in self._windows(x):
            kernel = kernel_of(position)                                          # (C_out, C_in/g, *k)
            value = torch.cat([
                torch.matmul(window[:, j * per_in:(j + 1) * per_in].reshape(x.shape[0], -1),
                             kernel[j * per_out:(j + 1) * per_out].reshape(per_out, -1).T)
                for j in range(self.groups)], dim=1)
            if bias_of is not None:
                value = value + bias_of(position)
            out[(slice(None), slice(None), *position)] = value
        return out


class LocallyConnectedReference(_UnsharedReference):
    """Z[:, i, *u] = b[*u, i] + Σ W[*u, i, l, *m] · V[:, l, *(u·s + m·d)] (DL book §9.5), one loop step per position;
    with groups, l runs over the input channels of output i's group only (as a grouped conv)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 input_size=None):
        super().__init__()
        out = self._geometry(in_channels, kernel_size, stride, padding, dilation, input_size, out_channels, groups)
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.randn(*out, out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.randn(*out, out_channels)) if bias else None

    def forward(self, x):
        return self._correlate(x, lambda u: self.weight[u], None if self.bias is None else lambda u: self.bias[u])


class TiledReference(_UnsharedReference):
    """Ngiam et al. 2010: output position u uses kernel weight[*(u mod t)], one shared bias per channel."""

    def __init__(self, in_channels, out_channels, kernel_size, tile_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, input_size=None):
        super().__init__()
        self._geometry(in_channels, kernel_size, stride, padding, dilation, input_size, out_channels, groups)
        tiles = (tile_size,) * self.dims if isinstance(tile_size, int) else tuple(tile_size)
        if len(tiles) != self.dims or min(tiles) < 1:
            raise ValueError(f"tile_size {tile_size} must be {self.dims} positive values")
        self.out_channels, self.tile_size = out_channels, tiles
        self.weight = nn.Parameter(torch.randn(*tiles, out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.randn(out_channels)) if bias else None

    def forward(self, x):
        return self._correlate(x, lambda u: self.weight[tuple(p % t for p, t in zip(u, self.tile_size))],
                           None if self.bias is None else lambda u: self.bias)


# ============================================================================ channel pooling: torch expressions

class MaxoutReference(nn.Module):
    """Goodfellow et al. 2013: x.view(N, C/k, k, *S).max(2) (torch refuses the view when k does not divide C)."""

    def __init__(self, pool_size):
        super().__init__()
        self.pool_size = pool_size

    def forward(self, x):
        k = self.pool_size
        return x.view(x.shape[0], x.shape[1] // k, k, *x.shape[2:]).max(2).values


class ChannelMaxPoolReference(nn.Module):
    """Windows of k channels, stride s (default k), along dim 1: x.unfold(1, k, s) reduced over the window."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride

    def reduce(self, windows):
        return windows.max(-1).values

    def forward(self, x):
        return self.reduce(x.unfold(1, self.kernel_size, self.stride))


class ChannelAvgPoolReference(ChannelMaxPoolReference):
    def reduce(self, windows):
        return windows.mean(-1)


# ============================================================================ partial convolution (Liu et al. 2018)

def partial_pads(padding, kernel_size, stride, dilation):
    """F.pad's (left, right, top, bottom) for a partial conv's padding: an int or pair (symmetric), 'valid', 'same'
    (stride 1: d(k-1) in total, the odd one after, as torch's conv), or convcalc's [[before, after], [before, after]];
    torch's own conv refusals (negative padding, 'same' with a stride) raised here."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)       # noqa: E731
    kernel, stride, dilation = pair(kernel_size), pair(stride), pair(dilation)
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        (top, bottom), (left, right) = [(t // 2, t - t // 2) for t in totals]
        return (left, right, top, bottom)
    if isinstance(padding, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in padding):
        (top, bottom), (left, right) = [tuple(v) for v in padding]
        return (left, right, top, bottom)
    height, width = pair(padding)
    if min(height, width) < 0:
        raise RuntimeError("negative padding is not supported")
    return (width, width, height, height)


def window_sums(mask, kernel_size, stride, dilation, pads):
    """Σ over every window and all channels of a zero-padded mask, (N, 1, OH, OW): what NVIDIA computes as
    F.conv2d(mask, ones), here with F.unfold and a sum (which FlopCounterMode counts as no flops)."""
    padded = F.pad(mask.sum(1, keepdim=True), pads)
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)       # noqa: E731
    kernel, stride, dilation = pair(kernel_size), pair(stride), pair(dilation)
    sizes = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(padded.shape[2:], kernel, stride, dilation)]
    columns = F.unfold(padded, kernel, dilation=dilation, stride=stride)       # (N, kh*kw, OH*OW)
    return columns.sum(1).reshape(mask.shape[0], 1, *sizes)


def derived_mask(x, derive_mask, multi_channel):
    """The mask a partial conv without a mask input uses: None for 'ones', else x != 0 (per channel with
    multi_channel, else where any channel is nonzero)."""
    if derive_mask in (None, "ones"):
        return None
    nonzero = (x != 0) if multi_channel else (x != 0).any(1, keepdim=True)
    return nonzero.to(x.dtype)


class PartialConv2dReference(nn.Conv2d):
    """NVIDIA's PartialConv2d (github.com/NVIDIA/partialconv, models/partialconv2d.py) re-implemented from its
    definition: with count = Σ_window M (under no_grad), update = clamp(count, 0, 1),
    ratio = winsize/(count + eps)·update, out = ((conv(X⊙M) − b)·ratio + b)·update. Without a mask: ones
    (NVIDIA's), or the image's nonzeros. convcalc's convention: a mask of another height or width is refused
    (NVIDIA's would broadcast a size-1 one or fail)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 multi_channel=False, derive_mask=None, eps=1e-8):
        pads = partial_pads(padding, kernel_size, stride, dilation)
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)
        self.pads, self.multi_channel, self.derive_mask, self.eps = pads, multi_channel, derive_mask, eps
        self.winsize = (in_channels if multi_channel else 1) * self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x, mask=None):
        given = mask is not None
        if given and self.derive_mask is not None:
            raise ValueError("derive_mask with a mask input")
        if not given:
            mask = derived_mask(x, self.derive_mask, self.multi_channel)
        with torch.no_grad():
            if mask is None:
                ones = torch.ones(1, x.shape[1] if self.multi_channel else 1, *x.shape[2:], dtype=x.dtype)
                count = window_sums(ones, self.kernel_size, self.stride, self.dilation, self.pads)
            else:
                if mask.shape[1] != (x.shape[1] if self.multi_channel else 1) or mask.shape[2:] != x.shape[2:]:
                    raise ValueError(f"mask {tuple(mask.shape)} does not fit the image {tuple(x.shape)}")
                count = window_sums(mask.detach(), self.kernel_size, self.stride, self.dilation, self.pads)
            ratio = self.winsize / (count + self.eps)
            update = torch.clamp(count, 0, 1)
            ratio = ratio * update
        raw = self._conv_forward(F.pad(x * mask if mask is not None else x, self.pads), self.weight, self.bias)
        if self.bias is not None:
            bias = self.bias.view(1, -1, 1, 1)
            out = (raw - bias) * ratio + bias
        else:
            out = raw * ratio
        return out * update


class PartialConvMask2dReference(nn.Module):
    """The mask NVIDIA's PartialConv2d returns with return_mask=True: clamp(Σ_window M, 0, 1), one channel, or
    out_channels equal ones with multi_channel; computed under no_grad (no gradient reaches the mask)."""

    def __init__(self, kernel_size, stride=1, padding=0, dilation=1, multi_channel=False, out_channels=None,
                 derive_mask=None):
        super().__init__()
        if multi_channel and out_channels is None or not multi_channel and out_channels not in (None, 1):
            raise ValueError("out_channels goes with multi_channel")
        self.pads = partial_pads(padding, kernel_size, stride, dilation)
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.multi_channel, self.out_channels, self.derive_mask = multi_channel, out_channels, derive_mask

    def forward(self, mask):
        if self.derive_mask is not None:
            mask = derived_mask(mask, self.derive_mask, self.multi_channel)
        elif not self.multi_channel and mask.shape[1] != 1:
            raise ValueError("a one-channel mask")
        with torch.no_grad():
            update = torch.clamp(window_sums(mask, self.kernel_size, self.stride, self.dilation, self.pads), 0, 1)
        return update.expand(-1, self.out_channels or 1, -1, -1).contiguous()
