"""`convcalc lint` throughput on a large tree of specs (not a test).

    python benchmarks/lint.py                  # 500 specs: lint_paths in-process, then the CLI end to end
    python benchmarks/lint.py --count 200 --rounds 1 --no-cli

The specs are copies and variants of the shipped ones (specs/, with the files they include) in a temporary
directory: every other copy of the tree has its 2-D inputs resized (H, W + 16 or + 40), so the variants take
other shapes and some trip rules (dropped pixels, failed `expect:`) as real edits do. Printed: files linted,
findings per rule, seconds and specs/s for `lint_paths` (best of --rounds) and for `convcalc lint DIR --format
json` as a subprocess (interpreter start and imports included), each against the 10 s target for 500 specs.
CPU seconds are printed beside wall seconds: on a shared machine the difference is other processes' load.
"""

from __future__ import annotations

import argparse
import collections
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0
TARGET_COUNT = 500
_INPUT_2D = re.compile(r"^input:\s*\[(\d+),\s*(\d+),\s*(\d+)\]\s*$", re.MULTILINE)


def _resize(text: str, extra: int) -> str:
    """The spec with its [C, H, W] input grown by ``extra`` on both spatial axes (other inputs unchanged)."""
    return _INPUT_2D.sub(lambda m: f"input: [{m[1]}, {int(m[2]) + extra}, {int(m[3]) + extra}]", text)


def make_tree(directory: Path, count: int) -> list[Path]:
    """Copies of specs/ under ``directory`` until ``count`` specs exist; return exactly ``count`` spec files."""
    from convcalc.lint import expand_paths

    shipped = expand_paths([ROOT / "specs"])
    if not shipped:
        raise SystemExit("no shipped specs found under specs/")
    files: list[Path] = []
    copy = 0
    while len(files) < count:
        target = directory / f"set{copy:03d}"
        shutil.copytree(ROOT / "specs", target)
        extra = (0, 16, 0, 40)[copy % 4]
        for spec in shipped:
            path = target / spec.relative_to(ROOT / "specs")
            if extra:
                path.write_text(_resize(path.read_text(encoding="utf-8"), extra), encoding="utf-8")
            files.append(path)
        copy += 1
    for extra_file in files[count:]:           # the tree holds exactly `count` specs (included files stay)
        extra_file.unlink()
    return files[:count]


def time_library(files: list[Path], rounds: int):
    from convcalc.lint import LintConfig, lint_paths

    best, cpu, report = float("inf"), float("inf"), None
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        report = lint_paths([str(f) for f in files], LintConfig())
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return best, cpu, report


def time_cli(directory: Path) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "convcalc", "lint", str(directory), "--format", "json",
                                "--no-config"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if completed.returncode not in (0, 1):
        raise SystemExit(f"convcalc lint failed (exit {completed.returncode}): {completed.stderr.strip()}")
    return seconds, cpu, completed.returncode


def verdict(seconds: float, count: int) -> str:
    budget = TARGET_SECONDS * count / TARGET_COUNT
    return f"{'within' if seconds <= budget else 'OVER'} the {budget:.1f} s target"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=TARGET_COUNT, help="number of specs (default 500)")
    parser.add_argument("--rounds", type=int, default=2, help="lint_paths rounds; the fastest counts")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI run")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="convcalc-lint-bench-") as name:
        directory = Path(name)
        files = make_tree(directory, options.count)
        print(f"{len(files)} specs in {directory} (copies and resized variants of specs/)")

        seconds, cpu, report = time_library(files, options.rounds)
        by_rule = collections.Counter(finding.rule for finding in report.findings)
        print(f"findings: {len(report.findings)} ({', '.join(f'{r} {n}' for r, n in sorted(by_rule.items()))})")
        print(f"lint_paths: {seconds:.2f} s wall ({cpu:.2f} s CPU), {len(files) / seconds:.0f} specs/s,"
              f" {verdict(seconds, len(files))} (best of {options.rounds})")

        if not options.no_cli:
            seconds, cpu, code = time_cli(directory)
            print(f"CLI end to end: {seconds:.2f} s wall ({cpu:.2f} s CPU), {len(files) / seconds:.0f} specs/s,"
                  f" {verdict(seconds, len(files))} (exit {code})")


if __name__ == "__main__":
    main()
