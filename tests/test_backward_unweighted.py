"""The unweighted units' backward (pools, resampling, padding, unpooling, activations, merges) where the general
harness (tests/test_backward_torch.py: standard-normal inputs, a few draws per type) does not reach.

Oracle: torch 2.13 autograd on the same float64 inputs and cotangent, within ``1e-9 * max(1, max|grad|)``
(`test_executor_torch.assert_close`: NaN and infinities must match exactly).

* ties and NaN (`test_routing_with_ties_and_nan_matches_torch`): small-integer inputs make every window hold
  equal maxima; torch routes a max pool's gradient to the FIRST maximum in window order (the last NaN), an
  adaptive max pool's likewise, torch.amax (GlobalMaxPool's reference) shares it evenly among the maxima, and
  MaxUnpool's backward gathers at the indices (even where a later value overwrote an earlier one);
* kinks (`test_activation_kinks_match_torch`): inputs exactly at ReLU6's 0 and 6, Hardswish's ±3, 0 and ±inf,
  where torch picks a particular subgradient;
* geometry (`test_more_geometry_matches_torch`): more draws of the harness's strategies for the types whose
  backward is index arithmetic (ceil_mode overhangs, dilation, overlapping adaptive bins, crops, scale factors);
* float32 (`test_float32_backward_keeps_the_dtype`): the gradient has the prepared dtype and float64's values.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_backward_torch import check_backward  # noqa: E402
from test_executor_torch import assert_close, randomize, state_as_numpy, torch_module  # noqa: E402
from test_torch_crosscheck import STRATEGIES, Case, convcalc_layer  # noqa: E402

from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import Layer, lookup  # noqa: E402

torch.set_num_threads(1)

SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def torch_gradients(type_name: str, case: Case, inputs: list[torch.Tensor], seed: int):
    """(module, output, cotangent, input gradients) by torch autograd, or None when torch refuses the case."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch_module(type_name, case)
            randomize(module, gen)
            out = module(*(x.clone() for x in inputs))
            out = out[0] if isinstance(out, tuple) else out
            cotangent = torch.randn(out.shape, generator=gen, dtype=torch.float64)
            cotangent = torch.where(torch.isfinite(out.detach()), cotangent, torch.zeros_like(cotangent))
            grads = torch.autograd.grad(out, inputs, cotangent, allow_unused=True)
    except Exception:  # noqa: BLE001  (torch refuses: not a case)
        return None
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]
    return module, out.detach().numpy(), cotangent.numpy(), [g.numpy() for g in grads]


def our_gradients(layer: Layer, case: Case, module: torch.nn.Module, inputs: list[torch.Tensor],
                  cotangent: np.ndarray, dtype: type = np.float64) -> tuple[np.ndarray, list[np.ndarray]]:
    """(output, input gradients) of the unit, channels first like torch's."""
    in_shapes = [tuple(s) for s in case.in_shapes]
    out_shape = layer.infer(in_shapes).out_shape
    prepared = layer.prepare(state_as_numpy(module), in_shapes, out_shape, np.dtype(dtype))
    stored = [to_storage(x.numpy().astype(dtype)) for x in inputs]
    with np.errstate(all="ignore"):
        y = layer.forward(stored, prepared, MacCounter())
        grads = layer.backward(stored, y, np.ascontiguousarray(to_storage(cotangent.astype(dtype))), prepared)
    for grad, x in zip(grads, stored):
        assert grad.shape == x.shape and grad.dtype == dtype
    return np.asarray(to_logical(y)), [np.asarray(to_logical(g)) for g in grads]


