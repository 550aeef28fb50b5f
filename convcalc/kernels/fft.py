"""Convolution through the FFT.

Owns `fast_fft_length` (the transform lengths pocketfft runs fastest), `fft_kernel_spectrum` (the conjugated,
dilation-stuffed kernel spectrum laid out for one complex GEMM per frequency) and `conv_fft` (the correlation of a
padded input, strides subsampling the stride-1 result), which books the spectral products as
``transform_macs`` and the direct-equivalent MACs of the outputs kept as the conv's own.
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np

from .counting import MacCounter


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
