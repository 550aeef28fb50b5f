"""Cross-check strategies for the padding layers (ZeroPad, ConstantPad, ReflectionPad, ReplicationPad,
CircularPad 1d/2d/3d), convcalc's documented conventions for them, and the torch reference for convcalc's
Conv extensions. Imported by `test_torch_crosscheck` (which adds the strategies to its STRATEGIES and the
references to its REFERENCE_MODULES) and so by `test_executor_torch` too; not a test module itself.

`ReferenceConv1d/2d/3d` are torch.nn.ConvNd itself for PyTorch's spellings. For convcalc's own
(``padding: [[before, after], ...] | 'full' | 'tf_same'``, ``flip_kernel``, ``algorithm``) they are
written from the definitions, with torch doing the arithmetic: F.pad(padding_mode) with pads from the
formulas below, then the conv with padding 0 on torch.flip(weight) (flip_kernel); ``algorithm`` only
chooses how convcalc computes, so torch ignores it (the reference refuses 'winograd' where F(2, 3) cannot run:
3-tap kernels, stride 1, dilation 1, groups 1 only). Their signature is torch's plus those two names.

Conventions (convcalc refuses where a batch-1 torch run succeeds):

* ``padding`` is an int or exactly 2*dims values; torch passes a list of another length on to F.pad,
  which then pads fewer or more axes than the layer's name says;
* the batch is never padded: ZeroPad2d/ConstantPad2d on a batchless [L] pads torch's batch axis;
* a circular pad longer than what a negative pad on the same axis leaves: torch then copies between
  overlapping slices, which fails or returns uninitialised memory (CircularPad1d((-4, 1)) on 4 values).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from test_torch_crosscheck import Case, Strategy, rarely  # noqa: E402  (see the docstring)

FAMILIES = ("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad")
PAD_TYPES = {f"{family}{d}d" for family in FAMILIES for d in (1, 2, 3)}


def pairs(padding: Any, dims: int) -> list[tuple[int, int]]:
    """F.pad's flat order (last axis first) -> (lo, hi) per padded axis, first axis first (written here
    from torch's docs, independently of convcalc)."""
    flat = [padding] * (2 * dims) if isinstance(padding, int) else list(padding)
    return [(flat[2 * i], flat[2 * i + 1]) for i in reversed(range(dims))]


def _wraps_past_the_crop(shape, pads) -> bool:
    """A circular pad longer than what a negative pad on the same axis leaves (torch: overlapping copies)."""
    return any(max(lo, hi) > max(size + min(lo, 0) + min(hi, 0), 0) for size, (lo, hi) in zip(shape, pads))


def padding_convention(type_name: str, case: Case) -> str | None:
    """Why convcalc must refuse a padding-layer (or explicitly padded Conv) case that torch ran, else None."""
    padding = case.args.get("padding")
    shape = case.in_shapes[0]
    overlap = "torch's circular pad copies between overlapping slices (uninitialised memory)"
    if type_name in ("Conv1d", "Conv2d", "Conv3d"):
        circular = case.args.get("padding_mode") == "circular"
        if circular and explicit(padding) and _wraps_past_the_crop(shape[1:], padding):
            return overlap
        return None
    if type_name not in PAD_TYPES:
        return None
    dims = int(type_name[-2])
    if isinstance(padding, list) and len(padding) != 2 * dims:
        return f"padding has {len(padding)} values, not 2 per padded axis ({2 * dims})"
    if len(shape) < dims:
        return "torch pads the batch axis"
    if type_name.startswith("CircularPad") and _wraps_past_the_crop(shape[len(shape) - dims:], pairs(padding, dims)):
        return overlap
    return None


@st.composite
def pad_cases(draw, cls) -> Case:
    dims = cls.dims
    value = rarely(st.integers(0, 3), st.integers(-5, 5), 0.35)
    form = draw(rarely(st.sampled_from(["int", "list", "list"]), st.just("wrong"), 0.05))
    if form == "int":
        padding: Any = draw(value)
    else:
        length = 2 * dims if form == "list" else draw(st.sampled_from([1, 2, 3, 4, 6, 8]).filter(
            lambda n: n != 2 * dims))
        padding = draw(st.lists(value, min_size=length, max_size=length))
    args: dict[str, Any] = {"padding": padding}
    if "value" in cls.arguments and draw(rarely(st.just(True), st.just(False), 0.05)):
        args["value"] = draw(st.floats(-3, 3, allow_nan=False))
    rank = draw(rarely(st.sampled_from([dims + 1, dims + 1, dims]),
                       st.sampled_from([dims - 1, dims + 2]).filter(lambda r: r >= 1), 0.1))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    return Case(args, [shape])


