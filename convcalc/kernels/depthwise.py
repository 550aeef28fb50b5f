"""Depthwise convolution (groups == input channels): each output a per-channel sum of k taps, by ``np.einsum`` over
a strided window view (no patch copy, no GEMM); PyTorch's output channel order c * M + m.

Owns `conv_depthwise`. NumPy's einsum computes ``out += a * b`` in one pass per tap with its inner loop along the
axis where both operands are contiguous. Two layouts of that loop:

* rows (stride 1 along the last spatial axis, no channel multiplier): an output row, the last spatial axis times
  the channels, is one contiguous run, and so is each tap's input run (the padded input's row, shifted by the tap's
  offset): a view (N, *out[:-1], segments, *k, segment x C) of the padded input against the weights repeated along a
  segment (*k, segment x C), so each inner call is a whole row (or a segment of it, a whole number of pixels, short
  enough that the repeated weights of all taps stay in the cache: WEIGHT_ROW_BYTES) whatever C is, and the output
  is written in place, nothing computed and dropped;
* strided (the rest): a view (N, *out, *k, C) of the padded input (a stride or dilation only changes the view's
  strides) and the weights (*k, C[, M]); one inner call per output position and tap, C long.

Both sum the taps in the same order (row-major over the kernel), so the result is deterministic and, tap by tap,
the same arithmetic. The work is split over the run's threads (`parallel.run_parts`) along the batch, else along
the first output axis: each part computes its own outputs with the same operations, so any split gives the same
bits.
"""

from __future__ import annotations

import string
from typing import Sequence

from .._numpy import np

from . import parallel
from .counting import MacCounter



def as_strided(*args, **kwargs):
    """NumPy's ``stride_tricks.as_strided``, looked up when called (NumPy is imported on first use)."""
    return np.lib.stride_tricks.as_strided(*args, **kwargs)


WEIGHT_ROW_BYTES = 1 << 17   # the rows layout's weights repeated over a segment, all taps: at most this (in cache)


def _prod(values: Sequence[int]) -> int:
    result = 1
    for value in values:
        result *= int(value)
    return result


def rows_apply(stride: Sequence[int], multiplier: int) -> bool:
    """Whether the rows layout serves: stride 1 along the last spatial axis and one output per channel."""
    return multiplier == 1 and stride[-1] == 1


def conv_depthwise(x: np.ndarray, taps: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                   dilation: Sequence[int], out: Sequence[int], counter: MacCounter) -> np.ndarray:
    """Depthwise cross-correlation (groups == C_in) of the padded channels-last ``x`` (N, *padded, C).

    ``taps``: (prod(k), C, M) for a channel multiplier M; output (N, *out, C*M), channel c*M + m (PyTorch's order).
    """
    batch, channels = x.shape[0], x.shape[-1]
    multiplier = taps.shape[-1]
    counter.add(batch * _prod(out) * channels * multiplier * _prod(kernel))
    if batch == 0 or _prod(out) == 0 or channels == 0:
        return np.zeros((batch, *out, channels * multiplier), dtype=x.dtype)
    if rows_apply(stride, multiplier):
        return _conv_rows(np.ascontiguousarray(x), taps[:, :, 0], kernel, stride, dilation, out)
    return _conv_strided(x, taps, kernel, stride, dilation, out)


def _split(einsum_part, view: np.ndarray, result: np.ndarray, work: int) -> None:
    """Run ``einsum_part(view_part, result_part)`` over parts of axis 0 (the batch) of both, or of axis 1 where
    the batch is shorter than the thread count: independent outputs, so any split gives the same bits."""
    axis = 0 if view.shape[0] >= parallel.threads() or view.ndim < 3 else 1

    def part(start: int, stop: int) -> None:
        index = (slice(None),) * axis + (slice(start, stop),)
        einsum_part(view[index], result[index])

    parallel.run_parts(part, view.shape[axis], work)


