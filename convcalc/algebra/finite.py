"""The exact reach of every unit in the actual, finite network: `FiniteAxis`, one layer's units along one axis with
borders, padding modes and the layers' lengths included.

Away from the borders a unit's extent is its periodic region (the `AxisField`'s: every read lands on a real unit
whose extent is its region). Only the units whose reads come near a border, or near such units of the layer
below, differ: their stretches (``gaps``) are found when the layer is built, from the layer below's and the
reads' spans, at a cost in runs. Within them, ``dead`` stretches read only padding (or only dead units): they see
nothing, known without looking. The rest are worked out when first asked for, as run-length tables: units that
share their taps (an upsampling's copies, a softmax's every unit) once, others one by one; what that will cost
is bounded when the layer is built (`limits.MAX_BORDER_EXTENTS`, `limits.MAX_TAP_WORK`), so asking never fails. A
broadcast axis answers with the extent of unit 0 below. Aggregates (`reach`: the hull over all units;
`everywhere`: no unit without input) and `fill_intervals` (what fills the positions a unit reaches outside the
input) cost stretches and runs, not units; `everywhere` and `reach` are mostly proven when the layer is built, from
the taps and the layer below's flags (`live`), without working out the border stretches.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Iterator, Optional, Sequence

from . import limits
from .dense import DENSE, dense_table
from .live import surely_full, surely_live
from .reads import Reads
from .runs import RangeHull, Region, RunBuilder, Table, hull, union_table
from .stretches import (INFINITY, Stretches, agreeing, intersect, merge, merge_void, minus, units_meeting,
                         within)
from .twins import set_tables

SMALL = 16          # taps per unit evaluated one by one; longer contiguous reads go through range hulls
SHORT_GAP = 8       # border stretches of at most this many units worked out unit by unit (`_unit_by_unit`)
MEMO, MEMO_RUNS = 1024, 64      # `_KNOWN`: entries kept; the most runs of taps, and of stretches, in a key or entry
_KNOWN: dict[tuple, tuple] = {}  # FiniteAxis._key -> (gaps, dead, their starts, cost): one layer of a repeated block


def _runs_over(field: Any, a: int, b: int) -> int:
    """How many runs ``field.unit_runs(a, b)`` yields, at most."""
    table = field.table
    if table.count == 1 and (field.advance == 0 or table.values[0] is None):
        return 1
    return (-(-(b - a) // field.period) + 1) * table.count


class FiniteAxis:
    """The exact reach of every unit of one layer along one axis of the actual, finite network. ``field`` (set by
    the `AxisField` it belongs to) gives the extents away from the border stretches ``gaps``."""

    def __init__(self, length: int, parents: Sequence["FiniteAxis"], rule: str, reads: Optional[Reads] = None):
        self.length, self.parents, self.rule, self.reads = length, tuple(parents), rule, reads
        self.field: Any = None
        self.layer: Optional[str] = None               # the layer's name, once the analyzer gives it
        self._tables: Optional[list[Table]] = None
        self._pieces: Optional[tuple[list[int], list[Region], RangeHull]] = None
        self._token: Optional[int] = None               # set with the tables: equal numbers, equal axes (`twins`)
        key = self._key()
        known = _KNOWN.get(key) if key is not None else None
        if known is None:
            self.gaps, self.dead = self._find_gaps()
            self._starts = [a for a, _ in self.gaps]
            self._dead_starts = [a for a, _ in self.dead]
            self.cost = self._cost()
            if key is not None and len(self.gaps) + len(self.dead) <= MEMO_RUNS:     # small entries only
                if len(_KNOWN) >= MEMO:
                    _KNOWN.clear()
                _KNOWN[key] = (self.gaps, self.dead, self._starts, self._dead_starts, self.cost)
        else:
            self.gaps, self.dead, self._starts, self._dead_starts, self.cost = known
        if self.cost > limits.MAX_BORDER_EXTENTS:
            raise limits.too_many_border_extents(self.cost)
        self.sure = surely_live(self)                   # every unit provably sees something (`everywhere`)
        self.full = surely_full(self)                   # the units provably reach the whole input (`reach`)

    def _key(self) -> Optional[tuple]:
        """All that a reads rule's gaps, dead stretches and cost depend on (the layer below's stretches and cost, the
        shape of its field's table, the reads, the budgets), for layers that repeat one another (a deep stack of
        one block): None for other rules, or where the key would be long."""
        rule = self.rule
        if rule in ("input", "broadcast", "union", "concat") or rule.startswith("shift") or len(self.parents) != 1:
            return None
        parent, reads = self.parents[0], self.reads
        field, taps = parent.field, reads.taps
        if field is None or taps.count > MEMO_RUNS or len(parent.gaps) + len(parent.dead) > MEMO_RUNS:
            return None
        return (self.length, reads.period, reads.advance, taps.size, taps.starts, taps.values, reads.border,
                reads.wrap, parent.length, tuple(parent.gaps), tuple(parent.dead), parent.cost,
                parent.rule == "broadcast", field.period, field.advance, field.table.count,
                field.table.values[0] is None, limits.MAX_PHASES, limits.MAX_TAP_WORK)

    @staticmethod
    def input(length: int) -> "FiniteAxis":
        return FiniteAxis(length, (), "input")

    def input_length(self) -> int:
        """The length of the network input this axis descends from."""
        axis = self
        while axis.parents:
            axis = axis.parents[0]
        return axis.length

    # ---- where the extents differ from the periodic field's, and where they are known to be empty
    def _find_gaps(self) -> tuple[Stretches, Stretches]:
        n, rule = self.length, self.rule
        if rule == "input":
            return [], []
        if rule == "broadcast":
            return ([] if self.parents[0].exact(0) else [(0, n)]), []
        if rule == "union":
            gaps, dead = [], [(0, n)]
            for p in self.parents:
                gaps += [(p.length, n), *((a, min(b, n)) for a, b in p.gaps)]
                dead = intersect(dead, merge([*p.dead, (p.length, n)]))
            return merge(gaps), dead
        if rule == "concat" or rule.startswith("shift"):
            gaps, dead, offset = [], [], 0
            if rule.startswith("shift"):
                offset = int(rule.split()[1])
            for p in self.parents:
                gaps += [(max(a + offset, 0), min(b + offset, n)) for a, b in p.gaps]
                dead += [(max(a + offset, 0), min(b + offset, n)) for a, b in p.dead]
                offset += p.length
            return merge(gaps), merge(dead)
        return self._reads_gaps()

    def _reads_gaps(self) -> tuple[Stretches, Stretches]:
        """The units some of whose taps' span meets a border stretch of the layer below or leaves it (gaps), and
        those whose span lies within padding (zeros) or dead units of the layer below (dead)."""
        parent, reads, n = self.parents[0], self.reads, self.length
        outside = [(-INFINITY, 0), (parent.length, INFINITY)]
        bad = [outside[0], *parent.gaps, outside[1]]
        void = merge_void([*outside, *parent.dead] if reads.border == "zeros" else parent.dead)
        gaps, dead = units_meeting(reads, n, bad, inside=False), units_meeting(reads, n, void, inside=True)
        return merge(gaps), intersect(merge(dead), merge(gaps)) if dead else []

    def _live(self) -> Stretches:
        """The gaps' units that are not dead: worked out when asked for."""
        return minus(self.gaps, self.dead)

    def _cost(self) -> int:
        """At most how many runs working out the live units takes (checked against the budget when built)."""
        rule = self.rule
        if rule in ("input", "broadcast") or not self.gaps:
            return 0
        live = self._live()
        units = sum(b - a for a, b in live)             # never more runs than units
        if rule == "union":
            return min(units, sum(p.cost + len(p.dead) + len(p.gaps) + sum(_runs_over(p.field, a, b) for a, b in live)
                                  for p in self.parents))
        if rule == "concat" or rule.startswith("shift"):
            return min(units, sum(p.cost + len(p.dead) + len(p.gaps) for p in self.parents) + len(live))
        reads = self.reads
        runs = list(reads.taps.runs(0, min(reads.period, self.length)))
        taps = max((t[2] if t[2] <= SMALL or t[1] != 1 else 6 for _, _, t in runs if t is not None), default=1)
        if reads.advance == 0 and len(runs) <= 1:       # every copy reads the same units: one value
            pieces = 1
        else:
            pieces = sum(self._segments(x, y, runs) * len(runs) for x, y in live)
        limits.check_work(pieces * taps, "the exact extents near the borders")
        return pieces

    def _segments(self, x: int, y: int, runs: list) -> int:
        """At most how many stretches of copies with one value each the units x..y-1 fall into: one per copy, or
        (one run of taps, zero or replicated borders) one per crossing of a run start below, or of an end of the
        axis below, by a tap that the value depends on."""
        reads, parent = self.reads, self.parents[0]
        period, advance = reads.period, reads.advance
        m_x, m_y = x // period, (y - 1) // period
        copies = m_y - m_x + 1
        if len(runs) != 1 or runs[0][2] is None or reads.border not in ("zeros", "replicate"):
            return copies
        crossings = 1
        for end in _tracked(runs[0][2]):
            crossings += parent.runs_bound(m_x * advance + end, m_y * advance + end + 1) + 2
            if crossings >= copies:
                return copies
        return crossings

    def runs_bound(self, x: int, y: int) -> int:
        """At most how many runs `unit_runs` yields over x..y-1 (without working out any border stretch)."""
        x, y = max(x, 0), min(y, self.length)
        if x >= y:
            return 0
        if self.rule == "broadcast":
            return 1
        count, position = 0, x
        index = max(bisect_right(self._starts, x) - 1, 0)
        while position < y:
            if index < len(self.gaps) and self.gaps[index][0] <= position:
                stop = min(y, self.gaps[index][1])
                count += self.cost + 2 * len(self.dead) + 1
                index += 1
            else:
                stop = min(y, self.gaps[index][0]) if index < len(self.gaps) else y
                count += _runs_over(self.field, position, stop)
            position = stop
            if count > limits.MAX_PHASES:
                return count
        return count

    def exact(self, unit: int) -> bool:
        """Whether ``unit``'s extent is its periodic region."""
        index = bisect_right(self._starts, unit) - 1
        return not (index >= 0 and unit < self.gaps[index][1])

    # ---- one unit
    def region(self, unit: int) -> Region:
        if unit is None or not 0 <= unit < self.length:      # (None: a read of zero padding)
            return None
        if self.rule == "broadcast":
            return self.parents[0].region(0)
        starts = self._starts
        if starts and unit >= starts[0]:
            index = bisect_right(starts, unit) - 1
            if unit < self.gaps[index][1]:
                return (self._tables if self._tables is not None else self._tables_now())[index][unit - starts[index]]
        return self.field.region(unit)

    def unit_runs(self, lo: int, hi: int) -> Iterator[tuple[int, int, Region]]:
        """(first, end, extent) for the units lo..hi-1, run by run (None outside the axis)."""
        length = self.length
        if lo < 0 and lo < hi:
            yield lo, (hi if hi < 0 else 0), None
        a, b = (lo if lo > 0 else 0), (hi if hi < length else length)
        if a < b and self.rule == "broadcast":
            yield a, b, self.parents[0].region(0)
        elif a < b:
            gaps, position = self.gaps, a
            count = len(gaps)
            if not count:                           # no border stretch: the periodic field's runs
                yield from self.field.unit_runs(a, b)
            else:
                index = bisect_right(self._starts, a) - 1
                if index < 0:
                    index = 0
                if gaps[index][1] <= a:
                    index += 1
                while position < b:
                    if index < count and gaps[index][0] <= position:
                        start, stop = gaps[index]
                        if b < stop:
                            stop = b
                        tables = self._tables if self._tables is not None else self._tables_now()
                        for c, d, value in tables[index].runs(position - start, stop - start):
                            yield c + start, d + start, value
                        index += 1
                    else:
                        stop = (b if b < gaps[index][0] else gaps[index][0]) if index < count else b
                        yield from self.field.unit_runs(position, stop)
                    position = stop
        if (lo if lo > length else length) < hi:
            yield (lo if lo > length else length), hi, None

    def exact_runs(self, field: Any, compare: bool = True) -> Iterator[tuple[int, int, Region]]:
        """(first, end, region) runs of this axis's units whose extent is ``field``'s region: every unit outside
        the border stretches (``gaps``), and within them (``compare``) those whose reads of padding or of units
        past an end add nothing to their region (the stretches' extents worked out on demand)."""
        if self.rule == "broadcast":                     # (never cut: one region for every unit)
            return
        position = 0
        for index, (a, b) in enumerate([*self.gaps, (self.length, self.length)]):
            a, b = min(a, self.length), min(b, self.length)
            if position < a:
                yield from field.unit_runs(position, a)
            if compare and a < b:
                table = self._tables_now()[index]
                mine = ((c + a, d + a, value) for c, d, value in table.runs())
                yield from agreeing(mine, field.unit_runs(a, b))
            position = max(position, b)

    def span(self, a: int, b: int) -> Region:
        """The hull of the extents of units a..b (inclusive, clipped to the axis)."""
        a, b = max(a, 0), min(b, self.length - 1)
        if a > b:
            return None
        if self.rule == "broadcast":
            return self.parents[0].region(0)
        if not self.gaps:
            return self.field.span(a, b)
        starts, hulls, ranges = self._piece_hulls()
        first, last = bisect_right(starts, a) - 1, bisect_right(starts, b) - 1
        if first == last:
            return self._piece_span(a, b)
        parts = [self._piece_span(a, starts[first + 1] - 1), self._piece_span(starts[last], b)]
        if last - first > 1:
            parts.append(ranges.query(first + 1, last - 1))
        return hull(parts)

    def _piece_span(self, a: int, b: int) -> Region:
        """Within one piece (a gap, or the exact units between two)."""
        index = bisect_right(self._starts, a) - 1
        if index >= 0 and a < self.gaps[index][1]:
            offset = self.gaps[index][0]
            return self._tables_now()[index].hull(a - offset, b - offset)
        return self.field.span(a, b)

    def _piece_hulls(self) -> tuple[list[int], list[Region], RangeHull]:
        """The pieces (exact stretches and gaps, alternating) with their hulls, for range hulls and `reach`."""
        if self._pieces is None:
            starts, hulls, position = [], [], 0
            for (a, b), table in zip(self.gaps, self._tables_now()):
                if position < a:
                    starts.append(position)
                    hulls.append(self.field.span(position, a - 1))
                starts.append(a)
                hulls.append(table.hull(0, table.size - 1))
                position = b
            if position < self.length:
                starts.append(position)
                hulls.append(self.field.span(position, self.length - 1))
            self._pieces = (starts, hulls, RangeHull(hulls))
        return self._pieces

    # ---- aggregates
    def reach(self) -> Region:
        """The hull of every unit's extent (None: no unit depends on the input)."""
        if self.full:
            return 0, self.input_length() - 1
        if self.rule == "broadcast":
            return self.parents[0].region(0)
        if not self.gaps:
            return self.field.span(0, self.length - 1)
        return hull(self._piece_hulls()[1])

    def everywhere(self) -> bool:
        """Whether every unit depends on some input (proven when built, else from the border tables)."""
        if self.sure:
            return True
        if self.rule == "broadcast":
            return self.parents[0].region(0) is not None
        position = 0
        for (a, b), table in zip(self.gaps, self._tables_now()):
            if position < a and self.field.has_none(position, a - 1):
                return False
            if table.has_none():
                return False
            position = b
        return not (position < self.length and self.field.has_none(position, self.length - 1))

    # ---- the border stretches, worked out when first asked for
    def _tables_now(self) -> list[Table]:
        if self._tables is None:
            order, stack, seen = [], [(self, False)], set()
            while stack:                              # ancestors first, without recursion (deep networks)
                node, done = stack.pop()
                if done:
                    order.append(node)
                    continue
                if id(node) in seen or node._tables is not None:
                    continue
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((parent, False) for parent in node.parents)
            for node in order:                        # (an equal axis's tables, or its parent's, or its own)
                set_tables(node)
        return self._tables

    def _stretch(self, a: int, b: int) -> Table:
        """The extents of the units a..b-1 (a gap), as runs: the dead ones None, the live ones by the rule."""
        if b - a >= DENSE and (found := dense_table(self, a, b)) is not None:      # a long gap: with NumPy
            return found
        if b - a <= SHORT_GAP and self.rule in ("reads", "union"):
            return self._unit_by_unit(a, b)
        builder = RunBuilder(limit=None)
        position = a
        for c, d in within(self.dead, self._dead_starts, a, b) + [(b, b)]:
            if position < c:
                self._live_runs(position, c, builder)
            builder.add(d - c, None)
            position = d
        return builder.table()

    def _unit_by_unit(self, a: int, b: int) -> Table:
        """`_stretch` of a short gap of a reads or union rule, each unit from its definition: a dead unit None; a
        read unit the hull of its taps' extents below (its copy's tap, `_tap_value`), a union unit the hull of its
        parents' extents. (The runs `_live_runs` sweeps give the same values: they stand for these over long gaps.)"""
        builder = RunBuilder(limit=None)
        dead = within(self.dead, self._dead_starts, a, b)
        if self.rule == "union":
            value = lambda u: hull(parent.region(u) for parent in self.parents)     # noqa: E731
        else:
            reads = self.reads
            period, advance, taps = reads.period, reads.advance, reads.taps

            def value(u: int) -> Region:
                m, rho = divmod(u, period)
                return self._tap_value(taps.values[bisect_right(taps.starts, rho) - 1], m * advance)
        for u in range(a, b):
            builder.add(1, None if any(c <= u < d for c, d in dead) else value(u))
        return builder.table()

    def _live_runs(self, a: int, b: int, builder: RunBuilder) -> None:
        rule = self.rule
        if rule == "union":
            builder.extend(union_table([p.unit_runs(a, b) for p in self.parents], b - a, a, limit=None))
        elif rule == "concat":
            offset = 0
            for parent in self.parents:
                lo, hi = max(a, offset), min(b, offset + parent.length)
                for c, d, value in (parent.unit_runs(lo - offset, hi - offset) if lo < hi else ()):
                    builder.add(d - c, value)
                offset += parent.length
        elif rule.startswith("shift"):
            offset, parent = int(rule.split()[1]), self.parents[0]
            for c, d, value in parent.unit_runs(a - offset, b - offset):
                builder.add(d - c, value)
        else:
            self._reads_runs(a, b, builder)

    def _reads_runs(self, a: int, b: int, builder: RunBuilder) -> None:
        """Units a..b-1 of a reads rule: one value per run of taps when every copy reads the same units; else one
        per stretch of copies over which no tap the value depends on crosses a run start below (or an end of the
        axis below), found by a sweep when the copies share one run of taps (`_segments` bounds the stretches)."""
        reads = self.reads
        period, advance = reads.period, reads.advance
        if advance == 0:                                # every copy reads the same units: one value per run
            runs = list(reads.taps.runs(0, period))
            values = [self._tap_value(tap, 0) for _, _, tap in runs]
            if len(set(values)) == 1:
                builder.add(b - a, values[0])
                return
            for m in range(a // period, (b - 1) // period + 1):
                for (r0, r1, _), value in zip(runs, values):
                    builder.add(min(b, m * period + r1) - max(a, m * period + r0), value)
            return
        m_a, m_b = a // period, (b - 1) // period
        runs = list(reads.taps.runs(0, period))
        live = [run for run in runs if run[2] is not None]
        cuts = None
        if len(live) == 1 and reads.border in ("zeros", "replicate"):
            cuts = self._crossings(live[0][2], m_a, m_b)
        cuts = set(range(m_a, m_b + 2)) if cuts is None else cuts | {m_a, m_b + 1}
        cuts = sorted(c for c in cuts if m_a <= c <= m_b + 1)
        for c0, c1 in zip(cuts, cuts[1:]):
            values = [self._tap_value(tap, c0 * advance) for _, _, tap in runs]
            if len(set(values)) == 1:
                builder.add(min(b, c1 * period) - max(a, c0 * period), values[0])
                continue
            for m in range(c0, c1):
                for (r0, r1, _), value in zip(runs, values):
                    builder.add(min(b, m * period + r1) - max(a, m * period + r0), value)

    def _crossings(self, tap, m_a: int, m_b: int) -> Optional[set[int]]:
        """The copies m_a..m_b at which a tap the value depends on enters a run below (or reaches an end of the
        axis below); None when there are as many as copies (then every copy is a stretch of its own)."""
        parent, advance = self.parents[0], self.reads.advance
        limit = m_b - m_a + 1
        cuts: set[int] = set()
        for end in _tracked(tap):
            lo, hi = m_a * advance + end, m_b * advance + end
            starts = [x for x in (0, parent.length) if lo < x <= hi]
            for first, _, _ in parent.unit_runs(max(lo + 1, 0), min(hi + 1, parent.length)):
                starts.append(first)
                if len(starts) + len(cuts) > limit:
                    return None
            cuts.update(-((end - x) // advance) for x in starts if lo < x <= hi)
            if len(cuts) > limit:
                return None
        return cuts

    def _tap_value(self, tap, shift: int) -> Region:
        """The hull of the extents of the units below one tap reaches (borders mapped as the layer maps them)."""
        if tap is None:
            return None
        parent, reads = self.parents[0], self.reads
        start, step, count = tap
        start += shift
        if count <= SMALL or step != 1:         # (the hull of parent.region(reads.inside(tap)) for each tap, inline)
            length, region, inside = parent.length, parent.region, reads.inside
            lo = hi = None
            for j in range(count):
                index = start + j * step
                found = region(index if 0 <= index < length else inside(index, length))
                if found is not None:
                    if lo is None:
                        lo, hi = found
                    else:
                        if found[0] < lo:
                            lo = found[0]
                        if found[1] > hi:
                            hi = found[1]
            return None if lo is None else (lo, hi)
        return hull(parent.span(x, y) for x, y in reads.inside_ranges(start, start + count - 1, parent.length))

    # ---- what fills the positions a unit reaches outside the input
    def fill_intervals(self, unit: int) -> dict[str, list[tuple[int, int]]]:
        """For ``unit``: per padding mode, the input indices that it reaches on the unclipped extension through a
        path whose first out-of-range read was at a layer with that mode (`Reads.border`: what fills them:
        zeros, mirrored, replicated or wrapped values), as sorted inclusive intervals (`fills.walk`)."""
        from .fills import walk
        return walk(self, unit)


def _tracked(tap) -> list[int]:
    """The offsets of the taps a unit's value depends on: a long contiguous read's two ends, else every tap."""
    start, step, count = tap
    if step == 1 and count > SMALL:
        return [start, start + count - 1]
    return [start + j * step for j in range(count)]
