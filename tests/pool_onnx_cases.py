"""Cross-check strategies and torch reference modules for the pools with ONNX's arguments (issue 17): explicit
``[[before, after], ...]`` pads on MaxPool/MinPool/AvgPool/LPPool, ``dilation`` on AvgPool and LPPool, and
LPPool's ``abs`` (|x|^p, ONNX LpPool). Imported by `test_torch_crosscheck` (which adds them to its STRATEGIES and
REFERENCE_MODULES, after resample_cases' LPPool/MinPool entries) and so by the executor, backward and schema tests;
not a test module itself.

Where torch has the case (an int or per-axis padding, AvgPool/LPPool dilation 1, LPPool without ``abs`` and without
padding) the reference module IS torch.nn's module, with torch's refusals. Elsewhere it is `reference_pool`: the
pool written from torch primitives (F.pad with -inf or 0, ``Tensor.unfold`` windows sliced every d-th tap, sums,
F.max_pool on the padded input for the max, torch's LPPool expression), its output length the published formula
(semantics §3.4 / §5.2: floor or ceil, the last ceil_mode window starting before the after pad), its refusals
ONNX's (pads from 0 to kernel_size - 1: onnxruntime's "Pad should be smaller than kernel") and convcalc's one
convention (an average without count_include_pad over a window with no input tap). Torch autograd through it is
the gradient oracle of those cases. test_pool_onnx.py checks `reference_pool` itself against onnxruntime and
ONNX's reference evaluator, and against torch.nn where both apply.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import assume
from hypothesis import strategies as st
from torch import nn

from test_torch_crosscheck import Case, Strategy, per_axis, pool_cases, rarely  # noqa: E402
from resample_cases import lppool_cases  # noqa: E402

from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

KINDS = ("max", "min", "avg", "lp")


# ============================================================================ the reference

def _tuple(value: Any, dims: int) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * dims


def is_pairs(padding: Any) -> bool:
    """Explicit [[before, after], ...] pads (lists, or the tuples the cross-check turns lists into)."""
    return isinstance(padding, (list, tuple)) and any(isinstance(p, (list, tuple)) for p in padding)


def pad_pairs(padding: Any, dims: int) -> tuple[tuple[int, int], ...]:
    if is_pairs(padding):
        return tuple((int(lo), int(hi)) for lo, hi in padding)
    return tuple((p, p) for p in _tuple(padding, dims))


def out_length(i: int, k: int, s: int, d: int, lo: int, hi: int, ceil_mode: bool) -> int:
    """The published output length (torch Pool.h's pooling_output_shape_pad_lr; ONNX's shape inference):
    floor or ceil of (i + lo + hi - d(k-1) - 1)/s, plus 1; a last ceil_mode window starting at or past i + lo
    (in the after pad) is dropped."""
    span = i + lo + hi - d * (k - 1) - 1
    o = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= i + lo:
        o -= 1
    return o


def _padded_windows(x: torch.Tensor, k, s, d, pads, out, value: float, overhang: float) -> torch.Tensor:
    """(N, C, *out, *k): every window's taps of x padded by ``pads`` with ``value``, and past the after pad (the
    ceil_mode overhang) with ``overhang``."""
    dims = len(k)
    spatial = x.shape[2:]
    extra = [max(0, (o - 1) * st_ + dd * (kk - 1) + 1 - (i + lo + hi))
             for i, kk, st_, dd, (lo, hi), o in zip(spatial, k, s, d, pads, out)]
    flat = [v for (lo, hi) in reversed(pads) for v in (lo, hi)]
    xp = F.pad(x, flat, value=value)
    xp = F.pad(xp, [v for e in reversed(extra) for v in (0, e)], value=overhang)
    for axis in range(dims):
        xp = xp.unfold(2 + axis, d[axis] * (k[axis] - 1) + 1, s[axis])
    index = (slice(None), slice(None), *(slice(0, o) for o in out), *(slice(None, None, dd) for dd in d))
    return xp[index]


def reference_pool(kind: str, x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   count_include_pad=True, divisor_override=None, norm_type=2.0, abs=False,
                   torch_padding_rule: bool = False) -> torch.Tensor:
    """Pooling of x (N, C, *S) with explicit or symmetric pads, from torch primitives; ValueError where ONNX's
    rules or convcalc's conventions refuse (``torch_padding_rule``: an int padding keeps torch's limit, half the
    kernel size, as convcalc's MaxPool/AvgPool keep it)."""
    dims = x.dim() - 2
    k = _tuple(kernel_size, dims)
    if len(k) != dims or dims < 1:
        raise ValueError(f"a {len(k)}-axis kernel on a {x.dim()}-D input")
    s = _tuple(k if stride is None else stride, dims)
    d = _tuple(dilation, dims)
    pads = pad_pairs(padding, dims)
    if len(s) != dims or len(d) != dims or len(pads) != dims:
        raise ValueError("one value per spatial axis")
    if min(k) < 1 or min(s) < 1 or min(d) < 1:
        raise ValueError("kernel_size, stride and dilation must be positive")
    for kk, (lo, hi) in zip(k, pads):
        if min(lo, hi) < 0 or max(lo, hi) >= kk:
            raise ValueError("Pad should be smaller than kernel (and at least 0)")
        if torch_padding_rule and not is_pairs(padding) and lo > kk // 2:
            raise ValueError("pad should be at most half of kernel size")
    if divisor_override is not None and divisor_override < 1:
        raise ValueError("divisor must be not zero")
    out = [out_length(i, kk, ss, dd, lo, hi, ceil_mode) for i, kk, ss, dd, (lo, hi) in zip(x.shape[2:], k, s, d, pads)]
    if min(out) < 1:
        raise ValueError(f"empty output {out}")
    taps = tuple(range(-dims, 0))
    if kind == "min":
        return -reference_pool("max", -x, k, s, pads, d, ceil_mode)
    if kind == "max":
        windows = _padded_windows(x, k, s, d, pads, out, -math.inf, -math.inf)
        # the first maximum of each window in row-major order takes the gradient, as max_pool's: F.max_pool over
        # the windows flattened (a kernel of the whole window)
        flat = windows.reshape(*windows.shape[:2], -1, math.prod(k))                     # (N, C, P, K)
        pooled = F.max_pool1d(flat.reshape(-1, flat.shape[-2], flat.shape[-1]), flat.shape[-1])
        return pooled.reshape(*windows.shape[:2 + dims])
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype)
    if kind == "avg":
        total = _padded_windows(x, k, s, d, pads, out, 0.0, 0.0).sum(dim=taps)
        if divisor_override:
            return total / divisor_override
        counted = _padded_windows(ones, k, s, d, pads, out, 1.0 if count_include_pad else 0.0, 0.0).sum(dim=taps)
        if (counted == 0).any():
            raise ValueError("a window with no input tap (convcalc refuses its average without count_include_pad)")
        return total / counted
    # LPPool: torch's (sign(a) * relu(|a|) * prod(k)) ** (1/p), a = the average of x^p (|x|^p with abs) over the
    # window's taps in the padded input (the pads hold 0 and count; ceil_mode's overhang does not)
    p = float(norm_type)
    if p == 0:
        raise ValueError("norm_type 0")
    base = x.abs() if abs else x
    if math.isinf(p):
        magnitude = x.abs() if p > 0 else -x.abs()
        pooled = reference_pool("max", magnitude, k, s, pads, d, ceil_mode)
        return pooled if p > 0 else -pooled
    total = _padded_windows(base.pow(p), k, s, d, pads, out, 0.0, 0.0).sum(dim=taps)
    counted = _padded_windows(ones, k, s, d, pads, out, 1.0, 0.0).sum(dim=taps)
    average = total / counted
    return (torch.sign(average) * F.relu(average.abs())).mul(math.prod(k)).pow(1.0 / p)


