"""The cost model by which a conv's ``algorithm: auto`` chooses FFT or Winograd over the direct path.

Estimates in units of one BLAS multiply-accumulate, with constants fitted on benchmarks/fft_conv.py and
benchmarks/winograd.py (on the CPU named there). Pure arithmetic: the conv unit (`convcalc.layers.conv`) calls it
when it prepares its weights.
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np

from ..algebra.shapes import prod

# algorithm 'auto' takes the FFT when its estimated cost (`conv_costs`) is below FFT_MARGIN x the direct one's
# and the kernel spectrum it keeps stays under FFT_MAX_SPECTRUM_BYTES. The cost constants are a least-squares
# fit of benchmarks/fft_conv.py's timings (numpy 2.4 pocketfft, OpenBLAS, one thread); the margin keeps the
# direct path (summed as PyTorch sums) where the two estimates are close.
DIRECT_PATCH_COST = 32.0
FFT_TRANSFORM_COST = 28.0
FFT_SPECTRAL_COST = 26.0
FFT_MARGIN = 0.8
FFT_MAX_SPECTRUM_BYTES = 256 * 2 ** 20
# algorithm 'auto' takes Winograd F(2, 3) for a 3^d stride-1 conv when `winograd_cost` (its time over the direct
# path's) is below WINOGRAD_MARGIN and its GEMMs have at least WINOGRAD_MIN_TILES rows. The model: the GEMMs run
# (2/3)^d of the direct MACs (times the outputs computed and dropped on odd extents) at WINOGRAD_GEMM_COST x the
# direct GEMMs' time per MAC (smaller, less efficient products), and the memory-bound tile transforms move
# 2^d (C + O) values per output, each costing WINOGRAD_TRANSFORM_COST MACs. A least-squares fit of
# benchmarks/winograd.py's ratios (2 threads, polyphase transforms): 3x3 convs with 64+ channels on 14- to
# 112-wide maps run in ~0.7-0.9x the direct time; few channels or 7-wide maps lose.
WINOGRAD_GEMM_COST = 1.6
WINOGRAD_TRANSFORM_COST = 8.0
WINOGRAD_MARGIN = 0.9
WINOGRAD_MIN_TILES = 32
# the tuner (`convcalc.execution.tune`) times the FFT and Winograd wherever the model does not put them beyond
# these margins (estimates 3x and 2x the direct time): wide, since the constants were fitted on one CPU
FFT_WIDE_MARGIN = 3.0
WINOGRAD_WIDE_MARGIN = 2.0


def winograd_cost(channels: int, out_channels: int, out: Sequence[int]) -> float:
    """Estimated time of Winograd F(2, 3) over the direct path's for a 3^d stride-1 conv (see WINOGRAD_GEMM_COST)."""
    dims = len(out)
    computed = prod(2 * -(-o // 2) for o in out) / prod(out)       # odd extents compute one more row, dropped
    transforms = WINOGRAD_TRANSFORM_COST * (1 / channels + 1 / out_channels)
    return (2 / 3) ** dims * (WINOGRAD_GEMM_COST * computed + transforms)



def conv_costs(channels: int, out_channels: int, groups: int, taps: int, positions: int, fft_shape: Sequence[int],
               freqs: int) -> tuple[float, float]:
    """Estimated (direct, FFT) time of one sample, in units of one BLAS multiply-accumulate.

    direct: the MACs, positions x (C/g) x O x taps, plus DIRECT_PATCH_COST per patch element copied (or per
    elementwise tap product, depthwise), positions x taps x C. FFT: the transforms of C input and O output
    planes, FFT_TRANSFORM_COST x (C + O) x L log2 L (L = prod(fft_shape)), plus the per-frequency complex
    products, FFT_SPECTRAL_COST x freqs x (C/g) x O.
    """
    direct = positions * taps * (channels // groups) * out_channels + DIRECT_PATCH_COST * positions * taps * channels
    length = prod(fft_shape)
    fft = (FFT_TRANSFORM_COST * (channels + out_channels) * length * max(float(np.log2(length)), 1.0)
           + FFT_SPECTRAL_COST * freqs * (channels // groups) * out_channels)
    return direct, fft
