"""Pools with ONNX's arguments that torch lacks (issue 17): ``[[before, after], ...]`` pads, AvgPool/LPPool
``dilation``, LPPool ``abs`` (|x|^p), against independent oracles.

* onnxruntime (CPU, opset 22, float32): AveragePool (count_include_pad 0 and 1, dilations, pads, ceil_mode),
  MaxPool, LpPool: output shapes and values of convcalc and of `pool_onnx_cases.reference_pool` (the torch-primitive
  pool that the registry-wide executor/backward cross-checks use as the torch reference of these cases), and
  onnxruntime's refusals (a pad not smaller than the kernel);
* ONNX's reference evaluator (`onnx.reference.ReferenceEvaluator`, float64) for AveragePool and LpPool, where its
  ceil_mode padding does not shift the windows (it puts half the overhang before the input when it is 2 or more:
  `test_reference_evaluator_shifts_ceil_mode_windows` pins that against torch and onnxruntime); its MaxPool is not
  used (wrong shapes with pads at stride 1, found here);
* torch.nn where it has the case: symmetric pairs within kernel_size // 2 are torch's int padding;
* backward: torch autograd through `reference_pool` (float64) and central finite differences (float64, a
  different oracle: no torch);
* receptive fields: per unit against autograd support (test_receptive_exact's `check_regions`), a dilated pool
  reading dilated taps.

Versions (pyproject's floors): onnxruntime before 1.25 leaves 2-D/3-D after-pads out of count_include_pad's divisor
(1.24.1: AveragePool k=2 on one cell padded after gives 1, not 0.5); ONNX 1.17's reference evaluator lacks ceil_mode's
last-window rule.

Conventions (documented in README and convcalc/layers/pool.py): a partial ceil_mode LpPool window keeps torch's
scaling (the reference evaluator's too; onnxruntime returns the plain norm: pinned in
`test_lppool_ceil_mode_partial_window_keeps_torchs_scaling`); an average without count_include_pad over a window
with no input tap is refused (reference evaluator NaN, onnxruntime 0).
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_torch_crosscheck  # noqa: E402,F401  (first: it imports pool_onnx_cases and adds its strategies)
from pool_onnx_cases import (convcalc_args, has_empty_window, onnx_cases, out_length, random_input,  # noqa: E402
                             reference_pool, reference_shifts, run_convcalc, run_reference)
from test_receptive_exact import check_regions  # noqa: E402
from test_receptive_field import positive_input  # noqa: E402

import convcalc  # noqa: E402
from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

torch.set_num_threads(1)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
OPS = {"avg": "AveragePool", "max": "MaxPool", "lp": "LpPool"}


# ============================================================================ the three implementations

def onnx_model(op: str, dtype: int, **attributes) -> bytes:
    x = helper.make_tensor_value_info("x", dtype, None)
    y = helper.make_tensor_value_info("y", dtype, None)
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attributes)], "pool", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10          # onnx 1.16's: every onnxruntime with opset 22 pools loads it
    return model


def attributes(kind: str, a: dict) -> dict:
    """ONNX attributes of a drawn case: pads as [x1_begin, x2_begin, ..., x1_end, x2_end, ...]."""
    pads = a["pads"]
    out = dict(kernel_shape=a["k"], strides=a["s"], dilations=a["d"], ceil_mode=int(a["ceil"]),
               pads=[lo for lo, _ in pads] + [hi for _, hi in pads])
    if kind == "avg":
        out["count_include_pad"] = int(a["cip"])
    if kind == "lp":
        out["p"] = a["p"]
    return out


def run_ort(kind: str, a: dict, x: np.ndarray) -> np.ndarray:
    model = onnx_model(OPS[kind], TensorProto.FLOAT, **attributes(kind, a))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0]


def run_onnx_reference(kind: str, a: dict, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ReferenceEvaluator(onnx_model(OPS[kind], TensorProto.DOUBLE, **attributes(kind, a))).run(
            None, {"x": x})[0]


def close(ours: np.ndarray, theirs: np.ndarray, tolerance: float, where: str) -> None:
    assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != {theirs.shape}"
    scale = max(1.0, float(np.abs(theirs[np.isfinite(theirs)]).max(initial=0.0)))
    assert np.array_equal(np.isfinite(ours), np.isfinite(theirs)), f"{where}: non-finite values differ"
    finite = np.isfinite(theirs)
    error = np.abs(ours[finite] - theirs[finite]).max(initial=0.0)
    assert error <= tolerance * scale, f"{where}: max error {error:.3e}\nours {ours}\ntheirs {theirs}"


# ============================================================================ forward against onnxruntime

@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
@settings(max_examples=120, **SETTINGS)
@given(data=st.data())
def test_forward_matches_onnxruntime(kind: str, data) -> None:
    """Shapes and values of convcalc and of the torch-primitive reference against onnxruntime (float32), over
    random kernels, strides, dilations, [before, after] pads below the kernel and ceil_mode (LpPool: floor mode;
    a partial ceil_mode window is the one place convcalc follows torch, not onnxruntime)."""
    a = data.draw(onnx_cases(kind, ceil=False if kind == "lp" else None))
    if kind == "avg" and not a["cip"]:
        assume(not has_empty_window(a))     # refused by convcalc (onnxruntime 0, the reference evaluator NaN)
    if kind == "max":
        assume(not has_empty_window(a))     # -inf here as torch's max_pool; onnxruntime gives -FLT_MAX
    x = random_input(a)
    theirs = run_ort(kind, a, x).astype(np.float64)
    type_name, args = convcalc_args(kind, a)
    where = f"{type_name} {args} on {a['shape']}"
    close(run_convcalc(type_name, args, x), theirs, 2e-6, where)
    close(run_reference(kind, a, x), theirs, 2e-6, f"reference_pool: {where}")


@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
def test_pads_not_smaller_than_the_kernel_are_refused_as_onnxruntime_refuses_them(kind: str) -> None:
    a = {"k": [3], "s": [1], "d": [1], "pads": [(3, 0)], "ceil": False, "cip": False, "p": 2, "shape": [1, 6],
         "seed": 0}
    with pytest.raises(Exception, match="Pad should be smaller than kernel"):
        run_ort(kind, a, random_input(a))
    type_name, args = convcalc_args(kind, a)
    with pytest.raises(LayerArgError, match="smaller than the kernel size 3") as info:
        lookup(type_name).from_args(args)
    assert info.value.arg == "padding"
    a["pads"] = [(2, 2)]      # the largest pads it takes
    close(run_convcalc(type_name, convcalc_args(kind, a)[1], random_input(a)),
          run_ort(kind, a, random_input(a)).astype(np.float64), 2e-6, f"{type_name} pads (2, 2)")


# ============================================================================ the reference evaluator

@pytest.mark.parametrize("kind", ["avg", "lp"])
@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_forward_matches_onnx_reference_evaluator(kind: str, data) -> None:
    """float64 against ONNX's reference implementation (op_pool_common.pool), ceil_mode included (LpPool's
    partial windows scaled as torch's, there too), where its overhang padding does not shift the windows."""
    a = data.draw(onnx_cases(kind))
    assume(not reference_shifts(a))
    if kind == "avg" and not a["cip"]:
        assume(not has_empty_window(a))
    x = random_input(a)
    theirs = run_onnx_reference(kind, a, x)
    type_name, args = convcalc_args(kind, a)
    close(run_convcalc(type_name, args, x), theirs, 1e-12, f"{type_name} {args} on {a['shape']}")


