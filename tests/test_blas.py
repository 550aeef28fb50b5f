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


# --------------------------------------------------------------------------- prefer_kernels

SWITCH_PROBE = r"""
import json, os, sys
import numpy as np
from convcalc.kernels import blas
force = sys.argv[1] == "force"
was = blas.kernels()
if sys.argv[1] == "query":
    print(json.dumps({"was": was}))
    sys.exit()
if force:                                   # exercise the switch on any CPU whose OpenBLAS picked AVX-512 kernels
    blas._zen4 = lambda: True
switched = blas.prefer_kernels()
rng = np.random.default_rng(0)
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
print(json.dumps({"was": was, "switched": switched, "now": blas.kernels(), "worst": max(errors),
                  "env_left": "OPENBLAS_CORETYPE" in os.environ and os.environ["OPENBLAS_CORETYPE"]}))
"""


ROOT = Path(__file__).resolve().parent.parent
AVX512_SETS = ("SkylakeX", "Cooperlake")   # the kernel sets OpenBLAS's dispatch picks on an AVX-512 CPU like Zen 4


def fresh_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a new Python process that imports this checkout's convcalc, without any
    OPENBLAS_CORETYPE but ``extra``'s."""
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"} | extra
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])
    return environment


def probe(mode: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SWITCH_PROBE, mode], capture_output=True, text=True, check=True,
                          env=fresh_environment(**env))
    return json.loads(done.stdout)


def fresh_kernels() -> str | None:
    """The kernels a new process's OpenBLAS picks (this one's may have been switched by an in-process CLI test)."""
    return probe("query")["was"] if numpy_blas_name() == "scipy-openblas" and blas.kernels() is not None else None


def zen4_from_cpuinfo() -> bool:
    """Independently of convcalc.kernels.blas: an AMD family-25 CPU with AVX-512 (Zen 4)."""
    try:
        text = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()
    except OSError:
        return False
    return bool(re.search(r"^vendor_id\s*:\s*AuthenticAMD$", text, re.M)
                and re.search(r"^cpu family\s*:\s*25$", text, re.M)
                and re.search(r"^flags\s*:.*\bavx512f\b", text, re.M))


def test_prefer_kernels_switches_zen4_from_avx512_to_avx2_kernels_and_products_stay_right() -> None:
    """On a Zen 4 whose OpenBLAS picked its SkylakeX/Cooperlake kernels: switched to Haswell's, and OpenBLAS
    itself reports so; anywhere else: nothing changes. Either way the products (NumPy's and the binding's) still
    equal float64's, and the process environment is left as it was."""
    if numpy_blas_name() != "scipy-openblas" or blas.kernels() is None:
        pytest.skip("NumPy does not ship scipy-openblas here: nothing to switch")
    result = probe("natural")
    expect_switch = zen4_from_cpuinfo() and result["was"] in AVX512_SETS
    if expect_switch:
        assert result["switched"] == [result["was"], "Haswell"] and result["now"] == "Haswell"
    else:
        assert result["switched"] is None and result["now"] == result["was"]
    assert result["worst"] < 1 and result["env_left"] is False


def test_prefer_kernels_mechanism_on_any_avx512_openblas() -> None:
    """The re-dispatch itself (quit, init with OPENBLAS_CORETYPE for that call), forced past the CPU check: the
    kernels change to Haswell's and every product is still right."""
    if fresh_kernels() not in AVX512_SETS:
        pytest.skip("OpenBLAS picks no AVX-512 kernel set here: nothing to switch from")
    result = probe("force")
    assert result["switched"] == [result["was"], "Haswell"] and result["now"] == "Haswell"
    assert result["worst"] < 1 and result["env_left"] is False


def test_prefer_kernels_leaves_a_users_openblas_coretype_alone() -> None:
    """A user who names the very kernel set the switch would leave (SkylakeX) keeps it, and keeps the variable;
    an empty value is no choice (OpenBLAS ignores it too), so the switch happens as without it."""
    if fresh_kernels() not in AVX512_SETS:
        pytest.skip("OpenBLAS picks no AVX-512 kernel set here: nothing the user's choice could be switched from")
    result = probe("force", OPENBLAS_CORETYPE="SkylakeX")
    assert result["switched"] is None and result["now"] == result["was"] == "SkylakeX"
    assert result["env_left"] == "SkylakeX" and result["worst"] < 1
    result = probe("force", OPENBLAS_CORETYPE="")
    assert result["switched"] == [result["was"], "Haswell"] and result["env_left"] == ""


@pytest.mark.parametrize("command", ["run", "rf"])
def test_convcalc_run_says_when_it_switched_the_kernels(command: str, tmp_path) -> None:
    """`convcalc run` (and `rf --erf`, which runs backward passes) switch before they execute the network and say
    so under their output (a fresh process: the switch is process-wide)."""
    if numpy_blas_name() != "scipy-openblas" or blas.kernels() is None:
        pytest.skip("NumPy does not ship scipy-openblas here")
    arguments = (["run", str(ROOT / "specs" / "edges.yaml")] if command == "run" else
                 ["rf", str(ROOT / "specs" / "tiny.yaml"), "--erf", str(tmp_path / "erf.png"), "--samples", "2"])
    done = subprocess.run([sys.executable, "-m", "convcalc", *arguments], capture_output=True, text=True,
                          env=fresh_environment(COLUMNS="200"))
    assert done.returncode == 0, done.stderr
    said = "NumPy's OpenBLAS runs its Haswell kernels" in done.stdout
    assert said == (zen4_from_cpuinfo() and fresh_kernels() in AVX512_SETS)
