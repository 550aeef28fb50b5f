"""The proof's shortcuts that skip work which provably changes nothing (`proof.terms`, `proof.steps`), each against
the slow path or the rule written out, on random sets:

* `Terms.reduced` (no walk holds two terms alike or one inside the other): `joined` of reduced contributions whose
  walks are apart, or whose sets along some dim cover disjoint positions, puts them one after the other, with
  per walk the same union as the full join (every flag cleared); elsewhere the same arrays; its flag is true.
* `stepped` keeps the flag only through one-to-one relations (or where each walk holds one pair: ``single``, which
  every step keeps), and then it is true (checked by brute force); it skips the non-empty test of a total relation
  and gives the same terms as with that test forced.
* `steps.traits` (total, one-to-one) against the relation's cells; a gather is one read-only object per content.
* `_drop_contained`'s cheap tests before the bit-for-bit one (fewer marks, the first mark) and its first pass
  against each walk's largest term, and its pairs k apart: the same drops as the rule, on sets built so that
  those decide (nested, disjoint, empty terms, over one 64-bit word, several, or rows long enough to be tested
  row by row), with and without that pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from term_sets import nonempty_rows

from convcalc.layers.factors import (EVERY, Factors, Taps, band_relation, bins_relation, gather_relation,
                                     window_relation)
from convcalc.proof import steps as S
from convcalc.proof import terms as T
from convcalc.proof.steps import _Matrix, traits


def _is_reduced(terms: T.Terms) -> bool:
    """No walk holds two pairs whose terms are alike or one inside the other (every dim's set inside), by brute
    force."""
    rows = [np.concatenate([d[t] for d in terms.dims]) for t in range(terms.count)]
    pairs = list(zip(terms.walks.tolist(), terms.terms.tolist()))
    for i, (walk, first) in enumerate(pairs):
        for j, (other, second) in enumerate(pairs):
            if i != j and walk == other and not (rows[first] & ~rows[second]).any():
                return False
    return True


def _is_single(terms: T.Terms) -> bool:
    return len(set(terms.walks.tolist())) == len(terms.walks)


def _is_distinct(terms: T.Terms) -> bool:
    rows = {tuple(np.concatenate([d[t] for d in terms.dims]).tolist()) for t in range(terms.count)}
    return len(rows) == terms.count


def _is_disjoint(terms: T.Terms, d: int) -> bool:
    """Each walk's terms hold non-empty sets pairwise apart along dim d."""
    sets = terms.dims[d]
    by_walk: dict[int, list[int]] = {}
    for walk, term in zip(terms.walks.tolist(), terms.terms.tolist()):
        by_walk.setdefault(walk, []).append(term)
    for held in by_walk.values():
        if len(held) > 1 and (not sets[held].any(axis=1).all() or (sets[held].sum(axis=0) > 1).any()):
            return False
    return True


def _flags_true(terms: T.Terms) -> bool:
    return ((not terms.reduced or _is_reduced(terms)) and (not terms.single or _is_single(terms))
            and (not terms.distinct or _is_distinct(terms))
            and (terms.disjoint is None or _is_disjoint(terms, terms.disjoint)))


def _unions(terms: T.Terms) -> dict[int, set]:
    """Per walk the union of its terms' products, as a set of index tuples."""
    found: dict[int, set] = {}
    for walk, term in zip(terms.walks.tolist(), terms.terms.tolist()):
        cells = {()}
        for d in terms.dims:
            cells = {c + (i,) for c in cells for i in np.flatnonzero(d[term]).tolist()}
        found.setdefault(walk, set()).update(cells)
    return {walk: cells for walk, cells in found.items() if cells}


def _same(first: T.Terms, second: T.Terms) -> bool:
    return (np.array_equal(first.walks, second.walks) and np.array_equal(first.terms, second.terms)
            and all(np.array_equal(a, b) for a, b in zip(first.dims, second.dims)))


def _cleared(part: T.Terms) -> T.Terms:
    return T.Terms(part.walks, part.terms, part.dims)


@st.composite
def contributions(draw, nested: bool = False):
    """2-4 contributions over the same dims; walks apart (each its own id range) or shared; the first dim's sets
    of each contribution over its own positions (mostly) or not; each contribution's flag set where it is true
    (``nested``: its terms grow, so that many nest); sets non-empty, as the sweep's, but now and then not."""
    lengths = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3))
    apart = draw(st.booleans())
    lengths[0] = max(lengths[0], draw(st.sampled_from([1, 3])))
    single = draw(st.booleans())             # one term a walk in each contribution (so reduced)
    split = draw(st.booleans())              # the first dim's positions dealt out to the parts, some shared
    parts, first = [], 0
    for number in range(draw(st.integers(2, 4))):
        count = draw(st.integers(1, 6))
        dims = []
        for d, n in enumerate(lengths):
            rows = np.array(draw(st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=count,
                                          max_size=count)), dtype=bool).reshape(count, n)
            if nested:
                rows = np.logical_or.accumulate(rows, axis=0)
            own = np.arange(n)
            if split and d == 0 and n >= 3:
                mine = np.arange(n) % 3 == number % 3
                rows &= mine | (np.arange(n) == draw(st.integers(0, 8 * n)))     # now and then a shared one
                own = np.flatnonzero(mine)
            if draw(st.integers(0, 9)):
                rows[np.arange(count), own[draw(st.lists(st.integers(0, len(own) - 1), min_size=count,
                                                         max_size=count))]] = True
            dims.append(rows)
        found = sorted(set(draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, count - 1)), min_size=1,
                                         max_size=12))))
        if single:                                                       # one term a walk: reduced
            found = [pair for i, pair in enumerate(found) if i == 0 or pair[0] != found[i - 1][0]]
        walks = np.array([w + (first if apart else 0) for w, _ in found])
        first += 5
        part = T.Terms(walks, np.array([t for _, t in found]), tuple(dims))
        if single or draw(st.booleans()):         # flags where true: reduced, single (one pair a walk), or both
            part = T.Terms(part.walks, part.terms, part.dims, reduced=_is_reduced(part) and draw(st.booleans()),
                           single=_is_single(part), distinct=_is_distinct(part) and draw(st.booleans()),
                           disjoint=0 if _is_disjoint(part, 0) and draw(st.booleans()) else None)
            part = T.Terms(part.walks, part.terms, part.dims, part.reduced or part.disjoint is not None, part.single,
                           part.distinct, part.disjoint)
        parts.append(part)
    return parts


