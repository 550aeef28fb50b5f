"""Scatter-adds: the transposes (vector-Jacobian products) of gathers.

Owns `scatter_add_planes`, the VJP of gathering per-plane flat indices (a max pool's argmax; summed with
``np.bincount``), and `scatter_add_axis`, the VJP of ``np.take`` along one axis (resampling's index lists,
adaptive pooling's bins), one vectorised add per offset within the runs of a sorted index.
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np


def scatter_add_planes(grad: np.ndarray, indices: np.ndarray, spatial: Sequence[int]) -> np.ndarray:
    """The VJP of gathering per-plane flat ``indices`` (N, *out, C) from an (N, *spatial, C) array (a max pool's
    argmax): ``result[n].flat-plane[indices[n, ..., c], c] += grad[n, ..., c]``,
    repeated indices accumulating. Summed with ``np.bincount`` in float64, returned in grad's dtype."""
    batch, channels = grad.shape[0], grad.shape[-1]
    plane = int(np.prod(spatial))
    flat = indices.reshape(batch, -1, channels)                                   # (N, prod(out), C)
    inside = (flat >= 0) & (flat < plane)     # a max pool's window without input taps may name no position
    weights = np.where(inside, grad.reshape(flat.shape), 0).astype(np.float64, copy=False)
    keys = (np.arange(batch)[:, None, None] * plane + np.where(inside, flat, 0)) * channels + np.arange(channels)
    total = np.bincount(keys.ravel(), weights=weights.ravel(), minlength=batch * plane * channels)
    return total.reshape(batch, *spatial, channels).astype(grad.dtype, copy=False)


LONG_RUN = 64      # runs longer than this are summed by one reduceat instead of one pass per offset


def scatter_add_axis(values: np.ndarray, index: np.ndarray, axis: int, size: int) -> np.ndarray:
    """The VJP of ``np.take(x, index, axis)`` for an x of length ``size`` along ``axis``: the slices of ``values``
    along ``axis`` summed into positions ``index`` (repeated indices accumulate; unnamed positions are 0).

    The slices are sorted by index (stably; resampling's indices already are), which makes each position's
    slices one run; then one vectorised add per offset within the runs (the k-th slice of every run at least
    k+1 long), so as many passes as the longest run, each over distinct positions; past `LONG_RUN`, one
    ``np.add.reduceat`` over the runs (the same sums, rounded in its own order)."""
    index = np.asarray(index, dtype=np.intp)
    order = np.argsort(index, kind="stable")
    ordered = index[order]
    if np.any(order != np.arange(order.size)):
        values = np.take(values, order, axis=axis)
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    lengths = np.diff(np.append(starts, ordered.size))
    targets = ordered[starts]
    shape = list(values.shape)
    shape[axis] = size
    result = np.zeros(shape, dtype=values.dtype)
    lead = (slice(None),) * axis
    if int(lengths.max(initial=0)) > LONG_RUN:     # few positions named many times (adaptive pooling to 10^6 bins)
        result[(*lead, targets)] = np.add.reduceat(values, starts, axis=axis)
        return result
    for offset in range(int(lengths.max(initial=0))):
        runs = lengths > offset
        result[(*lead, targets[runs])] += np.take(values, starts[runs] + offset, axis=axis)
    return result
