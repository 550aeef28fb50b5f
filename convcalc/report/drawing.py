"""Pictures for ``convcalc rf``: the ERF heatmap and receptive-field overlays, as uint8 RGB arrays (H, W, 3).

Every input position becomes a ``zoom`` x ``zoom`` block of pixels (`zoom_for`: the smallest integer that makes
the longest axis at least 256 pixels, at most 32), so input index ``i`` along an axis covers pixels
``[i*zoom, (i+1)*zoom - 1]``. A box (one ``(first, last)`` input range per axis, inside the input) is drawn as a
one-pixel outline on the outermost pixels of the blocks it spans. 1-D inputs become a strip ``STRIP`` pixels high
(bars of the ERF, a plot of the signal) and boxes become spans of the strip's whole height; 3-D inputs show one
depth slice (``depth``).
"""

from __future__ import annotations

import os
from math import ceil
from typing import Optional, Sequence

import numpy as np

from ..errors import ConvcalcError

STRIP = 128
BOX_COLOUR = (0, 255, 255)          # cyan: not in the heatmap's colormap
PALETTE = ((255, 48, 48), (48, 255, 48), (64, 128, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255),
           (255, 160, 0), (255, 255, 255))
# anchors of a perceptually ordered dark-to-light map (after matplotlib's 'inferno'), interpolated linearly
_ANCHORS = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
                     (250, 193, 39), (252, 255, 164)], dtype=np.float64)

Box = Sequence[tuple[int, int]]


def zoom_for(spatial: Sequence[int], target: int = 256, largest: int = 32) -> int:
    """Pixels per input position: ceil(target / longest axis), between 1 and ``largest``."""
    longest = max(spatial) if spatial else 1
    return max(1, min(largest, ceil(target / longest)))


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 (..., 3), dark to light."""
    scaled = np.clip(np.nan_to_num(values), 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.minimum(np.floor(scaled).astype(int), len(_ANCHORS) - 2)
    weight = (scaled - low)[..., None]
    colours = _ANCHORS[low] * (1 - weight) + _ANCHORS[low + 1] * weight
    return colours.round().astype(np.uint8)


def _blocks(rgb: np.ndarray, zoom: int) -> np.ndarray:
    return np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1)


def draw_box(picture: np.ndarray, box: Box, colour: Sequence[int], zoom: int) -> None:
    """Outline ``box`` (rows, columns in input positions; 1-D: columns only, the whole height) in place."""
    height, width = picture.shape[:2]
    if len(box) == 1:
        (c0, c1), (r0, r1) = box[0], (0, (height - 1) // zoom)
        top, bottom = 0, height - 1
    else:
        (r0, r1), (c0, c1) = box[-2], box[-1]
        top, bottom = r0 * zoom, min((r1 + 1) * zoom - 1, height - 1)
    left, right = c0 * zoom, min((c1 + 1) * zoom - 1, width - 1)
    picture[top:bottom + 1, left] = colour
    picture[top:bottom + 1, right] = colour
    picture[top, left:right + 1] = colour
    picture[bottom, left:right + 1] = colour


def _strip(values: np.ndarray, zoom: int, bars: bool) -> np.ndarray:
    """A 1-D signal as a strip STRIP pixels high: bars coloured by value (ERF) or a white plot line."""
    length = len(values)
    picture = np.full((STRIP, length * zoom, 3), 24, dtype=np.uint8)
    low, high = float(np.min(values)), float(np.max(values))
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values, dtype=np.float64)
    if bars:
        scaled = values / high if high > 0 else np.zeros_like(values, dtype=np.float64)
    heights = np.round(scaled * (STRIP - 1)).astype(int)
    colours = colormap(scaled)
    for index, (h, colour) in enumerate(zip(heights, colours)):
        columns = slice(index * zoom, (index + 1) * zoom)
        if bars:
            picture[STRIP - 1 - h:, columns] = colour
        else:
            picture[STRIP - 1 - h, columns] = (230, 230, 230)
    return picture


def erf_picture(mass: np.ndarray, box: Optional[Box], depth: int = 0, zoom: Optional[int] = None) -> np.ndarray:
    """The ERF ``mass`` (spatial, any scale) as a heatmap normalised to its maximum, with the theoretical region
    ``box`` (clipped to the input; None: not drawn) outlined in cyan. 3-D: the slice at ``depth``."""
    zoom = zoom or zoom_for(mass.shape)
    if mass.ndim == 1:
        picture = _strip(mass.astype(np.float64), zoom, bars=True)
    else:
        plane = mass[depth] if mass.ndim == 3 else mass
        peak = float(mass.max())
        picture = _blocks(colormap(plane / peak if peak > 0 else plane), zoom)
    if box is not None:
        draw_box(picture, box[-2:] if len(box) == 3 else box, BOX_COLOUR, zoom)
    return picture


def _rgb(image: np.ndarray) -> np.ndarray:
    """[C, H, W] values -> RGB uint8: images in [0, 1] as they are, anything else scaled to its range; 1 or 2
    channels as gray (their mean), 3 or more as the first three."""
    planes = image[:3] if image.shape[0] >= 3 else np.repeat(image.mean(axis=0, keepdims=True), 3, axis=0)
    low, high = float(planes.min()), float(planes.max())
    if low < 0 or high > 1:
        planes = (planes - low) / (high - low) if high > low else np.zeros_like(planes)
    return (np.clip(planes, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)


def overlay_picture(image: np.ndarray, boxes: Sequence[Optional[Box]], depth: int = 0,
                    zoom: Optional[int] = None) -> np.ndarray:
    """The input ``image`` ([C, *S]) with box ``i`` (clipped to the input; None: none) outlined in ``PALETTE[i]``.
    1-D: a plot of the channels' mean with spans; 3-D: the slice at ``depth``, boxes by their last two axes."""
    zoom = zoom or zoom_for(image.shape[1:])
    if image.ndim == 2:
        picture = _strip(image.mean(axis=0).astype(np.float64), zoom, bars=False)
    else:
        plane = image[:, depth] if image.ndim == 4 else image
        picture = _blocks(_rgb(plane.astype(np.float64)), zoom)
    for index, box in enumerate(boxes):
        if box is None:                     # nothing inside the input: its colour is skipped
            continue
        draw_box(picture, box[-2:] if len(box) == 3 else box, PALETTE[index % len(PALETTE)], zoom)
    return picture


def save_png(picture: np.ndarray, path: str | os.PathLike) -> None:
    from PIL import Image

    try:
        Image.fromarray(picture).save(path, format="PNG")
    except (OSError, ValueError) as exc:
        raise ConvcalcError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None


__all__ = ["BOX_COLOUR", "PALETTE", "STRIP", "colormap", "draw_box", "erf_picture", "overlay_picture", "save_png",
           "zoom_for"]
