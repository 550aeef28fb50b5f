"""NumPy kernels for the executor. Activations are channels-last: ``(N, *spatial, C)``.

Every multiply-accumulate goes through a `MacCounter`, which counts it from the dimensions of
the product actually run (never from the analyzer), so `convcalc run` can prove the MAC figures.
Only NumPy's own BLAS runs in the hot paths.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .blas import gemm_accumulate

PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class MacCounter:
    """Counts multiply-accumulates from the shapes of the products that really ran."""

    def __init__(self) -> None:
        self.total = 0
        self.discarded = 0   # computed on padding-grid positions that are no output (see conv_flat), not in total
        self.transform_macs = 0   # multiply-accumulates run in a transform domain, not in total: the complex
                                  # products of FFT spectra (conv_fft) or Winograd's tile GEMMs (conv_winograd)
        self.transform = ""       # 'fft' or 'winograd' when one ran

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None,
               ones_column: bool = False) -> np.ndarray:
        """a @ b, counting prod(batch dims of the result) x rows x K x cols. With ``ones_column`` a's last column
        holds ones and b's last row a bias (`with_ones_column`): the product adds the bias, which is no
        multiply-accumulate of the layer's, so K counts a's other columns only."""
        k = a.shape[-1] - ones_column
        result = np.matmul(a, b, out=out)
        self.total += result.size * k
        return result

    def matmul_into(self, a: np.ndarray, b: np.ndarray, into: np.ndarray, ones_column: bool = False) -> np.ndarray:
        """``into += a @ b`` (``into``: 2-D, a's rows by b's columns), counted as `matmul` counts: in the GEMM
        itself where NumPy's BLAS can be called so (`blas.gemm_accumulate`), else as a product and an add."""
        if not gemm_accumulate(a, b, into):
            into += np.matmul(a, b)
        self.total += into.size * (a.shape[-1] - ones_column)
        return into

    def add(self, count: int) -> None:
        self.total += int(count)


# --------------------------------------------------------------------------- padding

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
        interior = tuple(slice(lo, lo + size) for size, (lo, _) in zip(x.shape, grow))
        padded[interior] = x
        for axis, (lo, hi) in enumerate(grow):
            if lo:
                padded[(slice(None),) * axis + (slice(0, lo),)] = value
            if hi:
                padded[(slice(None),) * axis + (slice(shape[axis] - hi, None),)] = value
        return padded
    return np.pad(x, grow, mode=np_mode)


# --------------------------------------------------------------------------- windows

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


# --------------------------------------------------------------------------- convolution

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
    target[...] = values
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


def conv_rows(x: np.ndarray, row_columns: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
              dilation: Sequence[int], out: Sequence[int], counter: MacCounter) -> np.ndarray:
    """Ungrouped cross-correlation as k_0 GEMMs, one per offset along the first spatial axis.

    The remaining axes are unfolded once, over every padded position of the first axis: (N, P_0, *out[1:],
    *k[1:], C), one copy (P_0 / out_0 times im2col's size over k_0). Each first-axis offset then takes a slab of
    it, for stride 1 a contiguous run of rows at batch 1, which BLAS reads as it is.
    ``row_columns``: (k_0, prod(k[1:]) * C, O), rows ordered (*k[1:], C).
    """
    batch = x.shape[0]
    first_k, rest_k = kernel[0], kernel[1:]
    step, dil = stride[0], dilation[0]
    if rest_k:
        unfolded = windows(x, (1, *rest_k), (1, *stride[1:]), (1, *dilation[1:]), (x.shape[1], *out[1:]))
        rest = int(np.prod(unfolded.shape[2:]))
        unfolded = np.ascontiguousarray(unfolded).reshape(batch, x.shape[1], rest)   # copy: (N, P_0, rest)
    else:
        unfolded = x.reshape(batch, x.shape[1], int(np.prod(x.shape[2:])))
    result = None
    positions = batch * int(np.prod(out))
    for offset in range(first_k):
        start = offset * dil
        slab = unfolded[:, start:start + (out[0] - 1) * step + 1:step]          # (N, out_0, rest)
        part = counter.matmul(slab.reshape(positions, -1), row_columns[offset])
        if result is None:
            result = part
        else:
            result += part
    return result.reshape(batch, *out, row_columns.shape[-1])