@settings(max_examples=500, deadline=None)
@given(st.booleans().flatmap(lambda nested: contributions(nested)), st.booleans(), st.booleans())
def test_joined_of_contributions_apart_is_the_full_join(parts, numpy_path, look_for_equal):
    """Where `_apart` holds, the parts one after the other: per walk the same union as the full join (flags
    cleared: equal terms kept once, contained ones dropped), its flags true (``look_for_equal``: equal terms
    looked for from 2 terms and in contributions of any size); elsewhere the full join's arrays."""
    saved = T.SMALL_JOIN, T.DISTINCT_FROM, T.LARGE_PART
    try:
        T.SMALL_JOIN = -1 if numpy_path else saved[0]
        if look_for_equal:
            T.DISTINCT_FROM, T.LARGE_PART = 2, 1
        fast = T.joined(parts)
        full = T.joined([_cleared(part) for part in parts])
    finally:
        T.SMALL_JOIN, T.DISTINCT_FROM, T.LARGE_PART = saved
    assert _unions(fast) == _unions(full)
    assert fast.reduced and _flags_true(fast) and _flags_true(full)
    if T._apart(parts)[0] and (numpy_path or sum(len(part.walks) for part in parts) > T.SMALL_JOIN):
        assert fast.walks.tolist() == [w for part in parts for w in part.walks.tolist()]
    else:
        assert _same(fast, full)


def test_joined_tests_walks_that_meet_even_when_each_part_is_reduced():
    """Two reduced contributions to one walk, one term inside the other: dropped (no skip where walks meet)."""
    small = T.Terms(np.array([0]), np.array([0]), (np.array([[True, False]]),), reduced=True)
    large = T.Terms(np.array([0]), np.array([0]), (np.array([[True, True]]),), reduced=True)
    for numpy_path in (False, True):
        saved, T.SMALL_JOIN = T.SMALL_JOIN, (-1 if numpy_path else T.SMALL_JOIN)
        try:
            found = T.joined([small, large])
        finally:
            T.SMALL_JOIN = saved
        assert found.walks.tolist() == [0] and found.dims[0][found.terms].tolist() == [[True, True]]


def test_disjoint_covers_count_only_for_non_empty_sets():
    """Channels over disjoint positions, but one term's channels empty (inside any set): not apart, the full join
    drops it; with non-empty sets the parts are put one after the other."""
    spatial = np.array([[True, True]])
    for empty, apart in ((True, False), (False, True)):
        first = T.Terms(np.array([0]), np.array([0]), (np.array([[not empty, False, False]]), spatial), single=True)
        second = T.Terms(np.array([0]), np.array([0]), (np.array([[False, True, True]]), spatial), single=True)
        for parts in ([first, second], [second, first]):
            assert bool(T._apart(parts)[0]) == apart
            found = T.joined(parts)
            assert len(found.walks) == (2 if apart else 1) and _flags_true(found)


