"""How long the command line takes to start, against `python -c "import numpy"` in the same run (not a test).

    python benchmarks/startup.py                 # best of 15 rounds of each command
    python benchmarks/startup.py --rounds 3 --only version --only resnet152

Each command is a fresh interpreter running this checkout's `convcalc` the way the console script does
(``from convcalc.cli import main; main()``), from the repository's root, with its output discarded. The package is
byte-compiled first (``python -m compileall``) and PYTHONDONTWRITEBYTECODE is unset for the timed runs, so the times
are those of an installed package, not of compiling it. Rounds interleave the commands (a burst of load on a shared
machine then slows every command alike rather than one); each command's fastest time counts (noise only ever adds
time). Printed: the CPU, then per command its best and median wall seconds and its ratio to the NumPy import's best,
and the same for CPU seconds (user + system, the command's worker processes included): on a loaded machine wall
time is mostly waiting for a core, and CPU time is the steadier measure (the issue's target: `analyze resnet50` at
most 2x).
"""

from __future__ import annotations

import argparse
import os
import resource
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_SCRIPT = "import re, sys; from convcalc.cli import main; sys.exit(main())"   # what pip's script runs
COMMANDS = {
    "numpy": ("python -c 'import numpy'", [sys.executable, "-c", "import numpy"]),
    "version": ("convcalc --version", [sys.executable, "-c", CONSOLE_SCRIPT, "--version"]),
    "analyze": ("convcalc analyze resnet50", [sys.executable, "-c", CONSOLE_SCRIPT, "analyze", "resnet50"]),
    "json": ("convcalc analyze resnet50 --format json",
             [sys.executable, "-c", CONSOLE_SCRIPT, "analyze", "resnet50", "--format", "json"]),
    "lint": ("convcalc lint specs/", [sys.executable, "-c", CONSOLE_SCRIPT, "lint", "specs/"]),
    "resnet152": ("convcalc analyze resnet152.yaml", [sys.executable, "-c", CONSOLE_SCRIPT, "analyze", "RESNET152"]),
}
RESNET152_TARGET = 0.3          # seconds of wall time, the issue's target for ResNet-152's table


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one) and the usable core count."""
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name or platform.processor() or platform.machine()}, {cores} usable cores"


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["COLUMNS"] = "120"              # a table's width does not depend on the terminal the benchmark runs in
    return env


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def time_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv``."""
    start, start_cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - start_cpu
    if done.returncode not in (0, 1):            # lint exits 1 when a shipped spec has an error-level finding
        raise SystemExit(f"{' '.join(argv[3:]) or argv[-1]} failed (exit {done.returncode}): {done.stderr.strip()}")
    return seconds, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command; the fastest counts")
    parser.add_argument("--only", action="append", choices=[name for name in COMMANDS if name != "numpy"],
                        help="time only this command (repeatable); the NumPy import is always timed")
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    names = ["numpy"] + [name for name in COMMANDS if name != "numpy" and (not options.only or name in options.only)]

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "convcalc")], check=True)
    env = environment()
    with tempfile.TemporaryDirectory(prefix="convcalc-startup-") as directory:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from big_spec import resnet152_spec

        spec = str(resnet152_spec(Path(directory)))
        commands = {name: [spec if word == "RESNET152" else word for word in argv]
                    for name, (_, argv) in COMMANDS.items()}
        times = _measure(names, commands, env, options.rounds)
    _print(names, times, options.rounds)


def _measure(names: list[str], commands: dict[str, list[str]], env: dict[str, str],
             rounds: int) -> dict[str, list[tuple[float, float]]]:
    for name in names:                           # one untimed run each: the file cache warm, bytecode written
        time_once(commands[name], env)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            times[name].append(time_once(commands[name], env))
    return times


def _print(names: list[str], times: dict[str, list[tuple[float, float]]], rounds: int) -> None:
    print(f"CPU: {cpu_model()}; Python {platform.python_version()}; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (a loaded machine adds wall time to every row)")
    wall_base = min(wall for wall, _ in times["numpy"])
    cpu_base = min(cpu for _, cpu in times["numpy"])
    width = max(len(COMMANDS[name][0]) for name in names)
    print(f"{'command':<{width}}  {'wall s':>7}  {'median':>7}  {'/ numpy':>7}  {'CPU s':>7}  {'/ numpy':>7}"
          f"   (best of {rounds})")
    for name in names:
        wall = min(w for w, _ in times[name])
        cpu = min(c for _, c in times[name])
        print(f"{COMMANDS[name][0]:<{width}}  {wall:7.3f}  {statistics.median(w for w, _ in times[name]):7.3f}"
              f"  {wall / wall_base:7.2f}  {cpu:7.3f}  {cpu / cpu_base:7.2f}")
    if "resnet152" in names:
        wall = min(w for w, _ in times["resnet152"])
        print(f"ResNet-152's table: {wall:.3f} s wall, {'within' if wall <= RESNET152_TARGET else 'over'} the"
              f" {RESNET152_TARGET} s target (on a loaded machine read the CPU column)")


if __name__ == "__main__":
    main()
