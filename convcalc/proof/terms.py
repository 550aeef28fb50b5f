"""Dependency masks as unions of products, for the proof's reverse sweep (`Dependencies.propagate_many`).

A walk's mask at a layer (the output positions and channels its unit can depend on through that layer) is kept
as a union of *terms*: products of one set per batchless dim (the channels, then each spatial axis). A layer
whose rule is a product of per-dim relations (`Layer.support_factors`, `convcalc.layers.factors`) steps a term
by stepping each dim's set alone: exact, since the image of a product under a product relation is the product of
the images, and the image of a union the union of the images. A term costs the sum of its dims' lengths, not
their product, and terms equal bit for bit are kept once where a join looks for them (whichever walks hold
them).

`Terms` holds many walks' terms at one layer: ``dims[d]`` (bool, (T, n_d)) the terms' sets, and the pairs
(``walks[i]``, ``terms[i]``): walk ``walks[i]`` holds term ``terms[i]``. `dense` and `factor` convert to and from
the whole masks (channels-last, `_Rows` in `convcalc.proof.dependency`) that a layer without factors steps.

Three flags say what is known of a `Terms`, so that a join skips work that cannot change anything (each set
only where true, each shortcut tested against the full join in tests/test_proof_reduced.py):

* ``reduced``: no walk holds two pairs whose terms are alike or one inside the other (each dim's set inside the
  other's), the state `joined` leaves. Where every contribution is reduced and no term of one can lie inside a
  term of another in the same walk (their walks apart: a layer's own seeds beside the walks arriving from later
  layers; or their sets along some dim over disjoint positions: the halves of a channel split), `joined` drops
  nothing and puts them one after the other without testing (`_apart`). A step keeps the flag where every
  relation is one-to-one onto disjoint reads (`proof.steps.traits`): then one set lies inside another after the
  step exactly when it did before.
* ``single``: each walk holds one pair (so reduced too); every step keeps that.
* ``disjoint``: a dim along which each walk's terms hold non-empty, pairwise disjoint sets (so reduced: no set
  lies inside another apart from it); set where contributions are put one after the other apart along that dim
  (ShuffleNet's split halves), kept by a step whose relation on that dim reads no input position twice, even
  where some outputs read nothing (a concatenation's part: the terms left empty are dropped).
* ``distinct``: no two terms alike; one-to-one steps keep it. Putting contributions one after the other looks for
  equal terms across walks only where a large contribution may hold some (a layer's 7x7 units beside another
  layer's same units), not beside a layer's few seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal, Sequence

import numpy as np

from ..layers.factors import EVERY, Factors
from ..layers.support import MASK_DTYPE
from .steps import injective, step, traits


SMALL_JOIN = 64          # pairs from which `joined` and `_drop_contained` work with NumPy (fewer: plain Python)
FEW_TERMS = 3            # terms per walk up to which `_drop_contained` tests pairs k apart (more: every pair at once)
DISTINCT_FROM = 96       # terms from which `_one_after_another` keeps equal ones once (where there may be some)
LARGE_PART = 48          # ... the terms of a contribution that may hold some (fewer: a few at most)
COVER_WIDTH = 1024       # the widest dim `_apart` compares the covers of
NEAR_WORDS = 8           # 64-bit words a row up to which containment is tested word by word (more: row by row)
LARGEST_FIRST = True     # `_drop_contained` with more: first each term against its walk's largest (`_inside_largest`)
_MARKS = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.int32)       # marks in a packed byte


@dataclass(frozen=True)
class Terms:
    """Walk ``walks[i]`` holds the product of ``dims[d][terms[i]]`` over d (see the module)."""

    walks: np.ndarray
    terms: np.ndarray
    dims: tuple[np.ndarray, ...]
    reduced: bool = False          # no walk holds two terms alike or one inside the other (see the module)
    single: bool = False           # each walk holds one pair (reduced, whatever the steps)
    distinct: bool = False         # no two terms alike (kept by one-to-one steps)
    disjoint: int | None = None    # a dim along which each walk's terms hold non-empty sets apart (so reduced)

    @property
    def count(self) -> int:
        return len(self.dims[0])

    @property
    def nbytes(self) -> int:
        return sum(d.nbytes for d in self.dims) + self.walks.nbytes + self.terms.nbytes


def _unique_rows(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index of each distinct row, per row the index of its distinct row) of a 2-D uint8 array."""
    keys = np.ascontiguousarray(bits).view(np.dtype((np.void, bits.shape[1]))).ravel()
    _, first, index = np.unique(keys, return_index=True, return_inverse=True)
    return first, index.reshape(-1)


