"""Receptive-field algebra: exact per-unit regions, in the convention of Araujo, Norris & Sim (Distill 2019).

Each spatial axis is seen on its infinite, unclipped extension (padding and the positions past either border
are indices like any other). A layer's output unit ``v`` reads a set of its input units; composing these
reads from the network input on gives, for every unit ``u`` of a layer, the hull ``[first, last]`` of the
network-input indices it depends on (its *region*), or nothing (a unit that gets only a bias).

The regions are periodic and monotone (`AxisField`): with period ``q`` (units) and advance ``J`` (input
indices per period), unit ``u = m*q + rho`` sees ``[m*J + first[rho], m*J + last[rho]]``. For a chain of
convolutions and pools ``q = 1`` and this is Araujo's field: ``[u*S - P, u*S - P + r - 1]``. Transposed
convolutions, upsampling, adaptive pooling and PixelShuffle make windows uneven (``q > 1``); the period is kept
no longer than the layer's output (beyond it the regions describe every real unit exactly, and the extension
past the output is approximate). All arithmetic is on integers; the stride ``J/q`` is an exact Fraction.

Summary numbers per axis: ``size`` (largest region over the units), ``size_min`` (smallest, 0 when some unit
sees nothing), ``stride`` (``J/q``) and ``padding``: ``P = (size - 1)/2 - c`` where ``c`` is the mean over a
period of (centre of unit rho's region - rho*stride), so that for even fields unit u sees exactly
``[u*S - P, u*S - P + r - 1]``, and for uneven ones ``u*S - P + (size-1)/2`` is the mean centre line.

At a merge (Add, Concat, ...) a unit sees the union of what its inputs' units see: the region is the union
hull. ``path_size_max``/``path_size_min`` and `Field.max_path`/`Field.min_path` follow the single paths: at
each merge the input with the largest (smallest) field along one path is taken (greedily, by the product over
the axes). Inputs with different strides or centres (Araujo et al.'s alignment condition) mark the merge
``misaligned``. Where a merge's input reaches no input at some units on one axis (bias-only units of a
transposed conv, a spatial concat), a unit's region is no longer a product of per-axis regions: `Field.terms`
keeps the inputs apart so that `Field.region`/`Field.extent` stay exact; the per-axis summary numbers are then
those of the per-axis union (`Field.separable` is False).

`Field.region` is the unclipped region (Araujo's convention: padding positions count). `Field.extent` is the
actual network's: the first and last input index a unit depends on, with every layer's length, borders and
padding modes (reflect, replicate, circular) taken into account (`FiniteAxis`, computed on demand). With positive
weights and inputs it is exactly the extent of the unit's input-gradient support (tests/test_receptive_exact.py).

Each layer unit supplies, per axis, what its output units read of its input (`Reads`: conv/pool windows,
transposed-conv residues, resampling positions, adaptive bins, ...) through ``Layer.receptive_field``.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field, replace
from fractions import Fraction
from functools import cached_property
from math import floor, gcd
from typing import Optional, Sequence

Region = Optional[tuple[int, int]]        # (first, last) input index, or None: the unit reads nothing
Tap = Optional[tuple[int, int, int]]      # (start, step, count): the units start + j*step, j < count


def _lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


# --------------------------------------------------------------------------- what one layer reads

@dataclass(frozen=True)
class Reads:
    """Which of its input units a layer's output unit reads, along one axis, on the unclipped extension.

    Output unit ``v = m*period + rho`` reads the arithmetic progression ``taps[rho]`` shifted by
    ``m*advance``: units ``m*advance + start + j*step`` for ``j < count`` (None: nothing).
    """

    period: int
    advance: int
    taps: tuple[Tap, ...]
    border: str = "zeros"      # what a read past the input's ends gets (F.pad's modes): only the exact extent uses it
    # circular with a crop (F.pad crops first, then wraps): the (first, count) input units the wrap cycles through
    wrap: Optional[tuple[int, int]] = None

    @staticmethod
    def window(k: int, stride: int, pad_lo: int, dilation: int = 1, border: str = "zeros",
               wrap: Optional[tuple[int, int]] = None) -> "Reads":
        """A sliding window (conv, pool, padding): unit v reads v*s - pad_lo + m*d, m < k."""
        return Reads(1, stride, ((-pad_lo, dilation, k),), border, wrap)

    def inside(self, index: int, length: int) -> Optional[int]:
        """The input unit a read of ``index`` reaches on an input of ``length``: itself, a mirrored or wrapped
        one (reflect, replicate, circular), or None (zero padding)."""
        if 0 <= index < length:
            return index
        if self.border == "reflect":
            index = -index if index < 0 else 2 * (length - 1) - index
        elif self.border == "replicate":
            index = min(max(index, 0), length - 1)
        elif self.border == "circular":
            first, count = self.wrap or (0, length)
            index = first + (index - first) % count
        else:
            return None
        return index if 0 <= index < length else None

    @staticmethod
    def identity() -> "Reads":
        return Reads(1, 1, ((0, 1, 1),))

    @staticmethod
    def transposed(k: int, stride: int, pad: int, dilation: int = 1) -> "Reads":
        """Transposed convolution: output o reads input j = (o + pad - m*d)/s for the taps m < k that divide
        (an arithmetic progression of step d/gcd(s, d); none when k*d is short of the stride's residues)."""
        taps: list[Tap] = []
        for rho in range(stride):
            offsets = [(rho + pad - m * dilation) // stride for m in range(k)
                       if (rho + pad - m * dilation) % stride == 0]
            if not offsets:
                taps.append(None)
                continue
            step = dilation // gcd(stride, dilation)
            taps.append((min(offsets), step, len(offsets)))
        return Reads(stride, 1, tuple(taps))

    @staticmethod
    def bins(length_in: int, length_out: int) -> "Reads":
        """Adaptive pooling: bin j covers [floor(j*I/O), ceil((j+1)*I/O)) (period O/g, advance I/g)."""
        g = gcd(length_in, length_out)
        period, advance = length_out // g, length_in // g
        taps = []
        for rho in range(period):
            start = rho * length_in // length_out
            end = -(-(rho + 1) * length_in // length_out)
            taps.append((start, 1, end - start))
        return Reads(period, advance, tuple(taps))

    @staticmethod
    def sampled(scale: Fraction, positions: Sequence[Fraction]) -> "Reads":
        """Resampling with coordinate scale c = p/q (period q, advance p): unit rho reads floor(x) and, unless
        x is an integer, floor(x) + 1, for each sample position x in ``positions[rho]`` ((q) of them)."""
        taps: list[Tap] = []
        for x in positions:
            start = floor(x)
            taps.append((start, 1, 1 if x == start else 2))
        return Reads(len(positions), scale.numerator if scale else 0, tuple(taps))

    @staticmethod
    def everything(length: int) -> "Reads":
        """Every unit reads all ``length`` units of the axis (softmax along it)."""
        return Reads(1, 0, ((0, 1, length),))


# --------------------------------------------------------------------------- the finite axis

class FiniteAxis:
    """The exact reach of every unit of one layer along one axis of the actual, finite network: borders,
    padding modes and the layers' lengths included. Computed on demand (and then kept), from the ancestors."""

    def __init__(self, length: int, parents: Sequence["FiniteAxis"], rule: str, reads: Optional[Reads] = None):
        self.length, self.parents, self.rule, self.reads = length, tuple(parents), rule, reads
        self._regions: Optional[list[Region]] = None

    @staticmethod
    def input(length: int) -> "FiniteAxis":
        return FiniteAxis(length, (), "input")

    def input_length(self) -> int:
        """The length of the network input this axis descends from."""
        axis = self
        while axis.parents:
            axis = axis.parents[0]
        return axis.length

    def region(self, unit: int) -> Region:
        if not 0 <= unit < self.length:
            return None
        if self._regions is None:
            self._compute()
        return self._regions[unit]

    def _compute(self) -> None:
        order, stack, seen = [], [(self, False)], set()
        while stack:                                  # ancestors first, without recursion (deep networks)
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen or node._regions is not None:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node.parents)
        for node in order:
            node._regions = node._rule()

    def _rule(self) -> list[Region]:
        n = self.length
        if self.rule == "input":
            return [(u, u) for u in range(n)]
        if self.rule == "broadcast":
            return [self.parents[0]._regions[0]] * n
        if self.rule == "union":
            return [_hull(p._regions[u] for p in self.parents if u < p.length) for u in range(n)]
        if self.rule == "concat":
            return [r for p in self.parents for r in p._regions][:n]
        if self.rule.startswith("shift"):                # "shift <offset>": the parent's units placed at offset
            offset = int(self.rule.split()[1])
            parent = self.parents[0]
            return [parent._regions[u - offset] if 0 <= u - offset < parent.length else None for u in range(n)]
        parent, reads = self.parents[0], self.reads
        result = []
        for v in range(n):
            m, r = divmod(v, reads.period)
            tap = reads.taps[r]
            if tap is None:
                result.append(None)
                continue
            start, step, count = tap
            start += m * reads.advance
            found = []
            for j in range(count):
                w = reads.inside(start + j * step, parent.length)
                if w is not None:
                    found.append(parent._regions[w])
            result.append(_hull(found))
        return result

    def fills(self, unit: int) -> dict[int, set[str]]:
        """For ``unit``: per input index outside the input that it reaches on the unclipped extension, the
        padding modes (`Reads.border`: 'zeros', 'reflect', ...) of the layers where the paths reaching it first
        read past their layer's input (what fills that position: zeros, mirrored, replicated or wrapped values).

        A walk down the rules carrying per path the mode of its first out-of-range read (None while in range); a
        path out of range goes on along the unclipped extension to the input index it stands for."""
        found: dict[int, set[str]] = {}
        seen: set[tuple[int, int, Optional[str]]] = set()
        stack: list[tuple[FiniteAxis, int, Optional[str]]] = [(self, unit, None)]
        while stack:
            node, u, tag = stack.pop()
            if (id(node), u, tag) in seen:
                continue
            seen.add((id(node), u, tag))
            rule = node.rule
            if rule == "input":
                if tag is not None:
                    found.setdefault(u, set()).add(tag)
            elif rule == "broadcast":
                stack.append((node.parents[0], 0, tag))
            elif rule == "union":
                stack.extend((p, u, tag) for p in node.parents if tag is not None or u < p.length)
            elif rule == "concat":
                offset = 0
                for index, parent in enumerate(node.parents):
                    last = index == len(node.parents) - 1
                    if offset <= u < offset + parent.length or (index == 0 and u < 0) or (last and u >= offset):
                        stack.append((parent, u - offset, tag))
                        break
                    offset += parent.length
            elif rule.startswith("shift"):
                parent, v = node.parents[0], u - int(rule.split()[1])
                if tag is not None or 0 <= v < parent.length:
                    stack.append((parent, v, tag))
            else:
                parent, reads = node.parents[0], node.reads
                m, r = divmod(u, reads.period)
                if reads.taps[r] is None:
                    continue
                start, step, count = reads.taps[r]
                for j in range(count):
                    w = m * reads.advance + start + j * step
                    inside = 0 <= w < parent.length
                    stack.append((parent, w, tag if tag is not None or inside else reads.border))
        return found


def _hull(regions) -> Region:
    lo = hi = None
    for found in regions:
        if found is not None:
            lo = found[0] if lo is None else min(lo, found[0])
            hi = found[1] if hi is None else max(hi, found[1])
    return None if lo is None else (lo, hi)


# --------------------------------------------------------------------------- one axis

@dataclass(frozen=True)
class AxisField:
    """The regions of one layer's units along one axis (see the module docstring).

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


# --------------------------------------------------------------------------- all axes

PathLink = Optional[tuple[str, "PathLink"]]


def _path(link: PathLink) -> tuple[str, ...]:
    names = []
    while link is not None:
        names.append(link[0])
        link = link[1]
    return tuple(reversed(names))


@dataclass(frozen=True)
class Field:
    """The receptive field of one layer's output units with respect to the network input.

    ``whole`` means every output unit sees the whole input (after Linear, Flatten, global pooling): the
    per-axis fields then no longer describe windows. ``misaligned`` marks a merge (here or before) whose inputs
    had different strides or centres. ``max_path``/``min_path``: the layer names (input excluded, this layer
    included) along the single path with the largest/smallest field (see the module docstring).
    """

    axes: tuple[AxisField, ...]
    whole: bool = False
    misaligned: bool = False
    # the paths as linked lists (a name and the link before it): every layer extends its input's path in O(1),
    # where copying tuples made the analysis quadratic in the depth
    max_link: "PathLink" = dataclass_field(default=None, compare=False, repr=False)
    min_link: "PathLink" = dataclass_field(default=None, compare=False, repr=False)
    # Where a merge's inputs do not reach every unit on every axis (bias-only units of a transposed conv, a
    # spatial concat, border units reading only padding), the per-axis union would let an input that sees
    # nothing at a unit widen the unit's other axes: the merge then keeps separable terms, each a tuple of
    # per-axis fields, and a unit's region is the hull over the terms that reach it on every axis. Empty: the
    # per-axis ``axes`` are exact.
    terms: tuple[tuple[AxisField, ...], ...] = dataclass_field(default=(), compare=False, repr=False)
    # A whole field's reach: per axis the hull of the network-input indices its units depend on, which is the
    # whole input unless some input rows never reach any unit before (a VALID conv dropping the last ones);
    # None where the lengths are unknown.
    reach: Optional[tuple[tuple[int, int], ...]] = dataclass_field(default=None, compare=False)
    input_lengths: Optional[tuple[int, ...]] = dataclass_field(default=None, compare=False, repr=False)
    # A whole field made by a reshape that keeps spatial axes (Flatten(start_dim=2) of [C, H, W] -> [C, H*W]): a
    # unit reads one position, or a few after it, in no window order. No per-axis field describes the units; the
    # claim is then only what they reach together (`reach`), not that each sees all of it.
    reshaped: bool = False

    @property
    def separable(self) -> bool:
        """Whether the per-axis fields are exact for every unit (no merge kept separate terms)."""
        return not self.terms

    @staticmethod
    def identity(spatial_dims: int, lengths: Sequence[int] | None = None) -> "Field":
        """The network input's field (unit u sees [u, u]); with the input's ``lengths`` the fields built from it
        also know every unit's exact extent (`extent`)."""
        if lengths is None:
            return Field(tuple(AxisField.identity() for _ in range(spatial_dims)))
        return Field(tuple(replace(AxisField.identity(), finite=FiniteAxis.input(n)) for n in lengths))

    @staticmethod
    def whole_input(reach: Optional[tuple[tuple[int, int], ...]] = None,
                    input_lengths: Optional[Sequence[int]] = None) -> "Field":
        return Field((), whole=True, reach=reach, input_lengths=None if input_lengths is None else tuple(input_lengths))

    def gathered(self) -> "Field":
        """The field of a layer each of whose units reads every unit of this one (Flatten, Linear, global
        pooling): whole, reaching the hull of all units' exact extents (`reach`)."""
        if self.whole:
            return replace(self, reshaped=False) if self.reshaped else self
        if any(axis.finite is None for axis in self.axes):
            return Field.whole_input()
        lengths = [axis.finite.length for axis in self.axes]
        # a term reaches the units of a product of per-axis sets, so the union over all units of the hull of the
        # terms reaching each is, per term that reaches some unit on every axis, its per-axis hull (O(sum of the
        # lengths), where visiting every unit was O(their product))
        hulls = []
        for term in (self.terms or (self.axes,)):
            if any(axis.finite is None for axis in term):
                return Field.whole_input()
            per_axis = tuple(_hull(axis.extent(u) for u in range(n)) for axis, n in zip(term, lengths))
            if all(r is not None for r in per_axis):
                hulls.append(per_axis)
        gathered = Field.whole_input(_reach_union(hulls), [axis.finite.input_length() for axis in self.axes])
        return replace(gathered, max_link=self.max_link, min_link=self.min_link)

    @property
    def partial(self) -> bool:
        """A whole field whose units do not depend on every input position (some reach no unit before)."""
        return (self.whole and self.reach is not None and self.input_lengths is not None
                and any(r != (0, n - 1) for r, n in zip(self.reach, self.input_lengths)))

    def region(self, units: Sequence[int]) -> tuple[Region, ...]:
        """Per axis, the network-input indices [first, last] the unit at ``units`` depends on (None: nothing).

        Unclipped: on an input of length I the unit's support lies inside [max(first, 0), min(last, I-1)]."""
        if self.whole:
            raise ValueError("every unit of a whole-input field sees the whole input")
        if not self.terms:
            return tuple(axis.region(u) for axis, u in zip(self.axes, units))
        return _term_hull([[axis.region(u) for axis, u in zip(term, units)] for term in self.terms], len(self.axes))

    def extent(self, units: Sequence[int]) -> tuple[tuple[int, int], ...] | None:
        """Per axis, the first and last input index the unit at ``units`` of the actual network depends on, or
        None when it depends on no input (borders, padding modes and every layer's length included: with
        positive weights and inputs, exactly the extent of its input-gradient support)."""
        if self.whole:
            raise ValueError("every unit of a whole-input field sees the whole input")
        if not self.terms:
            found = tuple(axis.extent(u) for axis, u in zip(self.axes, units))
        else:
            found = _term_hull([[axis.extent(u) for axis, u in zip(term, units)] for term in self.terms],
                               len(self.axes))
        return None if any(r is None for r in found) else found

    def through(self, reads: Sequence[Reads], lengths: Sequence[int]) -> "Field":
        """The field of a layer whose output units read this field's units as ``reads`` (one per axis)."""
        if self.whole:
            return self
        if len(reads) != len(self.axes):
            return Field.whole_input()
        terms = tuple(tuple(axis.through(r, n) for axis, r, n in zip(term, reads, lengths)) for term in self.terms)
        return replace(self, axes=tuple(axis.through(r, n) for axis, r, n in zip(self.axes, reads, lengths)),
                       terms=terms)

    def through_window(self, kernel: Sequence[int], stride: Sequence[int], pad_lo: Sequence[int],
                       lengths: Sequence[int], dilation: Sequence[int] | None = None,
                       border: str = "zeros", wraps: Sequence[Optional[tuple[int, int]]] | None = None) -> "Field":
        """A sliding window (conv, pool) with per-axis kernel, stride, left pad and dilation; ``border``: F.pad's
        mode for what the padding holds, ``wraps`` per axis a circular pad's cropped range (`Reads.wrap`); both
        change only `extent`."""
        dilation = dilation or [1] * len(kernel)
        wraps = wraps or [None] * len(kernel)
        return self.through([Reads.window(k, s, p, d, border, w)
                             for k, s, p, d, w in zip(kernel, stride, pad_lo, dilation, wraps)], lengths)

    def named(self, name: str) -> "Field":
        """This field as layer ``name``'s: the name ends both paths (the analyzer calls it for every node)."""
        return replace(self, max_link=(name, self.max_link), min_link=(name, self.min_link))

    @property
    def max_path(self) -> tuple[str, ...]:
        """The layer names (input excluded, this layer included) along the path with the largest field."""
        return _path(self.max_link)

    @property
    def min_path(self) -> tuple[str, ...]:
        """The layer names along the path with the smallest field."""
        return _path(self.min_link)

    def center(self, axis: int) -> Fraction:
        """Centre offset of unit 0 on ``axis``: (size-1)/2 - P."""
        return self.axes[axis].centre


def _area(axes: Sequence[AxisField], attribute: str) -> int:
    total = 1
    for axis in axes:
        total *= getattr(axis, attribute)
    return total


def _reach_union(hulls: Sequence[Optional[tuple[Region, ...]]]) -> Optional[tuple[tuple[int, int], ...]]:
    """Per axis the hull of several reaches; None if one is unknown or reaches nothing."""
    if not hulls or any(h is None or any(r is None for r in h) for h in hulls) or len({len(h) for h in hulls}) != 1:
        return None
    return tuple((min(h[a][0] for h in hulls), max(h[a][1] for h in hulls)) for a in range(len(hulls[0])))


def gather(fields: Sequence[Field]) -> Field:
    """Whole fields meeting (or fields no window relates): whole, reaching the union of what each reaches."""
    gathered = [f.gathered() for f in fields]
    lengths = {f.input_lengths for f in gathered}
    whole = Field.whole_input(_reach_union([f.reach for f in gathered]), lengths.pop() if len(lengths) == 1 else None)
    return replace(whole, reshaped=any(f.reshaped for f in fields))     # a reshaped input's units stay unordered


def merge(fields: Sequence[Field], lengths: Sequence[int] | None = None) -> Field:
    """Fields meeting at a merge: per unit the union hull of the inputs' regions (``lengths``: the merge's
    output length per axis, which bounds the period when strides differ). The paths: the input whose widest
    (narrowest) single-path field is largest (smallest), by the product over the axes."""
    if any(f.whole for f in fields) or len({len(f.axes) for f in fields}) != 1:
        return gather(fields)
    if len(fields) == 1:
        return fields[0]
    dims = len(fields[0].axes)
    if lengths is None:
        lengths = [max(f.axes[i].period for f in fields) for i in range(dims)]
    misaligned = any(f.misaligned for f in fields)
    for index in range(dims):
        column = [f.axes[index] for f in fields]
        if len({a.stride for a in column}) > 1 or len({a.centre for a in column}) > 1:
            misaligned = True
    wide = max(fields, key=lambda f: _area([a.widest or a for a in f.axes], "size"))
    narrow = min(fields, key=lambda f: _area([a.narrowest or a for a in f.axes], "size_min"))
    axes = []
    for index in range(dims):
        union = _union([f.axes[index] for f in fields], lengths[index])
        widest = wide.axes[index].widest or wide.axes[index]
        narrowest = narrow.axes[index].narrowest or narrow.axes[index]
        axes.append(replace(union, widest=widest, narrowest=narrowest))
    return Field(tuple(axes), misaligned=misaligned, max_link=wide.max_link, min_link=narrow.min_link,
                 terms=_merged_terms([t for f in fields for t in (f.terms or (f.axes,))], lengths))


def _term_hull(per_term: Sequence[Sequence[Region]], dims: int) -> tuple[Region, ...]:
    """Per axis the hull over the terms that reach the unit on every axis."""
    reaching = [regions for regions in per_term if all(r is not None for r in regions)]
    if not reaching:
        return (None,) * dims
    return tuple(_hull(regions[axis] for regions in reaching) for axis in range(dims))


def _reaches_everywhere(term: Sequence[AxisField]) -> bool:
    """Every unit of the term sees something on every axis (periodically and in the finite network)."""
    for axis in term:
        if any(f is None for f in axis.first):
            return False
        if axis.finite is not None and any(axis.finite.region(u) is None for u in range(axis.finite.length)):
            return False
    return True


def _merged_terms(terms: Sequence[tuple[AxisField, ...]], lengths: Sequence[int]) -> tuple[tuple[AxisField, ...], ...]:
    """The terms of a merge: those reaching every unit on every axis join into one (their per-axis union is
    exact); the others stay apart. () when no term is apart (the merge's per-axis union is exact)."""
    if len(lengths) < 2:
        return ()                                       # one axis: the union is exact
    full = [t for t in terms if _reaches_everywhere(t)]
    apart = [t for t in terms if not _reaches_everywhere(t)]
    if not apart:
        return ()
    joined = (tuple(_union([t[axis] for t in full], lengths[axis]) for axis in range(len(lengths))),) if full else ()
    return joined + tuple(apart)


def concat(fields: Sequence[Field], lengths_in: Sequence[int], axis: int, lengths: Sequence[int]) -> Field:
    """Concatenation along spatial ``axis`` (``lengths_in``: the inputs' lengths along it; ``lengths``: the
    output's per axis): unit u comes from the input whose span holds it, shifted by the lengths before it (one
    period over the whole output); the other axes merge as usual. Misaligned."""
    if any(f.whole for f in fields) or len({len(f.axes) for f in fields}) != 1:
        return gather(fields)
    merged = merge(fields, lengths)
    length = sum(lengths_in)
    regions: list[Region] = []
    for f, n in zip(fields, lengths_in):
        regions += [f.axes[axis].region(u) for u in range(n)]
    stride = fields[0].axes[axis].stride
    joined = _from_regions(length, round(stride * length), regions, stride)
    if all(f.axes[axis].finite is not None for f in fields):
        joined = replace(joined, finite=FiniteAxis(length, [f.axes[axis].finite for f in fields], "concat"))
    terms: list[tuple[AxisField, ...]] = []
    if len(lengths) > 1:                                # each input's units, placed along the concat axis
        offset = 0
        for f, n in zip(fields, lengths_in):
            for term in (f.terms or (f.axes,)):
                column = term[axis]
                spread = [None] * offset + [column.region(u) for u in range(n)] + [None] * (length - offset - n)
                placed = _from_regions(length, round(stride * length), spread, stride)
                if column.finite is not None:
                    placed = replace(placed, finite=FiniteAxis(length, [column.finite], f"shift {offset}"))
                terms.append((*term[:axis], placed, *term[axis + 1:]))
            offset += n
    axes = list(merged.axes)
    axes[axis] = joined
    return replace(merged, axes=tuple(axes), misaligned=True, terms=tuple(terms))
