"""Labelled pictures: text in PIL's built-in font, a colour bar with values, legends and axis ticks around a plot,
and the note each PNG carries of where its plot lies (`Picture.info`, PNG text chunks).

Everything here works offline: the font is PIL's own (`ImageFont.load_default`, scalable from Pillow 10.1, the
fixed bitmap font before). Pictures are uint8 arrays until `save_png` writes them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from math import ceil, floor, log10
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import ConvcalcError

FONT_SIZE = 13
BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
DIM = (160, 160, 170)
MARGIN = 10
GEOMETRY_KEY = "convcalc:plot"      # PNG text chunk: where the plot lies and what it shows (`plot_geometry`)


@dataclass
class Picture:
    """A picture's pixels (H, W, 3) or (H, W) uint8, and the text chunks its PNG carries."""

    pixels: np.ndarray
    info: dict[str, str] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@lru_cache(maxsize=8)
def font(size: int = FONT_SIZE):
    """PIL's built-in font at ``size`` pixels (Pillow >= 10.1), else its fixed bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:                       # Pillow < 10.1: no sizes
        return ImageFont.load_default()


def text_size(text: str, size: int = FONT_SIZE) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` drawn from its origin."""
    left, top, right, bottom = font(size).getbbox(text or " ")
    return int(right), int(bottom)


def line_height(size: int = FONT_SIZE) -> int:
    return text_size("Hgy[]", size)[1] + 4


def fit_text(text: str, width: int, size: int = FONT_SIZE) -> str:
    """``text`` cut (with '…' → '..') to at most ``width`` pixels."""
    if text_size(text, size)[0] <= width:
        return text
    while text and text_size(text + "..", size)[0] > width:
        text = text[:-1]
    return text + ".."


