"""The proof's product-free stepping of one dim's sets (`convcalc.proof.steps`) against brute force: per row of
marks, input position p is reached exactly when some marked output position q reads p (the relation's cells
enumerated one by one in plain Python), for every form it chooses (sparse reads, blocks of equal rows, the
fallback) and for relations of every kind the layers build (windows with each padding mode, gathers with repeats
and holes, bins, bands, grouped channels, random matrices); plus the choice itself on a grouped conv's and a
gather's matrix, so that the fast forms are the ones exercised."""

from __future__ import annotations

import numpy as np
import pytest

from convcalc.layers.factors import (Taps, band_relation, bins_relation, gather_relation, groups_relation,
                                     window_relation)
from convcalc.proof import steps
from convcalc.proof.steps import _Blocks, _blocks, _Dense, _Matrix, _Sparse, prepared, step


def brute(cells: list[tuple[int, int]], sets: np.ndarray, n_in: int) -> np.ndarray:
    """Input positions read by the marked outputs, cell by cell (q reads p for each (q, p) in ``cells``)."""
    result = np.zeros((len(sets), n_in), dtype=bool)
    for row in range(len(sets)):
        for q, p in cells:
            if sets[row, q]:
                result[row, p] = True
    return result


def taps_cells(taps: Taps) -> list[tuple[int, int]]:
    return [(q, int(p)) for q in range(len(taps.index)) for p in taps.index[q] if p >= 0]


def matrix_cells(matrix: np.ndarray) -> list[tuple[int, int]]:
    return [(q, p) for q in range(matrix.shape[0]) for p in range(matrix.shape[1]) if matrix[q, p]]


def random_sets(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    sets = rng.random((rows, n)) < rng.choice([0.05, 0.3, 0.8])
    if rows:
        sets[0] = False                      # an empty row
    if rows > 1:
        sets[1] = True                       # a full row
    return sets


TAPS = [
    window_relation(9, 5, 3, 2, 1, 1, 1, "zeros"),
    window_relation(9, 9, 3, 1, 2, 2, 2, "reflect"),
    window_relation(7, 9, 3, 1, 1, 2, 2, "circular"),
    window_relation(8, 4, 3, 2, 1, 0, 1, "replicate"),
    window_relation(12, 3, 4, 4, 1, 0, 0, "zeros"),
    gather_relation(6, [3, -1, 0, 3, 5, 2, -1]),            # repeats and holes
    gather_relation(5, [4, 3, 2, 1, 0]),                     # a permutation (every position once)
    gather_relation(5, [-1, -1]),                            # reads nothing
    bins_relation(10, 3),
    bins_relation(3, 7),
    band_relation(9, 2, 1),
]


@pytest.mark.parametrize("index", range(len(TAPS)))
def test_taps_steps_equal_brute_force(index: int) -> None:
    taps = TAPS[index]
    rng = np.random.default_rng(index)
    cells = taps_cells(taps)
    for rows in (0, 1, 5):
        sets = random_sets(rng, rows, len(taps.index))
        got = step(taps, sets, taps.n_in)
        assert got.dtype == bool and got.shape == (rows, taps.n_in)
        assert np.array_equal(got, brute(cells, sets, taps.n_in))


MATRICES = {
    "groups": lambda rng: np.asarray(groups_relation(12, 6, 3)),
    "depthwise_multiplier": lambda rng: np.asarray(groups_relation(8, 4, 4)),
    "blocks_shuffled": lambda rng: np.asarray(groups_relation(9, 6, 3))[rng.permutation(9)][:, rng.permutation(6)],
    "blocks_with_empty": lambda rng: np.vstack([np.asarray(groups_relation(6, 6, 2)), np.zeros((2, 6), bool)])[
        :, [0, 1, 2, 3, 4, 5]] & np.array([1, 1, 1, 0, 1, 1], bool),
    "identity": lambda rng: np.eye(7, dtype=bool),
    "all": lambda rng: np.ones((5, 4), dtype=bool),
    "overlapping": lambda rng: np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]] * 3, dtype=bool),
    "dense_random": lambda rng: rng.random((30, 20)) < 0.6,
    "sparse_random": lambda rng: rng.random((30, 20)) < 0.05,
    "empty": lambda rng: np.zeros((4, 5), dtype=bool),
}


