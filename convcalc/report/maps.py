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
    channel (at least 16 pixels high); 3-D maps show their middle depth slice."""
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
