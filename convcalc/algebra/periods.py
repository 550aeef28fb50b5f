"""The smallest period a run table repeats with (`_shortest`: O(runs) candidates, each compared where either side
starts a run, with NumPy for long tables), and `shortest_reads`, a layer's reads shortened to it. Split from
``axis_field.py``, whose fields and reads it shortens."""

from __future__ import annotations

from math import gcd
from typing import Optional

from .reads import Reads
from .runs import RunBuilder, Table, moved


def shortest_reads(reads: Reads) -> Reads:
    """``reads`` with the smallest period that repeats: a resampling's taps built over its real units (ATen's
    index map, whose period is the axis) repeat the exact rule's period wherever the two agree. O(runs), as
    `_shortest` (to which each tap is a region (start, start + its kind of progression))."""
    taps = reads.taps
    if reads.period == 1:
        return reads
    kinds: dict[tuple[int, int], int] = {}
    coded = Table(taps.size, taps.starts, [None if t is None else (t[0], t[0] + kinds.setdefault(t[1:], len(kinds)))
                                           for t in taps.values])
    p = _shortest(reads.period, reads.advance, coded)
    if p == reads.period:
        return reads
    builder = RunBuilder(limit=None)
    builder.extend(taps, 0, p)
    return Reads(p, reads.advance * p // reads.period, builder.table(), reads.border, reads.wrap)


def _shortest(period: int, advance: int, table: Table) -> int:
    """The smallest p dividing the period whose k = period/p blocks are the first one moved by advance/k each.
    A run boundary repeats in every block, so k is at most the number of runs: O(runs) candidates."""
    runs = table.count
    if period == 1:
        return 1
    if runs == 1:
        if table.values[0] is None:
            return period // gcd(advance, period)
        return 1 if advance == 0 else period
    arrays = None
    for k in range(min(runs, period), 1, -1):
        if period % k or advance % k or (runs % k and (runs - 1) % k):
            continue
        if arrays is None:
            arrays = _arrays(table) or ()
        if _blocks_repeat(table, period // k, advance // k, arrays or None):
            return period // k
    return period


def _blocks_repeat(table: Table, p: int, shift: int, arrays: Optional[tuple] = None) -> bool:
    """Whether table[rho + p] is table[rho] moved by ``shift`` for every rho < size - p: compared where either
    side starts a run (with NumPy for long tables: ``arrays`` from `_arrays`; else with two run pointers)."""
    if arrays is not None:
        return _blocks_repeat_numpy(table, p, shift, arrays)
    values, limit = table.values, table.size - p
    i, j, rho = 0, table.index(p), 0
    while rho < limit:
        if values[j] != moved(values[i], shift):
            return False
        rho += min(table.end(i) - rho, table.end(j) - rho - p)
        if table.end(i) <= rho:
            i += 1
        if table.end(j) <= rho + p:
            j += 1
    return True


def _arrays(table: Table, always: bool = False) -> Optional[tuple]:
    """A long table's run starts, None flags, firsts and lasts as NumPy arrays (None: short, unless ``always``, or
    past int64)."""
    if table.count <= 256 and not always:
        return None
    import numpy as np
    try:
        return (np.array(table.starts, dtype=np.int64), np.array([v is None for v in table.values]),
                np.array([0 if v is None else v[0] for v in table.values], dtype=np.int64),
                np.array([0 if v is None else v[1] for v in table.values], dtype=np.int64))
    except OverflowError:
        return None


def _blocks_repeat_numpy(table: Table, p: int, shift: int, arrays: tuple) -> bool:
    import numpy as np
    starts, none, first, last = arrays
    limit = table.size - p
    points = np.concatenate([starts[starts < limit], (starts - p)[(starts >= p) & (starts - p < limit)], [0]])
    here = np.searchsorted(starts, points, side="right") - 1
    there = np.searchsorted(starts, points + p, side="right") - 1
    same_none = none[here] == none[there]
    moved_ok = (first[there] == first[here] + shift) & (last[there] == last[here] + shift)
    return bool(np.all(same_none & (none[here] | moved_ok)))
