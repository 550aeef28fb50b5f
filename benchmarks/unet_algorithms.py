"""U-Net's convs under three choices of algorithm, measured in the same run (not a test).

    python benchmarks/unet_algorithms.py                  # 572x572, batch 1, 3 rounds
    python benchmarks/unet_algorithms.py --size 188 --rounds 5

The lead of issue 20: on an Intel Xeon, `algorithm: auto` ran U-Net's Winograd layers 2-4x slower than `algorithm:
direct`. Three networks of the same spec and weights: 'auto' (the cost model's choice, `convcalc run --no-tune`),
'direct' (every conv's algorithm argument set to 'direct': the GEMM algorithms only, chosen by the cost model) and
'tuned' (the tuner's measured choice, `convcalc.execution.tune`, timed here into a temporary cache with --budget
seconds). Rounds alternate the three (the order rotating), and each layer's time is its fastest over the rounds,
so a burst of load elsewhere hits all three alike (--cpu-time: one thread, timed by its CPU time, for a loaded
machine). Printed per conv: each network's algorithm and milliseconds, and
auto/direct and tuned/direct; then the totals, the CPU and the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

CPU_TIME = "--cpu-time" in sys.argv
if CPU_TIME:          # before NumPy loads OpenBLAS: one thread, so a layer's CPU time is its work alone
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import convcalc  # noqa: E402
from convcalc.analysis.summary import analyze  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.execution.tune import tune  # noqa: E402
from convcalc.execution.tune_cache import TuneCache, cpu_model  # noqa: E402
from convcalc.kernels.blas import kernels  # noqa: E402


def build(size: int, algorithm: str | None):
    graph = convcalc.build_graph(convcalc.load_spec(ROOT / "specs" / "unet.yaml"))
    if algorithm is not None:
        for node in graph.nodes:
            if hasattr(node.layer, "algorithm_choices"):
                node.layer.algorithm = algorithm
    return analyze(graph, (1, size, size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=572)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds the tuner may spend")
    parser.add_argument("--cpu-time", action="store_true",
                        help="one BLAS thread, and each layer timed by the CPU time of that thread (time.thread_time)"
                             " instead of the wall clock: on a machine loaded by other work, the wall clock of a"
                             " multithreaded GEMM swings 100x (a thread waits for one descheduled), its CPU time does"
                             " not")
    args = parser.parse_args()
    if CPU_TIME:
        import convcalc.execution.network as network_module
        network_module.time = type("Clock", (), {"perf_counter": staticmethod(time.thread_time)})

    summaries = {"auto": build(args.size, None), "direct": build(args.size, "direct"),
                 "tuned": build(args.size, None)}
    with tempfile.TemporaryDirectory() as folder:
        tuning = tune(summaries["tuned"], args.batch, budget=args.budget,
                      cache=TuneCache(Path(folder) / "tuning.json"), kernels=False,
                      clock=time.thread_time if CPU_TIME else time.perf_counter)
    networks = {name: Network(summary) for name, summary in summaries.items()}
    x = np.random.default_rng(0).standard_normal((args.batch, 1, args.size, args.size))
    best: dict[str, dict[str, float]] = {name: {} for name in networks}
    algorithm: dict[str, dict[str, str]] = {name: {} for name in networks}
    totals: dict[str, float] = {name: float("inf") for name in networks}
    order = list(networks)
    for round_index in range(args.rounds + 1):          # round 0 warms up, not counted
        for name in order[round_index % 3:] + order[:round_index % 3]:
            result = networks[name].run(x, check_finite=False)
            if round_index == 0:
                continue
            totals[name] = min(totals[name], result.seconds)
            for layer in result.layers:
                if layer.algorithm:
                    best[name][layer.name] = min(best[name].get(layer.name, float("inf")), layer.seconds)
                    algorithm[name][layer.name] = layer.algorithm
    clock = "thread CPU time, 1 thread" if CPU_TIME else "wall clock"
    print(f"U-Net {args.size}x{args.size}, batch {args.batch}, fastest of {args.rounds} rounds ({clock}); CPU {cpu_model()};"
          f" OpenBLAS kernels {kernels()}; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())};"
          f" tuner: {tuning.timed} candidates timed, {tuning.tuned} of {len(tuning.layers)} convs measured")
    print(f"{'layer':28} {'auto':>12} {'ms':>8} {'direct':>12} {'ms':>8} {'tuned':>12} {'ms':>8} {'a/d':>5} {'t/d':>5}")
    for name in best["auto"]:
        a, d, t = (best[key][name] for key in ("auto", "direct", "tuned"))
        print(f"{name:28} {algorithm['auto'][name]:>12} {a * 1e3:8.1f} {algorithm['direct'][name]:>12} {d * 1e3:8.1f}"
              f" {algorithm['tuned'][name]:>12} {t * 1e3:8.1f} {a / d:5.2f} {t / d:5.2f}")
    winograd = [name for name in best["auto"] if algorithm["auto"][name] == "winograd"]
    if winograd:
        a, d = (sum(best[key][name] for name in winograd) for key in ("auto", "direct"))
        print(f"the {len(winograd)} convs 'auto' runs in Winograd: auto {a * 1e3:.1f} ms, direct {d * 1e3:.1f} ms,"
              f" ratio {a / d:.2f}")
    print("whole forward (fastest round): " + ", ".join(f"{name} {seconds * 1e3:.0f} ms"
                                                        for name, seconds in totals.items()))


if __name__ == "__main__":
    main()
