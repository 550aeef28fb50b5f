"""Fast paths for NumPy's elementwise ufuncs on the executor's arrays.

Owns the tricks that keep binary ufuncs on their SIMD, unbuffered loops: `ufunc_runs` (the ufunc buffer size
matched to operands contiguous only in runs, used by Winograd's transforms and the pooling folds), `zeros_as` (a
shared read-only zero array, so that `relu` is an array-array ``np.maximum``) and the channel bias repeated over
positions (`bias_rows`, `add_bias`), so that adding it runs in long runs rather than NumPy's buffered broadcast.

The activations (`relu`, `relu6`, `silu`, `sigmoid`, `hardswish`, `hardsigmoid`) run as `blockwise` chains of
``out=`` ufuncs: the flat array in blocks of BLOCK elements, each block's temporaries in one scratch buffer that
stays in the cache, the blocks split over the run's threads (`parallel.run_parts`). Every element goes through the
same operations whatever the block or part it falls in, so the result does not depend on the split.
"""

from __future__ import annotations

from typing import Callable

from .._numpy import np

from . import parallel


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
    repeat = row_repeat(bias.shape[0], positions)
    return bias if repeat == 1 else np.tile(bias, repeat)


def row_repeat(channels: int, positions: int) -> int:
    """k for `bias_rows`: the largest divisor of ``positions`` with k * channels <= BIAS_ROW_FLOATS[1], or 1 when
    k * channels cannot reach BIAS_ROW_FLOATS[0]."""
    low, high = BIAS_ROW_FLOATS
    repeat = max((k for k in range(1, max(high // max(channels, 1), 1) + 1) if positions % k == 0), default=1)
    return 1 if repeat * channels < low else repeat


def add_bias(y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``y += bias`` in place for a channels-last ``y`` (..., O); ``rows``: `bias_rows` of the bias."""
    channels = y.shape[-1]
    if rows.shape[0] > channels and y.flags.c_contiguous and y.size % rows.shape[0] == 0:
        flat = y.reshape(-1, rows.shape[0])
    elif y.flags.c_contiguous and y.ndim > 1:
        flat, rows = y.reshape(-1, channels), rows[:channels]
    else:
        y += rows[:channels]
        return y

    def part(start: int, stop: int) -> None:    # rows split over the threads
        chunk = flat[start:stop]
        chunk += rows

    parallel.run_parts(part, flat.shape[0], y.size)
    return y


BLOCK = 1 << 15   # elements per block of an activation chain: its few block-sized arrays stay in the L2 cache
CHEAP = 1         # work per element of a chain of cheap ufuncs (add, multiply, clip), for `parallel.part_count`
TRANSCENDENTAL = 4   # ... and of one with a tanh or exp


_NO_SCRATCH: list = []      # [an empty array]: what a one-pass chain gets for scratch (allocating a part-sized buffer
                            # cost 30 %), made on first use (NumPy is imported on first use)


def _no_scratch() -> np.ndarray:
    if not _NO_SCRATCH:
        _NO_SCRATCH.append(np.empty(0))
    return _NO_SCRATCH[0]


def blockwise(chain: Callable[[np.ndarray, np.ndarray, np.ndarray], None], x: np.ndarray,
              out: np.ndarray | None = None, cost: int = CHEAP, passes: int = 1) -> np.ndarray:
    """``chain(x_block, out_block, scratch)`` over the flat ``x`` in blocks, writing ``out`` (a new array like
    ``x``, or ``out``: ``x`` itself for in place); ``scratch`` is a block-sized buffer of the calling thread for a
    temporary (``passes`` > 1 only). A chain of several ``passes`` runs in blocks of BLOCK elements, so that its
    block stays in the cache from pass to pass; one pass runs over each thread's part at once (a call per block
    would cost more than it saves). ``chain`` must read each x element before it writes the same out element (out
    may be x). The blocks are split over the run's threads; an array that is small or not contiguous runs as one
    block on the caller."""
    if out is None:
        out = np.empty_like(x, order="C")
    size = x.size
    if size <= BLOCK or not (x.flags.c_contiguous and out.flags.c_contiguous and x.shape == out.shape):
        if size:
            chain(x, out, np.empty(x.shape, dtype=x.dtype) if passes > 1 else _no_scratch())
        return out
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    block = BLOCK if passes > 1 else -(-size // parallel.part_count(size, size * cost))
    blocks = -(-size // block)

    def part(first: int, last: int) -> None:
        buffer = np.empty(min(block, size), dtype=x.dtype) if passes > 1 else _no_scratch()
        for index in range(first, last):
            start, stop = index * block, min((index + 1) * block, size)
            chain(flat_x[start:stop], flat_out[start:stop], buffer[:stop - start])

    parallel.run_parts(part, blocks, work=size * cost)
    return out


def channel_affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                   then: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
    """``x * scale + shift`` per channel (the last axis; an inference BatchNorm), a new C-contiguous array with
    the same bytes as that expression (each product rounded, then the sum). Rows of whole channels in blocks of
    about BLOCK elements, the product written and the shift added while the block is in cache (one pass over
    memory instead of two and no temporary), the blocks split over the run's threads. ``x`` may be a view whose
    rows are strided (a join's slice of its chain's buffer, `convcalc.execution.slabs`): it is read in place.
    Contiguous arrays of few channels run in rows of the channels repeated over several positions (`row_repeat`),
    so the loops run long. ``then(block)``: called on each block of the result once it is written, while it is
    in cache, to change it in place elementwise (an activation that reads only this result)."""
    out = np.empty(x.shape, dtype=np.result_type(x, scale, shift))
    channels = x.shape[-1] if x.ndim else 1
    if x.size == 0 or x.ndim < 1:
        np.add(np.multiply(x, scale), shift, out=out)
        if then is not None and out.size:
            then(out)
        return out
    positions = x.size // channels
    try:
        rows = np.reshape(x, (positions, channels), copy=False)     # a view, or ValueError
    except TypeError:                                   # NumPy before 2.1: no copy=; contiguous arrays only
        rows = x.reshape(positions, channels) if x.flags.c_contiguous else None
    except ValueError:                                  # its rows are not one strided axis
        rows = None
    if rows is None:                                    # NumPy's own loop
        np.add(np.multiply(x, scale, out=out), shift, out=out)
        if then is not None:
            then(out)
        return out
    target = out.reshape(positions, channels)
    repeat = row_repeat(channels, positions) if x.flags.c_contiguous else 1
    if repeat > 1 and positions % repeat == 0:
        rows, target = rows.reshape(-1, repeat * channels), target.reshape(-1, repeat * channels)
        scale, shift = np.tile(scale, repeat), np.tile(shift, repeat)
    per_block = max(1, BLOCK // rows.shape[1])
    blocks = -(-rows.shape[0] // per_block)

    def part(first: int, last: int) -> None:
        for index in range(first, last):
            start, stop = index * per_block, min((index + 1) * per_block, rows.shape[0])
            np.multiply(rows[start:stop], scale, out=target[start:stop])
            np.add(target[start:stop], shift, out=target[start:stop])
            if then is not None:
                then(target[start:stop])

    parallel.run_parts(part, blocks, work=x.size)
    return out


def _relu_chain(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    np.maximum(x, zeros_as(x), out=out)


def per_channel_operand(full: np.ndarray, other: np.ndarray) -> bool:
    """Whether ``other`` is a per-sample, per-channel operand of the channels-last ``full`` (N, *S, C): shaped
    (N or 1, 1, ..., 1, C), so `broadcast_channels` can combine them."""
    return (full.ndim > 2 and other.ndim == full.ndim and other.shape[-1] == full.shape[-1]
            and other.shape[0] in (1, full.shape[0]) and all(size == 1 for size in other.shape[1:-1]))


def broadcast_channels(ufunc: np.ufunc, full: np.ndarray, per_channel: np.ndarray,
                       out: np.ndarray | None = None) -> np.ndarray:
    """``ufunc(full, per_channel)`` for a commutative ``ufunc`` (add, multiply) and a `per_channel_operand`
    (squeeze-and-excitation's scale): the per-channel row repeated over k positions (as `bias_rows`), so the loop
    runs in runs of k x C rather than NumPy's broadcast runs of C; split over the batch, else the rows, on the
    run's threads. ``out``: a new array, or ``full`` itself for in place."""
    if out is None:
        out = np.empty_like(full, order="C")
    batch, channels = full.shape[0], full.shape[-1]
    if full.size == 0:
        return out
    full_c = np.ascontiguousarray(full)
    positions = full.size // (batch * channels)
    rows = row_repeat(channels, positions)                                          # positions per run
    run = rows * channels
    samples = per_channel.reshape(per_channel.shape[0], 1, channels)
    repeated = np.tile(samples, (1, 1, rows)) if rows > 1 else samples              # (N or 1, 1, run)
    source = full_c.reshape(batch, -1, run)
    target = out.reshape(batch, -1, run)
    split_batch = batch >= parallel.threads()

    def part(start: int, stop: int) -> None:
        if split_batch:
            ufunc(source[start:stop], repeated if repeated.shape[0] == 1 else repeated[start:stop],
                  out=target[start:stop])
        else:
            ufunc(source[:, start:stop], repeated, out=target[:, start:stop])

    parallel.run_parts(part, batch if split_batch else source.shape[1], full.size)
    return out


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0) as torch.relu (NaN stays NaN), at the speed of an array-array ufunc (`zeros_as`)."""
    return blockwise(_relu_chain, x, out)


def _relu6_chain(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    np.clip(x, x.dtype.type(0), x.dtype.type(6), out=out)


def relu6(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """min(max(x, 0), 6) (torch's hardtanh(0, 6): NaN stays NaN)."""
    return blockwise(_relu6_chain, x, out)


def _silu_chain(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    half = scratch.reshape(x.shape)
    np.multiply(x, x.dtype.type(0.5), out=half)     # h = x/2: x·σ(x) = h·(1 + tanh h) = h·tanh(h) + h
    np.tanh(half, out=out)
    np.multiply(out, half, out=out)
    np.add(out, half, out=out)


def silu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x·σ(x) as h·tanh(h) + h with h = x/2 (σ(x) = (1 + tanh(x/2))/2: no exp to overflow), 4 ufunc passes."""
    return blockwise(_silu_chain, x, out, TRANSCENDENTAL, passes=4)


def _sigmoid_chain(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    np.multiply(x, x.dtype.type(0.5), out=out)
    np.tanh(out, out=out)
    np.add(out, x.dtype.type(1), out=out)
    np.multiply(out, x.dtype.type(0.5), out=out)


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1/(1 + exp(−x)) as 0.5·(1 + tanh(0.5·x)) (no exp to overflow)."""
    return blockwise(_sigmoid_chain, x, out, TRANSCENDENTAL, passes=4)


def _hardswish_chain(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    gate = scratch.reshape(x.shape)
    kind = x.dtype.type
    np.add(x, kind(3), out=gate)
    np.clip(gate, kind(0), kind(6), out=gate)
    np.multiply(x, gate, out=out)
    np.divide(out, kind(6), out=out)


def hardswish(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x·relu6(x + 3)/6, in ATen's order (the product, then the division by 6)."""
    return blockwise(_hardswish_chain, x, out, CHEAP, passes=4)


def _hardsigmoid_chain(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    kind = x.dtype.type
    np.add(x, kind(3), out=out)
    np.clip(out, kind(0), kind(6), out=out)
    np.divide(out, kind(6), out=out)


def hardsigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """relu6(x + 3)/6."""
    return blockwise(_hardsigmoid_chain, x, out, CHEAP, passes=3)
