"""What fills the positions one unit reaches outside the input (`FiniteAxis.fill_intervals`): a walk from the unit
down the layers' rules, carrying per path the padding mode of its first out-of-range read (None while in range;
a path out of range goes on along the unclipped extension). The units a layer is reached at are kept as sorted
intervals per mode, so the walk costs intervals, not positions (a 10^9-wide padding is one interval); more than
the phase budget of intervals is refused.
"""

from __future__ import annotations

from typing import Optional

from . import limits

Intervals = list[tuple[int, int]]      # inclusive, sorted, disjoint after `_merged`


def _merged(intervals: Intervals) -> Intervals:
    out: Intervals = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    if len(out) > limits.MAX_PHASES:
        raise limits.too_many_phases(" (positions a unit reaches, as stretches)")
    return out


def _clip(intervals: Intervals, lo: float, hi: float) -> Intervals:
    return [(max(a, lo), min(b, hi)) for a, b in intervals if a <= hi and b >= lo]


def _progressions(m_lo: int, m_hi: int, advance: int, start: int, step: int, count: int) -> Intervals:
    """The units m*advance + start + j*step for m_lo <= m <= m_hi and j < count, as intervals."""
    if m_lo == m_hi or advance == 0:
        base = m_lo * advance + start
        if step == 1 or count == 1:
            return [(base, base + (count - 1) * step)] if step == 1 else [(base, base)]
        _budget(count)
        return [(base + j * step, base + j * step) for j in range(count)]
    copies = m_hi - m_lo + 1
    if step == 1 or count == 1:
        if advance <= count:
            return [(m_lo * advance + start, m_hi * advance + start + count - 1)]
        _budget(copies)
        return [(m * advance + start, m * advance + start + count - 1) for m in range(m_lo, m_hi + 1)]
    if advance == 1:
        _budget(count)
        return [(m_lo + start + j * step, m_hi + start + j * step) for j in range(count)]
    _budget(copies * count)
    return [(m * advance + start + j * step,) * 2 for m in range(m_lo, m_hi + 1) for j in range(count)]


def _budget(count: int) -> None:
    if count > limits.MAX_PHASES:
        raise limits.too_many_phases(" (positions a unit reaches, as stretches)")


def _reads(node, intervals: Intervals) -> list[tuple[Intervals, int]]:
    """For a "reads" node: per run of taps, the intervals of input units the given units read."""
    reads = node.reads
    period, advance = reads.period, reads.advance
    images: Intervals = []
    looked = 0
    for a, b in intervals:
        if b - a + 1 >= period:
            runs = reads.taps.runs()
        else:                                           # the phases a..b cover (possibly wrapping once)
            ra, rb = a % period, b % period
            runs = list(reads.taps.runs(ra, rb + 1)) if ra <= rb else [*reads.taps.runs(ra), *reads.taps.runs(0, rb + 1)]
        for r0, r1, tap in runs:
            looked += 1
            if looked > limits.MAX_TAP_WORK:
                limits.check_work(looked, "the runs of taps a unit's padding is traced through")
            if tap is None:
                continue
            m_lo = -((r1 - 1 - a) // period)            # the m with a phase of r0..r1-1 in a..b
            m_hi = (b - r0) // period
            if m_lo <= m_hi:
                images += _progressions(m_lo, m_hi, advance, *tap)
        if len(images) > 4 * limits.MAX_PHASES:
            images = _merged(images)
    return images


def walk(start, unit: int) -> dict[str, Intervals]:
    """Per padding mode, the input positions ``unit`` of ``start`` (a `FiniteAxis`) reaches through paths whose
    first out-of-range read was at a layer with that mode."""
    order, seen, stack = [], set(), [(start, False)]
    while stack:                                        # post-order over the ancestors, then reversed: every
        node, done = stack.pop()                        # node comes after all the nodes that read it
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((parent, False) for parent in node.parents)
    order.reverse()
    pending: dict[int, dict[Optional[str], Intervals]] = {id(start): {None: [(unit, unit)]}}
    found: dict[str, Intervals] = {}

    def send(parent, tag: Optional[str], intervals: Intervals) -> None:
        if intervals:
            pending.setdefault(id(parent), {}).setdefault(tag, []).extend(intervals)

    for node in order:
        for tag, intervals in pending.pop(id(node), {}).items():
            intervals = _merged(intervals)
            rule = node.rule
            if rule == "input":
                if tag is not None:
                    found.setdefault(tag, []).extend(intervals)
            elif rule == "broadcast":
                send(node.parents[0], tag, [(0, 0)])
            elif rule == "union":
                for parent in node.parents:
                    send(parent, tag, intervals if tag is not None else _clip(intervals, 0, parent.length - 1))
            elif rule == "concat":
                offset, last = 0, len(node.parents) - 1
                for index, parent in enumerate(node.parents):
                    lo = -float("inf") if index == 0 else offset
                    hi = float("inf") if index == last else offset + parent.length - 1
                    send(parent, tag, [(a - offset, b - offset) for a, b in _clip(intervals, lo, hi)])
                    offset += parent.length
            elif rule.startswith("shift"):
                shift, parent = int(rule.split()[1]), node.parents[0]
                moved = [(a - shift, b - shift) for a, b in intervals]
                send(parent, tag, moved if tag is not None else _clip(moved, 0, parent.length - 1))
            else:
                parent = node.parents[0]
                images = _merged(_reads(node, intervals))
                if tag is not None:
                    send(parent, tag, images)
                else:
                    send(parent, None, _clip(images, 0, parent.length - 1))
                    send(parent, node.reads.border, _clip(images, -float("inf"), -1)
                         + _clip(images, parent.length, float("inf")))
    return {tag: _merged(intervals) for tag, intervals in found.items()}


__all__ = ["walk"]
