"""Feature-map pictures: one sample's maps [C, *S] as a grid of tiles, each scaled to its own range, written as PNGs
(`convcalc run --save-maps DIR`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConvcalcError
from .canvas import (DIM, MARGIN, TEXT, Picture, draw_text, geometry_info, line_height, number_text, save_picture,
                     text_size)


def _to_uint8(plane: np.ndarray) -> np.ndarray:
    finite = np.nan_to_num(plane.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = finite.min(), finite.max()
    scaled = (finite - low) / (high - low) if high > low else np.zeros_like(finite)
    return (scaled * 255).round().astype(np.uint8)


STRIP_WIDTH = 256          # 1-D maps and vectors: strips at least this wide


def _range_text(plane: np.ndarray) -> str:
    finite = plane[np.isfinite(plane)]
    if not finite.size:
        return "no finite values"
    low, high = float(finite.min()), float(finite.max())
    return number_text(low) if low == high else f"{number_text(low)}..{number_text(high)}"


def map_grid(activation: np.ndarray, max_channels: int = 16, min_tile: int = 96,
             title: Sequence[str] = ()) -> Picture:
    """One sample's feature maps [C, *S] as a grey picture: ``title`` lines, then the first ``max_channels``
    channels in a grid, each scaled to its own range (black: its minimum, white: its maximum) and labelled with its
    index and range. Maps smaller than ``min_tile`` pixels are scaled up by whole pixels (nearest), so map position
    (i, j) of channel c covers the pixels ``[y + i*zoom, ...]`` x ``[x + j*zoom, ...]`` of its tile, whose top-left
    corner (x, y) the info's ``convcalc:plot`` lists (``tiles``, with ``zoom``). 1-D maps become one strip per
    channel (at least 16 pixels high); 3-D maps show their middle depth slice. A vector, or maps of one position
    each ([512, 1, 1] after a global pool), is one grid of values on one shared scale (`vector_grid`)."""
    if activation.ndim == 1 or (activation.ndim >= 2 and all(n == 1 for n in activation.shape[1:])):
        return vector_grid(activation.reshape(-1), title, per_channel=activation.ndim > 1)
    vector = activation.ndim == 1
    if vector:
        activation = activation[None, None, :]                     # a vector: one strip
    elif activation.ndim == 2:
        activation = activation[:, None, :]                        # [C, L] -> C strips of height 1
    elif activation.ndim == 4:
        activation = activation[:, activation.shape[1] // 2]       # [C, D, H, W] -> middle slice
    total = activation.shape[0]
    channels = min(total, max_channels)
    height, width = activation.shape[1:]
    zoom = max(1, int(np.ceil((min_tile if height > 1 else STRIP_WIDTH) / max(height, width))))
    rows_each = max(1, int(np.ceil(16 / (height * zoom)))) if height == 1 else 1
    tiles = [np.kron(_to_uint8(activation[c]), np.ones((zoom * rows_each, zoom), dtype=np.uint8))
             for c in range(channels)]
    tile_h, tile_w = tiles[0].shape
    labels = [f"{c}: {_range_text(np.asarray(activation[c], dtype=np.float64))}" for c in range(channels)]
    label_h = line_height(11)
    gap = 8
    columns = int(np.ceil(np.sqrt(channels)))
    if tile_w < 200 and height > 1:
        columns = min(channels, max(columns, 4))
    rows = int(np.ceil(channels / columns))
    pitch_x = max(tile_w, max(text_size(t, 11)[0] for t in labels)) + gap
    pitch_y = label_h + tile_h + gap
    shown = f"channels 0-{channels - 1} of {total}" if channels > 1 else f"channel 0 of {total}"
    if vector:
        shown, labels = f"{width} values", [labels[0].split(": ", 1)[1]]
    lines = list(title) + [f"{shown}; each scaled to its own range (black: min, white: max)"]
    head = MARGIN + line_height() * len(lines) + 4
    grid_w = columns * pitch_x - gap
    width_px = max(grid_w, max(text_size(t)[0] for t in lines)) + 2 * MARGIN
    grid = np.full((head + rows * pitch_y - gap + MARGIN, width_px), 28, dtype=np.uint8)
    for index, text in enumerate(lines):
        draw_text(grid, (MARGIN, MARGIN + index * line_height()), text, TEXT if index == 0 else DIM)
    corners = []
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        x, y = MARGIN + c * pitch_x, head + r * pitch_y
        draw_text(grid, (x, y), labels[index], DIM, size=11)
        grid[y + label_h:y + label_h + tile_h, x:x + tile_w] = tile
        corners.append([x, y + label_h])
    return Picture(grid, geometry_info(zoom=zoom, tiles=corners, rows_each=rows_each))


VECTOR_WIDTH = 1024         # a vector's grid is at most this many pixels wide (its labels aside)


def vector_grid(values: np.ndarray, title: Sequence[str] = (), per_channel: bool = False) -> Picture:
    """A vector (or one value per channel) as a grid of squares, row by row from index 0, each row labelled with
    its first index, all on one scale (black: the minimum, white: the maximum), so values compare across the grid;
    at most VECTOR_WIDTH pixels wide, squares of 4 to 24 pixels, framed in grey. The info's ``convcalc:plot`` gives the first
    square's corner (``tiles``), the square's side (``zoom``) and the squares a row (``columns``)."""
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    columns = min(count, VECTOR_WIDTH // 4, max(16, int(np.ceil(np.sqrt(count) / 16)) * 16))   # near square
    cell = max(4, min(24, VECTOR_WIDTH // columns))
    rows = int(np.ceil(count / columns))
    shades = _to_uint8(values)
    what = "channels (one value each)" if per_channel else "values"
    lines = list(title) + [f"{count} {what}: {_range_text(values)}", "one square each, row by row from index 0, all"
                           " on one scale (black: min, white: max)"]
    label_w = text_size(str((rows - 1) * columns), 11)[0] + 6
    head = MARGIN + line_height() * len(lines) + 4
    left = MARGIN + label_w
    width_px = max(left + columns * cell + MARGIN, max(text_size(t)[0] for t in lines) + 2 * MARGIN)
    picture = np.full((head + rows * cell + MARGIN, width_px), 28, dtype=np.uint8)
    for index, text in enumerate(lines):
        draw_text(picture, (MARGIN, MARGIN + index * line_height()), text, TEXT if index == 0 else DIM)
    every = max(1, int(np.ceil(14 / cell)))           # a row label every so many rows, where they do not overlap
    for r in range(rows):
        shown = shades[r * columns:(r + 1) * columns]
        picture[head + r * cell:head + (r + 1) * cell, left:left + shown.size * cell] = np.kron(
            shown[None, :], np.ones((cell, cell), dtype=np.uint8))
        if r % every == 0:
            draw_text(picture, (MARGIN, head + r * cell + max(0, (cell - 12) // 2)), str(r * columns), DIM, size=11)
    frame_w, frame_h = columns * cell, rows * cell
    picture[head - 1, left - 1:left + frame_w + 1] = picture[head + frame_h, left - 1:left + frame_w + 1] = 110
    picture[head - 1:head + frame_h + 1, left - 1] = picture[head - 1:head + frame_h + 1, left + frame_w] = 110
    return Picture(picture, geometry_info(zoom=cell, tiles=[[left, head]], columns=columns))


def _file_name(layer: str) -> str:
    """A layer name as a safe file-name part: characters other than letters, digits, '.', '_', '-' become '_'
    (a spec may name a layer 'stage/1'; the run table keeps the real name, and the index prefix keeps files apart)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", layer)


def save_maps(maps: Mapping[str, np.ndarray], directory: str | os.PathLike, order: Sequence[str],
              describe: Mapping[str, str] | None = None) -> list[Path]:
    """Write each layer's first-sample feature maps as ``NNN_<layer>.png`` (titled with the layer's name and
    ``describe[name]``, e.g. its type); returns the files written."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConvcalcError(f"cannot create {directory}: {exc.strerror or exc}") from None
    written = []
    for index, name in enumerate(order):
        if name not in maps:
            continue
        path = directory / f"{index:03d}_{_file_name(name)}.png"
        sample = maps[name][0]
        about = f" ({describe[name]})" if describe and name in describe else ""
        save_picture(map_grid(sample, title=[f"layer '{name}'{about}, output {list(sample.shape)}"]), path)
        written.append(path)
    return written
