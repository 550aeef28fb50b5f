"""`proof.terms._drop_contained` (pairs of walks and terms; a walk's term inside another term of the same walk is
dropped): its plain-Python path for a few pairs and its NumPy path against the rule written out, on random sets."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.proof import terms as T


def _by_the_rule(walks, terms, bits):
    sets = [set(np.flatnonzero(np.unpackbits(row)).tolist()) for row in bits]
    keep = [not any(j != i and walks[j] == walks[i] and sets[terms[i]] <= sets[terms[j]] for j in range(len(walks)))
            for i in range(len(walks))]
    return [w for w, k in zip(walks, keep) if k], [t for t, k in zip(terms, keep) if k]


@st.composite
def pairs(draw):
    width = draw(st.integers(1, 20))
    rows = [list(row) for row in draw(st.lists(st.tuples(*[st.booleans()] * width), min_size=1, max_size=12,
                                               unique=True))]
    bits = np.packbits(np.array(rows, dtype=bool), axis=1)
    found = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(0, len(rows) - 1)), min_size=1, max_size=80,
                          unique=True))
    found.sort()
    return np.array([w for w, _ in found]), np.array([t for _, t in found]), bits


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_both_paths_drop_exactly_the_contained_terms(case):
    walks, terms, bits = case
    expected = _by_the_rule(walks.tolist(), terms.tolist(), bits)
    small = T._drop_contained_small(walks, terms, bits)
    saved, T.SMALL_JOIN = T.SMALL_JOIN, -1
    try:
        large = T._drop_contained(walks, terms, bits)
    finally:
        T.SMALL_JOIN = saved
    assert (small[0].tolist(), small[1].tolist()) == expected
    assert (large[0].tolist(), large[1].tolist()) == expected


@st.composite
def contributions(draw):
    lengths = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3))     # the batchless dims
    parts = []
    for _ in range(draw(st.integers(2, 4))):
        count = draw(st.integers(1, 5))
        dims = tuple(np.array(draw(st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=count,
                                            max_size=count)), dtype=bool).reshape(count, n) for n in lengths)
        found = sorted(set(draw(st.lists(st.tuples(st.integers(0, 5), st.integers(0, count - 1)), min_size=1,
                                         max_size=12))))
        parts.append(T.Terms(np.array([w for w, _ in found]), np.array([t for _, t in found]), dims))
    return parts


def _unions(terms):
    """Per walk the union of its terms' products, as a set of index tuples (the rule written out)."""
    found = {}
    for walk, term in zip(terms.walks.tolist(), terms.terms.tolist()):
        sets = [np.flatnonzero(d[term]).tolist() for d in terms.dims]
        cells = {()}
        for s in sets:
            cells = {c + (i,) for c in cells for i in s}
        found.setdefault(walk, set()).update(cells)
    return {walk: cells for walk, cells in found.items() if cells}


@settings(max_examples=200, deadline=None)
@given(contributions())
def test_joined_small_and_numpy_paths_give_the_same_terms_and_the_union(parts):
    expected = {}
    for part in parts:
        for walk, cells in _unions(part).items():
            expected.setdefault(walk, set()).update(cells)
    small = T.joined(parts)
    saved, T.SMALL_JOIN = T.SMALL_JOIN, -1
    try:
        large = T.joined(parts)
    finally:
        T.SMALL_JOIN = saved
    assert _unions(small) == expected
    assert small.walks.tolist() == large.walks.tolist() and small.terms.tolist() == large.terms.tolist()
    assert all(np.array_equal(a, b) for a, b in zip(small.dims, large.dims))


@settings(max_examples=200, deadline=None)
@given(contributions(), st.booleans())
def test_side_by_side_gives_the_union_or_declines(parts, spread):
    """`side_by_side` (the sweep's shortcut before `joined`): where every walk has one term and is in one part, the
    same union per walk as the rule written out; else None (``spread``: the walks made one per pair, renumbered
    apart across the parts, so that the shortcut applies)."""
    if spread:
        first = 0
        for i, part in enumerate(parts):
            parts[i] = T.Terms(np.arange(first, first + len(part.walks)), part.terms, part.dims)
            first += len(part.walks)
    expected = {}
    for part in parts:
        for walk, cells in _unions(part).items():
            expected.setdefault(walk, set()).update(cells)
    found = T.side_by_side(parts)
    walks = [w for part in parts for w in part.walks.tolist()]
    applies = len(set(walks)) == len(walks) and len(walks) <= T.SMALL_JOIN
    assert (found is not None) == applies
    if spread:
        assert found is not None
    if found is not None:
        assert _unions(found) == expected
        assert sorted(found.walks.tolist()) == sorted(walks)
