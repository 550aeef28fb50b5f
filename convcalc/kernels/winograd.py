"""Convolution by Winograd's minimal filtering F(2, 3).

Owns the filter transform (`WINOGRAD_G`, `winograd_weights`) and `conv_winograd`: stride-1, undilated, ungrouped
3^d convolutions, the input copied in `polyphase` order, the input and output transforms run one axis at a time
in long runs (`elementwise.ufunc_runs`), one GEMM per transformed tile offset; the GEMMs' products are booked as
``transform_macs``, the direct-equivalent MACs of the outputs as the conv's own. `conv_winograd_split` runs the
same on threads of its own (whole samples, or bands of tile rows), transforms included, each GEMM on one thread.
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np

from . import parallel
from .blas import single_threaded, thread_pool
from .counting import MacCounter
from .elementwise import ufunc_runs
from .phases import polyphase


# Winograd's minimal filtering F(2, 3) (Lavin & Gray 2016): a 3-tap correlation over a 4-sample tile gives two
# outputs as Y = A^T [(G g) * (B^T d)], four multiplications instead of six; in d dimensions the nested form
# gives 2^d outputs per 4^d-sample tile from 4^d products instead of 2^d 3^d (2.25x fewer in 2-D).
WINOGRAD_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))   # G, as nested tuples


def winograd_weights(weight: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(O, C, 3, ..., 3) -> (4^d, C, O): G g G^T along every spatial axis, in float64, then cast.
    The leading index runs over the transformed tile offsets in spatial-axis order (as `conv_winograd`'s)."""
    u = np.asarray(weight, dtype=np.float64)
    dims = u.ndim - 2
    for axis in range(2, 2 + dims):
        u = np.moveaxis(np.tensordot(u, np.array(WINOGRAD_G), axes=([axis], [1])), -1, axis)   # 3 taps -> 4
    u = u.transpose(*range(2, 2 + dims), 1, 0)                                        # (4, ..., 4, C, O)
    return np.ascontiguousarray(u.reshape(4 ** dims, weight.shape[1], weight.shape[0]), dtype=dtype)


