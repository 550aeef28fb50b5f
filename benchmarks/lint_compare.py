"""`convcalc lint` of this tree against another commit's: the same output, and the CPU each takes (not a test).

    python benchmarks/lint_compare.py BASE                # BASE: a commit, branch or tag of this repository
    python benchmarks/lint_compare.py BASE --pairs 4 --count 500

BASE's tree is exported (`git archive`) to a temporary directory. Both trees lint, with ``--no-config -j 1``, the
corpus `benchmarks/lint.py` builds (copies and resized variants of specs/) and the shipped specs/, in every output
format; the outputs and exit codes must be byte-identical once the report's own timing is blanked, else the script
says where and exits 1. Then the serial `lint_paths` of the corpus runs in alternating processes, BASE's and this
tree's (``--pairs`` of each, each the best of 2 rounds after a warm-up), and their process CPU seconds are printed
with the load average: on a shared machine compare the CPU ratio of pairs, never wall seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("text", "json", "github", "sarif", "junit")
_TIMING = (re.compile(r'"?(seconds|time|duration)"?([=:]) ?"?[0-9.]+"?'), re.compile(r"\(([0-9.]+) s\)$", re.M))
_CPU = """
import sys, time
from convcalc.lint import LintConfig, lint_paths
lint_paths([sys.argv[1]], LintConfig(), jobs=1)                   # warm: imports, caches
best = float("inf")
for _ in range(2):
    start = time.process_time()
    lint_paths([sys.argv[1]], LintConfig(), jobs=1)
    best = min(best, time.process_time() - start)
print(best)
"""


def export(ref: str, directory: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    target = directory / "base"
    target.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(target)                   # (our own repository's tree)
    return target


def _env(tree: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(tree)}


def lint_output(tree: Path, target: Path, fmt: str) -> str:
    done = subprocess.run([sys.executable, "-m", "convcalc", "lint", str(target), "--format", fmt, "--no-config",
                           "-j", "1"], capture_output=True, text=True, env=_env(tree), cwd=tempfile.gettempdir())
    text = done.stdout + done.stderr + f"\nexit {done.returncode}\n"
    return _TIMING[1].sub("(T s)", _TIMING[0].sub(r"\1\2T", text))


def cpu(tree: Path, target: Path) -> float:
    done = subprocess.run([sys.executable, "-c", _CPU, str(target)], capture_output=True, text=True, check=True,
                          env=_env(tree), cwd=tempfile.gettempdir())
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare with")
    parser.add_argument("--count", type=int, default=500, help="specs in the corpus (default 500)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating CPU runs of each tree (0: none)")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT))
    import lint as lint_benchmark

    with tempfile.TemporaryDirectory(prefix="convcalc-lint-compare-") as name:
        directory = Path(name)
        base = export(options.base, directory)
        corpus = directory / "corpus"
        corpus.mkdir()
        lint_benchmark.make_tree(corpus, options.count)
        shipped = directory / "shipped"
        shipped.mkdir()
        shutil.copytree(ROOT / "specs", shipped / "specs")
        differing = 0
        for target in (corpus, shipped):
            for fmt in FORMATS:
                before, after = lint_output(base, target, fmt), lint_output(ROOT, target, fmt)
                same = before == after
                differing += not same
                print(f"{'same' if same else 'DIFFERENT'}: {target.name} --format {fmt} ({len(after):,} characters,"
                      f" {after.strip().splitlines()[-1]})")
        print(f"load average {os.getloadavg()[0]:.2f}")
        ratios = []
        for _ in range(options.pairs):
            old, new = cpu(base, corpus), cpu(ROOT, corpus)
            ratios.append(new / old)
            print(f"serial lint_paths CPU: {options.base} {old:.3f} s, this tree {new:.3f} s, ratio {new / old:.3f}")
        if ratios:
            print(f"ratios {', '.join(f'{r:.3f}' for r in ratios)}; median {sorted(ratios)[len(ratios) // 2]:.3f};"
                  f" load average {os.getloadavg()[0]:.2f}")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
