"""``convcalc rf`` results -> rich renderables and JSON data. Nothing here prints."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Optional, Sequence

from rich.console import Group as RichGroup
from rich.text import Text

from ..proof.erf import Erf
from ..proof.study import FieldStudy
from .fit import Column, fit
from .rf_checks import rf_checks_json, rf_checks_table
from .summary import json_number
from ..algebra.numbers import fraction_text, percent_text
from ..analysis.regions import AxisRegion, GrowthRow, UnitRegion

SCHEMA_VERSION = 2       # 2: 'aligned' is false only at the misaligned merge itself (issue 18)
BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉"


def _percent(value: Fraction | float) -> str:
    return percent_text(value)


def _joined(values: Sequence[Any]) -> str:
    return "×".join(str(v) for v in values)


def bar(share: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar ``share`` (0..1) of ``width`` characters long, in eighths of a character."""
    eighths = round(max(0.0, min(1.0, share)) * width * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


def linear_share(row: GrowthRow) -> float:
    """The bar's length: the geometric mean of the per-axis shares of the input the largest region spans."""
    if not row.coverage:
        return 1.0
    return float(row.area) ** (1 / len(row.coverage))


def size_text(row: GrowthRow) -> str:
    """Per axis 'size', or 'min..max' where the units' regions differ in size."""
    if row.whole:
        return "whole input"
    return _joined(s if s == m else f"{m}..{s}" for s, m in zip(row.size, row.size_min))


def notes_text(row: GrowthRow) -> str:
    notes = []
    if row.merge:
        notes.append(f"merge, max via {row.max_input}" if row.max_input else "merge")
    if row.misaligned:
        notes.append("⚠ misaligned")
    if row.gate:
        notes.append("SE gate left out")
    return "; ".join(notes)


# --------------------------------------------------------------------------- growth

GROWTH_COLUMNS = (Column("layer", kind="name"), Column("type"), Column("size", "right"), Column("stride", "right"),
                  Column("covers", "right"), Column("growth"), Column("notes", kind="text"))
GROWTH_DROP = ("growth", "type", "notes", "covers", "stride")     # what a narrow terminal loses first
REGION_COLUMNS = (*(Column(c, "right") for c in ("axis", "unit", "region", "size", "inside input", "centre", "reads")),
                  Column("in padding", kind="text"))
REGION_DROP = ("centre", "reads", "inside input", "in padding")
ERF_DROP = ("unit centre", "ERF mean", "ERF std", "inside input")


GATE_LEGEND = (" SE gate left out: a squeeze-and-excitation block pools its map globally and multiplies the result"
               " back in; every later unit depends on the whole input through that scale, the sizes are the conv"
               " path's (as lint's CC301).")


def growth_table(rows: Sequence[GrowthRow], title: str, width: int | None = None,
                 prose: int | None = None) -> RichGroup:
    """``width``: fit the table into so many columns (`report.fit`, GROWTH_DROP; None: full width)."""
    cells = []
    for row in rows:
        stride = "–" if row.whole else _joined(row.stride)
        cells.append([row.name, row.type, size_text(row), stride, _percent(row.area), bar(linear_share(row)),
                      notes_text(row)])
    table = fit(GROWTH_COLUMNS, cells, width, GROWTH_DROP, prose=prose).table(title)
    legend = Text("size: the largest region per axis (min..max where units differ); stride: input positions"
                  " between neighbouring units; covers: the share of the input (area) the largest region spans;"
                  " the bar: the same share per axis (geometric mean). ⚠: a merge of inputs with different strides"
                  " or centres (Araujo et al.)." + GATE_LEGEND * any(row.gate for row in rows), style="dim")
    return RichGroup(table, legend)


def growth_json(rows: Sequence[GrowthRow]) -> list[dict[str, Any]]:
    return [{
        "name": row.name, "type": row.type, "inputs": list(row.inputs), "whole_input": row.whole,
        "size": list(row.size), "size_min": list(row.size_min),
        "stride": None if row.whole else [json_number(s) for s in row.stride],
        "stride_text": None if row.whole else [fraction_text(s) for s in row.stride],
        "coverage": float(row.area), "merge": row.merge, "max_input": row.max_input,
        "aligned": not row.misaligned, "gate_left_out": row.gate,
    } for row in rows]


# --------------------------------------------------------------------------- a unit's region

def _centre(value: Optional[Fraction]) -> str:
    if value is None:
        return "–"
    return fraction_text(value)


def _range(pair: Optional[tuple[int, int]]) -> str:
    return "–" if pair is None else f"[{pair[0]}, {pair[1]}]"


def _padding_text(axis: AxisRegion) -> str:
    if axis.first is None or not axis.in_padding:
        return "0"
    text = f"{axis.in_padding} ({_percent(axis.padding_fraction)})"
    runs = ", ".join(f"{run.first}..{run.last}: {run.label}" if run.count > 1 else f"{run.first}: {run.label}"
                     for run in axis.padding)
    return f"{text}: {runs}"


def region_table(region: UnitRegion, title: Optional[str] = None, width: int | None = None,
                 prose: int | None = None) -> RichGroup:
    """``width``: fit the table into so many columns (`report.fit`, REGION_DROP; None: full width)."""
    units = ", ".join(map(str, region.units))
    cells = [[str(index), str(axis.unit), _range(None if axis.first is None else (axis.first, axis.last)),
              str(axis.size), _range(axis.clipped), _centre(axis.centre), _range(axis.extent), _padding_text(axis)]
             for index, axis in enumerate(region.axes)]
    table = fit(REGION_COLUMNS, cells, width, REGION_DROP, prose=prose).table(
        title or f"layer '{region.layer}', unit ({units})")
    if region.empty:
        summary = "this unit reads no input (it gets only a bias)"
    else:
        summary = (f"{_percent(region.padding_fraction)} of the region's box of unit ({units}) of layer"
                   f" '{region.layer}' lies in padding. region: input indices"
                   " on the unclipped extension (Araujo et al.); reads: what the unit of the actual network depends"
                   " on (padding modes included)")
    return RichGroup(table, Text(summary, style="dim"))


def region_json(region: UnitRegion) -> dict[str, Any]:
    return {
        "layer": region.layer, "unit": list(region.units), "empty": region.empty,
        "padding_fraction": float(region.padding_fraction),
        "axes": [{
            "length": a.length, "unit": a.unit,
            "region": None if a.first is None else [a.first, a.last], "size": a.size,
            "inside": None if a.clipped is None else list(a.clipped),
            "centre": None if a.centre is None else json_number(a.centre),
            "reads": None if a.extent is None else list(a.extent),
            "padding_before": a.padding_before, "padding_after": a.padding_after, "in_padding": a.in_padding,
            "padding_fraction": float(a.padding_fraction),
            "padding_runs": [{"first": r.first, "last": r.last, "fill": r.fill.split("+") if r.fill else []}
                             for r in a.padding],
        } for a in region.axes],
    }


# --------------------------------------------------------------------------- ERF

def erf_table(erf: Erf, picture: Optional[str] = None, width: int | None = None,
              prose: int | None = None) -> RichGroup:
    """``width``: fit the table into so many columns (`report.fit`, ERF_DROP; None: full width)."""
    units = ", ".join(map(str, erf.units))
    channel = "all channels" if erf.channel is None else f"channel {erf.channel}"
    side = f"ERF side ({round(100 * erf.fraction)} %)"
    columns = [Column(c, "right") for c in ("axis", "theoretical size", "inside input", side, "ERF std", "ERF mean",
                                              "unit centre")]
    cells = [[str(index), str(axis.theoretical_size), _range(axis.clipped), str(axis.side), f"{axis.std:.2f}",
              f"{axis.mean:.2f}", f"{axis.centre:g}"] for index, axis in enumerate(erf.axes)]
    table = fit(columns, cells, width, ERF_DROP, prose=prose).table(
        f"effective receptive field of layer '{erf.layer}', unit ({units}), {channel}, {erf.samples} samples")
    lines = [f"{_percent(erf.inside)} of the gradient mass lies inside the theoretical region.",
             f"ERF side: positions in the smallest window centred on the unit that holds {round(100 * erf.fraction)} %"
             " of |dy/dx| (Luo et al. 2016)."]
    if picture:
        lines.append(f"heatmap written to {picture}")
    return RichGroup(table, Text("\n".join(lines), style="dim"))


def _finite(value: float) -> Optional[float]:
    return None if math.isnan(value) else value


def erf_json(erf: Erf, picture: Optional[str] = None) -> dict[str, Any]:
    return {
        "layer": erf.layer, "unit": list(erf.units), "samples": erf.samples, "channel": erf.channel,
        "fraction": erf.fraction, "inside_theoretical": erf.inside, "picture": picture,
        "axes": [{"theoretical_size": a.theoretical_size, "inside": None if a.clipped is None else list(a.clipped),
                  "side": a.side, "window": None if a.window is None else list(a.window),
                  "std": _finite(a.std), "mean": _finite(a.mean), "centre": _finite(a.centre)}
                 for a in erf.axes],
    }




COLOUR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "white")   # drawing.PALETTE's


