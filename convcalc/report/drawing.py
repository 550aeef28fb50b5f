"""Pictures for ``convcalc rf``: the ERF heatmap and receptive-field overlays (`Picture`: uint8 RGB pixels and the
PNG's text chunks).

Each picture is a *plot* framed by a title above, input indices along its left and bottom edges, a legend below and
(the ERF) a colour bar with values to the right. The plot shows the input positions ``first..last`` per axis (the
ERF: the theoretical region with a margin of half its size, at least 3 positions; an overlay: the whole input);
every position is a ``zoom`` x ``zoom`` block of pixels (`zoom_for`: the smallest integer that makes the plot's
longest axis at least 320 pixels, at most 40), so input index ``i`` along an axis covers plot pixels
``[(i - first)*zoom, (i - first + 1)*zoom - 1]``. Where the plot lies is in the PNG's text chunk ``convcalc:plot``
(JSON: ``x``, ``y`` of its top-left pixel, ``zoom``, ``first``, ``last``, ``depth``). A box (one ``(first, last)``
input range per axis) is outlined on the outermost ``line_width(zoom)`` pixels (2, or 1 when zoom < 4) of the blocks
it spans, inwards; the ERF's mass window (dashed: ``DASH`` pixels on, off, from each edge's first pixel) on the
``line_width`` pixels just inside those when zoom >= 4 (and on 1-D strips), so that it shows beside a region it
coincides with. 1-D axes longer than ``STRIP_MAX`` positions are drawn in blocks of ``bin`` positions (their mass
summed, their signal averaged): position ``i`` lies in block ``(i - first) // bin``. 1-D inputs become a strip
``STRIP`` pixels high (bars of the ERF, a plot of the signal) and boxes spans of the strip's whole height; 3-D inputs
show one depth slice (``depth``).
"""

from __future__ import annotations

from math import ceil
from typing import Optional, Sequence

import numpy as np

from .canvas import (BACKGROUND, DIM, MARGIN, TEXT, Picture, Scale, blank, colour_bar, draw_text, geometry_info,
                     legend_rows, line_height, nice_step, paste, rectangle, save_picture, text_size, value_scale)

STRIP = 128
STRIP_MAX = 1200                    # 1-D plots: at most this many blocks (longer axes: several positions a block)
TARGET = 320                        # the plot's longest axis, in pixels, at least (unless zoom reaches LARGEST)
LARGEST = 40
BOX_COLOUR = (0, 255, 255)          # cyan: not in the heatmap's colormap
WINDOW_COLOUR = (64, 255, 64)       # green, dashed: the window holding the ERF's mass fraction
DASH = (6, 4)
PALETTE = ((255, 48, 48), (48, 255, 48), (64, 128, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255),
           (255, 160, 0), (255, 255, 255))
# anchors of a perceptually ordered dark-to-light map (after matplotlib's 'inferno'), interpolated linearly
_ANCHORS = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
                     (250, 193, 39), (252, 255, 164)], dtype=np.float64)

Box = Sequence[tuple[int, int]]


def zoom_for(spatial: Sequence[int], target: int = TARGET, largest: int = LARGEST) -> int:
    """Pixels per input position: ceil(target / longest axis), between 1 and ``largest``."""
    longest = max(spatial) if spatial else 1
    return max(1, min(largest, ceil(target / max(longest, 1))))