def conv_depthwise(x: np.ndarray, taps: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                   dilation: Sequence[int], out: Sequence[int], counter: MacCounter) -> np.ndarray:
    """Depthwise cross-correlation (groups == C_in) as a multiply-accumulate over shifted views.

    ``taps``: (prod(k), C, M) for a channel multiplier M; output channel c*M + m (PyTorch's order).
    """
    batch, channels = x.shape[0], x.shape[-1]
    multiplier = taps.shape[-1]
    acc = np.zeros((batch, *out, channels, multiplier), dtype=x.dtype)
    for tap, offsets in enumerate(np.ndindex(*kernel)):
        index = [slice(None)]
        for o, s, d, size in zip(offsets, stride, dilation, out):
            index.append(slice(o * d, o * d + (size - 1) * s + 1, s))
        shifted = x[tuple(index)]                                           # (N, *out, C)
        if multiplier == 1:
            acc[..., 0] += shifted * taps[tap, :, 0]
        else:
            acc += shifted[..., None] * taps[tap]
        counter.add(shifted.size * multiplier)
    return acc.reshape(batch, *out, channels * multiplier)


def fast_fft_length(n: int) -> int:
    """The smallest 2^a * 3^b * 5^c >= n (lengths pocketfft transforms fastest)."""
    best = 1 << max(n - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35
            while length < n:
                length *= 2
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def fft_kernel_spectrum(weight: np.ndarray, groups: int, dilation: Sequence[int], fft_shape: Sequence[int],
                        dtype: np.dtype) -> np.ndarray:
    """PyTorch (O, C/g, *k) -> conj(rfftn(dilated kernel, fft_shape)) laid out (g, freqs, C/g, O/g).

    Cross-correlation is a product with the CONJUGATED kernel spectrum (semantics §7); dilation is
    zero-stuffing the kernel (d-1 zeros between taps).
    """
    out_channels, per_group = weight.shape[:2]
    kernel = weight.shape[2:]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    stuffed = np.zeros((out_channels, per_group, *spans), dtype=np.float64)
    stuffed[(slice(None), slice(None), *(slice(None, None, d) for d in dilation))] = weight
    axes = tuple(range(2, 2 + len(kernel)))
    spectrum = np.fft.rfftn(stuffed, s=tuple(fft_shape), axes=axes)        # (O, C/g, *F_r)
    spectrum = spectrum.reshape(groups, out_channels // groups, per_group, -1)   # (g, O/g, C/g, freqs)
    complex_type = np.result_type(dtype, np.complex64)
    return np.ascontiguousarray(np.conj(spectrum).transpose(0, 3, 2, 1), dtype=complex_type)   # (g, freqs, C/g, O/g)


def conv_fft(x: np.ndarray, spectrum: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
             fft_shape: Sequence[int], out: Sequence[int], counter: MacCounter) -> np.ndarray:
    """Cross-correlation of a padded ``(N, *P, C)`` array through the FFT (semantics §7).

    Per spatial axis the transform length L >= P (``fft_shape``), so the circular correlation has no
    wrap-around on the valid positions 0..P-k_eff; one complex GEMM per frequency contracts the channels
    (per group); strides subsample the stride-1 result. ``spectrum``: `fft_kernel_spectrum`.

    MACs: ``counter.transform_macs`` gets the complex multiply-accumulates of the spectral products that ran
    (g x freqs x N x C/g x O/g); ``counter.total`` gets the direct-equivalent MACs of the outputs kept
    (their number x C/g x prod(k)), the conv's own count, so the run check compares like with like.
    The transforms themselves (O(P log P) each) are in neither.
    """
    batch = x.shape[0]
    dims = len(kernel)
    axes = tuple(range(1, dims + 1))
    groups, freqs, per_group, out_per_group = spectrum.shape
    transformed = np.fft.rfftn(x, s=tuple(fft_shape), axes=axes)          # (N, *F_r, C)
    half = transformed.shape[1:-1]
    transformed = transformed.astype(spectrum.dtype, copy=False).reshape(batch, freqs, groups, per_group)
    transformed = transformed.transpose(2, 1, 0, 3)                        # (g, freqs, N, C/g)
    product = np.matmul(transformed, spectrum)                             # (g, freqs, N, O/g)
    counter.transform = "fft"
    counter.transform_macs += groups * freqs * batch * per_group * out_per_group
    product = product.transpose(2, 1, 0, 3).reshape(batch, *half, groups * out_per_group)   # (N, *F_r, O)
    full = np.fft.irfftn(product, s=tuple(fft_shape), axes=axes)          # (N, *F, O): stride-1 correlation
    index = (slice(None), *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, stride)), slice(None))
    result = np.ascontiguousarray(full[index], dtype=x.dtype)              # (N, *out, O)
    counter.add(result.size * per_group * int(np.prod(kernel)))
    return result


