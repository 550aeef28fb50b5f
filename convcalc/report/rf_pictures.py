"""Pictures of receptive fields: the ERF heatmap of an `Erf`, chosen units' regions over the input image, and the
growth chart (`convcalc rf --growth-png`).

Boxes are the units' regions clipped to the input (`AxisRegion.clipped`); see `convcalc.report.drawing` for the pixel
geometry. 3-D inputs show the depth slice through the (first) unit's centre.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..analysis.regions import GrowthRow, UnitRegion, unit_region
from ..analysis.summary import Summary
from ..proof.erf import Erf
from .canvas import (BACKGROUND, DIM, MARGIN, TEXT, Picture, blank, draw_text, fit_text, geometry_info,
                     line_height, text_size)
from .drawing import erf_picture, overlay_picture


def box_of(region: UnitRegion) -> Optional[tuple[tuple[int, int], ...]]:
    """The region clipped to the input, per axis, or None when it lies outside the input on some axis."""
    if region.empty or any(a.clipped is None for a in region.axes):
        return None
    return tuple(a.clipped for a in region.axes)


def _depth(region: UnitRegion) -> int:
    """For 3-D inputs: the depth slice through the middle of the region's part inside the input (else 0)."""
    if len(region.axes) != 3 or region.axes[0].clipped is None:
        return 0
    first, last = region.axes[0].clipped
    return (first + last) // 2


def _units_text(units: Sequence[int]) -> str:
    return f"unit ({', '.join(map(str, units))})"


def erf_heatmap(erf: Erf, scale: str = "log") -> Picture:
    """The ERF's mass as a heatmap around the theoretical region (outlined in cyan), the window holding
    ``erf.fraction`` of the mass dashed in green, and a colour bar (``scale``: 'log' or 'linear'); 3-D: the slice
    through the region's centre."""
    windows = [axis.window for axis in erf.axes]
    window = tuple(windows) if windows and all(w is not None for w in windows) else None
    channel = "all channels" if erf.channel is None else f"channel {erf.channel}"
    title = [f"effective receptive field of '{erf.layer}', {_units_text(erf.units)}, {channel},"
             f" {erf.samples} sample{'s' if erf.samples != 1 else ''}"]
    depth = _depth(erf.region)
    if erf.mass.ndim == 3:
        title.append(f"depth slice {depth} of {erf.mass.shape[0]}")
    return erf_picture(erf.mass, box_of(erf.region), window, depth, scale, title, erf.fraction)


def overlay(summary: Summary, layer: str, units: Sequence[Sequence[int]], image: np.ndarray
            ) -> tuple[Picture, tuple[UnitRegion, ...]]:
    """``image`` ([C, *S], the analysed input's shape) with unit ``i``'s clipped region outlined in
    ``convcalc.report.drawing.PALETTE[i]`` (none when it lies outside the input), its centre marked and a legend,
    and the units' regions."""
    regions = tuple(unit_region(summary, layer, u) for u in units)
    boxes = [box_of(r) for r in regions]
    first = next((r for r, b in zip(regions, boxes) if b is not None), regions[0])
    depth = _depth(first)
    centres = [None if r.empty or any(a.centre is None for a in r.axes) else tuple(float(a.centre) for a in r.axes)
               for r in regions]
    labels = [_units_text(r.units) for r in regions]
    title = [f"receptive fields of '{layer}' on the input ({'x'.join(map(str, image.shape[1:]))})"]
    if image.ndim == 4:
        title.append(f"depth slice {depth} of {image.shape[1]}")
    return overlay_picture(image, boxes, depth, labels=labels, centres=centres, title=title), regions


# --------------------------------------------------------------------------- growth chart

ROW = 18
BAR = 360
GROWTH_COLOUR = (64, 160, 255)
MERGE_COLOUR = (160, 120, 255)
WHOLE_COLOUR = (110, 110, 120)
WARN_COLOUR = (255, 96, 64)


def _share(row: GrowthRow) -> float:
    """The bar's length: the geometric mean of the per-axis shares of the input the largest region spans."""
    if not row.coverage:
        return 1.0
    return float(row.area) ** (1 / len(row.coverage))


def _size_text(row: GrowthRow) -> str:
    if row.whole:
        return "whole input"
    sizes = "x".join(str(s) if s == m else f"{m}..{s}" for s, m in zip(row.size, row.size_min))
    strides = "x".join(str(s) for s in row.stride)
    return f"{sizes}, stride {strides}"


