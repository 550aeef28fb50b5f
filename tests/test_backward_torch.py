"""Every registered layer type's vector-Jacobian product (``Layer.backward``) against PyTorch autograd.

Per layer type (`test_backward_matches_torch`), the cross-check strategies of `test_torch_crosscheck`
draw arguments and input shapes (only cases that both convcalc and torch accept are kept); the torch
module gets random parameters and buffers and a random input exactly as in `test_executor_torch`. Then,
in float64, the unit is called directly (``prepare``, ``forward``, ``backward``: no BatchNorm folding, no
in-place forward) with a random standard-normal cotangent ``g`` shaped like the output, and
``backward`` must return, for each input, ``d(sum(g * y))/d(input)`` as torch autograd computes it
(``torch.autograd.grad(y, inputs, g)``; an input torch's output does not depend on differentiably, such
as the pool input of a MaxUnpool whose indices only it decides, gets zeros), within
``1e-9 * max(1, max|torch's gradient|)``. Positions where the output is not finite (a max over a window
entirely in the padding) get a zero cotangent. ``backward`` must not modify its arguments and must return
one array per input, of that input's shape and the prepared dtype.

A registered type whose unit has no ``backward`` (the base class raises NotImplementedError) fails by name.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_executor_torch import (assert_close, both_accept, check_every_case, large_conv_cases,  # noqa: E402
                                 small_channel_cases, state_as_numpy, torch_reference, winograd_cases)
from test_torch_crosscheck import REFERENCE_MODULES, Case  # noqa: E402

from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import Layer, layer_types, lookup  # noqa: E402

torch.set_num_threads(1)

EXAMPLES: dict[str, int] = {f"Conv{d}d": 30 for d in (1, 2, 3)} | {f"ConvTranspose{d}d": 20 for d in (1, 2, 3)}
DEFAULT_EXAMPLES = 8
MINIMUM_COMPARED = 3


def torch_vjp(type_name: str, case: Case, seed: int, batch: int):
    """(module or None, inputs, output, cotangent, input gradients) from torch autograd, or None when torch
    refuses the case. Inputs and parameters are float32-representable float64 values (as in the forward test)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module, inputs, forward, gen = torch_reference(type_name, case, seed, batch, requires_grad=True)
            out = forward()
            cotangent = torch.randn(out.shape, generator=gen, dtype=torch.float64)
            cotangent = torch.where(torch.isfinite(out.detach()), cotangent, torch.zeros_like(cotangent))
            if out.requires_grad:
                grads = torch.autograd.grad(out, inputs, cotangent, allow_unused=True)
            else:
                grads = (None,) * len(inputs)
    except Exception:  # noqa: BLE001  (torch refuses: not a case)
        return None
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]
    return (module, [x.detach() for x in inputs], out.detach().numpy().copy(), cotangent.numpy(),
            [g.detach().numpy() for g in grads])


def check_backward(cls: type[Layer], case: Case, seed: int, batch: int) -> None:
    type_name = cls.type_name
    where = f"{type_name} args={case.args} input={case.in_shapes} batch={batch} seed={seed}"
    layer, inferred, theirs = both_accept(cls, case, lambda: torch_vjp(type_name, case, seed, batch))
    module, inputs, reference, cotangent, expected = theirs
    params = state_as_numpy(module) if module is not None else {}
    in_shapes = [tuple(s) for s in case.in_shapes]
    dtype = np.dtype(np.float64)
    prepared = layer.prepare(params, in_shapes, inferred.out_shape, dtype)
    stored = [to_storage(x.numpy().astype(dtype)) for x in inputs]
    with np.errstate(all="ignore"):
        y = layer.forward(stored, prepared, MacCounter())
    assert_close(np.asarray(to_logical(y)), reference, np.float64, f"{where} (forward)")
    grad = np.ascontiguousarray(to_storage(cotangent))
    assert grad.shape == y.shape, f"{where}: cotangent {grad.shape} vs output {y.shape}"
    saved = [a.copy() for a in (*stored, y, grad)]
    try:
        with np.errstate(all="ignore"):
            grads = layer.backward(stored, y, grad, prepared)
    except NotImplementedError as error:
        pytest.fail(f"layer type {type_name} has no backward (Layer.backward): {error}")
    for before, after in zip(saved, (*stored, y, grad)):
        assert np.array_equal(before, after, equal_nan=True), f"{where}: backward modified one of its arguments"
    assert len(grads) == len(stored), f"{where}: backward returned {len(grads)} gradients for {len(stored)} inputs"
    for index, (ours, x, reference_grad) in enumerate(zip(grads, stored, expected)):
        assert ours.shape == x.shape, f"{where}: gradient {index} has shape {ours.shape}, its input {x.shape}"
        assert ours.dtype == dtype, f"{where}: gradient {index} is {ours.dtype}"
        assert_close(np.asarray(to_logical(ours)), reference_grad, np.float64, f"{where} d/d(input {index})")


@pytest.mark.parametrize("cls", layer_types(), ids=lambda cls: cls.type_name)
def test_backward_matches_torch(cls: type[Layer]) -> None:
    check_every_case(cls, check_backward, "backward", EXAMPLES.get(cls.type_name, DEFAULT_EXAMPLES),
                     MINIMUM_COMPARED, database=None)


@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drawn=large_conv_cases(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 2))
def test_large_conv_backward_matches_torch(drawn, seed: int, batch: int) -> None:
    """Conv2d/3d with 28*28 outputs or more (where the forward takes other algorithms: rows, the FFT), every
    padding spelling and padding_mode."""
    cls, case = drawn
    check_backward(cls, case, seed, batch)


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drawn=small_channel_cases(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 2))
def test_small_channel_conv_backward_matches_torch(drawn, seed: int, batch: int) -> None:
    """Convs prepared for transposed patches (whose plan keeps the weights in tap-block order): the backward pass
    lays out its own columns."""
    cls, case = drawn
    check_backward(cls, case, seed, batch)


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drawn=winograd_cases(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 2))
def test_winograd_conv_backward_matches_torch(drawn, seed: int, batch: int) -> None:
    """Convs prepared for Winograd F(2, 3) (whose plan keeps the weights in the transform domain): the backward
    pass lays out its own columns."""
    cls, case = drawn
    check_backward(cls, case, seed, batch)


def test_a_type_without_backward_fails_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness names the type when its unit keeps the base class's backward."""
    monkeypatch.setitem(REFERENCE_MODULES, "NoBackwardIdentity", torch.nn.Identity)
    identity = lookup("Identity")

    class NoBackwardIdentity(identity):  # type: ignore[misc, valid-type]
        type_name = "NoBackwardIdentity"
        backward = Layer.backward

    @settings(max_examples=1, database=None, deadline=None)
    @given(case=st.just(Case({}, [(2, 3)])))
    def check(case: Case) -> None:
        check_backward(NoBackwardIdentity, case, seed=0, batch=1)

    with pytest.raises(pytest.fail.Exception, match="layer type NoBackwardIdentity has no backward"):
        check()
