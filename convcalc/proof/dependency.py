"""Exact dependency propagation: which network-input positions each chosen output unit can be influenced by.

A reverse walk over the graph from one layer to the input, one layer unit at a time (``support_step`` in
`convcalc.layers.support`, which asks the unit's ``support_uniform``/``support_backward``). Each unit's rule is its
backward pass on a *structural* instance (all-ones weights, zero biases, identity BatchNorm, all-ones inputs),
thresholded to a 0/1 mask after every layer, or its own exact rule where a VJP can drop a real dependency (a max
routes to its argmax; ReLU6 saturates; a softmax over the channels of a constant map has gradient 0). Nothing
here reads the receptive-field analysis (`convcalc.algebra`): the masks are a measurement, to check it with
(`convcalc.proof.verify`).

The units are batched along the batch axis: row b of the walk carries unit b's mask. A unit is a spatial position
of the layer's output, all channels marked (a vector output: all its features). Masks the same on every channel
travel with one channel, so a walk costs about as much as one single-channel backward pass per unit.
`Dependencies.propagate_many` (and `propagate_hulls`, which the proof uses) walks many layers' units in one
reverse sweep: each layer steps every walk reaching it in one call. There a mask is a union of products of per-dim
sets (`proof.terms`), stepped through each layer's per-dim relations (`Layer.support_factors`); only a layer
without them (a Flatten) steps whole masks, which continue as products again where they are one. Walks whose
masks become equal (bit for bit) continue as one, exactly as their own walks would.

It never tests a layer's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.summary import Summary, analyze
from ..errors import ConvcalcError, did_you_mean
from ..spec.graph import INPUT, Graph
from .hulls import hulls_of
from ..layers.base import Shape
from ..layers.factors import Factors, Taps
from ..layers.support import MASK_DTYPE, support_step
from .steps import prepared
from .terms import Terms, by_walk, dense, factor, joined, products, side_by_side, stepped


def summary_of(source: Any) -> Summary:
    """A Summary from a Summary, an `execution.network.Network` (its summary) or a Graph (analysed at its input shape)."""
    if isinstance(source, Summary):
        return source
    if isinstance(getattr(source, "summary", None), Summary):
        return source.summary
    if isinstance(source, Graph):
        return analyze(source)
    raise TypeError(f"expected a Summary, Network or Graph, got {type(source).__name__}")


class Dependencies:
    """Dependency masks of a network's layers (at the input shape it was analysed for)."""

    def __init__(self, source: Summary | Graph | Any):
        self.summary = summary_of(source)
        self.graph = self.summary.graph
        self.nodes = {node.name: node for node in self.graph.nodes}
        self.shapes: dict[str, Shape] = {INPUT: tuple(self.summary.input_shape)}
        for row in self.summary.layers:
            self.shapes[row.name] = tuple(row.output_shape)
        self.cache: dict = {}          # structural instances of the layers that need one (support_step)
        self.steps = 0                 # layer steps run so far (for cost reports)
        self._factors: dict[str, list[Factors] | None] = {}

    def ancestors(self, layer: str) -> set[str]:
        """``layer`` and every layer it reads, directly or not (``input`` excluded)."""
        return set(self.graph.ancestors(layer))

    def seeds(self, layer: str, units: Sequence[Sequence[int]] | None) -> np.ndarray:
        """The walk's starting masks: one row per unit, the unit's position marked on every channel (one channel
        kept); a vector output (or ``units`` None on one): one row with every feature marked."""
        shape = self.shapes[layer]
        spatial = shape[1:]
        if len(shape) < 2 or units is None:
            return np.ones((1, *spatial, 1), dtype=MASK_DTYPE)
        units = [tuple(int(u) for u in unit) for unit in units]
        seeds = np.zeros((len(units), *spatial, 1), dtype=MASK_DTYPE)
        for row, unit in enumerate(units):
            if len(unit) != len(spatial) or not all(0 <= u < n for u, n in zip(unit, spatial)):
                raise ConvcalcError(f"unit {list(unit)} is not a position of '{layer}''s output"
                                    f" [{', '.join(map(str, spatial))}]")
            seeds[(row, *unit, 0)] = 1.0
        return seeds

    def seeds_at(self, layer: str, positions: Sequence[Sequence[int | None]]) -> np.ndarray:
        """As `seeds`, for positions given per batchless dim of the output, None meaning every index along that dim
        (a dim that is no spatial axis of the field: the channels, wherever a Permute put them)."""
        shape = self.shapes[layer]
        seeds = np.zeros((len(positions), *shape[1:], shape[0]), dtype=MASK_DTYPE)
        for row, position in enumerate(positions):
            index = tuple(slice(None) if p is None else int(p) for p in position)
            seeds[(row, *index[1:], index[0])] = 1.0
        return seeds

    def seed_terms(self, layer: str, positions: Sequence[Sequence[int | None]]) -> Terms:
        """The walks' starting masks as terms (`proof.terms`), one per row: per batchless dim of the output (the
        channels first) a position, or None for every index along that dim."""
        shape = self.shapes[layer]
        dims = tuple(np.zeros((len(positions), n), dtype=bool) for n in shape)
        for row, position in enumerate(positions):
            if len(position) != len(shape) or not all(p is None or 0 <= p < n for p, n in zip(position, shape)):
                raise ConvcalcError(f"unit {[p for p in position[1:]]} is not a position of '{layer}''s output"
                                    f" [{', '.join(map(str, shape[1:]))}]")
            for d, p in enumerate(position):
                dims[d][row, slice(None) if p is None else int(p)] = True
        distinct = len({tuple(position) for position in positions}) == len(positions)
        return Terms(np.arange(len(positions)), np.arange(len(positions)), dims, reduced=True, single=True,
                     distinct=distinct)

    def propagate(self, layer: str, seeds: np.ndarray) -> np.ndarray:
        """The walk from ``layer``'s output masks ``seeds`` (channels-last, rows = units) to the network input:
        its 0/1 mask, channels-last (one channel where the same on every channel)."""
        if layer != INPUT and layer not in self.nodes:
            raise ConvcalcError(f"no layer '{layer}' in the network; {did_you_mean(layer, [INPUT, *self.nodes])}")
        if layer == INPUT:
            return seeds
        needed = self.ancestors(layer)
        masks: dict[str, np.ndarray] = {layer: seeds}
        for node in reversed(self.graph.nodes):
            if node.name not in needed:
                continue
            mask = masks.pop(node.name, None)
            if mask is None or not mask.any():
                continue
            in_shapes = [self.shapes[name] for name in node.inputs]
            self.steps += 1
            found = support_step(node.layer, mask, in_shapes, self.shapes[node.name], self.cache)
            for name, got in zip(node.inputs, found):
                masks[name] = got if name not in masks else np.maximum(masks[name], got)
        result = masks.get(INPUT)
        if result is None:
            input_shape = self.shapes[INPUT]
            store = (*input_shape[1:], 1) if len(input_shape) > 1 else (1,)
            return np.zeros((seeds.shape[0], *store), dtype=MASK_DTYPE)
        return result

    def propagate_many(self, seeds: Mapping[str, np.ndarray], most_bytes: int | None = None
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`propagate` from many layers at once, in one reverse sweep over the graph, given per layer its output
        masks ``seeds`` (channels-last, rows = units): the distinct input masks reached (bool, (k, *input spatial),
        any channel) and per layer, per seed row, the index of its own among them. Exact: every row's mask takes
        the same layer steps as in its own walk; rows whose masks are equal at some layer (found bit for bit)
        take the rest of the walk as one row, and each layer steps every row reaching it in one call.
        ``most_bytes``: the most the masks waiting for their layer may take (`SweepTooLarge` past it)."""
        for layer in seeds:
            if layer != INPUT and layer not in self.nodes:
                raise ConvcalcError(f"no layer '{layer}' in the network; "
                                    f"{did_you_mean(layer, [INPUT, *self.nodes])}")
        offsets, start = {}, 0
        for layer, rows in seeds.items():
            offsets[layer] = (start, len(rows))
            start += len(rows)
        walk = _Sweep(self, most_bytes, start)
        if INPUT in seeds:
            walk.deliver(INPUT, _seeded(seeds[INPUT], offsets[INPUT][0]))
        for node in reversed(self.graph.nodes):
            if node.name in seeds:
                walk.deliver(node.name, _seeded(seeds[node.name], offsets[node.name][0]))
            walk.step(node)
        return walk.arrived(start, offsets)

    def propagate_hulls(self, seeds: Mapping[str, np.ndarray | Terms], most_bytes: int | None = None
                        ) -> tuple[list, dict[str, np.ndarray]]:
        """`propagate_many`, giving per walk the hull of its input mask (per spatial axis its first and last
        position, None: nothing reached) instead of the masks: (hulls, per layer per seed row its index there).
        A layer's seeds: whole masks, or terms (`seed_terms`, walk ids 0, 1, ... per row)."""
        offsets, start = {}, 0
        for layer, rows in seeds.items():
            if layer != INPUT and layer not in self.nodes:
                raise ConvcalcError(f"no layer '{layer}' in the network; "
                                    f"{did_you_mean(layer, [INPUT, *self.nodes])}")
            count = int(rows.walks.max(initial=-1)) + 1 if isinstance(rows, Terms) else len(rows)
            offsets[layer] = (start, count)
            start += count
        walk = _Sweep(self, most_bytes, start)
        if INPUT in seeds:
            walk.seed(INPUT, seeds[INPUT], offsets[INPUT][0])
        for node in reversed(self.graph.nodes):
            if node.name in seeds:
                walk.seed(node.name, seeds[node.name], offsets[node.name][0])
            walk.step(node)
        hulls = walk.hulls(start)
        return hulls, {layer: np.arange(first, first + count) for layer, (first, count) in offsets.items()}

    def factors(self, name: str) -> list[Factors] | None:
        """The layer's `support_factors` at its shapes (checked against them; cached), None where it has none."""
        if name in self._factors:
            return self._factors[name]
        node = self.nodes[name]
        in_shapes = [self.shapes[source] for source in node.inputs]
        out_shape = self.shapes[name]
        found = node.layer.support_factors(in_shapes, out_shape)
        if found is not None:
            _check_factors(name, found, in_shapes, out_shape)
            found = [prepared(factors) for factors in found]
        self._factors[name] = found
        return found

    def masks(self, layer: str, units: Sequence[Sequence[int]] | None = None) -> np.ndarray:
        """Per unit of ``layer`` (a position of its output, all channels; None: one row for the whole output), the
        network-input positions it can depend on through any channel: bool (len(units), *input spatial)."""
        return self.propagate(layer, self.seeds(layer, units)).any(axis=-1)


class SweepTooLarge(ConvcalcError):
    """A `Dependencies.propagate_many` sweep whose waiting masks outgrew its ``most_bytes`` (walk fewer at once)."""


@dataclass(frozen=True)
class _Rows:
    """Many walks' masks at one layer: walk ``ids[i]`` has mask ``masks[index[i]]`` (the distinct masks once)."""

    ids: np.ndarray
    index: np.ndarray
    masks: np.ndarray


def _distinct(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``masks`` (compared by their non-zero pattern, bit for bit) and per row its index."""
    if len(masks) <= 1:
        return np.zeros(len(masks), dtype=np.intp), masks
    bits = np.packbits(masks.reshape(len(masks), -1) != 0, axis=1)
    keys = np.ascontiguousarray(bits).view(np.dtype((np.void, bits.shape[1]))).ravel()
    _, first, index = np.unique(keys, return_index=True, return_inverse=True)
    if len(first) == len(masks):
        return np.arange(len(masks)), masks
    return index.reshape(-1), masks[first]


def _seeded(seeds: np.ndarray, first: int) -> _Rows:
    """The walks ``first``, ``first + 1``, ... starting from ``seeds`` (one row each)."""
    index, distinct = _distinct(seeds)
    return _Rows(np.arange(first, first + len(seeds)), index, distinct)


def _restrict(rows: _Rows, keep: np.ndarray) -> _Rows:
    """The walks ``keep`` selects (bool per walk), with only the masks they use."""
    used, index = np.unique(rows.index[keep], return_inverse=True)
    return _Rows(rows.ids[keep], index.reshape(-1), rows.masks[used])


def _by_uniformity(rows: _Rows) -> list[_Rows]:
    """The walks whose masks are the same on every channel (kept with one channel), then the others."""
    masks = rows.masks
    if masks.ndim < 2 or masks.shape[-1] == 1:
        return [rows]
    same = (masks == masks[..., :1]).reshape(len(masks), -1).all(axis=1)
    if not same.any():
        return [rows]
    walks = same[rows.index]
    uniform = _restrict(rows, walks)
    uniform = _Rows(uniform.ids, uniform.index, np.ascontiguousarray(uniform.masks[..., :1]))
    return [uniform, _restrict(rows, ~walks)] if not walks.all() else [uniform]


def _groups(parts: Sequence[_Rows]) -> list[_Rows]:
    """A layer's contributions merged (per walk the union of its masks) into at most two groups, stepped apart:
    the walks whose masks are the same on every channel (one channel), and the others (every channel)."""
    split = [piece for part in parts for piece in _by_uniformity(part)]
    uniform = [part for part in split if part.masks.ndim < 2 or part.masks.shape[-1] == 1]
    multi = [part for part in split if part.masks.ndim >= 2 and part.masks.shape[-1] > 1]
    if not multi or not uniform:
        return [_merge(split)]
    multi_ids = np.concatenate([part.ids for part in multi])
    alone, joined = [], []
    for part in uniform:
        inside = np.isin(part.ids, multi_ids)
        if not inside.all():
            alone.append(_restrict(part, ~inside))
        if inside.any():
            joined.append(_restrict(part, inside))
    return ([_merge(alone)] if alone else []) + [_merge(multi + joined)]


def _merge(parts: Sequence[_Rows]) -> _Rows:
    """One `_Rows` from contributions (a layer read by several): per walk the union of its masks."""
    if len(parts) == 1:
        return parts[0]
    every = np.concatenate([part.ids for part in parts])
    ids = np.unique(every)
    if len(ids) == len(every):                   # no walk in two parts: the parts side by side
        channels = max(part.masks.shape[-1] for part in parts)
        masks = [part.masks if part.masks.shape[-1] == channels else
                 np.broadcast_to(part.masks, (*part.masks.shape[:-1], channels)) for part in parts]
        offsets = np.cumsum([0] + [len(part.masks) for part in parts[:-1]])
        index = np.concatenate([part.index + offset for part, offset in zip(parts, offsets)])
        order = np.argsort(every, kind="stable")
        unique_index, distinct = _distinct(np.concatenate(masks))
        return _Rows(every[order], unique_index[index[order]], distinct)
    columns = []
    for part in parts:
        column = np.full(len(ids), -1, dtype=np.intp)
        column[np.searchsorted(ids, part.ids)] = part.index
        columns.append(column)
    combos, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    merged = None
    for j, part in enumerate(parts):
        have = combos[:, j] >= 0
        if merged is None and have.all():
            same = len(combos) == len(part.masks) and np.array_equal(combos[:, j], np.arange(len(combos)))
            merged = part.masks.copy() if same else part.masks[combos[:, j]]
            continue
        if merged is None:
            channels = max(p.masks.shape[-1] for p in parts)
            merged = np.zeros((len(combos), *part.masks.shape[1:-1], channels), dtype=MASK_DTYPE)
        if have.all():
            merged = np.maximum(merged, part.masks[combos[:, j]])
        else:
            if merged.shape[-1] < part.masks.shape[-1]:
                merged = np.repeat(merged, part.masks.shape[-1], axis=-1)
            rows = np.flatnonzero(have)
            merged[rows] = np.maximum(merged[rows], part.masks[combos[rows, j]])
    index, distinct = _distinct(merged)
    return _Rows(ids, index[inverse.reshape(-1)], distinct)


def _check_factors(name: str, found: Sequence[Factors], in_shapes: Sequence[Shape], out_shape: Shape) -> None:
    """A layer's factors must fit its shapes: one per input, one relation per input dim, each (n_out, n_in)."""
    problem = None
    if len(found) != len(in_shapes):
        problem = f"{len(found)} factors for {len(in_shapes)} inputs"
    for factors, shape in zip(found, in_shapes):
        if problem is None and len(factors.relations) != len(shape):
            problem = f"{len(factors.relations)} relations for an input of rank {len(shape)}"
        for d, relation in enumerate(factors.relations if problem is None else ()):
            n_out = out_shape[factors.source(d)] if factors.source(d) < len(out_shape) else -1
            if relation is None and n_out != shape[d] or \
                    isinstance(relation, (np.ndarray, Taps)) and relation.shape != (n_out, shape[d]):
                problem = f"dim {d}'s relation does not map {n_out} positions to {shape[d]}"
                break
            if isinstance(relation, Taps) and relation.index.size and relation.index.max() >= shape[d]:
                problem = f"dim {d}'s taps read past its {shape[d]} positions"
                break
    if problem is not None:
        raise ConvcalcError(f"layer '{name}': its dependency factors do not fit its shapes ({problem})")


class _Sweep:
    """One `Dependencies.propagate_many` sweep: per layer the walks waiting for it, as terms (`proof.terms`:
    unions of per-dim products) or as whole masks (`_Rows`) where a layer without factors made them no product."""

    def __init__(self, dependencies: "Dependencies", most_bytes: int | None, walks: int):
        self.dependencies = dependencies
        self.shapes = dependencies.shapes
        self.most_bytes = most_bytes
        self.walks = walks
        self.terms: dict[str, list[Terms]] = {}
        self.rows: dict[str, list[_Rows]] = {}
        self.held = 0
        self.held_terms: dict[str, int] = {}     # per layer the bytes of the terms waiting for it (counted once)

    def deliver(self, name: str, rows: _Rows) -> None:
        """Whole masks reaching ``name``'s output: those that are one product continue as terms."""
        is_product, terms = factor(rows.masks, self.shapes[name])
        take = is_product[rows.index]
        if terms is not None:
            position = np.full(len(rows.masks), -1, dtype=np.intp)
            position[terms.walks] = np.arange(len(terms.walks))
            chosen = take & (position[rows.index] >= 0)
            self._add_terms(name, Terms(rows.ids[chosen], position[rows.index[chosen]], terms.dims))
        if not take.all():
            rest = _restrict(rows, ~take)
            self.rows.setdefault(name, []).append(rest)
            self.held += rest.masks.nbytes

    def seed(self, name: str, seeds: np.ndarray | Terms, first: int) -> None:
        """Walks ``first``, ``first + 1``, ... starting at ``name``'s output (whole masks, or terms)."""
        if isinstance(seeds, Terms):
            self._add_terms(name, Terms(seeds.walks + first, seeds.terms, seeds.dims, seeds.reduced, seeds.single,
                                        seeds.distinct))
        else:
            self.deliver(name, _seeded(seeds, first))

    def _add_terms(self, name: str, terms: Terms) -> None:
        self.terms.setdefault(name, []).append(terms)
        if self.most_bytes is not None:                 # (what is held is only counted against a limit)
            size = terms.nbytes
            self.held += size
            self.held_terms[name] = self.held_terms.get(name, 0) + size

    def step(self, node: Any) -> None:
        """Every walk waiting at ``node``: its terms through the layer's factors, its whole masks (and the terms,
        when the layer has no factors) through `support_step`."""
        name = node.name
        parts = self.rows.pop(name, [])
        pieces = self.terms.pop(name, [])
        if self.most_bytes is not None:
            self.held -= sum(part.masks.nbytes for part in parts) + self.held_terms.pop(name, 0)
        if not parts and not pieces:
            return
        in_shapes = [self.shapes[source] for source in node.inputs]
        factors = self.dependencies.factors(name)
        if pieces:
            terms = side_by_side(pieces) or joined(pieces)
            if factors is None:
                walks, masks = dense(terms)
                index, distinct = _distinct(masks)
                parts.append(_Rows(walks, index, distinct))
            else:
                self.dependencies.steps += 1
                for source, rule, shape in zip(node.inputs, factors, in_shapes):
                    found = stepped(terms, rule, shape)
                    if found is not None:
                        self._add_terms(source, found)
        for rows in _groups(parts) if parts else ():
            self.dependencies.steps += 1
            found = support_step(node.layer, rows.masks, in_shapes, self.shapes[name], self.dependencies.cache)
            for source, got in zip(node.inputs, found):
                index, distinct = _distinct(got)
                self.deliver(source, _Rows(rows.ids, index[rows.index], distinct))
        if self.most_bytes is not None and self.held > self.most_bytes:
            raise SweepTooLarge(f"the masks of {self.walks} walks take {self.held} bytes at layer '{name}'")

    def hulls(self, start: int) -> list:
        """Per walk the hull of what it reached at the input (per spatial axis (first, last); None: nothing)."""
        dims = len(self.shapes[INPUT]) - 1
        first = np.full((start, dims), np.iinfo(np.int64).max, dtype=np.int64)
        last = np.full((start, dims), -1, dtype=np.int64)
        arrived = np.zeros(start, dtype=bool)
        if self.rows.get(INPUT):
            reached = _merge(self.rows[INPUT])
            distinct = hulls_of(reached.masks.any(axis=-1))
            for walk, index in zip(reached.ids, reached.index):
                hull = distinct[index]
                if hull is not None:
                    arrived[walk] = True
                    for axis, (lo, hi) in enumerate(hull):
                        first[walk, axis] = min(first[walk, axis], lo)
                        last[walk, axis] = max(last[walk, axis], hi)
        if self.terms.get(INPUT):
            terms = joined(self.terms[INPUT])
            arrived[terms.walks] = True
            for axis in range(dims):
                sets = terms.dims[axis + 1]
                lo = sets.argmax(axis=1)
                hi = sets.shape[1] - 1 - sets[:, ::-1].argmax(axis=1)
                np.minimum.at(first[:, axis], terms.walks, lo[terms.terms])
                np.maximum.at(last[:, axis], terms.walks, hi[terms.terms])
        # per walk one (first, last) pair per axis, made column by column by zip (no Python loop per walk)
        found = list(zip(*(zip(f, l) for f, l in zip(first.T.tolist(), last.T.tolist())))) if dims else \
            [()] * start
        for walk in np.flatnonzero(~arrived).tolist():
            found[walk] = None
        return found

    def arrived(self, start: int, offsets: Mapping[str, tuple[int, int]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The distinct input masks reached (any channel; the last row: nothing) and per layer, per seed row, its
        index among them."""
        spatial = tuple(self.shapes[INPUT][1:])
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        if self.rows.get(INPUT):
            reached = _merge(self.rows[INPUT])
            parts.append((reached.ids, reached.masks.any(axis=-1)[reached.index]))
        if self.terms.get(INPUT):
            terms = joined(self.terms[INPUT])
            parts.append(by_walk(terms, products(terms.dims, channels=False)))
        found = np.full(start, -1, dtype=np.intp)
        masks = np.zeros((1, *spatial), dtype=bool)            # the last row: what a walk that never arrives reaches
        if parts:
            ids = np.unique(np.concatenate([walks for walks, _ in parts]))
            union = np.zeros((len(ids), *spatial), dtype=bool)
            for walks, got in parts:
                union[np.searchsorted(ids, walks)] |= got
            index, distinct = _distinct(union)
            masks = np.concatenate([distinct, masks])
            found[ids] = index
        found[found < 0] = len(masks) - 1
        return masks, {layer: found[first:first + count] for layer, (first, count) in offsets.items()}


def dependency_masks(source: Summary | Graph | Any, layer: str,
                     units: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """One-shot `Dependencies.masks`."""
    return Dependencies(source).masks(layer, units)


__all__ = ["Dependencies", "SweepTooLarge", "dependency_masks", "summary_of"]
