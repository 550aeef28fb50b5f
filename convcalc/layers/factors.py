"""A layer's dependency rule as a product of per-dim relations (`Layer.support_factors`), for the receptive-field
proof's walk (`convcalc.proof.terms`).

A layer whose rule is a product says, per input, one relation per batchless dim of that input (the channels,
then each spatial axis): input element (j, p1, .., pk) can influence output element (c, q1, .., qk) exactly when
every dim's relation holds (c reads j, q1 reads p1, ...). A relation is

* ``None``: the identity (output position i reads input position i; the dim keeps its length);
* ``EVERY``: every output position reads every input position (a dense conv's channels, a norm's axes);
* a bool matrix ``(n_out, n_in)``: row i marks what output position i reads (a window with its padding mode,
  groups of channels, a gather for a shuffle, split or concatenation, a broadcast).

``sources`` pairs the dims when a layer moves them (a Permute): input dim i pairs with output dim
``sources[i]`` (None: dim i with dim i). The walk then steps a product of per-dim sets (a "term") by stepping
each dim's set alone, which is exact: the image of a product under a product relation is the product of the
images. The layer unit owns its relations; the walk never asks a layer's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence, Union

from .._numpy import np

from ..kernels.padding import pad_source_index


SMALL_TAPS = 1 << 14     # relations of at most this many (n_out * n_in) cells step as one float32 matrix product


class _Every:
    """Every output position reads every input position (see the module)."""

    def __repr__(self) -> str:
        return "EVERY"


EVERY = _Every()


class Taps:
    """A sparse relation: output position q reads the input positions ``index[q, t]`` (t < k; -1: none) of an
    input of length ``n_in`` (a window, a gather, bins, a band: a few taps per position, whatever the lengths)."""

    def __init__(self, index: np.ndarray, n_in: int):
        self.index = np.asarray(index, dtype=np.intp).reshape(len(index), -1)
        self.n_in = int(n_in)
        self._columns: list | None = None
        self._dense: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.index), self.n_in)

    def matrix(self) -> np.ndarray:
        """The bool matrix (n_out, n_in)."""
        relation = np.zeros(self.shape, dtype=bool)
        rows, taps = np.nonzero(self.index >= 0)
        relation[rows, self.index[rows, taps]] = True
        return relation

    def step(self, sets: np.ndarray) -> np.ndarray:
        """Per row of ``sets`` (T, n_out) the input positions read (T, n_in): for a small relation (`SMALL_TAPS`
        cells) one float32 product with its matrix (counts of marks, exact below 2**24), else tap by tap, a
        scatter of the marks."""
        if len(sets) and len(self.index) * self.n_in <= SMALL_TAPS:     # small: one matrix product (exact counts)
            if self._dense is None:
                self._dense = self.matrix().astype(np.float32)
            return (sets.astype(np.float32) @ self._dense) > 0
        result = np.zeros((len(sets), self.n_in), dtype=bool)
        if len(sets) == 0:
            return result
        if self._columns is None:
            self._columns = []
            for t in range(self.index.shape[1]):
                rows = np.flatnonzero(self.index[:, t] >= 0)
                columns = self.index[rows, t]
                distinct = not len(columns) or int(np.bincount(columns, minlength=1).max()) <= 1
                rows_run, columns_run = _as_slice(rows), _as_slice(columns)
                if distinct and rows_run is not None and columns_run is not None:
                    rows, columns = rows_run, columns_run        # a window's tap: strided views, no gather
                self._columns.append((rows, columns, distinct))
        for rows, columns, distinct in self._columns:
            if isinstance(rows, slice):
                result[:, columns] |= sets[:, rows]
                continue
            if not len(rows):
                continue
            if distinct:
                result[:, columns] |= sets[:, rows]
            else:
                np.logical_or.at(result.T, columns, sets[:, rows].T)
        return result


def _as_slice(index: np.ndarray) -> slice | None:
    """``index`` as the slice that selects the same positions, where it is a long increasing arithmetic
    progression; else None."""
    if len(index) < 32:                       # (short: a gather costs no more than the test)
        return None
    step = int(index[1] - index[0])
    if step <= 0 or not bool((np.diff(index) == step).all()):
        return None
    return slice(int(index[0]), int(index[-1]) + 1, step)


Relation = Union[None, _Every, "np.ndarray", Taps, "_Prepared"]


@dataclass(frozen=True)
class Factors:
    """One input's dependency rule as a product: ``relations[i]`` for the input's dim i (the channels first),
    paired with the output's dim ``sources[i]`` (None: the same index)."""

    relations: tuple[Relation, ...]
    sources: Optional[tuple[int, ...]] = None

    def source(self, dim: int) -> int:
        return dim if self.sources is None else self.sources[dim]