def conv_winograd(x: np.ndarray, transformed: np.ndarray, out: Sequence[int], counter: MacCounter,
                  bias: np.ndarray | None = None, pads: Sequence[tuple[int, int]] | None = None,
                  into: np.ndarray | None = None) -> np.ndarray:
    """Stride-1, undilated, ungrouped 3^d cross-correlation of ``(N, *S, C)`` by Winograd F(2, 3).

    ``x`` is zero-padded by ``pads`` ((lo, hi) per spatial axis; None: ``x`` is padded already). Tiles of 4^d
    input samples at a step of 2 each give 2^d outputs. The padded input is first copied in polyphase order,
    Q[p_0, ..., p_{d-1}, n, i_0, ..., i_{d-1}, c] = padded[n, 2 i_0 + p_0, ..., c] (the zero padding written
    in the same copy), so the four taps 2i, 2i+1, 2i+2, 2i+3 of every tile along an axis are four views that are
    contiguous over all the later axes: the input transform B^T d B then runs one spatial axis at a time,
    innermost first, in long runs (`ufunc_runs`). One GEMM per transformed offset, (tiles, C) @ (C, O). The
    output transform A^T m A runs one axis at a time, outermost first, writing each axis's two outputs as two
    contiguous blocks; one copy interleaves them into the output at the end. Odd output extents get one more row
    of zero input whose outputs are dropped. ``transformed``: `winograd_weights`.
    A ``bias`` is added in the transform domain, to the products at offset 1 on every axis (A^T's column 1 is all
    ones, so it reaches every output): 4^-d of a pass over the outputs instead of one.

    MACs: ``counter.total`` gets the direct-equivalent MACs of the outputs kept (their number x C x 3^d), the
    conv's own count; ``counter.transform_macs`` the GEMMs' products that really ran (4^d x tiles x C x O).
    ``into``: an array (a view) of the output's shape the output is written to, and returned.
    """
    dims = len(out)
    batch, channels, spatial = x.shape[0], x.shape[-1], x.shape[1:-1]
    out_channels = transformed.shape[-1]
    pads = [(0, 0)] * dims if pads is None else list(pads)
    tiles = [-(-o // 2) for o in out]
    q = polyphase(x, pads, (2,) * dims, [2 * t + 2 for t in tiles])
    with ufunc_runs(tiles[-1] * max(channels, out_channels)):
        data, made = q, 0                           # made: offset axes in front (then the phase axes left)
        for axis in reversed(range(dims)):          # input transform B^T d: taps 2i..2i+3 -> 4 offsets
            phase_at, tile_at = made + axis, made + axis + 2 + axis

            def taps(j: int, source: np.ndarray = data, phase_at: int = phase_at, tile_at: int = tile_at,
                     t: int = tiles[axis]) -> np.ndarray:
                index: list = [slice(None)] * source.ndim
                index[phase_at], index[tile_at] = j % 2, slice(j // 2, j // 2 + t)
                return source[tuple(index)]

            d0, d1, d2, d3 = taps(0), taps(1), taps(2), taps(3)
            result = np.empty((4, *d0.shape), dtype=x.dtype)
            np.subtract(d0, d2, out=result[0])
            np.add(d1, d2, out=result[1])
            np.subtract(d2, d1, out=result[2])
            np.subtract(d1, d3, out=result[3])
            data, made = result, made + 1
        positions = batch * int(np.prod(tiles))
        products = np.matmul(data.reshape(4 ** dims, positions, channels), transformed)   # (4^d, tiles, O)
        counter.transform = "winograd"
        counter.transform_macs += 4 ** dims * positions * channels * out_channels
        if bias is not None:
            products[sum(4 ** axis for axis in range(dims))] += bias
        data = products.reshape((4,) * dims + (batch, *tiles, out_channels))
        for axis in range(dims):                    # output transform A^T m: 4 offsets -> outputs 2i, 2i + 1
            m = [data[(slice(None),) * axis + (k,)] for k in range(4)]   # (2,)*axis phases, then offsets, ...
            result = np.empty((2, *m[0].shape), dtype=x.dtype)
            np.add(m[0], m[1], out=result[0])
            result[0] += m[2]
            np.subtract(m[1], m[2], out=result[1])
            result[1] -= m[3]
            data = result
    # data[r_{d-1}, ..., r_0, n, i_0, ..., i_{d-1}, o] is output [n, 2 i_0 + r_0, ..., o]: interleave
    order = [dims] + [a for axis in range(dims) for a in (dims + 1 + axis, dims - 1 - axis)] + [2 * dims + 1]
    counter.add(batch * int(np.prod(out)) * out_channels * channels * 3 ** dims)
    split = (batch, *(size for t in tiles for size in (t, 2)), out_channels)
    even = all(2 * t == o for t, o in zip(tiles, out))
    target = into.reshape(split) if into is not None and even else None   # splitting axes in two: a view
    if target is not None and np.may_share_memory(target, into):
        np.copyto(target, data.transpose(order))
        return into
    y = np.empty(split, dtype=x.dtype)
    np.copyto(y, data.transpose(order))
    y = y.reshape(batch, *(2 * t for t in tiles), out_channels)
    if not even:
        y = y[(slice(None), *(slice(0, o) for o in out))]
        if into is None:
            return np.ascontiguousarray(y)
    if into is not None:
        into[...] = y
        return into
    return y


def winograd_parts(batch: int, tile_rows: int, workers: int) -> list[tuple[int, int, int, int]]:
    """`conv_winograd_split`'s pieces, (first sample, end, first tile row, end): one per sample, where there are
    at least ``workers`` samples; else each sample's tile rows (along the first spatial axis) cut into
    ceil(workers / batch) near-even bands (`parallel.spans`), so that every thread has a piece. They depend on the
    shapes and, below ``workers`` samples, on ``workers``."""
    if batch >= workers:
        return [(n, n + 1, 0, tile_rows) for n in range(batch)]
    bands = -(-workers // batch)
    return [(n, n + 1, first, last) for n in range(batch) for first, last in parallel.spans(tile_rows, bands)]


def conv_winograd_split(x: np.ndarray, transformed: np.ndarray, out: Sequence[int], counter: MacCounter,
                        bias: np.ndarray | None = None, pads: Sequence[tuple[int, int]] | None = None,
                        workers: int = 1) -> np.ndarray:
    """`conv_winograd` in pieces (`winograd_parts`: whole samples, or bands of tile rows along the first spatial
    axis where the samples are fewer than ``workers``), the pieces dealt round-robin to ``workers`` threads of the
    kernels' pool, each running its pieces' transforms and GEMMs on its own thread (BLAS on one thread,
    `blas.single_threaded`; NumPy's ufuncs and matmul release the GIL), each writing its block of the output.
    With one worker: sample by sample on the caller's thread, whose tiles, transforms and products stay in cache
    between the steps more than a whole batch's (BLAS as it is set). A band is `conv_winograd` of the input rows its
    tiles read, with the zero padding above it that the whole input has there: every tile sees the same samples,
    and every output the same operations as in its piece's GEMM. A GEMM's bytes can depend on its row count
    (BLAS's kernels for short remainders), so the pieces, which depend on the shapes and ``workers`` only (and on
    the shapes alone from ``workers`` samples on), fix the bytes: the same on every run, not always those of the
    whole-batch `conv_winograd`. MACs as `conv_winograd` counts them, summed over the pieces."""
    dims = len(out)
    batch, out_channels = x.shape[0], transformed.shape[-1]
    pads = [(0, 0)] * dims if pads is None else list(pads)
    tiles = [-(-o // 2) for o in out]
    parts = winograd_parts(batch, tiles[0], max(1, workers))
    lo, rows = pads[0][0], x.shape[1]
    y = np.empty((batch, *out, out_channels), dtype=x.dtype)
    workers = max(1, min(workers, len(parts)))
    counters = [MacCounter() for _ in range(workers)]

    def run(index: int) -> None:
        for first, last, top, bottom in parts[index::workers]:
            start, stop = 2 * top - lo, 2 * bottom + 2 - lo          # the input rows the band's tiles read
            band = x[first:last, max(start, 0):min(stop, rows)]
            band_out = (min(out[0], 2 * bottom) - 2 * top, *out[1:])
            band_pads = [(max(-start, 0), 0), *pads[1:]]
            conv_winograd(band, transformed, band_out, counters[index], bias, band_pads,
                          into=y[first:last, 2 * top:2 * top + band_out[0]])

    if workers == 1:
        run(0)
    else:
        with single_threaded():
            list(thread_pool(workers).map(run, range(workers)))
    for part in counters:
        counter.total += part.total
        counter.transform_macs += part.transform_macs
        counter.transform = part.transform or counter.transform
    return y