def test_first_terms_apart_but_covers_meeting_is_no_reason_to_skip(monkeypatch):
    """The first terms' sets are apart (the cheap look), a later term's are not: the covers decide, and the full
    join drops the term the other contribution's contains."""
    monkeypatch.setattr(T, "SMALL_JOIN", -1)
    first = T.Terms(np.array([0, 0]), np.array([0, 1]), (_rows([0], [3]), _rows([0], [1])), reduced=True)
    second = T.Terms(np.array([0]), np.array([0]), (_rows([1, 3]), _rows([0, 1])), reduced=True, single=True)
    assert T._apart([first, second]) == ("", None)
    found = T.joined([first, second])
    assert len(found.walks) == 2 and _flags_true(found) and found.reduced


def _rows(*sets: list[int], n: int = 5) -> np.ndarray:
    return np.array([[i in chosen for i in range(n)] for chosen in sets], dtype=bool)


@pytest.mark.parametrize("case", ["overlapping channels in a part", "apart along another dim"])
def test_disjoint_is_set_only_where_every_walk_holds_sets_apart(case, monkeypatch):
    """Two contributions to one walk, their channels over disjoint positions (so put one after the other): the
    result is disjoint along a dim only where every walk's terms are apart along it. Where the first holds two
    terms whose channels overlap (reduced, not disjoint), or holds them apart along dim 1 but the second's dim 1
    set meets theirs, the result claims no dim."""
    monkeypatch.setattr(T, "SMALL_JOIN", -1)
    if case == "overlapping channels in a part":
        first = T.Terms(np.array([0, 0]), np.array([0, 1]), (_rows([0, 1], [1, 2]), _rows([0], [1, 2])), reduced=True)
    else:
        first = T.Terms(np.array([0, 0]), np.array([0, 1]), (_rows([0, 1], [0, 1]), _rows([0], [1])), reduced=True,
                        disjoint=1)
    second = T.Terms(np.array([0]), np.array([0]), (_rows([4]), _rows([0])), reduced=True, single=True)
    assert _is_reduced(first) and _flags_true(first)
    apart, disjoint = T._apart([first, second])
    assert apart == "covers" and disjoint is None
    found = T.joined([first, second])
    assert found.disjoint is None and _flags_true(found) and len(found.walks) == 3
    alone = T.Terms(np.array([0]), np.array([0]), (_rows([0, 1]), _rows([3])), reduced=True, single=True)
    assert T._apart([alone, second]) == ("covers", 0)               # (one term each: apart along the channels)


