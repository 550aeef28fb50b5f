"""Depthwise convolution (groups == input channels): each output a per-channel sum of k taps, by ``np.einsum`` over
a strided window view (no patch copy, no GEMM); PyTorch's output channel order c * M + m.

Owns `conv_depthwise`. NumPy's einsum computes ``out += a * b`` in one pass per tap with its inner loop along the
axis where both operands are contiguous: the channels. Two layouts of that loop:

* strided: a view (N, *out, *k, C) of the padded input (a stride or dilation only changes the view's strides) and
  the weights (*k, C[, M]); one inner call per output position and tap, C long: where C is short (MobileNetV2's 32
  channels at 112x112) the calls, not the arithmetic, take the time;
* flat (stride 1, no channel multiplier): the padded input read as one flat run, where tap t of output q is element
  q + offset(t): the output is computed on the padded grid (positions past the output's edge computed and dropped,
  then one copy gathers the output), in rows of FLAT_ROW elements (a whole number of pixels) against the weights
  repeated along a row, so each inner call is FLAT_ROW long whatever C is.

`flat_pays` picks by counting work: the flat grid's taps plus its two copies against the strided taps, each inner
call counted as EINSUM_CALL_ELEMENTS more elements. Both sum the taps in the same order (row-major over the kernel),
so the result is deterministic and, tap by tap, the same arithmetic.
"""

from __future__ import annotations

import string
from typing import Sequence

from .._numpy import np

from .counting import MacCounter


def as_strided(*args, **kwargs):
    """NumPy's ``stride_tricks.as_strided``, looked up when called (NumPy is imported on first use)."""
    return np.lib.stride_tricks.as_strided(*args, **kwargs)

FLAT_ROW = 1024            # elements per inner call of the flat layout (rounded up to whole pixels): 4 KiB rows
EINSUM_CALL_ELEMENTS = 64  # one inner-loop call of einsum costs about as much as this many elements' multiply-adds


def _prod(values: Sequence[int]) -> int:
    result = 1
    for value in values:
        result *= int(value)
    return result


def flat_pays(padded: Sequence[int], out: Sequence[int], kernel: Sequence[int], channels: int) -> bool:
    """The flat layout costs (prod(k) + 2) x prod(padded) x C (its grid's taps, the grid's copy out, the weights
    row); the strided one prod(k) x prod(out) x C x (1 + EINSUM_CALL_ELEMENTS / C) (its short inner calls)."""
    taps = _prod(kernel)
    flat = (taps + 2) * _prod(padded) * channels
    strided = taps * _prod(out) * (channels + EINSUM_CALL_ELEMENTS)
    return flat < strided


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
    if (multiplier == 1 and all(s == 1 for s in stride)
            and flat_pays(x.shape[1:-1], out, kernel, channels)):
        return _conv_flat(np.ascontiguousarray(x), taps[:, :, 0], kernel, dilation, out)
    return _conv_strided(x, taps, kernel, stride, dilation, out)


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
    if multiplier == 1:
        weights = taps[:, :, 0].reshape(*kernel, channels)                              # (*k, C)
        return np.einsum(f"Z{positions}{offsets}Y,{offsets}Y->Z{positions}Y", windows, weights)
    weights = taps.reshape(*kernel, channels, multiplier)                               # (*k, C, M)
    y = np.einsum(f"Z{positions}{offsets}Y,{offsets}YX->Z{positions}YX", windows, weights)   # (N, *out, C, M)
    return y.reshape(batch, *out, channels * multiplier)


def _conv_flat(x: np.ndarray, weights: np.ndarray, kernel: Sequence[int], dilation: Sequence[int],
               out: Sequence[int]) -> np.ndarray:
    """Stride 1, multiplier 1: the taps as offsets into the flat padded input (contiguous (N, *padded, C)),
    accumulated on the padded grid in rows of FLAT_ROW elements; the output gathered from the grid."""
    batch, channels, dims = x.shape[0], x.shape[-1], len(kernel)
    padded = x.shape[1:-1]
    item = x.itemsize
    pitch = [channels * _prod(padded[axis + 1:]) for axis in range(dims)]     # elements per step along each axis
    length = (batch - 1) * _prod(padded) * channels + sum((o - 1) * p for o, p in zip(out, pitch)) + channels
    row = channels * -(-FLAT_ROW // channels)                                 # whole pixels per row
    flat = x.reshape(-1)
    grid = np.empty(batch * _prod(padded) * channels, dtype=x.dtype)          # (N, *padded, C), read where valid
    repeated = np.tile(weights, (1, row // channels)).reshape(*kernel, row)   # (*k, row): a tap's weights per row
    tap_strides = tuple(d * p * item for d, p in zip(dilation, pitch))
    offsets = string.ascii_letters[:dims]
    rows = length // row
    if rows:
        view = as_strided(flat, (rows, *kernel, row), (row * item, *tap_strides, item), writeable=False)
        np.einsum(f"Z{offsets}Y,{offsets}Y->ZY", view, repeated, out=grid[:rows * row].reshape(rows, row))
    rest = length - rows * row
    if rest:
        view = as_strided(flat[rows * row:], (*kernel, rest), (*tap_strides, item), writeable=False)
        np.einsum(f"{offsets}Y,{offsets}Y->Y", view, repeated[..., :rest], out=grid[rows * row:length])
    valid = (slice(None), *(slice(0, o) for o in out))
    return np.ascontiguousarray(grid.reshape(batch, *padded, channels)[valid])         # (N, *out, C)
