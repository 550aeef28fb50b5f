"""What a resampling layer's units read along one axis (`resample_reads`, for `Upsample`'s receptive field), in time
proportional to the runs of its index map, never to the output's length or to the digits of its scale factor.

* The coordinate scale ``c`` is the decimal the scale factor was written as (2.1 -> 10/21) while its denominator
  (the period of the exact rule) is at most `limits.MAX_SCALE_DENOMINATOR`; beyond (``0.3333333333333333``,
  ONNX's float32 ``0.6000000238418579``, ``1.5000001``: periods of 10^7 to 10^16) it is the simplest fraction whose
  exact rule reads what the real units really read (`fitted_scale`): the period is then what the index map really
  has (x3 for 0.333..., where PyTorch's float scale is exactly 3).
* What the real units really read (`real_runs`, the map as runs: with NumPy in chunks up to `DENSE` units, by
  bisection of the monotone map beyond, so a x10^9 upsampling of 30 pixels is a few dozen runs): for 'nearest' the
  pixel ATen's float32 kernels read (`ResampleAxis.nearest_indices`); for the linear modes the pixels the
  executor's weights reach (`ResampleAxis.linear_taps`: a weight below `RESIDUE` is float rounding of an exact 0,
  as the executor's dependency masks take it).
* 'nearest' reads as the real units do, and past the output the exact rule; the linear modes read by the exact
  rule (see ``resample_axis.py``), or, where no simple scale gives the real units' pixels, as the real units do.
* 'bicubic' (`cubic_reads`) reads four taps floor(x)-1 .. floor(x)+2 (one on a pixel) by the exact rule, or, for
  a factor whose decimal has a period past the budget, as the real units do (`cubic_keys`) and past the output by
  the exact rule. ('area' reads adaptive bins: `Reads.bins`.)
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor
from typing import Callable, Optional

from .._numpy import np

from ..algebra import Reads, limits
from ..algebra.runs import RunBuilder

DENSE = 2 ** 24            # maps up to this many units (float32 holds each index exactly) are computed with NumPy,
CHUNK = 2 ** 20            # this many units at a time; longer ones by bisection of the (monotone) map
RESIDUE = 1e-9             # linear-resampling weights below this are float rounding of an exact 0
SPAN = 2 ** 20             # a longer map whose keys span at most this many values is cut into runs for all at once

Runs = list[tuple[int, int, int]]      # (first unit, end, key): key = the source index (nearest), or 2*lo + (hi - lo)
                                       # for the in-range pixels lo..hi a linear unit reads


def simplest_between(lo: Fraction, hi: Optional[Fraction], lo_in: bool, hi_in: bool) -> Fraction:
    """The fraction with the smallest denominator between ``lo`` >= 0 and ``hi`` (None: unbounded), each end
    included or not (continued fractions: an integer if one lies in between, else fl + 1/y for the simplest y
    between the reciprocals of the fractional parts)."""
    whole = floor(lo)
    candidate = whole if lo_in and lo == whole else whole + 1
    if hi is None or candidate < hi or (candidate == hi and hi_in):
        return Fraction(candidate)
    inner = simplest_between(1 / (hi - whole), None if lo == whole else 1 / (lo - whole), hi_in, lo_in)
    return whole + 1 / inner


# --------------------------------------------------------------------------- the real units' reads

def source_indices(axis, u: np.ndarray) -> np.ndarray:
    """ATen's nearest source indices of the outputs ``u`` (as `ResampleAxis.nearest_indices`, for any units)."""
    if axis.shortcut:
        return u * axis.i // axis.o
    if axis.factor is not None:
        scale = np.float32(1.0 / axis.factor)
    else:
        scale = np.float32(axis.i) / np.float32(axis.o)
    if axis.mode == "nearest":
        src = np.floor(u.astype(np.float32) * scale)
    else:
        src = np.floor(((u + 0.5) * np.float64(scale)).astype(np.float32))
    return np.minimum(src.astype(np.int64), axis.i - 1)


def linear_keys(axis, u: np.ndarray) -> np.ndarray:
    """2*lo + (hi - lo) for the in-range pixels lo..hi each output of ``u`` reaches with a weight above
    `RESIDUE` (as `ResampleAxis.linear_taps` and the executor's dependency masks; a weight where both taps are one
    pixel counts whole)."""
    i = axis.i
    scale = 1.0 / axis.factor if axis.factor is not None else i / axis.o
    src = np.maximum(scale * (u + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), i - 1)
    i1 = i0 + (i0 < i - 1)
    lam = np.clip(src - i0, 0.0, 1.0)
    keep0 = (1 - lam) + np.where(i1 == i0, lam, 0.0) > RESIDUE
    keep1 = (lam > RESIDUE) & (i1 != i0)
    lo, hi = np.where(keep0, i0, i1), np.where(keep1, i1, i0)
    return 2 * lo + (hi - lo)


