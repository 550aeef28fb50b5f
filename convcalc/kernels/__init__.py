"""Stage 2, kernels: the NumPy compute primitives the layer units call, split by algorithm.

Arrays in, arrays out: no layers, no graph. Activations are channels-last, ``(N, *spatial, C)`` (``layout``).
Every multiply-accumulate goes through a `MacCounter` (``counting``), which counts it from the dimensions of the
product actually run (never from the analyzer), so `convcalc run` can prove the MAC figures. Only NumPy's own
BLAS runs in the hot paths (``blas``: C += A @ B through it). Modules: ``padding`` (F.pad and its transpose),
``phases`` (the polyphase layout of strided inputs), ``elementwise`` (ufunc fast paths, bias, activations),
``parallel`` (the kernels' thread pool), ``scatter`` (gathers' transposes), ``im2col`` (windows, patches, col2im,
the input gradient), ``rows``, ``depthwise``, ``fft`` and ``winograd`` (the other convolution algorithms),
``pooling``. May import ``errors`` and ``algebra``.
Every public name is re-exported here (``from convcalc.kernels import conv_im2col``).
"""

from .counting import MacCounter
from .depthwise import conv_depthwise
from . import parallel
from .elementwise import (BIAS_ROW_FLOATS, RUNS_UNBUFFERED, add_bias, bias_rows, blockwise, broadcast_channels,
                          channel_affine,
                          hardsigmoid, hardswish, per_channel_operand, relu, relu6, row_repeat, sigmoid, silu,
                          ufunc_runs, zeros_as)
from .fft import conv_fft, fast_fft_length, fft_kernel_spectrum
from .im2col import (block_rows, conv_im2col, conv_im2col_blocked, conv_im2col_t, conv_input_grad, conv_weight_columns,
                     tap_block_columns, tap_blocks, tap_index, windows, windows_transpose, with_ones_column)
from .layout import is_real, to_logical, to_storage
from .padding import PAD_MODES, cropped_range, pad_source_index, pad_spatial, pad_spatial_transpose, torch_pad_index
from .phases import phase_tap, polyphase
from .pooling import (adaptive_argmax, adaptive_mean_transpose, adaptive_reduce, adaptive_taps, avg_divisor,
                      pool_pads_for_ceil, reduce_windows, window_argmax)
from .rows import conv_flat, conv_kn2row, conv_rows, kn2row_weights
from .scatter import scatter_add_axis, scatter_add_planes
from .winograd import WINOGRAD_G, conv_winograd, conv_winograd_split, winograd_parts, winograd_weights

__all__ = [
    "BIAS_ROW_FLOATS", "PAD_MODES", "RUNS_UNBUFFERED", "WINOGRAD_G", "MacCounter", "adaptive_argmax",
    "adaptive_mean_transpose", "adaptive_reduce", "adaptive_taps", "add_bias", "avg_divisor", "bias_rows",
    "block_rows", "blockwise", "broadcast_channels", "channel_affine", "conv_depthwise", "conv_fft", "conv_flat", "conv_im2col",
    "conv_im2col_blocked", "conv_im2col_t", "conv_input_grad", "conv_kn2row", "conv_rows", "conv_weight_columns",
    "conv_winograd", "conv_winograd_split", "cropped_range", "fast_fft_length", "fft_kernel_spectrum", "hardsigmoid", "hardswish",
    "is_real", "kn2row_weights", "pad_source_index", "pad_spatial", "pad_spatial_transpose", "parallel",
    "per_channel_operand", "phase_tap", "polyphase", "pool_pads_for_ceil", "reduce_windows", "relu", "relu6",
    "row_repeat", "scatter_add_axis", "scatter_add_planes", "sigmoid", "silu", "tap_block_columns", "tap_blocks",
    "tap_index", "to_logical", "to_storage", "torch_pad_index", "ufunc_runs", "window_argmax", "windows",
    "windows_transpose", "winograd_parts", "winograd_weights", "with_ones_column", "zeros_as",
]