def test_reference_evaluator_shifts_ceil_mode_windows() -> None:
    """Why the reference evaluator is left out where the ceil_mode overhang is 2 or more: AvgPool1d(k=4, s=3,
    ceil) on [1..5] reads [1, 2, 3, 4] and [4, 5] (torch and onnxruntime: 2.5, 4.5); the reference evaluator pads
    one cell before the input and answers 2, 3.5."""
    a = {"k": [4], "s": [3], "d": [1], "pads": [(0, 0)], "ceil": True, "cip": False, "p": 2, "shape": [1, 5]}
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)
    assert reference_shifts(a)
    torch_y = torch.nn.functional.avg_pool1d(torch.from_numpy(x), 4, 3, ceil_mode=True,
                                             count_include_pad=False).numpy()
    np.testing.assert_array_equal(torch_y, [[[2.5, 4.5]]])
    np.testing.assert_array_equal(run_ort("avg", a, x), [[[2.5, 4.5]]])
    np.testing.assert_array_equal(run_onnx_reference("avg", a, x), [[[2.0, 3.5]]])
    np.testing.assert_array_equal(run_convcalc("AvgPool1d", convcalc_args("avg", a)[1], x), [[[2.5, 4.5]]])


def test_lppool_ceil_mode_partial_window_keeps_torchs_scaling() -> None:
    """p=1, k=2, s=2, ceil on [1, 2, 3, 4, 5]: torch's LPPool1d and ONNX's reference evaluator scale the partial last
    window [5] by k / 1 (10); onnxruntime returns its plain norm (5). convcalc keeps torch's, with abs too."""
    a = {"k": [2], "s": [2], "d": [1], "pads": [(0, 0)], "ceil": True, "cip": False, "p": 1, "shape": [1, 5]}
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)
    expected = [[[3.0, 7.0, 10.0]]]
    np.testing.assert_allclose(torch.nn.LPPool1d(1, 2, ceil_mode=True)(torch.from_numpy(x)).numpy(), expected)
    np.testing.assert_allclose(run_onnx_reference("lp", a, x), expected)
    np.testing.assert_allclose(run_ort("lp", a, x), [[[3.0, 7.0, 5.0]]])
    np.testing.assert_allclose(run_convcalc("LPPool1d", convcalc_args("lp", a)[1], x), expected)