def joined(parts: Sequence[Terms]) -> Terms:
    """The union of many contributions (per walk the union of its terms), equal terms kept once, terms that
    another term of the same walk contains dropped (where two or more contributions meet: a merge). Reduced
    contributions in which no term can lie inside another's (`_apart`: a layer's own seeds beside the walks from
    later layers, the halves of a channel split) are put one after the other instead: the same union per walk,
    reduced, equal terms across walks looked for only where some may be (`_one_after_another`); a few pairs
    (at most `SMALL_JOIN`) take the plain-Python join."""
    if len(parts) == 1:
        return parts[0]      # one contribution: the union is itself (a step never makes more terms than it had)
    if sum(len(part.walks) for part in parts) <= SMALL_JOIN:     # (a few pairs: plain Python, equal terms once)
        dims = tuple(np.concatenate([part.dims[d] for part in parts]) for d in range(len(parts[0].dims)))
        walks, terms, offset = [], [], 0
        for part in parts:
            walks += part.walks.tolist()
            terms += [t + offset for t in part.terms.tolist()]
            offset += part.count
        return _joined_small(walks, terms, dims, np.packbits(np.concatenate(dims, axis=1), axis=1))
    apart, disjoint = _apart(parts)
    if apart:
        return _one_after_another(parts, apart == "walks", disjoint)
    offsets = list(accumulate([part.count for part in parts[:-1]], initial=0))
    dims = tuple(np.concatenate([part.dims[d] for part in parts]) for d in range(len(parts[0].dims)))
    walks = np.concatenate([part.walks for part in parts])
    terms = np.concatenate([part.terms + offset if offset else part.terms for part, offset in zip(parts, offsets)])
    bits = np.packbits(np.concatenate(dims, axis=1), axis=1)
    first, index = _unique_rows(bits)
    dims = tuple(d[first] for d in dims)
    bits = bits[first]
    terms = index[terms]
    pairs = walks.astype(np.int64) * len(first) + terms
    pairs.sort()
    if len(pairs) > 1:                                  # (np.unique's result, without its per-call overhead)
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    walks, terms = pairs // len(first), pairs % len(first)
    walks, terms = _drop_contained(walks, terms, bits)
    return _compact(walks, terms, dims)


