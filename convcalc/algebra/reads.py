"""What one layer reads: the ``Region``/``Tap`` types and `Reads` (which input units one layer's output unit reads
along one axis, on the unclipped extension: conv/pool windows, transposed-conv residues, resampling positions,
adaptive bins, what a read past the borders gets). The taps per phase are a run-length `Table`, built in time
proportional to its runs (never to a stride, a period or the digits of a scale), within the phase budget. Plain
ints and Fractions; see the ``convcalc.algebra`` docstring for the algebra these build.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor, gcd
from typing import Optional

from . import limits
from .runs import Region, RunBuilder, Table

Tap = Optional[tuple[int, int, int]]      # (start, step, count): the units start + j*step, j < count


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


@dataclass(frozen=True)
class Reads:
    """Which of its input units a layer's output unit reads, along one axis, on the unclipped extension.

    Output unit ``v = m*period + rho`` reads the arithmetic progression ``taps[rho]`` shifted by
    ``m*advance``: units ``m*advance + start + j*step`` for ``j < count`` (None: nothing). ``taps`` is a `Table`
    (a tuple of taps is turned into one).
    """

    period: int
    advance: int
    taps: Table
    border: str = "zeros"      # what a read past the input's ends gets (F.pad's modes): only the exact extent uses it
    # circular with a crop (F.pad crops first, then wraps): the (first, count) input units the wrap cycles through
    wrap: Optional[tuple[int, int]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.taps, Table):
            object.__setattr__(self, "taps", Table.of(self.taps))

    @staticmethod
    def window(k: int, stride: int, pad_lo: int, dilation: int = 1, border: str = "zeros",
               wrap: Optional[tuple[int, int]] = None) -> "Reads":
        """A sliding window (conv, pool, padding): unit v reads v*s - pad_lo + m*d, m < k."""
        return Reads(1, stride, Table.filled(1, (-pad_lo, dilation, k)), border, wrap)

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

    def inside_ranges(self, a: int, b: int, length: int) -> list[tuple[int, int]]:
        """The input units reads of a..b (inclusive) reach (`inside` of each), as inclusive ranges."""
        found = []
        if a <= length - 1 and b >= 0:
            found.append((max(a, 0), min(b, length - 1)))
        outside = [(a, min(b, -1))] if a < 0 else []
        if b >= length:
            outside.append((max(a, length), b))
        for lo, hi in outside:
            if lo > hi:
                continue
            if self.border == "replicate":
                found.append((0, 0) if hi < 0 else (length - 1, length - 1))
            elif self.border == "reflect":
                lo, hi = (-hi, -lo) if hi < 0 else (2 * (length - 1) - hi, 2 * (length - 1) - lo)
                if lo <= length - 1 and hi >= 0:
                    found.append((max(lo, 0), min(hi, length - 1)))
            elif self.border == "circular":
                first, count = self.wrap or (0, length)
                if hi - lo + 1 >= count:
                    wrapped = [(first, first + count - 1)]
                else:
                    start = first + (lo - first) % count
                    end = start + hi - lo
                    wrapped = [(start, end)] if end < first + count else [(start, first + count - 1),
                                                                         (first, end - count)]
                found += [(max(x, 0), min(y, length - 1)) for x, y in wrapped if x <= length - 1 and y >= 0]
        return found

    @staticmethod
    def identity() -> "Reads":
        return Reads(1, 1, Table.filled(1, (0, 1, 1)))

    @staticmethod
    def repeat(factor: int) -> "Reads":
        """Every input unit read by ``factor`` output units in a row (PixelShuffle, nearest upsampling by r)."""
        return Reads(factor, 1, Table.filled(factor, (0, 1, 1)))

    @staticmethod
    def transposed(k: int, stride: int, pad: int, dilation: int = 1) -> "Reads":
        """Transposed convolution: output o reads input j = (o + pad - m*d)/s for the taps m < k that divide
        (an arithmetic progression of step d/gcd(s, d); none when k*d is short of the stride's residues).

        Only the residues some tap lands on are visited: k of them (each tap its own) when k is below
        s/gcd(s, d), else the s/gcd(s, d) that are hit; the residues between are one run of Nones."""
        g = gcd(stride, dilation)
        cycle, step = stride // g, dilation // g       # taps m and m + cycle land on one residue
        if min(k, cycle) > limits.MAX_PHASES:
            if dilation == 1:
                return Reads(stride, 1, _transposed_runs(k, stride, pad))
            raise limits.too_many_phases(f" (a transposed conv of kernel_size {k:,}, stride {stride:,} and"
                                         f" dilation {dilation:,})")
        hits: dict[int, tuple[int, int, int]] = {}
        if k <= cycle:                                  # each tap lands on a residue of its own
            for m in range(k):
                rho = (m * dilation - pad) % stride
                hits[rho] = ((rho + pad - m * dilation) // stride, step, 1)
        else:                                           # every residue with rho + pad divisible by g is hit
            inverse = pow(step, -1, cycle) if cycle > 1 else 0
            residue = (-pad) % g
            for t in range(cycle):
                rho = residue + t * g
                m0 = ((rho + pad) // g * inverse) % cycle if cycle > 1 else 0
                if m0 >= k:
                    continue
                count = (k - 1 - m0) // cycle + 1
                last = m0 + (count - 1) * cycle
                hits[rho] = ((rho + pad - last * dilation) // stride, step, count)
        builder = RunBuilder(detail=f" (a stride of {stride:,})")
        position = 0
        for rho in sorted(hits):
            builder.add(rho - position, None)
            builder.add(1, hits[rho])
            position = rho + 1
        builder.add(stride - position, None)
        return Reads(stride, 1, builder.table())

    @staticmethod
    def bins(length_in: int, length_out: int) -> "Reads":
        """Adaptive pooling: bin j covers [floor(j*I/O), ceil((j+1)*I/O)) (period O/g, advance I/g). Fewer input
        units than bins: the runs of bins that start at one input unit, two per unit (O(I/g))."""
        g = gcd(length_in, length_out)
        period, advance = length_out // g, length_in // g
        builder = RunBuilder(detail=f" (adaptive bins repeat every {period:,} units)")
        if advance >= period:
            if period > limits.MAX_PHASES:
                raise limits.too_many_phases(f" (adaptive bins of {length_in:,} into {length_out:,} repeat every"
                                             f" {period:,} units)")
            for rho in range(period):
                start = rho * length_in // length_out
                builder.add(1, (start, 1, _ceil_div((rho + 1) * length_in, length_out) - start))
        else:
            for j in range(advance):           # bins starting at unit j: rho in [ceil(jO/I), ceil((j+1)O/I))
                lo = _ceil_div(j * period, advance)
                hi = _ceil_div((j + 1) * period, advance)
                single = (j + 1) * period // advance           # rho + 1 <= (j+1)O/I: the bin ends at j + 1
                builder.add(min(single, hi) - lo, (j, 1, 1))
                builder.add(hi - max(single, lo), (j, 1, 2))
        return Reads(period, advance, builder.table())

    @staticmethod
    def sampled(scale: Fraction, offset: Fraction, two: bool, lo: int, hi: int,
                builder: Optional[RunBuilder] = None) -> RunBuilder:
        """The taps of phases lo..hi-1 sampling at x = scale*rho + offset: floor(x), and floor(x) + 1 unless
        ``two`` is false or x falls on a pixel. Appended to ``builder`` run by run: O(runs), the pixels crossed
        (upsampling) or the phases (downsampling), whichever is fewer."""
        builder = builder or RunBuilder()
        if hi <= lo:
            return builder
        if scale == 0:
            start = floor(offset)
            builder.add(hi - lo, (start, 1, 1 if offset == start or not two else 2))
        elif scale < 1:                                      # runs of phases that sample one pixel
            rho, pixel = lo, floor(scale * lo + offset)
            while rho < hi:
                on = (pixel - offset) / scale               # the phase whose sample falls on the pixel
                after = min(hi, ceil((pixel + 1 - offset) / scale))
                if two and on == rho:
                    builder.add(1, (pixel, 1, 1))
                    builder.add(after - rho - 1, (pixel, 1, 2))
                else:
                    builder.add(after - rho, (pixel, 1, 2 if two else 1))
                rho, pixel = after, pixel + 1
        else:                                                # every phase samples pixels of its own
            for rho in range(lo, hi):
                x = scale * rho + offset
                start = floor(x)
                builder.add(1, (start, 1, 1 if x == start or not two else 2))
        return builder

    @staticmethod
    def everything(length: int) -> "Reads":
        """Every unit reads all ``length`` units of the axis (softmax along it)."""
        return Reads(1, 0, Table.filled(1, (0, 1, length)))


def _transposed_runs(k: int, stride: int, pad: int) -> Table:
    """The taps of a transposed conv with dilation 1 and more taps than the budget, by runs: residue rho is hit by
    the taps m = (rho + pad) mod s + t*s < k, whose offsets are consecutive; the first tap m0 and the count change
    only where rho + pad wraps past a multiple of s and where m0 passes k mod s."""
    cuts = {0, stride}
    cuts.add((-pad) % stride)
    cuts.add((k % stride - pad) % stride)
    builder = RunBuilder()
    points = sorted(c for c in cuts if 0 <= c <= stride)
    for lo, hi in zip(points, points[1:]):
        if lo >= hi:
            continue
        m0 = (lo + pad) % stride
        count = (k - 1 - m0) // stride + 1 if m0 < k else 0
        if count == 0:
            builder.add(hi - lo, None)
            continue
        last = m0 + (count - 1) * stride
        builder.add(hi - lo, ((lo + pad - last) // stride, 1, count))
    return builder.table()


__all__ = ["Reads", "Region", "Tap"]
