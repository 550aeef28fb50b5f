"""`convcalc.blas.gemm_accumulate` (C += A @ B through the BLAS NumPy links) against NumPy's own product and sum,
over random shapes, dtypes and row strides; its refusals (which must leave C untouched), and `MacCounter.matmul_into`
with and without it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import blas, kernels
from convcalc.kernels import MacCounter


def numpy_blas_name() -> str:
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:   # older NumPy: no dict mode
        return ""


def test_binds_numpys_own_openblas_where_numpy_ships_it() -> None:
    """NumPy's wheels link scipy-openblas (ILP64); there the binding must load and pass its self-check, or the
    executor's residual sums silently fall back to a separate add."""
    if numpy_blas_name() != "scipy-openblas":
        pytest.skip(f"NumPy links {numpy_blas_name() or 'an unknown BLAS'}: gemm_accumulate falls back")
    assert blas.available(np.float32) and blas.available(np.float64)


@settings(max_examples=150, deadline=None)
@given(rows=st.integers(0, 40), depth=st.integers(0, 40), cols=st.integers(0, 40),
       pads=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
def test_gemm_accumulate_adds_the_product(rows, depth, cols, pads, dtype, seed) -> None:
    """Operands as row-major views with rows further apart than their length (lda > columns), as a slice of a
    wider matrix is."""
    if not blas.available(dtype):
        pytest.skip("no BLAS binding")
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, depth + pads[0])).astype(dtype)[:, :depth]
    b = rng.standard_normal((depth, cols + pads[1])).astype(dtype)[:, :cols]
    c = rng.standard_normal((rows, cols + pads[2])).astype(dtype)[:, :cols]
    want = c + a.astype(np.float64) @ b.astype(np.float64)
    assert blas.gemm_accumulate(a, b, c)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, want, rtol=tolerance, atol=tolerance * max(depth, 1))


@pytest.mark.parametrize("case", ["dtype", "transposed", "overlap", "shape", "readonly"])
def test_gemm_accumulate_refuses_what_blas_cannot_take_and_leaves_c_alone(case: str) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((5, 6)).astype(np.float32)
    c = rng.standard_normal((6, 6)).astype(np.float32)
    if case == "dtype":
        b = b.astype(np.float64)
    elif case == "transposed":
        a = np.asfortranarray(a)             # column-major: not passed as it is
    elif case == "overlap":
        c = a[:, :5].copy()
        b = b[:, :5]
        a = c                                # C would be read while written
    elif case == "shape":
        c = c[:5]
    else:
        c.flags.writeable = False
    before = c.copy()
    assert not blas.gemm_accumulate(a, b, c)
    assert np.array_equal(c, before)


@pytest.mark.parametrize("bound", [True, False])
def test_matmul_into_adds_and_counts_with_or_without_the_binding(bound: bool, monkeypatch) -> None:
    """The conv's MACs are the product's, with the ones column (a bias row) not counted; the sum is the same
    whether BLAS adds it or NumPy does after the product."""
    if not bound:
        monkeypatch.setattr(kernels, "gemm_accumulate", lambda a, b, c: False)
    rng = np.random.default_rng(1)
    a = np.hstack([rng.standard_normal((7, 4)), np.ones((7, 1))])
    b = rng.standard_normal((5, 3))
    c = rng.standard_normal((7, 3))
    want = c + a @ b
    counter = MacCounter()
    counter.matmul_into(a, b, c, ones_column=True)
    np.testing.assert_allclose(c, want, rtol=1e-12)
    assert counter.total == 7 * 4 * 3