def line_width(zoom: int) -> int:
    """Outline thickness: 2 pixels, 1 when the blocks are smaller than 4 pixels."""
    return 2 if zoom >= 4 else 1


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 (..., 3), dark to light."""
    scaled = np.clip(np.nan_to_num(values), 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.minimum(np.floor(scaled).astype(int), len(_ANCHORS) - 2)
    weight = (scaled - low)[..., None]
    colours = _ANCHORS[low] * (1 - weight) + _ANCHORS[low + 1] * weight
    return colours.round().astype(np.uint8)


def _blocks(rgb: np.ndarray, zoom: int) -> np.ndarray:
    return np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1)


def draw_box(picture: np.ndarray, box: Box, colour: Sequence[int], zoom: int, first: Sequence[int] = (0, 0),
             dash: Optional[tuple[int, int]] = None, inset: int = 0) -> None:
    """Outline ``box`` (rows, columns in input positions; 1-D: columns only, the whole height) on a plot whose
    top-left block is input position ``first``, in place, ``inset`` pixels inside the blocks' outer edge."""
    height = picture.shape[0]
    if len(box) == 1:
        (c0, c1), (r0, r1) = box[0], (0, 0)
        column_first = first[-1]
        top, bottom = 0, height - 1
    else:
        (r0, r1), (c0, c1) = box[-2], box[-1]
        row_first, column_first = first[-2], first[-1]
        top, bottom = (r0 - row_first) * zoom, (r1 - row_first + 1) * zoom - 1
    left, right = (c0 - column_first) * zoom, (c1 - column_first + 1) * zoom - 1
    rectangle(picture, top + inset, left + inset, bottom - inset, right - inset, colour, line_width(zoom), dash)


def _strip(values: np.ndarray, zoom: int, bars: bool, scale: Optional[Scale] = None) -> np.ndarray:
    """A 1-D signal as a strip STRIP pixels high: bars coloured by value (ERF) or a white plot line."""
    length = len(values)
    picture = np.full((STRIP, length * zoom, 3), 24, dtype=np.uint8)
    if bars:
        scaled = scale(values) if scale is not None else values / max(float(np.max(values)), 1e-300)
    else:
        low, high = float(np.min(values)), float(np.max(values))
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values, dtype=np.float64)
    heights = np.round(scaled * (STRIP - 1)).astype(int)
    colours = colormap(scaled)
    for index, (h, colour) in enumerate(zip(heights, colours)):
        columns = slice(index * zoom, (index + 1) * zoom)
        if bars:
            if scaled[index] > 0:
                picture[STRIP - 1 - h:, columns] = colour
        else:
            picture[STRIP - 1 - h, columns] = (230, 230, 230)
    return picture


def bin_for(spatial: Sequence[int]) -> int:
    """Input positions per block of a 1-D plot: 1, or enough that at most ``STRIP_MAX`` blocks show."""
    return max(1, ceil(spatial[0] / STRIP_MAX)) if len(spatial) == 1 else 1


def _binned(values: np.ndarray, bin: int, reduce) -> np.ndarray:
    """A 1-D signal in blocks of ``bin`` positions (the last one shorter), each reduced to one value."""
    if bin == 1:
        return values
    return np.array([reduce(values[i:i + bin]) for i in range(0, len(values), bin)], dtype=np.float64)


