"""The proof's choice of units on a short axis (`measure._choose_run_short`, plain Python) against its NumPy path
(`_choose_run_all` past `SHORT`), with and without its first tries near the middle (`FIRST_TRIES`), and against
the rule written out (every start whose units all pass the first test that any start passes, the one nearest the
middle, the lower on a tie), on random chains and merged graphs."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from test_receptive_exact import SETTINGS, builds, chains, graphs  # noqa: E402
from test_receptive_field import analyze  # noqa: E402

from convcalc.proof import measure  # noqa: E402
from convcalc.proof.hulls import _spatial  # noqa: E402


def _by_the_rule(axis, out: int, length: int, count: int) -> list[int]:
    regions = [axis.region(u) for u in range(out)]
    tests = (lambda r: r is not None and r[0] >= 0 and r[1] <= length - 1, lambda r: r is not None and r[0] >= 0,
             lambda r: r is not None and r[1] <= length - 1, lambda r: r is not None)
    for test in tests:
        starts = [s for s in range(out - count + 1) if all(test(regions[u]) for u in range(s, s + count))]
        if starts:
            start = min(starts, key=lambda s: (abs(2 * s - (out - count)), s))
            return list(range(start, start + count))
    start = min(range(out - count + 1), key=lambda s: (abs(2 * s - (out - count)), s))
    return list(range(start, start + count))


def _compare(input_shape, layers) -> None:
    summary = analyze(input_shape, layers)
    lengths = summary.input_shape[1:]
    for row in summary.layers:
        spatial = _spatial(row.rf, row.output_shape)
        if row.rf.whole or len(spatial) != len(row.rf.axes) or len(spatial) != len(lengths):
            continue
        for a, axis in enumerate(row.rf.axes):
            for budget in (24, 2):
                out = spatial[a]
                count = min(axis.period + 1, out, budget)
                short = measure._choose_run_short(axis, out, lengths[a], count)
                saved, measure.FIRST_TRIES = measure.FIRST_TRIES, 0       # no start tried before the full scan
                try:
                    scanned = measure._choose_run_short(axis, out, lengths[a], count)
                finally:
                    measure.FIRST_TRIES = saved
                saved, measure.SHORT = measure.SHORT, -1
                try:
                    long = measure._choose_run_all(axis, out, lengths[a], count)
                finally:
                    measure.SHORT = saved
                assert short == scanned == long == _by_the_rule(axis, out, lengths[a], count), (row.name, a)


@settings(max_examples=100, **SETTINGS)
@given(chains(1))
def test_short_axes_choose_the_same_run(network):
    _compare(*network)


@settings(max_examples=60, **SETTINGS)
@given(st.data())
def test_short_axes_of_merged_graphs_choose_the_same_run(data):
    input_shape, layers = data.draw(graphs(data.draw(st.sampled_from([1, 2]))))
    if layers is None or builds(input_shape, layers) is None:
        return
    _compare(input_shape, layers)
