"""Run-length tables: a sequence of values over the phases 0..size-1 stored as runs of equal values, so that a period
of a billion units whose regions take a few values costs a few runs (the empty phases between a stride-10^9
transposed conv's taps, the copies of a ×10^9 upsampling). `Table` (lookup by bisection, runs over a range),
`RunBuilder` (appends runs, merges equal neighbours, refuses past the phase budget), `RangeHull` (the hull of the
regions over a range of runs in O(log n)) and `hull` (of an iterable of regions). Plain ints and tuples.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Iterable, Iterator, Optional, Sequence

from . import limits

Region = Optional[tuple[int, int]]        # (first, last) input index, or None: the unit reads nothing


class Table:
    """``size`` values, constant on runs: value ``values[i]`` on phases ``starts[i] .. starts[i+1] - 1``."""

    __slots__ = ("size", "starts", "values", "_ranges")

    def __init__(self, size: int, starts: Sequence[int], values: Sequence[Any]):
        self.size, self.starts, self.values = size, tuple(starts), tuple(values)
        self._ranges: Optional[RangeHull] = None

    @staticmethod
    def of(values: Iterable[Any]) -> "Table":
        """The table of a sequence given value by value."""
        builder = RunBuilder(limit=None)
        for value in values:
            builder.add(1, value)
        return builder.table()

    @staticmethod
    def filled(size: int, value: Any) -> "Table":
        return Table(size, (0,), (value,)) if size > 0 else Table(0, (), ())

    def __len__(self) -> int:
        return self.size

    @property
    def count(self) -> int:
        """The number of runs."""
        return len(self.values)

    def index(self, phase: int) -> int:
        """The run holding ``phase``."""
        return bisect_right(self.starts, phase) - 1

    def __getitem__(self, phase: int) -> Any:
        if not 0 <= phase < self.size:
            raise IndexError(phase)
        return self.values[bisect_right(self.starts, phase) - 1]

    def end(self, run: int) -> int:
        return self.starts[run + 1] if run + 1 < len(self.starts) else self.size

    def runs(self, lo: int = 0, hi: Optional[int] = None) -> Iterator[tuple[int, int, Any]]:
        """(first, end, value) for the runs meeting phases lo..hi-1, clipped to them."""
        size = self.size
        hi = size if hi is None or hi > size else hi
        if lo < 0:
            lo = 0
        if lo >= hi:
            return
        starts, values = self.starts, self.values
        count = len(values)
        run = bisect_right(starts, lo) - 1
        while run < count:
            first = starts[run]
            if first >= hi:
                return
            run += 1
            end = starts[run] if run < count else size
            yield (first if first > lo else lo), (end if end < hi else hi), values[run - 1]

    def __iter__(self) -> Iterator[Any]:
        """Every value, phase by phase (for small tables)."""
        for first, end, value in self.runs():
            for _ in range(end - first):
                yield value

    def has_none(self, lo: int = 0, hi: Optional[int] = None) -> bool:
        """Whether some phase in lo..hi-1 holds None."""
        if lo == 0 and (hi is None or hi >= self.size):
            return None in self.values
        return any(value is None for _, _, value in self.runs(lo, hi))

    def hull(self, lo: int, hi: int) -> Region:
        """The hull of the (region) values on phases lo..hi (inclusive)."""
        first, last = self.index(max(lo, 0)), self.index(min(hi, self.size - 1))
        if last - first < 16:
            return hull(self.values[first:last + 1])
        if self._ranges is None:
            self._ranges = RangeHull(self.values)
        return self._ranges.query(first, last)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (self.size, self.starts, self.values) == (other.size, other.starts,
                                                                                         other.values)

    def __hash__(self) -> int:
        return hash((self.size, self.starts, self.values))

    def __repr__(self) -> str:
        if self.count <= 8:
            return f"Table({self.size}, {list(zip(self.starts, self.values))})"
        return f"Table({self.size}, {self.count} runs)"


class RunBuilder:
    """Builds a `Table` run by run, merging a run into the one before when their values are equal. More than
    ``limit`` runs (default: the phase budget) is refused (``detail`` says what for)."""

    __slots__ = ("starts", "values", "size", "limit", "detail")

    def __init__(self, limit: Optional[int] = -1, detail: str = ""):
        self.starts: list[int] = []
        self.values: list[Any] = []
        self.size = 0
        self.limit = limits.MAX_PHASES if limit == -1 else limit
        self.detail = detail

    def add(self, length: int, value: Any) -> None:
        if length <= 0:
            return
        if self.values and self.values[-1] == value:
            self.size += length
            return
        if self.limit is not None and len(self.values) >= self.limit:
            raise limits.too_many_phases(self.detail)
        self.starts.append(self.size)
        self.values.append(value)
        self.size += length

    def extend(self, table: Table, lo: int = 0, hi: Optional[int] = None, shift: int = 0) -> None:
        """Append phases lo..hi-1 of ``table``, each region moved by ``shift``."""
        for first, end, value in table.runs(lo, hi):
            self.add(end - first, moved(value, shift))

    def table(self) -> Table:
        return Table(self.size, self.starts, self.values)


def moved(region: Region, shift: int) -> Region:
    """``region`` moved by ``shift`` input indices."""
    if region is None or not shift:
        return region
    return region[0] + shift, region[1] + shift


def hull(regions: Iterable[Region]) -> Region:
    lo = hi = None
    for found in regions:
        if found is not None:
            first, last = found
            if lo is None:
                lo, hi = first, last
            else:
                if first < lo:
                    lo = first
                if last > hi:
                    hi = last
    return None if lo is None else (lo, hi)


class RangeHull:
    """The hull of regions[i..j] in O(log n) (a segment tree of firsts' minima and lasts' maxima)."""

    __slots__ = ("width", "low", "high")

    def __init__(self, regions: Sequence[Region]):
        width = 1
        while width < len(regions):
            width *= 2
        self.width = width
        none_low, none_high = float("inf"), float("-inf")
        low = [none_low] * (2 * width)
        high = [none_high] * (2 * width)
        for index, region in enumerate(regions):
            if region is not None:
                low[width + index], high[width + index] = region
        for node in range(width - 1, 0, -1):
            low[node] = min(low[2 * node], low[2 * node + 1])
            high[node] = max(high[2 * node], high[2 * node + 1])
        self.low, self.high = low, high

    def query(self, first: int, last: int) -> Region:
        lo, hi = float("inf"), float("-inf")
        a, b = first + self.width, last + self.width + 1
        while a < b:
            if a & 1:
                lo, hi = min(lo, self.low[a]), max(hi, self.high[a])
                a += 1
            if b & 1:
                b -= 1
                lo, hi = min(lo, self.low[b]), max(hi, self.high[b])
            a //= 2
            b //= 2
        return None if lo == float("inf") else (lo, hi)


def union_table(sources: Sequence[Iterator[tuple[int, int, Region]]], size: int, start: int = 0,
                limit: Optional[int] = -1) -> Table:
    """The per-unit hull of several run sequences over units start..start+size-1 (each yields (first, end,
    region) runs covering them in order), as a table over 0..size-1 (``limit``: as `RunBuilder`'s)."""
    builder = RunBuilder(limit, detail=" (a merge of fields with different periods)")
    current = [next(s, None) for s in sources]
    position, steps, stop = start, 0, start + size
    work = limits.MAX_TAP_WORK if limit is not None else None
    add = builder.add
    while position < stop:
        end = lo = hi = None
        for run in current:
            if run is not None:
                if end is None or run[1] < end:
                    end = run[1]
                region = run[2]
                if region is not None:
                    if lo is None:
                        lo, hi = region
                    else:
                        if region[0] < lo:
                            lo = region[0]
                        if region[1] > hi:
                            hi = region[1]
        add(end - position, None if lo is None else (lo, hi))
        position = end
        for index, run in enumerate(current):
            if run is not None and run[1] <= position:
                current[index] = next(sources[index], None)
        steps += 1
        if work is not None and steps > work:
            limits.check_work(steps, "the runs of the fields meeting at a merge")
    return builder.table()
