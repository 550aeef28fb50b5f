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
`Dependencies.propagate_many` walks many layers' units in one reverse sweep: each layer steps every walk reaching
it in one call, and walks whose masks become equal (bit for bit) continue as one, exactly as their own walks would.

It never tests a layer's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.summary import Summary, analyze
from ..errors import ConvcalcError, did_you_mean
from ..spec.graph import INPUT, Graph
from ..layers.base import Shape
from ..layers.support import MASK_DTYPE, support_step


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
        pending: dict[str, list[_Rows]] = {}
        offsets, start = {}, 0
        for layer, rows in seeds.items():
            offsets[layer] = (start, len(rows))
            start += len(rows)
        if INPUT in seeds:
            pending[INPUT] = [_seeded(seeds[INPUT], offsets[INPUT][0])]
        held = 0
        for node in reversed(self.graph.nodes):
            parts = pending.pop(node.name, [])
            held -= sum(part.masks.nbytes for part in parts)
            if node.name in seeds:
                parts.append(_seeded(seeds[node.name], offsets[node.name][0]))
            if not parts:
                continue
            in_shapes = [self.shapes[name] for name in node.inputs]
            for rows in _groups(parts):
                self.steps += 1
                found = support_step(node.layer, rows.masks, in_shapes, self.shapes[node.name], self.cache)
                for name, got in zip(node.inputs, found):
                    index, distinct = _distinct(got)
                    pending.setdefault(name, []).append(_Rows(rows.ids, index[rows.index], distinct))
                    held += distinct.nbytes
                if most_bytes is not None and held > most_bytes:
                    raise SweepTooLarge(f"the masks of {start} walks take {held} bytes at layer '{node.name}'")
        reached = _merge(pending[INPUT]) if INPUT in pending else _Rows(np.zeros(0, dtype=np.intp),
                                                                         np.zeros(0, dtype=np.intp), None)
        spatial = tuple(self.shapes[INPUT][1:])
        masks = np.zeros((1, *spatial), dtype=bool)            # the last row: what a walk that never arrives reaches
        if reached.masks is not None:
            masks = np.concatenate([reached.masks.any(axis=-1), masks])
        found = np.full(start, len(masks) - 1, dtype=np.intp)
        found[reached.ids] = reached.index
        return masks, {layer: found[first:first + count] for layer, (first, count) in offsets.items()}

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


def dependency_masks(source: Summary | Graph | Any, layer: str,
                     units: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """One-shot `Dependencies.masks`."""
    return Dependencies(source).masks(layer, units)


__all__ = ["Dependencies", "SweepTooLarge", "dependency_masks", "summary_of"]
