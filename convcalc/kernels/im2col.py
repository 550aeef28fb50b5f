"""Convolution by patches: im2col and its transposes.

Owns the window view of a padded channels-last array (`windows`) and its transpose, col2im (`windows_transpose`,
one strided slice-add per kernel tap, `tap_index`); the im2col convolution (`conv_weight_columns`, `conv_im2col`:
one GEMM per group, a bias folded into the GEMM by `with_ones_column`) and its input gradient (`conv_input_grad`,
a transposed convolution, one GEMM per tap); and the convolution on transposed patches for few input channels
(`tap_blocks`, `tap_block_columns`, `conv_im2col_t`), which copies its patch rows from the `polyphase` layout;
and im2col in blocks of output rows (`conv_im2col_blocked`, `block_rows`): patches and GEMM block by block, each
block's patches small enough to stay in the core's L2 cache between their copy and the GEMM that reads them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

from .._numpy import np

from . import parallel
from .blas import gemm_accumulate, single_threaded, thread_pool
from .counting import MacCounter
from .phases import polyphase


def sliding_window_view(*args, **kwargs):
    """NumPy's ``stride_tricks.sliding_window_view``, looked up when called (NumPy is imported on first use)."""
    return np.lib.stride_tricks.sliding_window_view(*args, **kwargs)


def windows(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
            out: Sequence[int]) -> np.ndarray:
    """A strided view ``(N, *out, *kernel, C)`` of the windows of a padded channels-last array.

    Channels innermost, so that copying the view into a patch matrix moves contiguous runs of C.
    """
    dims = len(kernel)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    view = sliding_window_view(x, spans, axis=tuple(range(1, dims + 1)))   # (N, *full, C, *spans)
    index = [slice(None)]
    index += [slice(0, (o - 1) * s + 1, s) for o, s in zip(out, stride)]
    index += [slice(None)]
    index += [slice(None, None, d) for d in dilation]
    view = view[tuple(index)]                                               # (N, *out, C, *kernel)
    return np.moveaxis(view, dims + 1, -1)                                  # (N, *out, *kernel, C)


def tap_index(offsets: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
              out: Sequence[int]) -> tuple[slice, ...]:
    """The strided slice ``(:, *[t*d : t*d + (o-1)*s + 1 : s])`` of a padded (N, *P, C) array that the kernel tap at
    ``offsets`` reads for the ``out`` output positions (`windows`, `reduce_windows`)."""
    return (slice(None), *(slice(t * d, t * d + (o - 1) * s + 1, s)
                           for t, s, d, o in zip(offsets, stride, dilation, out)))


def windows_transpose(cols: np.ndarray, padded_spatial: Sequence[int], kernel: Sequence[int],
                      stride: Sequence[int], dilation: Sequence[int]) -> np.ndarray:
    """The VJP of `windows` (col2im): ``cols`` (N, *out, *kernel, C), the gradient w.r.t. every window's taps
    (a broadcast view is fine), scatter-added to the positions those taps read: (N, *padded_spatial, C).

    One strided slice-add per kernel tap (positions vectorised), as `reduce_windows` reads them.
    """
    dims = len(kernel)
    out = cols.shape[1:1 + dims]
    result = np.zeros((cols.shape[0], *padded_spatial, cols.shape[-1]), dtype=cols.dtype)
    lead = (slice(None),) * (1 + dims)
    for offsets in np.ndindex(*kernel):
        result[tap_index(offsets, stride, dilation, out)] += cols[(*lead, *offsets, slice(None))]
    return result


