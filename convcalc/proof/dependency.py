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

It never tests a layer's type.
"""

from __future__ import annotations

from typing import Any, Sequence

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

    def masks(self, layer: str, units: Sequence[Sequence[int]] | None = None) -> np.ndarray:
        """Per unit of ``layer`` (a position of its output, all channels; None: one row for the whole output), the
        network-input positions it can depend on through any channel: bool (len(units), *input spatial)."""
        return self.propagate(layer, self.seeds(layer, units)).any(axis=-1)


def dependency_masks(source: Summary | Graph | Any, layer: str,
                     units: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """One-shot `Dependencies.masks`."""
    return Dependencies(source).masks(layer, units)


__all__ = ["Dependencies", "dependency_masks", "summary_of"]