# ============================================================================ the reference modules

def torch_has(padding: Any, dilation: Any = 1, extra: bool = False) -> bool:
    """Whether torch.nn's own module takes these arguments (an int or per-axis padding, no dilation where torch
    has none, no convcalc-only option)."""
    return not is_pairs(padding) and all(v == 1 for v in _tuple(dilation, 1)) and not extra


def _pool_module(kind: str, dims: int) -> type[nn.Module]:
    torch_name = {"max": f"MaxPool{dims}d", "min": f"MaxPool{dims}d", "avg": f"AvgPool{dims}d"}[kind]

    class Pool(nn.Module):
        def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
            super().__init__()
            self.args = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                             ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                             divisor_override=divisor_override)
            self.torch = None
            if torch_has(padding, dilation if kind == "avg" else 1):
                kwargs = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)
                if kind == "avg":
                    kwargs.update(count_include_pad=count_include_pad)
                    if dims > 1:
                        kwargs.update(divisor_override=divisor_override)
                else:
                    kwargs.update(dilation=dilation, return_indices=return_indices)
                self.torch = getattr(nn, torch_name)(**kwargs)

        def forward(self, x):
            if self.torch is not None:
                out = self.torch(-x if kind == "min" else x)
                out = out[0] if isinstance(out, tuple) else out
                return -out if kind == "min" else out
            if x.dim() != dims + 2:
                raise ValueError(f"a {dims}-D pool takes a {dims + 2}-D input")
            return reference_pool(kind, x, **self.args, torch_padding_rule=True)

    signature_of = {"max": ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
                    "min": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
                    "avg": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override",
                            "dilation")}[kind]
    if kind == "avg" and dims == 1:
        signature_of = tuple(n for n in signature_of if n != "divisor_override")
    _restrict_signature(Pool, signature_of)
    Pool.__name__ = Pool.__qualname__ = {"max": "MaxPool", "min": "MinPool", "avg": "AvgPool"}[kind] + f"{dims}d"
    return Pool


