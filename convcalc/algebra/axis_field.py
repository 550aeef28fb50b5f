"""One axis of a receptive field: `AxisField`, the periodic, monotone regions of one layer's units along one axis (unit
``m*period + rho`` sees ``first[rho]..last[rho]`` shifted by ``m*advance``), its summary numbers (size, stride, Araujo's
padding, centre), its composition with a layer's `Reads`, and the helpers that build one from a period of regions
(shortened to the smallest period that repeats) or from the per-unit union hull of fields meeting at a merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field, replace
from fractions import Fraction
from functools import cached_property
from math import gcd
from typing import Optional, Sequence

from .reads import FiniteAxis, Reads, Region, Tap, _hull


def _lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


@dataclass(frozen=True)
class AxisField:
    """The regions of one layer's units along one axis (see the ``convcalc.algebra`` docstring).

    ``first[rho]``/``last[rho]`` give unit rho's region (None: it sees nothing); unit ``m*period + rho`` sees
    them shifted by ``m*advance``. ``widest``/``narrowest``: the fields along the single paths with the
    largest and smallest reach (None: this field itself, no merge on the way).
    """

    period: int
    advance: int
    first: tuple[Optional[int], ...]
    last: tuple[Optional[int], ...]
    stride: Fraction
    widest: Optional["AxisField"] = dataclass_field(default=None, compare=False, repr=False)
    narrowest: Optional["AxisField"] = dataclass_field(default=None, compare=False, repr=False)
    finite: Optional[FiniteAxis] = dataclass_field(default=None, compare=False, repr=False)

    @staticmethod
    def identity() -> "AxisField":
        return AxisField(1, 1, (0,), (0,), Fraction(1))

    @staticmethod
    def even(size: int, stride: int, padding: int) -> "AxisField":
        """Araujo's field: unit u sees [u*S - P, u*S - P + r - 1] (r = 0: nothing)."""
        if size <= 0:
            return AxisField(1, stride, (None,), (None,), Fraction(stride))
        return AxisField(1, stride, (-padding,), (size - 1 - padding,), Fraction(stride))

    # ---- regions
    def region(self, unit: int) -> Region:
        """The network-input indices [first, last] unit ``unit`` depends on (unclipped), or None."""
        m, rho = divmod(unit, self.period)
        first = self.first[rho]
        if first is None:
            return None
        return m * self.advance + first, m * self.advance + self.last[rho]

    def regions(self) -> list[Region]:
        """One period of regions (units 0 .. period-1)."""
        return [self.region(rho) for rho in range(self.period)]

    def extent(self, unit: int) -> Region:
        """The first and last input index unit ``unit`` of the actual network depends on along this axis
        (borders, padding modes and every layer's length included), or None; needs the input length (a field
        from `Field.identity` with ``lengths``, as the analyzer builds)."""
        if self.finite is None:
            raise ValueError("no input length: build the field with Field.identity(dims, lengths)")
        return self.finite.region(unit)

    # ---- summary numbers
    @cached_property
    def _sizes(self) -> list[int]:
        return [0 if f is None else l - f + 1 for f, l in zip(self.first, self.last)]

    @property
    def size(self) -> Fraction:
        """The largest region over the units (an integer, as a Fraction like the other numbers)."""
        return Fraction(max(self._sizes))

    @property
    def size_min(self) -> Fraction:
        """The smallest region over the units (0 when some unit sees nothing)."""
        return Fraction(min(self._sizes))

    @property
    def even_spacing(self) -> bool:
        """Whether every unit sees a window of one size, moving by ``stride`` from unit to unit."""
        return self.size == self.size_min and self.centre_spread() == 0

    @cached_property
    def centre(self) -> Fraction:
        """Mean over a period of (centre of unit rho's region - rho*stride): the centre of unit 0's window."""
        offsets = [Fraction(f + l, 2) - rho * self.stride
                   for rho, (f, l) in enumerate(zip(self.first, self.last)) if f is not None]
        return sum(offsets, Fraction(0)) / len(offsets) if offsets else Fraction(0)

    def centre_spread(self) -> Fraction:
        """How far the units' region centres stray from the mean centre line u*stride + centre."""
        return max((abs(Fraction(f + l, 2) - rho * self.stride - self.centre)
                    for rho, (f, l) in enumerate(zip(self.first, self.last)) if f is not None), default=Fraction(0))

    @property
    def padding(self) -> Fraction:
        """P = (size - 1)/2 - centre: Araujo's effective padding for even fields."""
        return (self.size - 1) / 2 - self.centre

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
    def _hull(self, tap: Tap, shift: int) -> Region:
        if tap is None:
            return None
        start, step, count = tap
        lo = hi = None
        for j in range(count):
            found = self.region(shift + start + j * step)
            if found is not None:
                lo = found[0] if lo is None else min(lo, found[0])
                hi = found[1] if hi is None else max(hi, found[1])
        return None if lo is None else (lo, hi)

    def _through(self, reads: Reads, length: int) -> "AxisField":
        n = self.period // gcd(reads.advance, self.period)
        period = n * reads.period
        advance = n * reads.advance // self.period * self.advance
        stride = self.stride * Fraction(reads.advance, reads.period)
        if period > max(length, 1):                      # never longer than the axis: one period covers it
            period = max(length, 1)
            advance = round(stride * period)
        regions = []
        for rho in range(period):
            m, r = divmod(rho, reads.period)
            regions.append(self._hull(reads.taps[r], m * reads.advance))
        return _from_regions(period, advance, regions, stride)

    def through(self, reads: Reads, length: int) -> "AxisField":
        """The field of a layer reading this one with ``reads``; ``length``: the layer's output length."""
        result = self._through(reads, length)
        widest = None if self.widest is None else self.widest._through(reads, length)
        narrowest = None if self.narrowest is None else self.narrowest._through(reads, length)
        finite = None if self.finite is None else FiniteAxis(length, (self.finite,), "reads", reads)
        return replace(result, widest=widest, narrowest=narrowest, finite=finite)

    def broadcast(self, length: int) -> "AxisField":
        """A length-1 axis spread over ``length`` units: every unit sees unit 0's region (stride 0)."""
        found = self.region(0)
        first, last = (None, None) if found is None else found
        single = AxisField(1, 0, (first,), (last,), Fraction(0))
        return replace(single, widest=self.widest and self.widest.broadcast(length),
                       narrowest=self.narrowest and self.narrowest.broadcast(length),
                       finite=self.finite and FiniteAxis(length, (self.finite,), "broadcast"))

    def __str__(self) -> str:
        size = str(self.size) if self.size == self.size_min else f"{self.size_min}..{self.size}"
        return f"AxisField(size={size}, stride={self.stride}, padding={self.padding}, period={self.period})"