def compare(type_name: str, case: Case, inputs: list[torch.Tensor], seed: int) -> bool:
    """Check the unit's gradients against torch's; False when convcalc or torch refuses the case."""
    where = f"{type_name} args={case.args} input={case.in_shapes} seed={seed}"
    try:
        layer = convcalc_layer(lookup(type_name), case)
        layer.infer([tuple(s) for s in case.in_shapes])
    except LayerArgError:
        return False
    theirs = torch_gradients(type_name, case, inputs, seed)
    if theirs is None:
        return False
    module, out, cotangent, expected = theirs
    y, grads = our_gradients(layer, case, module, inputs, cotangent)
    assert_close(y, out, np.float64, f"{where} (forward)")
    for index, (ours, reference) in enumerate(zip(grads, expected)):
        assert_close(ours, reference, np.float64, f"{where} d/d(input {index})")
    return True


# ============================================================================ ties and NaN

TIE_TYPES = [*(f"{kind}{d}d" for kind in ("MaxPool", "MinPool", "AdaptiveMaxPool", "MaxUnpool") for d in (1, 2, 3)),
             "GlobalMaxPool", "LPPool2d"]


@pytest.mark.parametrize("type_name", TIE_TYPES)
def test_routing_with_ties_and_nan_matches_torch(type_name: str) -> None:
    @settings(max_examples=12, **SETTINGS)
    @given(case=STRATEGIES[type_name].cases(lookup(type_name)), seed=st.integers(0, 2**31 - 1),
           batch=st.integers(1, 2), nan=st.booleans())
    def check(case: Case, seed: int, batch: int, nan: bool) -> None:
        if type_name.startswith("LPPool"):
            assume(math.isinf(float(case.args["norm_type"])))     # max(|x|): ties in |x| (finite p has none)
        gen = torch.Generator().manual_seed(seed)
        inputs = []
        for shape in case.in_shapes:
            x = torch.randint(-1, 2, (batch, *shape), generator=gen).double()   # values -1, 0, 1: ties everywhere
            if nan and not type_name.startswith("GlobalMax"):      # torch.amax's gradient at a NaN max is NaN·0
                x = torch.where(torch.rand(x.shape, generator=gen) < 0.15, torch.nan, x)
            inputs.append(x)
        assume(compare(type_name, case, inputs, seed))
        compared[0] += 1

    compared = [0]
    check()
    assert compared[0] >= 3, f"only {compared[0]} {type_name} cases compared"


def test_max_pool_ties_go_to_the_first_maximum() -> None:
    """A hand-made case: windows [0, 1, 1] and [1, 1, 0] (kernel 3, stride 2 over [0, 1, 1, 1, 0]) pick positions
    1 and 2 (each window's first 1), so position 3, also a maximum, gets nothing; the min pool the same way."""
    x = np.array([0.0, 1.0, 1.0, 1.0, 0.0]).reshape(1, 5, 1)
    pool = lookup("MaxPool1d").from_args({"kernel_size": 3, "stride": 2})
    y = pool.forward([x], None, MacCounter())
    grad = np.array([10.0, 100.0]).reshape(1, 2, 1)
    assert pool.backward([x], y, grad, None)[0].ravel().tolist() == [0.0, 10.0, 100.0, 0.0, 0.0]
    minimum = lookup("MinPool1d").from_args({"kernel_size": 3, "stride": 2})
    assert minimum.backward([-x], -y, grad, None)[0].ravel().tolist() == [0.0, 10.0, 100.0, 0.0, 0.0]


# ============================================================================ kinks

KINK_TYPES = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh",
              "Abs", "Sqrt", "PReLU", "Identity", "Dropout"]
# no NaN: torch's activation backward kernels disagree with themselves there (ELU's vectorised loop gives NaN, its
# scalar tail the gradient), so only the pools' NaN routing is pinned (above)
KINKS = [0.0, -0.0, 3.0, -3.0, 6.0, 1.0, -1.0, 1e-300, math.inf, -math.inf]


