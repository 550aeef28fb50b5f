"""What `convcalc run --rf-check all` costs against `--rf-check none`, per shipped spec (not a test).

    python benchmarks/rf_check.py                          # every zoo spec, best of 3
    python benchmarks/rf_check.py --specs shufflenet_v2_x1_0 resnet18 --rounds 5

Per spec, in this one process, `convcalc.run(spec)` on the built-in test image is timed with the proof skipped
(``rf_check=False``, as ``--rf-check none``) and with it (``rf_check=True``, as ``--rf-check all``), the two
alternating, first one then the other in turn (none-all, all-none, ...: on a VM a large network's runs can be fast and
slow by turns, ~1.5 s and ~3 s for TF-Slim's VGG-16 here, the copies that lay out its weights 2-8x slower on every
other run, page faults alike: the system's memory handling, not convcalc's work; a fixed order would hand one side
every slow run); the best of ``--rounds`` of each
is kept. Printed: the CPU model, per spec both
times, the ratio all/none and the proof's verdict, then the largest ratio against the 1.4x target of issue 20.
Both runs use the same algorithms (the library's `convcalc.run` never tunes), so the ratio is the proof's. CPU seconds are
printed beside wall seconds: on a shared machine the difference is other processes' load.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET = 1.4


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def timed(spec: str, rf_check: bool) -> tuple[float, float, bool]:
    """(wall seconds, CPU seconds, ok) of one `convcalc.run`."""
    from convcalc.proof.run import run

    wall, cpu = time.perf_counter(), time.process_time()
    checked = run(spec, rf_check=rf_check)
    return time.perf_counter() - wall, time.process_time() - cpu, checked.ok


def main(argv: list[str] | None = None) -> int:
    from convcalc.spec.zoo import zoo_names, zoo_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", nargs="+", metavar="NAME", help="zoo names or spec files (default: the zoo)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each kind per spec; the best is kept")
    args = parser.parse_args(argv)
    names = args.specs or zoo_names()
    print(f"CPU: {cpu_model()}; best of {args.rounds} rounds; target: all/none <= {TARGET}x")
    print(f"{'spec':<28} {'none s':>8} {'all s':>8} {'ratio':>6} {'cpu ratio':>9}  proof")
    worst = (0.0, "")
    for name in names:
        spec = name if Path(name).is_file() else str(zoo_path(name))
        timed(spec, False)                      # warm: imports, caches, page faults
        best = {False: (float("inf"), float("inf")), True: (float("inf"), float("inf"))}
        ok = True
        for round_ in range(args.rounds):
            for rf_check in ((False, True) if round_ % 2 == 0 else (True, False)):
                wall, cpu, passed = timed(spec, rf_check)
                best[rf_check] = (min(best[rf_check][0], wall), min(best[rf_check][1], cpu))
                ok = ok and passed
        ratio = best[True][0] / best[False][0]
        cpu_ratio = best[True][1] / max(best[False][1], 1e-9)
        worst = max(worst, (ratio, name))
        print(f"{name:<28} {best[False][0]:8.3f} {best[True][0]:8.3f} {ratio:6.2f} {cpu_ratio:9.2f}  "
              f"{'ok' if ok else 'FAILED'}", flush=True)
    print(f"max ratio {worst[0]:.2f} ({worst[1]}): {'within' if worst[0] <= TARGET else 'OVER'} the {TARGET}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
