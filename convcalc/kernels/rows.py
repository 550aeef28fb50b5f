"""Ungrouped convolution as a few GEMMs on rows of the input, without im2col's full patch matrix.

Owns `conv_rows` (one GEMM per offset along the first spatial axis, the other axes unfolded once with
`im2col.windows`) and `conv_flat` (stride 1: one GEMM per kernel tap straight on the flattened padded input,
computing and dropping the padding grid's extra positions, which the counter books as ``discarded``).
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np

from .counting import MacCounter
from .im2col import windows


def conv_rows(x: np.ndarray, row_columns: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
              dilation: Sequence[int], out: Sequence[int], counter: MacCounter) -> np.ndarray:
    """Ungrouped cross-correlation as k_0 GEMMs, one per offset along the first spatial axis.

    The remaining axes are unfolded once, over every padded position of the first axis: (N, P_0, *out[1:],
    *k[1:], C), one copy (P_0 / out_0 times im2col's size over k_0). Each first-axis offset then takes a slab of
    it, for stride 1 a contiguous run of rows at batch 1, which BLAS reads as it is.
    ``row_columns``: (k_0, prod(k[1:]) * C, O), rows ordered (*k[1:], C).
    """
    batch = x.shape[0]
    first_k, rest_k = kernel[0], kernel[1:]
    step, dil = stride[0], dilation[0]
    if rest_k:
        unfolded = windows(x, (1, *rest_k), (1, *stride[1:]), (1, *dilation[1:]), (x.shape[1], *out[1:]))
        rest = int(np.prod(unfolded.shape[2:]))
        unfolded = np.ascontiguousarray(unfolded).reshape(batch, x.shape[1], rest)   # copy: (N, P_0, rest)
    else:
        unfolded = x.reshape(batch, x.shape[1], int(np.prod(x.shape[2:])))
    result = None
    positions = batch * int(np.prod(out))
    for offset in range(first_k):
        start = offset * dil
        slab = unfolded[:, start:start + (out[0] - 1) * step + 1:step]          # (N, out_0, rest)
        part = counter.matmul(slab.reshape(positions, -1), row_columns[offset])
        if result is None:
            result = part
        else:
            result += part
    return result.reshape(batch, *out, row_columns.shape[-1])


def conv_flat(x: np.ndarray, taps: np.ndarray, kernel: Sequence[int], dilation: Sequence[int],
              out: Sequence[int], counter: MacCounter) -> np.ndarray:
    """Stride-1 cross-correlation without building patches: one GEMM per kernel tap, straight on the input.

    The padded input (N, *P, C) is seen as rows (N, prod(P), C). For stride 1 the tap at offset t reads,
    for every output position on the padded grid, row (position + flat offset of t): one contiguous
    run of rows, which BLAS takes as it is. The grid's extra columns (P - out on each trailing axis) are
    computed and dropped, costing prod(P)/prod(out) - 1 more multiply-accumulates than the conv has;
    the counter counts only those the conv has. ``taps``: (prod(k), C, O).
    """
    batch, channels = x.shape[0], x.shape[-1]
    padded = x.shape[1:-1]
    strides = [int(np.prod(padded[axis + 1:])) for axis in range(len(padded))]   # flat step per axis
    rows = sum((o - 1) * step for o, step in zip(out, strides)) + 1                # grid rows reaching the last output
    flat = x.reshape(batch, -1, channels)
    out_channels = taps.shape[-1]
    grid = np.empty((batch, int(np.prod(padded)), out_channels), dtype=x.dtype)
    scratch = np.empty((rows, out_channels), dtype=x.dtype)
    for n in range(batch):
        target = grid[n, :rows]
        for index, offsets in enumerate(np.ndindex(*kernel)):
            start = sum(o * d * step for o, d, step in zip(offsets, dilation, strides))
            if index == 0:
                np.matmul(flat[n, start:start + rows], taps[index], out=target)
            else:
                np.matmul(flat[n, start:start + rows], taps[index], out=scratch)
                target += scratch
    per_tap = channels * out_channels
    useful_rows = batch * int(np.prod(out))        # GEMM rows that land on an output position
    counter.add(useful_rows * per_tap * int(np.prod(kernel)))
    counter.discarded += (batch * rows - useful_rows) * per_tap * int(np.prod(kernel))
    view = grid.reshape(batch, *padded, out_channels)
    return view[(slice(None), *(slice(0, o) for o in out))]