def _fit_names(names: Sequence[str], pixels: int) -> list[str]:
    """Layer names in at most ``pixels`` each, shortened in the middle as the tables do (`fit.shorten_names`: the
    distinguishing head and tail kept, names that differ kept different)."""
    from .fit import shorten_names

    widths = [text_size(n)[0] for n in names]
    if not names or max(widths) <= pixels:
        return list(names)
    longest = max(range(len(names)), key=widths.__getitem__)
    room = max(4, int(len(names[longest]) * pixels / widths[longest]) + 2)
    while True:
        shown = shorten_names(names, room)
        if room <= 4 or all(text_size(n)[0] <= pixels for n, full in zip(shown, names) if n != full):
            return shown
        room -= 1


def growth_chart(rows: Sequence[GrowthRow], title: str, input_shape: Sequence[int]) -> Picture:
    """One bar per layer: the share of the input its largest region spans per axis (geometric mean, as the
    table's bar), with its size and effective stride; merges in violet, misaligned merges flagged in red, layers
    that see the whole input in grey. The bars start at pixel x of the info's ``convcalc:plot`` and are ``BAR``
    pixels long at 100 %, one row ``ROW`` pixels high each from its y."""
    lh = line_height()
    names = _fit_names([row.name for row in rows], 220)
    name_width = max((text_size(n)[0] for n in names), default=40) + 12
    types = [fit_text(row.type, 120) for row in rows]
    type_width = max((text_size(t)[0] for t in types), default=40) + 12
    notes = [_size_text(row) + ("  misaligned merge" if row.misaligned else "") for row in rows]
    note_width = max((text_size(n)[0] for n in notes), default=40) + 12
    x0 = MARGIN + name_width + type_width
    y0 = MARGIN + 2 * lh + lh
    width = max(x0 + BAR + 10 + note_width + MARGIN, text_size(title)[0] + 2 * MARGIN)
    height = y0 + ROW * len(rows) + lh + 2 * lh + MARGIN
    canvas = blank(height, width)
    draw_text(canvas, (MARGIN, MARGIN), title, TEXT)
    draw_text(canvas, (MARGIN, MARGIN + lh), f"input {'x'.join(map(str, input_shape))}; bar: the share of the"
              " input the largest region spans (per axis)", DIM)
    for percent in (0, 25, 50, 75, 100):                          # the grid and its labels
        x = x0 + round(BAR * percent / 100)
        canvas[y0 - 4:y0 + ROW * len(rows), x] = (60, 60, 68)
        draw_text(canvas, (x, y0 - 6), f"{percent} %", DIM, anchor="ms")
    for index, (row, name, type_name, note) in enumerate(zip(rows, names, types, notes)):
        y = y0 + index * ROW
        if index % 2:
            canvas[y:y + ROW, MARGIN:width - MARGIN] = np.maximum(canvas[y:y + ROW, MARGIN:width - MARGIN], 32)
        colour = WHOLE_COLOUR if row.whole else MERGE_COLOUR if row.merge else GROWTH_COLOUR
        length = max(1, round(BAR * _share(row)))
        canvas[y + 3:y + ROW - 3, x0:x0 + length] = colour
        draw_text(canvas, (MARGIN, y + ROW // 2), name, TEXT, anchor="lm")
        draw_text(canvas, (MARGIN + name_width, y + ROW // 2), type_name, DIM, anchor="lm")
        draw_text(canvas, (x0 + BAR + 10, y + ROW // 2), note, WARN_COLOUR if row.misaligned else TEXT, anchor="lm")
    legend_y = y0 + ROW * len(rows) + lh // 2
    x = MARGIN
    kinds = [(GROWTH_COLOUR, "layer", True), (MERGE_COLOUR, "merge (its largest input's field)",
                                               any(row.merge and not row.whole for row in rows)),
             (WHOLE_COLOUR, "sees the whole input", any(row.whole for row in rows)),
             (WARN_COLOUR, "misaligned merge (Araujo et al.)", any(row.misaligned for row in rows))]
    for colour, text in ((colour, text) for colour, text, present in kinds if present):
        canvas[legend_y + 4:legend_y + lh - 4, x:x + 14] = colour
        draw_text(canvas, (x + 20, legend_y + lh // 2), text, TEXT, anchor="lm")
        x += 20 + text_size(text)[0] + 18
        if x > width - 150:
            x, legend_y = MARGIN, legend_y + lh
    return Picture(canvas, geometry_info(x=x0, y=y0, row=ROW, bar=BAR, rows=len(rows)))


__all__ = ["box_of", "erf_heatmap", "growth_chart", "overlay"]