def _conv_strided(x: np.ndarray, taps: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """One einsum over the window view (N, *out, *k, C) against the weights (*k, C[, M])."""
    batch, channels, dims = x.shape[0], x.shape[-1], len(kernel)
    multiplier = taps.shape[-1]
    space = x.strides[1:-1]
    windows = as_strided(x, (batch, *out, *kernel, channels),                           # (N, *out, *k, C)
                         (x.strides[0], *(s * step for s, step in zip(space, stride)),
                          *(s * d for s, d in zip(space, dilation)), x.strides[-1]), writeable=False)
    positions, offsets = string.ascii_letters[:dims], string.ascii_letters[dims:2 * dims]
    work = batch * _prod(out) * channels * multiplier * _prod(kernel)
    if multiplier == 1:
        weights = taps[:, :, 0].reshape(*kernel, channels)                              # (*k, C)
        y = np.empty((batch, *out, channels), dtype=np.result_type(x, weights))
        formula = f"Z{positions}{offsets}Y,{offsets}Y->Z{positions}Y"
        _split(lambda view, part: np.einsum(formula, view, weights, out=part), windows, y, work)
        return y
    weights = taps.reshape(*kernel, channels, multiplier)                               # (*k, C, M)
    y = np.empty((batch, *out, channels, multiplier), dtype=np.result_type(x, weights))
    formula = f"Z{positions}{offsets}Y,{offsets}YX->Z{positions}YX"
    _split(lambda view, part: np.einsum(formula, view, weights, out=part), windows, y, work)
    return y.reshape(batch, *out, channels * multiplier)


def segment_pixels(width: int, channels: int, taps: int, itemsize: int) -> int:
    """Pixels per inner run of the rows layout: the largest divisor of the output row's width whose run, repeated
    for every tap, keeps the weights within WEIGHT_ROW_BYTES (at least 1 pixel)."""
    limit = WEIGHT_ROW_BYTES // max(taps * itemsize * channels, 1)
    return max((d for d in range(1, width + 1) if width % d == 0 and d <= limit), default=1)


def _conv_rows(x: np.ndarray, weights: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
               dilation: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """Stride 1 along the last axis, multiplier 1: per output row segment (seg pixels x C contiguous), each tap's
    input run is contiguous too: one einsum over (N, *out[:-1], segments, *k, seg*C) against the weights repeated
    over a segment (*k, seg*C), written straight into the output (N, *out, C)."""
    batch, channels, dims = x.shape[0], x.shape[-1], len(kernel)
    item = x.itemsize
    width = out[-1]
    seg = segment_pixels(width, channels, _prod(kernel), item)
    run = seg * channels
    lead_strides = x.strides[1:-2]                                            # the spatial axes before the last
    view = as_strided(x, (batch, *out[:-1], width // seg, *kernel, run),
                      (x.strides[0], *(s * step for s, step in zip(lead_strides, stride[:-1])), run * item,
                       *(s * d for s, d in zip(lead_strides, dilation[:-1])), dilation[-1] * channels * item, item),
                      writeable=False)
    repeated = np.empty((*kernel, seg, channels), dtype=weights.dtype)               # (np.tile takes 5x as long)
    repeated[...] = weights.reshape(*kernel, 1, channels)
    repeated = repeated.reshape(*kernel, run)                                        # (*k, seg*C)
    y = np.empty((batch, *out, channels), dtype=np.result_type(x, weights))
    rows = y.reshape(batch, *out[:-1], width // seg, run)
    lead, offsets = string.ascii_letters[:dims - 1], string.ascii_letters[dims:2 * dims]
    formula = f"Z{lead}S{offsets}Y,{offsets}Y->Z{lead}SY"
    work = batch * _prod(out) * channels * _prod(kernel)
    _split(lambda part_view, part: np.einsum(formula, part_view, repeated, out=part), view, rows, work)
    return y