def _unit_text(region: UnitRegion) -> str:
    return f"unit ({', '.join(map(str, region.units))})"


def study_output(study: FieldStudy, *, erf_picture: Optional[str] = None, overlay_picture: Optional[str] = None,
                 overlay_regions: Sequence[UnitRegion] = (), notes: Sequence[str] = (), width: int | None = None,
                 prose: int | None = None) -> tuple[list, dict]:
    """A `FieldStudy` as what `convcalc rf` shows: the renderables in order (region, ERF and ``notes``, overlay
    regions and legend, verification, growth) and the JSON data. ``erf_picture``/``overlay_picture``: where the
    pictures were written; ``overlay_regions``: the regions the overlay outlines, in palette order. ``width``: fit
    the tables into so many columns (`report.fit`; None: full width, prose columns wrapped at ``prose``)."""
    fitting = {"width": width, "prose": prose}
    summary, layer = study.summary, study.layer
    data: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "spec": summary.name,
                            "input_shape": list(summary.input_shape), "layer": layer}
    shown: list = []
    if study.region is not None:
        data["region"] = region_json(study.region)
        shown.append(region_table(study.region, **fitting))
    if study.erf is not None:
        data["erf"] = erf_json(study.erf, erf_picture)
        shown.append(erf_table(study.erf, erf_picture, **fitting))
        shown.extend(Text(note) for note in notes)
    if study.overlay_units is not None:
        colours = [COLOUR_NAMES[i % len(COLOUR_NAMES)] for i in range(len(overlay_regions))]
        data["overlay"] = {"picture": overlay_picture, "units": [
            dict(region_json(r), colour=colour) for r, colour in zip(overlay_regions, colours)]}
        for index, (r, colour) in enumerate(zip(overlay_regions, colours)):
            if study.units is None or index > 0:
                shown.append(region_table(r, f"layer '{layer}', {_unit_text(r)}: {colour}", **fitting))
        legend = ", ".join(f"{colour}: {_unit_text(r)}"
                           + ("" if r.axes and all(a.clipped for a in r.axes) else " (outside the input)")
                           for r, colour in zip(overlay_regions, colours))
        shown.append(Text(f"overlay written to {overlay_picture} ({legend})"))
    if study.checks is not None:
        data["verify"] = rf_checks_json(study.checks)
        shown.append(rf_checks_table(study.checks, **fitting))
    if study.growth is not None:
        data["growth"] = growth_json(study.growth)
        shape_text = "×".join(map(str, summary.input_shape))
        shown.append(growth_table(study.growth, f"receptive-field growth of '{summary.name}' up to '{layer}'"
                                                f" (input {shape_text})", **fitting))
    return shown, data


__all__ = ["COLOUR_NAMES", "SCHEMA_VERSION", "bar", "erf_json", "erf_table", "growth_json", "growth_table",
           "region_json", "region_table", "study_output"]
