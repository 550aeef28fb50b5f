"""`AxisField.through` of reads that copy each unit (a 1x1 conv's, an elementwise layer's) takes `_copied`, which
keeps the field's period, table and stride instead of working the regions out again: it must give exactly what
`_through` gives (the slow path, `_copies` forced False), paths, cut flags and border extents included, over random
chains of windows, transposed windows, bins, repeats and merges, at lengths that force a cut too."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

import axis_chains
import convcalc.algebra.axis_field as axis_field
from convcalc.algebra.field import Field
from convcalc.algebra.reads import Reads


def core(a):
    if a is None:
        return None
    return (a.period, a.advance, a.table, a.stride, a.cut)


def described(a):
    """Everything a field says: its own numbers, its paths' and each unit's exact extent where it knows them."""
    finite = a.finite
    extents = None if finite is None else tuple(a.extent(u) for u in range(finite.length))
    return (core(a), core(a.widest), core(a.narrowest), a.size, a.size_min, a.path_size_max, a.path_size_min,
            extents, tuple(a.region(u) for u in range(-3, 40)))


step = axis_chains.steps()


def build(steps, length, slow):
    original = axis_field._copies
    if slow:
        axis_field._copies = lambda reads: False
    try:
        field, n = Field.identity(1, [length]), length
        for kind, *args in steps:
            found = axis_chains.apply(field, n, kind, *args)
            if found is not None:
                field, n = found
            field = field.through([Reads.identity()], [n])     # every step followed by a copy
        return field, n
    finally:
        axis_field._copies = original


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(step, min_size=1, max_size=7), st.integers(1, 40))
def test_copied_is_through(steps, length):
    fast, n = build(steps, length, slow=False)
    slow, m = build(steps, length, slow=True)
    assert n == m
    assert fast == slow
    for a, b in zip(fast.axes, slow.axes):
        assert described(a) == described(b)


def test_the_shortcut_is_taken():
    """The copy of a periodic field (a stride-2 transposed conv's) takes `_copied`, not `_through`."""
    field = Field.identity(1, [10]).through([Reads.transposed(3, 2, 1)], [19])
    calls = []
    original = axis_field.AxisField._through
    axis_field.AxisField._through = lambda self, *a: calls.append(1) or original(self, *a)
    try:
        copied = field.through([Reads.identity()], [19])
    finally:
        axis_field.AxisField._through = original
    assert not calls and copied.axes[0].period == field.axes[0].period == 2
    assert [copied.axes[0].extent(u) for u in range(19)] == [field.axes[0].extent(u) for u in range(19)]
