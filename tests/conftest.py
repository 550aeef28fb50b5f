"""Shared by every test: the tuner's cache (`convcalc.execution.tune_cache`) lives in a temporary folder for the
whole session, so `convcalc run`'s automatic tuning never writes the user's home (CI's neither), and what one test
tuned the next finds, as a user's second run does. In this process `run` tunes a new network shape for at most
TEST_RUN_BUDGET seconds (its default is `tune.RUN_BUDGET`): the suite runs many networks once each, and
tests/test_tune.py gives the tuner its budgets itself."""

from __future__ import annotations

import os

import pytest


TEST_RUN_BUDGET = 1.0


@pytest.fixture(scope="session", autouse=True)
def _tuning_cache_in_a_temporary_folder(tmp_path_factory):
    from convcalc.execution import tune

    tune.RUN_BUDGET = TEST_RUN_BUDGET
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))   # subprocesses inherit it
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def _blas_kernels_restored():
    """Each test starts on the OpenBLAS kernel set the process started with: `convcalc run` run in-process (typer's
    CliRunner) may switch the whole process's kernels after timing them (`kernels.blas.use_kernels`), and another
    kernel set sums a GEMM row in another order. Most tests do not care, but an ill-conditioned oracle does
    (test_onnx_light's SqueezeNet with constant weights: 1,000 equal logits of ~1e5 whose last-bit differences decide
    the softmax), and a test's result must not depend on which tests ran before it."""
    from convcalc.kernels.blas import kernels, use_kernels

    before = kernels()
    yield
    if kernels() != before:
        use_kernels(before)
        assert kernels() == before, f"OpenBLAS's kernels could not be switched back to {before}"