# --------------------------------------------------------------------------- Winograd F(2, 3)

# Winograd's minimal filtering F(2, 3) (Lavin & Gray 2016): a 3-tap correlation over a 4-sample tile gives two
# outputs as Y = A^T [(G g) * (B^T d)], four multiplications instead of six; in d dimensions the nested form
# gives 2^d outputs per 4^d-sample tile from 4^d products instead of 2^d 3^d (2.25x fewer in 2-D).
WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_weights(weight: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(O, C, 3, ..., 3) -> (4^d, C, O): G g G^T along every spatial axis, in float64, then cast.
    The leading index runs over the transformed tile offsets in spatial-axis order (as `conv_winograd`'s)."""
    u = np.asarray(weight, dtype=np.float64)
    dims = u.ndim - 2
    for axis in range(2, 2 + dims):
        u = np.moveaxis(np.tensordot(u, WINOGRAD_G, axes=([axis], [1])), -1, axis)   # 3 taps -> 4
    u = u.transpose(*range(2, 2 + dims), 1, 0)                                        # (4, ..., 4, C, O)
    return np.ascontiguousarray(u.reshape(4 ** dims, weight.shape[1], weight.shape[0]), dtype=dtype)


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


def conv_winograd(x: np.ndarray, transformed: np.ndarray, out: Sequence[int], counter: MacCounter,
                  bias: np.ndarray | None = None, pads: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
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
    y = np.empty((batch, *(size for t in tiles for size in (t, 2)), out_channels), dtype=x.dtype)
    np.copyto(y, data.transpose(order))
    y = y.reshape(batch, *(2 * t for t in tiles), out_channels)
    if any(2 * t != o for t, o in zip(tiles, out)):
        y = np.ascontiguousarray(y[(slice(None), *(slice(0, o) for o in out))])
    counter.add(y.size * channels * 3 ** dims)
    return y


# --------------------------------------------------------------------------- pooling

def pool_pads_for_ceil(spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                       dilation: Sequence[int], padding: Sequence[int], out: Sequence[int]) -> list[tuple[int, int]]:
    """(lo, hi) padding that makes every output window exist, including ceil_mode's overhang past the right pad."""
    pads = []
    for i, k, s, d, p, o in zip(spatial, kernel, stride, dilation, padding, out):
        needed = (o - 1) * s + d * (k - 1) + 1
        pads.append((p, max(p, needed - i - p)))
    return pads


def avg_divisor(spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                out: Sequence[int], count_include_pad: bool) -> np.ndarray:
    """PyTorch's AvgPool divisor per output position (product of per-axis counts), see semantics §3.4."""
    divisor = np.ones(tuple(out), dtype=np.float64)
    for axis, (i, k, s, p, o) in enumerate(zip(spatial, kernel, stride, padding, out)):
        starts = np.arange(o) * s - p
        ends = np.minimum(starts + k, i + p)
        if count_include_pad:
            counts = ends - starts
        else:
            counts = np.minimum(ends, i) - np.maximum(starts, 0)
        shape = [1] * len(out)
        shape[axis] = o
        divisor = divisor * counts.reshape(shape)
    return divisor


def adaptive_reduce(x: np.ndarray, targets: Sequence[int], reduce) -> np.ndarray:
    """Adaptive pooling, one spatial axis at a time (max and mean are both separable)."""
    for axis, o in enumerate(targets, start=1):
        i = x.shape[axis]
        if i == o:
            continue
        parts = []
        for j in range(o):
            lo, hi = (j * i) // o, -((-(j + 1) * i) // o)
            parts.append(reduce(np.take(x, np.arange(lo, hi), axis=axis), axis=axis, keepdims=True))
        x = np.concatenate(parts, axis=axis)
    return x


def reduce_windows(x: np.ndarray, pads: Sequence[tuple[int, int]], kernel: Sequence[int], stride: Sequence[int],
                   dilation: Sequence[int], out: Sequence[int], combine, value: float = 0.0) -> np.ndarray:
    """Fold ``combine`` (np.maximum, np.add, ...) over the kernel taps of a channels-last array padded by ``pads``
    with ``value``.

    One view per tap: much faster than reducing a window view over its kernel axes. With a stride the input is
    first copied in `polyphase` order (the padding written in the same copy), so that every tap's view is
    contiguous along its last spatial axis rather than in runs of C (NumPy's buffered path, `ufunc_runs`).
    """
    if all(s == 1 for s in stride):
        source, step = pad_spatial(x, pads, value=value), tuple(stride)
    else:
        extent = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(out, stride, kernel, dilation)]
        source, step = polyphase(x, pads, stride, extent, value), tuple(stride)
    result = None
    with ufunc_runs(out[-1] * x.shape[-1]):
        for offsets in np.ndindex(*kernel):
            at = [o * d for o, d in zip(offsets, dilation)]
            if all(s == 1 for s in stride):
                tap = source[(slice(None), *(slice(a, a + n) for a, n in zip(at, out)))]
            else:
                tap = phase_tap(source, at, step, out)
            result = tap.copy() if result is None else combine(result, tap, out=result)
    return result


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


# --------------------------------------------------------------------------- layouts

def to_storage(x: np.ndarray) -> np.ndarray:
    """(N, C, *S) -> the executor's channels-last (N, *S, C); vectors (N, F) stay as they are."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if x.ndim > 2 else x


def to_logical(x: np.ndarray) -> np.ndarray:
    """The executor's channels-last (N, *S, C) -> PyTorch's (N, C, *S)."""
    return np.moveaxis(x, -1, 1) if x.ndim > 2 else x


def conv_flat(x: np.ndarray, taps: np.ndarray, kernel: Sequence[int], dilation: Sequence[int],
              out: Sequence[int], counter: MacCounter) -> np.ndarray:
    """Stride-1 cross-correlation without building patches: one GEMM per kernel tap, straight on the input.

    The padded input (N, *P, C) is seen as rows (N, prod(P), C). For stride 1 the tap at offset t reads,
    for every output position on the padded grid, row (position + flat offset of t): one contiguous
    run of rows, which BLAS takes as it is. The grid's extra columns (P - out on each trailing axis) are
    computed and dropped, costing prod(P)/prod(out) - 1 more multiply-accumulates than the conv has;
    the counter counts only those the conv has. ``taps``: (prod(k), C, O).
    """
    batch, channels = x.shape[0], x.shape[-1]
    padded = x.shape[1:-1]
    strides = [int(np.prod(padded[axis + 1:])) for axis in range(len(padded))]   # flat step per axis
    rows = sum((o - 1) * step for o, step in zip(out, strides)) + 1                # grid rows reaching the last output
    flat = x.reshape(batch, -1, channels)
    out_channels = taps.shape[-1]
    grid = np.empty((batch, int(np.prod(padded)), out_channels), dtype=x.dtype)
    scratch = np.empty((rows, out_channels), dtype=x.dtype)
    for n in range(batch):
        target = grid[n, :rows]
        for index, offsets in enumerate(np.ndindex(*kernel)):
            start = sum(o * d * step for o, d, step in zip(offsets, dilation, strides))
            if index == 0:
                np.matmul(flat[n, start:start + rows], taps[index], out=target)
            else:
                np.matmul(flat[n, start:start + rows], taps[index], out=scratch)
                target += scratch
    per_tap = channels * out_channels
    useful_rows = batch * int(np.prod(out))        # GEMM rows that land on an output position
    counter.add(useful_rows * per_tap * int(np.prod(kernel)))
    counter.discarded += (batch * rows - useful_rows) * per_tap * int(np.prod(kernel))
    view = grid.reshape(batch, *padded, out_channels)
    return view[(slice(None), *(slice(0, o) for o in out))]


# --------------------------------------------------------------------------- backward: gathers' transposes

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


def scatter_add_axis(values: np.ndarray, index: np.ndarray, axis: int, size: int) -> np.ndarray:
    """The VJP of ``np.take(x, index, axis)`` for an x of length ``size`` along ``axis``: the slices of ``values``
    along ``axis`` summed into positions ``index`` (repeated indices accumulate; unnamed positions are 0).

    The slices are sorted by index (stably; resampling's indices already are), which makes each position's
    slices one run; then one vectorised add per offset within the runs (the k-th slice of every run at least
    k+1 long), so as many passes as the longest run, each over distinct positions."""
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
    for offset in range(int(lengths.max(initial=0))):
        runs = lengths > offset
        result[(*lead, targets[runs])] += np.take(values, starts[runs] + offset, axis=axis)
    return result


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


def cropped_range(size: int, lo: int, hi: int) -> tuple[int, int]:
    """(first, count): the input positions F.pad keeps along an axis of ``size`` when negative pads crop; circular
    padding wraps through just these (it crops first)."""
    first = max(-lo, 0)
    return first, size + min(hi, 0) - first


def is_real(dtype: np.dtype) -> bool:
    """Whether arrays of ``dtype`` can become the network's float values: numbers, and not complex ones."""
    return np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)


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


# --------------------------------------------------------------------------- elementwise fast paths

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
