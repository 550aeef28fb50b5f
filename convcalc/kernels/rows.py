"""Ungrouped convolution as a few GEMMs on rows of the input, without im2col's full patch matrix.

Owns `conv_rows` (one GEMM per offset along the first spatial axis, the other axes unfolded once with
`im2col.windows`) and `conv_flat` (stride 1: one GEMM per kernel tap straight on the flattened padded input,
computing and dropping the padding grid's extra positions, which the counter books as ``discarded``) and
`conv_kn2row` (stride 1: every tap's weights side by side in one wide GEMM over blocks of the flattened padded input,
each tap's columns then added, shifted by its offset, into the output grid while the block is in cache).
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np

from .counting import MacCounter
from .blas import single_threaded, thread_pool
from .im2col import block_rows, windows


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


def kn2row_weights(weight: np.ndarray) -> np.ndarray:
    """PyTorch (O, C, *k) -> (C, prod(k) * O): every tap's (C, O) weights side by side, taps in `np.ndindex` order."""
    out_channels, channels = weight.shape[:2]
    taps = np.moveaxis(weight.reshape(out_channels, channels, -1), 2, 0)       # (prod(k), O, C)
    return np.ascontiguousarray(taps.transpose(2, 0, 1).reshape(channels, -1))


def conv_kn2row(x: np.ndarray, wide: np.ndarray, kernel: Sequence[int], dilation: Sequence[int], out: Sequence[int],
                counter: MacCounter, bias: np.ndarray | None = None, workers: int = 1) -> np.ndarray:
    """Stride-1 ungrouped cross-correlation as one wide GEMM per block of input rows (kn2row): ``wide`` (C,
    prod(k) * O), `kn2row_weights`. The padded input (N, *P, C) is seen as rows (N, prod(P), C), as `conv_flat`
    sees it; the tap at flat offset f adds input row i times its weights to the output grid's row i - f. Per block
    of about `block_rows` input rows, one GEMM gives every tap's product at once (O x the taps wide: BLAS runs near
    its peak where O alone is narrow), and each tap's columns are added, shifted by its offset, into the grid while
    the block is still in cache. The grid starts as ``bias`` (or zeros); the products that land on no output (the
    grid's extra columns, rows shifted out of it) are booked as ``discarded``. ``workers`` > 1: the samples, or at
    batch 1 the grid's rows, are cut into that many parts, each computed (its input rows and the taps' overlap) on
    a thread of its own with BLAS on one thread. The blocks depend on the shapes, ``workers`` and the machine's
    cache only: the same bytes on every run."""
    batch, channels = x.shape[0], x.shape[-1]
    padded = x.shape[1:-1]
    strides = [int(np.prod(padded[axis + 1:])) for axis in range(len(padded))]   # flat step per axis
    rows = sum((o - 1) * step for o, step in zip(out, strides)) + 1                # grid rows reaching the last output
    flat = x.reshape(batch, -1, channels)
    total = flat.shape[1]
    out_channels = wide.shape[1] // int(np.prod(kernel))
    offsets = [sum(t * d * step for t, d, step in zip(taps, dilation, strides)) for taps in np.ndindex(*kernel)]
    reach = max(offsets)
    grid = np.empty((batch, total, out_channels), dtype=x.dtype)
    per_block = min(total, block_rows(wide.shape[1], x.dtype.itemsize))
    if workers > 1 and batch == 1:      # parts of the grid's rows; each computes the input rows its taps reach
        parts = [(0, rows * index // workers, rows * (index + 1) // workers) for index in range(workers)]
    else:
        parts = [(n, 0, rows) for n in range(batch)]
    computed = [0] * len(parts)

    def run(index: int) -> None:
        n, low_row, high_row = parts[index]
        product = np.empty((per_block, wide.shape[1]), dtype=x.dtype)
        target = grid[n]
        if bias is None:
            target[low_row:high_row] = 0
        else:
            target[low_row:high_row] = bias
        end = min(total, high_row + reach)          # the input rows the part's grid rows read
        for first in range(low_row, end, per_block):
            last = min(end, first + per_block)
            block = product[:last - first]
            np.matmul(flat[n, first:last], wide, out=block)
            for tap, offset in enumerate(offsets):   # input row i -> grid row i - offset, kept in the part
                low, high = max(first - offset, low_row), min(last - offset, high_row)
                if low < high:
                    target[low:high] += block[low + offset - first:high + offset - first,
                                              tap * out_channels:(tap + 1) * out_channels]
        computed[index] = end - low_row

    workers = min(workers, len(parts))
    if workers > 1:
        with single_threaded():
            list(thread_pool(workers).map(lambda w: [run(i) for i in range(w, len(parts), workers)], range(workers)))
    else:
        for index in range(len(parts)):
            run(index)
    useful = batch * int(np.prod(out)) * channels * wide.shape[1]
    counter.add(useful)
    counter.discarded += sum(computed) * channels * wide.shape[1] - useful
    view = grid.reshape(batch, *padded, out_channels)
    return view[(slice(None), *(slice(0, o) for o in out))]
