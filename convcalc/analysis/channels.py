"""Receptive fields per channel segment: one step of the analysis walk.

A tensor's channels need not share one field: after a Concat of a 1×1 branch and a 5×5 branch the first channels
see 1×1 windows and the others 5×5 ones, and a slice of the first (Narrow, Split, Chunk, a channel shuffle, the
groups of a grouped conv) sees 1×1 only. The walk therefore keeps, per tensor, its field (the hull over its
channels, what every report shows) and, where channels differ, `Runs`: consecutive channel ranges with their own
field. Each layer says which input channels each output channel reads (`Layer.channel_reads`,
`convcalc.layers.channels`); an output segment's field is the layer's own rule (`Layer.field_of`) applied to the
fields of the input segments it reads (several of one input: their union hull, `algebra.merge`). Nothing here
tests a layer's type.

The reported field is the layer's rule applied to each input's hull over the channels the layer reads: for every
layer that reads all its inputs' channels that is exactly the field a channel-blind walk gives; a layer that reads
some of them (a slice) gets the hull of those alone. Where every channel shares one field (a chain, a ResNet) no
runs are kept and the step is one call of the rule, as before.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import groupby
from typing import Optional, Sequence

from ..algebra import Field, merge
from ..layers.base import Layer, Shape
from ..layers.channels import MOST_CHANNELS, SAME, Block, Gather, Source

MOST_BLOCKS = 1024      # blocks of reads (windows, groups) followed per layer, at most
MOST_FIELDS = 64        # distinct fields kept per tensor, at most
Runs = tuple[tuple[int, int, Field], ...]       # (start, stop, field): consecutive channel ranges covering [0, C)


def step(layer: Layer, name: str, hulls: Sequence[Field], runs: Sequence[Optional[Runs]],
         in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[Field, Optional[Runs]]:
    """The field of layer ``name``'s output (named) and its runs (None: one field for every channel), from its
    inputs' fields ``hulls`` (unflagged) and runs."""
    if len(hulls) == 1 and runs[0] is None:
        return layer.field_of(hulls, in_shapes, out_shape).named(name), None
    blocks = _blocks(layer, hulls, in_shapes, out_shape)
    every = set(range(len(hulls)))
    if blocks is None or all(r is None for r in runs) and (
            {blocks.input} == every if isinstance(blocks, Gather) else
            all({s.input for s in b.sources} == every for b in blocks)):
        # every output channel reads alike: a dense layer, or an Add of tensors each with one field
        return layer.field_of(hulls, in_shapes, out_shape).named(name), None
    runs = [None if r is None else _Indexed(r) for r in runs]
    read = [_read_hull(index, hull, runs[index], blocks, in_shapes[index]) for index, hull in enumerate(hulls)]
    reported = layer.field_of(read, in_shapes, out_shape).named(name)
    found: list[tuple[int, int, Field]] = []
    cache: dict[tuple, Field] = {}
    unions: dict[tuple, Field] = {}

    def field_for(per_input: tuple[tuple[int, list[Field]], ...]) -> Field:
        """The field of output channels reading ``per_input``: (input, the fields of the channels read) pairs."""
        key = tuple((index, tuple(dict.fromkeys(id(f) for f in fields))) for index, fields in per_input)
        field = cache.get(key)
        if field is None:
            if not per_input:                    # channels that read no input (a window past the channels)
                field = reported.unflagged()
            else:
                inputs = [index for index, _ in per_input]
                merged = [_union(fields, in_shapes[index], unions) for index, fields in per_input]
                field = _linked(layer.field_of(merged, [in_shapes[i] for i in inputs], out_shape).unflagged(),
                                reported)
            cache[key] = field
        return field

    def add(start: int, stop: int, field: Field) -> None:
        if found and found[-1][2] is field and found[-1][1] == start:
            found[-1] = (found[-1][0], stop, field)
        else:
            found.append((start, stop, field))

    carried: dict[tuple[int, int], Field] = {}

    def carry(index: int, field: Field) -> Field:
        """The field of output channels that read one channel of input ``index``, of field ``field``."""
        key = (index, id(field))
        found_field = carried.get(key)
        if found_field is None:
            found_field = carried[key] = field_for(((index, [field]),))
        return found_field

    if isinstance(blocks, Gather):
        # a permutation: the channels' fields gathered channel by channel, then cut into runs again
        own = runs[blocks.input]
        if own is None:
            fields = [carry(blocks.input, hulls[blocks.input])] * in_shapes[blocks.input][0]
        else:
            mapped = {id(field): carry(blocks.input, field) for field in own.distinct()}
            fields = []
            for first, last, field in own.runs:
                fields += [mapped[id(field)]] * (last - first)
        gathered = [fields[c] for c in blocks.channels]
        start = 0
        for _, group in groupby(map(id, gathered)):         # runs of one field (by identity, never ==)
            stop = start + len(list(group))
            found.append((start, stop, gathered[start]))
            start = stop
        blocks = ()
    elif all(len(block.sources) == 1 and block.sources[0].each for block in blocks):
        # one input channel read per output channel (each channel its own, a slice, a concatenation): the runs
        # carried over, each field mapped once
        for block in blocks:
            source = block.sources[0]
            own = runs[source.input]
            if own is None:
                add(block.start, block.stop, carry(source.input, hulls[source.input]))
                continue
            shift = block.start - source.start
            for first, last, field in own.overlapping(source.start, source.stop):
                add(max(first, source.start) + shift, min(last, source.stop) + shift, carry(source.input, field))
        blocks = ()
    if len(blocks) > MOST_BLOCKS:             # windows along many channels: the channel-blind answer (sound)
        return reported, None
    for block in blocks:
        for first, last, per_input in _pieces(block, hulls, runs, in_shapes, unions):
            add(block.start + first, block.start + last, field_for(per_input))
    distinct = len({id(f) for _, _, f in found})
    if distinct <= 1 or distinct > MOST_FIELDS:   # (many fields: the channel-blind answer, so the work per layer
        return reported, None                     # stays bounded through a deep stack of windows along channels)
    return reported, tuple(found)


