"""Long border stretches worked out with NumPy: `stretch_arrays`, the exact extents of a `FiniteAxis`'s units a..b-1
(a gap) as arrays, unit by unit, by the definition itself: a reads rule's unit sees the hull of the extents of the
units below its taps reach (each read past an end mapped as the layer's border maps it: nothing for zero
padding, a mirrored, replicated or wrapped unit otherwise); a merge's unit the hull of its inputs' units at the
same position; a concatenation's or a shift's unit the one it takes. `dense_table` gives `FiniteAxis._stretch` a
`Table` over them (`ArrayTable`: its runs, equal neighbours merged, are those the run-by-run path builds, worked
out only when read), and the layers above read its arrays without going through runs.

Where the per-unit work is long in Python (a causal stack whose every layer has thousands of border units, one
value each: WaveNet's 3,071 of 4,096 per layer, 126 layers deep) this costs a few array operations per layer and
tap instead of a few hundred Python steps per unit. Taken only for stretches of at least `DENSE` units, so that
`convcalc analyze` of an ordinary network never imports NumPy, and only while every number fits far inside int64
(`BOUND`), the taps per unit stay few (`MOST_TAPS`) and the stretch is not huge (`MOST_UNITS`); else None, and
the run-by-run path answers.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Optional

from .runs import Region, Table

DENSE = 64               # live units of one border stretch from which NumPy works them out
MOST_TAPS = 64           # taps per unit looked at one by one, at most (longer windows: the run-by-run path)
BOUND = 2 ** 60          # every index and region kept below this in magnitude (no int64 overflow)
MOST_UNITS = 2 ** 18     # units of one stretch, at most (a longer one: the run-by-run path, whose cost the layer
                         # bounded when it was built; NumPy's arrays here grow with the stretch)
_FIELD_ARRAYS: dict[int, tuple[Any, tuple]] = {}     # id(table) -> (table, its arrays): the periodic fields' tables

Arrays = tuple  # (first, last, live): int64, int64, bool arrays, one entry per unit (first/last 0 where not live)


def _table_arrays(table, width: int = 2) -> Optional[tuple]:
    """A table's run starts, None flags, firsts and lasts (regions, ``width`` 2), or starts, None flags and the
    taps' starts, steps and counts (reads, ``width`` 3), as int64 arrays; None past `BOUND`."""
    known = _FIELD_ARRAYS.get(id(table))
    if known is not None and known[0] is table:
        return known[1]
    import numpy as np
    columns = [[0 if v is None else v[k] for v in table.values] for k in range(width)]
    if any(abs(x) >= BOUND for column in columns for x in column):
        return None
    arrays = (np.array(table.starts, dtype=np.int64), np.array([v is None for v in table.values], dtype=bool),
              *(np.array(column, dtype=np.int64) for column in columns))
    if len(_FIELD_ARRAYS) >= 4096:
        _FIELD_ARRAYS.clear()
    _FIELD_ARRAYS[id(table)] = (table, arrays)
    return arrays


def _empty(count: int) -> Arrays:
    import numpy as np
    return np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64), np.zeros(count, dtype=bool)