def test_empty_average_windows_are_refused() -> None:
    """k=2, d=2, pads (1, 0), s=3, ceil on a 1-wide input: the only window's taps are -1 and 1, both outside.
    onnxruntime answers 0 and the reference evaluator NaN without count_include_pad; convcalc refuses, and
    averages the pads with count_include_pad (0 / 1 = 0, as both ONNX implementations)."""
    a = {"k": [2], "s": [3], "d": [2], "pads": [(1, 0)], "ceil": True, "cip": False, "p": 2, "shape": [1, 1]}
    x = np.full((1, 1, 1), 0.5)
    np.testing.assert_array_equal(run_ort("avg", a, x), [[[0.0]]])
    assert np.isnan(run_onnx_reference("avg", a, x)).all()
    with pytest.raises(LayerArgError, match="averages no input cell") as info:
        run_convcalc("AvgPool1d", convcalc_args("avg", a)[1], x)
    assert "[-1, 1]" in info.value.message
    a["cip"] = True
    np.testing.assert_array_equal(run_convcalc("AvgPool1d", convcalc_args("avg", a)[1], x), [[[0.0]]])
    np.testing.assert_array_equal(run_ort("avg", a, x), [[[0.0]]])


def test_max_window_without_input_taps_is_minus_inf_as_torchs() -> None:
    """k=2, d=3, pads (1, 1) on 2 cells: window 0 reads -1 and 2, both outside. torch's own dilated max_pool1d
    (padding 1) gives -inf there, and so does convcalc with [[1, 1]] pads; onnxruntime gives -FLT_MAX."""
    x = np.array([[[0.5, -0.25]]])
    with torch.no_grad():
        theirs = torch.nn.functional.max_pool1d(torch.from_numpy(x), 2, 2, 1, 3, ceil_mode=True).numpy()
    assert theirs[0, 0, 0] == -np.inf
    a = {"k": [2], "s": [2], "d": [3], "pads": [(1, 1)], "ceil": True, "cip": False, "p": 2, "shape": [1, 2]}
    assert has_empty_window(a)
    np.testing.assert_array_equal(run_convcalc("MaxPool1d", convcalc_args("max", a)[1], x), theirs)
    assert run_ort("max", a, x)[0, 0, 0] == np.finfo(np.float32).min


# ============================================================================ torch where it has the case

@pytest.mark.parametrize("type_name", ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
                                       "MinPool2d"])