def conv_weight_columns(weight: np.ndarray, groups: int) -> np.ndarray:
    """PyTorch (O, C/g, *k) -> (g, prod(k) * C/g, O/g), rows ordered (*kernel, channel) like `windows`."""
    out_channels, per_group_in = weight.shape[:2]
    grouped = weight.reshape(groups, out_channels // groups, per_group_in, *weight.shape[2:])  # (g, O/g, C/g, *k)
    grouped = np.moveaxis(grouped, 2, -1)                                  # (g, O/g, *k, C/g)
    grouped = grouped.reshape(groups, out_channels // groups, -1)         # (g, O/g, prod(k)*C/g)
    return np.ascontiguousarray(grouped.transpose(0, 2, 1))


def with_ones_column(values: np.ndarray, positions: int = 1) -> np.ndarray:
    """``values`` (*P, *K), its first ``positions`` axes the rows, copied into the first prod(K) columns of a
    (prod(P), prod(K) + 1) matrix whose last column is ones. Its product with weights whose last row is a bias adds
    that bias inside the GEMM (`MacCounter.matmul`'s ``ones_column``): no pass over the output, for the cost of
    this copy, which im2col's patches and a strided 1x1 conv's picked positions pay anyway."""
    width = int(np.prod(values.shape[positions:]))
    matrix = np.empty((int(np.prod(values.shape[:positions])), width + 1), dtype=values.dtype)
    matrix[:, width] = 1
    target = matrix[:, :width].reshape(values.shape)   # splitting axes of a strided view: a view, never a copy
    assert matrix.size == 0 or np.may_share_memory(target, matrix)
    parallel.copy_into(target, values)                 # split over the threads (the batch, else the rows)
    return matrix


def conv_im2col(x: np.ndarray, columns: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                dilation: Sequence[int], out: Sequence[int], counter: MacCounter) -> np.ndarray:
    """Cross-correlation of a padded ``(N, *S, C)`` array as one GEMM per group (batched over groups)."""
    groups, rows, out_per_group = columns.shape
    batch = x.shape[0]
    patches = windows(x, kernel, stride, dilation, out)                   # (N, *out, *k, C)
    positions = batch * int(np.prod(out))
    if groups == 1:
        patches = patches.reshape(positions, rows)                         # copy: (N*out, prod(k)*C)
        result = counter.matmul(patches, columns[0])                       # (N*out, O)
    else:
        taps = int(np.prod(kernel))
        patches = patches.reshape(positions, taps, groups, rows // taps)   # (N*out, prod(k), g, C/g)
        patches = patches.transpose(2, 0, 1, 3).reshape(groups, positions, rows)   # (g, N*out, prod(k)*C/g)
        result = counter.matmul(patches, columns)                          # (g, N*out, O/g)
        result = result.transpose(1, 0, 2)                                 # (N*out, g, O/g)
    return result.reshape(batch, *out, groups * out_per_group)


def conv_input_grad(grad: np.ndarray, columns: np.ndarray, padded_spatial: Sequence[int], kernel: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int]) -> np.ndarray:
    """The VJP of a cross-correlation w.r.t. its padded input (a transposed convolution of ``grad``).

    ``grad`` (N, *out, O); ``columns`` (g, prod(k) * C/g, O/g) as `conv_weight_columns` lays them out. For each
    kernel tap t: ``dx[tap t's positions] += grad @ W_tᵀ`` (one GEMM per tap and group, batched over groups;
    elementwise for a depthwise conv without channel multiplier). Returns (N, *padded_spatial, C).
    """
    groups, rows, out_per_group = columns.shape
    taps = int(np.prod(kernel))
    per_group_in = rows // taps
    batch, out = grad.shape[0], grad.shape[1:-1]
    positions = batch * int(np.prod(out))
    weights = columns.reshape(groups, taps, per_group_in, out_per_group).transpose(1, 0, 3, 2)   # (k, g, O/g, C/g)
    result = np.zeros((batch, *padded_spatial, groups * per_group_in), dtype=grad.dtype)
    depthwise = per_group_in == 1 and out_per_group == 1
    if not depthwise:
        rows_by_group = np.ascontiguousarray(grad.reshape(positions, groups, out_per_group).transpose(1, 0, 2))
    for tap, offsets in enumerate(np.ndindex(*kernel)):
        if depthwise:
            part = grad * weights[tap].reshape(groups)                               # (N, *out, C)
        else:
            part = np.matmul(rows_by_group, weights[tap])                            # (g, N*out, C/g)
            part = part.transpose(1, 0, 2).reshape(batch, *out, groups * per_group_in)
        result[tap_index(offsets, stride, dilation, out)] += part
    return result


def tap_blocks(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
               ) -> list[tuple[tuple[int, ...], tuple[tuple[int, int, int], ...], tuple[tuple[int, ...], ...]]]:
    """The kernel's taps grouped by the `polyphase` phase they read.

    Along an axis, tap t reads padded position s o + d t: phase (d t) mod s, row o + (d t) div s of that phase.
    The taps of one phase read rows at offsets in arithmetic progression. Per combination of per-axis phases,
    one block: (phases, per axis (first offset, offset step, count), per axis the kernel indices it holds)."""
    per_axis = []
    for k, s, d in zip(kernel, stride, dilation):
        groups: dict[int, list[tuple[int, int]]] = {}
        for t in range(k):
            groups.setdefault(d * t % s, []).append((t, d * t // s))
        axis = []
        for phase, members in sorted(groups.items()):
            offsets = [off for _, off in members]
            step = offsets[1] - offsets[0] if len(offsets) > 1 else 1
            axis.append((phase, (offsets[0], step, len(offsets)), tuple(t for t, _ in members)))
        per_axis.append(axis)
    blocks = []
    for combo in np.ndindex(*(len(axis) for axis in per_axis)):
        picked = [axis[i] for axis, i in zip(per_axis, combo)]
        blocks.append((tuple(p[0] for p in picked), tuple(p[1] for p in picked), tuple(p[2] for p in picked)))
    return blocks


def tap_block_columns(weight: np.ndarray, blocks: Sequence[tuple]) -> np.ndarray:
    """PyTorch (O, C, *k) -> (C * prod(k), O): the rows `conv_im2col_t`'s transposed patches hold, block by block
    (`tap_blocks`), each block's rows ordered (channel, *taps)."""
    parts = []
    for _, _, taps in blocks:
        part = weight
        for axis, indices in enumerate(taps):
            part = np.take(part, indices, axis=2 + axis)
        parts.append(part.reshape(weight.shape[0], -1))
    return np.ascontiguousarray(np.concatenate(parts, axis=1).T)


def conv_im2col_t(x: np.ndarray, columns: np.ndarray, blocks: Sequence[tuple], pads: Sequence[tuple[int, int]],
                  kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int], out: Sequence[int],
                  counter: MacCounter) -> np.ndarray:
    """Ungrouped cross-correlation of an unpadded ``(N, *S, C)`` array with zero padding ``pads``, as one GEMM on
    transposed patches: (C * prod(k), N * prod(out)), one row per channel and tap.

    For few input channels im2col's patch copy moves runs of only k_last * C values per window; here the
    padded input is first split into its stride phases, channels first (`polyphase`), so every patch row is
    copied in runs of out_last values (a block of taps sharing a phase at a time, `tap_blocks`), and BLAS reads
    the transposed patches as they are (a transposed operand), giving the channels-last (N * out, O) output
    directly. ``columns``: `tap_block_columns` of the weights."""
    batch, channels, dims = x.shape[0], x.shape[-1], len(out)
    extent = [d * (k - 1) + s * (o - 1) + 1 for k, s, d, o in zip(kernel, stride, dilation, out)]
    q = polyphase(x, pads, stride, extent, channels_first=True)            # (*s, C, N, *rows)
    patches = np.empty((columns.shape[0], batch, *out), dtype=x.dtype)
    row = 0
    for phases, axes, _ in blocks:
        view = sliding_window_view(q[phases], out, axis=tuple(range(2, 2 + dims)))   # (C, N, *offsets, *out)
        view = view[(slice(None), slice(None), *(slice(first, first + step * (count - 1) + 1, step)
                                                 for first, step, count in axes))]
        counts = [count for _, _, count in axes]
        size = channels * int(np.prod(counts))
        patches[row:row + size].reshape(channels, *counts, batch, *out)[...] = np.moveaxis(view, 1, 1 + dims)
        row += size
    result = counter.matmul(patches.reshape(row, -1).T, columns)          # (N * out, O)
    return result.reshape(batch, *out, columns.shape[1])


# `conv_im2col_blocked` cuts its patch matrix into blocks of output rows of about this fraction of the L2 cache
# (its size read from the machine, `l2_bytes`), never fewer than BLOCK_MIN_ROWS rows (shorter GEMMs waste BLAS's
# packing of the weights, which it repeats per block); the tuner times it against the whole-matrix im2col.
BLOCK_CACHE_FRACTION = 4
BLOCK_MIN_ROWS = 128
FALLBACK_L2_BYTES = 2 ** 20


@functools.cache
def l2_bytes() -> int:
    """The first CPU's level-2 (data or unified) cache in bytes, from Linux's sysfs; FALLBACK_L2_BYTES elsewhere."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "2" and (index / "type").read_text().strip() != "Instruction":
                text = (index / "size").read_text().strip().upper()
                scale = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30}.get(text[-1:], 1)
                return int(text.rstrip("KMG")) * scale
        except (OSError, ValueError):
            continue
    return FALLBACK_L2_BYTES


def block_rows(depth: int, itemsize: int) -> int:
    """Output positions per block of `conv_im2col_blocked` for patches ``depth`` values wide."""
    return max(l2_bytes() // BLOCK_CACHE_FRACTION // max(depth * itemsize, 1), BLOCK_MIN_ROWS)


def conv_im2col_blocked(x: np.ndarray, columns: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                        dilation: Sequence[int], out: Sequence[int], counter: MacCounter, ones_column: bool = False,
                        into: np.ndarray | None = None, workers: int = 1) -> np.ndarray:
    """Ungrouped cross-correlation of a padded ``(N, *S, C)`` array as im2col (`windows`' patches times
    ``columns``, (prod(k) * C [+ 1], O)), one block of whole output lines (the first spatial axis) at a time:
    each block's patches are copied into one reused buffer of about `block_rows` rows and multiplied at once,
    while they are still in cache, into the block's rows of the output. With ``ones_column`` the buffer's last
    column is ones and ``columns``' last row the bias (`with_ones_column`). With ``into`` (the output's shape,
    C-contiguous) each block's product is added into it (BLAS's beta = 1, `blas.gemm_accumulate`) and ``into``
    returned. ``workers`` > 1: that many threads share the blocks, each copying its own and multiplying them
    with BLAS on one thread (`blas.single_threaded`; NumPy's copies and matmul release the GIL). The blocks
    depend on the shapes and the machine's cache only, and each block's product is the same one-thread GEMM
    whichever thread runs it, so a run's bytes never vary."""
    batch, channels = x.shape[0], x.shape[-1]
    depth, width = columns.shape[0] - ones_column, columns.shape[0]
    lines, rest = out[0], int(np.prod(out[1:]))
    per_block = max(1, min(lines, block_rows(width, x.dtype.itemsize) // max(rest, 1)))
    patches = windows(x, kernel, stride, dilation, out)                   # (N, *out, *k, C)
    result = into.reshape(-1, columns.shape[1]) if into is not None else \
        np.empty((batch * lines * rest, columns.shape[1]), dtype=x.dtype)
    blocks = [(n, first, min(lines, first + per_block)) for n in range(batch) for first in range(0, lines, per_block)]

    def run(share: Sequence[tuple[int, int, int]]) -> None:
        buffer = np.empty((per_block * rest, width), dtype=x.dtype)
        if ones_column:
            buffer[:, depth] = 1
        for n, first, last in share:
            rows = (last - first) * rest
            buffer[:rows, :depth].reshape(last - first, *out[1:], *kernel, channels)[...] = patches[n, first:last]
            start = (n * lines + first) * rest
            target = result[start:start + rows]
            if into is None:
                np.matmul(buffer[:rows], columns, out=target)
            elif not gemm_accumulate(buffer[:rows], columns, target):
                target += np.matmul(buffer[:rows], columns)

    workers = min(workers, len(blocks))
    if workers > 1:
        with single_threaded():
            list(thread_pool(workers).map(run, [blocks[index::workers] for index in range(workers)]))
    else:
        run(blocks)
    counter.add(result.size * depth)
    return into if into is not None else result.reshape(batch, *out, columns.shape[1])