def _apart(parts: Sequence[Terms]) -> tuple[Literal["walks", "covers", ""], int | None]:
    """Whether no term of a walk can lie inside another term of that walk, or be alike, in the union of the
    contributions: every contribution is reduced (or single), and any two of them hold their walk ids in ranges
    apart (a layer's own seeds and the walks from later layers), or along some dim hold non-empty sets over
    disjoint positions (the two halves of a channel split; a dim of more than `COVER_WIDTH` positions, as a
    long 1-D signal, is not looked at): "walks" where every two are apart by their walks, "covers" where some only
    by their covers, "" where not apart. Then also a dim along which the union's terms are `Terms.disjoint`, or
    None: the one every contribution of more than one term a walk has, along which every two that share walks
    are apart."""
    if not all(part.reduced or part.single for part in parts):
        return "", None
    held = {part.disjoint for part in parts if not part.single}
    dim = held.pop() if len(held) == 1 else None                # (None: none yet, or none at all)
    keeps_dim = len(held) == 0 and (dim is not None or all(part.single for part in parts))
    by_walks = True
    ranges = [(int(part.walks.min()), int(part.walks.max())) if len(part.walks) else (1, 0) for part in parts]
    covers: dict[tuple[int, int], Any] = {}

    def cover(index: int, d: int) -> Any:          # the positions dim d's sets cover
        if (index, d) not in covers:
            covers[index, d] = parts[index].dims[d].any(axis=0)
        return covers[index, d]

    def apart_along(i: int, j: int, d: int) -> bool:
        # (first the two first terms' sets: where they meet, the covers meet too)
        return parts[i].dims[d].shape[1] <= COVER_WIDTH and not (parts[i].dims[d][0] & parts[j].dims[d][0]).any() \
            and not (cover(i, d) & cover(j, d)).any() \
            and bool(parts[i].dims[d].any(axis=1).all()) and bool(parts[j].dims[d].any(axis=1).all())

    for i, j in ((i, j) for i in range(len(parts)) for j in range(i + 1, len(parts))):
        if ranges[i][1] < ranges[j][0] or ranges[j][1] < ranges[i][0]:
            continue
        by_walks = False
        order = ([dim] if dim is not None else []) + [d for d in range(len(parts[i].dims)) if d != dim]
        along = next((d for d in order if apart_along(i, j, d)), None)
        if along is None:
            return "", None
        if dim is None and keeps_dim:
            dim = along
        keeps_dim = keeps_dim and along == dim
    return ("walks" if by_walks else "covers"), (dim if keeps_dim else None)


def _one_after_another(parts: Sequence[Terms], by_walks: bool, disjoint: int | None = None) -> Terms:
    """The contributions' pairs and terms one after the other (terms renumbered), reduced (see `_apart`); single
    where every part is and no walk is in two (``by_walks``); ``disjoint``: its `Terms.disjoint` (from `_apart`)."""
    offset, pieces = 0, []
    for part in parts:
        pieces.append(part.terms + offset if offset else part.terms)
        offset += part.count
    dims = tuple(np.concatenate([part.dims[d] for part in parts]) for d in range(len(parts[0].dims)))
    terms = np.concatenate(pieces)
    large = [part for part in parts if part.count >= LARGE_PART]
    ranges = sorted((int(part.walks.min()), int(part.walks.max())) for part in large if len(part.walks))
    # equal terms only within a contribution not known distinct, or across two large ones whose walks differ
    # (across a cover apart they cannot be alike; beside a few seeds, a few at most)
    if offset >= DISTINCT_FROM and (any(not part.distinct for part in large) or
                                    any(high < low for (_, high), (low, _) in zip(ranges, ranges[1:]))):
        first, index = _unique_rows(np.packbits(np.concatenate(dims, axis=1), axis=1))
        if len(first) < offset:
            dims, terms = tuple(d[first] for d in dims), index[terms]
        distinct = True
    else:
        distinct = False
    return Terms(np.concatenate([part.walks for part in parts]), terms, dims, reduced=True,
                 single=by_walks and all(part.single for part in parts), distinct=distinct, disjoint=disjoint)


def side_by_side(parts: Sequence[Terms]) -> Terms | None:
    """The union of a few contributions (at most `SMALL_JOIN` pairs) that hold one term per walk, no walk in two
    of them: the parts one after the other (the same union per walk as `joined`, without looking for equal terms
    across walks, which `joined` keeps once); None where that is not the case (then `joined`)."""
    if len(parts) == 1:
        return parts[0]
    if sum(len(part.walks) for part in parts) > SMALL_JOIN:
        return None
    walks = [w for part in parts for w in part.walks.tolist()]
    if len(set(walks)) != len(walks):
        return None
    terms, offset = [], 0
    for part in parts:
        terms += [t + offset for t in part.terms.tolist()]
        offset += part.count
    dims = tuple(np.concatenate([part.dims[d] for part in parts]) for d in range(len(parts[0].dims)))
    return Terms(np.array(walks, dtype=np.intp), np.array(terms, dtype=np.intp), dims, reduced=True, single=True)


