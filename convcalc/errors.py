"""The one exception family of convcalc.

The library raises these; only the CLI turns them into a message and an exit code.
Every error knows where in a spec it comes from (when it does come from a spec),
so the message reads ``file:line:col: layer 'c3' (Conv2d): what is wrong``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class Location:
    """A place in a spec file: 1-based line and column, as editors count."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ConvcalcError(Exception):
    """Base of every error convcalc raises on purpose.

    ``str()`` is the whole message on one line. ``excerpt``: lines the CLI prints after it (a YAML syntax error's
    source line and a caret under the column), never needed to understand the message."""

    excerpt: tuple[str, ...] = ()

    def __init__(self, message: str, location: Location | None = None, notes: Iterable[str] = ()):
        super().__init__(message)
        self.message = message
        self.location = location
        self.notes = tuple(notes)

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        for note in self.notes:
            text += f" ({note})"
        return text


class SpecError(ConvcalcError):
    """The spec file is malformed: YAML syntax, unknown keys, wrong value types."""


class GraphError(ConvcalcError):
    """The layers do not form a valid graph: unknown or duplicate names, bad references."""


class ShapeError(ConvcalcError):
    """A layer cannot accept the shape (or arguments) it is given, exactly where PyTorch would refuse too."""


class LayerArgError(Exception):
    """Raised inside a layer unit, which does not know its own name or location.

    The graph builder or the analyzer catches it and re-raises it as a `SpecError` or `ShapeError`
    that names the layer and points at ``arg`` (the offending argument) when it is given.
    """

    def __init__(self, message: str, arg: str | None = None):
        super().__init__(message)
        self.message = message
        self.arg = arg


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest valid choice (if any), then every valid choice."""
    choices = sorted(set(choices), key=str.lower)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    hint = f"did you mean '{lowered[close[0]]}'? " if close else ""
    return f"{hint}valid: {', '.join(choices)}"


def nearest_of_many(word: str, choices: Iterable[str], listing: str) -> str:
    """`did_you_mean` for a long list (the layer types): the closest choices instead of all of them, and where the
    whole list is (``listing``, e.g. "`convcalc layers` lists all 86")."""
    choices = sorted(set(choices), key=str.lower)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{lowered[close[0]]}'? {listing}"
    near = difflib.get_close_matches(word.lower(), list(lowered), n=5, cutoff=0.5)
    if near:
        return f"closest: {', '.join(lowered[n] for n in near)}; {listing}"
    return listing


def brief(value: Any, limit: int = 80) -> str:
    """A value as a message shows it, in YAML's words (``null``, ``true``, ``.inf``, ``[1, 2]``, ``{'a': 1}``, strings
    quoted), cut after about ``limit`` characters: never the whole of a huge or deeply nested value."""
    parts: list[str] = []
    length = 0

    def add(text: str) -> bool:
        nonlocal length
        parts.append(text)
        length += len(text)
        return length <= limit

    def show(item: Any, depth: int) -> bool:
        if item is None:
            return add("null")
        if isinstance(item, bool):
            return add("true" if item else "false")
        if isinstance(item, float) and not math.isfinite(item):
            return add(".nan" if item != item else ".inf" if item > 0 else "-.inf")
        if isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 4 * limit:
            return add(f"{'-' if item < 0 else ''}an integer of about {int(item.bit_length() * 0.30103):,} digits")
        if isinstance(item, (int, float)):
            return add(repr(item))
        if isinstance(item, str):
            return add(repr(item[:limit + 1]))
        if isinstance(item, (list, tuple, dict)):
            if depth > 8 and item:
                return add("[...]" if not isinstance(item, dict) else "{...}")
            pairs = list(item.items())[:limit] if isinstance(item, dict) else list(item[:limit])
            if not add("{" if isinstance(item, dict) else "["):
                return False
            for index, pair in enumerate(pairs):
                if index and not add(", "):
                    return False
                if isinstance(item, dict):
                    if not (show(pair[0], depth + 1) and add(": ") and show(pair[1], depth + 1)):
                        return False
                elif not show(pair, depth + 1):
                    return False
            return add("}" if isinstance(item, dict) else "]")
        return add(f"<{type(item).__name__}>")

    if not show(value, 0):
        return "".join(parts)[:limit] + "..."
    return "".join(parts)
