"""Inputs for the executor (images, .npy, a built-in test image, normalisation); feature-map pictures are
`convcalc.report.maps`.

Tensors here are PyTorch-shaped: ``[C, *S]`` for one sample, ``[N, C, *S]`` for a batch, float in [0, 1]
for images.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..algebra.shapes import prod
from ..kernels import is_real
from .headers import InputError, image_header, npy_header, opened_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_WIDE_GRAY = ("I;16", "I;16L", "I;16B", "I;16N", "I")   # Pillow opens 16-bit PNGs as I;16 (older: I)


# --------------------------------------------------------------------------- the built-in test image

def default_input(shape: Sequence[int]) -> np.ndarray:
    """A deterministic test input in [0, 1] of ``shape`` ([C, L], [C, H, W] or [C, D, H, W]; [F] too).

    In 2-D: a diagonal gradient, a bright disc, a checkerboard quadrant and a dark bar, so edges of every
    orientation, flat regions and texture are all present. 1-D and 3-D inputs get the analogous signal.
    Channels differ by a fixed tint so colour networks see colour.
    """
    channels, spatial = shape[0], tuple(shape[1:])
    if not spatial:
        return np.linspace(0.0, 1.0, channels)
    grids = np.meshgrid(*[np.linspace(0.0, 1.0, n) for n in spatial], indexing="ij")
    if len(spatial) == 1:
        (t,) = grids
        base = 0.35 * t + 0.4 * (t > 0.5) + 0.25 * (np.sin(2 * np.pi * 6 * t) > 0)
    else:
        y, x = grids[-2], grids[-1]
        depth = grids[0] if len(spatial) == 3 else 0.0
        gradient = 0.3 * (x + y) / 2
        cx, cy = 0.35 + 0.3 * depth, 0.4
        disc = 0.6 * (((x - cx) ** 2 + (y - cy) ** 2) < 0.2 ** 2)
        checker = 0.5 * ((np.floor(x * 16) + np.floor(y * 16)) % 2) * (x > 0.6) * (y > 0.6)
        bar = -0.25 * ((y > 0.75) & (y < 0.85) & (x < 0.55))
        base = gradient + disc + checker + bar + 0.25
    tints = [1.0 - 0.25 * ((c % 3) == 1) - 0.5 * ((c % 3) == 2) for c in range(channels)]
    image = np.stack([np.clip(base * tint + 0.1 * (c % 3 == 2), 0.0, 1.0) for c, tint in enumerate(tints)])
    return image.astype(np.float64)


# --------------------------------------------------------------------------- files

def expand_paths(pattern: str) -> list[Path]:
    """A file, a directory (its images, sorted), or a glob pattern (sorted)."""
    if not pattern.strip():
        raise InputError("the input is an empty path; give a file, a directory or a glob pattern")
    path = Path(pattern)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + (".npy",))
        if not files:
            raise InputError(f"the directory {pattern} holds no images")
        return files
    if path.exists():
        return [path]
    matches = sorted(Path(p) for p in glob.glob(pattern))
    if not matches:
        raise InputError(f"no such input: {pattern}{_size_hint(pattern)}")
    return matches


def _size_hint(pattern: str) -> str:
    """Where a missing input reads as a size (300x300, 3x300x300, 300): that --input takes files, and where a size
    goes instead."""
    sizes = [int(n) for n in re.split(r"[xX×,]", pattern.strip()) if n.isdigit()]
    if not sizes or len(sizes) != len(re.split(r"[xX×,]", pattern.strip())) or len(sizes) > 3:
        return ""
    height, width = (sizes[-2], sizes[-1]) if len(sizes) > 1 else (sizes[0], sizes[0])
    return (f" (no such file; -i/--input takes an image, a directory of images, a glob pattern or a .npy file; for"
            f" the input's size, pass --resize {height}x{width} to run, --input-size to analyze or rf)")


def _image_channels(channels: int) -> None:
    if channels not in _PIL_MODES:
        raise InputError(f"the spec takes {channels} input channels; an image gives 1 (grayscale), 3 (RGB)"
                         " or 4 (RGBA): use a .npy input instead")


def load_image(path: Path, channels: int, resize: tuple[int, int] | None) -> np.ndarray:
    """An image file as [C, H, W] floats in [0, 1], converted to ``channels`` (1, 3 or 4)."""
    from PIL import Image, ImageOps

    _image_channels(channels)
    with opened_image(path) as opened:
        image = ImageOps.exif_transpose(opened)   # photos stand the way the camera meant
        if image.mode == "F":                     # float images: values as they are, not cut to 8 bits
            plane = image.resize((resize[1], resize[0]), Image.Resampling.BILINEAR) if resize else image
            gray = np.asarray(plane, dtype=np.float64)
            return np.stack([gray] * min(channels, 3) + [np.ones_like(gray)] * (channels == 4))
        if image.mode in _WIDE_GRAY:
            # 16-bit grayscale (PNG, TIFF): PIL's convert() to 8 bits clips at 255 instead of scaling
            plane = image.convert("F")
            if resize is not None:
                plane = plane.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
            gray = np.clip(np.asarray(plane, dtype=np.float64) / 65535.0, 0.0, 1.0)
            planes = [gray] * min(channels, 3) + [np.ones_like(gray)] * (channels == 4)
            return np.stack(planes)
        image = image.convert(_PIL_MODES[channels])
        if resize is not None:
            image = image.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.float64) / 255.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def load_npy(path: Path, input_shape: Sequence[int]) -> np.ndarray:
    """A .npy of [C, *S] or [N, C, *S] as [N, C, *S] (its header checked first, `npy_batch_shape`)."""
    shape = npy_batch_shape(path, input_shape)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {str(exc)[:200]}") from None
    return array.reshape(shape).astype(np.float64)


def npy_batch_shape(path: Path, input_shape: Sequence[int]) -> tuple[int, ...]:
    """The batch [N, C, *S] the .npy file at ``path`` declares (its header alone), checked against the spec's
    input [C, ...]: real numbers, the spec's rank (with or without a batch axis) and channels."""
    header = npy_header(path)
    if not is_real(header.dtype):
        raise InputError(f"{path} holds {header.dtype} values, not real numbers")
    rank = len(input_shape)
    shape = (1, *header.shape) if len(header.shape) == rank else header.shape
    if len(shape) != rank + 1:
        raise InputError(f"{path} has shape {list(header.shape)}; the spec takes [C, ...] = {list(input_shape)}"
                         f" or a batch [N, C, ...]")
    if shape[1] != input_shape[0]:
        raise InputError(f"{path} has {shape[1]} channels (shape {list(header.shape)}); the spec takes"
                         f" {input_shape[0]}")
    return tuple(shape)


