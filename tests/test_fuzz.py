"""Property: every command is total (issue 16). For random and mutated specs, option values and input files
(tests/fuzzing.py), `convcalc` exits 0, 1 or 2 with no traceback and no Python-internal text, within a time budget
and a capped address space.

CI runs a fixed-seed slice (CONVCALC_FUZZ_CASES, default 150); `python benchmarks/fuzz.py --cases 5000` runs the
long version with a summary line.
"""

from __future__ import annotations

import os
import random
import shutil

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import fuzzing

CASES = int(os.environ.get("CONVCALC_FUZZ_CASES", "150"))


@pytest.fixture(scope="module")
def worker():
    running = fuzzing.Worker()
    yield running
    running.close()


@settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],      # no shrinking: a failing case is printed whole, and a hang
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # would repeat
@given(st.randoms(use_true_random=False))
def test_every_command_is_total(worker, tmp_path_factory, rng: random.Random):
    directory = tmp_path_factory.mktemp("case")
    try:
        case = fuzzing.make_case(rng, directory)
        result = worker.run(case, directory)
        wrong = fuzzing.problem(result)
        assert wrong is None, f"{wrong}\n{case.describe()}\noutput:\n{result['output']}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_property_catches_what_it_should():
    """The checker itself: a traceback, an internal message, a bad exit code and a hang are each a problem."""
    ok = {"code": 2, "output": "error: spec.yaml:3:5: 'kernel_size' must be positive\n", "exception": "",
          "seconds": 0.1}
    assert fuzzing.problem(ok) is None
    assert "exception escaped" in fuzzing.problem({**ok, "exception": "ValueError: x"})
    assert "internals" in fuzzing.problem({**ok, "output": "error: unhashable type: 'list'"})
    assert "exit code" in fuzzing.problem({**ok, "code": 3})
    assert "took" in fuzzing.problem({**ok, "seconds": 60.0})
    assert "hung" in fuzzing.problem({"code": -2, "output": "", "exception": "the case hung past its budget",
                                      "seconds": 20})