def _relations(n_out: int):
    """Relations over ``n_out`` output positions of every kind the layers build (and a few hand-made)."""
    rng = np.random.default_rng(n_out)
    found = [None, EVERY, gather_relation(n_out, rng.permutation(n_out)),                  # one-to-one
             gather_relation(n_out + 2, np.arange(n_out) + 1),                            # one-to-one, into more
             gather_relation(n_out, np.where(np.arange(n_out) % 2 == 0, np.arange(n_out), -1)),   # not total
             gather_relation((n_out + 1) // 2, np.arange(n_out) // 2),                  # total, shared reads
             window_relation(n_out, n_out, 3, 1, 1, 1, 1, "zeros"),
             window_relation(n_out + 4, n_out, 1, 1, 1, 0, 0, "zeros"),                     # a 1x1 window
             window_relation(2 * n_out, n_out, 2, 2, 1, 0, 0, "zeros"),                     # disjoint windows
             window_relation(max(n_out - 4, 1), n_out, 1, 1, 1, 2, 2, "zeros"),             # pads read nothing
             window_relation(n_out, n_out, 3, 1, 1, 1, 1, "reflect"),
             bins_relation(3, n_out), band_relation(n_out, 1, 0),
             _Matrix(rng.random((n_out, 5)) < 0.3), _Matrix(np.eye(n_out, dtype=bool)),
             _Matrix(np.kron(np.eye(n_out, dtype=bool), np.ones((1, 2), dtype=bool))),    # one-to-one blocks
             _Matrix(np.eye(3, dtype=bool)[np.arange(n_out) % 3])]                         # blocks of rows
    return found


def _cells(relation, n_out: int, n_in: int) -> set[tuple[int, int]]:
    if relation is None:
        return {(q, q) for q in range(n_out)}
    if relation is EVERY:
        return {(q, p) for q in range(n_out) for p in range(n_in)}
    if isinstance(relation, Taps):
        return {(q, int(p)) for q in range(n_out) for p in relation.index[q] if p >= 0}
    matrix = np.asarray(relation.matrix)
    return {(q, p) for q in range(n_out) for p in range(n_in) if matrix[q, p]}


def _n_in(relation, n_out: int) -> int:
    if relation is None:
        return n_out
    if relation is EVERY:
        return 4
    return relation.n_in if isinstance(relation, Taps) else relation.matrix.shape[1]


@pytest.mark.parametrize("n_out", [1, 2, 6, 9])
def test_traits_are_the_rule(n_out):
    """total: every output position reads something; one-to-one: total and no input position read twice."""
    for relation in _relations(n_out):
        n_in = _n_in(relation, n_out)
        cells = _cells(relation, n_out, n_in)
        total = all(any(q == row for q, _ in cells) for row in range(n_out))
        readers = [sum(1 for _, p in cells if p == column) for column in range(n_in)]
        assert traits(relation, n_out) == (total, total and max(readers, default=0) <= 1), relation


@st.composite
def steps_cases(draw):
    lengths = draw(st.lists(st.sampled_from([1, 2, 6, 9]), min_size=1, max_size=3))
    count = draw(st.integers(1, 6))
    dims = []
    for n in lengths:
        dims.append(nonempty_rows(draw, count, n))
    found = sorted(set(draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, count - 1)), min_size=1,
                                     max_size=10))))
    terms = T.Terms(np.array([w for w, _ in found]), np.array([t for _, t in found]), tuple(dims))
    apart = [d for d in range(len(lengths)) if _is_disjoint(terms, d)]
    disjoint = draw(st.sampled_from(apart)) if apart and draw(st.booleans()) else None
    terms = T.Terms(terms.walks, terms.terms, terms.dims,
                    reduced=(_is_reduced(terms) and draw(st.booleans())) or disjoint is not None,
                    single=_is_single(terms) and draw(st.booleans()),
                    distinct=_is_distinct(terms) and draw(st.booleans()), disjoint=disjoint)
    relations = tuple(draw(st.sampled_from(_relations(n))) for n in lengths)
    return terms, relations


@settings(max_examples=400, deadline=None)
@given(steps_cases())
def test_stepped_keeps_the_flag_only_where_true_and_skips_only_empty_tests_that_cannot_fail(case):
    terms, relations = case
    in_shape = [_n_in(relation, len(d[0])) for relation, d in zip(relations, terms.dims)]
    factors = Factors(relations)
    found = T.stepped(terms, factors, in_shape)
    saved = T.traits
    T.traits = lambda relation, n_out, one_to_one=True: (False, False)            # the slow path: every dim tested, no flag kept
    try:
        slow = T.stepped(terms, factors, in_shape)
    finally:
        T.traits = saved
    assert (found is None) == (slow is None)
    if found is None:
        return
    assert _same(found, slow)
    assert all(d.any(axis=1).all() for d in found.dims)          # no empty set (what the sweep relies on)
    assert _flags_true(found)
    assert found.single == terms.single                          # (a step never adds a pair)
    expected = {}
    for walk, cells in _unions(terms).items():                   # the image of each walk's union, cell by cell
        reads = [_cells(r, len(d[0]), n) for r, d, n in zip(relations, terms.dims, in_shape)]
        image = set()
        for cell in cells:
            options = [{p for q, p in read if q == c} for read, c in zip(reads, cell)]
            partial = {()}
            for option in options:
                partial = {c + (p,) for c in partial for p in option}
            image |= partial
        if image:
            expected[walk] = image
    assert _unions(found) == expected


@st.composite
def disjoint_terms(draw):
    """Walks of several terms whose channel sets are non-empty and pairwise apart (a channel split's halves,
    shuffled), other dims at random, flagged `Terms.disjoint` along the channels; and relations per dim."""
    lengths = [draw(st.sampled_from([6, 9]))] + draw(st.lists(st.sampled_from([1, 2, 6]), max_size=2))
    walks, dims = [], [[] for _ in lengths]
    for walk in range(draw(st.integers(1, 4))):
        owner = np.array(draw(st.lists(st.integers(-1, 3), min_size=lengths[0], max_size=lengths[0])))
        for term in range(4):
            if not (owner == term).any():
                continue
            walks.append(walk)
            dims[0].append(owner == term)
            for d, n in enumerate(lengths[1:], 1):
                row = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
                row[draw(st.integers(0, n - 1))] = True
                dims[d].append(row)
    terms = T.Terms(np.array(walks), np.arange(len(walks)), tuple(np.array(d, dtype=bool) for d in dims),
                    reduced=True, disjoint=0)
    relations = tuple(draw(st.sampled_from(_relations(n))) for n in lengths)
    return terms, relations