def load_inputs(pattern: str, input_shape: Sequence[int], resize: tuple[int, int] | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Everything ``pattern`` names, as one batch [N, C, *S] (a .npy may hold an empty batch: N = 0).
    ``on_progress(done, files)`` is called after each file."""
    batches = []
    paths = expand_paths(pattern)
    for done, path in enumerate(paths, 1):
        if path.suffix.lower() == ".npy":
            batches.append(load_npy(path, input_shape))
        else:
            if len(input_shape) != 3:
                raise InputError(f"{path} is an image, but the spec's input {list(input_shape)} is not [C, H, W]")
            batches.append(load_image(path, input_shape[0], resize)[None])
        if on_progress is not None:
            on_progress(done, len(paths))
    shapes = {tuple(b.shape[1:]) for b in batches}
    if len(shapes) > 1:
        listed = ", ".join("x".join(map(str, s)) for s in sorted(shapes))
        raise InputError(f"the inputs differ in size ({listed}); pass --resize HxW to give them one size")
    return np.concatenate(batches)


def normalize_batch(batch: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(x - mean) / std per channel; one value or one per channel."""
    channels = batch.shape[1]
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise InputError(f"--{name} needs 1 or {channels} values, got {len(values)}")
    if any(s == 0 for s in std):
        raise InputError("--std values must not be 0")
    shape = (1, -1) + (1,) * (batch.ndim - 2)
    return (batch - np.reshape(mean, shape)) / np.reshape(std, shape)


# --------------------------------------------------------------------------- what a source declares

@dataclass(frozen=True)
class DeclaredInput:
    """The batch an input source will give, known from its headers before any payload is read."""

    shape: tuple[int, ...]      # [N, C, *S], the batch as `prepare_inputs` will return it
    largest_file: int           # bytes decoding the largest file takes (0: none)

    @property
    def elements(self) -> int:
        return prod(self.shape)


def builtin_shape(input_shape: Sequence[int], resize: tuple[int, int] | None) -> tuple[int, ...]:
    """The built-in test image's shape: the spec's input, or [C, H, W] at ``resize``."""
    shape = tuple(input_shape)
    if resize is not None:
        if len(shape) != 3:
            raise InputError(f"--resize HxW needs a [C, H, W] input; the spec's is {list(shape)}")
        shape = (shape[0], *resize)
    return shape


def declare_inputs(source: str | os.PathLike | np.ndarray | None, input_shape: Sequence[int], *,
                   resize: tuple[int, int] | None = None, batch: int | None = None) -> DeclaredInput:
    """The batch `prepare_inputs` would make of ``source`` (same arguments), from the files' headers alone (.npy
    shapes, image sizes) and with the same refusals for what does not fit the spec, so that its size can be
    checked against the memory budget before anything large is read or drawn."""
    largest = 0
    if source is None:
        shape = (1, *builtin_shape(input_shape, resize))
    elif isinstance(source, np.ndarray):
        if resize is not None:
            raise InputError("--resize applies to images; an array input keeps its own size")
        if not is_real(source.dtype):
            raise InputError(f"the input array holds {source.dtype} values; it must hold real numbers")
        shape = (1, *source.shape) if source.ndim == len(input_shape) else tuple(source.shape)
        if len(shape) != len(input_shape) + 1 or shape[1] != input_shape[0]:
            raise InputError(f"the input array has shape {list(source.shape)}; the spec takes {list(input_shape)}"
                             " (or a batch [N, ...] of it)")
    else:
        pattern = os.fspath(source)
        paths = expand_paths(pattern)
        if resize is not None and all(p.suffix.lower() == ".npy" for p in paths):
            raise InputError("--resize applies to images; a .npy input keeps its own size")
        count, sizes = 0, set()
        for path in paths:
            if path.suffix.lower() == ".npy":
                found = npy_batch_shape(path, input_shape)
                largest = max(largest, prod(found) * 24)     # as stored, then as float64
            else:
                if len(input_shape) != 3:
                    raise InputError(f"{path} is an image, but the spec's input {list(input_shape)} is not [C, H, W]")
                _image_channels(input_shape[0])
                header = image_header(path)
                found = (1, input_shape[0], *(resize or (header.height, header.width)))
                largest = max(largest, header.decoded + 16 * prod(found))
            count += found[0]
            sizes.add(tuple(found[1:]))
        if len(sizes) > 1:
            listed = ", ".join("x".join(map(str, s)) for s in sorted(sizes))
            raise InputError(f"the inputs differ in size ({listed}); pass --resize HxW to give them one size")
        shape = (count, *sizes.pop())
    if batch is not None:
        if batch < 1:
            raise InputError(f"--batch must be at least 1, got {batch}")
        if shape[0] != 1:
            raise InputError(f"--batch repeats one input, but {shape[0]} were given")
        shape = (batch, *shape[1:])
    return DeclaredInput(tuple(shape), largest)


# --------------------------------------------------------------------------- one batch, ready to run

def prepare_inputs(source: str | os.PathLike | np.ndarray | None, input_shape: Sequence[int], *,
                   resize: tuple[int, int] | None = None, normalize: str | None = None,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                   batch: int | None = None,
                   on_progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, str]:
    """The batch ``convcalc run`` feeds the network, [N, C, *S] float64, and a description of where it came from.

    ``source``: None (the built-in test image at ``input_shape``, resized to ``resize``), a path, directory or glob
    (images and .npy files, see `load_inputs`), or an array [C, *S] or [N, C, *S]. Then ``normalize='imagenet'``
    (RGB), ``mean``/``std`` per channel, and ``batch`` (repeat one input N times). The batch must be finite: the run
    checks that no layer produces NaN/Inf. ``on_progress(done, files)``: as `load_inputs`."""
    if source is None:
        x = default_input(builtin_shape(input_shape, resize))[None]
        described = "built-in test image"
    elif isinstance(source, np.ndarray):
        if resize is not None:
            raise InputError("--resize applies to images; an array input keeps its own size")
        if not is_real(source.dtype):
            raise InputError(f"the input array holds {source.dtype} values; it must hold real numbers")
        x = np.asarray(source, dtype=np.float64)
        x = x[None] if x.ndim == len(input_shape) else x
        if x.ndim != len(input_shape) + 1 or x.shape[1] != input_shape[0]:
            raise InputError(f"the input array has shape {list(source.shape)}; the spec takes {list(input_shape)}"
                             " (or a batch [N, ...] of it)")
        described = f"array {list(source.shape)}"
    else:
        pattern = os.fspath(source)
        if resize is not None and all(p.suffix.lower() == ".npy" for p in expand_paths(pattern)):
            raise InputError("--resize applies to images; a .npy input keeps its own size")
        x = load_inputs(pattern, input_shape, resize, on_progress)
        described = pattern
    if normalize is not None:
        if normalize != "imagenet":
            raise InputError(f"--normalize '{normalize}' is not known; valid: imagenet (or give --mean/--std)")
        if x.shape[1] != 3:
            raise InputError(f"--normalize imagenet needs 3 input channels (RGB), the spec takes {x.shape[1]};"
                             " give --mean/--std instead")
        x = normalize_batch(x, IMAGENET_MEAN, IMAGENET_STD)
    if mean is not None or std is not None:
        x = normalize_batch(x, mean or [0.0], std or [1.0])
    if batch is not None:
        if batch < 1:
            raise InputError(f"--batch must be at least 1, got {batch}")
        if x.shape[0] != 1:
            raise InputError(f"--batch repeats one input, but {x.shape[0]} were given")
        x = np.repeat(x, batch, axis=0)
    if not np.isfinite(x).all():
        raise InputError(f"the input holds {np.size(x) - np.count_nonzero(np.isfinite(x)):,} NaN/Inf values;"
                         " the run checks that no layer produces them, so it needs a finite input")
    return x, described


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``array`` saved as .npy at ``path`` (a missing .npy suffix added, as np.save does); the path written."""
    path = Path(path)
    saved = path if path.suffix == ".npy" else path.with_name(path.name + ".npy")
    if saved.exists() and not saved.is_file():        # a FIFO would block the write, a directory refuse it
        raise InputError(f"cannot write {saved}: it exists and is not a regular file")
    try:
        np.save(saved, array)
    except OSError as exc:
        raise InputError(f"cannot write {saved}: {exc.strerror or exc}") from None
    return saved
