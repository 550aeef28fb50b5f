"""What executing a unit costs in memory: the record `MemoryUse` that a unit's optional ``memory_use(in_shapes,
out_shape, dtype, batch)`` returns, and the convolution's rule, algorithm by algorithm (`conv_memory`).

The executor's memory estimate (`convcalc.execution.memory`) walks the graph and asks each unit; a unit without
``memory_use`` gets a generic bound there. Every figure is an upper bound in bytes on what the unit's ``prepare``,
``forward`` and ``backward`` allocate, read off the kernels they call (`convcalc.kernels`): a bound on the arrays,
not a measurement, so a little loose where a kernel frees a temporary before making the next.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from .._numpy import np

from ..algebra.shapes import prod
from ..kernels import BIAS_ROW_FLOATS, blas, block_rows, fast_fft_length

COMPLEX_BYTES = 16       # numpy.fft computes in complex128 whatever the input's precision


class MemoryUse(NamedTuple):
    """Bytes one unit costs the executor at one batch size (its inputs and its output's own size excluded)."""

    prepared: int        # parameters laid out by ``prepare`` and kept (layouts, FFT spectra, Winograd weights)
    preparing: int       # temporaries while ``prepare`` runs, on top of ``prepared`` (and of a float64 copy of
                         # parameters given in another dtype, which the caller adds)
    workspace: int       # temporaries of one ``forward`` at the batch size
    output: int          # what the output keeps alive beyond its own size (a view of a larger array); usually 0
    backward: int        # temporaries of one ``backward`` at the batch size (input gradients, lazy layouts)


def conv_memory(layer: Any, in_shapes: Sequence[Sequence[int]], out_shape: Sequence[int], dtype: np.dtype,
                batch: int) -> MemoryUse:
    """A ConvNd's memory at ``batch`` in ``dtype``, for the algorithm `ConvNd.algorithm_for` picks (see
    `ConvNd.prepare` and `forward`): the padded copy of the input, then the algorithm's own arrays."""
    item = np.dtype(dtype).itemsize
    channels, spatial = in_shapes[0][0], tuple(in_shapes[0][1:])
    out_channels, out = out_shape[0], tuple(out_shape[1:])
    kernel, stride, dilation, groups = layer.kernel_size, layer.stride, layer.dilation, layer.groups
    dims, n, q, k = len(spatial), batch, prod(out), prod(kernel)
    pads = layer.pads(spatial)
    padded = prod(max(size + lo + hi, 0) for size, (lo, hi) in zip(spatial, pads))
    weights = out_channels * (channels // groups) * k
    method = layer.algorithm_for(channels, spatial, out, dtype)
    # an explicitly padded copy (zeros: one; reflect/replicate/circular: np.take per axis, two alive)
    copies = 0 if all(lo == 0 and hi == 0 for lo, hi in pads) else (1 if layer.padding_mode == "zeros" else 2)
    pad = copies * n * padded * channels * item
    cast = 2 * item * weights                         # the weights in the run's dtype, and one layout copy
    output = 0
    if method == "fft":
        shape = [fast_fft_length(max(size + lo + hi, 1)) for size, (lo, hi) in zip(spatial, pads)]
        freqs = prod(shape[:-1]) * (shape[-1] // 2 + 1)
        spectrum = freqs * (channels // groups) * out_channels * np.result_type(dtype, np.complex64).itemsize
        stuffed = out_channels * (channels // groups) * prod(d * (kk - 1) + 1 for kk, d in zip(kernel, dilation))
        prepared = spectrum + item * weights
        preparing = cast + 8 * stuffed + 3 * COMPLEX_BYTES * freqs * (channels // groups) * out_channels
        spectra = COMPLEX_BYTES * n * freqs * 3 * (channels + out_channels)      # the input's, products, copies
        workspace = pad + spectra + 2 * 8 * n * prod(shape) * out_channels      # and the inverse transform
    elif method in ("winograd", "winograd_b", "winograd_p"):
        tiles = [-(-o // 2) for o in out]
        t, span = prod(tiles), prod(2 * size + 2 for size in tiles)
        prepared = item * (4 ** dims * channels * out_channels + weights)
        preparing = cast + 2 * 8 * 4 ** dims * channels * out_channels
        # in pieces (`kernels.conv_winograd_split`): a sample (or less) per thread at a time, and its output
        alive = n if method == "winograd" else min(n, blas.threads() if method == "winograd_p" else 1)
        transformed = 2 * 4 ** dims * alive * t * (channels + out_channels)   # the tiles in and out of the GEMMs
        workspace = item * (alive * span * channels + transformed + 2 * 2 ** dims * alive * t * out_channels)
        if method != "winograd":
            workspace += item * alive * q * out_channels
        if layer.padding_mode != "zeros":
            workspace += pad
    elif method == "im2col_t":
        extent = [d * (kk - 1) + s * (o - 1) + 1 for kk, s, d, o in zip(kernel, stride, dilation, out)]
        phases = prod(stride) * prod(-(-e // s) for e, s in zip(extent, stride))
        prepared = 2 * item * weights
        preparing = cast + 3 * item * weights
        workspace = item * n * channels * (phases + k * q) + (pad if layer.padding_mode != "zeros" else 0)
    elif method == "depthwise":
        prepared = 2 * item * weights
        preparing = cast
        workspace = pad + 2 * item * n * q * out_channels
    elif method in ("pointwise", "pointwise_p", "pointwise_c"):
        prepared = item * (weights + out_channels)
        preparing = cast + item * (weights + out_channels)
        workspace = pad + item * n * q * (channels + 1)
    elif method in ("kn2row", "kn2row_p"):            # one wide GEMM per block of rows (`conv_kn2row`)
        prepared = 2 * item * weights
        preparing = cast + item * weights
        block = min(padded, max(block_rows(k * out_channels, item), 1))
        threads = blas.threads() if method == "kn2row_p" else 1
        workspace = pad + item * (threads * block * k * out_channels + n * padded * out_channels)
        output = item * n * max(padded - q, 0) * out_channels      # the output is a view of the padded grid
    elif method == "rows" and batch >= 4:             # one GEMM per tap on the flat padded input (`conv_flat`)
        prepared = 2 * item * weights
        preparing = cast + item * weights
        workspace = pad + item * padded * out_channels
        output = item * n * max(padded - q, 0) * out_channels      # the output is a view of the padded grid
    elif method == "rows":                            # k_0 GEMMs on the other axes unfolded once (`conv_rows`)
        prepared = 2 * item * weights
        preparing = cast + item * weights
        rest = prod(kernel[1:]) * channels * prod(out[1:])
        first = max(spatial[0] + pads[0][0] + pads[0][1], 0)
        workspace = pad + item * n * (2 * first * rest + 2 * q * out_channels)   # unfolded, and a slab's copy
    elif method in ("im2col_b", "im2col_p"):          # im2col block by block: a block's patches per thread
        prepared = item * (weights + out_channels)
        preparing = cast + item * (weights + out_channels)
        block = min(q, max(block_rows(k * channels + 1, item), prod(out[1:])))     # whole lines of the output
        threads = blas.threads() if method == "im2col_p" else 1
        workspace = pad + item * (threads * block * (k * channels + 1) + n * q * out_channels)
    else:                                             # im2col: the patch matrix (a grouped one copied twice)
        prepared = item * (weights + out_channels)
        preparing = cast + item * (weights + out_channels)
        workspace = pad + item * n * q * ((2 if groups > 1 else 1) * (k * channels + 1) + out_channels)
    # backward (`conv_input_grad`): the weights as columns (made once), the padded input's gradient, the
    # regrouped output gradient and one tap's product at a time, then the padding's transpose
    backward = item * (weights + n * (2 * padded * channels + q * out_channels + 2 * q * channels)) + pad
    prepared += item * BIAS_ROW_FLOATS[1]             # the bias repeated over positions (`kernels.bias_rows`)
    # a quarter more for what no formula above names (a BLAS copy of a strided operand, allocator rounding)
    return MemoryUse(prepared, preparing, workspace * 5 // 4, output, backward * 5 // 4)


__all__ = ["MemoryUse", "conv_memory"]
