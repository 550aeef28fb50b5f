"""Receptive fields as data for ``convcalc rf``: growth per layer, and one unit's exact region.

Nothing here prints. The numbers come from the analyzer's fields (`convcalc.algebra`), at the analysed input
size, so TensorFlow-style SAME padding (whose pads depend on the input length) is exact at that size.

* `growth(summary, layer)`: one `GrowthRow` per layer the chosen layer depends on, in graph order: size per axis
  (largest and smallest region over the units), effective stride (exact Fraction), the share of the input the
  largest region covers, whether the layer merges inputs (and which one lies on the widest single path), and
  Araujo et al.'s misalignment flag.
* `unit_region(summary, layer, units)`: per axis the unit's region on the unclipped extension ``[first, last]``
  (Araujo's ``[u*S - P, u*S - P + r - 1]`` for an even field), the part inside the input, its centre, the exact
  extent the unit really reads (borders and padding modes included), and the region's positions that lie in
  padding, each labelled with what fills it: ``zeros`` (zero padding, or cells a pooling ignores) or the padding
  mode (``reflect``/``replicate``: mirrored, ``circular``: wrapped) of the first layer whose read leaves its input.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

from .summary import Summary
from .coverage import area_share, axis_coverage
from .gates import classifier_fields, output_field
from ..errors import ConvcalcError, LayerArgError, did_you_mean
from ..spec.graph import INPUT
from ..algebra import FiniteAxis

FILLS = {"zeros": "zero padding", "reflect": "mirrored (reflect)", "replicate": "edge copies (replicate)",
         "circular": "wrapped (circular)"}


# --------------------------------------------------------------------------- choosing a layer and a unit

def ancestors(summary: Summary, layer: str) -> list[str]:
    """``layer`` and every layer it reads, directly or not, in graph order (``input`` excluded)."""
    return summary.graph.ancestors(layer)


def default_layer(summary: Summary) -> str:
    """The spec's output, or, when its units see the whole input, the layer the classifier gathers, the global
    pools of squeeze-and-excitation gates left out (`gates.output_field`, as lint's CC301 and the zoo's RF)."""
    if not summary.layer(summary.output).rf.whole:
        return summary.output
    found = output_field(summary)
    return found.layer if found is not None else last_spatial(summary)


def last_spatial(summary: Summary) -> str:
    """The spec's output, or, when its units see the whole input, the last layer before it whose units do not
    (through a gate, too: the layer whose units have exact regions)."""
    if not summary.layer(summary.output).rf.whole:
        return summary.output
    for name in reversed(ancestors(summary, summary.output)):
        if not summary.layer(name).rf.whole:
            return name
    raise ConvcalcError(f"every layer of '{summary.name}' sees the whole input: no layer has spatial axes")


def check_layer(summary: Summary, layer: Optional[str], regions: bool = False) -> str:
    """``layer`` if the network has it (None: `default_layer`, or `last_spatial` when ``regions`` are wanted),
    else a ConvcalcError naming the valid ones."""
    if layer is None:
        return last_spatial(summary) if regions else default_layer(summary)
    names = [row.name for row in summary.layers]
    if layer not in names:
        raise ConvcalcError(f"no layer '{layer}' in '{summary.name}'; {did_you_mean(layer, names)}")
    return layer


def spatial_layer(summary: Summary, layer: str) -> None:
    """A ConvcalcError unless ``layer``'s units have regions (it is not after a Flatten, Linear, global pool)."""
    if summary.layer(layer).rf.whole:
        shape = list(summary.layer(layer).output_shape)
        why, which = (("has no spatial axes left", "with spatial axes") if len(shape) < 2 else
                      ("comes after a layer that reads every position: global pooling, a Linear, a softmax over an"
                       " axis", "whose units see part of it"))
        raise ConvcalcError(f"every unit of layer '{layer}' sees the whole input (its output {shape} {why});"
                            f" choose a layer {which}, e.g. '{last_spatial(summary)}'")
    field = summary.layer(layer).rf
    if not field.standard:
        shape = list(summary.layer(layer).output_shape)
        letters = {1: "L", 2: "HW", 3: "DHW"}.get(len(field.axes))
        axes = ", ".join("C" if a is None else letters[a] if letters else f"axis {a}" for a in field.dims(len(shape)))
        raise ConvcalcError(f"layer '{layer}''s output {shape} is in a permuted order ([{axes}], after a Permute),"
                            f" not [C, *spatial]: its units are not indexed one per spatial axis of its shape;"
                            f" choose a layer in the standard order, e.g. the Permute back to [C, *spatial]")


