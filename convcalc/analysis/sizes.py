"""Input sizes a network can take: for an input it cannot, the nearest sizes that work and the smallest one.

A network that halves its map k times and joins the halves back (a U-Net) takes only multiples of 2^k; one that
crops without padding takes fewer still. `working_sizes` answers by analysing candidate sizes (an analysis is
milliseconds): multiples of the network's total stride (the largest stride of any layer's receptive field,
measured at the spec's own input size) nearest the given size, then from the smallest up, within a budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

from ..errors import ConvcalcError
from ..spec.graph import Graph

MAX_TRIES = 48          # analyses one question may cost
MAX_SECONDS = 3.0


@dataclass(frozen=True)
class WorkingSizes:
    """What fits: ``stride`` per spatial axis (1: no constraint found), the working sizes nearest the one asked
    about (below first), and the smallest working size found (None: none within the budget). ``offset``: the
    candidates are ``k * stride + offset``, the offset of the spec's own size (a U-Net of valid convolutions takes
    572 = 35 * 16 + 12, not a multiple of 16)."""

    stride: tuple[int, ...]
    nearest: tuple[tuple[int, ...], ...]
    smallest: tuple[int, ...] | None
    offset: tuple[int, ...] = ()


def total_stride(graph: Graph) -> tuple[int, ...]:
    """Per spatial axis, the largest stride of any layer's receptive field at the spec's own input size (rounded
    up: an upsampled field's fractional stride counts as 1); all 1 when that size does not analyse either."""
    from .summary import analyze

    dims = len(graph.input_shape) - 1
    try:
        summary = analyze(graph)
    except (ConvcalcError, RecursionError):
        return (1,) * dims
    strides = [1] * dims
    for row in summary.layers:
        axes = getattr(row.rf, "axes", ())
        if len(axes) != dims:
            continue
        for axis, field in enumerate(axes):
            if field.stride > 0:
                strides[axis] = max(strides[axis], math.ceil(field.stride))
    return tuple(strides)


def working_sizes(graph: Graph, shape: Sequence[int]) -> WorkingSizes:
    """The working spatial sizes nearest ``shape`` ([C, *S]), multiples of the total stride tried first."""
    from .summary import analyze

    channels, spatial = shape[0], tuple(shape[1:])
    stride = total_stride(graph)
    started, tries = time.monotonic(), 0

    def works(size: tuple[int, ...]) -> bool:
        nonlocal tries
        tries += 1
        try:
            analyze(graph, (channels, *size))
            return True
        except (ConvcalcError, RecursionError):
            return False

    def budget_left() -> bool:
        return tries < MAX_TRIES and time.monotonic() - started < MAX_SECONDS

    own = tuple(graph.input_shape[1:])
    offset = tuple(n % s if len(own) == len(stride) else 0 for n, s in zip(own, stride))
    lowest = tuple(r or s for r, s in zip(offset, stride))          # the smallest positive k * s + r
    below = tuple(max(low, n - (n - r) % s) for n, s, r, low in zip(spatial, stride, offset, lowest))
    above = tuple(n - (n - r) % s + s for n, s, r in zip(spatial, stride, offset))
    nearest: list[tuple[int, ...]] = []
    for step in range(8):          # the candidates nearest below and above, then further out
        for candidate in (tuple(max(low, b - step * s) for b, s, low in zip(below, stride, lowest)),
                          tuple(a + step * s for a, s in zip(above, stride))):
            if len(nearest) < 2 and candidate != spatial and candidate not in nearest and budget_left() \
                    and works(candidate):
                nearest.append(candidate)
        if len(nearest) == 2 or not budget_left():
            break
    smallest = None
    for multiple in range(32):
        candidate = tuple(low + multiple * s for low, s in zip(lowest, stride))
        if not budget_left() or (nearest and candidate > min(nearest)):
            break
        if works(candidate):
            smallest = candidate
            break
    if smallest is None and nearest:
        smallest = min(nearest)
    return WorkingSizes(stride, tuple(sorted(nearest)), smallest, offset)


def size_text(size: Sequence[int]) -> str:
    return "x".join(map(str, size))


def sizes_hint(found: WorkingSizes) -> str:
    """'sizes that work: the nearest 64x64 and 80x80 (multiples of 16, the network's total stride), the smallest
    16x16'."""
    if not found.nearest:
        return "no size near it works"
    text = f"sizes that work: the nearest {' and '.join(size_text(s) for s in found.nearest)}"
    if any(s > 1 for s in found.stride):
        shown = str(found.stride[0]) if len(set(found.stride)) == 1 else size_text(found.stride)
        if any(found.offset):
            plus = str(found.offset[0]) if len(set(found.offset)) == 1 else size_text(found.offset)
            text += f" ({shown}k + {plus}: a multiple of the network's total stride {shown}, plus {plus})"
        else:
            text += f" (multiples of {shown}, the network's total stride)"
    if found.smallest is not None and found.smallest not in found.nearest:
        text += f", the smallest {size_text(found.smallest)}"
    return text


__all__ = ["WorkingSizes", "sizes_hint", "size_text", "total_stride", "working_sizes"]
