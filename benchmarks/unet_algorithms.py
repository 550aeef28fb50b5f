"""U-Net's convs under three choices of algorithm, measured in the same run (not a test).

    python benchmarks/unet_algorithms.py                  # 572x572, batch 1, 3 rounds
    python benchmarks/unet_algorithms.py --size 188 --rounds 5
    python benchmarks/unet_algorithms.py --isolated --cpu-time --rounds 7   # each Winograd conv alone, 1 thread

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
from convcalc.kernels import MacCounter, to_storage  # noqa: E402
from convcalc.kernels.blas import kernels  # noqa: E402


def build(size: int, algorithm: str | None):
    graph = convcalc.build_graph(convcalc.load_spec(ROOT / "specs" / "unet.yaml"))
    if algorithm is not None:
        for node in graph.nodes:
            if hasattr(node.layer, "algorithm_choices"):
                node.layer.algorithm = algorithm
    return analyze(graph, (1, size, size))


def isolated(size: int, batch: int, rounds: int, clock) -> None:
    """Each conv 'auto' runs in Winograd, alone: Winograd, rows and im2col (bias in the GEMM) prepared on the same
    random weights and run round by round on the same random input; the fastest run of each."""
    summary = build(size, None)
    shapes = {row.name: row.output_shape for row in summary.layers}
    rng = np.random.default_rng(0)
    print(f"U-Net {size}x{size}, batch {batch}, each Winograd conv alone, fastest of {rounds} interleaved runs"
          f" ({'thread CPU time, 1 thread' if CPU_TIME else 'wall clock'}); CPU {cpu_model()}; OpenBLAS kernels"
          f" {kernels()}; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"{'layer':14} {'input':>16} {'winograd ms':>12} {'rows ms':>9} {'im2col ms':>10} {'w/rows':>7} {'w/best direct':>13}")
    for node, row in zip(summary.graph.nodes, summary.layers):
        layer = node.layer
        if not hasattr(layer, "algorithm_choices"):
            continue
        in_shape = summary.input_shape if node.inputs[0] not in shapes else shapes[node.inputs[0]]
        if layer.model_algorithm(in_shape[0], in_shape[1:], row.output_shape[1:], np.float32) != "winograd":
            continue
        params = {"weight": rng.standard_normal(row.weights["weight"]) * 0.1,
                  "bias": rng.standard_normal(row.output_shape[0])}
        x = to_storage(rng.standard_normal((batch, *in_shape)).astype(np.float32))
        plans = {choice: layer.prepare(params, [in_shape], row.output_shape, np.dtype(np.float32), choice=choice)
                 for choice in ("winograd", "rows", "im2col+bias")}
        best = {choice: float("inf") for choice in plans}
        for _ in range(rounds):
            for choice, plan in plans.items():
                tic = clock()
                layer.forward([x], plan, MacCounter())
                best[choice] = min(best[choice], clock() - tic)
        w, r, i = best["winograd"], best["rows"], best["im2col+bias"]
        print(f"{node.name:14} {str(list(in_shape)):>16} {w * 1e3:12.1f} {r * 1e3:9.1f} {i * 1e3:10.1f} {w / r:7.2f}"
              f" {w / min(r, i):13.2f}", flush=True)


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
    parser.add_argument("--isolated", action="store_true",
                        help="time each conv 'auto' runs in Winograd alone, against rows and im2col")
    args = parser.parse_args()
    if args.isolated:
        isolated(args.size, args.batch, args.rounds, time.thread_time if CPU_TIME else time.perf_counter)
        return
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
