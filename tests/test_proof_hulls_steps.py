"""Two per-layer shortcuts of the proof's sweep against the rule written out:

* `_Sweep.hulls` (per walk, per spatial axis, the first and last input position its terms reach; None where
  nothing arrives), built column by column: against the hull of each walk's union of products, cell by cell, for
  inputs of one, two and three spatial axes (and none).
* `proof.steps`: shared gathers, small and large, step as brute force says, and a relation that reads
  position i alone for every i (a 1x1 window) hands the sets back unchanged; a permutation does not.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from term_sets import nonempty_rows

from convcalc.layers.factors import gather_relation, window_relation
from convcalc.proof import steps
from convcalc.proof.dependency import _Sweep
from convcalc.proof.terms import Terms
from convcalc.spec.graph import INPUT


@st.composite
def arrivals(draw):
    spatial = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))
    shape = (draw(st.integers(1, 3)), *spatial)
    count = draw(st.integers(1, 5))
    dims = []
    for n in shape:
        dims.append(nonempty_rows(draw, count, n))
    start = draw(st.integers(1, 7))
    pairs = sorted(set(draw(st.lists(st.tuples(st.integers(0, start - 1), st.integers(0, count - 1)),
                                     min_size=1, max_size=12))))
    return shape, start, Terms(np.array([w for w, _ in pairs]), np.array([t for _, t in pairs]), tuple(dims))


@settings(max_examples=200, deadline=None)
@given(arrivals())
def test_hulls_are_each_walks_extent(case):
    shape, start, terms = case
    sweep = _Sweep(SimpleNamespace(shapes={INPUT: shape}), None, start)
    sweep.terms[INPUT] = [terms]
    found = sweep.hulls(start)
    expected: list = [None] * start
    for walk, term in zip(terms.walks.tolist(), terms.terms.tolist()):
        marked = [np.flatnonzero(d[term]).tolist() for d in terms.dims[1:]]
        hull = tuple((min(m), max(m)) for m in marked)
        old = expected[walk]
        expected[walk] = hull if old is None else tuple((min(a, c), max(b, d)) for (a, b), (c, d) in zip(old, hull))
    assert found == expected
    assert all(h is None or (type(h) is tuple and all(type(p) is tuple and type(p[0]) is int for p in h))
               for h in found)


def brute(relation, sets: np.ndarray, n_in: int) -> np.ndarray:
    result = np.zeros((len(sets), n_in), dtype=bool)
    for q, row in enumerate(relation.index):
        for p in row:
            if p >= 0:
                result[:, p] |= sets[:, q]
    return result


@pytest.mark.parametrize("n", [7, 300])
def test_shared_gathers_step_equal_brute_force(n):
    """Gathers (one read-only object per content, its forms kept with it), small and large, stepped twice."""
    rng = np.random.default_rng(n)
    sets = rng.random((5, n)) < 0.3
    for source in (rng.permutation(n), np.where(rng.random(n) < 0.3, -1, rng.integers(0, n, n)),
                   np.arange(n) // 2, np.arange(n)):
        relation = gather_relation(n, source)
        assert steps.step(relation, sets, n) is not None
        assert relation is gather_relation(n, source.tolist())
        got = steps.step(relation, sets, n)
        assert np.array_equal(got, brute(relation, sets, n))


def test_the_identity_gives_the_sets_back_and_a_permutation_does_not():
    sets = np.random.default_rng(0).random((4, 9)) < 0.5
    for identity in (window_relation(9, 9, 1, 1, 1, 0, 0, "zeros"), gather_relation(9, np.arange(9))):
        assert steps.step(identity, sets, 9) is sets
    permutation = gather_relation(9, [1, 0, *range(2, 9)])
    got = steps.step(permutation, sets, 9)
    assert got is not sets and np.array_equal(got, sets[:, [1, 0, *range(2, 9)]])
    wider = window_relation(12, 9, 1, 1, 1, 0, 0, "zeros")           # reads 0..8 of 12: not the identity
    got = steps.step(wider, sets, 12)
    assert got.shape == (4, 12) and np.array_equal(got, brute(wider, sets, 12))


def test_a_long_gather_is_built_anew_not_kept(monkeypatch):
    """Gathers past GATHER_KEPT positions are not cached (256 of them would outlive the run), and step alike."""
    from convcalc.layers import factors
    monkeypatch.setattr(factors, "GATHER_KEPT", 8)
    rng = np.random.default_rng(3)
    source, sets = rng.permutation(20), rng.random((4, 20)) < 0.3
    first, second = gather_relation(20, source), gather_relation(20, source)
    assert first is not second and not first.index.flags.writeable
    assert np.array_equal(steps.step(first, sets, 20), brute(first, sets, 20))
    short = gather_relation(6, np.arange(6))
    assert short is gather_relation(6, np.arange(6))