@pytest.mark.parametrize("name", sorted(MATRICES))
def test_matrix_steps_equal_brute_force(name: str) -> None:
    rng = np.random.default_rng(len(name))
    matrix = MATRICES[name](rng)
    cells = matrix_cells(matrix)
    relation = _Matrix(matrix)
    for rows in (0, 1, 6, 3):
        sets = random_sets(rng, rows, matrix.shape[0])
        got = step(relation, sets, matrix.shape[1])
        assert got.dtype == bool and got.shape == (rows, matrix.shape[1])
        assert np.array_equal(got, brute(cells, sets, matrix.shape[1]))
    forms = [_Sparse(*np.nonzero(matrix), matrix.shape[1]), _Dense(matrix)]
    blocks = _blocks(matrix)
    assert (blocks is not None) == (name not in ("overlapping", "dense_random", "sparse_random"))
    for form in forms + ([blocks] if blocks is not None else []):          # every form that applies, forced
        sets = random_sets(rng, 4, matrix.shape[0])
        assert np.array_equal(form.step(sets), brute(cells, sets, matrix.shape[1]))


def test_forms_chosen_by_structure() -> None:
    """A grouped conv's channels step as blocks, a gather's matrix pair by pair, overlapping dense rows by the
    fallback; the module's threshold is what decides sparse."""
    rng = np.random.default_rng(0)
    chosen = {}
    for name in ("groups", "overlapping", "dense_random", "identity"):
        relation = _Matrix(MATRICES[name](rng))
        relation.step(np.zeros((1, relation.matrix.shape[0]), dtype=bool), relation.matrix.shape[1])
        chosen[name] = type(relation.form)
    large_groups = _Matrix(np.asarray(groups_relation(96, 48, 3)))
    large_groups.step(np.ones((2, 96), dtype=bool), 48)
    assert type(large_groups.form) is _Blocks
    assert chosen["identity"] is _Sparse and chosen["overlapping"] is _Sparse
    assert chosen["dense_random"] is _Dense
    assert steps.SPARSE * (96 + 48) < 96 * 48 // 3           # the grouped matrix is past the sparse threshold


def test_prepared_keeps_none_and_taps() -> None:
    from convcalc.layers.factors import EVERY, Factors
    taps = window_relation(9, 5, 3, 2, 1, 1, 1, "zeros")
    found = prepared(Factors((EVERY, None, taps, np.eye(3, dtype=bool)), (0, 1, 2, 3)))
    assert found.relations[0] is EVERY and found.relations[1] is None and found.relations[2] is taps
    assert isinstance(found.relations[3], _Matrix) and found.sources == (0, 1, 2, 3)


def test_groups_relation_shared_read_only_and_equal_to_the_rule() -> None:
    """One read-only matrix per geometry (its stepping form then made once), equal to the grouping rule written
    out: output channel c reads input channel j exactly when they are in the same group."""
    from convcalc.layers import factors
    for c_out, c_in, groups in ((12, 6, 3), (8, 4, 4), (6, 9, 3)):
        matrix = factors.groups_relation(c_out, c_in, groups)
        assert matrix is factors.groups_relation(c_out, c_in, groups) and not matrix.flags.writeable
        rule = [[c // (c_out // groups) == j // (c_in // groups) for j in range(c_in)] for c in range(c_out)]
        assert matrix.tolist() == rule
    first, second = _Matrix(factors.groups_relation(96, 48, 3)), _Matrix(factors.groups_relation(96, 48, 3))
    sets = np.random.default_rng(1).random((5, 96)) < 0.1
    cells = matrix_cells(np.asarray(factors.groups_relation(96, 48, 3)))
    assert np.array_equal(first.step(sets, 48), brute(cells, sets, 48))
    assert np.array_equal(second.step(sets, 48), brute(cells, sets, 48)) and second.form is first.form
    saved, factors.GROUPS_KEPT = factors.GROUPS_KEPT, 10
    try:
        large = factors.groups_relation(12, 6, 3)          # past the cells kept: a matrix of its own
        assert large.flags.writeable and large is not factors.groups_relation(12, 6, 3)
        assert large.tolist() == [[c // 4 == j // 2 for j in range(6)] for c in range(12)]
    finally:
        factors.GROUPS_KEPT = saved


def test_sparse_steps_in_chunks_alike(monkeypatch) -> None:
    """`_Sparse` gathers at most `GATHERED` marks at once: a few rows per chunk give the same sets."""
    taps = window_relation(9, 9, 3, 1, 2, 2, 2, "reflect")
    cells = taps_cells(taps)
    sets = random_sets(np.random.default_rng(5), 7, 9)
    form = _Sparse(*np.nonzero(taps.matrix()), 9)
    monkeypatch.setattr(steps, "GATHERED", 2 * len(form.rows))          # two rows of sets per chunk
    assert np.array_equal(form.step(sets), brute(cells, sets, 9))
