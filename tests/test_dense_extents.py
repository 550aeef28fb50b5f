"""The border stretches worked out with NumPy (`convcalc.algebra.dense`) against two oracles: autograd (every unit
of every layer, test_receptive_exact's `check_all_layers`), and the run-by-run path (`FiniteAxis._stretch` below
`dense.DENSE` units) that the tables must equal run for run. Random chains and merged graphs (hypothesis, small
inputs: every stretch taken with NumPy by setting DENSE to 1), a causal dilated stack whose stretches are long at
the default, and a proof that still catches a wrong extent."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from test_receptive_exact import SETTINGS, builds, chains, check_all_layers, graphs  # noqa: E402
from test_receptive_field import analyze  # noqa: E402

import convcalc  # noqa: E402
from convcalc.algebra import dense, finite  # noqa: E402


def _tables(input_shape, layers, threshold: int) -> list:
    """Every finite axis's border-stretch tables, worked out with NumPy from ``threshold`` units on."""
    saved = finite.DENSE
    finite.DENSE = threshold
    try:
        summary = analyze(input_shape, layers)
        return [(row.name, axis.finite._tables_now()) for row in summary.layers if not row.rf.whole
                for axis in row.rf.axes if axis.finite is not None]
    finally:
        finite.DENSE = saved


def _same_tables(input_shape, layers) -> None:
    slow = _tables(input_shape, layers, 10 ** 12)
    fast = _tables(input_shape, layers, 1)
    assert slow == fast


@contextmanager
def every_stretch_dense():
    saved = finite.DENSE
    finite.DENSE = 1
    try:
        yield
    finally:
        finite.DENSE = saved


@settings(max_examples=150, **SETTINGS)
@given(chains(1))
def test_random_chains_match_the_run_by_run_tables(network):
    _same_tables(*network)


@settings(max_examples=100, **SETTINGS)
@given(st.data())
def test_random_graphs_match_the_run_by_run_tables(data):
    input_shape, layers = data.draw(graphs(data.draw(st.sampled_from([1, 1, 2]))))
    if layers is None or builds(input_shape, layers) is None:
        return
    _same_tables(input_shape, layers)


@settings(max_examples=60, **SETTINGS)
@given(chains(1))
def test_random_chains_with_numpy_stretches_match_autograd(network):
    with every_stretch_dense():
        check_all_layers(*network)


@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_random_graphs_with_numpy_stretches_match_autograd(data):
    input_shape, layers = data.draw(graphs(1))
    if layers is None or builds(input_shape, layers) is None:
        return
    with every_stretch_dense():
        check_all_layers(input_shape, layers)


def _causal_stack(length: int, dilations, mode: str = "zeros") -> tuple[tuple[int, int], list[dict]]:
    """WaveNet's shape: width-2 convs after d zeros on the left only (a ConstantPad1d, as autograd's oracle takes
    it), each added to its input (other padding modes: width 3, padded d on both sides)."""
    layers: list[dict] = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "padding": 1, "name": "c"}]
    previous = "c"
    for index, d in enumerate(dilations):
        if mode == "zeros":
            layers.append({"type": "ConstantPad1d", "padding": [d, 0], "value": 0.0, "name": f"p{index}",
                           "from": previous})
            conv = {"type": "Conv1d", "out_channels": 1, "kernel_size": 2, "dilation": d, "from": f"p{index}"}
        else:
            conv = {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "dilation": d, "padding": d,
                    "padding_mode": mode, "from": previous}
        layers += [{**conv, "name": f"g{index}"}, {"type": "Add", "from": [f"g{index}", previous], "name": f"a{index}"}]
        previous = f"a{index}"
    return (1, length), layers


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_a_long_causal_stack_takes_numpy_stretches_and_matches_autograd(mode):
    """Stretches of hundreds of border units (beyond `dense.DENSE`), every unit of every layer against autograd,
    and the tables as the run-by-run path builds them."""
    input_shape, layers = _causal_stack(200, [1, 2, 4, 8, 16, 32, 1, 2, 4, 8], mode)
    summary = analyze(input_shape, layers)
    summary.layers[-1].rf.extent((0,))           # works out every layer's border stretches
    assert any(isinstance(table, dense.ArrayTable) for row in summary.layers for axis in row.rf.axes
               for table in axis.finite._tables_now()), "no stretch took NumPy"
    _, counts = check_all_layers(input_shape, layers)
    assert counts["units"] > 0
    _same_tables(input_shape, layers)


def test_the_proof_catches_a_wrong_numpy_extent(monkeypatch):
    """One unit's extent moved in the NumPy stretches: `run --rf-check` (verify_fields) must report that layer."""
    input_shape, layers = _causal_stack(300, [1, 2, 4, 8, 16, 32, 64])
    spec = convcalc.spec_from_dict({"name": "t", "input": list(input_shape), "layers": layers})
    original = dense.stretch_arrays

    def shifted(axis, a, b):
        found = original(axis, a, b)
        if found is not None and axis.rule == "union":
            low, high, live = (array.copy() for array in found)
            high[live] += 1                      # every live border unit claims one more input position
            return low, high, live
        return found

    checks = convcalc.verify_fields(convcalc.analyze(spec))
    assert all(check.ok for check in checks)
    monkeypatch.setattr(dense, "stretch_arrays", shifted)
    finite._KNOWN.clear()
    checks = convcalc.verify_fields(convcalc.analyze(spec))
    wrong = [check for check in checks if not check.ok]
    assert wrong and "the analysis says" in wrong[0].detail