PADDING_STRATEGIES: dict[str, Strategy] = {name: Strategy(pad_cases, 40) for name in PAD_TYPES}


# ============================================================================ Conv extensions

def explicit(padding: Any) -> bool:
    """[[before, after], ...] (lists or tuples): convcalc's explicit per-axis pads."""
    return isinstance(padding, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in padding)


def reference_pads(padding: Any, spatial, kernel, stride, dilation) -> list[tuple[int, int]]:
    """(before, after) per spatial axis for convcalc's spellings, from their definitions:
    'full' pads d(k-1) on each side (Dumoulin & Visin rel. 4); 'tf_same' is TensorFlow's documented rule
    (nn_ops.py "Notes on padding", semantics §4.1): pad_along = max(k_eff - s, 0) if i % s == 0 else
    max(k_eff - i % s, 0), pad_before = pad_along // 2."""
    pads = []
    for axis, (i, k, s, d) in enumerate(zip(spatial, kernel, stride, dilation)):
        k_eff = d * (k - 1) + 1
        if padding == "full":
            pads.append((k_eff - 1, k_eff - 1))
        elif padding == "tf_same":
            along = max(k_eff - s, 0) if i % s == 0 else max(k_eff - i % s, 0)
            pads.append((along // 2, along - along // 2))
        else:
            lo, hi = padding[axis]
            pads.append((lo, hi))
    return pads


def _reference_conv(dims: int) -> type[nn.Module]:
    base = getattr(nn, f"Conv{dims}d")

    class ReferenceConv(base):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     bias=True, padding_mode="zeros", device=None, dtype=None, flip_kernel=False, algorithm="auto"):
            own = padding in ("full", "tf_same") or explicit(padding)
            if explicit(padding) and (len(padding) != dims or any(len(pair) != 2 for pair in padding)):
                raise ValueError(f"explicit padding needs {dims} [before, after] pairs, got {padding}")
            if algorithm not in ("auto", "direct", "fft", "winograd") or not isinstance(flip_kernel, bool):
                raise ValueError(f"bad flip_kernel {flip_kernel!r} or algorithm {algorithm!r}")
            super().__init__(in_channels, out_channels, kernel_size, stride, 0 if own else padding, dilation,
                             groups, bias, "zeros" if own else padding_mode, device, dtype)
            if algorithm == "winograd" and (set(self.kernel_size) != {3} or set(self.stride) != {1}
                                            or set(self.dilation) != {1} or groups != 1):
                raise ValueError("Winograd's F(2, 3) runs 3-tap, stride-1, undilated, ungrouped convs only")
            self.own_padding = padding if own else None
            self.own_mode = padding_mode
            self.flip_kernel = flip_kernel

        def forward(self, x):
            weight = self.weight.flip(list(range(2, 2 + dims))) if self.flip_kernel else self.weight
            if self.own_padding is not None:
                pads = reference_pads(self.own_padding, x.shape[2:], self.kernel_size, self.stride, self.dilation)
                flat = [v for lo, hi in reversed(pads) for v in (lo, hi)]      # F.pad: last axis first
                mode = "constant" if self.own_mode == "zeros" else self.own_mode
                x = F.pad(x, flat, mode=mode)
            return self._conv_forward(x, weight, self.bias)

    theirs = inspect.signature(base.__init__)
    extra = [inspect.Parameter("flip_kernel", inspect.Parameter.KEYWORD_ONLY, default=False),
             inspect.Parameter("algorithm", inspect.Parameter.KEYWORD_ONLY, default="auto")]
    ReferenceConv.__init__.__signature__ = theirs.replace(parameters=[*theirs.parameters.values(), *extra])
    ReferenceConv.__name__ = ReferenceConv.__qualname__ = f"ReferenceConv{dims}d"
    return ReferenceConv


CONV_REFERENCES: dict[str, type[nn.Module]] = {f"Conv{d}d": _reference_conv(d) for d in (1, 2, 3)}


@st.composite
def explicit_pads(draw, dims: int) -> list[list[int]]:
    """[[before, after], ...]: mostly non-negative, sometimes a crop, rarely the wrong number of pairs."""
    value = rarely(st.integers(0, 3), st.integers(-3, -1), 0.15)
    count = draw(rarely(st.just(dims), st.sampled_from([dims + 1, max(dims - 1, 1)]), 0.05))
    return [[draw(value), draw(value)] for _ in range(count)]