def parse_units(text: str, summary: Summary, layer: str) -> tuple[int, ...]:
    """``"3,5"`` as unit indices of ``layer``'s spatial axes; negative ones count from the end, like Python's."""
    spatial_layer(summary, layer)
    lengths = summary.layer(layer).output_shape[1:]
    words = [w.strip() for w in text.split(",")]
    try:
        values = [int(w) for w in words]
    except ValueError:
        raise ConvcalcError(f"--unit '{text}' must be integers separated by commas, one per spatial axis of"
                            f" '{layer}' ({len(lengths)}), e.g. {','.join(str(n // 2) for n in lengths)}") from None
    if len(values) != len(lengths):
        raise ConvcalcError(f"--unit '{text}' gives {len(values)} index(es), but layer '{layer}' has {len(lengths)}"
                            f" spatial axes (output {list(summary.layer(layer).output_shape)})")
    units = []
    for axis, (value, length) in enumerate(zip(values, lengths)):
        if not -length <= value < length:
            raise ConvcalcError(f"--unit '{text}': index {value} on axis {axis} is out of range: layer '{layer}' has"
                                f" {length} units there (valid: {-length}..{length - 1})")
        units.append(value % length)
    return tuple(units)


def centre_unit(summary: Summary, layer: str) -> tuple[int, ...]:
    """The unit at n // 2 on every spatial axis (the centre; for even n the first unit past the middle)."""
    return tuple(n // 2 for n in summary.layer(layer).output_shape[1:])


# --------------------------------------------------------------------------- growth

@dataclass(frozen=True)
class GrowthRow:
    """One layer's field, for the growth chart. ``whole``: every unit sees the whole input (no axes)."""

    name: str
    type: str
    inputs: tuple[str, ...]
    whole: bool
    size: tuple[int, ...]
    size_min: tuple[int, ...]
    stride: tuple[Fraction, ...]
    coverage: tuple[Fraction, ...]     # per axis min(size, I) / I (`coverage.axis_coverage`)
    misaligned: bool
    max_input: Optional[str]           # at a merge: the input on the single path with the largest field
    gate: bool = False                 # a merge whose squeeze-and-excitation gate is left out (`gates`)

    @property
    def merge(self) -> bool:
        return len(self.inputs) > 1

    @property
    def area(self) -> Fraction:
        """The coverage: the share of the input (area, volume) the largest region covers (`coverage.coverage`)."""
        return area_share(self.coverage)


def growth(summary: Summary, layer: Optional[str] = None) -> tuple[GrowthRow, ...]:
    """The field of ``layer`` (default: every layer) and of every layer it depends on, in graph order, the global
    pools of squeeze-and-excitation gates left out (`gates.classifier_fields`: the conv path's field)."""
    names = ancestors(summary, layer) if layer is not None else [row.name for row in summary.layers]
    lengths = summary.input_shape[1:]
    fields, gated = classifier_fields(summary)
    gated = set(gated)
    rows = []
    for name in names:
        row = summary.layer(name)
        field = fields[name]
        max_input = None
        if len(row.inputs) > 1 and row.max_path_prev in row.inputs:     # O(1): the path's last link
            max_input = row.max_path_prev
        if field.whole:
            rows.append(GrowthRow(name, row.type, row.inputs, True, tuple(lengths), tuple(lengths), (),
                                  axis_coverage(field, lengths), field.misaligned, max_input, name in gated))
            continue
        sizes = tuple(int(a.size) for a in field.axes)
        coverage = axis_coverage(field, lengths)
        rows.append(GrowthRow(name, row.type, row.inputs, False, sizes, tuple(int(a.size_min) for a in field.axes),
                              tuple(a.stride for a in field.axes), coverage, field.misaligned, max_input,
                              name in gated))
    return tuple(rows)


# --------------------------------------------------------------------------- one unit's region

@dataclass(frozen=True)
class PaddingRun:
    """Consecutive positions of a region outside the input, ``first..last``, filled by ``fill``: the padding
    modes ('zeros', 'reflect', 'replicate', 'circular') of the first layer each path reading them leaves its
    input at, joined by '+' when paths differ; '' when no path reads them (holes of a dilated kernel)."""

    first: int
    last: int
    fill: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    @property
    def label(self) -> str:
        if not self.fill:
            return "not read (between taps: dilation, or a stride longer than the kernel)"
        return " + ".join(FILLS.get(mode, mode) for mode in self.fill.split("+"))


@dataclass(frozen=True)
class AxisRegion:
    """One axis of a unit's region. ``first``/``last``: on the unclipped extension (None: the unit reads no input
    along this axis); ``clipped``: their part inside [0, length-1]; ``extent``: what the unit of the actual network
    really reads (its gradient's support, borders and padding modes included)."""

    length: int
    unit: int
    first: Optional[int]
    last: Optional[int]
    clipped: Optional[tuple[int, int]]
    extent: Optional[tuple[int, int]]
    padding: tuple[PaddingRun, ...]

    @property
    def size(self) -> int:
        return 0 if self.first is None else self.last - self.first + 1

    @property
    def centre(self) -> Optional[Fraction]:
        return None if self.first is None else Fraction(self.first + self.last, 2)

    @property
    def padding_before(self) -> int:
        """How many of the region's positions lie before the input (index < 0)."""
        return 0 if self.first is None else max(0, min(self.last, -1) - self.first + 1)

    @property
    def padding_after(self) -> int:
        """How many of the region's positions lie after the input (index >= length)."""
        return 0 if self.first is None else max(0, self.last - max(self.first, self.length) + 1)

    @property
    def in_padding(self) -> int:
        """How many of the region's positions lie outside the input."""
        return self.padding_before + self.padding_after

    @property
    def padding_fraction(self) -> Fraction:
        return Fraction(self.in_padding, self.size) if self.size else Fraction(0)


@dataclass(frozen=True)
class UnitRegion:
    layer: str
    units: tuple[int, ...]
    axes: tuple[AxisRegion, ...]

    @property
    def empty(self) -> bool:
        """The unit reads no input at all (it gets only a bias)."""
        return any(a.first is None for a in self.axes)

    @property
    def padding_fraction(self) -> Fraction:
        """The share of the region's box (area, volume) outside the input."""
        inside = outside = 1
        for axis in self.axes:
            inside *= axis.size - axis.in_padding
            outside *= axis.size
        return Fraction(outside - inside, outside) if outside else Fraction(0)


def unit_region(summary: Summary, layer: str, units: Sequence[int]) -> UnitRegion:
    """The exact region of unit ``units`` (non-negative, in range) of ``layer`` at the analysed input size."""
    spatial_layer(summary, layer)
    field = summary.layer(layer).rf
    lengths = summary.input_shape[1:]
    regions = field.region(units)
    extents = field.extent(units)
    axes = []
    for axis, (region, length, unit) in enumerate(zip(regions, lengths, units)):
        if region is None:
            axes.append(AxisRegion(length, unit, None, None, None, None, ()))
            continue
        first, last = region
        clipped = (max(first, 0), min(last, length - 1)) if first <= length - 1 and last >= 0 else None
        extent = None if extents is None else extents[axis]
        try:
            runs = padding_runs(field.axes[axis].finite, unit, first, last, length)
        except LayerArgError as exc:            # a budget of the walk (convcalc.algebra.limits)
            raise ConvcalcError(f"layer '{layer}', unit {','.join(map(str, units))}: {exc.message}") from None
        axes.append(AxisRegion(length, unit, first, last, clipped, extent, runs))
    return UnitRegion(layer, tuple(units), tuple(axes))


def padding_runs(finite: Optional[FiniteAxis], unit: int, first: int, last: int, length: int) -> tuple[PaddingRun, ...]:
    """The positions of [first, last] outside [0, length-1], grouped into runs by what fills them. Worked out on
    stretches of positions (`FiniteAxis.fill_intervals`), never position by position: a padding of 10^9 is one
    run."""
    fills = finite.fill_intervals(unit) if finite is not None else {}
    runs: list[PaddingRun] = []
    for lo, hi in ((first, min(last, -1)), (max(first, length), last)):
        if lo > hi:
            continue
        cuts = {lo, hi + 1}
        for intervals in fills.values():
            for a, b in intervals:
                cuts.update(c for c in (a, b + 1) if lo < c <= hi)
        points = sorted(cuts)
        for a, b in zip(points, points[1:]):
            fill = "+".join(sorted(mode for mode, intervals in fills.items() if _covers(intervals, a)))
            if runs and runs[-1].last == a - 1 and runs[-1].fill == fill:
                runs[-1] = PaddingRun(runs[-1].first, b - 1, fill)
            else:
                runs.append(PaddingRun(a, b - 1, fill))
    return tuple(runs)


def _covers(intervals: Sequence[tuple[int, int]], position: int) -> bool:
    """Whether sorted disjoint inclusive ``intervals`` hold ``position``."""
    index = bisect_right(intervals, (position, float("inf"))) - 1
    return index >= 0 and intervals[index][0] <= position <= intervals[index][1]


__all__ = ["AxisRegion", "GrowthRow", "PaddingRun", "UnitRegion", "ancestors", "centre_unit", "check_layer",
           "default_layer", "growth", "last_spatial", "padding_runs", "parse_units", "spatial_layer",
           "unit_region"]