def cubic_keys(axis, u: np.ndarray) -> np.ndarray:
    """2*lo + (hi - lo) for the taps lo..hi (unclipped: i0-1 .. i0+2, or i0 alone where the other weights are below
    `RESIDUE`) each bicubic output of ``u`` reads (as `ResampleAxis.cubic_taps`)."""
    src = axis.source(u)
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), axis.i - 1)
    t = np.clip(src - i0, 0.0, 1.0)
    alone = (t <= RESIDUE) | (t >= 1 - RESIDUE)          # one tap: i0 (t = 0) or i0 + 1 (t = 1)
    lo = np.where(alone, i0 + (t >= 1 - RESIDUE), i0 - 1)
    return 2 * lo + np.where(alone, 0, 3)


def _keys(axis) -> Callable[[np.ndarray], np.ndarray]:
    if axis.cubic:
        return lambda u: cubic_keys(axis, u)
    return (lambda u: linear_keys(axis, u)) if axis.linear else (lambda u: source_indices(axis, u))


def real_runs(axis) -> Runs:
    """The real units' reads (`source_indices` or `linear_keys`) as runs: chunk by chunk with NumPy up to `DENSE`
    units, by bisection beyond (the map never decreases, so this costs its runs, whatever the length)."""
    keys: Callable[[np.ndarray], np.ndarray] = _keys(axis)
    o, runs = axis.o, []
    detail = f" (the index map of {o:,} resampled units)"
    if o <= DENSE:
        for lo in range(0, o, CHUNK):
            hi = min(lo + CHUNK, o)
            values = keys(np.arange(lo, hi, dtype=np.int64))
            cuts = np.flatnonzero(np.diff(values)) + 1
            if len(runs) + len(cuts) > limits.MAX_PHASES:
                raise limits.too_many_phases(detail)
            for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), hi - lo]):
                value = int(values[a])
                if runs and runs[-1][2] == value:
                    runs[-1] = (runs[-1][0], lo + b, value)
                else:
                    runs.append((lo + a, lo + b, value))
        return runs

    def key(unit: int) -> int:
        return int(keys(np.array([unit], dtype=np.int64))[0])

    first, last = key(0), key(o - 1)
    if last - first <= SPAN:
        return _runs_by_values(keys, o, first, last, detail)
    u = 0
    while u < o:
        value = key(u)
        lo, step = u, 1                                 # lo: the last unit known to read ``value``
        while lo + step < o and key(lo + step) == value:
            lo += step
            step *= 2
        hi = min(lo + step, o)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if key(mid) == value:
                lo = mid
            else:
                hi = mid
        runs.append((u, lo + 1, value))
        if len(runs) > limits.MAX_PHASES:
            raise limits.too_many_phases(detail)
        u = lo + 1
    return runs


def _runs_by_values(keys: Callable[[np.ndarray], np.ndarray], o: int, first: int, last: int, detail: str) -> Runs:
    """`real_runs` of a long map whose keys span few values (``first`` .. ``last``, at most `SPAN`): per value, the
    first unit whose key reaches it, by bisecting the monotone map for every value at once (NumPy, log2(o)
    rounds), so a x4000 upsampling of 100,000 pixels costs its 100,000 runs once, not a bisection each."""
    values = np.arange(first + 1, last + 1, dtype=np.int64)
    lo = np.zeros(len(values), dtype=np.int64)            # the first unit reaching values[k] lies in lo..hi
    hi = np.full(len(values), o - 1, dtype=np.int64)      # (unit o - 1 reads ``last``, so it reaches every value)
    while True:
        open_ = np.flatnonzero(lo < hi)
        if not len(open_):
            break
        mid = (lo[open_] + hi[open_]) // 2
        reached = keys(mid) >= values[open_]
        hi[open_[reached]] = mid[reached]
        lo[open_[~reached]] = mid[~reached] + 1
    starts = np.unique(np.concatenate([np.zeros(1, dtype=np.int64), lo]))   # where the key changes
    if len(starts) > limits.MAX_PHASES:
        raise limits.too_many_phases(detail)
    return [(a, b, key) for a, b, key in zip(starts.tolist(), [*starts[1:].tolist(), o], keys(starts).tolist())]


