"""Direct (GEMM) against Winograd F(2, 3) convolution in convcalc's executor, and what 'auto' picks (not a test).

    python benchmarks/winograd.py                  # the grid below, float32, batch 1, BLAS's default threads
    python benchmarks/winograd.py --batch 8 --dtype float64

Per configuration (3-tap kernels, stride 1, 'same' padding): the best of several runs, alternating, of the direct
path 'auto' would otherwise take (im2col, rows or tap GEMMs) and of Winograd, their ratio, and whether 'auto' chose the
faster. Between runs a 32 MiB buffer is rewritten, so each conv starts with cold caches, as it does inside a
network (with warm caches the transforms look cheaper than they are), and glibc is told to keep freed memory
(mallopt), as a network's steady state does: without it, freeing the transforms' buffers hands their pages back
and every call pays ~2 page faults per 4 KiB again (3x slower Winograd on 56x56x64). WINOGRAD_MIN_TILES and
the other WINOGRAD_* constants in convcalc/layers/conv_cost.py are fitted to these ratios; near 1 either choice costs little.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # the checkout's convcalc, installed or not

from convcalc.kernels import MacCounter, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

# (dims, channels, out_channels, spatial size): ResNet's 3x3 stages, narrower and wider maps, 1-D and 3-D
GRID = [
    (2, 64, 64, 56), (2, 128, 128, 28), (2, 256, 256, 14), (2, 512, 512, 7),
    (2, 32, 32, 112), (2, 32, 32, 56), (2, 64, 64, 28), (2, 128, 128, 14), (2, 256, 256, 7),
    (2, 16, 16, 112), (2, 64, 128, 56), (2, 128, 64, 56), (2, 256, 256, 28), (2, 512, 512, 14),
    (2, 3, 64, 224), (2, 64, 64, 112),
    (1, 64, 64, 4096), (1, 256, 256, 512), (1, 16, 16, 4096),
    (3, 32, 32, 28), (3, 64, 64, 14), (3, 16, 16, 32),
]


def keep_freed_memory() -> None:
    """glibc: no trimming of the heap top and no mmap for large blocks, so freed buffers are reused without faults."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD
        libc.mallopt(-3, 1 << 30)   # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def setup(description: str, repeats: int) -> tuple[argparse.Namespace, np.dtype, np.random.Generator, np.ndarray]:
    """The grid benchmarks' options (--batch, --dtype, --repeats), glibc told to keep freed memory, a seeded
    generator and the scratch buffer `timed` rewrites to start each run with cold caches."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=repeats)
    args = parser.parse_args()
    keep_freed_memory()
    return args, np.dtype(args.dtype), np.random.default_rng(0), np.zeros(8 * 2 ** 20, dtype=np.float32)


def timed(function, scratch: np.ndarray) -> float:
    scratch += 1.0                               # evict the conv's operands: start cold, as in a network
    tic = time.perf_counter()
    function()
    return time.perf_counter() - tic


def main() -> None:
    args, dtype, rng, scratch = setup(__doc__.splitlines()[0], repeats=12)
    print(f"batch {args.batch}, {args.dtype}; times in ms (best of {args.repeats}, cold caches)")
    print(f"{'conv':>26} {'tiles':>6} {'direct':>8} {'method':>8} {'winograd':>9} {'ratio':>6}  auto")
    right = 0
    for dims, channels, out_channels, size in GRID:
        spatial = (size,) * dims
        shape = (channels, *spatial)
        x = to_storage(rng.standard_normal((args.batch, *shape)).astype(dtype))
        plans = {}
        for algorithm in ("auto", "direct", "winograd"):
            layer = lookup(f"Conv{dims}d").from_args({"out_channels": out_channels, "kernel_size": 3,
                                                      "padding": 1, "algorithm": algorithm})
            inferred = layer.infer([shape])
            params = {name: rng.standard_normal(s) / 10 for name, s in inferred.params.items()}
            plans[algorithm] = (layer, layer.prepare(params, [shape], inferred.out_shape, dtype))
        best = {"direct": float("inf"), "winograd": float("inf")}
        for _ in range(args.repeats):            # alternate the two, so that load on the machine hits both
            for algorithm in best:
                layer, plan = plans[algorithm]
                best[algorithm] = min(best[algorithm], timed(lambda: layer.forward([x], plan, MacCounter()), scratch))
        results = {name: (plan["method"], best.get(name, 0.0)) for name, (_, plan) in plans.items()}
        method, direct = results["direct"]
        winograd = results["winograd"][1]
        chose = results["auto"][0]
        good = (chose == "winograd") == (winograd < direct)
        right += good
        tiles = args.batch * int(np.prod([-(-s // 2) for s in spatial]))
        label = f"{dims}-D {channels}->{out_channels} @ {'x'.join(map(str, spatial))}"
        print(f"{label:>26} {tiles:6d} {direct * 1e3:8.3f} {method:>8} {winograd * 1e3:9.3f} {winograd / direct:6.2f}"
              f"  {chose}{'' if good else '  (slower choice)'}")
    print(f"'auto' took the faster path in {right} of {len(GRID)} configurations")


if __name__ == "__main__":
    main()