@pytest.mark.parametrize("type_name", KINK_TYPES)
def test_activation_kinks_match_torch(type_name: str) -> None:
    values = torch.tensor(KINKS, dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    x = torch.cat([values, torch.randn(14, generator=gen, dtype=torch.float64) * 4]).reshape(1, 2, 12)
    args = {"negative_slope": 0.2} if type_name == "LeakyReLU" else {"alpha": 0.7} if type_name == "ELU" else {}
    case = Case(args, [(2, 12)])
    assert compare(type_name, case, [x], seed=3)
    if type_name == "GELU":
        assert compare(type_name, Case({"approximate": "tanh"}, [(2, 12)]), [x], seed=3)


# ============================================================================ geometry: more draws

GEOMETRY = {
    **{f"{kind}{d}d": 10 for kind in ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool") for d in (1, 2, 3)},
    **{f"LPPool{d}d": 10 for d in (1, 2, 3)},
    "Upsample": 60, "UpsamplingNearest2d": 15, "UpsamplingBilinear2d": 15,
    **{f"{family}{d}d": 8 for family in ("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad")
       for d in (1, 2, 3)},
    **{f"MaxUnpool{d}d": 10 for d in (1, 2, 3)},
    "Add": 15, "Multiply": 15, "Concat": 10, "Softmax": 10, "BatchNorm1d": 10, "BatchNorm2d": 10,
}


@pytest.mark.parametrize("type_name", sorted(GEOMETRY))
def test_more_geometry_matches_torch(type_name: str) -> None:
    cls = lookup(type_name)

    @settings(max_examples=GEOMETRY[type_name], **SETTINGS)
    @given(case=STRATEGIES[type_name].cases(cls), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3))
    def check(case: Case, seed: int, batch: int) -> None:
        check_backward(cls, case, seed, batch)

    check()


# ============================================================================ float32

FLOAT32_CASES = [
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (3, 7, 6)),
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}, (3, 7, 6)),
    ("AdaptiveAvgPool2d", {"output_size": [3, 4]}, (2, 7, 5)),
    ("AdaptiveMaxPool1d", {"output_size": 3}, (2, 7)),
    ("Upsample", {"scale_factor": 1.7, "mode": "bilinear"}, (2, 5, 4)),
    ("Upsample", {"size": [7, 3], "mode": "nearest-exact"}, (2, 5, 4)),
    ("ReflectionPad2d", {"padding": [2, 1, 0, 3]}, (2, 5, 4)),
    ("GELU", {}, (3, 5)),
    ("Softmax", {}, (3, 5)),
    ("LPPool1d", {"norm_type": 2.5, "kernel_size": 2}, (2, 7)),
]


@pytest.mark.parametrize("type_name, args, shape", FLOAT32_CASES, ids=[c[0] for c in FLOAT32_CASES])
def test_float32_backward_keeps_the_dtype(type_name: str, args: dict, shape: tuple) -> None:
    case = Case(args, [shape])
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, *shape, generator=gen, dtype=torch.float64).float().double()
    if type_name.startswith("LPPool"):
        x = x.abs() + 0.05
    theirs = torch_gradients(type_name, case, [x], seed=5)
    assert theirs is not None
    module, _, cotangent, (expected,) = theirs
    layer = convcalc_layer(lookup(type_name), case)
    _, (ours,) = our_gradients(layer, case, module, [x], cotangent.astype(np.float32).astype(np.float64),
                               dtype=np.float32)
    assert_close(ours, expected, np.float32, f"{type_name} {args}")


# ============================================================================ pinned cases

PINNED = [
    # torch's 1-D/3-D nearest BACKWARD kernel has the o = i / o = 2i shortcut its forward lacks: scale 2.1 on 2
    # pixels reads [0, 0, 0, 1] forward but adds the gradient to [0, 0, 1, 1]
    ("Upsample", {"scale_factor": 2.1}, (2, 2)),
    ("Upsample", {"scale_factor": 1.3}, (1, 3)),
    ("Upsample", {"scale_factor": [2.1, 1.3, 2.5]}, (1, 3, 2, 2)),
    ("UpsamplingNearest2d", {"scale_factor": 2.1}, (1, 2)),
    ("Upsample", {"scale_factor": 2.1, "mode": "nearest-exact"}, (1, 3)),
    # crops: a negative pad on one side with a positive one on the other, the crop wider than the pad
    ("ReflectionPad1d", {"padding": [2, -3]}, (2, 5)),
    ("ReflectionPad2d", {"padding": [2, -3, 0, 0]}, (1, 2, 4)),
    ("ReplicationPad2d", {"padding": [3, -4, -1, 2]}, (1, 3, 5)),
    ("ReplicationPad2d", {"padding": [2, -3, 0, 0]}, (1, 2)),      # replicate may crop more than the input
    ("ReplicationPad1d", {"padding": [-2, 6]}, (1, 3)),
    ("CircularPad1d", {"padding": [1, -2]}, (2, 4)),
    ("ConstantPad2d", {"padding": [1, -2, -1, 3], "value": 1.5}, (1, 3, 4)),
    ("ZeroPad2d", {"padding": [1, 2, 0, 1]}, (3, 4)),              # a [C, L] input: the channels padded too
]


