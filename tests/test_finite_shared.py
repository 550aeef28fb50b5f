"""Border tables that one finite axis takes from another (`FiniteAxis._tables_now`): from an equal axis (`algebra.twins`:
the two axes of a square input, layer by layer, or an equal axis of another analysis still alive) and from the
layer below where each unit reads the same unit and nothing else (a 1x1 conv). Oracles: autograd (every unit of
every layer, test_receptive_exact's `check_all_layers`), and each axis's own run-by-run tables (`_stretch` from
its parents' tables), which the taken tables must equal: by induction from the input, every table is then the one
worked out without sharing."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from test_receptive_exact import SETTINGS, builds, check_all_layers, draw_chain  # noqa: E402
from test_receptive_field import analyze  # noqa: E402

from convcalc.algebra import finite  # noqa: E402


def _axes(summary) -> list:
    return [axis.finite for row in summary.layers if not row.rf.whole for axis in row.rf.axes
            if axis.finite is not None]


def _own_tables_agree(summary) -> int:
    """Every axis's tables (shared or not) against its own `_stretch`es; how many were taken from another axis."""
    taken = 0
    for axis in _axes(summary):
        tables = axis._tables_now()
        if axis.rule == "broadcast":
            continue
        own = [axis._stretch(a, b) for a, b in axis.gaps]
        assert tables == own, (axis.layer, axis.rule, axis.gaps)
        taken += any(t is not o for t, o in zip(tables, own))
    return taken


@st.composite
def square_chains(draw):
    n = draw(st.integers(8, 14))
    input_shape = (1, n, n)
    layers = draw_chain(draw, 2, input_shape, draw(st.integers(1, 4)))
    return input_shape, layers or [{"type": "ReLU"}]


@settings(max_examples=60, **SETTINGS)
@given(square_chains())
def test_square_inputs_every_unit(network):
    summary, _ = check_all_layers(*network)
    _own_tables_agree(summary)


@settings(max_examples=40, **SETTINGS)
@given(square_chains(), st.integers(-3, 3))
def test_an_equal_network_alive_lends_its_tables(network, change):
    """Two analyses alive at once, the second of the same layers on an input ``change`` units taller: equal axes
    (all of them, or the width only) take the first's tables, and every unit still matches autograd."""
    input_shape, layers = network
    first = analyze(input_shape, layers)
    _own_tables_agree(first)
    taller = (1, max(input_shape[1] + change, 2), input_shape[2])
    if builds(taller, layers) is None:                    # a layer PyTorch refuses at the other height
        return
    summary, _ = check_all_layers(taller, layers)
    _own_tables_agree(summary)
    del first


def test_a_square_stack_shares_and_a_taller_one_does_not():
    """Padded 3x3 convs with a 1x1 conv between: on a square input the second axis takes the first's tables at
    every layer with border stretches, the 1x1 conv its input's; on a 9x13 input the lengths differ and so do the
    tables (nothing taken across the axes)."""
    layers = [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1, "stride": 2},
              {"type": "Conv2d", "out_channels": 2, "kernel_size": 1},
              {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 2, "dilation": 2}]
    square, _ = check_all_layers((1, 13, 13), layers)
    rows = [row.rf.axes for row in square.layers]
    for height, width in rows:
        assert height.finite._tables_now() is width.finite._tables_now()
    assert rows[1][0].finite._tables_now() is rows[0][0].finite._tables_now()       # the 1x1 conv
    assert _own_tables_agree(square) > 0
    tall, _ = check_all_layers((1, 9, 13), layers)
    for height, width in (row.rf.axes for row in tall.layers):
        assert height.finite._tables_now() is not width.finite._tables_now()
    _own_tables_agree(tall)
