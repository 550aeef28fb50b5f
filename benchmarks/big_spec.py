"""`convcalc analyze` of 10,000-layer specs (issue 16's target: < 2 s, JSON linear in size). Not a test.

    python benchmarks/big_spec.py                 # both specs, table and JSON, best of 5
    python benchmarks/big_spec.py --rounds 3 --layers 20000

Two specs are generated in a temporary directory: a flat list of --layers layers ([Conv2d 8 channels k3 p1, ReLU]
pairs on a 3x64x64 input) and the same network as a 2-layer block with `repeat: layers/2`; ResNet-152 (the shipped
ResNet-50 spec with torchvision's 3-8-36-3 stages) is timed beside them. Each `convcalc analyze` runs as a
subprocess (interpreter start and imports included), as a table and with `--format json`; printed are the best wall
and the best CPU (user + sys of the child) seconds of --rounds runs, the JSON size in bytes per layer, and both as
ratios to `python -c "import numpy"` measured in the same run, so numbers from loaded or other machines compare (on
a loaded machine the CPU seconds are the ones to read; the target is on wall time on a quiet one).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 2.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def flat_spec(layers: int) -> str:
    lines = ["name: flat", "input: [3, 64, 64]", "layers:"]
    for index in range(layers // 2):
        lines.append(f"  - {{name: conv{index}, type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}}")
        lines.append(f"  - {{name: relu{index}, type: ReLU}}")
    return "\n".join(lines) + "\n"


def repeat_spec(layers: int) -> str:
    return f"""name: repeated
input: [3, 64, 64]
blocks:
  Pair:
    layers:
      - {{name: conv, type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}}
      - {{name: relu, type: ReLU}}
layers:
  - {{name: body, type: Pair, repeat: {layers // 2}}}
"""


def resnet152_spec(directory: Path) -> Path:
    text = (ROOT / "specs" / "resnet50.yaml").read_text(encoding="utf-8")
    text = re.sub(r"^name: resnet50", "name: resnet152", text, flags=re.MULTILINE)
    text = re.sub(r"^expect:.*$", "", text, flags=re.MULTILINE)
    text = re.sub(r"(name: layer2, type: Bottleneck, repeat: )4", r"\g<1>8", text)
    text = re.sub(r"(name: layer3, type: Bottleneck, repeat: )6", r"\g<1>36", text)
    path = directory / "resnet152.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def timed(command: list[str], env: dict, rounds: int) -> tuple[float, float, int]:
    """Best wall and best CPU (children's user + sys) seconds of ``rounds`` runs, and the stdout size in bytes."""
    best_wall, best_cpu, size = float("inf"), float("inf"), 0
    for _ in range(rounds):
        before = os.times()
        start = time.perf_counter()
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        wall = time.perf_counter() - start
        after = os.times()
        if completed.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {completed.returncode}:\n"
                             f"{completed.stderr.decode(errors='replace')}")
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        best_wall, best_cpu, size = min(best_wall, wall), min(best_cpu, cpu), len(completed.stdout)
    return best_wall, best_cpu, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=10_000, help="layers in each generated spec (even)")
    parser.add_argument("--rounds", type=int, default=5, help="runs per measurement (best is printed)")
    options = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               COLUMNS="120")
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical); load average {os.getloadavg()[0]:.2f}; "
          f"Python {platform.python_version()}")
    base_wall, base_cpu, _ = timed([sys.executable, "-c", "import numpy"], env, options.rounds)
    print(f"python -c 'import numpy': {base_wall:.3f} s wall, {base_cpu:.3f} s CPU (the unit of the ratios)")
    with tempfile.TemporaryDirectory(prefix="convcalc-big-") as name:
        directory = Path(name)
        specs = {}
        for label, text in (("flat", flat_spec(options.layers)), ("repeat", repeat_spec(options.layers))):
            path = directory / f"{label}.yaml"
            path.write_text(text, encoding="utf-8")
            specs[f"{label} {options.layers}"] = (path, options.layers)
        specs["resnet152"] = (resnet152_spec(directory), None)
        print(f"{'spec':<14} {'format':<6} {'wall s':>7} {'CPU s':>7} {'wall/numpy':>10} {'CPU/numpy':>9}"
              f" {'bytes/layer':>12}  target")
        worst = 0.0
        for label, (path, layers) in specs.items():
            for fmt in ("table", "json"):
                command = [sys.executable, "-m", "convcalc", "analyze", str(path)]
                if fmt == "json":
                    command += ["--format", "json"]
                wall, cpu, size = timed(command, env, options.rounds)
                per_layer = f"{size / layers:.0f}" if fmt == "json" and layers else ""
                verdict = ""
                if layers:
                    worst = max(worst, wall)
                    verdict = "ok" if wall < TARGET_SECONDS else f"over {TARGET_SECONDS:.0f} s"
                print(f"{label:<14} {fmt:<6} {wall:7.3f} {cpu:7.3f} {wall / base_wall:10.1f} "
                      f"{cpu / max(base_cpu, 1e-9):9.1f} {per_layer:>12}  {verdict}", flush=True)
    print(f"slowest 10k-layer run: {worst:.3f} s wall (target < {TARGET_SECONDS:.0f} s on a quiet machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