@pytest.mark.parametrize("type_name, args, shape", PINNED, ids=[f"{c[0]}-{c[1]}" for c in PINNED])
def test_pinned_cases_match_torch(type_name: str, args: dict, shape: tuple) -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, *shape, generator=gen, dtype=torch.float64)
    assert compare(type_name, Case(args, [shape]), [x], seed=4)


# ============================================================================ TensorFlow SAME pools (no torch oracle)

@settings(max_examples=40, **SETTINGS)
@given(dims=st.integers(1, 3), data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_tf_same_pools_are_the_transpose_of_their_forward(dims: int, data: st.DataObject, seed: int) -> None:
    """torch has no padding 'tf_same'; the oracle is the adjoint identity. AvgPool is linear and a max pool with a
    fixed argmax is a selection, so <backward(g), x> = <g, forward(x)> (a dilated max pool's window may hold no
    input cell: its -inf output gets a zero cotangent, as in the torch harness)."""
    per_axis = lambda low, high: data.draw(st.lists(st.integers(low, high), min_size=dims, max_size=dims))  # noqa: E731
    kernel, stride = per_axis(1, 4), per_axis(1, 3)
    spatial = per_axis(1, 7)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *spatial, 3))
    for type_name, extra in ((f"MaxPool{dims}d", {"dilation": per_axis(1, 2)}),
                             (f"AvgPool{dims}d", {"count_include_pad": data.draw(st.booleans())})):
        layer = lookup(type_name).from_args({"kernel_size": kernel, "stride": stride, "padding": "tf_same", **extra})
        try:
            layer.infer([(3, *spatial)])
        except LayerArgError:
            continue                                     # AvgPool3d's input-size rule
        y = layer.forward([x], None, MacCounter())
        finite = np.isfinite(y)
        grad = np.where(finite, rng.standard_normal(y.shape), 0.0)
        (dx,) = layer.backward([x], y, grad, None)
        assert dx.shape == x.shape
        assert np.isclose(np.sum(dx * x), np.sum(grad * np.where(finite, y, 0.0)), rtol=1e-12, atol=1e-12), type_name
        if type_name.startswith("Avg"):              # linear: also the transpose on an independent vector
            z = rng.standard_normal(x.shape)
            assert np.isclose(np.sum(dx * z), np.sum(grad * layer.forward([z], None, MacCounter())),
                              rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm_type", [2.0, 3.0, 1.5, 0.5, -1.0, math.inf, -math.inf])
def test_lppool_with_zero_and_negative_windows_matches_torch(norm_type: float) -> None:
    """Windows whose power average is 0 (torch's relu mask zeroes their gradient, not NaN) or negative (odd p)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 6, 4, generator=gen, dtype=torch.float64).float().double()
    x[:, 0, :2, :2] = 0.0                                    # whole windows of zeros
    x[:, 1, 2:4, :] = -x[:, 1, 2:4, :].abs()                 # negative windows
    x[0, 0, 4, 0] = 0.0                                      # a zero inside a window
    case = Case({"norm_type": norm_type, "kernel_size": 2, "ceil_mode": True}, [(2, 6, 4)])
    assert compare("LPPool2d", case, [x], seed=9)