# --------------------------------------------------------------------------- the scale that reads alike

def fitted_scale(axis, decimal: Fraction) -> Optional[Fraction]:
    """The simplest coordinate scale whose exact rule reads on every real unit what `real_runs` says it reads
    (None: none does; the reads then come from the real units' table). Each run bounds c: 'nearest'
    j <= (u + h)*c < j + 1 (the last run, which the clamp at i - 1 may hold, from below only); linear, with
    x = c*(u + 1/2) - 1/2: two pixels j, j + 1 need j < x < j + 1, one pixel j inside needs x = j (a pinned c),
    pixel 0 alone x <= 0, pixel i - 1 alone i - 1 <= x < i."""
    runs = real_runs(axis)
    lower, lower_in, upper, upper_in, pinned = Fraction(0), True, None, False, set()

    def below(value: Fraction, included: bool) -> None:
        nonlocal upper, upper_in
        if upper is None or value < upper or (value == upper and not included):
            upper, upper_in = value, included

    def above(value: Fraction, included: bool) -> None:
        nonlocal lower, lower_in
        if value > lower or (value == lower and not included):
            lower, lower_in = value, included

    last = axis.i - 1
    for index, (a, b, key) in enumerate(runs):
        if not axis.linear:
            half = Fraction(1, 2) if axis.mode == "nearest-exact" else Fraction(0)
            if a + half > 0:
                above(key / (a + half), True)
            if not (index == len(runs) - 1 and key == last) and b - 1 + half > 0:
                below((key + 1) / (b - 1 + half), False)
            continue
        lo, hi = key // 2, key // 2 + key % 2
        if hi > lo:
            above(Fraction(2 * lo + 1, 2 * a + 1), False)
            below(Fraction(2 * lo + 3, 2 * b - 1), False)
        elif 0 < lo < last:
            pinned |= {Fraction(2 * lo + 1, 2 * u + 1) for u in (a, b - 1)}
        else:
            if lo == 0:
                below(Fraction(1, 2 * b - 1) if last > 0 else Fraction(3, 2 * b - 1), last > 0)
            if lo == last and last > 0:
                above(Fraction(2 * last + 1, 2 * a + 1), True)
                below(Fraction(2 * last + 3, 2 * b - 1), False)
    if pinned:
        c = pinned.pop() if len(pinned) == 1 else None
        return c if c is not None and _between(c, lower, lower_in, upper, upper_in) else None
    if upper is None:
        return decimal.limit_denominator(limits.MAX_SCALE_DENOMINATOR)
    if lower == 0:
        lower, lower_in = upper / 2, True
    if lower > upper or (lower == upper and not (lower_in and upper_in)):
        return None
    return simplest_between(lower, upper, lower_in, upper_in)


def _between(c: Fraction, lower: Fraction, lower_in: bool, upper: Optional[Fraction], upper_in: bool) -> bool:
    return (c > lower or (lower_in and c == lower)) and (upper is None or c < upper or (upper_in and c == upper))


def _rule_keys(axis, u: np.ndarray, c: Fraction) -> np.ndarray:
    """What the exact rule with scale c reads on the units ``u``, as `real_runs`' keys (int64 arithmetic)."""
    p, q = c.numerator, c.denominator
    if axis.linear:
        top = p * (2 * u + 1) - q                        # x = top / 2q
        first = top // (2 * q)
        on = top % (2 * q) == 0
        lo = np.clip(first, 0, axis.i - 1)
        hi = np.clip(first + np.where(on, 0, 1), 0, axis.i - 1)
        return 2 * lo + (hi - lo)
    if axis.mode == "nearest-exact":
        return (2 * u + 1) * p // (2 * q)
    return u * p // q


def rule_matches(axis, c: Fraction) -> bool:
    """Whether the exact rule with scale c reads on every real unit what the unit really reads (chunk by chunk up
    to `DENSE` units, by runs beyond)."""
    p, q = c.numerator, c.denominator
    if axis.o <= DENSE and (2 * axis.o + 1) * max(p, q) < 2 ** 62:
        keys = _keys(axis)
        for lo in range(0, axis.o, CHUNK):
            u = np.arange(lo, min(lo + CHUNK, axis.o), dtype=np.int64)
            if not np.array_equal(_rule_keys(axis, u, c), keys(u)):
                return False
        return True
    for a, b, key in real_runs(axis):               # the rule never decreases: equal at both ends, equal between
        ends = np.array([a, b - 1], dtype=object)
        if any(int(k) != key for k in _rule_keys(axis, ends, c)):
            return False
    return True