def _lp_module(dims: int) -> type[nn.Module]:
    class LPPool(nn.Module):
        def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, padding=0, dilation=1, abs=False):
            super().__init__()
            self.args = dict(norm_type=norm_type, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode,
                             padding=padding, dilation=dilation, abs=abs)
            plain = not is_pairs(padding) and not any(_tuple(padding, dims))
            self.torch = None
            if plain and torch_has(0, dilation, abs):
                self.torch = getattr(nn, f"LPPool{dims}d")(norm_type, kernel_size, stride, ceil_mode)

        def forward(self, x):
            if self.torch is not None:
                return self.torch(x)
            if x.dim() != dims + 2:
                raise ValueError(f"a {dims}-D pool takes a {dims + 2}-D input")
            args = dict(self.args)
            if dims == 1 and isinstance(args["kernel_size"], (list, tuple)) and not math.isinf(args["norm_type"]):
                raise ValueError("LPPool1d multiplies by kernel_size, which a list cannot do")   # torch's refusal
            return reference_pool("lp", x, **args)

    LPPool.__name__ = LPPool.__qualname__ = f"LPPool{dims}d"
    return LPPool


def _restrict_signature(cls: type, names: Sequence[str]) -> None:
    """The constructor's visible signature: the type's own argument names (the cross-check compares them)."""
    import inspect
    full = inspect.signature(cls.__init__)
    keep = [full.parameters["self"], *(full.parameters[n] for n in names)]
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)

    __init__.__signature__ = full.replace(parameters=keep)
    cls.__init__ = __init__


# ============================================================================ strategies

