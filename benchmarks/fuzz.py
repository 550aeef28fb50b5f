"""The long hostile-input fuzz (issue 16): N random command lines from tests/fuzzing.py, each checked for a
one-line answer (exit 0, 1 or 2, no traceback, no Python-internal text) within the time budget and a capped address
space. Prints each failure (its command, files and output) and a summary line.

    python benchmarks/fuzz.py --cases 5000 --seed 1          # about 1-2 cases per second per core
    python benchmarks/fuzz.py --cases 200 --seed 7 --stop     # stop at the first failure

The test suite runs a fixed-seed slice of the same generator (tests/test_fuzz.py, CONVCALC_FUZZ_CASES).
"""

from __future__ import annotations

import argparse
import collections
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import fuzzing  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="how many command lines to try")
    parser.add_argument("--seed", type=int, default=0, help="case i uses random.Random(seed * 10**9 + i)")
    parser.add_argument("--stop", action="store_true", help="stop at the first failure")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (a time budget)")
    options = parser.parse_args()
    worker = fuzzing.Worker()
    codes: collections.Counter = collections.Counter()
    failures = []
    slowest = (0.0, "")
    started = time.perf_counter()
    done = 0
    try:
        for index in range(options.cases):
            if options.seconds is not None and time.perf_counter() - started > options.seconds:
                break
            directory = Path(tempfile.mkdtemp(prefix="convcalc-fuzz-"))
            try:
                case = fuzzing.make_case(random.Random(options.seed * 10 ** 9 + index), directory)
                result = worker.run(case, directory)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            done += 1
            codes[result["code"]] += 1
            if result["seconds"] > slowest[0]:
                slowest = (result["seconds"], " ".join(case.args))
            wrong = fuzzing.problem(result)
            if wrong is not None:
                failures.append(index)
                print(f"case {index}: {wrong}\n{case.describe()}\noutput:\n{result['output']}\n", flush=True)
                if options.stop:
                    break
    finally:
        worker.close()
    seconds = time.perf_counter() - started
    exits = ", ".join(f"exit {code}: {count}" for code, count in sorted(codes.items()))
    print(f"fuzz: {done} cases, {len(failures)} failed ({exits}) in {seconds:.0f} s; slowest {slowest[0]:.1f} s"
          f" ({slowest[1]}); seed {options.seed}" + (f"; failed cases {failures[:20]}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