def _linked(field: Field, like: Field) -> Field:
    """``field`` with the paths of ``like`` (the layer's own field): a channel segment's field names the layer's
    largest and smallest single paths, so that every path is its previous layer's path and then the layer (what
    ``max_path_prev`` in the JSON rebuilds), whichever channels a later layer reads."""
    linked = object.__new__(Field)                   # `replace` without its cost, as `Field.named`
    linked.__dict__.update(field.__dict__, max_link=like.max_link, min_link=like.min_link)
    return linked


def _blocks(layer: Layer, hulls: Sequence[Field], in_shapes: Sequence[Shape],
            out_shape: Shape) -> "Optional[tuple[Block, ...] | Gather]":
    """The layer's channel reads as blocks, or None where every output channel reads every input channel (the
    default; also for tensors not in the [C, *spatial] order, whose first dim is no channel axis, for tensors of more
    than `MOST_CHANNELS` channels, and for reads that do not fit the shapes)."""
    if any(not h.standard for h in hulls) or not out_shape or any(not s for s in in_shapes) or \
            max(out_shape[0], *(s[0] for s in in_shapes)) > MOST_CHANNELS:
        return None
    reads = layer.channel_reads(in_shapes, out_shape)
    if reads is None:
        return None
    channels = out_shape[0]
    if reads is SAME:
        sources = []
        for index, shape in enumerate(in_shapes):
            if shape[0] == channels:
                sources.append(Source(index, 0, channels))
            elif shape[0] == 1:
                sources.append(Source(index, 0, 1, each=False))
            else:
                return None
        return (Block(0, channels, tuple(sources)),)
    if isinstance(reads, Gather):
        fits = 0 <= reads.input < len(in_shapes) and len(reads.channels) == channels and \
            all(0 <= c < in_shapes[reads.input][0] for c in reads.channels)
        return reads if fits else None
    at = 0
    for block in reads:                                   # they must tile the output's channels, in order
        if block.start != at or block.stop <= block.start:
            return None
        for source in block.sources:
            n = in_shapes[source.input][0] if 0 <= source.input < len(in_shapes) else 0
            if not 0 <= source.start < source.stop <= n or source.each and \
                    source.stop - source.start != block.stop - block.start:
                return None
        at = block.stop
    return tuple(reads) if at == channels else None