def same(rank: int) -> Factors:
    """Each element reads the same element of the input (an activation, a per-channel affine map)."""
    return Factors((None,) * rank)


def step_sets(relation: Relation, sets: np.ndarray, n_in: int) -> np.ndarray:
    """Per row of ``sets`` (bool, (T, n_out): marked output positions along one dim), the input positions they
    read along it (bool, (T, n_in))."""
    if relation is None:
        return sets
    if isinstance(relation, _Every):
        return np.broadcast_to(sets.any(axis=1, keepdims=True), (len(sets), n_in))
    if not isinstance(relation, (_Prepared, Taps)):
        relation = _Prepared(relation)
    return relation.step(sets)


class _Prepared:
    """A relation matrix laid out for stepping many sets: where every input position is read by at most one
    output position (a gather, a slice, a nearest upsampling), an index; else the matrix in float32 for one
    matrix product (counts, exact: n_out < 2**24)."""

    def __init__(self, relation: np.ndarray):
        self.n_in = relation.shape[1]
        readers = relation.sum(axis=0)
        self.gather = bool((readers <= 1).all())
        if self.gather:
            self.source = np.where(readers > 0, relation.argmax(axis=0), 0)
            self.read = readers > 0
            self.all_read = bool(self.read.all())
        else:
            self.matrix = relation.astype(np.float32)

    def step(self, sets: np.ndarray) -> np.ndarray:
        if len(sets) == 0:
            return np.zeros((0, self.n_in), dtype=bool)
        if self.gather:
            found = sets[:, self.source]
            return found if self.all_read else found & self.read
        return (sets.astype(np.float32) @ self.matrix) > 0


def prepare(factors: Factors) -> Factors:
    """The same factors with every relation matrix in its stepping form (`step_sets` takes both)."""
    return Factors(tuple(_Prepared(r) if isinstance(r, np.ndarray) else r for r in factors.relations),
                   factors.sources)


def window_relation(n_in: int, n_out: int, kernel: int, stride: int, dilation: int, lo: int, hi: int,
                    mode: str = "zeros") -> Taps:
    """A window along one axis: output q reads the taps q*stride + t*dilation (t < kernel) of the input padded by
    (lo, hi) in ``mode`` (zeros: the pads read nothing; reflect, replicate, circular: the input position a pad
    copies, `kernels.padding.pad_source_index`). One object per window (the same for every layer and run that
    asks for it: its stepping forms are built once; its taps are read-only)."""
    return _window_taps(int(n_in), int(n_out), int(kernel), int(stride), int(dilation), int(lo), int(hi), str(mode))


@lru_cache(maxsize=256)
def _window_taps(n_in: int, n_out: int, kernel: int, stride: int, dilation: int, lo: int, hi: int,
                 mode: str) -> Taps:
    source = pad_source_index(n_in, lo, hi, mode)
    taps = np.arange(n_out)[:, None] * stride + np.arange(kernel)[None, :] * dilation      # (n_out, kernel)
    inside = taps < len(source)
    read = np.where(inside, source[np.minimum(taps, len(source) - 1)], -1)
    found = Taps(read, n_in)
    found.index.flags.writeable = False
    return found


GROUPS_KEPT = 1 << 20    # grouped-channel matrices of at most this many cells are built once per geometry (read-only)


