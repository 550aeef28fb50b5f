"""Transposed patches (`kernels.conv_im2col_t`) against the direct path 'auto' took before them, on convs with few
input channels (not a test).

    python benchmarks/small_channels.py                  # float32, batch 1, BLAS's default threads
    python benchmarks/small_channels.py --batch 8

Per configuration: the best of several runs, alternating, cold caches (as benchmarks/winograd.py), of the path
'auto' takes without transposed patches (im2col, rows, or the tap GEMMs at batch >= 4) and of the transposed
patches, their ratio, and what 'auto' takes now. The stride-2 rows are why TRANSPOSED_PATCHES_MAX_RUN in
convcalc/layers/conv_choice.py applies to stride-1 convs only: there BLAS's transposed operand costs more than the
shorter patch copy saves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # the checkout's convcalc, installed or not
sys.path.insert(0, str(Path(__file__).resolve().parent))

import convcalc.layers.conv_choice as conv  # noqa: E402  (the cost model's limits live there)
from convcalc.kernels import MacCounter, tap_block_columns, tap_blocks, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402
from winograd import setup, timed  # noqa: E402

# (dims, channels, out_channels, kernel, stride, spatial size): first convs of VGG, U-Net, LeNet, C3D, the edge
# demo's Sobel pair; ResNet/MobileNet-style strided stems
GRID = [
    (2, 3, 64, 3, 1, 224), (2, 1, 64, 3, 1, 572), (2, 1, 6, 5, 1, 32), (2, 1, 2, 3, 1, 256),
    (2, 3, 16, 3, 1, 32), (2, 2, 32, 5, 1, 128), (2, 4, 32, 3, 1, 112), (3, 3, 64, 3, 1, 56),
    (1, 1, 32, 7, 1, 16000), (1, 2, 64, 3, 1, 4096),
    (2, 3, 64, 7, 2, 224), (2, 3, 32, 3, 2, 224), (2, 1, 16, 5, 2, 256),
]


def main() -> None:
    args, dtype, rng, scratch = setup(__doc__.splitlines()[0], repeats=10)
    limits = conv.TRANSPOSED_PATCHES_MAX_RUN, conv.TRANSPOSED_PATCHES_MAX_RUN_STRIDED
    print(f"batch {args.batch}, {args.dtype}; times in ms (best of {args.repeats}, cold caches)")
    print(f"{'conv':>34} {'before':>8} {'method':>8} {'transposed':>11} {'ratio':>6}  auto now")
    for dims, channels, out_channels, kernel, stride, size in GRID:
        shape = (channels, *(size,) * dims)
        x = to_storage(rng.standard_normal((args.batch, *shape)).astype(dtype))
        layer = lookup(f"Conv{dims}d").from_args({"out_channels": out_channels, "kernel_size": kernel,
                                                  "stride": stride, "padding": kernel // 2})
        inferred = layer.infer([shape])
        params = {name: rng.standard_normal(s) / 10 for name, s in inferred.params.items()}
        now = layer.prepare(params, [shape], inferred.out_shape, dtype)
        try:
            conv.TRANSPOSED_PATCHES_MAX_RUN = conv.TRANSPOSED_PATCHES_MAX_RUN_STRIDED = 0
            before = layer.prepare(params, [shape], inferred.out_shape, dtype)
        finally:
            conv.TRANSPOSED_PATCHES_MAX_RUN, conv.TRANSPOSED_PATCHES_MAX_RUN_STRIDED = limits
        blocks = tap_blocks(layer.kernel_size, layer.stride, layer.dilation)
        transposed = {**before, "method": "im2col_t", "blocks": blocks,
                      "weights": tap_block_columns(np.asarray(params["weight"], dtype=dtype), blocks)}
        best = {"before": float("inf"), "transposed": float("inf")}
        plans = {"before": before, "transposed": transposed}
        for _ in range(args.repeats):
            for name, plan in plans.items():
                best[name] = min(best[name], timed(lambda: layer.forward([x], plan, MacCounter()), scratch))
        label = f"{dims}-D {channels}->{out_channels} k{kernel} s{stride} @ {'x'.join([str(size)] * dims)}"
        print(f"{label:>34} {best['before'] * 1e3:8.3f} {before['method']:>8} {best['transposed'] * 1e3:11.3f}"
              f" {best['transposed'] / best['before']:6.2f}  {now['method']}")


if __name__ == "__main__":
    main()
