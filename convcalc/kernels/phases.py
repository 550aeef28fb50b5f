"""The polyphase layout: a padded input split into its stride phases in one copy.

Owns `polyphase` (pad and split along every spatial axis, channels last or first) and `phase_tap` (the view of one
kernel tap's samples in that layout). A window op with a stride reads every s-th position per tap: in the padded
array a view contiguous only in runs of C, in the polyphase array one slice contiguous over its whole last spatial
axis. Shared by the transposed-patch convolution (`im2col.conv_im2col_t`), Winograd (`winograd.conv_winograd`)
and strided pooling (`pooling.reduce_windows`).
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np


def polyphase(x: np.ndarray, pads: Sequence[tuple[int, int]], stride: Sequence[int], extent: Sequence[int],
              value: float = 0.0, channels_first: bool = False) -> np.ndarray:
    """``x`` (N, *S, C) padded by ``pads`` ((lo, hi) per spatial axis, filled with ``value``) and split along
    every spatial axis into its ``stride`` phases, in one copy: Q[p_0, ..., p_{d-1}, n, i_0, ..., i_{d-1}, c] =
    padded[n, s_0 i_0 + p_0, ..., c], for the first ``extent`` padded positions per axis (positions past the
    padded array hold ``value`` too). Shape (*stride, N, *ceil(extent / stride), C); with ``channels_first``
    the same values laid out (*stride, C, N, *ceil(extent / stride)).

    A window op with stride s reads, per kernel tap, every s-th position: in the padded array a view contiguous
    only in runs of C; in Q, one slice of one phase (`phase_tap`), contiguous over its whole last spatial axis
    (channels last: runs of that axis times C; channels first: runs of that axis, for each channel)."""
    batch, spatial, channels = x.shape[0], x.shape[1:-1], x.shape[-1]
    rows = [-(-e // s) for e, s in zip(extent, stride)]
    shape = (*stride, channels, batch, *rows) if channels_first else (*stride, batch, *rows, channels)
    storage = np.zeros(shape, dtype=x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    q = np.moveaxis(storage, len(stride), -1) if channels_first else storage   # indexed (*stride, N, *rows, C)
    for phases in np.ndindex(*stride):          # padded position s i + p holds x[s i + p - lo] where that exists
        source, target = [slice(None)], [*phases, slice(None)]
        for p, step, (lo, _), size, count in zip(phases, stride, pads, spatial, rows):
            first, last = max(0, -(-(lo - p) // step)), min(count - 1, (size - 1 + lo - p) // step)
            if last < first:
                break
            source.append(slice(step * first + p - lo, step * last + p - lo + 1, step))
            target.append(slice(first, last + 1))
        else:
            q[tuple(target)] = x[tuple(source)]
    return storage


def phase_tap(q: np.ndarray, offsets: Sequence[int], stride: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """The (N, *out, C) view of a `polyphase` array holding padded[n, o_a + s_a j_a, ..., c] for the outputs j:
    the samples a kernel tap at padded offsets ``o`` reads."""
    index = (*(o % s for o, s in zip(offsets, stride)), slice(None),
             *(slice(o // s, o // s + n) for o, s, n in zip(offsets, stride, out)))
    return q[index]
