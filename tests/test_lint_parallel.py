"""`convcalc lint -j N`: files checked in worker processes give the serial run's output byte for byte, in every
format; the pool's failures are one line; --jobs values out of range are refused or clamped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import convcalc.lint.engine as engine
import convcalc.lint.parallel as parallel
from convcalc.cli import app
from convcalc.lint import LintConfig, LintWorkerError, lint_paths

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "lint_fixtures"


@pytest.fixture
def pools(monkeypatch):
    """Two usable CPUs whatever the machine (a 1-CPU runner would otherwise never start a pool), and the number of
    workers each run started."""
    started = []
    workers_for = parallel.workers_for

    def counted(jobs, files, method=None):
        started.append(workers_for(jobs, files, method))
        return started[-1]

    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    monkeypatch.setattr(parallel, "workers_for", counted)
    monkeypatch.setattr(engine.time, "perf_counter", lambda: 0.0)    # the reports' "seconds": 0 in both runs
    return started


def broken_tree(tmp_path: Path) -> Path:
    """The lint fixtures (specs that fail to build, shape errors, every rule's finding) with a few more broken
    files: YAML syntax, not a spec, empty, a non-UTF-8 file."""
    tree = tmp_path / "broken"
    shutil.copytree(FIXTURES, tree)
    (tree / "syntax.yaml").write_text("input: [3, 8, 8]\nlayers: [\n")
    (tree / "not_a_spec.yaml").write_text("name: x\nsteps: [1, 2]\n")
    (tree / "empty.yml").write_text("")
    (tree / "latin1.yaml").write_bytes(b"input: [3, 8, 8]\nlayers: []  # caf\xe9\n")
    return tree


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif", "junit"])
def test_parallel_output_is_the_serial_output(fmt, pools, tmp_path):
    paths = ["specs/", str(broken_tree(tmp_path))]
    runner = CliRunner()
    serial = runner.invoke(app, ["lint", *paths, "--format", fmt, "-j", "1", "--no-config"])
    parallel_run = runner.invoke(app, ["lint", *paths, "--format", fmt, "-j", "2", "--no-config"])
    assert serial.exit_code == parallel_run.exit_code == 1, (serial.output, parallel_run.output)
    assert serial.stdout.encode() == parallel_run.stdout.encode()
    assert serial.stderr == parallel_run.stderr == ""
    assert pools == [1, 2]                   # -j 1 ran in this process, -j 2 in two workers


def test_parallel_library_report_and_progress(pools):
    files = sorted(str(p) for p in FIXTURES.glob("*.yaml"))
    progress = []
    serial = lint_paths(files, LintConfig(), jobs=1)
    report = lint_paths(files, LintConfig(), on_progress=lambda done, total: progress.append((done, total)),
                        jobs=2)
    assert report == serial and pools == [1, 2]
    assert progress[-1] == (len(files), len(files))
    assert all(a[0] < b[0] for a, b in zip(progress, progress[1:])) and {t for _, t in progress} == {len(files)}


def test_spawned_workers_give_the_same_report(pools, monkeypatch):
    """Where workers cannot be forked (macOS, Windows) they are spawned: a fresh interpreter that imports what it
    runs. Forced here on Linux."""
    monkeypatch.setattr(parallel, "start_method", lambda: "spawn")
    monkeypatch.setitem(parallel.MIN_FILES_PER_WORKER, "spawn", 4)
    files = sorted(str(p) for p in FIXTURES.glob("*.yaml"))
    assert lint_paths(files, LintConfig(), jobs=2) == lint_paths(files, LintConfig(), jobs=1)
    assert pools == [2, 1]


def test_an_unreadable_file_stops_both_runs_with_the_same_line(pools, tmp_path):
    tree = broken_tree(tmp_path)
    fifo = tree / "zz_pipe.yaml"          # named on the command line, after the directory: its turn comes last
    os.mkfifo(fifo)
    runner = CliRunner()
    results = [runner.invoke(app, ["lint", str(tree), str(fifo), "-j", jobs, "--no-config"]) for jobs in "12"]
    assert [r.exit_code for r in results] == [2, 2]
    assert results[0].stderr == results[1].stderr
    assert results[0].stderr.startswith("error: cannot read") and results[0].stderr.count("\n") == 1


def _dies(file, config, enabled):
    os._exit(3)


def test_a_dead_worker_is_one_line(pools, monkeypatch):
    monkeypatch.setattr(engine, "_reported_findings", _dies)
    result = CliRunner().invoke(app, ["lint", str(FIXTURES), "-j", "2", "--no-config"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: a lint worker process died") and result.stderr.count("\n") == 1
    assert "--jobs 1" in result.stderr
    with pytest.raises(LintWorkerError):
        lint_paths([FIXTURES], LintConfig(), jobs=2)


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_jobs_out_of_range_is_one_line(value):
    result = CliRunner().invoke(app, ["lint", "specs/", "--jobs", value])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid value for '--jobs' / '-j'") and result.stderr.count("\n") == 1


def test_jobs_are_clamped_to_cpus_and_files(pools):
    assert parallel.workers_for(10 ** 30, 1000, "fork") == 2            # never more workers than usable CPUs
    assert parallel.workers_for(2, 7, "fork") == 1                      # 7 files: one process (a pool cannot pay)
    assert parallel.workers_for(2, 8, "fork") == 2
    result = CliRunner().invoke(app, ["lint", "specs/", "-j", str(10 ** 30), "--format", "json", "--no-config"])
    assert result.exit_code == 0 and pools[-1] == 2
    with pytest.raises(engine.LintConfigError, match="at least 1"):
        lint_paths(["specs/"], LintConfig(), jobs=0)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_serial_run_leaves_the_cycle_collector_as_it_was(enabled, monkeypatch):
    """The collector's automatic passes are off while a file is checked (lint.parallel.COLLECT_AFTER), in this
    process too, and as they were afterwards; a pass runs between files once enough objects piled up."""
    import gc

    passes = []
    real_collect = gc.collect
    monkeypatch.setattr(parallel, "COLLECT_AFTER", -1)      # every file: a pass after each
    monkeypatch.setattr(parallel.gc, "collect", lambda *a: passes.append(gc.isenabled()) or real_collect(*a))
    during = []
    check = engine._reported_findings
    monkeypatch.setattr(engine, "_reported_findings", lambda *a: during.append(gc.isenabled()) or check(*a))
    (gc.enable if enabled else gc.disable)()
    try:
        report = lint_paths([str(ROOT / "specs" / "tiny.yaml"), str(ROOT / "specs" / "lenet5.yaml")], LintConfig())
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
    assert len(report.files) == 2 and during == [False, False] and len(passes) == 2


@pytest.mark.parametrize("name", ["resnet18", "unet", "efficientnet_b0", "wavenet"])
def test_a_checked_spec_leaves_no_reference_cycles(name):
    """What makes the collector's automatic passes worth turning off while files are checked: a spec's load, build,
    analysis (fields, exact border extents) and rules leave nothing for the cycle collector, so reference counting
    frees each file's work and memory stays flat between the passes."""
    import gc
    from convcalc.lint import lint_file

    path, config = ROOT / "specs" / f"{name}.yaml", LintConfig()
    lint_file(path, config)                      # (caches filled: parsed expressions, known border stretches)
    gc.collect()
    gc.disable()
    try:
        lint_file(path, config)
        left = gc.collect()
    finally:
        gc.enable()
    assert left == 0