def _union(fields: Sequence[Field], shape: Shape, cache: Optional[dict] = None) -> Field:
    """The union hull of fields of one tensor's channels, read together (unflagged); ``cache`` keeps each union
    made once (one object for the same fields, so that what reads it is computed once too)."""
    unique = {id(f): f for f in fields}
    if len(unique) == 1:
        return next(iter(unique.values()))
    key = (tuple(unique), tuple(shape))
    if cache is not None and key in cache:
        return cache[key]
    found = merge(list(unique.values()), shape[1:]).unflagged()
    if cache is not None:
        cache[key] = found
    return found


class _Indexed:
    """A tensor's runs with their starts, for finding the runs that hold a range of channels."""

    def __init__(self, runs: Runs):
        self.runs = runs
        self.starts = [run[0] for run in runs]
        self._distinct: Optional[list[Field]] = None

    def distinct(self) -> list[Field]:
        """Each field of the runs once."""
        if self._distinct is None:
            self._distinct = list({id(field): field for _, _, field in self.runs}.values())
        return self._distinct

    def overlapping(self, start: int, stop: int) -> list[tuple[int, int, Field]]:
        """The runs that hold channels of [start, stop)."""
        index = max(bisect_right(self.starts, start) - 1, 0)
        end = bisect_left(self.starts, stop, lo=index)
        return [run for run in self.runs[index:end] if run[1] > start]

    def fields(self, start: int, stop: int) -> list[Field]:
        """The fields of the runs that hold channels of [start, stop)."""
        return [field for _, _, field in self.overlapping(start, stop)]


def _read_hull(index: int, hull: Field, runs: Optional[_Indexed], blocks: "Sequence[Block] | Gather",
               shape: Shape) -> Field:
    """Input ``index``'s hull over the channels the blocks read (its whole hull when it has one field, when they
    read all its channels or none, or channels of every one of its fields: the same union)."""
    if runs is None:
        return hull
    if isinstance(blocks, Gather):
        read = sorted(set(blocks.channels)) if blocks.input == index else []
        ranges = [(c, c + 1) for c in read] if len(read) < shape[0] else [(0, shape[0])]
    else:
        ranges = sorted((s.start, s.stop) for b in blocks for s in b.sources if s.input == index)
    covered, at = [], 0
    for start, stop in ranges:
        if start > at:
            covered.append((at, start))
        at = max(at, stop)
    if not ranges or (not covered and at >= shape[0]):
        return hull
    fields = [f for start, stop in _merged(ranges) for f in runs.fields(start, stop)]
    if len({id(f) for f in fields}) == len(runs.distinct()):
        return hull
    return _union(fields, shape)


def _merged(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with the overlapping and touching ones joined."""
    joined: list[tuple[int, int]] = []
    for start, stop in ranges:
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], stop))
        else:
            joined.append((start, stop))
    return joined


def _pieces(block: Block, hulls: Sequence[Field], runs: Sequence[Optional[_Indexed]], in_shapes: Sequence[Shape],
            unions: dict):
    """The block's channels cut where what they read changes: (first, last, ((input, fields), ...)), relative to
    the block's start, inputs in order."""
    length = block.stop - block.start
    per_source = []
    cuts = {0, length}
    for source in block.sources:
        own = runs[source.input]
        if own is None:
            parts = [(0, length, hulls[source.input])]
        elif source.each:
            parts = [(max(first, source.start) - source.start, min(last, source.stop) - source.start, field)
                     for first, last, field in own.overlapping(source.start, source.stop)]
        else:
            parts = [(0, length, _union(own.fields(source.start, source.stop), in_shapes[source.input], unions))]
        cuts.update(first for first, _, _ in parts)
        per_source.append(parts)
    points = sorted(cuts)
    positions = [0] * len(per_source)
    for first, last in zip(points, points[1:]):
        per_input: dict[int, list[Field]] = {}
        for k, (source, parts) in enumerate(zip(block.sources, per_source)):
            while parts[positions[k]][1] <= first:
                positions[k] += 1
            per_input.setdefault(source.input, []).append(parts[positions[k]][2])
        yield first, last, tuple(sorted(per_input.items()))


__all__ = ["Runs", "step"]
