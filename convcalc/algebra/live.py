"""`surely_live`: a cheap, sound proof that every unit of a `FiniteAxis` sees some input, worked out when the axis
is built from its parents' flags, the reads' taps and the border stretches already known, so that
`FiniteAxis.everywhere` need not build the border tables to say so. False means "not proven" (the tables decide).

A reads rule's unit away from the border stretches (``gaps``) reads only real units of the layer below (its taps'
span lies within it); one in a gap sees something when some tap lands on a real unit (`Reads.inside`). Either way,
when every unit below sees something (its own flag), so does the unit, unless its phase has no tap. Mostly that is
decided by the taps alone (no `dead` stretch, taps no further apart than the axis below is long); else copy by copy
over the gaps, within a budget.
"""

from __future__ import annotations

from typing import Any

WORK = 4096         # the most (copy, run of taps) pairs looked at; past it the flag is left unproven


def surely_live(axis: Any) -> bool:
    """Whether every unit 0..length-1 of ``axis`` provably depends on some input (False: not proven)."""
    rule, n, parents = axis.rule, axis.length, axis.parents
    if rule == "input":
        return True
    if axis.dead:
        return False
    if rule == "broadcast":
        return parents[0].sure and parents[0].length > 0
    if rule == "union":                                 # one parent covering every unit and seeing something there
        return any(p.sure and p.length >= n for p in parents)
    if rule == "concat":
        return all(p.sure for p in parents) and sum(p.length for p in parents) >= n
    if rule.startswith("shift"):                        # unit u is unit u - offset below
        offset, parent = int(rule.split()[1]), parents[0]
        return parent.sure and offset <= 0 and n - 1 - offset < parent.length
    return _reads_live(axis)


def _reads_live(axis: Any) -> bool:
    parent, reads, n = axis.parents[0], axis.reads, axis.length
    if not parent.sure or parent.length <= 0:
        return False
    period, advance = reads.period, reads.advance
    runs = list(reads.taps.runs(0, min(period, n)))
    if any(tap is None for _, _, tap in runs):          # a phase that reads nothing
        return False
    if _spans_decide(reads, runs, parent.length):
        return True                                     # no dead stretch (checked above): every unit reads one
    work = 0
    for a, b in axis.gaps:
        copies = range(a // period, (b - 1) // period + 1) if advance else range(a // period, a // period + 1)
        work += len(copies) * len(runs)
        if work > WORK:
            return False
        for m in copies:
            for r0, r1, tap in runs:
                if advance and (m * period + r1 <= a or m * period + r0 >= b):
                    continue                            # this run's units of copy m lie outside the gap
                if not _lands(reads, tap, m * advance, parent.length):
                    return False
    return True


def _spans_decide(reads: Any, runs: list, length: int) -> bool:
    """Whether a unit reads a real unit below exactly when its taps' span does not lie within the padding (the
    `dead` stretches, with every unit below seeing something): zero padding with taps no further apart than the
    axis below is long (a span meeting the axis then has a tap on it), or a padding mode that always reads a real
    unit (replicate; circular within the axis)."""
    if reads.border == "zeros":
        return all(count == 1 or 0 < step <= length for _, _, (_, step, count) in runs)
    if reads.border == "replicate":
        return True
    if reads.border == "circular":
        first, count = reads.wrap or (0, length)
        return 0 <= first and 0 < count and first + count <= length
    return False


def _lands(reads: Any, tap: tuple[int, int, int], shift: int, length: int) -> bool:
    """Whether some unit the tap reads, shifted by ``shift``, is a real unit of an axis of ``length``."""
    start, step, count = tap
    start += shift
    if reads.border == "zeros" and step > 0:            # the first tap at or past 0 is below length
        first = 0 if start >= 0 else -(start // step)
        return first < count and start + first * step < length
    if count > 64:
        return False                                    # not proven
    return any(reads.inside(start + j * step, length) is not None for j in range(count))


def surely_full(axis: Any) -> bool:
    """Whether the units of ``axis`` together provably reach every unit of the network input (its `reach` is then
    the whole input; False: not proven). A layer reading every unit of a full layer below is full (each extent
    below is in some unit's); a merge or concatenation is full when one of its inputs is and all of that input's
    units are kept."""
    rule, n, parents = axis.rule, axis.length, axis.parents
    if rule == "input":
        return n > 0
    if rule == "union":
        return any(p.full and p.length <= n for p in parents)
    if rule == "concat":
        return any(p.full for p in parents) and sum(p.length for p in parents) <= n
    if rule.startswith("shift"):
        offset, parent = int(rule.split()[1]), parents[0]
        return parent.full and offset >= 0 and offset + parent.length <= n
    if rule == "broadcast" or not parents[0].full or n <= 0:
        return False
    reads, length = axis.reads, parents[0].length
    runs = list(reads.taps.runs(0, min(reads.period, n)))
    if reads.period != 1 or len(runs) != 1 or runs[0][2] is None:
        return False
    start, step, count = runs[0][2]                     # unit m reads m*advance + start + j*step, j < count
    if reads.advance == 1 and (count == 1 or 0 < step <= n):
        last = n - 1 + start + (count - 1) * step       # the shifted copies fill every position between
    elif step == 1 and count >= reads.advance > 0:
        last = (n - 1) * reads.advance + start + count - 1
    else:
        return False
    return start <= 0 and last >= length - 1
