"""`convcalc.kernels.blas.gemm_accumulate` (C += A @ B through the BLAS NumPy links) against NumPy's own product and sum,
over random shapes, dtypes and row strides; its refusals (which must leave C untouched), and `MacCounter.matmul_into`
with and without it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import kernels
from convcalc.kernels import blas
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
        monkeypatch.setattr(kernels.counting, "gemm_accumulate", lambda a, b, c: False)
    rng = np.random.default_rng(1)
    a = np.hstack([rng.standard_normal((7, 4)), np.ones((7, 1))])
    b = rng.standard_normal((5, 3))
    c = rng.standard_normal((7, 3))
    want = c + a @ b
    counter = MacCounter()
    counter.matmul_into(a, b, c, ones_column=True)
    np.testing.assert_allclose(c, want, rtol=1e-12)
    assert counter.total == 7 * 4 * 3


# --------------------------------------------------------------------------- kernel_choices / use_kernels

SWITCH_PROBE = r"""
import json, os, sys
import numpy as np
from convcalc.kernels import blas
was = blas.kernels()
choices = blas.kernel_choices()
rng = np.random.default_rng(0)


def worst() -> float:
    errors = []
    for rows, depth, cols in ((1, 1, 1), (49, 513, 70), (300, 65, 256), (7, 2000, 3)):
        for dtype in (np.float32, np.float64):
            a, b = rng.standard_normal((rows, depth)), rng.standard_normal((depth, cols))
            c = rng.standard_normal((rows, cols))
            want = a @ b
            got = a.astype(dtype) @ b.astype(dtype)
            accumulated = c.astype(dtype)
            blas.gemm_accumulate(a.astype(dtype), b.astype(dtype), accumulated)
            scale = np.sqrt(depth) * (1e-5 if dtype == np.float32 else 1e-13)
            errors.append(max(float(np.abs(got - want).max()), float(np.abs(accumulated - c - want).max())) / scale)
    return max(errors)


switched = {}
for name in choices:
    switched[name] = [blas.use_kernels(name), blas.kernels(), worst()]
print(json.dumps({"was": was, "choices": choices, "switched": switched, "unknown": blas.use_kernels("NoSuchCore"),
                  "env_left": os.environ.get("OPENBLAS_CORETYPE")}))
"""


ROOT = Path(__file__).resolve().parent.parent
FLAGS = {"Haswell": {"avx2", "fma"}, "SkylakeX": {"avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}}
FLAGS["Cooperlake"] = FLAGS["SkylakeX"] | {"avx512_bf16"}


def fresh_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a new Python process that imports this checkout's convcalc, without any
    OPENBLAS_CORETYPE but ``extra``'s."""
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"} | extra
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])
    return environment


def probe(**env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SWITCH_PROBE], capture_output=True, text=True, check=True,
                          env=fresh_environment(**env))
    return json.loads(done.stdout)


def cpu_flags_from_cpuinfo() -> set[str]:
    """Independently of convcalc.kernels.blas: the first CPU's flags."""
    try:
        text = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()
    except OSError:
        return set()
    found = re.search(r"^flags\s*:(.*)$", text, re.M)
    return set(found.group(1).split()) if found else set()


def test_kernel_choices_are_the_sets_the_cpu_supports_and_every_switch_keeps_products_right() -> None:
    """The kernel sets offered are OpenBLAS's own pick first, then only sets whose instructions /proc/cpuinfo lists;
    switching to each either happens (OpenBLAS then reports that set) or is refused and leaves the previous one
    (OpenBLAS's own check of the CPU, or a product that came out wrong); either way every product (NumPy's and the
    binding's) still equals float64's, an unknown name is refused, and the environment is left as it was."""
    if numpy_blas_name() != "scipy-openblas" or blas.kernels() is None:
        pytest.skip("NumPy does not ship scipy-openblas here: nothing to switch")
    result = probe()
    choices = result["choices"]
    if not choices:
        pytest.skip("this OpenBLAS cannot re-run its dispatch")
    assert choices[0] == result["was"]
    flags = cpu_flags_from_cpuinfo()
    for name in choices[1:]:
        assert FLAGS[name] <= flags, name
    assert set(choices[1:]) == {name for name, needs in FLAGS.items() if needs <= flags} - {result["was"]}
    for name, (done, now, worst) in result["switched"].items():
        assert (now == name) if done else (now != name), (name, now)
        assert worst < 1, name
    assert result["switched"][result["was"]][0] is True
    assert result["unknown"] is False and result["env_left"] is None


def test_a_users_openblas_coretype_leaves_nothing_to_choose() -> None:
    """OPENBLAS_CORETYPE is the user's choice: no kernel set is offered, nothing is switched, and the variable is
    kept; an empty value is no choice (OpenBLAS ignores it too)."""
    if numpy_blas_name() != "scipy-openblas" or blas.kernels() is None:
        pytest.skip("NumPy does not ship scipy-openblas here")
    result = probe(OPENBLAS_CORETYPE="Haswell")
    assert result["choices"] == [] and result["switched"] == {} and result["env_left"] == "Haswell"
    assert probe(OPENBLAS_CORETYPE="")["choices"] == probe()["choices"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_split_matmul_runs_in_a_child_forked_after_its_pool_was_made():
    """`split_matmul`'s thread pool is per process: a child forked after the parent made one (it inherits none of the
    threads) gets its own and finishes, with NumPy's product."""
    import multiprocessing

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 40)), rng.standard_normal((40, 7))
    np.testing.assert_allclose(blas.split_matmul(a, b, np.empty((300, 7)), 2), a @ b, rtol=1e-12)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_split_in_child, args=(a, b, queue))
    child.start()
    try:
        assert queue.get(timeout=60)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()


def _split_in_child(a, b, queue) -> None:
    queue.put(bool(np.allclose(blas.split_matmul(a, b, np.empty((a.shape[0], b.shape[1])), 2), a @ b)))
