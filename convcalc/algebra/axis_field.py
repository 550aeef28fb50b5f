"""One axis of a receptive field: `AxisField`, the periodic, monotone regions of one layer's units along one axis (unit
``m*period + rho`` sees ``table[rho]`` shifted by ``m*advance``; the table holds runs of phases that see one region),
its summary numbers (size, stride, Araujo's padding, centre: over the interior units' pattern, never a border
unit's region; see the ``convcalc.algebra`` docstring), its composition with a layer's `Reads` (shortened to their
own period first: `shortest_reads`), and the helpers that build one from a table of regions (shortened to the
smallest period that repeats) or from the per-unit union hull of fields meeting at a merge. Every operation costs
runs (of the field, of the reads, of the units a sweep crosses), never the length of a period or of the axis; past
the budgets (`convcalc.algebra.limits`) a layer is refused.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field as dataclass_field, replace
from fractions import Fraction
from math import gcd
from typing import Iterator, Optional, Sequence

from . import limits
from .finite import FiniteAxis
from .reads import Reads, Region, Tap
from .periods import _arrays, _shortest, shortest_reads  # noqa: F401  (shortest_reads: where it was first defined)
from .runs import RunBuilder, Table, hull, moved, union_table

SMALL = 16               # taps of one unit looked at one by one
CHEAP = 4096             # runs of phases worked out whole, to see whether a period longer than the axis repeats sooner


class cached_property:                  # noqa: N801  (functools' name and meaning, without its lock)
    """A property computed once per instance and kept in its ``__dict__`` (which then answers every later read).
    functools.cached_property takes a lock on every first read in Python < 3.12: 0.1 s of a 10,000-layer table."""

    def __init__(self, function):
        self.function, self.name, self.__doc__ = function, function.__name__, function.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.function(instance)
        return value


def _lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


@dataclass(frozen=True)
class AxisField:
    """The regions of one layer's units along one axis (see the ``convcalc.algebra`` docstring).

    ``table[rho]`` gives unit rho's region (None: it sees nothing); unit ``m*period + rho`` sees it shifted by
    ``m*advance``. ``widest``/``narrowest``: the fields along the single paths with the largest and smallest
    reach (None: this field itself, no merge on the way).
    """

    period: int
    advance: int
    table: Table
    stride: Fraction
    widest: Optional["AxisField"] = dataclass_field(default=None, compare=False, repr=False)
    narrowest: Optional["AxisField"] = dataclass_field(default=None, compare=False, repr=False)
    finite: Optional[FiniteAxis] = dataclass_field(default=None, compare=False, repr=False)
    # The table is not a period of a periodic pattern but the axis's own units 0..period-1 (the period was longer
    # than the axis and was cut to it, or the units follow no period: a merge of different strides, a spatial
    # concatenation, or a layer reading such a field): past the axis it is extended approximately, so its units
    # near the borders, which read that extension, are no part of any pattern.
    cut: bool = dataclass_field(default=False, compare=False, repr=False)
    # The finite axis whose border stretches (`FiniteAxis.gaps`) mark the units a cut table's summary leaves out
    # (None: ``finite``; a single path's field takes its layer's).
    borders: Optional[FiniteAxis] = dataclass_field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.finite is not None and self.finite.field is None:
            # away from the borders the exact extents are these regions: the finite axis reads them from a copy
            # without the links back to it (``finite``, ``borders``, the paths'), so no reference cycle keeps a
            # network's fields alive for the cycle collector to find
            periodic = object.__new__(AxisField)
            periodic.__dict__.update(self.__dict__, finite=None, borders=None, widest=None, narrowest=None)
            self.finite.field = periodic

    @staticmethod
    def identity() -> "AxisField":
        return AxisField(1, 1, Table.filled(1, (0, 0)), Fraction(1))

    @staticmethod
    def even(size: int, stride: int, padding: int) -> "AxisField":
        """Araujo's field: unit u sees [u*S - P, u*S - P + r - 1] (r = 0: nothing)."""
        region = None if size <= 0 else (-padding, size - 1 - padding)
        return AxisField(1, stride, Table.filled(1, region), Fraction(stride))

    @property
    def first(self) -> tuple[Optional[int], ...]:
        """Each phase's first index (for small periods)."""
        return tuple(None if r is None else r[0] for r in self.table)

    @property
    def last(self) -> tuple[Optional[int], ...]:
        return tuple(None if r is None else r[1] for r in self.table)

    # ---- regions
    def region(self, unit: int) -> Region:
        """The network-input indices [first, last] unit ``unit`` depends on (unclipped), or None."""
        m, rho = divmod(unit, self.period)
        table = self.table
        if rho >= table.size:
            raise IndexError(rho)
        region = table.values[bisect_right(table.starts, rho) - 1]
        if region is None or not m or not self.advance:
            return region
        shift = m * self.advance
        return region[0] + shift, region[1] + shift

    def regions(self) -> list[Region]:
        """One period of regions (units 0 .. period-1)."""
        return [self.region(rho) for rho in range(self.period)]

    def span(self, a: int, b: int) -> Region:
        """The hull of the regions of units a..b (inclusive), in O(log runs)."""
        if a > b:
            return None
        period, advance = self.period, self.advance
        ma, ra = divmod(a, period)
        mb, rb = divmod(b, period)
        if ma == mb:
            return moved(self.table.hull(ra, rb), ma * advance)
        parts = [moved(self.table.hull(ra, period - 1), ma * advance), moved(self.table.hull(0, rb), mb * advance)]
        if mb - ma > 1:
            whole = self.table.hull(0, period - 1)
            parts += [moved(whole, (ma + 1) * advance), moved(whole, (mb - 1) * advance)]
        return hull(parts)

    def hull_over(self, start: int, step: int, count: int) -> Region:
        """The hull of the regions of units start + j*step, j < count: a range hull for contiguous units, else the
        first and the last cycle of phases (in between, the same phases moved by whole advances)."""
        if count <= SMALL:                      # (the hull of their regions, inline)
            region, lo, hi = self.region, None, None
            for j in range(count):
                found = region(start + j * step)
                if found is not None:
                    if lo is None:
                        lo, hi = found
                    else:
                        if found[0] < lo:
                            lo = found[0]
                        if found[1] > hi:
                            hi = found[1]
            return None if lo is None else (lo, hi)
        if step == 1:
            return self.span(start, start + count - 1)
        cycle = self.period // gcd(step, self.period)
        if count > 2 * cycle:
            limits.check_work(2 * cycle, "a dilated window over a long period")
            return hull([*(self.region(start + j * step) for j in range(cycle)),
                         *(self.region(start + j * step) for j in range(count - cycle, count))])
        limits.check_work(count, "a dilated window")
        return hull(self.region(start + j * step) for j in range(count))

    def has_none(self, a: int, b: int) -> bool:
        """Whether some unit in a..b (inclusive) sees nothing."""
        if b - a + 1 >= self.period:
            return self.table.has_none()
        ra, rb = a % self.period, b % self.period
        if ra <= rb:
            return self.table.has_none(ra, rb + 1)
        return self.table.has_none(ra) or self.table.has_none(0, rb + 1)

    def unit_runs(self, lo: int, hi: int) -> Iterator[tuple[int, int, Region]]:
        """(first, end, region) for the units lo..hi-1, run by run (a field whose one run repeats unchanged:
        one run)."""
        period, advance = self.period, self.advance
        if self.table.count == 1 and (advance == 0 or self.table.values[0] is None):
            if lo < hi:
                yield lo, hi, self.table.values[0]
            return
        m = lo // period
        while m * period < hi:
            base = m * period
            for a, b, value in self.table.runs(max(lo - base, 0), hi - base):
                yield a + base, b + base, moved(value, m * advance)
            m += 1

    def extent(self, unit: int) -> Region:
        """The first and last input index unit ``unit`` of the actual network depends on along this axis
        (borders, padding modes and every layer's length included), or None; needs the input length (a field
        from `Field.identity` with ``lengths``, as the analyzer builds)."""
        if self.finite is None:
            raise ValueError("no input length: build the field with Field.identity(dims, lengths)")
        return self.finite.region(unit)

    # ---- summary numbers: the interior units' pattern
    @cached_property
    def _summary_runs(self) -> tuple[tuple[int, int, Region], ...]:
        """(first, end, region) runs of the units the summary numbers describe: one period of the table, the periodic
        pattern of the unclipped extension (every ``period`` consecutive interior units show it); for a cut table
        (`cut`: no period on the axis), the axis's units whose region is what they read in the actual network
        (`FiniteAxis.exact_runs`; a single path's field: the units outside its layer's border stretches), when
        there are any and they cost no more runs than the budget; else the table."""
        axis = self.finite or self.borders
        if self.cut and axis is not None and axis.field is not None:
            work = (axis.length // self.period + 2 + len(axis.gaps)) * self.table.count + axis.cost
            if work <= limits.MAX_PHASES:
                runs = tuple(axis.exact_runs(self, compare=self.finite is not None))
                if runs:
                    return runs
        return tuple(self.table.runs())

    @cached_property
    def _sizes(self) -> tuple[int, int]:
        sizes = [0 if r is None else r[1] - r[0] + 1 for _, _, r in self._summary_runs]
        return max(sizes), min(sizes)

    @cached_property
    def size(self) -> Fraction:
        """The largest region over the interior pattern (`_summary_runs`; an integer, as a Fraction like the other
        numbers)."""
        return Fraction(self._sizes[0])

    @cached_property
    def size_min(self) -> Fraction:
        """The smallest region over the interior pattern (0 when some unit of it sees nothing)."""
        return Fraction(self._sizes[1])

    @property
    def even_spacing(self) -> bool:
        """Whether every unit of the interior pattern sees a window of one size, moving by ``stride`` from unit to
        unit."""
        return self.size == self.size_min and self.centre_spread() == 0

    @cached_property
    def centre(self) -> Fraction:
        """Mean over the interior pattern's units that see something (one period, or a cut table's interior units)
        of (centre of unit u's region - u*stride): the centre of unit 0's window."""
        runs = self._summary_runs
        if len(runs) == 1 and runs[0][0] == 0 and runs[0][1] == 1 and runs[0][2] is not None:
            return Fraction(runs[0][2][0] + runs[0][2][1], 2)     # one unit (unit 0): its region's centre
        ends, units, count = 0, 0, 0               # in integers: sum n*(first+last) - stride * sum n*(a+b-1)
        for a, b, r in runs:
            if r is not None:
                n = b - a
                ends += n * (r[0] + r[1])
                units += (a + b - 1) * n
                count += n
        return (ends - self.stride * units) / (2 * count) if count else Fraction(0)

    def centre_spread(self) -> Fraction:
        """How far the interior pattern's region centres stray from the mean centre line u*stride + centre."""
        spread = Fraction(0)
        for a, b, r in self._summary_runs:
            if r is not None:
                mid = Fraction(r[0] + r[1], 2) - self.centre
                spread = max(spread, abs(mid - a * self.stride), abs(mid - (b - 1) * self.stride))
        return spread

    @cached_property
    def padding(self) -> Fraction:
        """P = (size - 1)/2 - centre: Araujo's effective padding for even fields."""
        runs = self._summary_runs
        if len(runs) == 1 and runs[0][0] == 0 and runs[0][1] == 1 and runs[0][2] is not None:
            return Fraction(-runs[0][2][0])     # one unit (a conv chain's period): (last - first)/2 - (first + last)/2
        return Fraction(self._sizes[0] - 1, 2) - self.centre

    @property
    def whole(self) -> bool:
        """Every unit sees the same region (stride 0: softmax along the axis, broadcasting)."""
        return self.stride == 0

    @property
    def path_size_max(self) -> Fraction:
        """The largest field along one path (equal to ``size`` unless misaligned paths merged)."""
        return (self.widest or self).size

    @property
    def path_size_min(self) -> Fraction:
        """The smallest field along one path: the narrowest input chosen at each merge."""
        return (self.narrowest or self).size_min

    # ---- composition
    def _tap_hull(self, tap: Tap, shift: int) -> Region:
        if tap is None:
            return None
        start, step, count = tap
        return self.hull_over(shift + start, step, count)

    def _through(self, reads: Reads, length: int) -> "AxisField":
        """The field through ``reads`` (shortened to their own period, `shortest_reads`): its period is the least
        multiple of the reads' period that moves this field by whole periods. A period longer than the axis
        (``length`` units) is cut to it (`cut`) unless the whole period is cheap and repeats within the axis."""
        if self.period == 1 and reads.period == 1 and reads.taps.count == 1:     # one unit through one window
            tap = reads.taps.values[0]
            limits.check_work(1 if tap is None else min(tap[2], SMALL), "the taps of every phase")
            return AxisField(1, reads.advance * self.advance, Table.filled(1, self._tap_hull(tap, 0)),
                             self.stride if reads.advance == 1 else self.stride * reads.advance, cut=self.cut)
        n = self.period // gcd(reads.advance, self.period)
        period = n * reads.period
        advance = n * reads.advance // self.period * self.advance
        stride = self.stride if reads.advance == reads.period else self.stride * Fraction(reads.advance, reads.period)
        runs = list(reads.taps.runs(0, min(reads.period, period)))
        cut, units = self.cut, max(length, 1)
        if period > units:
            if -(-period // reads.period) * len(runs) <= CHEAP:
                whole = _from_table(period, advance, self._table(reads, runs, period), stride, cut)
                if whole.period <= units:                # the shortest period fits the axis: nothing to cut
                    return whole
            period, advance, cut = units, round(stride * units), True
        return _from_table(period, advance, self._table(reads, runs, period), stride, cut)

    def _table(self, reads: Reads, runs: list, period: int) -> Table:
        """The regions of units 0..period-1 through ``reads`` (``runs``: the reads' runs of taps)."""
        builder = RunBuilder(detail=f" (it repeats every {period:,} units)")
        copies = -(-period // reads.period)
        cost = max((1 if t is None else min(t[2], SMALL) for _, _, t in runs), default=1)
        if copies * len(runs) <= limits.MAX_PHASES:
            limits.check_work(copies * len(runs) * cost, "the taps of every phase")
            columns = self._hulls_numpy(reads, runs, copies) if copies * len(runs) > 2048 else None
            for m in range(copies):
                base = m * reads.period
                for index, (r0, r1, tap) in enumerate(runs):
                    if base + r0 >= period:
                        break
                    value = columns[index][m] if columns is not None else self._tap_hull(tap, m * reads.advance)
                    builder.add(min(r1, period - base) - r0, value)
        else:
            self._sweep(reads, runs, copies, period, builder)
        return builder.table()

    def _hulls_numpy(self, reads: Reads, runs: list, copies: int) -> Optional[list[list[Region]]]:
        """`_tap_hull` of every run of taps for the copies 0..copies-1, with NumPy: per tap, the region of the unit
        it reads for every run and copy at once, folded into running minima and maxima (None: a long contiguous
        read, or numbers past int64, which the one-by-one path takes)."""
        import numpy as np
        arrays = _arrays(self.table, always=True)
        if arrays is None or any(t is not None and t[2] > SMALL for _, _, t in runs):
            return None
        starts, none, first, last = arrays
        columns: list[list[Region]] = [[None] * copies for _ in runs]
        live = [index for index, (_, _, tap) in enumerate(runs) if tap is not None]
        if not live:
            return columns
        start, step, count = (np.array([runs[i][2][k] for i in live], dtype=np.int64)[:, None] for k in range(3))
        base = np.arange(copies, dtype=np.int64)[None, :] * reads.advance + start     # (live runs, copies)
        low = np.full(base.shape, np.iinfo(np.int64).max)
        high = np.full(base.shape, np.iinfo(np.int64).min)
        for j in range(int(count.max())):
            q, phase = np.divmod(base + j * step, self.period)
            index = np.searchsorted(starts, phase, side="right") - 1
            seen = ~none[index] & (j < count)
            low = np.where(seen, np.minimum(low, first[index] + q * self.advance), low)
            high = np.where(seen, np.maximum(high, last[index] + q * self.advance), high)
        flat = [None if e else (a, b) for e, a, b in zip((low > high).ravel().tolist(), low.ravel().tolist(),
                                                         high.ravel().tolist())]
        for row, index in enumerate(live):
            columns[index] = flat[row * copies:(row + 1) * copies]
        return columns

    def _sweep(self, reads: Reads, runs: list, copies: int, period: int, builder: RunBuilder) -> None:
        """The regions of copies 0..copies-1 of the reads' period when there are too many to visit one by one:
        a copy's regions change only where one of its taps crosses the start of a run of this field, so only
        those copies are visited and the copies between repeat them."""
        advance, own, starts = reads.advance, self.period, self.table.starts
        ends: set[int] = set()
        for _, _, tap in runs:
            if tap is not None:
                start, step, count = tap
                if step == 1 and count > SMALL:
                    ends |= {start, start + count - 1}
                else:
                    limits.check_work(count, "the taps of a dilated window")
                    ends |= {start + j * step for j in range(count)}
        travel = (copies - 1) * advance
        crossings = len(ends) * (travel // own + 2) * len(starts)
        if crossings > limits.MAX_PHASES:
            raise limits.too_many_phases(f" (it repeats every {period:,} units)")
        cuts = {0, copies}
        for end in ends:                                  # copy m's tap at m*advance + end enters a run at x
            for q in range(end // own, (end + travel) // own + 1):
                for b in starts:
                    x = q * own + b
                    if end < x <= end + travel:
                        cuts.add(-((end - x) // advance))
        cuts = sorted(c for c in cuts if 0 <= c <= copies)
        whole = len(runs) == 1 and runs[0][0] == 0 and runs[0][1] == reads.period
        for m0, m1 in zip(cuts, cuts[1:]):
            values = [self._tap_hull(tap, m0 * advance) for _, _, tap in runs]
            if whole or len(set(values)) == 1:
                lo, hi = m0 * reads.period, min(m1 * reads.period, period)
                builder.add(hi - lo, values[0])
                continue
            for m in range(m0, m1):
                base = m * reads.period
                for (r0, r1, _), value in zip(runs, values):
                    if base + r0 >= period:
                        break
                    builder.add(min(r1, period - base) - r0, value)

    def _copied(self, length: int) -> Optional["AxisField"]:
        """`_through` of reads that copy each unit (`_copies`: a 1x1 conv's, an elementwise layer's), without
        working the regions out again: unit v reads unit v, so the field has this one's period, advance, table and
        stride, and `_through` would build the same table phase by phase and find the same shortest period. None
        where that does not hold as plainly: a period longer than the axis (`_through` cuts it), more than
        `limits.MAX_PHASES` phases, or a table that is not in its canonical runs (equal neighbours). The work
        `_through` would count against the budget is counted all the same."""
        period, table = self.period, self.table
        if period > max(length, 1) or period > limits.MAX_PHASES or table.size != period:
            return None
        values = table.values
        if any(values[i] == values[i + 1] for i in range(len(values) - 1)):
            return None
        limits.check_work(period, "the taps of every phase")
        return _from_table(period, self.advance, table, self.stride, self.cut)

    def through(self, reads: Reads, length: int) -> "AxisField":
        """The field of a layer reading this one with ``reads``; ``length``: the layer's output length."""
        reads = shortest_reads(reads)
        copies = _copies(reads)
        result = (copies and self._copied(length)) or self._through(reads, length)
        finite = None if self.finite is None else FiniteAxis(length, (self.finite,), "reads", reads)
        paths = [None if path is None else (copies and path._copied(length)) or path._through(reads, length)
                 for path in (self.widest, self.narrowest)]
        if finite is not None:                           # a cut path's summary leaves out this layer's border units
            paths = [path if path is None or not path.cut else replace(path, borders=finite) for path in paths]
        return AxisField(result.period, result.advance, result.table, result.stride, *paths, finite, result.cut)

    def broadcast(self, length: int) -> "AxisField":
        """A length-1 axis spread over ``length`` units: every unit sees unit 0's region (stride 0)."""
        single = AxisField(1, 0, Table.filled(1, self.region(0)), Fraction(0))
        return replace(single, widest=self.widest and self.widest.broadcast(length),
                       narrowest=self.narrowest and self.narrowest.broadcast(length),
                       finite=self.finite and FiniteAxis(length, (self.finite,), "broadcast"))

    def __str__(self) -> str:
        size = str(self.size) if self.size == self.size_min else f"{self.size_min}..{self.size}"
        return f"AxisField(size={size}, stride={self.stride}, padding={self.padding}, period={self.period})"


def _copies(reads: Reads) -> bool:
    """Whether output unit v reads input unit v and nothing else (period 1, advance 1, one tap at 0)."""
    if reads.period != 1 or reads.advance != 1 or reads.taps.count != 1:
        return False
    tap = reads.taps.values[0]
    return tap is not None and tap[0] == 0 and tap[2] == 1


def _from_regions(period: int, advance: int, regions: Sequence[Region], stride: Fraction) -> AxisField:
    """`_from_table` of a period given region by region."""
    return _from_table(period, advance, Table.of(regions), stride)


def _from_table(period: int, advance: int, table: Table, stride: Fraction, cut: bool = False) -> AxisField:
    """The field with these regions, shortened to the smallest period that repeats (conv chains stay at 1);
    ``cut``: see `AxisField.cut`."""
    p = _shortest(period, advance, table)
    if p < period:
        builder = RunBuilder(limit=None)
        builder.extend(table, 0, p)
        return AxisField(p, advance * p // period, builder.table(), stride, cut=cut)
    return AxisField(period, advance, table, stride, cut=cut)


def _union(columns: Sequence[AxisField], length: int) -> AxisField:
    """The per-unit union hull of fields meeting at a merge (one axis)."""
    period = 1
    for c in columns:
        period = _lcm(period, c.period)
    advances = {c.advance * (period // c.period) for c in columns}
    stride = max(columns, key=lambda c: c.size).stride
    cut = any(c.cut for c in columns)
    if len({c.stride for c in columns}) == 1 and len(advances) == 1 and period <= max(length, 1):
        advance = advances.pop()
    else:                                               # no common period: the whole axis, cut
        period, cut = max(length, 1), True
        advance = round(stride * period)
    table = union_table([c.unit_runs(0, period) for c in columns], period)
    finite = None
    if all(c.finite is not None for c in columns):
        finite = FiniteAxis(length, [c.finite for c in columns], "union")
    return replace(_from_table(period, advance, table, stride, cut), finite=finite)