def _joined_small(walks: list[int], terms: list[int], dims: tuple[np.ndarray, ...], bits: np.ndarray) -> Terms:
    """`joined` for a few pairs, in plain Python (NumPy's per-call cost is most of it there): the same terms and
    pairs, in the same order (distinct terms by their bytes, pairs by walk then term)."""
    keys = [row.tobytes() for row in bits]
    order = sorted(set(keys))
    number = {key: i for i, key in enumerate(order)}
    pairs = sorted({(w, number[keys[t]]) for w, t in zip(walks, terms)})
    starts = [i for i in range(len(pairs)) if i == 0 or pairs[i][0] != pairs[i - 1][0]] + [len(pairs)]
    if len(starts) - 1 < len(pairs):                     # a walk with two terms or more: drop the contained ones
        rows = {t: int.from_bytes(order[t], "little") for _, t in pairs}
        kept = []
        for start, end in zip(starts, starts[1:]):
            group = [rows[pairs[i][1]] for i in range(start, end)]
            kept += [pairs[i] for i, mine in zip(range(start, end), group)
                     if not any(j != i - start and not mine & ~other for j, other in enumerate(group))]
        pairs = kept
    used = sorted({t for _, t in pairs})
    renumber = {t: i for i, t in enumerate(used)}
    first = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    chosen = np.array([first[order[t]] for t in used], dtype=np.intp)
    return Terms(np.array([w for w, _ in pairs], dtype=np.intp), np.array([renumber[t] for _, t in pairs], dtype=np.intp),
                 tuple(d[chosen] for d in dims), reduced=True, single=len({w for w, _ in pairs}) == len(pairs), distinct=True)


