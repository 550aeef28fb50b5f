"""Feature-map pictures: one sample's maps [C, *S] as a grid of tiles, each scaled to its own range, written as PNGs
(`convcalc run --save-maps DIR`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConvcalcError

def _to_uint8(plane: np.ndarray) -> np.ndarray:
    finite = np.nan_to_num(plane.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = finite.min(), finite.max()
    scaled = (finite - low) / (high - low) if high > low else np.zeros_like(finite)
    return (scaled * 255).round().astype(np.uint8)


def map_grid(activation: np.ndarray, max_channels: int = 16, min_tile: int = 64) -> np.ndarray:
    """One sample's feature maps [C, *S] as a uint8 picture: the first channels in a grid, each scaled to
    its own range. 1-D maps become one row per channel; 3-D maps show their middle depth slice."""
    if activation.ndim == 1:
        activation = activation[None, None, :]                     # a vector: one strip
    elif activation.ndim == 2:
        activation = activation[:, None, :]                        # [C, L] -> C strips of height 1
    elif activation.ndim == 4:
        activation = activation[:, activation.shape[1] // 2]       # [C, D, H, W] -> middle slice
    channels = min(activation.shape[0], max_channels)
    tiles = [_to_uint8(activation[c]) for c in range(channels)]
    height, width = tiles[0].shape
    zoom = max(1, int(np.ceil(min_tile / max(height, width))))
    tiles = [np.kron(t, np.ones((zoom, zoom), dtype=np.uint8)) for t in tiles]
    height, width = tiles[0].shape
    columns = int(np.ceil(np.sqrt(channels)))
    rows = int(np.ceil(channels / columns))
    grid = np.full((rows * (height + 2) + 2, columns * (width + 2) + 2), 40, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        grid[2 + r * (height + 2):2 + r * (height + 2) + height, 2 + c * (width + 2):2 + c * (width + 2) + width] = tile
    return grid


def _file_name(layer: str) -> str:
    """A layer name as a safe file-name part: characters other than letters, digits, '.', '_', '-' become '_'
    (a spec may name a layer 'stage/1'; the run table keeps the real name, and the index prefix keeps files apart)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", layer)


def save_maps(maps: Mapping[str, np.ndarray], directory: str | os.PathLike, order: Sequence[str]) -> list[Path]:
    """Write each layer's first-sample feature maps as ``NNN_<layer>.png``; returns the files written."""
    from PIL import Image

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
        try:
            Image.fromarray(map_grid(maps[name][0])).save(path)
        except OSError as exc:
            raise ConvcalcError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written
