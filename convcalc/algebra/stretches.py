"""Stretches of units: sorted, disjoint, half-open intervals ``[a, b)`` (the ends may be infinite: the positions
before and past an axis), and the few operations on them the exact extents need (`FiniteAxis`): merging,
intersection, difference, the parts inside a range, the parts of two run sequences that agree, and the units
whose reads meet given stretches below. Each costs one pass over its inputs.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Iterator

from . import limits
from .runs import Region

INFINITY = float("inf")
Stretches = list[tuple[int, int]]       # sorted, disjoint half-open [a, b)


def merge(intervals: Stretches) -> Stretches:
    """Sorted, disjoint half-open intervals covering the same units (adjacent ones joined)."""
    merged: Stretches = []
    for a, b in sorted(i for i in intervals if i[0] < i[1]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    if len(merged) > limits.MAX_PHASES:
        raise limits.too_many_phases(" (stretches of units near the borders)")
    return merged


def intersect(x: Stretches, y: Stretches) -> Stretches:
    out, i, j = [], 0, 0
    while i < len(x) and j < len(y):
        a, b = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if a < b:
            out.append((a, b))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return out


def minus(x: Stretches, y: Stretches) -> Stretches:
    """The units of ``x`` not in ``y`` (both sorted and disjoint; one pass over each)."""
    out, j = [], 0
    for a, b in x:
        while j < len(y) and y[j][1] <= a:
            j += 1
        k = j
        while a < b and k < len(y) and y[k][0] < b:
            if a < y[k][0]:
                out.append((a, y[k][0]))
            a = max(a, y[k][1])
            k += 1
        if a < b:
            out.append((a, b))
    return out


def within(stretches: Stretches, starts: list[int], a: int, b: int) -> Stretches:
    """The parts of sorted disjoint ``stretches`` (``starts``: their first units) inside a..b-1."""
    index = max(bisect_right(starts, a) - 1, 0)
    out = []
    while index < len(stretches) and stretches[index][0] < b:
        lo, hi = max(stretches[index][0], a), min(stretches[index][1], b)
        if lo < hi:
            out.append((lo, hi))
        index += 1
    return out


def merge_void(stretches: list) -> list:
    """Half-open stretches (possibly infinite) merged where they touch."""
    merged: list = []
    for a, b in sorted(s for s in stretches if s[0] < s[1]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def agreeing(first: Iterator[tuple[int, int, Region]], second: Iterator[tuple[int, int, Region]]
             ) -> Iterator[tuple[int, int, Region]]:
    """The parts of two run sequences over the same units where they hold the same region."""
    x, y = next(first, None), next(second, None)
    while x is not None and y is not None:
        lo, hi = max(x[0], y[0]), min(x[1], y[1])
        if lo < hi and x[2] == y[2]:
            yield lo, hi, x[2]
        if x[1] <= y[1]:
            x = next(first, None)
        else:
            y = next(second, None)


def units_meeting(reads: Any, n: int, stretches: list, inside: bool) -> Stretches:
    """The units 0..n-1 of a layer reading by ``reads`` whose taps' span meets (``inside``: lies within) one of
    ``stretches`` of the layer below (half-open, may be infinite), as intervals: per run of taps, a range of copies
    m (`FiniteAxis`'s border stretches)."""
    period, advance = reads.period, reads.advance
    copies = -(-n // period)
    found: Stretches = []
    limits.check_work(reads.taps.count * len(stretches), "the stretches of units near the borders")
    for r0, r1, tap in reads.taps.runs(0, min(period, n)):
        if tap is None:
            continue
        start, step, count = tap
        lo, hi = start, start + (count - 1) * step
        for x, y in stretches:
            if advance == 0:
                hit = (x <= lo and hi <= y - 1) if inside else (lo <= y - 1 and hi >= x)
                m_lo, m_hi = (0, copies - 1) if hit else (1, 0)
            elif inside:                            # x <= m*advance + lo and m*advance + hi <= y - 1
                m_lo = 0 if x == -INFINITY else max(0, -((lo - x) // advance))
                m_hi = copies - 1 if y == INFINITY else min(copies - 1, (y - 1 - hi) // advance)
            else:                                   # m*advance + lo <= y - 1 and m*advance + hi >= x
                m_lo = 0 if x == -INFINITY else max(0, -((hi - x) // advance))
                m_hi = copies - 1 if y == INFINITY else min(copies - 1, (y - 1 - lo) // advance)
            if m_lo > m_hi:
                continue
            if r0 == 0 and r1 == period:
                found.append((m_lo * period, min((m_hi + 1) * period, n)))
                continue
            if m_hi - m_lo + 1 > limits.MAX_PHASES:
                raise limits.too_many_phases(" (stretches of units near the borders)")
            found += [(m * period + r0, min(m * period + r1, n)) for m in range(m_lo, m_hi + 1)]
        if len(found) > 4 * limits.MAX_PHASES:
            found = merge(found)
    return found