def _drop_contained(walks: np.ndarray, terms: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs without those whose term another term of the same walk contains (the union stays the same).
    ``walks`` sorted; the terms distinct (so two terms never contain each other). With many terms a walk, each
    ordered pair is tested bit for bit only where two cheap necessary tests pass: a term inside another distinct
    one has fewer marks, and one of its marks (the lowest of its first non-zero 64-bit word) is one of the other's
    (most pairs of terms over disjoint channels or not nested fail there)."""
    n = len(walks)
    if n <= 1:
        return walks, terms
    new = np.empty(n, dtype=bool)                       # where a walk's pairs begin
    new[0] = True
    np.not_equal(walks[1:], walks[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    if len(starts) == n:                                # one term per walk
        return walks, terms
    if n <= SMALL_JOIN:
        return _drop_contained_small(walks, terms, bits)
    counts = np.append(starts[1:], n) - starts
    if counts.max() <= FEW_TERMS:
        return _drop_contained_near(walks, terms, bits, int(counts.max()))
    words = _words(bits)                                                  # (T, k) uint64
    columns = np.ascontiguousarray(words.T) if words.shape[1] <= NEAR_WORDS else None   # (long rows: by rows)
    marks = _MARKS[bits].sum(axis=1)                                      # per term its marks
    if LARGEST_FIRST:
        keep = ~_inside_largest(walks, terms, columns, bits, marks, starts, counts)
        if not keep.all():                                                # (what is left: tested pair by pair)
            walks, terms = walks[keep], terms[keep]
            new = np.concatenate(([True], walks[1:] != walks[:-1]))
            starts = np.flatnonzero(new)
            if len(starts) == len(walks):
                return walks, terms
            counts = np.append(starts[1:], len(walks)) - starts
    many = counts > 1
    starts, counts = starts[many], counts[many]
    squares = counts * counts
    block = np.repeat(np.cumsum(squares) - squares, squares)                # where each walk's pairs begin
    local = np.arange(int(squares.sum())) - block
    size = np.repeat(counts, squares)
    first = np.repeat(starts, squares)
    a, b = first + local // size, first + local % size                    # every ordered pair in one walk
    term_a, term_b = terms[a], terms[b]
    k = words.shape[1]
    lead = np.argmax(words != 0, axis=1)                                  # its first non-zero word
    low = words[np.arange(len(words)), lead]
    low &= ~low + np.uint64(1)                                            # that word's lowest mark (0: no mark)
    # a's term inside b's (distinct terms): fewer marks, and b has a's lowest mark; then word by word
    maybe = np.flatnonzero((marks[term_a] < marks[term_b]) &
                           (words.ravel()[term_b * k + lead[term_a]] & low[term_a] == low[term_a]))
    keep = np.ones(len(walks), dtype=bool)
    keep[a[maybe[_inside(columns, bits, term_a[maybe], term_b[maybe])]]] = False
    return walks[keep], terms[keep]


def _inside_largest(walks: np.ndarray, terms: np.ndarray, columns: np.ndarray | None, bits: np.ndarray,
                    marks: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per pair whether its term lies inside its walk's largest term (most marks, the first of equals), another
    term: one test a pair instead of one a pair of pairs, and where a walk's terms nest (after a dense conv's
    channels) all it takes. What it leaves needs testing only among itself: a term inside a dropped one is inside
    the largest too."""
    per_pair = marks[terms]
    most = np.maximum.reduceat(per_pair, starts)
    top = np.flatnonzero(per_pair == np.repeat(most, counts))
    firsts = top[np.concatenate(([True], walks[top[1:]] != walks[top[:-1]]))]       # one largest a walk
    largest = np.repeat(terms[firsts], counts)
    maybe = np.flatnonzero(per_pair < per_pair[np.repeat(firsts, counts)])          # (never the largest itself)
    inside = np.zeros(len(walks), dtype=bool)
    inside[maybe[_inside(columns, bits, terms[maybe], largest[maybe])]] = True
    return inside


def _inside(columns: np.ndarray | None, bits: np.ndarray, mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Per pair whether term ``mine`` lies inside term ``theirs``: word by word (``columns``: the terms' 64-bit
    words, column by column), or row by row where the rows are long (``columns`` None: `NEAR_WORDS`)."""
    if columns is None:
        return ~(bits[mine] & ~bits[theirs]).any(axis=1)
    outside = np.zeros(len(mine), dtype=np.uint64)                        # mine's marks that theirs lacks
    for column in columns:
        outside |= column[mine] & ~column[theirs]
    return outside == 0


def _words(bits: np.ndarray) -> np.ndarray:
    """Packed rows (uint8, (T, B)) as 64-bit words (uint64, (T, ceil(B / 8))), zeros after the last byte."""
    width = -(-bits.shape[1] // 8) * 8
    padded = np.zeros((len(bits), width), dtype=np.uint8)
    padded[:, :bits.shape[1]] = bits
    return padded.view(np.uint64)


def _drop_contained_near(walks: np.ndarray, terms: np.ndarray, bits: np.ndarray, most: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """`_drop_contained` where no walk holds more than ``most`` terms (a few): each pair of one walk's terms is k
    places apart (k < most) in the sorted pairs, so per k one test of every pair k apart in the same walk, both
    ways, finds the same contained terms without building every ordered pair: in 64-bit words column by column
    for rows of at most `NEAR_WORDS` words, row by row for longer ones (a long 1-D signal's marks)."""
    keep = np.ones(len(walks), dtype=bool)
    words = _words(bits)
    columns = np.ascontiguousarray(words.T) if words.shape[1] <= NEAR_WORDS else None
    rows = bits[terms] if columns is None else None
    for k in range(1, most):
        same = np.flatnonzero(walks[k:] == walks[:-k])
        if not len(same):
            continue
        if columns is None:
            first, second = rows[same], rows[same + k]
            keep[same[~(first & ~second).any(axis=1)]] = False          # the first inside the second
            keep[same[~(second & ~first).any(axis=1)] + k] = False      # the second inside the first
            continue
        first, second = terms[same], terms[same + k]
        first_out = np.zeros(len(same), dtype=np.uint64)          # the first's marks the second lacks
        second_out = np.zeros(len(same), dtype=np.uint64)         # and the other way round
        for column in columns:
            mine, theirs = column[first], column[second]
            first_out |= mine & ~theirs
            second_out |= theirs & ~mine
        keep[same[first_out == 0]] = False                        # the first inside the second
        keep[same[second_out == 0] + k] = False                   # the second inside the first
    if keep.all():
        return walks, terms
    return walks[keep], terms[keep]


def _drop_contained_small(walks: np.ndarray, terms: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_drop_contained` for a few pairs, in plain Python: each term's bits as one int (a inside b: a & ~b == 0)."""
    walk_list, term_list = walks.tolist(), terms.tolist()
    rows = {t: int.from_bytes(bits[t].tobytes(), "little") for t in set(term_list)}
    keep = [True] * len(walk_list)
    start = 0
    while start < len(walk_list):
        end = start
        while end < len(walk_list) and walk_list[end] == walk_list[start]:
            end += 1
        for a in range(start, end):
            mine = rows[term_list[a]]
            if any(b != a and not mine & ~rows[term_list[b]] for b in range(start, end)):
                keep[a] = False
        start = end
    if all(keep):
        return walks, terms
    chosen = np.array(keep)
    return walks[chosen], terms[chosen]


def _compact(walks: np.ndarray, terms: np.ndarray, dims: tuple[np.ndarray, ...]) -> Terms:
    """Only the terms some pair uses (numbered in their order); reduced (what `joined` leaves); ``walks`` sorted."""
    used = np.zeros(len(dims[0]), dtype=bool)
    used[terms] = True
    single = bool((walks[1:] != walks[:-1]).all())
    if used.all():
        return Terms(walks, terms, dims, reduced=True, single=single, distinct=True)
    return Terms(walks, (np.cumsum(used) - 1)[terms], tuple(d[used] for d in dims), reduced=True, single=single,
                 distinct=True)


def stepped(terms: Terms, factors: Factors, in_shape: Sequence[int]) -> Terms | None:
    """The terms over one input of a layer with these factors (None: no term reaches it). A dim whose relation
    has every output position read something keeps every term's set non-empty (no test); the result is reduced
    where the terms were and every relation is one-to-one onto disjoint reads (`proof.steps.traits`), or where
    they were single (as it then is)."""
    if factors.sources is None and all(relation is None for relation in factors.relations):
        return terms                                          # each element reads its own: the same terms
    alive = None     # every term's sets are non-empty (seeds, `factor`, this test): a total relation keeps them so
    paired = factors.sources is None or sorted(factors.sources) == list(range(len(in_shape)))   # (dims moved only)
    apart = None          # the input dim paired with the terms' disjoint dim, where its relation keeps sets apart
    if terms.disjoint is not None and paired and not terms.single:
        d = terms.disjoint if factors.sources is None else factors.sources.index(terms.disjoint)
        apart = d if injective(factors.relations[d], terms.dims[terms.disjoint].shape[1]) else None
    keeps = terms.single or terms.reduced and paired       # reduced after the step (so far)
    distinct = terms.distinct and paired                   # distinct after the step (so far)
    dims = []
    for d, relation in enumerate(factors.relations):
        sets = terms.dims[factors.source(d)]
        found = step(relation, sets, in_shape[d])
        dims.append(found)
        total, one_to_one = traits(relation, sets.shape[1], (keeps and not terms.single) or distinct)
        keeps = keeps and (one_to_one or terms.single)
        distinct = distinct and one_to_one
        if total and found.shape[1]:
            continue
        alive = found.any(axis=1) if alive is None else alive & found.any(axis=1)
    if alive is not None and not alive.all():
        if not alive.any():
            return None
        renumber = np.cumsum(alive) - 1
        keep = alive[terms.terms]
        return Terms(terms.walks[keep], renumber[terms.terms[keep]], tuple(np.ascontiguousarray(d[alive]) for d in dims),
                     reduced=keeps or apart is not None, single=terms.single, distinct=distinct, disjoint=apart)
    if not terms.count:
        return None
    return Terms(terms.walks, terms.terms, tuple(np.ascontiguousarray(d) for d in dims),
                 reduced=keeps or apart is not None, single=terms.single, distinct=distinct, disjoint=apart)


def products(dims: Sequence[np.ndarray], channels: bool = True) -> np.ndarray:
    """Each term's product as a whole mask, channels-last ((T, *spatial, C) bool; ``channels`` False: without
    the channel axis, (T, *spatial))."""
    spatial = dims[1:]
    count = len(dims[0])
    result = np.ones((count,) + (1,) * len(spatial), dtype=bool)
    for axis, d in enumerate(spatial):
        shape = [count] + [1] * len(spatial)
        shape[axis + 1] = d.shape[1]
        result = result & d.reshape(shape)
    if channels:
        result = result[..., None] & dims[0].reshape((count,) + (1,) * len(spatial) + (dims[0].shape[1],))
    return result


def by_walk(terms: Terms, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(walk ids, per walk the union of its terms' ``masks``), walks in increasing order."""
    order = np.argsort(terms.walks, kind="stable")
    walks, picked = terms.walks[order], terms.terms[order]
    starts = np.flatnonzero(np.concatenate(([True], walks[1:] != walks[:-1])))
    return walks[starts], np.logical_or.reduceat(masks[picked], starts, axis=0)


def dense(terms: Terms) -> tuple[np.ndarray, np.ndarray]:
    """(walk ids, their whole masks, channels-last `MASK_DTYPE`, one channel where every term of every walk has
    every channel)."""
    full = bool(terms.dims[0].all())
    if full:
        masks = products(terms.dims, channels=False)[..., None]
    else:
        masks = products(terms.dims)
    walks, union = by_walk(terms, masks)
    return walks, union.astype(MASK_DTYPE)


def factor(masks: np.ndarray, shape: Sequence[int]) -> tuple[np.ndarray, Terms | None]:
    """Whole masks (channels-last, (k, *spatial, 1 or C)) of a layer of ``shape`` as terms where a mask is one
    product: (per mask whether it is one, the terms of those, walk ids = their mask indices). Empty masks are
    products of nothing (no term)."""
    marked = masks != 0
    count = len(marked)
    spatial = len(shape) - 1
    channel_axis = marked.ndim - 1
    dims = []
    for d in range(len(shape)):
        axis = channel_axis if d == 0 else d
        others = tuple(a for a in range(1, marked.ndim) if a != axis)
        found = marked.any(axis=others) if others else marked
        if found.shape[1] != shape[d]:              # one channel kept: every channel alike
            found = np.broadcast_to(found, (count, shape[d]))
        dims.append(np.ascontiguousarray(found))
    product = products(dims, channels=marked.shape[-1] != 1 or spatial == 0) if spatial else dims[0]
    if spatial and marked.shape[-1] == 1:
        product = product[..., None]
    if not spatial:
        product = dims[0] if marked.shape[-1] != 1 else dims[0][:, :1]
    is_product = (product == marked).reshape(count, -1).all(axis=1)
    nonempty = marked.reshape(count, -1).any(axis=1)
    chosen = np.flatnonzero(is_product & nonempty)
    if not len(chosen):
        return is_product, None
    return is_product, Terms(chosen, np.arange(len(chosen)), tuple(d[chosen] for d in dims), reduced=True,
                             single=True)


__all__ = ["Terms", "by_walk", "dense", "factor", "joined", "products", "side_by_side", "stepped"]
