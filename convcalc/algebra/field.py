"""All axes of a receptive field: `Field` (one layer's output units with respect to the network input: per-axis
`AxisField`s, or separate terms where a merge's inputs do not reach every unit on every axis, or whole after Linear,
Flatten and global pooling; the single paths with the largest and smallest field; exact per-unit regions and extents),
and the fields of several meeting: `merge` (union hull, with the alignment check), `gather` (whole fields meeting) and
`concat` (concatenation along a spatial axis).
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field, replace
from fractions import Fraction
from typing import Optional, Sequence

from .axis_field import AxisField, _from_table, _union
from .finite import FiniteAxis
from .reads import Reads, Region
from .runs import RunBuilder
from .runs import hull as _hull


PathLink = Optional[tuple[str, "PathLink"]]


def _path(link: PathLink) -> tuple[str, ...]:
    names = []
    while link is not None:
        names.append(link[0])
        link = link[1]
    return tuple(reversed(names))


@dataclass(frozen=True)
class Field:
    """The receptive field of one layer's output units with respect to the network input.

    ``whole`` means every output unit sees the whole input (after Linear, Flatten, global pooling): the
    per-axis fields then no longer describe windows. ``misaligned`` marks the merge whose own inputs have
    different strides or centres (Araujo et al.'s alignment condition), or a concatenation along a spatial axis: a
    property of that layer, not inherited by the layers after it (their fields, the union hulls, are exact). ``max_path``/``min_path``: the layer names (input excluded, this layer
    included) along the single path with the largest/smallest field (see the ``convcalc.algebra``
    docstring).
    """

    axes: tuple[AxisField, ...]
    whole: bool = False
    misaligned: bool = False
    # the paths as linked lists (a name and the link before it): every layer extends its input's path in O(1),
    # where copying tuples made the analysis quadratic in the depth
    max_link: "PathLink" = dataclass_field(default=None, compare=False, repr=False)
    min_link: "PathLink" = dataclass_field(default=None, compare=False, repr=False)
    # Where a merge's inputs do not reach every unit on every axis (bias-only units of a transposed conv, a
    # spatial concat, border units reading only padding), the per-axis union would let an input that sees
    # nothing at a unit widen the unit's other axes: the merge then keeps separable terms, each a tuple of
    # per-axis fields, and a unit's region is the hull over the terms that reach it on every axis. Empty: the
    # per-axis ``axes`` are exact.
    terms: tuple[tuple[AxisField, ...], ...] = dataclass_field(default=(), compare=False, repr=False)
    # A whole field's reach: per axis the hull of the network-input indices its units depend on, which is the
    # whole input unless some input rows never reach any unit before (a VALID conv dropping the last ones);
    # None where the lengths are unknown.
    reach: Optional[tuple[tuple[int, int], ...]] = dataclass_field(default=None, compare=False)
    input_lengths: Optional[tuple[int, ...]] = dataclass_field(default=None, compare=False, repr=False)
    # A whole field made by a reshape that keeps spatial axes (Flatten(start_dim=2) of [C, H, W] -> [C, H*W]): a
    # unit reads one position, or a few after it, in no window order. No per-axis field describes the units; the
    # claim is then only what they reach together (`reach`), not that each sees all of it.
    reshaped: bool = False
    # Which axes of the layer's output the field's axes are: per batchless dim of the output, the index of the field
    # axis (the network input's spatial axis) it runs along, or None for a dim that is no spatial axis (channels,
    # features). None: the standard channels-first [C, *spatial] order, (None, 0, 1, ...). Set by a Permute (a
    # channels-last [H, W, C] is (0, 1, None)); never on a whole field. The per-axis fields, `region` and `extent`
    # are indexed by the field's axes (the input's order) whatever the layout.
    layout: Optional[tuple[Optional[int], ...]] = None

    @property
    def separable(self) -> bool:
        """Whether the per-axis fields are exact for every unit (no merge kept separate terms)."""
        return not self.terms

    @staticmethod
    def identity(spatial_dims: int, lengths: Sequence[int] | None = None) -> "Field":
        """The network input's field (unit u sees [u, u]); with the input's ``lengths`` the fields built from it
        also know every unit's exact extent (`extent`)."""
        if lengths is None:
            return Field(tuple(AxisField.identity() for _ in range(spatial_dims)))
        return Field(tuple(replace(AxisField.identity(), finite=FiniteAxis.input(n)) for n in lengths))

    @staticmethod
    def whole_input(reach: Optional[tuple[tuple[int, int], ...]] = None,
                    input_lengths: Optional[Sequence[int]] = None) -> "Field":
        return Field((), whole=True, reach=reach, input_lengths=None if input_lengths is None else tuple(input_lengths))

    def gathered(self) -> "Field":
        """The field of a layer each of whose units reads every unit of this one (Flatten, Linear, global
        pooling): whole, reaching the hull of all units' exact extents (`reach`)."""
        if self.whole:
            return replace(self, reshaped=False) if self.reshaped else self
        if any(axis.finite is None for axis in self.axes):
            return Field.whole_input()
        # a term reaches the units of a product of per-axis sets, so the union over all units of the hull of the
        # terms reaching each is, per term that reaches some unit on every axis, its per-axis hull (each the
        # hull of one axis's extents: `FiniteAxis.reach`, which costs border stretches, not units)
        hulls = []
        for term in (self.terms or (self.axes,)):
            if any(axis.finite is None for axis in term):
                return Field.whole_input()
            per_axis = tuple(axis.finite.reach() for axis in term)
            if all(r is not None for r in per_axis):
                hulls.append(per_axis)
        gathered = Field.whole_input(_reach_union(hulls), [axis.finite.input_length() for axis in self.axes])
        return replace(gathered, max_link=self.max_link, min_link=self.min_link)

    @property
    def standard(self) -> bool:
        """Whether the output's dims are in the standard [C, *spatial] order (or the field is whole)."""
        return self.layout is None

    def dims(self, rank: int) -> tuple[Optional[int], ...]:
        """Per batchless dim of an output of ``rank`` dims, the field axis it runs along (None: not spatial)."""
        return self.layout if self.layout is not None else (None, *range(rank - 1))

    def lengths(self, shape: Sequence[int]) -> tuple[int, ...]:
        """The output's length along each field axis (``shape``: the output's batchless shape, in its layout)."""
        found = [0] * len(self.axes)
        for dim, axis in enumerate(self.dims(len(shape))):
            if axis is not None:
                found[axis] = shape[dim]
        return tuple(found)

    def position(self, units: Sequence[int], shape: Sequence[int]) -> tuple[Optional[int], ...]:
        """The output position (per batchless dim; None along a non-spatial dim) of the unit at ``units`` (one
        index per field axis)."""
        return tuple(None if axis is None else units[axis] for axis in self.dims(len(shape)))

    def permuted(self, order: Sequence[int]) -> "Field":
        """The field of a permutation of the output's dims (``order``: batchless, output dim j is input dim
        order[j]): the same per-axis fields, the layout reordered (the standard order again: no layout)."""
        if self.whole:
            return self
        dims = self.dims(len(order))
        layout = tuple(dims[d] for d in order)
        moved = object.__new__(Field)
        moved.__dict__.update(self.__dict__, layout=None if layout == (None, *range(len(order) - 1)) else layout)
        return moved

    @property
    def partial(self) -> bool:
        """A whole field whose units do not depend on every input position (some reach no unit before)."""
        return (self.whole and self.reach is not None and self.input_lengths is not None
                and any(r != (0, n - 1) for r, n in zip(self.reach, self.input_lengths)))

    def region(self, units: Sequence[int]) -> tuple[Region, ...]:
        """Per axis, the network-input indices [first, last] the unit at ``units`` depends on (None: nothing).

        Unclipped: on an input of length I the unit's support lies inside [max(first, 0), min(last, I-1)]."""
        if self.whole:
            raise ValueError("every unit of a whole-input field sees the whole input")
        if not self.terms:
            return tuple(axis.region(u) for axis, u in zip(self.axes, units))
        return _term_hull([[axis.region(u) for axis, u in zip(term, units)] for term in self.terms], len(self.axes))

    def extent(self, units: Sequence[int]) -> tuple[tuple[int, int], ...] | None:
        """Per axis, the first and last input index the unit at ``units`` of the actual network depends on, or
        None when it depends on no input (borders, padding modes and every layer's length included: with
        positive weights and inputs, exactly the extent of its input-gradient support)."""
        if self.whole:
            raise ValueError("every unit of a whole-input field sees the whole input")
        if not self.terms:
            found = tuple(axis.extent(u) for axis, u in zip(self.axes, units))
        else:
            found = _term_hull([[axis.extent(u) for axis, u in zip(term, units)] for term in self.terms],
                               len(self.axes))
        return None if any(r is None for r in found) else found

    def through(self, reads: Sequence[Reads], lengths: Sequence[int]) -> "Field":
        """The field of a layer whose output units read this field's units as ``reads`` (one per axis)."""
        if self.whole:
            return self
        if len(reads) != len(self.axes):
            return Field.whole_input()
        terms = tuple(tuple(axis.through(r, n) for axis, r, n in zip(term, reads, lengths)) for term in self.terms)
        moved = object.__new__(Field)
        moved.__dict__.update(self.__dict__, axes=tuple(axis.through(r, n) for axis, r, n in zip(self.axes, reads,
                                                                                                lengths)), terms=terms)
        return moved

    def through_window(self, kernel: Sequence[int], stride: Sequence[int], pad_lo: Sequence[int],
                       lengths: Sequence[int], dilation: Sequence[int] | None = None,
                       border: str = "zeros", wraps: Sequence[Optional[tuple[int, int]]] | None = None) -> "Field":
        """A sliding window (conv, pool) with per-axis kernel, stride, left pad and dilation; ``border``: F.pad's
        mode for what the padding holds, ``wraps`` per axis a circular pad's cropped range (`Reads.wrap`); both
        change only `extent`."""
        dilation = dilation or [1] * len(kernel)
        wraps = wraps or [None] * len(kernel)
        return self.through([Reads.window(k, s, p, d, border, w)
                             for k, s, p, d, w in zip(kernel, stride, pad_lo, dilation, wraps)], lengths)

    def unflagged(self) -> "Field":
        """This field as a later layer's input sees it: without the ``misaligned`` flag, which belongs to the merge
        that made it (a layer passing its input's field on is no misaligned merge)."""
        if not self.misaligned:
            return self
        copy = object.__new__(Field)
        copy.__dict__.update(self.__dict__, misaligned=False)
        return copy

    def named(self, name: str) -> "Field":
        """This field as layer ``name``'s: the name ends both paths (the analyzer calls it for every node)."""
        named = object.__new__(Field)                  # `replace` without its cost: called for every layer
        named.__dict__.update(self.__dict__, max_link=(name, self.max_link), min_link=(name, self.min_link))
        return named

    @property
    def max_path(self) -> tuple[str, ...]:
        """The layer names (input excluded, this layer included) along the path with the largest field."""
        return _path(self.max_link)

    @property
    def min_path(self) -> tuple[str, ...]:
        """The layer names along the path with the smallest field."""
        return _path(self.min_link)

    def center(self, axis: int) -> Fraction:
        """Centre offset of unit 0 on ``axis``: (size-1)/2 - P."""
        return self.axes[axis].centre


def _area(axes: Sequence[AxisField], attribute: str) -> int:
    total = 1
    for axis in axes:
        total *= getattr(axis, attribute)
    return total


def _reach_union(hulls: Sequence[Optional[tuple[Region, ...]]]) -> Optional[tuple[tuple[int, int], ...]]:
    """Per axis the hull of several reaches; None if one is unknown or reaches nothing."""
    if not hulls or any(h is None or any(r is None for r in h) for h in hulls) or len({len(h) for h in hulls}) != 1:
        return None
    return tuple((min(h[a][0] for h in hulls), max(h[a][1] for h in hulls)) for a in range(len(hulls[0])))


def gather(fields: Sequence[Field]) -> Field:
    """Whole fields meeting (or fields no window relates): whole, reaching the union of what each reaches."""
    gathered = [f.gathered() for f in fields]
    lengths = {f.input_lengths for f in gathered}
    whole = Field.whole_input(_reach_union([f.reach for f in gathered]), lengths.pop() if len(lengths) == 1 else None)
    return replace(whole, reshaped=any(f.reshaped for f in fields))     # a reshaped input's units stay unordered


def merge(fields: Sequence[Field], lengths: Sequence[int] | None = None, skip: Optional[int] = None) -> Field:
    """Fields meeting at a merge: per unit the union hull of the inputs' regions (``lengths``: the merge's
    output length per axis, which bounds the period when strides differ). The paths: the input whose widest
    (narrowest) single-path field is largest (smallest), by the product over the axes. ``skip``: an axis the
    caller replaces (`concat`'s), left as the first input's, and no separate terms."""
    if any(f.whole for f in fields) or len({len(f.axes) for f in fields}) != 1:
        return gather(fields)
    if len(fields) == 1:
        return fields[0]
    dims = len(fields[0].axes)
    if lengths is None:
        lengths = [max(f.axes[i].period for f in fields) for i in range(dims)]
    misaligned = False               # this merge's own inputs only: an input's flag is about the merge before it
    for index in range(dims):
        column = [f.axes[index] for f in fields]
        if len({a.stride for a in column}) > 1 or len({a.centre for a in column}) > 1:
            misaligned = True
    wide = max(fields, key=lambda f: _area([a.widest or a for a in f.axes], "size"))
    narrow = min(fields, key=lambda f: _area([a.narrowest or a for a in f.axes], "size_min"))
    axes = []
    for index in range(dims):
        union = fields[0].axes[index] if index == skip else _union([f.axes[index] for f in fields], lengths[index])
        widest = wide.axes[index].widest or wide.axes[index]
        narrowest = narrow.axes[index].narrowest or narrow.axes[index]
        axes.append(replace(union, widest=widest, narrowest=narrowest))
    terms = () if skip is not None else _merged_terms([t for f in fields for t in (f.terms or (f.axes,))], lengths)
    return Field(tuple(axes), misaligned=misaligned, max_link=wide.max_link, min_link=narrow.min_link, terms=terms)


def _term_hull(per_term: Sequence[Sequence[Region]], dims: int) -> tuple[Region, ...]:
    """Per axis the hull over the terms that reach the unit on every axis."""
    reaching = [regions for regions in per_term if all(r is not None for r in regions)]
    if not reaching:
        return (None,) * dims
    return tuple(_hull(regions[axis] for regions in reaching) for axis in range(dims))


def _reaches_everywhere(term: Sequence[AxisField]) -> bool:
    """Every unit of the term sees something on every axis (periodically and in the finite network)."""
    for axis in term:
        if axis.table.has_none():
            return False
        if axis.finite is not None and not axis.finite.everywhere():
            return False
    return True


def _merged_terms(terms: Sequence[tuple[AxisField, ...]], lengths: Sequence[int]) -> tuple[tuple[AxisField, ...], ...]:
    """The terms of a merge: those reaching every unit on every axis join into one (their per-axis union is
    exact); the others stay apart. () when no term is apart (the merge's per-axis union is exact)."""
    if len(lengths) < 2:
        return ()                                       # one axis: the union is exact
    full, apart = [], []
    for t in terms:
        (full if _reaches_everywhere(t) else apart).append(t)
    if not apart:
        return ()
    joined = (tuple(_union([t[axis] for t in full], lengths[axis]) for axis in range(len(lengths))),) if full else ()
    return joined + tuple(apart)


def concat(fields: Sequence[Field], lengths_in: Sequence[int], axis: int, lengths: Sequence[int]) -> Field:
    """Concatenation along spatial ``axis`` (``lengths_in``: the inputs' lengths along it; ``lengths``: the
    output's per axis): unit u comes from the input whose span holds it, shifted by the lengths before it (one
    period over the whole output); the other axes merge as usual. Misaligned."""
    if any(f.whole for f in fields) or len({len(f.axes) for f in fields}) != 1:
        return gather(fields)
    merged = merge(fields, lengths, skip=axis)
    length = sum(lengths_in)
    stride = fields[0].axes[axis].stride
    builder = RunBuilder(detail=" (a concatenation along it)")
    for f, n in zip(fields, lengths_in):
        for first, end, region in f.axes[axis].unit_runs(0, n):
            builder.add(end - first, region)
    joined = _from_table(length, round(stride * length), builder.table(), stride, cut=True)
    if all(f.axes[axis].finite is not None for f in fields):
        joined = replace(joined, finite=FiniteAxis(length, [f.axes[axis].finite for f in fields], "concat"))
    terms: list[tuple[AxisField, ...]] = []
    if len(lengths) > 1:                                # each input's units, placed along the concat axis
        offset = 0
        for f, n in zip(fields, lengths_in):
            for term in (f.terms or (f.axes,)):
                column = term[axis]
                spread = RunBuilder(detail=" (a concatenation along it)")
                spread.add(offset, None)
                for first, end, region in column.unit_runs(0, n):
                    spread.add(end - first, region)
                spread.add(length - offset - n, None)
                placed = _from_table(length, round(stride * length), spread.table(), stride, cut=True)
                if column.finite is not None:
                    placed = replace(placed, finite=FiniteAxis(length, [column.finite], f"shift {offset}"))
                terms.append((*term[:axis], placed, *term[axis + 1:]))
            offset += n
    axes = list(merged.axes)
    axes[axis] = joined
    return replace(merged, axes=tuple(axes), misaligned=True, terms=tuple(terms))


def pointwise(fields: Sequence[Field], in_shapes: Sequence[Sequence[int]], out_shape: Sequence[int],
              mixed: Optional[Sequence[int]]) -> Field:
    """The field of a layer some of whose inputs are not in the standard order (`Field.layout`: after a Permute),
    given only ``mixed``: the batchless dims along which an output unit reads other positions of its inputs than its
    own (None: not known, the layer's own rule assumes [C, *spatial]). Along no field axis mixed, every input in
    one layout and those axes' lengths kept: each unit reads its own position, so its field is its inputs' (the
    union hull where there are several). Else what the units reach together, as a reshape's (`Field.reshaped`;
    into a vector: whole): a rule made for channels-first tensors is never applied to another order."""
    layout = fields[0].layout
    exact = (mixed is not None and layout is not None and len(layout) == len(out_shape)
             and all(not f.whole and f.layout == layout for f in fields)
             and all(len(s) == len(out_shape) for s in in_shapes) and all(layout[d] is None for d in mixed)
             and all(s[d] == out_shape[d] for s in in_shapes for d, a in enumerate(layout) if a is not None))
    if not exact:
        return replace(gather(fields), reshaped=len(out_shape) > 1)
    if len(fields) == 1:
        return fields[0]
    standard = [replace(f, layout=None) for f in fields]
    return replace(merge(standard, fields[0].lengths(out_shape)), layout=layout)
