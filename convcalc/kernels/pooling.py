"""Pooling: window folds, PyTorch's divisors and argmax indices, adaptive bins, and their transposes.

Owns the padding that makes ceil_mode's windows exist (`pool_pads_for_ceil`), AvgPool's divisor (`avg_divisor`, from
the per-axis `window_counts`: symmetric or (before, after) pads, dilated taps),
the fold of a ufunc over every kernel tap (`reduce_windows`, strided inputs read in the `polyphase` layout),
MaxPool's indices as ATen computes them (`window_argmax`), adaptive pooling (`adaptive_taps`, `adaptive_reduce`,
`adaptive_argmax`) and the VJP of adaptive average pooling (`adaptive_mean_transpose`, through
`scatter.scatter_add_axis`).
"""

from __future__ import annotations

import math

from typing import Sequence

from .._numpy import np

from . import parallel
from .elementwise import ufunc_runs
from .padding import pad_spatial
from .phases import phase_tap, polyphase
from .scatter import scatter_add_axis


def pool_pads_for_ceil(spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                       dilation: Sequence[int], pads: Sequence[tuple[int, int]], out: Sequence[int]
                       ) -> list[tuple[int, int]]:
    """(lo, hi) padding that makes every output window exist: the declared (before, after) ``pads``, the after
    side widened by ceil_mode's overhang past it."""
    result = []
    for i, k, s, d, (lo, hi), o in zip(spatial, kernel, stride, dilation, pads, out):
        needed = (o - 1) * s + d * (k - 1) + 1
        result.append((lo, max(hi, needed - i - lo)))
    return result


def window_counts(i: int, k: int, s: int, d: int, lo: int, hi: int, o: int, include_pad: bool) -> np.ndarray:
    """Per output position of one axis, how many of its window's k taps (start j*s - lo, step d) lie in the
    input [0, i), or with ``include_pad`` in the padded input [-lo, i + hi) (never ceil_mode's overhang)."""
    taps = (np.arange(o) * s - lo)[:, None] + np.arange(k)[None, :] * d          # (o, k)
    inside = taps < i + hi if include_pad else (taps >= 0) & (taps < i)
    return inside.sum(axis=1)


def avg_divisor(spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                pads: Sequence[tuple[int, int]], out: Sequence[int], count_include_pad: bool) -> np.ndarray:
    """AvgPool's divisor per output position (the product of per-axis `window_counts`), (*out) float64.

    PyTorch's (semantics §3.4: end = min(start + k, i + pad), the pads counted or not, never the ceil_mode
    overhang) where the pads are symmetric and the dilation 1; the same count for (before, after) pads and dilated
    taps is ONNX AveragePool's (onnxruntime's, and the reference evaluator's where its ceil_mode padding does
    not shift the windows)."""
    divisor = np.ones(tuple(out), dtype=np.float64)
    for axis, (i, k, s, d, (lo, hi), o) in enumerate(zip(spatial, kernel, stride, dilation, pads, out)):
        counts = window_counts(i, k, s, d, lo, hi, o, count_include_pad)
        shape = [1] * len(out)
        shape[axis] = o
        divisor = divisor * counts.reshape(shape)
    return divisor


LOOP_BINS = 64      # adaptive pooling to more bins than this gathers every bin at once instead of one by one


