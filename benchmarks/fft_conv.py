"""Direct (GEMM) against FFT convolution in convcalc's executor, and what algorithm 'auto' picks (not a test).

    python benchmarks/fft_conv.py            # the grid below, float32, batch 1
    python benchmarks/fft_conv.py --batch 4 --dtype float64

Per configuration: the best of a few runs of each algorithm, their ratio, the cost model's ratio
(`conv.conv_costs`: FFT over direct), and whether 'auto' chose the faster one. The constants
DIRECT_PATCH_COST, FFT_TRANSFORM_COST and FFT_SPECTRAL_COST in convcalc/layers/conv_cost.py are a least-squares
fit of these timings with one BLAS thread (OPENBLAS_NUM_THREADS=1: a loaded 2-core machine makes threaded
BLAS timings meaningless); near a ratio of 1 either choice costs little.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from convcalc.kernels import MacCounter, fast_fft_length
from convcalc.layers import lookup
from convcalc.layers.conv_cost import conv_costs
from convcalc.algebra.shapes import prod

# (dims, channels, out_channels, kernel, spatial size, stride, groups)
GRID = [
    (1, 1, 1, 9, 4096, 1, 1), (1, 16, 16, 9, 1024, 1, 1), (1, 32, 32, 31, 2048, 1, 1), (1, 64, 64, 3, 2048, 1, 1),
    (1, 1, 1, 64, 16000, 1, 1), (1, 8, 8, 5, 512, 1, 1),
    (2, 3, 16, 3, 224, 1, 1), (2, 3, 16, 7, 224, 2, 1), (2, 16, 16, 5, 64, 1, 1), (2, 16, 16, 7, 64, 1, 1),
    (2, 16, 16, 9, 64, 1, 1), (2, 32, 32, 11, 56, 1, 1), (2, 64, 64, 13, 28, 1, 1), (2, 1, 1, 15, 256, 1, 1),
    (2, 64, 64, 31, 14, 1, 64), (2, 8, 8, 21, 64, 1, 1), (2, 32, 32, 3, 56, 1, 1), (2, 4, 4, 9, 128, 2, 1),
    (3, 4, 4, 5, 24, 1, 1), (3, 8, 8, 7, 20, 1, 1), (3, 2, 2, 3, 32, 1, 1),
]


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        function()
        times.append(time.perf_counter() - tic)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    dtype = np.dtype(options.dtype)
    rng = np.random.default_rng(0)
    print(f"{'dims C O k size s g':28} {'direct ms':>10} {'fft ms':>9} {'fft/direct':>10} {'model':>7}  auto")
    for dims, channels, out_channels, k, size, stride, groups in GRID:
        shape = (channels, *(size,) * dims)
        args = {"out_channels": out_channels, "kernel_size": k, "stride": stride, "groups": groups,
                "padding": k // 2}
        x = rng.standard_normal((options.batch, *shape[1:], channels)).astype(dtype)   # channels-last
        seconds = {}
        for algorithm in ("direct", "fft"):
            layer = lookup(f"Conv{dims}d").from_args({**args, "algorithm": algorithm})
            inferred = layer.infer([shape])
            weight = rng.standard_normal(inferred.params["weight"])
            plan = layer.prepare({"weight": weight, "bias": np.zeros(out_channels)}, [shape], inferred.out_shape,
                                 dtype)
            seconds[algorithm] = best_time(lambda: layer.forward([x], plan, MacCounter()), options.repeats)
        auto = lookup(f"Conv{dims}d").from_args(args)
        plan = auto.prepare({"weight": weight, "bias": np.zeros(out_channels)}, [shape], inferred.out_shape, dtype)
        fft_shape = (fast_fft_length(size + 2 * (k // 2)),) * dims
        freqs = prod(fft_shape[:-1]) * (fft_shape[-1] // 2 + 1)
        direct, fft = conv_costs(channels, out_channels, groups, k ** dims, prod(inferred.out_shape[1:]),
                                 fft_shape, freqs)
        model = fft / direct
        ratio = seconds["fft"] / seconds["direct"]
        chose_fft = plan["method"] == "fft"
        verdict = "fft" if chose_fft else "direct"
        mark = "" if chose_fft == (ratio < 1) else "  (slower choice)"
        label = f"{dims} {channels} {out_channels} {k} {size} {stride} {groups}"
        print(f"{label:28} {1e3 * seconds['direct']:10.2f} {1e3 * seconds['fft']:9.2f} {ratio:10.2f} {model:7.2f}"
              f"  {verdict}{mark}")


if __name__ == "__main__":
    main()