@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_symmetric_pairs_are_torchs_int_padding(type_name: str, data) -> None:
    dims = int(type_name[-2])
    kernel = [data.draw(st.integers(1, 4)) for _ in range(dims)]
    padding = [data.draw(st.integers(0, k // 2)) for k in kernel]
    args = {"kernel_size": kernel, "stride": [data.draw(st.integers(1, 3)) for _ in range(dims)],
            "ceil_mode": data.draw(st.booleans())}
    if type_name.startswith(("Max", "Min")):
        args["dilation"] = [data.draw(st.integers(1, 2)) for _ in range(dims)]
    else:
        args["count_include_pad"] = data.draw(st.booleans())
    shape = [2, *(data.draw(st.integers(max(kernel) if type_name == "AvgPool3d" else 1, 7)) for _ in range(dims))]
    try:
        expected = run_convcalc(type_name, {**args, "padding": padding}, np.random.default_rng(0).standard_normal(
            (1, *shape)))
    except LayerArgError:
        assume(False)
    x = np.random.default_rng(1).standard_normal((2, *shape))
    torch_name = type_name.replace("Min", "Max")
    module = getattr(torch.nn, torch_name)(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()},
                                           padding=tuple(padding))
    sign = -1 if type_name.startswith("Min") else 1
    with torch.no_grad():
        theirs = sign * module(torch.from_numpy(sign * x)).numpy()
    ours = run_convcalc(type_name, {**args, "padding": [[p, p] for p in padding]}, x)
    assert expected.shape[1:] == ours.shape[1:]
    close(ours, theirs, 1e-12, f"{type_name} {args} padding {padding} on {shape}")


def test_avgpool_dilation_1_is_torchs() -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 6))
    args = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}
    with torch.no_grad():
        theirs = torch.nn.AvgPool2d(**args)(torch.from_numpy(x)).numpy()
    close(run_convcalc("AvgPool2d", {**args, "dilation": 1}, x), theirs, 1e-15, "AvgPool2d dilation 1")


def test_lppool_abs_pools_absolute_values_and_default_is_torchs() -> None:
    """abs: |x|^p (ONNX LpPool, onnxruntime's values); the default x^p is torch's (NaN for a negative x at a
    fractional p, negative sums for odd p)."""
    x = np.random.default_rng(3).standard_normal((1, 2, 8)).astype(np.float32).astype(np.float64)
    a = {"k": [2], "s": [2], "d": [1], "pads": [(0, 0)], "ceil": False, "cip": False, "p": 3, "shape": [2, 8]}
    close(run_convcalc("LPPool1d", {"norm_type": 3, "kernel_size": 2, "abs": True}, x),
          run_ort("lp", a, x).astype(np.float64), 2e-6, "LPPool1d abs p=3")
    for p in (3, 1.5):
        with torch.no_grad():
            theirs = torch.nn.LPPool1d(p, 2)(torch.from_numpy(x)).numpy()
        with np.errstate(invalid="ignore"):
            ours = run_convcalc("LPPool1d", {"norm_type": p, "kernel_size": 2}, x)
        assert np.array_equal(np.isnan(ours), np.isnan(theirs))
        close(ours, theirs, 1e-12, f"LPPool1d p={p} (torch's x^p)")


# ============================================================================ backward

def new_cases(kind: str):
    """Random ONNX-only cases (asymmetric or wide pads, dilation) as (type name, args, x)."""
    return onnx_cases(kind).filter(lambda a: not (kind != "lp" and has_empty_window(a)))