# --------------------------------------------------------------------------- the reads

def _tap(axis, key: int) -> tuple[int, int, int]:
    if not axis.linear:
        return key, 1, 1
    return key // 2, 1, 1 + key % 2


def _cubic_tap(x: Fraction) -> tuple[int, int, int]:
    """Cubic taps at sample x: floor(x)-1 .. floor(x)+2, or x alone on a pixel (the other weights are 0)."""
    start = floor(x)
    return (start, 1, 1) if x == start else (start - 1, 1, 4)


def cubic_sampled(scale: Fraction, offset: Fraction, lo: int, hi: int,
                  builder: Optional[RunBuilder] = None) -> RunBuilder:
    """The cubic taps of phases lo..hi-1 sampling at x = scale*rho + offset, appended run by run (as
    `Reads.sampled`: O(runs), the pixels crossed or the phases, whichever is fewer)."""
    builder = builder or RunBuilder()
    if hi <= lo:
        return builder
    if scale == 0:
        builder.add(hi - lo, _cubic_tap(offset))
    elif scale < 1:                                      # runs of phases whose sample lies in one pixel
        rho, pixel = lo, floor(scale * lo + offset)
        while rho < hi:
            after = min(hi, ceil((pixel + 1 - offset) / scale))
            if (pixel - offset) / scale == rho:          # this phase samples the pixel itself
                builder.add(1, (pixel, 1, 1))
                rho += 1
            builder.add(after - rho, (pixel - 1, 1, 4))
            rho, pixel = after, pixel + 1
    else:
        for rho in range(lo, hi):
            builder.add(1, _cubic_tap(scale * rho + offset))
    return builder


def cubic_reads(axis) -> Reads:
    """The reads of one bicubic axis (`ResampleAxis.reads`): the exact rule with period q (c = p/q); for a scale
    factor whose decimal has a longer period, the real units' taps (`cubic_keys`) and the exact rule past them."""
    c, how = axis.scale_and_fit()
    offset = Fraction(0) if axis.align_corners else (c - 1) / 2
    p, q = c.numerator, c.denominator
    detail = f" (the index map of {axis.o:,} resampled units)"
    if how == "exact":
        return Reads(q, p, cubic_sampled(c, offset, 0, q, RunBuilder(detail=detail)).table())
    repeats = -(-axis.o // q)
    builder = RunBuilder(detail=detail)
    for a, b, key in real_runs(axis):
        span = 3 if key % 2 else 0
        builder.add(b - a, ((key - span) // 2, 1, span + 1))
    cubic_sampled(c, offset, axis.o, q * repeats, builder)
    return Reads(q * repeats, p * repeats, builder.table())


def resample_reads(axis) -> Reads:
    """The reads of one resampled axis (`ResampleAxis.reads` documents the rule)."""
    if axis.o == axis.i and (axis.linear or axis.shortcut):
        return Reads.identity()                          # ATen copies the axis
    c, how = axis.scale_and_fit()
    half = Fraction(1, 2) if axis.mode == "nearest-exact" else Fraction(0)
    offset = (Fraction(0) if axis.align_corners else (c - 1) / 2) if axis.linear else c * half
    p, q = c.numerator, c.denominator

    def compact() -> Reads:
        return Reads(q, p, Reads.sampled(c, offset, axis.linear, 0, q).table())

    if axis.shortcut or (axis.linear and how == "exact"):
        return compact()
    repeats = -(-axis.o // q)
    period = q * repeats
    past = period - axis.o                               # phases past the output: the exact rule
    # 'nearest' with its own scale: a short table (at most i runs over the real units) as it always was (its
    # period q*ceil(o/q) is cut to the axis when q does not divide o); else the exact rule with period q where it
    # reads as every real unit does, and the real units' table where it does not
    small = how == "exact" and min(axis.o, axis.i) + min(past, c * past + 2) <= limits.MAX_PHASES // 2
    if how != "table" and not small and rule_matches(axis, c):
        return compact()
    builder = RunBuilder(detail=f" (the index map of {axis.o:,} resampled units)")
    for a, b, key in real_runs(axis):
        builder.add(b - a, _tap(axis, key))
    Reads.sampled(c, offset, axis.linear, axis.o, period, builder)
    return Reads(period, p * repeats, builder.table())


__all__ = ["DENSE", "RESIDUE", "cubic_keys", "cubic_reads", "cubic_sampled", "fitted_scale", "linear_keys",
           "real_runs", "resample_reads", "rule_matches", "simplest_between", "source_indices"]