@settings(max_examples=300, deadline=None)
@given(disjoint_terms())
def test_a_step_keeps_disjoint_sets_apart_only_through_relations_reading_no_position_twice(case):
    terms, relations = case
    assert _is_disjoint(terms, 0) and _is_reduced(terms)
    in_shape = [_n_in(relation, len(d[0])) for relation, d in zip(relations, terms.dims)]
    found = T.stepped(terms, Factors(relations), in_shape)
    if found is not None:
        assert _flags_true(found)
        reads_once = relations[0] is None or relations[0] is not EVERY and all(
            n <= 1 for n in np.bincount([p for _, p in _cells(relations[0], len(terms.dims[0][0]), in_shape[0])],
                                        minlength=1)) or relations[0] is EVERY and len(terms.dims[0][0]) <= 1
        if reads_once:
            assert found.disjoint == 0 and found.reduced


def test_a_one_to_one_step_keeps_the_flag_and_others_drop_it():
    """The shortcut is used: a permutation keeps `reduced`, a window (which can nest two sets) does not."""
    terms = T.Terms(np.array([0, 0]), np.array([0, 1]), (np.array([[True, False, False], [False, True, True]]),),
                    reduced=True)
    assert T.stepped(terms, Factors((gather_relation(3, [2, 0, 1]),)), [3]).reduced
    window = window_relation(3, 3, 3, 1, 1, 1, 1, "zeros")
    assert not T.stepped(terms, Factors((window,)), [3]).reduced


def test_gathers_are_shared_and_read_only():
    first = gather_relation(6, [3, -1, 0, 3, 5, 2])
    assert first is gather_relation(6, np.array([3, -1, 0, 3, 5, 2])) and not first.index.flags.writeable
    assert first is not gather_relation(7, [3, -1, 0, 3, 5, 2])
    assert first.index[:, 0].tolist() == [3, -1, 0, 3, 5, 2] and first.n_in == 6


@st.composite
def nested_pairs(draw):
    """Pairs of walks and distinct terms whose sets nest, are disjoint or empty, over one 64-bit word or several:
    the cheap tests decide most."""
    width = draw(st.sampled_from([8, 24, 64, 70, 150, 600]))     # one 64-bit word, a few, past NEAR_WORDS
    rows = set()
    for _ in range(draw(st.integers(1, 14))):
        low = draw(st.integers(0, width))
        high = draw(st.integers(low, width))
        step = draw(st.integers(1, 3))
        row = [low <= i < high and (i - low) % step == 0 for i in range(width)]
        if draw(st.booleans()):                                    # a mark far away (another word)
            row[draw(st.integers(0, width - 1))] = True
        rows.add(tuple(row))
    rows = [list(row) for row in rows]
    bits = np.packbits(np.array(rows, dtype=bool), axis=1)
    found = sorted(set(draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, len(rows) - 1)), min_size=1,
                                     max_size=60))))
    return np.array([w for w, _ in found]), np.array([t for _, t in found]), bits


@settings(max_examples=400, deadline=None)
@given(nested_pairs())
def test_cheap_tests_before_the_bit_test_drop_what_the_rule_drops(case):
    walks, terms, bits = case
    sets = [set(np.flatnonzero(np.unpackbits(row)).tolist()) for row in bits]
    expected = [i for i in range(len(walks)) if not any(
        j != i and walks[j] == walks[i] and sets[terms[i]] <= sets[terms[j]] for j in range(len(walks)))]
    saved = T.SMALL_JOIN, T.FEW_TERMS, T.LARGEST_FIRST
    try:
        T.SMALL_JOIN = -1
        for few, largest_first in ((0, True), (0, False), (10 ** 6, False)):   # every pair (with and without the
            T.FEW_TERMS, T.LARGEST_FIRST = few, largest_first                 # pass against the largest), k apart
            found = T._drop_contained(walks, terms, bits)
            assert found[0].tolist() == walks[expected].tolist() and found[1].tolist() == terms[expected].tolist()
    finally:
        T.SMALL_JOIN, T.FEW_TERMS, T.LARGEST_FIRST = saved
