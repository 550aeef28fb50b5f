"""What an input or weights file declares, read from its header before any of its payload.

A .npy file's header gives its shape and dtype (`npy_header`; a header promising more data than the file holds is
refused, so a 192-byte file declaring [3, 100000, 100000] never reaches ``np.load``); a .npz archive's directory
gives its members and their uncompressed sizes, and each member's own .npy header its shape (`npz_headers`: only
the first bytes of each member are inflated); an image's header gives its size and mode (`image_header`: PIL opens
lazily; its decompression-bomb warning is silenced and its error, like every decoder's complaint, becomes one line).
The callers compare these with the spec and the memory budget before they read anything else.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Iterator

import numpy as np

from ..algebra.shapes import prod
from ..errors import ConvcalcError
from .memory import format_bytes

MAX_NPZ_MEMBERS = 100_000      # arrays in one weights archive (ResNet-152's state dict has ~1,000)


class InputError(ConvcalcError):
    """An input file or option that cannot become the network's input."""


@dataclass(frozen=True)
class ArrayHeader:
    """What a .npy file (or .npz member) declares: its shape, its dtype and the bytes of its data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int                 # where the data starts

    @property
    def nbytes(self) -> int:
        return prod(self.shape) * self.dtype.itemsize

    def text(self) -> str:
        return f"{self.dtype} {list(self.shape)} ({format_bytes(self.nbytes)})"


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def regular_file(path: str | os.PathLike, error: type[ConvcalcError] = InputError, what: str = "file") -> None:
    """Refuse ``path`` unless it names a regular file (a FIFO would block the read, a device never end it)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"no such {what}: {path}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "the path cannot be used"
        raise error(f"cannot read {what} {path}: {reason[0].lower()}{reason[1:]}") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise error(f"{path} is {kind}, not a regular {what}")


def read_array_header(stream: IO[bytes], name: str, error: type[ConvcalcError] = InputError) -> ArrayHeader:
    """The header of the .npy data at the start of ``stream`` (nothing after it is read)."""
    try:
        version = np.lib.format.read_magic(stream)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(stream)
        offset = stream.tell()
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, zlib.error, zipfile.BadZipFile) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else "its header cannot be read"
        raise error(f"{name} is not a valid .npy array ({detail})") from None
    if any(not isinstance(size, int) or size < 0 for size in shape):
        raise error(f"{name} declares the shape {list(shape)}, which is not a list of sizes")
    if dtype.hasobject:
        raise error(f"{name} holds Python objects (pickles), which are never loaded (allow_pickle=False); save"
                    " plain arrays")
    return ArrayHeader(tuple(int(s) for s in shape), np.dtype(dtype), offset)


def npy_header(path: str | os.PathLike, error: type[ConvcalcError] = InputError) -> ArrayHeader:
    """The header of the .npy file at ``path``, after checking that the file holds the data it declares."""
    regular_file(path, error)
    try:
        with open(path, "rb") as handle:
            header = read_array_header(handle, str(path), error)
            size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        raise error(f"no such file: {path}") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    if size - header.offset < header.nbytes:
        raise error(f"{path} is truncated: its header declares {header.text()}, but only"
                    f" {format_bytes(max(size - header.offset, 0))} of data follow")
    return header


def npz_headers(path: str | os.PathLike, error: type[ConvcalcError] = InputError,
                what: str = "file") -> dict[str, ArrayHeader]:
    """Every array of the .npz archive at ``path`` by key, from the archive's directory and each member's .npy
    header (the members are not inflated past their headers): a member that is not an array, or whose header
    declares more data than its uncompressed size, is refused."""
    regular_file(path, error, what)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
        if magic.startswith(b"\x93NUMPY"):
            raise error(f"{path} holds a single array, not a state dict: save one with np.savez")
        if not magic.startswith(b"PK"):
            # np.load would take it for a pickle and suggest allow_pickle: the wrong advice for a wrong file
            raise error(f"{path} is not an .npz archive (save a state dict with np.savez)")
        where = f"cannot read {what} {path}: member"
        found: dict[str, ArrayHeader] = {}
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise error(f"{path} holds {len(members):,} members, more than the {MAX_NPZ_MEMBERS:,} a state"
                            " dict may have")
            for info in members:
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    raise error(f"{where} '{info.filename[:100]}' is not an array (.npy); save a state dict with"
                                " np.savez")
                with archive.open(info) as member:
                    header = read_array_header(member, f"{where} '{info.filename[:-4][:100]}'", error)
                if info.file_size - header.offset < header.nbytes:
                    raise error(f"{where} '{info.filename[:-4][:100]}' declares {header.text()}, but holds only"
                                f" {format_bytes(max(info.file_size - header.offset, 0))} of data")
                found[info.filename[:-4]] = header
        return found
    except FileNotFoundError:
        raise error(f"no such file: {path}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError) as exc:
        detail = getattr(exc, "strerror", None) or (str(exc).splitlines() or ["unreadable"])[0][:200]
        raise error(f"cannot read {what} {path}: {detail}") from None


@contextlib.contextmanager
def opened_image(path: str | os.PathLike, error: type[ConvcalcError] = InputError) -> Iterator[object]:
    """``PIL.Image.open(path)``, lazily (pixels are decoded on first use), with PIL's errors as one line: its
    decompression-bomb limit, decoders' complaints about a malformed file (a PGM whose maxval is 0, say)."""
    from PIL import Image, UnidentifiedImageError

    regular_file(path, error)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                yield image
    except Image.DecompressionBombError as exc:       # PIL's own words: its limit and the image's size
        raise error(f"cannot read image {path}: {str(exc)[:300]}") from None
    except UnidentifiedImageError:
        raise error(f"cannot read image {path}: not an image file PIL knows") from None
    except FileNotFoundError:
        raise error(f"no such file: {path}") from None
    except ConvcalcError:
        raise
    except OSError as exc:
        raise error(f"cannot read image {path}: {exc.strerror or str(exc)[:200] or 'unreadable'}") from None
    except (ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError, struct.error) as exc:
        raise error(f"cannot read image {path}: the file is malformed ({str(exc)[:200] or type(exc).__name__})"
                    ) from None


@dataclass(frozen=True)
class ImageHeader:
    """An image's size as it will be read (after its EXIF orientation), its band count and the bytes decoding it
    takes (PIL's decoded planes)."""

    height: int
    width: int
    bands: int
    decoded: int


def image_header(path: str | os.PathLike, error: type[ConvcalcError] = InputError) -> ImageHeader:
    """The size of the image at ``path`` from its header (the pixels are not decoded)."""
    with opened_image(path, error) as image:
        width, height = image.size
        bands = len(image.getbands())
        orientation = 1
        # a PNG's EXIF may follow its pixels, and PIL decodes them all to look: read only one given before them
        if image.format != "PNG" or "exif" in image.info:
            try:
                orientation = image.getexif().get(0x0112, 1)
            except Exception:    # noqa: BLE001  (an unreadable EXIF block: the image is read as it is stored)
                orientation = 1
    if orientation in (5, 6, 7, 8):      # rotated by a quarter turn: `ImageOps.exif_transpose` swaps the axes
        width, height = height, width
    return ImageHeader(height, width, bands, width * height * max(bands, 1) * 4)


__all__ = ["ArrayHeader", "ImageHeader", "InputError", "MAX_NPZ_MEMBERS", "image_header", "npy_header",
           "npz_headers", "opened_image", "read_array_header", "regular_file"]