def _bin_box(box: Optional[Box], first: Sequence[int], bin: int) -> Optional[Box]:
    """A 1-D span in positions as the span of the blocks of ``bin`` positions (counted from ``first``) it touches."""
    if box is None or bin == 1:
        return box
    (b0, b1), = box
    return (((b0 - first[0]) // bin, (b1 - first[0]) // bin),)


def view_of(lengths: Sequence[int], box: Optional[Box]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The positions an ERF plot shows per axis: ``box`` with a margin of half its size (at least 3) on each side,
    within the input; the whole input when there is no box."""
    if box is None:
        return tuple(0 for _ in lengths), tuple(n - 1 for n in lengths)
    first, last = [], []
    for (b0, b1), length in zip(box, lengths):
        margin = max(3, (b1 - b0 + 1) // 2)
        first.append(max(0, b0 - margin))
        last.append(min(length - 1, b1 + margin))
    return tuple(first), tuple(last)


def _ticks_left(height: int, first: int, last: int, zoom: int, width: int) -> np.ndarray:
    """Row indices beside a plot ``height`` pixels high, right-aligned in a panel ``width`` wide."""
    panel = blank(height + line_height(), width)
    step = nice_step(last - first + 1, (last - first + 1) * zoom, spacing=line_height() + 6)
    half = line_height() // 2
    for index in range(first, last + 1):
        if index % step:
            continue
        y = half + (index - first) * zoom + zoom // 2
        panel[y, width - 4:width] = DIM
        draw_text(panel, (width - 6, y), str(index), DIM, anchor="rm")
    return panel


def _ticks_below(width: int, first: int, last: int, zoom: int, bin: int = 1) -> np.ndarray:
    """Column indices under a plot ``width`` pixels wide (the panel is wider by half a label on each side)."""
    pad = 24
    panel = blank(line_height() + 6, width + 2 * pad)
    step = nice_step(last - first + 1, width, spacing=max(text_size(str(last))[0] + 14, 30))
    for index in range(first, last + 1):
        if index % step:
            continue
        x = pad + ((index - first) // bin) * zoom + zoom // 2
        panel[0:4, x] = DIM
        draw_text(panel, (x, 5), str(index), DIM, anchor="ma")
    return panel


def framed(plot: np.ndarray, first: Sequence[int], last: Sequence[int], zoom: int, title: Sequence[str],
           legend: Sequence[tuple[Sequence[int], str, bool]], right: Optional[np.ndarray] = None,
           right_offset: int = 0, depth: Optional[int] = None, axis_names: Sequence[str] = (),
           bin: int = 1) -> Picture:
    """``plot`` with ``title`` lines above, input indices left (2-D) and below, ``right`` (a colour bar panel whose
    bar starts ``right_offset`` rows down) beside it and the ``legend`` entries below; the geometry in its info.
    ``bin``: 1-D plots of long axes, input positions per block."""
    lh = line_height()
    one_d = len(first) == 1
    plot_h, plot_w = plot.shape[:2]
    gutter = 0 if one_d else max(text_size(str(last[0]))[0], text_size(axis_names[0] if axis_names else "")[0]) + 10
    title_h = lh * len(title) + (lh if not one_d and axis_names else 0)
    x0 = MARGIN + max(gutter, 24)
    y0 = MARGIN + title_h + 4 + right_offset
    below = _ticks_below(plot_w, first[-1], last[-1], zoom, bin)
    axis_line = lh if axis_names else 0
    legend_panel = legend_rows(legend, 0) if legend else None
    right_w = right.shape[1] + 16 if right is not None else 0
    width = max(x0 + plot_w + right_w + MARGIN, x0 - 24 + below.shape[1] + MARGIN,
                max((text_size(t)[0] for t in title), default=0) + 2 * MARGIN,
                (legend_panel.shape[1] if legend_panel is not None else 0) + 2 * MARGIN)
    height = y0 + max(plot_h + below.shape[0] + axis_line,
                      (right.shape[0] - right_offset) if right is not None else 0)
    legend_top = height + 6
    height = legend_top + (legend_panel.shape[0] if legend_panel is not None else 0) + MARGIN
    canvas = blank(height, width)
    for index, text in enumerate(title):
        draw_text(canvas, (MARGIN, MARGIN + index * lh), text, TEXT if index == 0 else DIM)
    if not one_d:
        paste(canvas, _ticks_left(plot_h, first[0], last[0], zoom, x0 - MARGIN), y0 - lh // 2, MARGIN)
    paste(canvas, plot, y0, x0)
    paste(canvas, below, y0 + plot_h, x0 - 24)
    if axis_names:
        draw_text(canvas, (x0 + plot_w // 2, y0 + plot_h + below.shape[0]), axis_names[-1], DIM, anchor="ma")
        if not one_d:
            draw_text(canvas, (x0 - 4, y0 - 4), axis_names[0], DIM, anchor="rs")
    if right is not None:
        paste(canvas, right, y0 - right_offset, x0 + plot_w + 16)
    if legend_panel is not None:
        paste(canvas, legend_panel, legend_top, MARGIN)
    info = geometry_info(x=x0, y=y0, zoom=zoom, first=list(first), last=list(last), depth=depth, bin=bin)
    return Picture(canvas, info)


def _span_text(box: Box, names: Sequence[str]) -> str:
    """'rows 13..20, columns 13..20 (8x8)'."""
    parts = [f"{name} {b0}..{b1}" for name, (b0, b1) in zip(names, box)]
    return ", ".join(parts) + f" ({'x'.join(str(b1 - b0 + 1) for b0, b1 in box)})"


def axis_names(ndim: int) -> tuple[str, ...]:
    return ("position",) if ndim == 1 else ("row", "column")


def _plural(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{name}s" for name in names)


def erf_picture(mass: np.ndarray, box: Optional[Box], window: Optional[Box] = None, depth: int = 0,
                scale: str = "log", title: Sequence[str] = (), fraction: float = 0.95) -> Picture:
    """The ERF ``mass`` (spatial, total 1) as a heatmap around the theoretical region ``box`` (clipped to the input;
    None: the whole input, no box) with its colour bar (``scale``: 'log' or 'linear'), the region outlined in cyan
    and ``window`` (the centred window holding ``fraction`` of the mass) dashed in green. 3-D: the slice at
    ``depth`` (boxes by their last two axes)."""
    names = axis_names(min(mass.ndim, 2))
    box_names = window_names = _plural(("depth", *names) if mass.ndim == 3 else names)
    box_text = None if box is None else _span_text(box, box_names)
    window_text = None if window is None else _span_text(window, window_names)
    if mass.ndim == 3:
        box = None if box is None else box[-2:]
        window = None if window is None else window[-2:]
    plane = mass[depth] if mass.ndim == 3 else mass
    plane = np.nan_to_num(plane.astype(np.float64))
    first, last = view_of(plane.shape, box)
    shown = plane[tuple(slice(f, l + 1) for f, l in zip(first, last))]
    colours = value_scale(plane, scale)
    bin = bin_for(shown.shape)
    if bin > 1:                                      # a long 1-D axis: blocks of ``bin`` positions, their mass summed
        shown, box, window = _binned(shown, bin, np.sum), _bin_box(box, first, bin), _bin_box(window, first, bin)
        colours = value_scale(shown, scale)
    zoom = zoom_for(shown.shape)
    origin = (0,) if bin > 1 else first
    if plane.ndim == 1:
        plot = _strip(shown, zoom, bars=True, scale=colours)
    else:
        plot = _blocks(colormap(colours(shown)), zoom)
    legend = []
    if box is not None:
        draw_box(plot, box, BOX_COLOUR, zoom, origin)
        legend.append((BOX_COLOUR, f"theoretical receptive field: {box_text}", False))
    if window is not None:
        inset = line_width(zoom) if zoom >= 4 or plane.ndim == 1 else 0
        draw_box(plot, window, WINDOW_COLOUR, zoom, origin, dash=DASH, inset=inset)
        legend.append((WINDOW_COLOUR, f"{round(100 * fraction)} % of the mass: {window_text}", True))
    bar_height = max(plot.shape[0], 160) if plane.ndim > 1 else max(plot.shape[0], 128)
    bar = colour_bar(bar_height, colours, colormap, "|dy/dx| share")
    offset = line_height() + line_height() // 4
    each = "each position's" if bin == 1 else f"each pixel column: {bin} positions and their"
    lines = list(title) + [f"{colours.describe()}; {each} share of the summed |dy/dx|"]
    return framed(plot, first, last, zoom, lines, legend, bar, offset, depth if mass.ndim == 3 else None, names,
                  bin)


def _rgb(image: np.ndarray) -> np.ndarray:
    """[C, H, W] values -> RGB uint8: images in [0, 1] as they are, anything else scaled to its range; 1 or 2
    channels as gray (their mean), 3 or more as the first three."""
    planes = image[:3] if image.shape[0] >= 3 else np.repeat(image.mean(axis=0, keepdims=True), 3, axis=0)
    low, high = float(planes.min()), float(planes.max())
    if low < 0 or high > 1:
        planes = (planes - low) / (high - low) if high > low else np.zeros_like(planes)
    return (np.clip(planes, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)


def mark_unit(picture: np.ndarray, centre: Sequence[float], colour: Sequence[int], zoom: int) -> None:
    """A cross (with a dark rim) at the input position ``centre`` (rows, columns; 1-D: a vertical tick), in place."""
    height, width = picture.shape[:2]
    x = int(round((float(centre[-1]) + 0.5) * zoom))
    arm = max(4, min(10, 2 * zoom))
    x = min(max(x, 0), width - 1)
    if len(centre) == 1:
        picture[:, max(0, x - 1):x + 1] = colour
        return
    y = min(max(int(round((float(centre[-2]) + 0.5) * zoom)), 0), height - 1)
    rows, columns = slice(max(0, y - arm), y + arm + 1), slice(max(0, x - arm), x + arm + 1)
    picture[rows, max(0, x - 2):x + 2] = (0, 0, 0)
    picture[max(0, y - 2):y + 2, columns] = (0, 0, 0)
    picture[rows, max(0, x - 1):x + 1] = colour
    picture[max(0, y - 1):y + 1, columns] = colour


def overlay_picture(image: np.ndarray, boxes: Sequence[Optional[Box]], depth: int = 0,
                    zoom: Optional[int] = None, labels: Sequence[str] = (),
                    centres: Sequence[Optional[Sequence[float]]] = (), title: Sequence[str] = ()) -> Picture:
    """The input ``image`` ([C, *S]) with box ``i`` (clipped to the input; None: none) outlined in ``PALETTE[i]``,
    the unit's centre ``centres[i]`` (input positions) marked with a cross and ``labels[i]`` in the legend.
    1-D: a plot of the channels' mean with spans; 3-D: the slice at ``depth``, boxes by their last two axes."""
    spatial = image.shape[1:]
    labelled = list(boxes)
    bin = bin_for(spatial) if image.ndim == 2 else 1
    if bin > 1:                                      # a long 1-D axis: blocks of ``bin`` positions, their mean
        boxes = [_bin_box(box, (0,), bin) for box in boxes]
        centres = [None if c is None else ((float(c[0]) + 0.5) / bin - 0.5,) for c in centres]
        zoom = 1
    zoom = zoom or zoom_for(spatial)
    if image.ndim == 2:
        plot = _strip(_binned(image.mean(axis=0).astype(np.float64), bin, np.mean), zoom, bars=False)
    else:
        plane = image[:, depth] if image.ndim == 4 else image
        plot = _blocks(_rgb(plane.astype(np.float64)), zoom)
    legend = []
    for index, box in enumerate(boxes):
        colour = PALETTE[index % len(PALETTE)]
        label = labels[index] if index < len(labels) else f"box {index}"
        if box is None:                     # nothing inside the input: its colour is skipped
            legend.append((colour, f"{label}: outside the input", False))
            continue
        names = ("depth", "row", "column") if len(box) == 3 else axis_names(len(box))
        legend.append((colour, f"{label}: {_span_text(labelled[index], _plural(names))}", False))
        draw_box(plot, box[-2:] if len(box) == 3 else box, colour, zoom)
    for index, centre in enumerate(centres):
        if centre is not None and boxes[index] is not None:
            centre = centre[-2:] if len(centre) == 3 else centre
            mark_unit(plot, centre, PALETTE[index % len(PALETTE)], zoom)
    names = axis_names(len(plot.shape) - 1 if image.ndim > 2 else 1)
    first = tuple(0 for _ in spatial[-2:]) if image.ndim > 2 else (0,)
    last = tuple(n - 1 for n in spatial[-2:]) if image.ndim > 2 else (spatial[0] - 1,)
    lines = list(title) + (["spans: the receptive field inside the input; line: the unit's centre"]
                           if image.ndim == 2 else ["boxes: the receptive field inside the input; +: the unit's centre"])
    return framed(plot, first, last, zoom, lines, legend, depth=depth if image.ndim == 4 else None,
                  axis_names=names, bin=bin)


def save_png(picture: Picture | np.ndarray, path) -> None:
    """Write a picture (`Picture` or uint8 array) as PNG."""
    save_picture(picture, path)


__all__ = ["BOX_COLOUR", "DASH", "LARGEST", "PALETTE", "STRIP", "TARGET", "WINDOW_COLOUR", "axis_names", "colormap",
           "draw_box", "erf_picture", "framed", "line_width", "mark_unit", "overlay_picture", "save_png", "view_of",
           "zoom_for"]
