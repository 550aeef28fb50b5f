"""Padding of channels-last arrays as PyTorch's F.pad does, and its transpose.

Owns the padding modes (`PAD_MODES`: zeros, reflect, replicate, circular), the per-axis source index of every
padded position (`torch_pad_index` for reflect/replicate, `pad_source_index` for every mode, `cropped_range` for
the inputs negative pads keep), `pad_spatial` (negative pads crop; the zero-padded copy split over the threads)
and its vector-Jacobian product
`pad_spatial_transpose`, which scatters the padded positions' gradients back to the inputs they copy.
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np

from . import parallel

PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def torch_pad_index(size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """Source index of every output position of F.pad(mode) along one axis of length ``size``.

    PyTorch's reflect and replicate kernels map output j to input t = j - lo, mirrored (|t|, then
    2(size-1) - t past the end) or clamped to [0, size-1] within the UNcropped input: a crop on one
    side does not move the mirror or the edge on the other (reflect (3, -1) of [0,1,2,3] is [3,2,1,0,1,2]).
    """
    t = np.arange(size + lo + hi) - lo
    if mode == "reflect":
        t = np.abs(t)
        return np.where(t > size - 1, 2 * (size - 1) - t, t)
    return np.clip(t, 0, size - 1)


def pad_spatial(x: np.ndarray, pads: Sequence[tuple[int, int]], mode: str = "zeros",
                value: float = 0.0) -> np.ndarray:
    """Pad axes 1..len(pads) of a channels-last array (the spatial ones, then possibly the channels) as
    PyTorch's F.pad does: negative pads crop; zeros/constant and circular crop first, then pad."""
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    if mode in ("reflect", "replicate") and any(lo < 0 or hi < 0 for lo, hi in pads):
        for axis, (lo, hi) in enumerate(pads, start=1):
            if lo or hi:
                x = np.take(x, torch_pad_index(x.shape[axis], lo, hi, mode), axis=axis)
        return x
    crop = [slice(None)] * x.ndim
    grow = [(0, 0)] * x.ndim
    for axis, (lo, hi) in enumerate(pads, start=1):
        start = -lo if lo < 0 else 0
        stop = x.shape[axis] + hi if hi < 0 else x.shape[axis]
        crop[axis] = slice(start, stop)
        grow[axis] = (max(lo, 0), max(hi, 0))
    x = x[tuple(crop)]
    np_mode = PAD_MODES[mode]
    if np_mode == "constant":   # one allocation and one copy (np.pad is several times slower)
        shape = [size + lo + hi for size, (lo, hi) in zip(x.shape, grow)]
        padded = np.empty(shape, dtype=x.dtype)
        interior = padded[tuple(slice(lo, lo + size) for size, (lo, _) in zip(x.shape, grow))]
        axis = 0 if x.shape[0] >= parallel.threads() or x.ndim < 2 else 1

        def part(start: int, stop: int) -> None:  # the batch, else the rows, split over the threads
            index = (slice(None),) * axis + (slice(start, stop),)
            interior[index] = x[index]

        parallel.run_parts(part, x.shape[axis], x.size)
        for axis, (lo, hi) in enumerate(grow):
            if lo:
                padded[(slice(None),) * axis + (slice(0, lo),)] = value
            if hi:
                padded[(slice(None),) * axis + (slice(shape[axis] - hi, None),)] = value
        return padded
    return np.pad(x, grow, mode=np_mode)


# --------------------------------------------------------------------------- backward (vector-Jacobian products)

def cropped_range(size: int, lo: int, hi: int) -> tuple[int, int]:
    """(first, count): the input positions F.pad keeps along an axis of ``size`` when negative pads crop; circular
    padding wraps through just these (it crops first)."""
    first = max(-lo, 0)
    return first, size + min(hi, 0) - first


def pad_source_index(size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """Per position of `pad_spatial`'s output along one axis (length size + lo + hi): the input index it copies,
    or -1 where it holds the fill value. zeros/constant and circular crop first (a negative pad), then pad;
    reflect/replicate mirror or clamp within the uncropped input (`torch_pad_index`)."""
    t = np.arange(size + lo + hi) - lo
    if mode in ("reflect", "replicate"):
        return torch_pad_index(size, lo, hi, mode)
    if mode == "circular":
        first, kept = cropped_range(size, lo, hi)
        return first + (np.arange(size + lo + hi) - max(lo, 0)) % kept
    return np.where((t >= 0) & (t < size), t, -1)


def pad_spatial_transpose(grad: np.ndarray, spatial: Sequence[int], pads: Sequence[tuple[int, int]],
                          mode: str = "zeros") -> np.ndarray:
    """The VJP of `pad_spatial` (x, pads, mode): the gradient w.r.t. the padded array -> w.r.t. ``x``, whose axes
    1..len(pads) have the sizes ``spatial``. Every padded position adds its gradient to the input position it
    copies (reflect/replicate/circular pads scatter back; the fill value's positions and cropped inputs get
    nothing). Per axis: the interior run as one slice-add, the border positions one slice each."""
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return grad
    for axis, (size, (lo, hi)) in enumerate(zip(spatial, pads), start=1):
        if lo == 0 and hi == 0:
            continue
        source = pad_source_index(size, lo, hi, mode)
        shape = list(grad.shape)
        shape[axis] = size
        result = np.zeros(shape, dtype=grad.dtype)
        before = (slice(None),) * axis
        length = grad.shape[axis]
        start = min(max(lo, 0), length)                             # the identity run [start, stop): source[j] == j - lo
        stop = max(length - max(hi, 0), start)
        if stop > start:
            result[(*before, slice(start - lo, stop - lo))] += grad[(*before, slice(start, stop))]
        for j in (*range(0, start), *range(stop, length)):
            if source[j] >= 0:
                result[(*before, source[j])] += grad[(*before, j)]
        grad = result
    return grad
