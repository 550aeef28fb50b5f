"""Where the receptive-field proof looks and what it reads off the measured hulls (`convcalc.proof.verify`): the run
of consecutive units per axis (`_choose_run`, as interior as the field allows) and the field's size, smallest
size, stride and padding measured on that run's hulls (`_measure_axis`)."""

from __future__ import annotations

from fractions import Fraction
from itertools import islice
from typing import Iterator, Optional, Sequence

import numpy as np

from ..algebra import AxisField
from ..algebra.dense import field_arrays

Number = Optional[int | Fraction]


# --------------------------------------------------------------------------- measuring

def _interior(axis: AxisField, u: int, length: int) -> bool:
    region = axis.region(u)
    return region is not None and region[0] >= 0 and region[1] <= length - 1


SHORT = 256        # units of an axis whose run is chosen in plain Python (longer: with NumPy)
FIRST_TRIES = 3    # starts nearest the middle tried alone before every unit's region is read (`_choose_run_short`)
SCAN = 10_000      # starts (and anchors) looked at from the middle of an axis outwards, at most: a long axis costs this


def _nearest_first(m: int, twice_centre: int) -> Iterator[int]:
    """0..m-1 in the order of sorted(range(m), key=lambda s: (abs(2*s - twice_centre), s)), lazily."""
    left = min(twice_centre // 2, m - 1)
    right = max(twice_centre // 2 + 1, 0)
    while left >= 0 or right < m:
        if left >= 0 and (right >= m or twice_centre - 2 * left <= 2 * right - twice_centre):
            yield left
            left -= 1
        else:
            yield right
            right += 1


def _choose_run(axis: AxisField, out: int, length: int, budget: int) -> list[int]:
    """q + 1 consecutive units (q the period, capped by ``budget`` and the axis), as interior as possible (among the
    `SCAN` starts nearest the middle)."""
    count = min(axis.period + 1, out, max(budget, 2))
    if out - count + 1 <= SCAN:            # every start is looked at: the tests on every unit at once
        return _choose_run_all(axis, out, length, count)

    def every(test) -> Optional[int]:
        return next((s for s in islice(_nearest_first(out - count + 1, out - count), SCAN)
                     if all(test(u) for u in range(s, s + count))), None)

    first_ok = lambda u: axis.region(u) is not None and axis.region(u)[0] >= 0
    last_ok = lambda u: axis.region(u) is not None and axis.region(u)[1] <= length - 1
    for test in (lambda u: _interior(axis, u, length), first_ok, last_ok, lambda u: axis.region(u) is not None):
        start = every(test)
        if start is not None:
            return list(range(start, start + count))
    start = next(_nearest_first(out - count + 1, out - count))
    return list(range(start, start + count))


def _choose_run_all(axis: AxisField, out: int, length: int, count: int) -> list[int]:
    """`_choose_run` where the axis has at most `SCAN` starts: per test (interior, first index inside, last index
    inside, some region) the starts whose ``count`` units all pass, the one nearest the middle first (ties: the
    lower)."""
    if out <= SHORT:
        return _choose_run_short(axis, out, length, count)
    found = field_arrays(axis, 0, out)               # every unit's region at once (None: past int64's comfort)
    if found is None:
        regions = [axis.region(u) for u in range(out)]
        found = (np.array([r[0] if r is not None else 0 for r in regions]),
                 np.array([r[1] if r is not None else 0 for r in regions]), np.array([r is not None for r in regions]))
    lows, highs, some = found
    starts = out - count + 1
    twice_centre = out - count
    for ok in (some & (lows >= 0) & (highs <= length - 1), some & (lows >= 0), some & (highs <= length - 1), some):
        passed = np.concatenate(([0], np.cumsum(ok)))
        candidates = np.flatnonzero(passed[count:count + starts] - passed[:starts] == count)
        if len(candidates):
            start = int(candidates[np.argmin(np.abs(2 * candidates - twice_centre))])
            return list(range(start, start + count))
    start = next(_nearest_first(starts, twice_centre))
    return list(range(start, start + count))


def _choose_run_short(axis: AxisField, out: int, length: int, count: int) -> list[int]:
    """`_choose_run_all` on a short axis, in plain Python (NumPy's per-call cost is most of it there). The few
    starts nearest the middle are tried first (in the order of the search below, so the same run is found): an
    interior run there needs only its own units' regions."""
    twice_centre = out - count
    interior = lambda r: r is not None and r[0] >= 0 and r[1] <= length - 1        # noqa: E731
    known: dict[int, object] = {}
    for start in islice(_nearest_first(out - count + 1, twice_centre), FIRST_TRIES):
        if all(interior(known[u] if u in known else known.setdefault(u, axis.region(u)))
               for u in range(start, start + count)):
            return list(range(start, start + count))
    regions = [known[u] if u in known else axis.region(u) for u in range(out)]
    tests = (interior, lambda r: r is not None and r[0] >= 0,
             lambda r: r is not None and r[1] <= length - 1, lambda r: r is not None)
    for test in tests:
        best, passed = None, 0
        for u, region in enumerate(regions):
            passed = passed + 1 if test(region) else 0
            if passed >= count:               # units u - count + 1 .. u all pass: the nearest the middle, else lower
                start = u - count + 1
                if best is None or abs(2 * start - twice_centre) < abs(2 * best - twice_centre):
                    best = start
        if best is not None:
            return list(range(best, best + count))
    start = next(_nearest_first(out - count + 1, twice_centre))
    return list(range(start, start + count))


def _measure_axis(axis: AxisField, run: Sequence[int], hulls: Sequence[Optional[tuple[int, int]]],
                  length: int) -> tuple[Number, ...]:
    """(size, size_min, stride, padding) measured on the run's hulls along this axis (None: not measurable)."""
    q = axis.period
    by_unit = dict(zip(run, hulls))
    regions = {u: axis.region(u) for u in run}
    size = size_min = stride = padding = None
    period = [u for u in run[:q]] if len(run) >= q else []
    # sizes from units whose whole region is read: inside the input, and not cut by a border further up (a unit
    # of an inner layer that does not exist), as the analysis's extent says (the hulls are checked against it)
    inside = lambda r: r is not None and r[0] >= 0 and r[1] <= length - 1       # noqa: E731
    if period and all(regions[u] is None or (inside(regions[u]) and axis.extent(u) == regions[u]
                                             and by_unit[u] is not None)     # (None: nothing on another axis)
                      for u in period):
        sizes = [0 if by_unit[u] is None else by_unit[u][1] - by_unit[u][0] + 1 for u in period]
        size, size_min = max(sizes), min(sizes)
    pairs = [(u, u + q) for u in run if u + q in by_unit and by_unit[u] is not None and by_unit[u + q] is not None]
    # an end measures the stride only where no border moved it: at a circular (or mirrored, or cropped) border
    # the other end's overflow can land before a region's in-bounds first index
    clean = lambda u, end, test: test(regions[u]) and by_unit[u][end] == regions[u][end]    # noqa: E731
    stride_q = axis.stride
    if pairs and axis.advance * stride_q.denominator != stride_q.numerator * q:     # (advance != stride * q, in ints)
        pairs = []          # the period was cut to the axis's length: no whole period to measure the stride on
    for end, test in ((0, lambda r: r[0] >= 0), (1, lambda r: r[1] <= length - 1)):
        usable = [(u, v) for u, v in pairs if clean(u, end, test) and clean(v, end, test)]
        if usable:
            u, v = usable[0]
            stride = _ratio(by_unit[v][end] - by_unit[u][end], q)
            break
    if size is not None and stride is not None:
        read = [u for u in period if by_unit[u] is not None]
        if read:         # the mean over the period of (centre of u's hull - u*stride):
            # padding = (size - 1)/2 - (ends/2 - stride*units)/k = ((size - 1)k - ends + 2 stride units) / 2k
            ends, units, k = sum(by_unit[u][0] + by_unit[u][1] for u in read), sum(read), len(read)
            padding = _ratio((size - 1) * k - ends + 2 * stride * units, 2 * k)
    return size, size_min, _plain(stride), _plain(padding)          # (the sizes are ints)


def _ratio(numerator: int | Fraction, denominator: int) -> int | Fraction:
    """numerator / denominator exactly: an int where it divides, else a Fraction (what `_plain` would give)."""
    if isinstance(numerator, int) and numerator % denominator == 0:
        return numerator // denominator
    return Fraction(numerator, denominator)


def _plain(value: Number) -> Number:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def _predicted(axis: AxisField) -> tuple[Number, ...]:
    return tuple(_plain(v) for v in (axis.size, axis.size_min, axis.stride, axis.padding))


def _agrees(predicted: Sequence[Number], measured: Sequence[Number]) -> bool:
    return all(m is None or m == p for p, m in zip(predicted, measured))


def _text(value: Number) -> str:
    return "—" if value is None else str(value)
