"""`convcalc lint` throughput on a large tree of specs (not a test).

    python benchmarks/lint.py                  # 500 specs: lint_paths in-process, then the CLI end to end
    python benchmarks/lint.py --count 200 --rounds 1 --no-cli --jobs 2

The specs are copies and variants of the shipped ones (specs/, with the files they include) in a temporary
directory: every other copy of the tree has its 2-D inputs resized (H, W + 16 or + 40), so the variants take
other shapes and some trip rules (dropped pixels, failed `expect:`) as real edits do. Printed: files linted,
findings per rule, seconds and specs/s for `lint_paths` (best of --rounds) and for `convcalc lint DIR --format
json` as a subprocess (interpreter start and imports included), each in one process (``jobs=1``, ``-j 1``) and in
worker processes (``--jobs``, default the usable CPUs; the CLI's default), each against the 4 s target for 500
specs on 2 cores. CPU seconds (this process and its workers) are printed beside wall seconds: on a shared machine
the difference is other processes' load, and the parallel run's extra CPU is what its workers cost. The parallel
report is checked equal to the serial one.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 4.0
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


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_library(files: list[Path], rounds: int, jobs: int = 1):
    from convcalc.lint import LintConfig, lint_paths

    best, cpu, report = float("inf"), float("inf"), None
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), _cpu()
        report = lint_paths([str(f) for f in files], LintConfig(), jobs=jobs)
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, _cpu() - start_cpu)
    return best, cpu, report


def _timed(file, config, enabled):
    """One file's lint, with the worker it ran in and the CPU seconds it took there."""
    from convcalc.lint.engine import _reported_findings

    start = time.process_time()
    _reported_findings(file, config, enabled)
    return os.getpid(), time.process_time() - start


def busiest_worker(files: list[Path], jobs: int) -> tuple[float, float, int]:
    """The CPU seconds of the busiest worker and of all workers, and the worker count, for a parallel run: on idle
    cores the run takes about the busiest worker's time (what a loaded machine's wall clock cannot show)."""
    from convcalc.lint import LintConfig
    from convcalc.lint.parallel import in_order

    config = LintConfig()
    per_worker: dict[int, float] = collections.defaultdict(float)
    for _, results in in_order(_timed, files, (config, config.enabled()), jobs):
        for pid, seconds in results:
            per_worker[pid] += seconds
    return max(per_worker.values()), sum(per_worker.values()), len(per_worker)


def time_cli(directory: Path, jobs: int) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "convcalc", "lint", str(directory), "--format", "json",
                                "--no-config", "--jobs", str(jobs)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
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
    parser.add_argument("--jobs", type=int, default=None, help="worker processes of the parallel runs (default: the"
                                                                " usable CPUs)")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI runs")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from convcalc.lint import usable_cpus
    from convcalc.lint.parallel import start_method, workers_for

    jobs = options.jobs or usable_cpus()
    print(f"CPU: {_cpu_model()}, {usable_cpus()} usable; load average {os.getloadavg()[0]:.2f} (on a loaded machine"
          f" workers wait for a core: compare CPU seconds)")
    with tempfile.TemporaryDirectory(prefix="convcalc-lint-bench-") as name:
        directory = Path(name)
        files = make_tree(directory, options.count)
        print(f"{len(files)} specs in {directory} (copies and resized variants of specs/)")

        serial = None
        for label, run_jobs in (("jobs=1", 1), (f"jobs={jobs}", jobs)):
            seconds, cpu, report = time_library(files, options.rounds, run_jobs)
            if serial is None:
                serial, serial_seconds = report, seconds
                by_rule = collections.Counter(finding.rule for finding in report.findings)
                print(f"findings: {len(report.findings)}"
                      f" ({', '.join(f'{r} {n}' for r, n in sorted(by_rule.items()))})")
            elif report.findings != serial.findings or report.files != serial.files:
                raise SystemExit(f"the {label} report differs from the serial one")
            workers = workers_for(run_jobs, len(files), start_method())
            print(f"lint_paths {label} ({workers} process{'es' if workers > 1 else ''}, {start_method()}):"
                  f" {seconds:.2f} s wall ({cpu:.2f} s CPU), {len(files) / seconds:.0f} specs/s,"
                  f" {serial_seconds / seconds:.2f}x the serial speed, {verdict(seconds, len(files))}"
                  f" (best of {options.rounds})")
        if jobs > 1:
            busiest, total, workers = busiest_worker(files, jobs)
            print(f"  workers' CPU: {total:.2f} s in {workers}, the busiest {busiest:.2f} s: on idle cores the"
                  f" parallel run would take ~{busiest:.2f} s plus start-up, ~{total / busiest:.2f}x the serial speed")

        if not options.no_cli:
            for run_jobs in (1, jobs):
                seconds, cpu, code = time_cli(directory, run_jobs)
                print(f"CLI -j {run_jobs} end to end: {seconds:.2f} s wall ({cpu:.2f} s CPU),"
                      f" {len(files) / seconds:.0f} specs/s, {verdict(seconds, len(files))} (exit {code})")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "?")
    except OSError:
        import platform
        return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