def draw_text(picture: np.ndarray, xy: tuple[int, int], text: str, colour: Sequence[int] = TEXT,
              size: int = FONT_SIZE, anchor: str = "la") -> None:
    """Draw ``text`` into ``picture`` in place (``anchor`` as PIL's: 'la' left-top, 'ra' right-top, 'lm', 'mm'...):
    only the pixels under the text's box pass through PIL."""
    from PIL import Image, ImageDraw

    x, y = xy
    try:
        left, top, right, bottom = _ruler().textbbox((x, y), text, font=font(size), anchor=anchor)
    except (ValueError, TypeError):     # the bitmap font knows no anchors: place it by its size
        width, height = text_size(text, size)
        x -= {"l": 0, "m": width // 2, "r": width}[anchor[0]]
        y -= {"a": 0, "t": 0, "m": height // 2, "s": height, "b": height, "d": height}[anchor[1]]
        anchor = None
        left, top, right, bottom = x, y, x + width, y + height
    height, width = picture.shape[:2]
    left, top = max(int(left) - 1, 0), max(int(top) - 1, 0)
    right, bottom = min(int(right) + 2, width), min(int(bottom) + 2, height)
    if right <= left or bottom <= top:
        return
    part = Image.fromarray(np.ascontiguousarray(picture[top:bottom, left:right]))
    fill = tuple(int(c) for c in colour) if picture.ndim == 3 else int(np.mean(colour))
    options = {"anchor": anchor} if anchor else {}
    ImageDraw.Draw(part).text((x - left, y - top), text, fill=fill, font=font(size), **options)
    picture[top:bottom, left:right] = np.asarray(part)


@lru_cache(maxsize=1)
def _ruler():
    from PIL import Image, ImageDraw

    return ImageDraw.Draw(Image.new("L", (1, 1)))


def blank(height: int, width: int, colour: Sequence[int] = BACKGROUND, grey: bool = False) -> np.ndarray:
    if grey:
        return np.full((height, width), int(np.mean(colour)), dtype=np.uint8)
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (height, width, 3)).copy()


def rectangle(picture: np.ndarray, top: int, left: int, bottom: int, right: int, colour: Sequence[int],
              thickness: int = 1, dash: Optional[tuple[int, int]] = None) -> None:
    """Outline the pixel rectangle [top, bottom] x [left, right] in place, ``thickness`` pixels inwards;
    ``dash`` (on, off): a dashed outline, each edge's dashes counted from its first pixel."""
    height, width = picture.shape[:2]
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, height - 1), min(right, width - 1)
    if bottom < top or right < left:
        return
    thickness = max(1, min(thickness, (bottom - top + 1 + 1) // 2, (right - left + 1 + 1) // 2))

    def keep(length: int) -> np.ndarray:
        if dash is None:
            return np.ones(length, dtype=bool)
        on, off = dash
        return (np.arange(length) % (on + off)) < on

    rows, columns = keep(bottom - top + 1), keep(right - left + 1)
    colour = np.array(colour, dtype=np.uint8)
    for t in range(thickness):
        picture[top + t, left:right + 1][columns] = colour
        picture[bottom - t, left:right + 1][columns] = colour
        picture[top:bottom + 1, left + t][rows] = colour
        picture[top:bottom + 1, right - t][rows] = colour


def nice_step(span: float, pixels: float, spacing: float = 44) -> int:
    """The smallest step in 1, 2, 5, 10, 20, 50, ... positions whose ticks lie ``spacing`` pixels apart or more
    on an axis of ``span`` positions drawn ``pixels`` long."""
    per_position = pixels / max(span, 1)
    step, factors = 1, (2, 2.5, 2)
    index = 0
    while step * per_position < spacing:
        step = int(round(step * factors[index % 3]))
        index += 1
    return step


def number_text(value: float) -> str:
    """A value for a colour bar: 3 significant digits, scientific below 0.001."""
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e4:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Scale:
    """Values -> [0, 1] for a colour map: linear from 0 to ``high``, or logarithmic from ``low`` to ``high``
    (values at or below ``low``, zeros included, map to 0)."""

    kind: str              # 'linear' or 'log'
    low: float
    high: float

    def __call__(self, values: np.ndarray) -> np.ndarray:
        values = np.nan_to_num(np.asarray(values, dtype=np.float64))
        if self.high <= 0:
            return np.zeros_like(values)
        if self.kind == "linear":
            return np.clip(values / self.high, 0.0, 1.0)
        if self.high <= self.low:
            return (values > 0).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = (np.log10(np.maximum(values, self.low)) - log10(self.low)) / (log10(self.high) - log10(self.low))
        return np.clip(np.nan_to_num(scaled), 0.0, 1.0)

    def ticks(self) -> list[float]:
        """Values to label on the colour bar, from high to low: its ends and the round values between."""
        if self.high <= 0:
            return [0.0]
        if self.kind == "linear":
            return [self.high * f for f in (1.0, 0.75, 0.5, 0.25)] + [0.0]
        if self.high <= self.low:
            return [self.high]
        inner = [10.0 ** k for k in range(floor(log10(self.high)), ceil(log10(self.low)) - 1, -1)]
        return [self.high] + [v for v in inner if self.low < v < self.high] + [self.low]

    def describe(self) -> str:
        if self.high <= 0:
            return "no mass (nothing reaches the input)"
        if self.kind == "linear":
            return "linear scale"
        decades = log10(self.high / self.low) if self.low > 0 and self.high > self.low else 0
        return f"log scale ({decades:.1f} decades)"


def value_scale(values: np.ndarray, kind: str, decades: float = 4.0) -> Scale:
    """The colour scale of ``values`` (>= 0): linear up to the peak, or logarithmic over the ``decades`` below it
    (fewer when the smallest positive value is larger)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    high = float(values.max()) if values.size else 0.0
    if kind == "linear" or high <= 0:
        return Scale("linear" if kind == "linear" else "log", 0.0 if kind == "linear" else high, high)
    positive = values[values > 0]
    low = max(float(positive.min()) / 2, high * 10.0 ** -decades)    # the smallest value stays visible
    return Scale("log", low, high)


def colour_bar(height: int, scale: Scale, colormap: Callable[[np.ndarray], np.ndarray], caption: str,
               bar_width: int = 16) -> np.ndarray:
    """A vertical colour bar ``height`` pixels high (the top is ``scale.high``), its tick values to the right and
    ``caption`` above it; returns the panel (RGB)."""
    labels = [number_text(v) for v in scale.ticks()]
    label_width = max(text_size(t)[0] for t in labels)
    head = line_height()
    width = max(bar_width + 6 + label_width, text_size(caption)[0]) + 2
    panel = blank(head + height + line_height() // 2 + 2, width)
    draw_text(panel, (0, 0), caption, DIM)
    shares = 1.0 - np.arange(height, dtype=np.float64) / max(height - 1, 1)
    top = head + line_height() // 4
    panel[top:top + height, 0:bar_width] = colormap(shares)[:, None, :]
    placed: list[int] = []
    for value, label in zip(scale.ticks(), labels):
        share = float(scale(np.array([value]))[0]) if value > 0 else 0.0
        y = top + int(round((1.0 - share) * (height - 1)))
        if any(abs(y - other) < line_height() - 2 for other in placed):
            continue
        placed.append(y)
        panel[y, bar_width:bar_width + 4] = TEXT
        draw_text(panel, (bar_width + 6, y), label, TEXT, anchor="lm")
    return panel


def paste(canvas: np.ndarray, part: np.ndarray, top: int, left: int) -> None:
    height, width = part.shape[:2]
    canvas[top:top + height, left:left + width] = part


def legend_rows(entries: Sequence[tuple[Sequence[int], str, bool]], width: int) -> np.ndarray:
    """One line per (colour, text, dashed): a short line sample in the colour and the text, ``width`` wide at least."""
    sample = 22
    needed = max((sample + 8 + text_size(text)[0] for _, text, _ in entries), default=0) + 2
    height = line_height() * len(entries) + 2
    panel = blank(height, max(width, needed))
    for index, (colour, text, dashed) in enumerate(entries):
        y = index * line_height() + line_height() // 2
        line = np.zeros(sample, dtype=bool)
        line[:] = True
        if dashed:
            line = (np.arange(sample) % 8) < 5
        for t in (0, 1):
            panel[y - 1 + t, 0:sample][line] = colour
        draw_text(panel, (sample + 8, y), text, TEXT, anchor="lm")
    return panel


def stack(parts: Sequence[np.ndarray], gap: int = 6, margin: int = MARGIN) -> tuple[np.ndarray, list[int]]:
    """Parts one under the other, left-aligned at ``margin``; returns the picture and each part's top row."""
    width = max(p.shape[1] for p in parts) + 2 * margin
    height = sum(p.shape[0] for p in parts) + gap * (len(parts) - 1) + 2 * margin
    canvas = blank(height, width)
    tops, y = [], margin
    for part in parts:
        paste(canvas, part, y, margin)
        tops.append(y)
        y += part.shape[0] + gap
    return canvas, tops


def geometry_info(**values: Any) -> dict[str, str]:
    """The PNG text chunk that says where the plot lies: ``{GEOMETRY_KEY: json}``."""
    return {GEOMETRY_KEY: json.dumps(values, separators=(",", ":"))}


def save_picture(picture: Picture | np.ndarray, path: str | os.PathLike) -> None:
    """Write a picture as PNG (with its text chunks)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    pixels, info = (picture.pixels, picture.info) if isinstance(picture, Picture) else (picture, {})
    chunks = PngInfo()
    for key, value in info.items():
        chunks.add_text(key, value)
    try:
        Image.fromarray(pixels).save(path, format="PNG", pnginfo=chunks)
    except (OSError, ValueError) as exc:
        raise ConvcalcError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None


__all__ = ["BACKGROUND", "GEOMETRY_KEY", "Picture", "Scale", "colour_bar", "draw_text", "fit_text", "font",
           "geometry_info", "legend_rows", "line_height", "nice_step", "number_text", "rectangle", "save_picture",
           "stack", "text_size", "value_scale"]
