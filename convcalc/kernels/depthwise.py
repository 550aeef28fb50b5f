"""Depthwise convolution (groups == input channels) as a multiply-accumulate over shifted views.

Owns `conv_depthwise`: one shifted view of the padded input per kernel tap, scaled per channel (and per channel
multiplier) and accumulated, with no GEMM; PyTorch's output channel order c * M + m.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .counting import MacCounter


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
