"""Concatenations written in place: a chain of joins, each extending the one before, fills one buffer.

DenseNet's dense layer ends in ``Concat(input, conv2)``, whose input is the previous layer's Concat: each join
copies the whole growing tensor (the sum over a block is quadratic in its layers) and two of them are alive at
once. Where a join's first input is another join along the same axis that nothing else extends, both are slices
of one buffer shaped as the chain's last join (its ``root``): the first join of the chain (its ``head``)
allocates the buffer and writes its inputs into it, each later join writes only its new inputs after the earlier
ones, and every join's output is the view ``buffer[..., :stop]`` along the axis (its values are what
``np.concatenate`` gives: the same bytes). The copies become linear in the block's size and one buffer is alive
instead of two.

A unit offers this with ``joined_axis(in_shapes)``: the stored arrays' axis it joins along. The executor checks at
run time that a join's first input is still the very view the chain handed out (`Network._join`); in-place
writes never reach a view other layers still read (`Network._memory_free` checks every live array sharing its
memory), so an earlier join's values stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..spec.graph import INPUT, Graph


@dataclass(frozen=True, slots=True)
class Slab:
    """One join of a chain: its slice of the chain's buffer."""

    root: str              # the chain's last join: the buffer has its output's shape
    head: str              # the chain's first join: it allocates the buffer
    axis: int              # the stored arrays' axis joined along
    start: int             # where this join's own new inputs begin along it (0 for the head: all its inputs)
    stop: int              # its output's length along it
    length: int            # the root's (the buffer's) length along it
    parent: str | None     # the join this one extends (its first input); None for the head


def concat_chains(graph: Graph, shape_of: Callable[[str], Sequence[int]]) -> dict[str, Slab]:
    """Per join in a chain of at least two (the joins of ``graph`` with ``joined_axis``), its `Slab`. A join
    extends its first input when that is a join along the same stored axis, of the same rank, not the graph's
    output, not among its other inputs, and extended by no other join. ``shape_of``: a name's batchless shape."""
    axes: dict[str, int] = {}
    inputs_of = {node.name: tuple(node.inputs) for node in graph.nodes}
    for node in graph.nodes:
        joined = getattr(node.layer, "joined_axis", None)
        if joined is not None and len(node.inputs) >= 2:
            axes[node.name] = joined([shape_of(name) for name in node.inputs])
    extenders: dict[str, list[str]] = {}
    for name in axes:
        extenders.setdefault(inputs_of[name][0], []).append(name)
    parent_of: dict[str, str] = {}
    for name, axis in axes.items():
        inputs = inputs_of[name]
        first = inputs[0]
        if (first == INPUT or first not in axes or axes[first] != axis or first == graph.output
                or first in inputs[1:] or extenders.get(first) != [name]
                or len(shape_of(first)) != len(shape_of(name))):
            continue
        parent_of[name] = first
    child_of = {parent: child for child, parent in parent_of.items()}
    slabs: dict[str, Slab] = {}
    for name in axes:
        if name in parent_of or name not in child_of:     # not a head, or a chain of one
            continue
        chain = [name]
        while chain[-1] in child_of:
            chain.append(child_of[chain[-1]])
        root, axis = chain[-1], axes[name]
        length = _stored_length(shape_of(root), axis)
        for index, member in enumerate(chain):
            parent = chain[index - 1] if index else None
            start = _stored_length(shape_of(parent), axis) if parent is not None else 0
            slabs[member] = Slab(root, name, axis, start, _stored_length(shape_of(member), axis), length, parent)
    return slabs


def _stored_length(shape: Sequence[int], axis: int) -> int:
    """The length along stored axis ``axis`` (batch 0, then the spatial axes, channels last) of a batchless
    PyTorch shape (C, *S)."""
    stored = (*shape[1:], shape[0]) if len(shape) > 1 else tuple(shape)
    return stored[axis - 1]


__all__ = ["Slab", "concat_chains"]
