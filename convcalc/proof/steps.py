"""Stepping one dim's sets through a layer's relation without matrix products, for the proof's walk
(`convcalc.proof.terms.stepped`).

`convcalc.layers.factors.step_sets` steps a small relation (a window, a gather, bins) and every relation matrix
that is not a gather (a grouped conv's channels) with a float32 matrix product: exact, but each call costs a BLAS
call, O(T * n_out * n_in) work and, on a busy machine, the wait for BLAS's threads. Here the same answer (bit for
bit: the same bool sets) comes from the relation's structure:

* a relation with few reads (a `Taps` of at most `SMALL_TAPS` cells, or a matrix with at most `SPARSE` reads per
  position on average): its (output, input) pairs sorted by input position, the marks gathered along them and
  OR-reduced per input position (`_Sparse`; O(T * reads), at most `GATHERED` marks gathered at once);
* a matrix whose non-empty rows are a few rows repeated, pairwise disjoint (groups of channels, EVERY-like, the
  identity): per group of equal rows whether any is marked, spread over the group's columns (`_Blocks`; O(T *
  (n_out + n_in))); found by comparing the matrix with the block matrix its first reads predict, so exact;
* anything else: `step_sets` as before.

A relation that reads position i alone for every i (a 1x1 window) gives the sets back as they are. A `Taps`
object's sparse form is kept with it (a weak reference: the windows and gathers `layers.factors` caches live as
long as their cache keeps them); a matrix's form is made once per `prepared` call (per run's
`Dependencies.factors`) and kept with its factors.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ..layers.factors import EVERY, SMALL_TAPS, Factors, Taps, step_sets

SPARSE = 4        # a matrix with at most SPARSE * (n_out + n_in) reads steps pair by pair (`_Sparse`)
GATHERED = 1 << 24    # the most marks `_Sparse` gathers at once (rows of sets times reads): 16 MB


class _Sparse:
    """A relation given by its reads ``(rows[i], columns[i])`` (output position rows[i] reads input position
    columns[i]): the marked outputs' reads, OR-ed per input position."""

    def __init__(self, rows: np.ndarray, columns: np.ndarray, n_in: int):
        order = np.argsort(columns, kind="stable")
        rows, columns = rows[order], columns[order]
        self.n_in = int(n_in)
        self.rows = rows
        starts = np.flatnonzero(np.concatenate(([True], columns[1:] != columns[:-1]))) if len(columns) else \
            np.zeros(0, dtype=np.intp)
        self.columns = columns[starts]
        self.starts = starts
        self.distinct = len(starts) == len(columns)       # each input position read by one output at most
        self.whole = self.distinct and len(columns) == self.n_in    # ... and every input position read once
        self.same = self.whole and bool((rows == np.arange(len(rows))).all())   # ... by the output position alike

    def step(self, sets: np.ndarray) -> np.ndarray:
        if self.same and sets.shape[1] == self.n_in:
            return sets                                   # the identity (a 1x1 window): the same sets
        if self.whole:
            return sets[:, self.rows]                     # (columns sorted: 0 .. n_in-1)
        result = np.zeros((len(sets), self.n_in), dtype=bool)
        if not len(sets) or not len(self.rows):
            return result
        chunk = max(1, GATHERED // len(self.rows))        # rows of sets gathered at once (bounded memory)
        for lo in range(0, len(sets), chunk):
            gathered = sets[lo:lo + chunk, self.rows]
            result[lo:lo + chunk, self.columns] = gathered if self.distinct else \
                np.logical_or.reduceat(gathered, self.starts, axis=1)
        return result


class _Blocks:
    """A relation matrix equal to ``row_label[q] == column_label[p]`` (labels >= 0; -1 and -2: an empty row, an
    unread column): output positions with one label read exactly the input positions with that label."""

    def __init__(self, row_label: np.ndarray, column_label: np.ndarray, n_in: int):
        self.n_in = int(n_in)
        live = np.flatnonzero(row_label >= 0)
        labels, inverse = np.unique(row_label[live], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        self.rows = live[order]                                      # the live rows, label by label
        grouped = inverse.reshape(-1)[order]
        self.starts = np.flatnonzero(np.concatenate(([True], grouped[1:] != grouped[:-1]))) if len(grouped) else \
            np.zeros(0, dtype=np.intp)
        self.read = column_label >= 0
        # per read column the index of its label among ``labels`` (every read column's label is some row's)
        self.column_group = np.searchsorted(labels, np.where(self.read, column_label, labels[0] if len(labels) else 0))
        self.all_read = bool(self.read.all())
        self.contiguous = bool(np.array_equal(self.rows, np.arange(len(row_label))))

    def step(self, sets: np.ndarray) -> np.ndarray:
        if not len(sets) or not len(self.rows):
            return np.zeros((len(sets), self.n_in), dtype=bool)
        marked = sets if self.contiguous else sets[:, self.rows]
        hit = np.logical_or.reduceat(marked, self.starts, axis=1)          # (T, groups)
        found = hit[:, self.column_group]
        return found if self.all_read else found & self.read


def _blocks(matrix: np.ndarray) -> _Blocks | None:
    """The block form of a bool matrix, None where it is not one (see `_Blocks`)."""
    n_out, n_in = matrix.shape
    if not n_out or not n_in:
        return None
    row_any = matrix.any(axis=1)
    column_any = matrix.any(axis=0)
    row_label = np.where(row_any, matrix.argmax(axis=1), -1)               # a row's first read column
    column_label = np.where(column_any, row_label[matrix.argmax(axis=0)], -2)   # its first reader's label
    if not np.array_equal(matrix, row_label[:, None] == column_label[None, :]):
        return None
    return _Blocks(row_label, column_label, n_in)


_TAPS: "weakref.WeakKeyDictionary[Taps, _Sparse | None]" = weakref.WeakKeyDictionary()


def _taps_form(taps: Taps) -> _Sparse | None:
    """A small `Taps`'s sparse form (kept with it); None for a large one (`Taps.step` scatters it, no product)."""
    try:
        return _TAPS[taps]
    except KeyError:
        pass
    form = None
    if len(taps.index) * taps.n_in <= SMALL_TAPS:
        rows, t = np.nonzero(taps.index >= 0)
        form = _Sparse(rows, taps.index[rows, t], taps.n_in)
    _TAPS[taps] = form
    return form


KEPT_FORMS = 256        # forms of shared read-only matrices kept (`_shared_forms`)
_shared_forms: dict[int, tuple["weakref.ref", Any]] = {}     # id(matrix) -> (its weak reference, its form)


def _form(matrix: np.ndarray) -> Any:
    """A relation matrix's stepping form (`_Sparse`, `_Blocks`, else `_Dense`)."""
    matrix = np.asarray(matrix, dtype=bool)
    n_out, n = matrix.shape
    reads = int(np.count_nonzero(matrix))
    if reads <= SPARSE * (n_out + n):
        rows, columns = np.nonzero(matrix)
        return _Sparse(rows, columns, n)
    return _blocks(matrix) or _Dense(matrix)


class _Matrix:
    """A relation matrix's stepping form, chosen when first stepped (`_form`); a read-only matrix that a layer
    unit shares between layers and runs (`layers.factors.groups_relation`) has its sparse or block form made once
    (kept by its identity, while it lives, at most `KEPT_FORMS` of them)."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix
        self.form: Any = None
        self.traits: tuple[bool, bool | None] | None = None     # (`traits`, made once)
        self.injective: bool | None = None                       # (`injective`, made once)

    def step(self, sets: np.ndarray, n_in: int) -> np.ndarray:
        if self.form is None:
            matrix = self.matrix
            shared = isinstance(matrix, np.ndarray) and not matrix.flags.writeable
            kept = _shared_forms.get(id(matrix)) if shared else None
            if kept is not None and kept[0]() is matrix:
                self.form = kept[1]
            else:
                self.form = _form(matrix)
                if shared and not isinstance(self.form, _Dense):        # (small forms only: index arrays)
                    if len(_shared_forms) >= KEPT_FORMS:
                        _shared_forms.clear()
                    _shared_forms[id(matrix)] = (weakref.ref(matrix), self.form)
        return self.form.step(sets)


class _Dense:
    """`step_sets` on a matrix (a float32 product), prepared once."""

    def __init__(self, matrix: np.ndarray):
        from ..layers.factors import prepare
        self.prepared = prepare(Factors((matrix,))).relations[0]
        self.n_in = matrix.shape[1]

    def step(self, sets: np.ndarray) -> np.ndarray:
        return step_sets(self.prepared, sets, self.n_in)


def _traits_of(matrix: np.ndarray, one_to_one: bool) -> tuple[bool, bool | None]:
    """(total, one-to-one; None: not asked) of a bool relation matrix (see `traits`)."""
    total = bool(matrix.any(axis=1).all())
    if not total or not one_to_one:
        return total, False if not total else None
    return True, bool((np.count_nonzero(matrix, axis=0) <= 1).all())


def _taps_traits(index: np.ndarray, one_to_one: bool) -> tuple[bool, bool | None]:
    """(total, one-to-one; None: not asked) of taps (see `traits`), one-to-one where no input position is read by
    two taps (a row reading a position twice, as a reflecting pad can, counts as not: the shortcut is left out)."""
    read = index >= 0
    total = bool(read.any(axis=1).all())
    if not total or not len(index):
        return total, total
    return True, bool(np.bincount(index[read], minlength=1).max() <= 1) if one_to_one else None


_TRAITS: "weakref.WeakKeyDictionary[Taps, tuple[bool, bool | None]]" = weakref.WeakKeyDictionary()


def traits(relation: Any, n_out: int, one_to_one: bool = True) -> tuple[bool, bool]:
    """(total, one-to-one) of a relation over ``n_out`` output positions: total, every output position reads some
    input position (a non-empty set steps to a non-empty one); one-to-one, total and no input position read by two
    output positions (then A inside B exactly when A's image is inside B's, so a step keeps `Terms.reduced`).
    None: both; EVERY: total, one-to-one for one output position; anything else not known: neither.
    ``one_to_one`` False: not needed (False, unless known; not worked out)."""
    if relation is None:
        return True, True
    if relation is EVERY:
        return True, n_out == 1
    if isinstance(relation, Taps):
        found = _TRAITS.get(relation)
        if found is None or one_to_one and found[1] is None:
            found = _TRAITS[relation] = _taps_traits(relation.index, one_to_one)
        return found[0], bool(found[1])
    if isinstance(relation, _Matrix):
        if relation.traits is None or one_to_one and relation.traits[1] is None:
            matrix = relation.matrix
            shared = isinstance(matrix, np.ndarray) and not matrix.flags.writeable
            kept = _shared_traits.get(id(matrix)) if shared else None
            if kept is not None and kept[0]() is matrix and (kept[1][1] is not None or not one_to_one):
                relation.traits = kept[1]
            else:
                relation.traits = _traits_of(np.asarray(matrix, dtype=bool), one_to_one)
                if shared:                     # (a grouped conv's channels: one matrix per geometry, every run)
                    if len(_shared_traits) >= KEPT_FORMS:
                        _shared_traits.clear()
                    _shared_traits[id(matrix)] = (weakref.ref(matrix), relation.traits)
        return relation.traits[0], bool(relation.traits[1])
    return False, False


_shared_traits: dict[int, tuple["weakref.ref", tuple[bool, bool | None]]] = {}     # as `_shared_forms`, for `traits`
_INJECTIVE: "weakref.WeakKeyDictionary[Taps, bool]" = weakref.WeakKeyDictionary()


def injective(relation: Any, n_out: int) -> bool:
    """Whether no input position is read by two output positions (some may read nothing: a concatenation's part):
    sets apart stay apart through the step (a Terms.disjoint dim stays one). None: yes; EVERY: for one output
    position; taps: counted once per taps object (a position read twice by one output counts as not); a matrix: by
    its columns; anything else: no."""
    if relation is None:
        return True
    if relation is EVERY:
        return n_out <= 1
    if isinstance(relation, Taps):
        found = _INJECTIVE.get(relation)
        if found is None:
            read = relation.index[relation.index >= 0]
            found = _INJECTIVE[relation] = not len(read) or bool(np.bincount(read).max() <= 1)
        return found
    if isinstance(relation, _Matrix):
        if relation.injective is None:
            relation.injective = bool((np.count_nonzero(np.asarray(relation.matrix, dtype=bool), axis=0) <= 1).all())
        return relation.injective
    return False


def prepared(factors: Factors) -> Factors:
    """The factors with each relation matrix in its stepping form here (`_Matrix`); `step` takes them."""
    return Factors(tuple(_Matrix(r) if isinstance(r, np.ndarray) else r for r in factors.relations), factors.sources)


def step(relation: Any, sets: np.ndarray, n_in: int) -> np.ndarray:
    """`layers.factors.step_sets`, the same sets, without matrix products where the relation's structure allows
    (see the module)."""
    if isinstance(relation, _Matrix):
        return relation.step(sets, n_in)
    if isinstance(relation, Taps):
        form = _taps_form(relation)
        if form is not None:
            return form.step(sets)
    return step_sets(relation, sets, n_in)


__all__ = ["SPARSE", "injective", "prepared", "step", "traits"]