def field_arrays(field: Any, x: int, y: int) -> Optional[Arrays]:
    """The periodic regions of an `AxisField`'s units x..y-1 (unit m*period + rho: table[rho] moved by
    m*advance)."""
    import numpy as np
    arrays = _table_arrays(field.table)
    if arrays is None or (abs(y) // field.period + 1) * abs(field.advance) >= BOUND:
        return None
    starts, none, first, last = arrays
    copy, phase = np.divmod(np.arange(x, y, dtype=np.int64), field.period)
    index = np.searchsorted(starts, phase, side="right") - 1
    live = ~none[index]
    shift = copy * field.advance
    return np.where(live, first[index] + shift, 0), np.where(live, last[index] + shift, 0), live


def unit_arrays(axis: Any, x: int, y: int) -> Optional[Arrays]:
    """The exact extents of a `FiniteAxis`'s units x..y-1 (nothing outside the axis), its border stretches' tables
    worked out already (they are: ancestors first)."""
    import numpy as np
    low, high, live = _empty(y - x)
    a, b = max(x, 0), min(y, axis.length)
    if a >= b:
        return low, high, live
    if axis.rule == "broadcast":
        region = axis.parents[0].region(0)
        if region is not None:
            if max(abs(region[0]), abs(region[1])) >= BOUND:
                return None
            low[a - x:b - x], high[a - x:b - x], live[a - x:b - x] = region[0], region[1], True
        return low, high, live
    gaps, position = axis.gaps, a
    index = max(bisect_right(axis._starts, a) - 1, 0)
    if index < len(gaps) and gaps[index][1] <= a:
        index += 1
    while position < b:
        if index < len(gaps) and gaps[index][0] <= position:
            start, stop = gaps[index]
            stop = min(stop, b)
            table = axis._tables[index]
            if isinstance(table, ArrayTable):
                piece = tuple(array[position - start:stop - start] for array in table.arrays)
            else:
                piece = _empty(stop - position)
                for c, d, value in table.runs(position - start, stop - start):
                    if value is not None:
                        if max(abs(value[0]), abs(value[1])) >= BOUND:
                            return None
                        c, d = c + start - position, d + start - position
                        piece[0][c:d], piece[1][c:d], piece[2][c:d] = value[0], value[1], True
            index += 1
        else:
            stop = min(b, gaps[index][0]) if index < len(gaps) else b
            piece = field_arrays(axis.field, position, stop)
            if piece is None:
                return None
        for target, source in zip((low, high, live), piece):
            target[position - x:stop - x] = source
        position = stop
    return low, high, live


def _hull_into(acc: list, low, high, live) -> None:
    """Fold one source's regions into the running (first, last, live) ``acc``."""
    import numpy as np
    both = acc[2] & live
    acc[0] = np.where(both, np.minimum(acc[0], low), np.where(live, low, acc[0]))
    acc[1] = np.where(both, np.maximum(acc[1], high), np.where(live, high, acc[1]))
    acc[2] = acc[2] | live


def _inside(index, length: int, border: str, wrap: Optional[tuple[int, int]]):
    """`Reads.inside` of every index at once (-1: a read of zero padding, or past the axis after mapping)."""
    import numpy as np
    outside = (index < 0) | (index >= length)
    if border == "reflect":
        index = np.where(index < 0, -index, np.where(index >= length, 2 * (length - 1) - index, index))
    elif border == "replicate":
        index = np.clip(index, 0, length - 1)
    elif border == "circular":
        first, count = wrap or (0, length)
        index = np.where(outside, first + (index - first) % count, index)
    else:
        index = np.where(outside, -1, index)
    return np.where((index >= 0) & (index < length), index, -1)


def _reads_arrays(axis: Any, a: int, b: int) -> Optional[Arrays]:
    """A reads rule's units a..b-1: the hull, over each unit's taps, of the extents of the units they reach."""
    import numpy as np
    reads, parent = axis.reads, axis.parents[0]
    length = parent.length
    taps = _table_arrays(reads.taps, 3)
    if taps is None or length <= 0 or (abs(b) // reads.period + 1) * abs(reads.advance) >= BOUND:
        return None
    starts, none, first, step, count = taps
    copy, phase = np.divmod(np.arange(a, b, dtype=np.int64), reads.period)
    index = np.searchsorted(starts, phase, side="right") - 1
    counts = np.where(none[index], 0, count[index])
    most = int(counts.max(initial=0))
    if most > MOST_TAPS:
        return None
    base, steps = first[index] + copy * reads.advance, step[index]

    def reached(j: int):                    # the units tap j of every unit reaches (-1: none), one tap at a time
        return np.where(j < counts, _inside(base + j * steps, length, reads.border, reads.wrap), -1)

    lo, hi = length, -1
    for j in range(most):
        found = reached(j)
        found = found[found >= 0]
        if len(found):
            lo, hi = min(lo, int(found.min())), max(hi, int(found.max()))
    acc = list(_empty(b - a))
    if hi < lo:
        return tuple(acc)
    if hi - lo > 4 * (b - a) + 4096:          # taps spread far apart: the run-by-run path (memory stays linear)
        return None
    below = unit_arrays(parent, lo, hi + 1)
    if below is None:
        return None
    for j in range(most):
        found = reached(j)
        where = np.where(found >= 0, found - lo, 0)
        live = (found >= 0) & below[2][where]
        _hull_into(acc, below[0][where], below[1][where], live)
    return tuple(acc)


def stretch_arrays(axis: Any, a: int, b: int) -> Optional[Arrays]:
    """The exact extents of ``axis``'s units a..b-1 as (first, last, live) arrays, or None (the run-by-run path)."""
    if b - a > MOST_UNITS:                 # (a softmax along 10^9 units: one run there, 24 GB of arrays here)
        return None
    rule = axis.rule
    if rule == "union":
        acc = list(_empty(b - a))
        for parent in axis.parents:
            found = unit_arrays(parent, a, b)
            if found is None:
                return None
            _hull_into(acc, *found)
        return tuple(acc)
    if rule == "concat":
        acc, offset = list(_empty(b - a)), 0
        for parent in axis.parents:
            lo, hi = max(a, offset), min(b, offset + parent.length)
            if lo < hi:
                found = unit_arrays(parent, lo - offset, hi - offset)
                if found is None:
                    return None
                for target, source in zip(acc, found):
                    target[lo - a:hi - a] = source
            offset += parent.length
        return tuple(acc)
    if rule.startswith("shift"):
        offset = int(rule.split()[1])
        return unit_arrays(axis.parents[0], a - offset, b - offset)
    if rule in ("input", "broadcast") or axis.reads is None:
        return None
    return _reads_arrays(axis, a, b)


def dense_table(axis: Any, a: int, b: int) -> Optional["ArrayTable"]:
    """`FiniteAxis._stretch` of a long gap: the run-length table of `stretch_arrays` (its runs worked out when
    first read: a lookup, a range hull or a None test reads the arrays), or None (the run-by-run path)."""
    found = stretch_arrays(axis, a, b)
    return None if found is None else ArrayTable(found)


class ArrayTable(Table):
    """A `Table` over per-unit (first, last, live) arrays: ``starts`` and ``values`` (the runs, equal neighbours
    merged) are worked out on first use; one phase, a range's hull and its None test read the arrays."""

    __slots__ = ("_low", "_high", "_live", "_built")

    def __init__(self, arrays: Arrays):
        low, high, live = arrays
        self.size, self._low, self._high, self._live = len(low), low, high, live
        self._built, self._ranges = False, None

    def _build(self) -> None:
        import numpy as np
        low, high, live = self._low, self._high, self._live
        low, high = np.where(live, low, 0), np.where(live, high, 0)
        change = np.flatnonzero((low[1:] != low[:-1]) | (high[1:] != high[:-1]) | (live[1:] != live[:-1])) + 1
        starts = np.concatenate(([0], change)) if len(low) else change
        values = [(lo, hi) if on else None for lo, hi, on in zip(low[starts].tolist(), high[starts].tolist(),
                                                                 live[starts].tolist())]
        _STARTS.__set__(self, tuple(starts.tolist()))
        _VALUES.__set__(self, tuple(values))
        self._built = True

    @property
    def arrays(self) -> Arrays:
        return self._low, self._high, self._live

    @property
    def starts(self) -> tuple:
        if not self._built:
            self._build()
        return _STARTS.__get__(self)

    @property
    def values(self) -> tuple:
        if not self._built:
            self._build()
        return _VALUES.__get__(self)

    def __getitem__(self, phase: int) -> Region:
        if not 0 <= phase < self.size:
            raise IndexError(phase)
        return (int(self._low[phase]), int(self._high[phase])) if self._live[phase] else None

    def hull(self, lo: int, hi: int) -> Region:
        lo, hi = max(lo, 0), min(hi, self.size - 1) + 1
        live = self._live[lo:hi]
        if not live.any():
            return None
        return int(self._low[lo:hi][live].min()), int(self._high[lo:hi][live].max())

    def has_none(self, lo: int = 0, hi: Optional[int] = None) -> bool:
        return not bool(self._live[max(lo, 0):hi].all())


_STARTS, _VALUES = Table.__dict__["starts"], Table.__dict__["values"]
