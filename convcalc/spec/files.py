"""Reading a spec's text: regular files only, a size checked before reading, UTF-8 decoded, every failure one line.

A path is looked at (``stat``) before it is opened, so a FIFO, a device such as ``/dev/zero``, a directory, a symbolic
link loop, a NUL byte or an over-long name is refused without blocking or reading; a regular file is then read
with a bound one byte past the budget (a file that grows meanwhile is refused too). Standard input is read the
same way (`read_spec_stream`). Budgets: `convcalc.spec.limits`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import ConvcalcError, Location, SpecError
from . import limits

MAX_SHOWN_PATH = 1_024     # longer paths (a 5,000-character one) are shortened in their middle


def shown_path(path: str | os.PathLike) -> str:
    """The path as a message shows it: control characters escaped, a very long one shortened in its middle."""
    text = os.fsdecode(path) if not isinstance(path, str) else path
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:4 * MAX_SHOWN_PATH]) \
        if not text.isprintable() else text
    if len(text) > MAX_SHOWN_PATH:
        keep = MAX_SHOWN_PATH // 2 - 2
        text = f"{text[:keep]}...{text[-keep:]} ({len(os.fspath(path)):,} characters)"
    return text


def _a(what: str) -> str:
    return f"an {what}" if what[:1] in "aeiou" else f"a {what}"


def size_text(count: int) -> str:
    """A number of bytes as a message gives it: '2,040 bytes', '10.0 MiB'."""
    return f"{count / 2 ** 20:.1f} MiB" if count >= 2 ** 20 else f"{count:,} bytes"


def path_problem(exc: BaseException) -> str:
    """Why a path could not be used, in words (an OSError's reason, a NUL byte, a symbolic link loop)."""
    if isinstance(exc, ValueError):
        return "the path contains a NUL character"
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return "symbolic links loop"
    if getattr(exc, "errno", None) == errno.ENAMETOOLONG:
        return "the path is too long"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return "it cannot be read"


def read_text_file(path: str | os.PathLike, *, what: str = "spec file", limit: int | None = None,
                   loc: Location | None = None, error: type[ConvcalcError] = ConvcalcError,
                   limit_note: str = "the limit for one file") -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes (default: ``limits.MAX_SPEC_BYTES``).

    Every failure is one ``error`` (located at ``loc``, e.g. the include that names the file): missing, a directory,
    not a regular file, unreadable, too large, not UTF-8 (located at the first bad byte).
    """
    limit = limits.MAX_SPEC_BYTES if limit is None else limit
    name = shown_path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"no such {what}: {name}", loc) from None
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {what} {name}: {path_problem(exc)}", loc) from None
    _check_kind(info, name, what, limit, loc, error, limit_note)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {what} {name}: {path_problem(exc)}", loc) from None
    try:
        _check_kind(os.fstat(descriptor), name, what, limit, loc, error, limit_note)   # the one looked at
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(descriptor, min(limit + 1 - total, 2 ** 20))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise error(f"cannot read {what} {name}: {path_problem(exc)}", loc) from None
    finally:
        os.close(descriptor)
    raw = b"".join(chunks)
    if len(raw) > limit:
        raise error(f"{what} {name} is larger than {size_text(limit)} ({limit_note})", loc)
    return decode_text(raw, str(path))


def _check_kind(info: os.stat_result, name: str, what: str, limit: int, loc: Location | None,
                error: type[ConvcalcError], limit_note: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{name} is a directory, not {_a(what)}", loc)
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode) or \
            stat.S_ISBLK(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file"
        hint = "; - reads standard input" if what == "spec file" and stat.S_ISFIFO(info.st_mode) else ""
        raise error(f"{name} is {kind}, not {_a(what)} (only regular files are read{hint})", loc)
    if info.st_size > limit:
        raise error(f"{what} {name} is {size_text(info.st_size)}, larger than {size_text(limit)} ({limit_note})", loc)


def decode_text(raw: bytes, filename: str) -> str:
    """``raw`` as UTF-8 text; bytes that are not UTF-8 are a SpecError at their line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError("the file is not UTF-8 text", Location(shown_path(filename), line, column)) from None


def read_spec_stream(stream: BinaryIO, name: str = "<stdin>", *, limit: int | None = None) -> str:
    """A spec's text from a binary stream (standard input: ``sys.stdin.buffer``): at most ``limit`` bytes (default:
    ``limits.MAX_SPEC_BYTES``), UTF-8. A text stream is accepted too (its characters count as bytes)."""
    limit = limits.MAX_SPEC_BYTES if limit is None else limit
    if stream is None or not hasattr(stream, "read"):
        raise ConvcalcError(f"cannot read {name}: it is closed")
    try:
        data = stream.read(limit + 1)
    except (OSError, ValueError) as exc:
        raise ConvcalcError(f"cannot read {name}: {path_problem(exc)}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{name} is not UTF-8 text (byte {exc.start + 1})") from None
    if len(data) > limit:
        raise ConvcalcError(f"{name} holds more than {size_text(limit)} (the limit for one spec)")
    if isinstance(data, str):
        return data
    return decode_text(bytes(data), name)


def resolved(path: Path, loc: Location | None = None, what: str = "spec file") -> Path:
    """``path`` made absolute with its symbolic links followed; a loop, a NUL byte or an unusable name is one
    located ConvcalcError."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConvcalcError(f"cannot read {what} {shown_path(path)}: {path_problem(exc)}", loc) from None


__all__ = ["decode_text", "path_problem", "read_spec_stream", "read_text_file", "resolved", "shown_path",
           "size_text"]
