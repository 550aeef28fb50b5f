"""Mish, Softplus, SELU, CELU, Hardtanh, Threshold, LogSoftmax, Softmin and GLU (convcalc/layers/activations.py):
values from the published formulas, PyTorch's refusals with their messages, receptive fields and dependency masks
against autograd, and a network using them all run against the same torch modules. The random cross-checks of
shapes, errors, forward and backward against torch are in test_torch_crosscheck / test_executor_torch /
test_backward_torch (strategies in activation_cases.py).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_receptive_field import analyze, check_network  # noqa: E402

import convcalc  # noqa: E402
from convcalc.errors import LayerArgError  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

torch.set_num_threads(1)


def forward(type_name: str, args: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """convcalc's forward on an (N, C, *S) float64 array, returned as (N, C, *S)."""
    layer = lookup(type_name).from_args(args)
    inferred = layer.infer([tuple(x.shape[1:])])
    prepared = layer.prepare({}, [tuple(x.shape[1:])], inferred.out_shape, np.dtype(np.float64))
    y = np.asarray(to_logical(layer.forward([to_storage(np.asarray(x, dtype=np.float64))], prepared, MacCounter())))
    assert y.shape[1:] == inferred.out_shape
    return y


def values(type_name: str, args: dict[str, Any], xs: list[float]) -> list[float]:
    return forward(type_name, args, np.array(xs, dtype=np.float64).reshape(1, -1)).ravel().tolist()


def refused(type_name: str, args: dict[str, Any], shape: tuple[int, ...] = (4,)) -> LayerArgError:
    with pytest.raises(LayerArgError) as info:
        lookup(type_name).from_args(args).infer([shape])
    return info.value


# ============================================================================ published formulas

def test_selu_uses_klambauers_constants():
    """Klambauer et al. 2017: selu(x) = λx (x > 0), λα(eˣ − 1) (x <= 0), α ≈ 1.6733, λ ≈ 1.0507."""
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    assert values("SELU", {}, [1.0, 0.0, -1.0]) == pytest.approx([scale, 0.0, scale * alpha * (math.exp(-1) - 1)],
                                                               abs=1e-15)


def test_softplus_mish_celu_hardtanh_threshold_values():
    # softplus = log(1 + exp(beta x))/beta, and x itself where beta x > threshold
    assert values("Softplus", {"beta": 2, "threshold": 1}, [0.25, 1.0, -3.0]) == pytest.approx(
        [math.log1p(math.exp(0.5)) / 2, 1.0, math.log1p(math.exp(-6)) / 2], abs=1e-15)
    # mish = x tanh(softplus(x)) (Misra 2019)
    assert values("Mish", {}, [1.0, -2.0]) == pytest.approx(
        [math.tanh(math.log1p(math.e)), -2 * math.tanh(math.log1p(math.exp(-2)))], abs=1e-15)
    # celu = max(0, x) + min(0, alpha (exp(x / alpha) - 1)) (Barron 2017)
    assert values("CELU", {"alpha": 2.0}, [-1.0, 3.0]) == pytest.approx([2 * (math.exp(-0.5) - 1), 3.0], abs=1e-15)
    assert values("Hardtanh", {"min_val": -2, "max_val": 3}, [-5.0, 0.5, 4.0]) == [-2.0, 0.5, 3.0]
    # y = x if x > threshold else value: the threshold itself gets the value
    assert values("Threshold", {"threshold": 0.5, "value": -7}, [0.5, 0.6, -1.0]) == [-7.0, 0.6, -7.0]


def test_celu_with_a_negative_alpha_follows_atens_elu_not_the_documented_min():
    """torch computes celu as elu(x, alpha, 1, 1/alpha): alpha·(exp(x/alpha) − 1) below 0, whatever alpha's sign
    (the documented max(0, x) + min(0, ...) would differ)."""
    x = torch.tensor([-1.0, -0.2], dtype=torch.float64)
    theirs = torch.nn.CELU(-1.5)(x).tolist()
    assert theirs == pytest.approx([-1.5 * (math.exp(1 / 1.5) - 1), -1.5 * (math.exp(0.2 / 1.5) - 1)], abs=1e-15)
    assert values("CELU", {"alpha": -1.5}, [-1.0, -0.2]) == pytest.approx(theirs, abs=1e-15)


