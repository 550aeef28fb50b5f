"""Executor speed against PyTorch eager, measured in the same run (not a test).

    python benchmarks/executor.py                 # ResNet-18 and ResNet-50 at batch 1 and 8
    python benchmarks/executor.py --rounds 7 --models resnet50 --batches 1
    python benchmarks/executor.py --no-tune       # the cost model's choices, not the tuner's

Each side runs in its own worker process (NumPy's OpenBLAS and PyTorch's thread pools spin and slow
each other by up to 3x when they share a process), with the same thread count. Rounds alternate the
two with a short pause between; each round times several forward passes per side and takes the
fastest (the least disturbed by whatever else the machine does; noise only ever adds time); the side that goes
first alternates. Printed per configuration: the median NumPy/PyTorch ratio over rounds and its range, the ratio of
each side's fastest pass over the whole run ('best': on a machine whose load comes in bursts, the steadiest
estimate), the executor's GFLOP/s and its fraction of the machine's fp32 GEMM peak (a 2048^3 float32 product through
the same NumPy, timed by the NumPy worker after the rounds: this machine's speed drifts, so the peak is measured in
the same run), and each worker's peak memory.
The NumPy side runs the tuner's choices (`convcalc.execution.tune`, as `convcalc run`: the user's cache, timed first
within `convcalc tune`'s budget where it has none), or with --no-tune the cost model's.
The PyTorch models are the hand-built torch.nn networks of tests/torch_models.py, with the same
layer names, so the same weights run on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUNED = "--no-tune" not in sys.argv   # the worker's: measure the cost model's choices (`convcalc run --no-tune`)
PEAK_SIZE = 2048      # the machine's fp32 GEMM peak: a PEAK_SIZE^3 float32 product, timed in the NumPy worker


def worker(side: str, model: str, batch: int, threads: int) -> None:
    """Serve 'time N' requests on stdin: run N forwards, answer the fastest and median seconds (JSON)."""
    import resource

    sys.path.insert(0, str(ROOT))   # the checkout's convcalc, installed or not

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
    used = None   # the OpenBLAS kernels the NumPy side runs
    if side == "torch":
        import torch

        torch.set_num_threads(threads)
        sys.path.insert(0, str(ROOT / "tests"))
        from torch_models import TORCH_MODELS

        net = TORCH_MODELS[model][0]().eval()
        tensor = torch.from_numpy(x)

        def forward():
            with torch.no_grad():
                net(tensor)
    else:
        import convcalc
        from convcalc.analysis.summary import analyze
        from convcalc.kernels.blas import kernels
        from convcalc.execution.network import Network
        from convcalc.execution.tune import TUNE_BUDGET, tune

        graph = convcalc.build_graph(convcalc.load_spec(ROOT / "specs" / f"{model}.yaml"))
        summary = analyze(graph, (3, 224, 224))
        if TUNED:        # as `convcalc run` does: the cached choices, else timed first (`convcalc tune`'s budget)
            tuning = tune(summary, batch, budget=TUNE_BUDGET)
            for warning in tuning.warnings:
                print(warning, file=sys.stderr)
        used = kernels()
        network = Network(summary)

        def forward():
            network.run(x, check_finite=False)

    forward()
    print(json.dumps({"ready": True, "kernels": used}), flush=True)
    for line in sys.stdin:
        if line.split()[0] == "peak":    # the BLAS's own best: a large square float32 GEMM, fastest of 5
            a = rng.standard_normal((PEAK_SIZE, PEAK_SIZE)).astype(np.float32)
            product = np.empty_like(a)
            seconds = []
            for _ in range(6):
                tic = time.perf_counter()
                np.matmul(a, a, out=product)
                seconds.append(time.perf_counter() - tic)
            print(json.dumps({"gflops": 2 * PEAK_SIZE ** 3 / min(seconds[1:]) / 1e9}), flush=True)
            continue
        count = int(line.split()[1])
        times = []
        for _ in range(count):
            tic = time.perf_counter()
            forward()
            times.append(time.perf_counter() - tic)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"best": min(times), "median": statistics.median(times), "peak_mib": peak_mib}), flush=True)


class Worker:
    def __init__(self, side: str, model: str, batch: int, threads: int):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", side, model, str(batch), str(threads),
             *(() if TUNED else ("--no-tune",))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.kernels = json.loads(self.process.stdout.readline())["kernels"]

    def ask(self, request: str) -> dict:
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def peak(self) -> float:
        return self.ask("peak")["gflops"]

    def time(self, count: int) -> dict:
        return self.ask(f"time {count}")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def macs_of(model: str, batch: int) -> int:
    sys.path.insert(0, str(ROOT))
    import convcalc

    return convcalc.analyze(convcalc.load_spec(ROOT / "specs" / f"{model}.yaml")).totals.macs * batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="forward passes per side per round")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between the sides of a round")
    parser.add_argument("--no-tune", action="store_true",
                        help="the cost model's algorithms and OpenBLAS's own kernels (as `convcalc run --no-tune`);"
                             " default: the tuned ones (the user's cache, timed first where it has none)")
    args = parser.parse_args()

    print(f"{'model':10} {'batch':>5} {'numpy ms':>9} {'torch ms':>9} {'ratio':>6} {'range':>11} {'best':>5} {'GF/s':>6}"
          f" {'of peak':>7} {'peak GF/s':>9} {'numpy MiB':>9} {'torch MiB':>9}")
    shown_kernels = False
    for model in args.models:
        for batch in args.batches:
            numpy_side = Worker("numpy", model, batch, args.threads)
            if numpy_side.kernels and not shown_kernels:
                print(f"(NumPy's OpenBLAS runs its {numpy_side.kernels} kernels)", flush=True)
                shown_kernels = True
            torch_side = Worker("torch", model, batch, args.threads)
            ratios, numpy_times, torch_times = [], [], []
            numpy_peak = torch_peak = 0.0
            for round_index in range(args.rounds):
                if round_index % 2 == 0:   # alternate which side goes first: drift within a round hits both
                    a = numpy_side.time(args.repeats)
                    time.sleep(args.pause)
                    b = torch_side.time(args.repeats)
                else:
                    b = torch_side.time(args.repeats)
                    time.sleep(args.pause)
                    a = numpy_side.time(args.repeats)
                time.sleep(args.pause)
                numpy_times.append(a["best"])
                torch_times.append(b["best"])
                ratios.append(a["best"] / b["best"])
                numpy_peak, torch_peak = a["peak_mib"], b["peak_mib"]
            peak = numpy_side.peak()
            numpy_side.close()
            torch_side.close()
            numpy_ms = statistics.median(numpy_times) * 1000
            torch_ms = statistics.median(torch_times) * 1000
            gflops = 2 * macs_of(model, batch) / (numpy_ms / 1000) / 1e9
            print(f"{model:10} {batch:5d} {numpy_ms:9.1f} {torch_ms:9.1f} {statistics.median(ratios):6.2f}"
                  f" {min(ratios):5.2f}-{max(ratios):<5.2f} {min(numpy_times) / min(torch_times):5.2f} {gflops:6.1f} {gflops / peak:7.0%} {peak:9.0f}"
                  f" {numpy_peak:9.0f} {torch_peak:9.0f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
