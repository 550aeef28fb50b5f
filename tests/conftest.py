"""Shared by every test: the tuner's cache (`convcalc.execution.tune_cache`) lives in a temporary folder for the
whole session, so `convcalc run`'s automatic tuning never writes the user's home (CI's neither), and what one test
tuned the next finds, as a user's second run does."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _tuning_cache_in_a_temporary_folder(tmp_path_factory):
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))   # subprocesses inherit it
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before