def _from_regions(period: int, advance: int, regions: Sequence[Region], stride: Fraction) -> AxisField:
    first = tuple(None if r is None else r[0] for r in regions)
    last = tuple(None if r is None else r[1] for r in regions)
    # shorten to the smallest period that repeats (conv chains stay at period 1)
    for p in range(1, period):
        if period % p == 0:
            shift = advance * p // period
            if advance * p % period == 0 and all(
                    _shifted(regions[rho + p], regions[rho], shift) for rho in range(period - p)):
                return AxisField(p, shift, first[:p], last[:p], stride)
    return AxisField(period, advance, first, last, stride)


def _shifted(a: Region, b: Region, shift: int) -> bool:
    if a is None or b is None:
        return a is b
    return a[0] == b[0] + shift and a[1] == b[1] + shift


def _union(columns: Sequence[AxisField], length: int) -> AxisField:
    """The per-unit union hull of fields meeting at a merge (one axis)."""
    period = 1
    for c in columns:
        period = _lcm(period, c.period)
    advances = {c.advance * (period // c.period) for c in columns}
    stride = max(columns, key=lambda c: c.size).stride
    if len({c.stride for c in columns}) == 1 and len(advances) == 1 and period <= max(length, 1):
        advance = advances.pop()
    else:                                               # no common period: one period over the whole axis
        period = max(length, 1)
        advance = round(stride * period)
    regions = [_hull(c.region(rho) for c in columns) for rho in range(period)]
    finite = None
    if all(c.finite is not None for c in columns):
        finite = FiniteAxis(length, [c.finite for c in columns], "union")
    return replace(_from_regions(period, advance, regions, stride), finite=finite)