@st.composite
def explicit_pool_pads(draw, dims: int, kernel: Any) -> list[list[int]]:
    """[[before, after], ...]: symmetric within torch's kernel_size // 2 (torch's case), or up to the kernel size
    (ONNX's; kernel_size itself is refused), now and then negative."""
    k = _tuple(kernel, dims) if len(_tuple(kernel, dims)) == dims else (2,) * dims
    pads = []
    for kk in k:
        kk = max(kk, 1)
        if draw(st.booleans()):
            p = draw(st.integers(0, kk // 2))
            pads.append([p, p])
        else:
            pads.append([draw(rarely(st.integers(0, kk - 1), st.integers(-1, kk), 0.08)) for _ in range(2)])
    return pads


@st.composite
def onnx_pool_cases(draw, cls) -> Case:
    """pool_cases, with padding now and then as [[before, after], ...] and (AvgPool) a dilation."""
    case = draw(pool_cases(cls))
    args = dict(case.args)
    dims = cls.dims
    if draw(st.integers(0, 2)) == 0:
        args["padding"] = draw(explicit_pool_pads(dims, args["kernel_size"]))
    if cls.type_name.startswith("AvgPool") and draw(st.integers(0, 2)) == 0:
        args["dilation"] = draw(per_axis(dims, rarely(st.integers(1, 3), st.just(0), 0.03)))
    return Case(args, case.in_shapes)


@st.composite
def onnx_lppool_cases(draw, cls) -> Case:
    """lppool_cases, with now and then padding (int, per axis or pairs), dilation and abs."""
    case = draw(lppool_cases(cls))
    args = dict(case.args)
    dims = cls.dims
    if draw(st.integers(0, 2)) == 0:
        kernel = args["kernel_size"]
        args["padding"] = draw(st.one_of(explicit_pool_pads(dims, kernel), per_axis(dims, st.integers(0, 2))))
    if draw(st.integers(0, 2)) == 0:
        args["dilation"] = draw(per_axis(dims, rarely(st.integers(1, 3), st.just(0), 0.03)))
    if draw(st.booleans()):
        args["abs"] = draw(st.booleans())
    return Case(args, case.in_shapes)


POOL_ONNX_STRATEGIES: dict[str, Strategy] = {
    **{f"MaxPool{d}d": Strategy(onnx_pool_cases, 300) for d in (1, 2, 3)},
    **{f"AvgPool{d}d": Strategy(onnx_pool_cases, 300) for d in (1, 2, 3)},
    **{f"MinPool{d}d": Strategy(onnx_pool_cases, 100) for d in (1, 2, 3)},
    **{f"LPPool{d}d": Strategy(onnx_lppool_cases, 200) for d in (1, 2, 3)},
}

POOL_ONNX_MODULES: dict[str, type[nn.Module]] = {
    **{f"MaxPool{d}d": _pool_module("max", d) for d in (1, 2, 3)},
    **{f"MinPool{d}d": _pool_module("min", d) for d in (1, 2, 3)},
    **{f"AvgPool{d}d": _pool_module("avg", d) for d in (1, 2, 3)},
    **{f"LPPool{d}d": _lp_module(d) for d in (1, 2, 3)},
}


# ============================================================================ ONNX-attribute cases (test_pool_onnx.py)

@st.composite
def onnx_cases(draw, kind: str, dims: int | None = None, ceil: bool | None = None) -> dict:
    """ONNX pooling attributes that onnxruntime accepts (pads below the kernel) and an input size with a
    non-empty output; float32-representable input values."""
    dims = dims or draw(st.integers(1, 3))
    top = {1: 9, 2: 7, 3: 5}[dims]
    a: dict[str, Any] = {"k": [draw(st.integers(1, 4)) for _ in range(dims)]}
    a["s"] = [draw(st.integers(1, 3)) for _ in range(dims)]
    a["d"] = [draw(st.integers(1, 3)) for _ in range(dims)]
    a["pads"] = [(draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in a["k"]]
    a["ceil"] = draw(st.booleans()) if ceil is None else ceil
    a["cip"] = draw(st.booleans())
    a["p"] = draw(st.sampled_from([1, 2, 3]))
    a["shape"] = [draw(st.integers(1, 3)), *(draw(st.integers(1, top)) for _ in range(dims))]
    lengths = [out_length(i, k, s, d, lo, hi, a["ceil"])
               for i, k, s, d, (lo, hi) in zip(a["shape"][1:], a["k"], a["s"], a["d"], a["pads"])]
    assume(min(lengths) >= 1)
    a["seed"] = draw(st.integers(0, 2**31 - 1))
    return a


def random_input(a: dict, batch: int = 2) -> np.ndarray:
    x = np.random.default_rng(a["seed"]).standard_normal((batch, *a["shape"]))
    return x.astype(np.float32).astype(np.float64)


def has_empty_window(a: dict) -> bool:
    """Some output window has no tap in the input (possible with dilation only)."""
    for i, k, s, d, (lo, hi) in zip(a["shape"][1:], a["k"], a["s"], a["d"], a["pads"]):
        for j in range(out_length(i, k, s, d, lo, hi, a["ceil"])):
            if not any(0 <= j * s - lo + m * d < i for m in range(k)):
                return True
    return False


def reference_shifts(a: dict) -> bool:
    """ONNX's reference evaluator pads ceil_mode's overhang e as e // 2 before and the rest after the input,
    shifting every window when e >= 2 (op_pool_common.get_output_shape_explicit_padding)."""
    for i, k, s, d, (lo, hi) in zip(a["shape"][1:], a["k"], a["s"], a["d"], a["pads"]):
        o = out_length(i, k, s, d, lo, hi, a["ceil"])
        if (o - 1) * s + d * (k - 1) + 1 - (i + lo + hi) >= 2:
            return True
    return False


def convcalc_args(kind: str, a: dict) -> tuple[str, dict]:
    dims = len(a["k"])
    args: dict[str, Any] = {"kernel_size": list(a["k"]), "stride": list(a["s"]),
                            "padding": [list(p) for p in a["pads"]], "ceil_mode": a["ceil"]}
    if kind == "avg":
        args.update(dilation=list(a["d"]), count_include_pad=a["cip"])
        return f"AvgPool{dims}d", args
    if kind == "max":
        return f"MaxPool{dims}d", {**args, "dilation": list(a["d"])}
    kernel = a["k"][0] if dims == 1 else list(a["k"])
    return f"LPPool{dims}d", {**args, "kernel_size": kernel, "dilation": list(a["d"]), "norm_type": a["p"],
                              "abs": True}


def run_convcalc(type_name: str, args: dict, x: np.ndarray) -> np.ndarray:
    """convcalc's analyzer shape and executor forward on an (N, C, *S) array, returned as (N, C, *S)."""
    layer = lookup(type_name).from_args(args)
    inferred = layer.infer([tuple(x.shape[1:])])
    prepared = layer.prepare({}, [tuple(x.shape[1:])], inferred.out_shape, x.dtype)
    y = np.asarray(to_logical(layer.forward([to_storage(x)], prepared, MacCounter())))
    assert y.shape[1:] == inferred.out_shape
    return y


def run_reference(kind: str, a: dict, x: np.ndarray) -> np.ndarray:
    """`reference_pool` (torch primitives, float64) of a drawn case."""
    extra = {"count_include_pad": a["cip"]} if kind == "avg" else {}
    if kind == "lp":
        extra = {"norm_type": a["p"], "abs": True}
    with torch.no_grad():
        return reference_pool(kind, torch.from_numpy(x), a["k"], a["s"], a["pads"], a["d"], a["ceil"],
                              **extra).numpy()