def adaptive_reduce(x: np.ndarray, targets: Sequence[int], reduce) -> np.ndarray:
    """Adaptive pooling, one spatial axis at a time (max and mean are both separable). Many bins (an output of
    10^6 positions) are gathered at once, each padded to the widest with its last tap (masked out of a mean), and
    reduced along the taps in the same order as a bin's slice. Global pooling (one bin per axis: squeeze-and-
    excitation, a classifier's pool) reduces the input in place of a copy, its batch split over the threads."""
    if all(o == 1 for o in targets) and x.ndim > 2 and x.shape[0] > 0:
        y = np.empty((x.shape[0], *targets, x.shape[-1]), dtype=x.dtype)

        def part(start: int, stop: int) -> None:
            y[start:stop] = _reduce_axes(x[start:stop], reduce)

        parallel.run_parts(part, x.shape[0], x.size)
        return y
    for axis, o in enumerate(targets, start=1):
        i = x.shape[axis]
        if i == o:
            continue
        if o > LOOP_BINS and reduce in (np.max, np.mean):
            j = np.arange(o)
            lo, hi = (j * i) // o, -((-(j + 1) * i) // o)
            width = hi - lo
            taps = np.minimum(lo[:, None] + np.arange(int(width.max()))[None, :], (hi - 1)[:, None])
            gathered = np.take(x, taps, axis=axis)               # (..., o, taps, ...)
            if reduce is np.max:
                x = gathered.max(axis=axis + 1)
            else:
                shape = [1] * gathered.ndim
                shape[axis], shape[axis + 1] = taps.shape
                inside = (np.arange(taps.shape[1])[None, :] < width[:, None]).reshape(shape)
                shape[axis + 1] = 1
                total = np.where(inside, gathered, 0).sum(axis=axis + 1)
                x = total / width.astype(x.dtype).reshape(shape[:axis + 1] + shape[axis + 2:])
            continue
        parts = []
        for j in range(o):
            lo, hi = (j * i) // o, -((-(j + 1) * i) // o)
            parts.append(reduce(np.take(x, np.arange(lo, hi), axis=axis), axis=axis, keepdims=True))
        x = np.concatenate(parts, axis=axis)
    return x


def _reduce_axes(x: np.ndarray, reduce) -> np.ndarray:
    """``reduce`` over each spatial axis of a channels-last array in turn, keeping them (length 1)."""
    for axis in range(1, x.ndim - 1):
        x = reduce(x, axis=axis, keepdims=True)
    return x


def reduce_windows(x: np.ndarray, pads: Sequence[tuple[int, int]], kernel: Sequence[int], stride: Sequence[int],
                   dilation: Sequence[int], out: Sequence[int], combine, value: float = 0.0) -> np.ndarray:
    """Fold ``combine`` (np.maximum, np.add, ...) over the kernel taps of a channels-last array padded by ``pads``
    with ``value``.

    One view per tap: much faster than reducing a window view over its kernel axes. With a stride the input is
    first copied in `polyphase` order (the padding written in the same copy), so that every tap's view is
    contiguous along its last spatial axis rather than in runs of C (NumPy's buffered path, `ufunc_runs`). A batch
    goes CHUNK_BYTES of input at a time (the copy is still cached when the taps read it), the chunks split over the
    threads; one sample's output rows are split instead. Each output folds the same taps in the same order
    whatever the split."""
    batch = x.shape[0]
    result = np.empty((batch, *out, x.shape[-1]), dtype=x.dtype)
    if result.size == 0:
        return result
    sample = x[:1].nbytes
    chunk = max(1, CHUNK_BYTES // max(sample, 1))          # samples whose source copy stays in the cache
    if batch > 1:                # the batch in chunks (split over the threads): each chunk's copy read while cached
        def samples(start: int, stop: int) -> None:
            for first in range(start, stop, chunk):
                last = min(first + chunk, stop)
                _fold_taps(x[first:last], pads, kernel, stride, dilation, out, combine, value, result[first:last])

        parallel.run_parts(samples, batch, result.size * _prod(kernel))
        return result
    _fold_taps(x, pads, kernel, stride, dilation, out, combine, value, result, split=True)
    return result


CHUNK_BYTES = 1 << 21   # `reduce_windows` copies and folds a batch this many input bytes at a time (at least a sample)


def _prod(values: Sequence[int]) -> int:
    return math.prod(int(v) for v in values)


def _fold_taps(x: np.ndarray, pads: Sequence[tuple[int, int]], kernel: Sequence[int], stride: Sequence[int],
               dilation: Sequence[int], out: Sequence[int], combine, value: float, result: np.ndarray,
               split: bool = False) -> None:
    """`reduce_windows` of ``x`` into ``result``; ``split``: its first output axis split over the threads."""
    extent = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(out, stride, kernel, dilation)]
    rows = [-(-e // s) for e, s in zip(extent, stride)]
    padded = [n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], pads)]
    # the polyphase copy holds every phase of every stride; a stride far past the window leaves most of them unread
    # (stride 10^6 over a 64-wide input: 10^12 positions), so it is used only where it is no larger than twice the
    # padded input, and strided views of the padded input serve otherwise
    phased = any(s > 1 for s in stride) and math.prod(s * r for s, r in zip(stride, rows)) <= 2 * math.prod(padded)
    if phased:
        source, step = polyphase(x, pads, stride, extent, value), tuple(stride)
    else:
        source, step = pad_spatial(x, pads, value=value), tuple(stride)
    taps = []
    for offsets in np.ndindex(*kernel):
        at = [o * d for o, d in zip(offsets, dilation)]
        if not phased:
            taps.append(source[(slice(None), *(slice(a, a + (n - 1) * s + 1, s) for a, n, s in zip(at, out, step)))])
        else:
            taps.append(phase_tap(source, at, step, out))

    def part(start: int, stop: int) -> None:     # output rows split: the same folds for every output
        index = (slice(None), slice(start, stop))
        target = result[index]
        with ufunc_runs(out[-1] * x.shape[-1]):  # (NumPy's buffer size is the calling thread's)
            np.copyto(target, taps[0][index])
            for tap in taps[1:]:
                combine(target, tap[index], out=target)

    if split:
        parallel.run_parts(part, result.shape[1], result.size * len(taps))
    else:
        part(0, result.shape[1])


