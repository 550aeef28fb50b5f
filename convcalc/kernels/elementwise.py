"""Fast paths for NumPy's elementwise ufuncs on the executor's arrays.

Owns the tricks that keep binary ufuncs on their SIMD, unbuffered loops: `ufunc_runs` (the ufunc buffer size
matched to operands contiguous only in runs, used by Winograd's transforms and the pooling folds), `zeros_as` (a
shared read-only zero array, so that `relu` is an array-array ``np.maximum``) and the channel bias repeated over
positions (`bias_rows`, `add_bias`), so that adding it runs in long runs rather than NumPy's buffered broadcast.
"""

from __future__ import annotations

from .._numpy import np


class ufunc_runs:
    """Context: NumPy's ufunc buffer size matched to operands that are contiguous in runs of ``run`` elements.

    A binary ufunc over views that are contiguous only in runs (every other tile of a row, say) goes through
    NumPy's buffered iterator when the run is shorter than the buffer (8192 elements), copying each run through
    the buffers: 3x the time of contiguous operands at runs of 1792 float32 here (62 vs 19 us per 200k floats).
    With the buffer no longer than the run the loops read the views in place (26 us). Below RUNS_UNBUFFERED
    elements the per-run calls cost more than the buffering, so the buffer size is left alone."""

    def __init__(self, run: int):
        self.size = run // 16 * 16 if RUNS_UNBUFFERED <= run < np.getbufsize() else None
        self.saved: int | None = None

    def __enter__(self) -> "ufunc_runs":
        if self.size is not None:
            self.saved = np.setbufsize(self.size)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            np.setbufsize(self.saved)


RUNS_UNBUFFERED = 256


_ZEROS: dict[np.dtype, np.ndarray] = {}


def zeros_as(x: np.ndarray) -> np.ndarray:
    """A read-only array of zeros shaped like ``x``: a view of one shared buffer per dtype, grown as needed.

    NumPy's binary ufuncs run their SIMD loops only when both operands are arrays of the same shape: against a
    scalar ``np.maximum`` is about 4x slower (0.44 vs 0.10 ns per float32 on this machine). The buffer is never
    written, so its pages stay the kernel's shared zero page and it costs no memory."""
    buffer = _ZEROS.get(x.dtype)
    if buffer is None or buffer.size < x.size:
        buffer = np.zeros(max(x.size, 1 << 16), dtype=x.dtype)
        buffer.flags.writeable = False
        _ZEROS[x.dtype] = buffer
    return buffer[:x.size].reshape(x.shape)


# A channel bias added to a channels-last (..., O) array broadcasts a length-O row over every position: NumPy
# then iterates in runs of O floats and, below its buffer size (8192), copies them through its buffers, about
# 2x the time of an add of two same-shape contiguous arrays at O = 64 (0.19 vs 0.10 ns per float32 here).
# Repeating the bias over k consecutive positions gives runs of k * O, past the buffer size.
BIAS_ROW_FLOATS = (8192, 32768)   # the repeated row's length: at least the buffer size, at most this


def bias_rows(bias: np.ndarray, positions: int) -> np.ndarray:
    """``bias`` (O,) repeated over k positions, k the largest divisor of ``positions`` (one sample's output
    positions, so any batch size divides evenly) with k * O <= BIAS_ROW_FLOATS[1]; just ``bias`` when that
    cannot reach BIAS_ROW_FLOATS[0] floats (then NumPy's own broadcasting add is as fast)."""
    low, high = BIAS_ROW_FLOATS
    channels = bias.shape[0]
    repeat = max((k for k in range(1, max(high // max(channels, 1), 1) + 1) if positions % k == 0), default=1)
    if repeat * channels < low:
        return bias
    return np.tile(bias, repeat)


def add_bias(y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``y += bias`` in place for a channels-last ``y`` (..., O); ``rows``: `bias_rows` of the bias."""
    channels = y.shape[-1]
    if rows.shape[0] > channels and y.flags.c_contiguous and y.size % rows.shape[0] == 0:
        flat = y.reshape(-1, rows.shape[0])
        flat += rows
    else:
        y += rows[:channels]
    return y


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0) as torch.relu (NaN stays NaN), at the speed of an array-array ufunc (`zeros_as`)."""
    return np.maximum(x, zeros_as(x), out=out)