def groups_relation(c_out: int, c_in: int, groups: int) -> Relation:
    """Channels in ``groups`` groups: output channel c reads the input channels of its group (EVERY for one group,
    the identity for one channel per group on both sides). A matrix of at most `GROUPS_KEPT` cells is one
    read-only object per (c_out, c_in, groups), shared by every layer and run that asks for it (as windows are)."""
    if groups == 1:
        return EVERY
    if c_out == c_in == groups:
        return None
    if c_out * c_in <= GROUPS_KEPT:
        return _groups_matrix(int(c_out), int(c_in), int(groups))
    return np.kron(np.eye(groups, dtype=bool), np.ones((c_out // groups, c_in // groups), dtype=bool))


@lru_cache(maxsize=64)
def _groups_matrix(c_out: int, c_in: int, groups: int) -> np.ndarray:
    found = np.kron(np.eye(groups, dtype=bool), np.ones((c_out // groups, c_in // groups), dtype=bool))
    found.flags.writeable = False
    return found


def gather_relation(n_in: int, source: Sequence[int]) -> Taps:
    """Output position i reads input position ``source[i]`` alone, none where it is -1 (a shuffle, a slice, a
    part of a concatenation, a pad). One read-only object per (n_in, source) of at most `GATHER_KEPT` positions,
    as windows are: the layers of a network that repeats a block ask for the same gathers, and their stepping forms
    are built once (longer ones are built anew: the cache would keep up to 256 of them alive after the run)."""
    source = np.asarray(source, dtype=np.intp).reshape(-1)
    if len(source) > GATHER_KEPT:
        found = Taps(source[:, None], n_in)
        found.index.flags.writeable = False
        return found
    return _gather_taps(int(n_in), source.tobytes())


GATHER_KEPT = 1 << 16    # positions of a gather kept by `gather_relation` (256 of them: at most 128 MiB)


@lru_cache(maxsize=256)
def _gather_taps(n_in: int, source: bytes) -> Taps:
    return Taps(np.frombuffer(source, dtype=np.intp)[:, None], n_in)     # (frombuffer: read-only)


def broadcast_relation(n_out: int, n_in: int) -> Relation:
    """A dim broadcast from length 1 (every output position reads the one input position), else the identity."""
    if n_in == n_out:
        return None
    if n_in == 1:
        return EVERY
    raise ValueError(f"cannot broadcast a dim of {n_in} to {n_out}")


def bins_relation(n_in: int, n_out: int) -> Taps:
    """Adaptive pooling's bins: output i reads [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out))."""
    starts = (np.arange(n_out) * n_in) // n_out
    ends = -((-(np.arange(n_out) + 1) * n_in) // n_out)
    taps = starts[:, None] + np.arange(int((ends - starts).max()))[None, :]
    return Taps(np.where(taps < ends[:, None], taps, -1), n_in)


def band_relation(n: int, before: int, after: int) -> Taps:
    """Output i reads input positions i - before .. i + after (those that exist)."""
    taps = np.arange(n)[:, None] + np.arange(-before, after + 1)[None, :]
    return Taps(np.where((taps >= 0) & (taps < n), taps, -1), n)


def as_matrix(relation: Relation, n_out: int, n_in: int) -> np.ndarray:
    """A relation as its bool matrix (n_out, n_in)."""
    if relation is None:
        return np.eye(n_out, n_in, dtype=bool)
    if isinstance(relation, _Every):
        return np.ones((n_out, n_in), dtype=bool)
    if isinstance(relation, Taps):
        return relation.matrix()
    if isinstance(relation, _Prepared):
        raise TypeError("a prepared relation has no matrix form here")
    return relation


def simplified(matrix: np.ndarray) -> Relation:
    """EVERY for an all-true matrix, None for an identity, else the matrix."""
    if matrix.all():
        return EVERY
    if matrix.shape[0] == matrix.shape[1] and np.array_equal(matrix, np.eye(len(matrix), dtype=bool)):
        return None
    return matrix


def chained(outer: Factors, inner: Factors, out_shape: Sequence[int], mid_shape: Sequence[int],
            in_shape: Sequence[int]) -> Factors:
    """Two layers in a row as one: ``outer`` maps the output to the middle tensor, ``inner`` the middle one to
    the input; output position t reads input position p along a dim when t reads some middle position that reads
    p (boolean matrix product per dim, the dims paired through both)."""
    relations, sources = [], []
    for d in range(len(in_shape)):
        middle = inner.source(d)
        out = outer.source(middle)
        relations.append(_composed(outer.relations[middle], inner.relations[d], out_shape[out], mid_shape[middle],
                                   in_shape[d]))
        sources.append(out)
    return Factors(tuple(relations), None if sources == list(range(len(sources))) else tuple(sources))


def _composed(first: Relation, second: Relation, n_out: int, n_mid: int, n_in: int) -> Relation:
    """``first`` (n_out -> n_mid) then ``second`` (n_mid -> n_in) as one relation."""
    if first is None:
        return second
    if second is None:
        return first
    first, second = (r.matrix() if isinstance(r, Taps) else r for r in (first, second))
    if isinstance(first, _Every) and isinstance(second, _Every):
        return EVERY
    if isinstance(first, _Every):                   # every output reads what any middle position reads
        reached = np.asarray(second).any(axis=0)
        return EVERY if reached.all() else simplified(np.broadcast_to(reached, (n_out, n_in)).copy())
    if isinstance(second, _Every):                  # an output reading any middle position reads every input
        reads = np.asarray(first).any(axis=1)
        return EVERY if reads.all() else simplified(np.repeat(reads[:, None], n_in, axis=1))
    return simplified((first.astype(np.float32) @ second.astype(np.float32)) > 0)


def united(first: Factors, second: Factors, out_shape: Sequence[int], in_shape: Sequence[int]) -> Factors | None:
    """The union of two products over the same tensors, when it is one (they differ along one dim at most);
    None otherwise."""
    if first.sources != second.sources:
        return None
    if all(_same_relation(a, b) for a, b in zip(first.relations, second.relations)):
        return first
    matrices = [(as_matrix(a, out_shape[first.source(d)], in_shape[d]),
                 as_matrix(b, out_shape[first.source(d)], in_shape[d]))
                for d, (a, b) in enumerate(zip(first.relations, second.relations))]
    differ = [d for d, (a, b) in enumerate(matrices) if not np.array_equal(a, b)]
    if len(differ) > 1:
        return None
    relations = list(first.relations)
    for d in differ:
        relations[d] = simplified(matrices[d][0] | matrices[d][1])
    return Factors(tuple(relations), first.sources)


def walked(parts: Sequence[Any], in_shape: Sequence[int], source: str) -> list[Factors] | None:
    """The factors of parts run in order (a composite layer's: each with ``name``, ``inputs``, ``layer`` and
    ``inferred.out_shape``; ``source`` names the input), chained along the walk and united where parts meet when
    the union is again a product (a gated conv's two convs of one window); None where a part has no factors or a
    union is no product."""
    shapes = {source: tuple(in_shape), **{p.name: p.inferred.out_shape for p in parts}}
    known = {source: same(len(in_shape))}
    for p in parts:
        own = p.layer.support_factors([shapes[i] for i in p.inputs], p.inferred.out_shape)
        if own is None:
            return None
        found = None
        for name, rule in zip(p.inputs, own):
            through = chained(rule, known[name], p.inferred.out_shape, shapes[name], shapes[source])
            found = through if found is None else united(found, through, p.inferred.out_shape, shapes[source])
            if found is None:
                return None
        known[p.name] = found
    return [known[parts[-1].name]]


def _same_relation(a: Relation, b: Relation) -> bool:
    """Whether two relations are the same without forming matrices where both are taps (or both None/EVERY)."""
    if a is None or b is None or isinstance(a, _Every) or isinstance(b, _Every):
        return a is b
    if isinstance(a, Taps) and isinstance(b, Taps):
        return a.n_in == b.n_in and np.array_equal(a.index, b.index)
    return False


def identity_like(relation: Relation) -> bool:
    """Whether a relation reads position i alone for every i (None, or an identity matrix)."""
    if relation is None:
        return True
    if isinstance(relation, _Every):
        return False
    if isinstance(relation, Taps):
        return relation.index.shape[1] == 1 and relation.n_in == len(relation.index) and \
            np.array_equal(relation.index[:, 0], np.arange(relation.n_in))
    return relation.shape[0] == relation.shape[1] and np.array_equal(relation, np.eye(len(relation), dtype=bool))


__all__ = ["EVERY", "Factors", "Relation", "Taps", "band_relation", "bins_relation", "broadcast_relation",
           "as_matrix", "chained", "gather_relation", "groups_relation", "simplified", "united", "walked", "identity_like", "prepare", "same", "step_sets", "window_relation"]