def window_argmax(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                  padding: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """PyTorch's max-pool indices of an UNpadded (N, *S, C) array: per (n, c) plane, the row-major flat index
    within the input plane of each window's maximum, as (N, *out, C) int64.

    As ATen: a window's in-bounds taps are visited in row-major order, starting with the index of the first one
    and a maximum of -inf; a tap wins only if strictly larger or NaN, so ties keep the first and the last NaN
    wins. Taps in the padding (or ceil_mode's overhang) are never chosen.
    """
    spatial = x.shape[1:-1]
    dims = len(spatial)
    steps = [int(np.prod(spatial[axis + 1:])) for axis in range(dims)]   # flat step per axis
    # ATen starts every window at its first tap at or past 0 on each axis (even where that is past the end,
    # which only a window without in-bounds taps, possible with dilation, keeps)
    index = 0
    for axis, (o, s, p, d, step) in enumerate(zip(out, stride, padding, dilation, steps)):
        start = np.arange(o) * s - p
        start = start + -(-np.maximum(-start, 0) // d) * d
        index = index + (start * step).reshape([-1 if b == axis else 1 for b in range(dims)])
    index = np.broadcast_to(np.asarray(index)[None, ..., None], (x.shape[0], *out, x.shape[-1])).astype(np.int64)
    best = np.full(index.shape, -np.inf, dtype=x.dtype)
    for offsets in np.ndindex(*kernel):
        coords = [np.arange(o) * s - p + t * d for o, s, p, t, d in zip(out, stride, padding, offsets, dilation)]
        grid = [c.reshape([-1 if b == a else 1 for b in range(len(out))]) for a, c in enumerate(coords)]
        valid = np.ones(tuple(out), dtype=bool)                               # (*out): the tap is in the input
        for c, n in zip(grid, spatial):
            valid = valid & (c >= 0) & (c < n)
        clipped = [np.clip(c, 0, n - 1) for c, n in zip(grid, spatial)]
        tap = x[(slice(None), *clipped, slice(None))]                         # (N, *out, C)
        flat = sum(c * step for c, step in zip(clipped, steps))                # (*out)
        take = valid[None, ..., None] & ((tap > best) | np.isnan(tap))
        best = np.where(take, tap, best)
        index = np.where(take, flat[None, ..., None], index)
    return index


def adaptive_taps(i: int, o: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive pooling's bins as padded tap lists: (index, valid), both (o, K) with K the widest bin; bin j
    covers [floor(j*i/o), ceil((j+1)*i/o)), its taps in increasing order, padding taps repeat the bin's start."""
    starts = (np.arange(o) * i) // o
    ends = -((-(np.arange(1, o + 1) * i)) // o)
    width = int((ends - starts).max())
    offsets = np.arange(width)
    valid = offsets[None, :] < (ends - starts)[:, None]
    index = np.where(valid, starts[:, None] + offsets[None, :], starts[:, None])
    return index, valid


def adaptive_argmax(x: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """PyTorch's AdaptiveMaxPool indices of an (N, *S, C) array: per (n, c) plane the row-major flat index of
    each bin's maximum, (N, *targets, C) int64. As ATen: taps in row-major order, a tap wins if strictly larger
    or NaN (ties keep the first, the last NaN wins), starting from the bin's first tap."""
    spatial = x.shape[1:-1]
    dims = len(spatial)
    taps = [adaptive_taps(i, o) for i, o in zip(spatial, targets)]
    # gather every bin's taps: (N, o_1, K_1, ..., o_d, K_d, C)
    grids = []
    for axis, (index, _) in enumerate(taps):
        shape = [1] * (2 * dims)
        shape[2 * axis], shape[2 * axis + 1] = index.shape
        grids.append(index.reshape(shape))
    gathered = x[(slice(None), *grids, slice(None))]
    valid = np.ones([1] * (2 * dims), dtype=bool)
    for axis, (_, mask) in enumerate(taps):
        shape = [1] * (2 * dims)
        shape[2 * axis], shape[2 * axis + 1] = mask.shape
        valid = valid & mask.reshape(shape)
    order = [0, *(1 + 2 * a for a in range(dims)), *(2 + 2 * a for a in range(dims)), 2 * dims + 1]
    gathered = gathered.transpose(order)                                          # (N, *o, *K, C)
    valid = valid.transpose([2 * a for a in range(dims)] + [2 * a + 1 for a in range(dims)])   # (*o, *K)
    widths = [index.shape[1] for index, _ in taps]
    batch, channels = x.shape[0], x.shape[-1]
    values = gathered.reshape(batch, *targets, -1, channels)                      # (N, *o, prod(K), C)
    valid = valid.reshape(*targets, -1)[None, ..., None]                          # (1, *o, prod(K), 1)
    nan = np.isnan(values) & valid
    finite = np.where(valid & ~nan, values, -np.inf)
    first_max = np.argmax(finite, axis=-2)                                        # all -inf: tap 0, the start
    last_nan = values.shape[-2] - 1 - np.argmax(nan[..., ::-1, :], axis=-2)
    tap = np.where(nan.any(axis=-2), last_nan, first_max)                         # (N, *o, C)
    flat = 0
    steps = [int(np.prod(spatial[axis + 1:])) for axis in range(dims)]
    for axis, offset in enumerate(np.unravel_index(tap, widths)):
        starts = taps[axis][0][:, 0].reshape([-1 if b == axis else 1 for b in range(dims)])
        flat = flat + (starts[None, ..., None] + offset) * steps[axis]
    return np.asarray(flat, dtype=np.int64)


# --------------------------------------------------------------------------- backward (vector-Jacobian products)

def adaptive_mean_transpose(grad: np.ndarray, spatial: Sequence[int]) -> np.ndarray:
    """The VJP of ``adaptive_reduce(x, targets, np.mean)`` for an x of spatial sizes ``spatial``: per axis, each
    bin's gradient spread evenly over its taps (bins overlap where i/o is no integer: their shares add)."""
    for axis, i in enumerate(spatial, start=1):
        o = grad.shape[axis]
        if i == o:
            continue
        index, valid = adaptive_taps(i, o)                                       # (o, K)
        weights = valid / valid.sum(axis=1, keepdims=True)
        shape = [1] * (grad.ndim + 1)
        shape[axis], shape[axis + 1] = weights.shape
        spread = np.expand_dims(grad, axis + 1) * weights.reshape(shape).astype(grad.dtype)   # (..., o, K, ...)
        spread = spread.reshape(*grad.shape[:axis], -1, *grad.shape[axis + 1:])  # (..., o*K, ...)
        grad = scatter_add_axis(spread, index.ravel(), axis, i)
    return grad
