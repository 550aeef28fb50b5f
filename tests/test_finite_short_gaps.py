"""Short border stretches worked out unit by unit (`FiniteAxis._unit_by_unit`, up to `finite.SHORT_GAP` units) must
give exactly the tables the run sweep gives (`_live_runs`, forced with SHORT_GAP = 0): every unit's extent of every
layer of random chains of windows (with each padding mode), transposed windows, repeats, bins and merges, and of
every zoo spec's layers."""

from __future__ import annotations

import gc

import pytest
from hypothesis import given, settings, strategies as st

import convcalc
import axis_chains
import convcalc.algebra.finite as finite
from convcalc.algebra.field import Field
from convcalc.spec.zoo import zoo_path

step = axis_chains.steps(borders=("zeros", "reflect", "replicate"), copies=False)


def extents(steps, length, short_gap):
    """Every unit's extent of every layer of the chain, its border tables worked out with this SHORT_GAP (the
    chain built anew, so no table of another setting is shared with it: `algebra.twins` keeps axes weakly)."""
    gc.collect()
    original = finite.SHORT_GAP
    finite.SHORT_GAP = short_gap
    try:
        field, n = Field.identity(1, [length]), length
        seen = []
        for kind, *args in steps:
            found = axis_chains.apply(field, n, kind, *args)
            if found is not None:
                field, n = found
                seen.append(field)
        return [tuple(f.axes[0].extent(u) for u in range(f.axes[0].finite.length)) for f in seen]
    finally:
        finite.SHORT_GAP = original


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(step, min_size=1, max_size=7), st.integers(1, 40))
def test_short_gaps_unit_by_unit_equal_the_run_sweep(steps, length):
    assert extents(steps, length, finite.SHORT_GAP) == extents(steps, length, 0)


def _zoo_extents(name: str, short_gap: int):
    gc.collect()
    original = finite.SHORT_GAP
    finite.SHORT_GAP = short_gap
    try:
        summary = convcalc.analyze(convcalc.load_spec(zoo_path(name)))
        found = {}
        for row in summary.layers:
            if row.rf.whole or row.rf.terms:
                continue
            for a, axis in enumerate(row.rf.axes):
                if axis.finite is not None:
                    n = axis.finite.length
                    found[row.name, a] = tuple(axis.extent(u) for u in (*range(min(n, 12)), *range(max(12, n - 12), n)))
        return found
    finally:
        finite.SHORT_GAP = original


@pytest.mark.parametrize("name", ["tiny", "lenet5", "tiled_demo", "unet", "deeplab_aspp", "shufflenet_v2_x1_0",
                                  "dcgan_generator", "inception_v3"])
def test_zoo_border_extents_are_those_of_the_run_sweep(name):
    fast = _zoo_extents(name, finite.SHORT_GAP)
    assert fast and fast == _zoo_extents(name, 0)