def test_glu_log_softmax_softmin_values():
    """GLU: a·σ(b) for the halves a, b of dim; log_softmax = x − log Σ exp x; softmin = softmax(−x)."""
    x = np.array([[1.0, 2.0, 3.0, -4.0]])
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert forward("GLU", {}, x).ravel().tolist() == pytest.approx([1 * sigmoid(3), 2 * sigmoid(-4)], abs=1e-15)
    logsumexp = math.log(sum(math.exp(v) for v in x.ravel()))
    assert forward("LogSoftmax", {}, x).ravel().tolist() == pytest.approx([v - logsumexp for v in x.ravel()],
                                                                          abs=1e-15)
    total = sum(math.exp(-v) for v in x.ravel())
    assert forward("Softmin", {}, x).ravel().tolist() == pytest.approx([math.exp(-v) / total for v in x.ravel()],
                                                                       abs=1e-15)


def test_glu_halves_the_axis_dim_names():
    glu = lambda args, shape: lookup("GLU").from_args(args).infer([shape]).out_shape  # noqa: E731
    assert glu({}, (3, 4, 6)) == (3, 4, 3)                       # default dim -1: the last axis
    assert glu({"dim": 1}, (4, 5, 5)) == (2, 5, 5)               # the channels
    assert glu({"dim": -2}, (3, 4, 6)) == (3, 2, 6)


@pytest.mark.parametrize("type_name, args, kinks", [
    ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}, [-0.5, 2.0]),
    ("Threshold", {"threshold": 0.25, "value": 3.0}, [0.25]),
    ("Softplus", {"beta": 2.0, "threshold": 1.0}, [0.5]),
    ("CELU", {"alpha": 0.5}, [0.0]),
    ("SELU", {}, [0.0]),
    ("Mish", {}, [0.0, 30.0, -30.0]),
], ids=lambda value: value if isinstance(value, str) else None)
def test_gradients_at_the_kinks_are_torchs(type_name, args, kinks):
    """Exactly at a kink torch picks one side (hardtanh_backward: 0 at min_val and max_val; threshold_backward: 0 at
    the threshold; softplus: the smooth side at beta·x = threshold; elu: the exponential side at 0)."""
    x = torch.tensor([*kinks, -1.5, 0.7, 3.0], dtype=torch.float64, requires_grad=True)
    module = getattr(torch.nn, type_name)(**args)
    y = module(x.view(1, -1))
    cotangent = torch.linspace(0.5, 2.0, y.numel(), dtype=torch.float64).view_as(y)
    (expected,) = torch.autograd.grad(y, x, cotangent)
    layer = lookup(type_name).from_args(args)
    stored = x.detach().numpy().reshape(1, -1)
    ours = layer.backward([stored], layer.forward([stored], None, MacCounter()), cotangent.numpy(), None)[0]
    np.testing.assert_allclose(ours.ravel(), expected.numpy(), rtol=0, atol=1e-15)


# ============================================================================ refusals (PyTorch refuses them too)

def test_refusals():
    error = refused("CELU", {"alpha": 0})
    assert error.arg == "alpha" and "cannot be 0" in error.message
    with pytest.raises(RuntimeError, match="alpha cannot be 0 for CELU"):
        torch.nn.CELU(0.0)(torch.zeros(2))
    error = refused("Hardtanh", {"min_val": 1, "max_val": 1})
    assert error.arg == "max_val" and error.message == "max_val (1.0) must be greater than min_val (1.0)"
    error = refused("GLU", {"dim": 1}, (3, 4))
    assert error.message == "GLU halves dim 1, which must then be even, but it is 3 long; input [3, 4]"
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        torch.nn.GLU(1)(torch.zeros(1, 3, 4))
    assert "would mix the batch" in refused("GLU", {"dim": 0}, (2, 4)).message
    assert "out of range" in refused("LogSoftmax", {"dim": 3}, (2, 4)).message
    assert "would mix the batch" in refused("Softmin", {"dim": -3}, (2, 4)).message
    with pytest.raises(LayerArgError, match="Threshold needs 'value'"):
        lookup("Threshold").from_args({"threshold": 0.1})