def convcalc_backward(type_name: str, args: dict, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
    layer = lookup(type_name).from_args(args)
    in_shape = tuple(x.shape[1:])
    inferred = layer.infer([in_shape])
    prepared = layer.prepare({}, [in_shape], inferred.out_shape, x.dtype)
    stored = to_storage(x)
    y = layer.forward([stored], prepared, MacCounter())
    return np.asarray(to_logical(layer.backward([stored], y, to_storage(grad), prepared)[0]))


@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_backward_matches_torch_autograd_through_the_reference(kind: str, data) -> None:
    a = data.draw(new_cases(kind))
    x = random_input(a)
    if kind == "lp":
        x = x + np.sign(x) * 0.05           # away from |x| = 0, where |x|^p has a kink
    type_name, args = convcalc_args(kind, a)
    tx = torch.from_numpy(x).requires_grad_(True)
    extra = {"avg": {"count_include_pad": a["cip"]}, "max": {}, "lp": {"norm_type": a["p"], "abs": True}}[kind]
    y = reference_pool(kind, tx, a["k"], a["s"], a["pads"], a["d"], a["ceil"], **extra)
    grad = np.random.default_rng(a["seed"] + 1).standard_normal(tuple(y.shape))
    (theirs,) = torch.autograd.grad(y, tx, torch.from_numpy(grad))
    ours = convcalc_backward(type_name, args, x, grad)
    close(ours, theirs.numpy(), 1e-10, f"{type_name} {args} on {a['shape']}")


@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
@settings(max_examples=25, **SETTINGS)
@given(data=st.data())
def test_backward_matches_finite_differences(kind: str, data) -> None:
    """Central differences of convcalc's own forward (float64, h = 1e-6), an oracle without torch: <g, dy/dx>
    along a random direction equals (f(x + hv) - f(x - hv)) / 2h."""
    a = data.draw(new_cases(kind))
    x = random_input(a, batch=1)
    if kind == "max":
        x = x + np.arange(x.size).reshape(x.shape) * 1e-3     # distinct values: no tie within h
    if kind == "lp":
        x = x + np.sign(x) * 0.05
    type_name, args = convcalc_args(kind, a)
    rng = np.random.default_rng(a["seed"] + 2)
    y = run_convcalc(type_name, args, x)
    grad = rng.standard_normal(y.shape)
    direction = rng.standard_normal(x.shape)
    h = 1e-6
    numeric = (np.sum(grad * run_convcalc(type_name, args, x + h * direction))
               - np.sum(grad * run_convcalc(type_name, args, x - h * direction))) / (2 * h)
    analytic = np.sum(convcalc_backward(type_name, args, x, grad) * direction)
    assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (type_name, args, numeric, analytic)


# ============================================================================ receptive fields

@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_receptive_fields_match_autograd_support(kind: str, data) -> None:
    """Per unit (borders included), convcalc's field against the gradient support of the same pool (the max's
    windows as a sum's, as test_receptive_field's oracle: any tap can hold the maximum) on a positive input."""
    a = data.draw(onnx_cases(kind, dims=data.draw(st.integers(1, 2))))
    a["shape"] = [1, *(max(n, 2) for n in a["shape"][1:])]
    lengths = [out_length(i, k, s, d, lo, hi, a["ceil"])
               for i, k, s, d, (lo, hi) in zip(a["shape"][1:], a["k"], a["s"], a["d"], a["pads"])]
    assume(min(lengths) >= 1)
    if kind == "avg":
        a["cip"] = True
    type_name, args = convcalc_args(kind, a)
    spec = {"name": "t", "input": a["shape"], "layers": [{"type": type_name, **args}]}
    summary = convcalc.analyze(convcalc.spec_from_dict(spec))
    x = positive_input(a["shape"])
    extra = {"norm_type": a["p"], "abs": True} if kind == "lp" else {"count_include_pad": True}
    y = reference_pool("lp" if kind == "lp" else "avg", x, a["k"], a["s"], a["pads"], a["d"], a["ceil"], **extra)
    assert tuple(y.shape[1:]) == tuple(summary.layers[0].output_shape)
    check_regions(y, x, summary.layers[0].rf, f"{type_name} {args} on {a['shape']}")


def test_dilated_average_reads_dilated_taps() -> None:
    """AvgPool1d(k=3, d=2, pads [2, 1]) on 9 cells: 9 + 3 - 5 + 1 = 8 units; unit 2 reads cells 0, 2, 4 (size 5,
    stride 1, padding 2), unit 0 taps -2, 0, 2 (extent 0..2), unit 7 taps 5, 7, 9 (9 is the after pad)."""
    spec = {"name": "t", "input": [1, 9],
            "layers": [{"type": "AvgPool1d", "kernel_size": 3, "stride": 1, "dilation": 2, "padding": [[2, 1]]}]}
    row = convcalc.analyze(convcalc.spec_from_dict(spec)).layers[0]
    assert row.output_shape == (1, 8)
    axis = row.rf.axes[0]
    assert (axis.size, axis.stride, axis.padding) == (5, 1, 2)
    assert row.rf.extent([2]) == ((0, 4),)
    assert row.rf.extent([0]) == ((0, 2),)
    assert row.rf.region([7]) == ((5, 9),) and row.rf.extent([7]) == ((5, 7),)


# ============================================================================ arguments and the spec language

@pytest.mark.parametrize("padding, message", [
    ([[1, -1]], "at least 0"),
    ([[1, 1], [0, 0]], "list of 1 [before, after] pair"),
    ([[1, 2, 3]], "list of 1 [before, after] pair"),
    ("same", "'tf_same'"),
])
def test_bad_explicit_pads_are_refused(padding: Any, message: str) -> None:
    with pytest.raises(LayerArgError, match=message.replace("[", r"\[").replace("]", r"\]")):
        lookup("MaxPool1d").from_args({"kernel_size": 3, "padding": padding})


def test_lppool_refuses_tf_same_and_keeps_torchs_list_kernel_rule() -> None:
    with pytest.raises(LayerArgError, match="got the string 'tf_same'"):
        lookup("LPPool2d").from_args({"norm_type": 2, "kernel_size": 2, "padding": "tf_same"})
    with pytest.raises(LayerArgError, match="must be an integer with a finite norm_type"):
        lookup("LPPool1d").from_args({"norm_type": 2, "kernel_size": [2], "abs": True})


def test_int_padding_keeps_torchs_limit_and_pairs_take_onnxs() -> None:
    with pytest.raises(LayerArgError, match="more than half the kernel size"):
        lookup("AvgPool1d").from_args({"kernel_size": 3, "padding": 2, "dilation": 2})
    layer = lookup("AvgPool1d").from_args({"kernel_size": 3, "stride": 1, "padding": [[2, 2]], "dilation": 2})
    assert layer.infer([(1, 5)]).out_shape == (1, 5)         # 5 + 4 - 5 + 1
    # LPPool has no torch padding: an int padding is ONNX's symmetric pads (below the kernel size)
    assert lookup("LPPool1d").from_args({"norm_type": 2, "kernel_size": 3, "padding": 2}).infer(
        [(1, 5)]).out_shape == (1, 3)


def test_spec_schema_accepts_pairs_dilation_and_abs() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from convcalc.spec.schema import spec_schema
    spec = {"input": [3, 16, 16], "layers": [
        {"type": "AvgPool2d", "kernel_size": 3, "padding": [[2, 0], [1, 1]], "dilation": 2,
         "count_include_pad": False},
        {"type": "MaxPool2d", "kernel_size": 2, "padding": [[1, 0], [0, 1]], "ceil_mode": True},
        {"type": "LPPool2d", "norm_type": 2, "kernel_size": 2, "padding": [[1, 0], [0, 1]], "abs": True}]}
    assert list(jsonschema.Draft7Validator(spec_schema()).iter_errors(spec)) == []
    bad = {"input": [3, 16, 16], "layers": [{"type": "MaxPool2d", "kernel_size": 2, "padding": [[-1, 0], [0, 0]]}]}
    assert list(jsonschema.Draft7Validator(spec_schema()).iter_errors(bad)) != []
    summary = convcalc.analyze(convcalc.spec_from_dict({"name": "t", **spec}))
    # stride = kernel: (16 + 2 - 5) // 3 + 1 = 5 both ways; ceil((5 + 1 - 2) / 2) + 1 = 3; (3 + 1 - 2) // 2 + 1 = 2
    assert [row.output_shape for row in summary.layers] == [(3, 5, 5), (3, 3, 3), (3, 2, 2)]


def test_lppool_with_padding_is_the_exact_norm_of_full_windows() -> None:
    """Zero pads count in the window (ONNX's reference: pads of 0, averaged, times the kernel size), so a full
    window is the plain p-norm of its input cells: [[1, 1]] pads on [3, 4] with k=2, p=2 give 3, 5, 4."""
    x = np.array([[[3.0, 4.0]]])
    ours = run_convcalc("LPPool1d", {"norm_type": 2, "kernel_size": 2, "stride": 1, "padding": [[1, 1]]}, x)
    np.testing.assert_allclose(ours, [[[3.0, 5.0, 4.0]]], rtol=1e-15)
    a = {"k": [2], "s": [1], "d": [1], "pads": [(1, 1)], "ceil": False, "cip": False, "p": 2, "shape": [1, 2]}
    np.testing.assert_allclose(run_onnx_reference("lp", a, x), [[[3.0, 5.0, 4.0]]], rtol=1e-15)
    assert math.isclose(float(run_ort("lp", a, x)[0, 0, 1]), 5.0, rel_tol=1e-6)


def test_maxunpool_refuses_a_pool_with_explicit_pads():
    """MaxUnpool's sizes assume torch's symmetric integer padding: naming a pool with [before, after] pads is one
    clear error (it used to be a TypeError traceback), as for 'tf_same'."""
    spec = convcalc.parse_spec("input: [1, 8, 8]\nlayers:\n"
                               "  - {name: p, type: MaxPool2d, kernel_size: 3, stride: 2, padding: [[0, 1], [1, 0]]}\n"
                               "  - {type: MaxUnpool2d, kernel_size: 3, stride: 2, pool: p}\n", "net.yaml")
    with pytest.raises(convcalc.ConvcalcError) as info:
        convcalc.analyze(convcalc.build_graph(spec))
    assert str(info.value) == ("net.yaml:4:52: layer 'maxunpool2d_1' (MaxUnpool2d): pool names a MaxPool with"
                               " [before, after] pads, which PyTorch's MaxUnpool cannot invert (its sizes assume a"
                               " symmetric integer padding)")
