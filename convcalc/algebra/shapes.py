"""Pure integer shape arithmetic, one axis at a time (see shared/reference/semantics.md).

Notation: ``i`` input length, ``k`` kernel, ``s`` stride, ``d`` dilation, ``lo``/``hi`` the padding
actually applied before/after the input, ``o`` output length. Nothing here knows about layers.
"""

from __future__ import annotations

from typing import Sequence

Pads = tuple[tuple[int, int], ...]


def dilated(k: int, d: int) -> int:
    """Effective kernel extent: k_eff = d*(k-1) + 1."""
    return d * (k - 1) + 1


def conv_length(i: int, k: int, s: int, d: int, lo: int, hi: int) -> int:
    """Cross-correlation output length: o = (i + lo + hi - k_eff) // s + 1 (may be < 1: caller checks)."""
    return (i + lo + hi - dilated(k, d)) // s + 1


def pool_length(i: int, k: int, s: int, d: int, lo: int, hi: int, ceil_mode: bool) -> int:
    """PyTorch pooling length (Pool.h): floor or ceil division, then drop a last window
    that would start inside the right padding."""
    numerator = i + lo + hi - dilated(k, d) + (s - 1 if ceil_mode else 0)
    o = numerator // s + 1
    if ceil_mode and (o - 1) * s >= i + lo:
        o -= 1
    return o


def same_pads(k: int, d: int) -> tuple[int, int]:
    """PyTorch padding='same' (stride 1): total d*(k-1), the odd element at the end."""
    total = d * (k - 1)
    return total // 2, total - total // 2


def full_pads(k: int, d: int) -> tuple[int, int]:
    """'full' padding (Dumoulin & Visin rel. 4; Keras 'full'): d*(k-1) on each side, o = ceil((i + k_eff - 1)/s)."""
    return d * (k - 1), d * (k - 1)


def tf_same_pads(i: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow/Keras SAME (semantics §4.1): o = ceil(i/s), total = max((o-1)*s + k_eff - i, 0),
    lo = total // 2 and the odd one at the end. Depends on i and s, unlike PyTorch's 'same'."""
    o = -(-i // s)
    total = max((o - 1) * s + dilated(k, d) - i, 0)
    return total // 2, total - total // 2


def dropped_tail(i: int, k: int, s: int, d: int, lo: int, hi: int) -> int:
    """How many trailing padded positions no window reaches: (i + lo + hi - k_eff) mod s."""
    return (i + lo + hi - dilated(k, d)) % s


def adaptive_bin(j: int, i: int, o: int) -> tuple[int, int]:
    """Adaptive pooling bin j of o over length i: [floor(j*i/o), ceil((j+1)*i/o))."""
    return (j * i) // o, -((-(j + 1) * i) // o)


def adaptive_bin_extent(i: int, o: int) -> tuple[int, int]:
    """(smallest, largest) adaptive pooling bin length over all o bins."""
    lengths = [hi - lo for lo, hi in (adaptive_bin(j, i, o) for j in range(o))]
    return min(lengths), max(lengths)


def prod(values: Sequence[int]) -> int:
    """Product of integers (1 for an empty sequence)."""
    result = 1
    for v in values:
        result *= v
    return result


def transposed_length(i: int, k: int, s: int, d: int, p: int, output_padding: int) -> int:
    """Transposed-convolution output length: o = (i-1)*s - 2p + d*(k-1) + output_padding + 1 (may be < 1)."""
    return (i - 1) * s - 2 * p + dilated(k, d) - 1 + output_padding + 1