# ============================================================================ receptive fields and dependencies

@pytest.mark.parametrize("layers", [
    [{"type": "Conv1d", "out_channels": 2, "kernel_size": 3}, {"type": "GLU", "dim": 2},
     {"type": "Conv1d", "out_channels": 1, "kernel_size": 2}],
    [{"type": "Conv1d", "out_channels": 4, "kernel_size": 3, "padding": 1}, {"type": "GLU", "dim": 1},
     {"type": "Mish"}, {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "stride": 2}],
    [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3}, {"type": "LogSoftmax", "dim": -1}],
    [{"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "stride": 2}, {"type": "Softmin", "dim": 2}],
], ids=["glu-length", "glu-channels", "log-softmax-length", "softmin-length"])
def test_fields_match_autograd(layers):
    check_network((1, 18), layers)


def test_glu_along_an_axis_reads_two_positions_half_the_axis_apart():
    """Unit j reads j and j + n/2: a 2-tap window dilated by n/2 (its region spans n/2 + 1 positions)."""
    summary = check_network((1, 10, 7), [{"type": "GLU", "dim": 2}])
    rows = summary.layers[0].rf.axes[0]
    assert [rows.region(j) for j in range(5)] == [(j, j + 5) for j in range(5)]
    assert (rows.size, rows.stride) == (6, 1)
    assert summary.layers[0].rf.axes[1].size == 1


def test_dependency_masks_and_a_network_run_like_torch():
    """A network with every new type: `convcalc rf --verify`'s proof holds for each layer, and `run` matches the
    same torch modules (float64, 1e-12)."""
    layers = [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "name": "c1"},
        {"type": "GLU", "dim": 1}, {"type": "Mish"}, {"type": "SELU"}, {"type": "CELU", "alpha": 0.7},
        {"type": "Softplus", "beta": 2, "threshold": 3}, {"type": "Hardtanh", "min_val": -0.5, "max_val": 2},
        {"type": "Threshold", "threshold": 0.1, "value": -1, "inplace": True},
        {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "name": "c2"},
        {"type": "GLU", "dim": -2}, {"type": "LogSoftmax", "dim": -1}, {"type": "Softmin", "dim": 1},
    ]
    spec = convcalc.spec_from_dict({"name": "t", "input": [3, 12, 9], "layers": layers})
    proof = convcalc.study_fields(spec, verify=True)
    assert proof.checks and all(check.ok for check in proof.checks)
    x = np.random.default_rng(3).standard_normal((2, 3, 12, 9))
    checked = convcalc.run(spec, x, dtype="float64", rf_check=False)
    assert checked.ok
    run = Network(convcalc.build_graph(spec), (3, 12, 9), dtype="float64")
    state = run.state
    modules = []
    for layer in layers:
        args = {k: v for k, v in layer.items() if k not in ("type", "name")}
        if layer["type"] == "Conv2d":
            module = torch.nn.Conv2d(3 if layer["name"] == "c1" else 2, args.pop("out_channels"), **args).double()
            with torch.no_grad():
                module.weight.copy_(torch.from_numpy(state[layer["name"]]["weight"]))
                module.bias.copy_(torch.from_numpy(state[layer["name"]]["bias"]))
        else:
            module = getattr(torch.nn, layer["type"])(**args)
        modules.append(module)
    with torch.no_grad():
        expected = torch.nn.Sequential(*modules)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run.run(x).output, expected, atol=1e-12)
