"""How a conv chooses its algorithm: the cost model's guess, or the choice the tuner measured on this machine.

`ConvAlgorithms` is the part of `convcalc.layers.conv.ConvNd` that names the algorithm `prepare` lays the weights
out for at given shapes: ``model_choice`` (the cost model, `conv_cost`, and the rules below: the cold-start guess,
and all there is with ``convcalc run --no-tune``), ``algorithm_choices`` (every algorithm the conv can run there,
which `convcalc.execution.tune` times) and ``use_choice`` (the measured winner, which `choice_for` then returns).
A choice is an algorithm name, with '+bias' where the bias is added inside the GEMM (a ones column,
`kernels.with_ones_column`): 'fft', 'winograd', 'im2col_t', 'depthwise', 'pointwise[+bias]', 'rows', 'im2col[+bias]',
'im2col_b[+bias]' (im2col in cache-sized blocks of output rows, `kernels.conv_im2col_blocked`) and 'im2col_p[+bias]'
(the same blocks shared by threads of its own, each GEMM on one BLAS thread; offered where BLAS runs several), and
'pointwise_p[+bias]' (a 1x1 conv's GEMM cut by rows between such threads, `kernels.blas.split_matmul`),
'pointwise_c[+bias]' and 'im2col_c[+bias]' (the one GEMM cut by output channels between them instead: a small
map's few rows, 49 on a 7x7 map, are all each thread's), 'kn2row'
(stride 1: all taps' weights in one wide GEMM, the taps' products added shifted, `kernels.conv_kn2row`) and
'kn2row_p' (its samples or grid rows shared by such threads), 'winograd_b' (Winograd sample by sample,
`kernels.conv_winograd_split`; offered where BLAS runs one thread: with several, each sample's 4^d small GEMMs
would each wait for all of BLAS's threads, and one descheduled by other load stalls them all: DenseNet-121's
28x28 convs at batch 8 on a busy 2-core VM took 3-3,000 ms) and 'winograd_p' (its samples, or bands of tile
rows, shared by such threads, transforms included, each GEMM on one BLAS thread).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, Sequence

from .._numpy import np

from ..algebra.shapes import prod
from ..kernels import blas, block_rows, fast_fft_length
from .conv_cost import (FFT_MARGIN, FFT_MAX_SPECTRUM_BYTES, FFT_WIDE_MARGIN, WINOGRAD_MARGIN, WINOGRAD_MIN_TILES,
                        WINOGRAD_WIDE_MARGIN, conv_costs, winograd_cost)

# stride-1 convs with at least this many output positions per sample use the row (or, batched, the tap-GEMM)
# algorithm instead of im2col: there the patch copy costs more than the GEMM (benchmarks/executor.py, ResNets)
ROWS_MIN_POSITIONS = 28 * 28
# ungrouped convs whose channels-last windows are contiguous only in runs shorter than this (C x the last kernel
# extent: a network's first conv on an image, say) copy transposed patches, run by run along the output rows
# (`kernels.conv_im2col_t`), instead of im2col's short runs or the row algorithm's k GEMMs on a few channels:
# 0.3-0.9x the time at batch 1, 0.05-0.6x at batch 8 (benchmarks/small_channels.py). Strided convs only below
# the second limit: at runs of 9-21 (ResNet's 7x7 stem on RGB) BLAS's transposed operand costs what the copy saves.
TRANSPOSED_PATCHES_MAX_RUN = 16
TRANSPOSED_PATCHES_MAX_RUN_STRIDED = 8
TRANSPOSED_PATCHES_WIDE_RUN = 64      # the tuner times them up to this run (4x the cost model's limit)
# a bias is added inside the GEMM (a ones column in its left operand, `kernels.with_ones_column`) where that
# operand is copied anyway (im2col's patches, a strided 1x1 conv's picked positions), and for stride-1 1x1 convs
# with at least this many times (C + 1) output channels: copying the (P, C) input costs less than a pass over
# the (P, O) output (ResNet-50's expanding 1x1 convs, O = 4C)
BIAS_IN_GEMM_MIN_EXPANSION = 2


class ConvAlgorithms:
    """The algorithm choice of ConvNd (its arguments: kernel_size, stride, dilation, groups, bias, algorithm, ...)."""

    def winograd_able(self) -> bool:
        return (all(k == 3 for k in self.kernel_size) and all(s == 1 for s in self.stride)
                and all(d == 1 for d in self.dilation) and self.groups == 1)

    # ---- the algorithm: the cost model's guess (`model_algorithm`), or the tuner's measured choice (`tuned`)
    tuned: Mapping[tuple, str] = MappingProxyType({})

    @staticmethod
    def choice_key(channels: int, spatial: Sequence[int], out: Sequence[int], dtype: np.dtype) -> tuple:
        return channels, tuple(spatial), tuple(out), np.dtype(dtype).str

    def use_choice(self, channels: int, spatial: Sequence[int], out: Sequence[int], dtype: np.dtype,
                   choice: str) -> None:
        """Run ``choice`` (one of `algorithm_choices`, measured fastest by `convcalc.execution.tune`) at these
        shapes instead of the cost model's guess: `prepare` lays the weights out for it, `memory_use` sizes it."""
        if choice not in self.algorithm_choices(channels, spatial, out, dtype, prune=False, bias=True):
            raise ValueError(f"{choice!r} is not an algorithm this conv can run at these shapes")
        self.tuned = {**self.tuned, self.choice_key(channels, spatial, out, dtype): choice}

    def choice_for(self, channels: int, spatial: Sequence[int], out: Sequence[int], dtype: np.dtype,
                   bias: bool | None = None) -> tuple[str, str]:
        """(the algorithm, with '+bias' when the bias is added inside the GEMM; who chose it: 'tuned', 'spec' (the
        `algorithm` argument leaves no choice) or 'model' (the cost model's guess)). ``bias``: whether the conv
        runs with one (a folded BatchNorm gives it one); None: whether the spec's has one."""
        tuned = self.tuned.get(self.choice_key(channels, spatial, out, dtype))
        if tuned is not None:
            return tuned, "tuned"
        return self.model_choice(channels, spatial, out, dtype, bias), "spec" if self.algorithm in ("fft", "winograd") \
            else "model"

    def model_choice(self, channels: int, spatial: Sequence[int], out: Sequence[int], dtype: np.dtype,
                     bias: bool | None = None) -> str:
        """The cost model's algorithm (`model_algorithm`) with its rule for the bias: inside the GEMM where its
        left operand is copied anyway (im2col's patches, a strided 1x1 conv's picked positions) and for stride-1
        1x1 convs with at least BIAS_IN_GEMM_MIN_EXPANSION x (C + 1) output channels."""
        method = self.model_algorithm(channels, spatial, out, dtype)
        if not (self.bias if bias is None else bias):
            return method
        if method.startswith("im2col") and method != "im2col_t" and self.groups == 1:
            return method + "+bias"
        if method == "pointwise" and (any(s > 1 for s in self.stride)
                                      or self.out_channels >= BIAS_IN_GEMM_MIN_EXPANSION * (channels + 1)):
            return "pointwise+bias"
        return method

    def algorithm_choices(self, channels: int, spatial: Sequence[int], out: Sequence[int], dtype: np.dtype,
                          prune: bool = True, bias: bool | None = None) -> tuple[str, ...]:
        """The algorithms this conv can run at these shapes that its `algorithm` argument allows ('auto': any;
        'direct': the GEMM ones; 'fft', 'winograd': that one), the cost model's first. Each GEMM algorithm with a
        bias (``bias``: a folded BatchNorm's too; None: the spec's) comes twice, the bias added after it or inside
        it ('+bias'). ``prune``: leave out the FFT and Winograd where the cost
        model says they take more than FFT_WIDE_MARGIN / WINOGRAD_WIDE_MARGIN x the direct time, the
        transposed patches for long contiguous runs (TRANSPOSED_PATCHES_WIDE_RUN), and the GEMMs cut by output
        channels ('_c') where a sample has at least as many output positions as channels (there cutting the
        rows leaves each thread a GEMM as wide): not worth timing."""
        first = self.model_choice(channels, spatial, out, dtype, bias)
        bias = self.bias if bias is None else bias
        if self.algorithm in ("fft", "winograd"):
            return (first,)
        found = [first]
        fft_shape = tuple(fast_fft_length(size + lo + hi) for size, (lo, hi) in zip(spatial, self.pads(spatial)))
        if self.algorithm == "auto":
            if self.fft_pays(channels, out, fft_shape, dtype, FFT_WIDE_MARGIN if prune else None):
                found.append("fft")
            if self.winograd_able() and (not prune or self.winograd_pays(channels, out, WINOGRAD_WIDE_MARGIN)):
                found.append("winograd")      # in pieces: sample by sample on one thread, or on threads of its own
                found.append("winograd_p" if blas.threads() > 1 and blas.can_set_threads() else "winograd_b")
        ungrouped, one_by_one = self.groups == 1, all(k == 1 for k in self.kernel_size)
        if ungrouped and not one_by_one and (not prune or channels * self.kernel_size[-1] < TRANSPOSED_PATCHES_WIDE_RUN):
            found.append("im2col_t")
        if self.groups > 1 and channels == self.groups:
            found.append("depthwise")
        threaded = blas.threads() > 1 and blas.can_set_threads()     # GEMMs on threads of the conv's own
        if ungrouped and one_by_one:
            found += ["pointwise", "pointwise+bias"] if bias else ["pointwise"]
            if threaded:
                found += ["pointwise_p", "pointwise_p+bias"] if bias else ["pointwise_p"]
                if not prune or prod(out) < self.out_channels:
                    found += ["pointwise_c", "pointwise_c+bias"] if bias else ["pointwise_c"]
        if ungrouped and not one_by_one and self.dims >= 2 and all(s == 1 for s in self.stride):
            found.append("rows")
        if ungrouped and not one_by_one and all(s == 1 for s in self.stride):
            found += ["kn2row", "kn2row_p"] if threaded else ["kn2row"]
        if ungrouped and not one_by_one:
            found += ["im2col_b", "im2col_b+bias"] if bias else ["im2col_b"]
            if threaded:
                found += ["im2col_p", "im2col_p+bias"] if bias else ["im2col_p"]
        found += ["im2col", "im2col+bias"] if bias and ungrouped else ["im2col"]
        if threaded and ungrouped and not one_by_one and (not prune or prod(out) < self.out_channels):
            found += ["im2col_c", "im2col_c+bias"] if bias else ["im2col_c"]
        return tuple(dict.fromkeys(found))

    def algorithm_for(self, channels: int, spatial: Sequence[int], out: Sequence[int], dtype: np.dtype) -> str:
        """The algorithm `prepare` lays the weights out for at these shapes (`memory_use` sizes it too): the
        tuner's choice where it made one, else the cost model's."""
        return self.choice_for(channels, spatial, out, dtype)[0].partition("+")[0]

    def model_algorithm(self, channels: int, spatial: Sequence[int], out: Sequence[int], dtype: np.dtype) -> str:
        """The cost model's algorithm at these shapes: the cold-start guess where nothing was measured."""
        auto = self.algorithm == "auto"
        fft_shape = tuple(fast_fft_length(size + lo + hi) for size, (lo, hi) in zip(spatial, self.pads(spatial)))
        if self.algorithm == "fft" or (auto and self.fft_pays(channels, out, fft_shape, dtype)):
            return "fft"
        if self.algorithm == "winograd" or (auto and self.winograd_pays(channels, out)):
            return "winograd"
        unit_stride = all(s == 1 for s in self.stride)
        if self.groups == 1 and prod(self.kernel_size) > 1 and channels * self.kernel_size[-1] < (
                TRANSPOSED_PATCHES_MAX_RUN if unit_stride else TRANSPOSED_PATCHES_MAX_RUN_STRIDED):
            return "im2col_t"
        if self.groups > 1 and channels == self.groups:
            return "depthwise"
        if self.groups == 1 and all(k == 1 for k in self.kernel_size):
            return "pointwise"
        if self.groups == 1 and self.dims >= 2 and unit_stride and prod(out) >= ROWS_MIN_POSITIONS:
            return "rows"
        if self.groups == 1 and prod(self.kernel_size) > 1 and prod(out) > block_rows(
                prod(self.kernel_size) * channels + 1, np.dtype(dtype).itemsize):
            return "im2col_b"                  # more than one block: the patches stay in cache block by block
        return "im2col"

    def fft_pays(self, channels: int, out: Sequence[int], fft_shape: Sequence[int], dtype: np.dtype,
                 margin: float | None = FFT_MARGIN) -> bool:
        """algorithm 'auto': the FFT when its estimated cost is below ``margin`` x the direct one's (both per
        sample, `conv_costs`; None: any) and the kernel spectrum it keeps is not too large. Never for 1x1 kernels."""
        if prod(self.kernel_size) == 1:
            return False
        freqs = prod(fft_shape[:-1]) * (fft_shape[-1] // 2 + 1)
        spectrum_bytes = freqs * channels * self.out_channels // self.groups * 2 * np.dtype(dtype).itemsize
        if spectrum_bytes > FFT_MAX_SPECTRUM_BYTES:
            return False
        direct, fft = conv_costs(channels, self.out_channels, self.groups, prod(self.kernel_size), prod(out),
                                 fft_shape, freqs)
        return margin is None or fft < margin * direct

    def winograd_pays(self, channels: int, out: Sequence[int], margin: float = WINOGRAD_MARGIN) -> bool:
        """algorithm 'auto': Winograd F(2, 3) where it can run (`winograd_able`), each sample has WINOGRAD_MIN_TILES
        tiles or more (rows of its GEMMs; the plan is made per sample shape) and `winograd_cost` is below
        ``margin``."""
        if not self.winograd_able() or prod(-(-o // 2) for o in out) < WINOGRAD_MIN_TILES:
            return False
        return winograd_cost(channels, self.out_channels, out) < margin
