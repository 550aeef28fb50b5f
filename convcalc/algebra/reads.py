"""The reads of one layer and their exact reach in the finite network: the ``Region``/``Tap`` types, `Reads` (which
input units one layer's output unit reads along one axis, on the unclipped extension: conv/pool windows, transposed-conv
residues, resampling positions, adaptive bins, what a read past the borders gets) and `FiniteAxis` (every unit's exact
first and last input index along one axis of the actual network, borders, padding modes and lengths included, computed
on demand), with the region hull they share. Plain ints and Fractions; see the ``convcalc.algebra`` docstring for the
algebra these build.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import floor, gcd
from typing import Optional, Sequence

Region = Optional[tuple[int, int]]        # (first, last) input index, or None: the unit reads nothing
Tap = Optional[tuple[int, int, int]]      # (start, step, count): the units start + j*step, j < count


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
