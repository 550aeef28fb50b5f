"""Normalisation kernels: standardising over a set of axes (what LayerNorm, GroupNorm and InstanceNorm compute per
sample, each over its own axes) with its vector-Jacobian product, and the sums over a window of channels that local
response normalisation (LRN) divides by.

Arrays in, arrays out, any layout: the caller names the axes. Variances are biased (divided by the count, as
torch's ``native_layer_norm``/``native_group_norm``/``batch_norm`` with batch statistics compute them).
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np


def standardize(x: np.ndarray, axes: Sequence[int], eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(x̂, 1/√(var + eps)) with x̂ = (x − mean)·1/√(var + eps), mean and biased var over ``axes`` (kept as
    size-1 axes in the second result). x̂ is a new array."""
    axes = tuple(axes)
    centred = x - x.mean(axis=axes, keepdims=True)
    variance = np.square(centred).mean(axis=axes, keepdims=True)
    inverse_std = 1.0 / np.sqrt(variance + x.dtype.type(eps))
    centred *= inverse_std
    return centred, inverse_std


def standardize_backward(normalized: np.ndarray, inverse_std: np.ndarray, grad: np.ndarray,
                         axes: Sequence[int]) -> np.ndarray:
    """dL/dx from dL/dx̂ = ``grad`` (x̂ = `standardize`'s): 1/√(var + eps)·(g − mean(g) − x̂·mean(g·x̂)), means
    over ``axes`` (native_layer_norm_backward; native_group_norm_backward and batch norm with batch statistics
    are the same formula over their axes)."""
    axes = tuple(axes)
    mean_dot = (grad * normalized).mean(axis=axes, keepdims=True)
    result = grad - grad.mean(axis=axes, keepdims=True)
    result -= normalized * mean_dot
    result *= inverse_std
    return result


def channel_window_sums(values: np.ndarray, before: int, after: int) -> np.ndarray:
    """Per channel c (the last axis) the sum of ``values[..., c − before .. c + after]``, zeros beyond the
    channels (F.local_response_norm's zero padding). The transpose (what each channel contributes to) is the same
    sum with ``before`` and ``after`` swapped."""
    channels = values.shape[-1]
    sums = np.zeros_like(values)
    for offset in range(max(-before, 1 - channels), min(after, channels - 1) + 1):
        if offset >= 0:
            sums[..., :channels - offset] += values[..., offset:]
        else:
            sums[..., -offset:] += values[..., :channels + offset]
    return sums


def local_response_norm(x: np.ndarray, size: int, alpha: float, beta: float,
                        k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, base, divisor) of F.local_response_norm over the channels (last axis): base = k + alpha·avg,
    avg the mean of x² over the ``size`` channels c − size//2 .. c + (size−1)//2 with zero padding (the pool's
    divisor is always ``size``), divisor = base**beta, y = x/divisor."""
    kind = x.dtype.type
    base = channel_window_sums(np.square(x), size // 2, (size - 1) // 2)
    base /= kind(size)
    base *= kind(alpha)
    base += kind(k)
    divisor = base ** kind(beta)
    return x / divisor, base, divisor


def local_response_norm_backward(x: np.ndarray, grad: np.ndarray, size: int, alpha: float, beta: float,
                                 base: np.ndarray, divisor: np.ndarray) -> np.ndarray:
    """dL/dx of `local_response_norm` as torch's autograd chains it: g/divisor, plus through the divisor
    (−g·x/divisor², then pow: ·beta·base**(beta−1), 0 when beta is 0 as torch's pow_backward masks it; ·alpha;
    the average pool's 1/size spread back over each window; d(x·x) = 2x)."""
    kind = x.dtype.type
    result = grad / divisor
    if beta == 0:
        return result
    through = -grad * x / (divisor * divisor)
    through *= kind(beta) * base ** kind(beta - 1)
    through *= kind(alpha)
    through /= kind(size)
    spread = channel_window_sums(through, (size - 1) // 2, size // 2)
    spread *= 2 * x
    result += spread
    return result


__all__ = ["channel_window_sums", "local_response_norm", "local_response_norm_backward", "standardize",
           "standardize_backward"]
