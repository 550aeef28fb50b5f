"""What the commands share that needs no Typer: the consoles (Rich, imported when one is made), and a spec given on
the command line read into a graph (``SPEC`` with ``-``, ``--set``, ``--input-size``). `common` re-exports every name;
`direct` runs the commonest ``analyze`` command lines with these alone."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..errors import ConvcalcError
from ..spec.graph import Graph
from ..spec.load import parse_shape_text, read_spec
from ..spec.marked_yaml import measure
from ..spec.source import graph_of

if TYPE_CHECKING:
    from rich.console import Console

_BLANKS_AT_END = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$")     # (before the styles a line ends with, on a terminal)


class _Stripped:
    """The standard stream (looked up when written to, as Rich does) without blanks at the end of a line: Rich pads
    titles and lines to the console's width, and no line convcalc prints ends in blanks."""

    def __init__(self, which: str) -> None:
        self._which = which
        self._blanks = ""           # blanks written last: dropped if a line ends there, written if text follows

    @property
    def _stream(self):
        return getattr(sys, self._which)

    def write(self, text: str) -> int:
        lines = (self._blanks + text).split("\n")
        last = lines[-1]
        kept = last.rstrip(" ")
        self._blanks = last[len(kept):]
        self._stream.write("\n".join([_BLANKS_AT_END.sub(r"\1", line) if line.endswith((" ", "m")) else line
                                       for line in lines[:-1]] + [kept]))     # (only such lines can match)
        return len(text)

    def __getattr__(self, name):    # isatty, fileno, flush, encoding: the stream's
        return getattr(self._stream, name)


def _console(stderr_: bool = False, **options) -> "Console":
    """A Rich console on standard output (or error) whose lines end without blanks (`_Stripped`)."""
    from rich.console import Console

    return Console(file=_Stripped("stderr" if stderr_ else "stdout"), **options)


def stderr() -> "Console":
    return _console(True, highlight=False, soft_wrap=True, emoji=False)


def stdout(width: int | None = None) -> "Console":
    """The console to print prose on (``width``: when piped; tables print on `table_console`'s)."""
    console = _console(highlight=False, soft_wrap=False, emoji=False)   # a spec's ':100:' stays text
    if not console.is_terminal:
        console = _console(highlight=False, soft_wrap=False, width=width or 200, emoji=False)
    return console


MIN_WIDTH = 20
PIPED_WIDTH = 200      # piped with no COLUMNS (a file, a program): tables keep every column, prose wraps here


def table_console(width: int | None = None, wide: bool = False) -> tuple["Console", int | None]:
    """The console to print tables on, and the width they must fit (None: keep every column, `report.fit`).

    The width is ``--width``, else the terminal's (Rich reads COLUMNS there too), else COLUMNS when piped; piped
    without COLUMNS there is no width to fit, so tables keep every column and prose wraps at PIPED_WIDTH. ``--wide``
    keeps every column whatever the width. Print with ``crop=False``: a line wider than the width is wrapped or
    scrolled by the terminal, never cut."""
    console = _console(highlight=False, soft_wrap=False, emoji=False)   # a spec's ':100:' stays text
    chosen = width
    if chosen is None and console.is_terminal:
        chosen = console.width
    if chosen is None:
        columns = os.environ.get("COLUMNS", "").strip()
        chosen = int(columns) if columns.isdigit() and int(columns) >= MIN_WIDTH else None
        wide = wide or chosen is None
    console = _console(highlight=False, soft_wrap=False, emoji=False, width=chosen or PIPED_WIDTH)
    return console, None if wide else chosen


def overrides(pairs: list[str]) -> dict:
    """``--set NAME=VALUE`` pairs as a dict, each value read as YAML."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConvcalcError(f"--set '{pair}' must look like NAME=VALUE")
        try:
            measure(value, f"--set {key.strip()}")    # nesting and aliases within the spec's YAML budgets
            result[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except (yaml.YAMLError, ValueError):
            raise ConvcalcError(f"--set {key.strip()}: the value {value!r} is not valid YAML") from None
    return result


def load_graph(spec: Path, set_: list[str], allow_include_outside: bool) -> Graph:
    """The spec file (``-``: standard input) expanded into a graph; an ONNX model (``.onnx``) imported in memory."""
    if is_onnx(spec):
        if set_:
            raise ConvcalcError("--set overrides a spec's top-level args; an ONNX model has none (convcalc import"
                                " it to a spec first)")
        return imported_onnx(spec).graph()
    source = read_spec(getattr(sys.stdin, "buffer", sys.stdin), "<stdin>",
                       allow_include_outside=allow_include_outside) if str(spec) == "-" else spec
    return graph_of(source, overrides(set_), allow_include_outside)


def is_onnx(path: str | os.PathLike) -> bool:
    """Whether a command's SPEC is an ONNX model (by its suffix), which the commands import in memory."""
    return str(path).lower().endswith(".onnx")


_IMPORTED: dict[tuple, object] = {}      # the model a command imported (run imports once for graph and weights)


def imported_onnx(path: str | os.PathLike):
    """The ONNX model at ``path`` imported (`importers.onnx_import.import_onnx`), once per command."""
    from ..importers.onnx_import import import_onnx

    try:
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return import_onnx(path)            # it says what is wrong with the path
    if key not in _IMPORTED:
        _IMPORTED.clear()
        _IMPORTED[key] = import_onnx(path)
    return _IMPORTED[key]


def missing_channels(shape: tuple[int, ...], spec_shape: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """A size one axis short of the spec's: ``CxS`` on a 2-D spec of C channels is C x S x S (a square), else the
    spec's channels go first (``300x300`` -> 3x300x300)."""
    channels = spec_shape[0]
    if len(spec_shape) == 3 and len(shape) == 2 and shape[0] == channels != shape[1]:
        return (channels, shape[1], shape[1])
    return (channels, *shape)


def shape_option(text: str | None, graph: Graph | None = None,
                 option: str = "--input-size") -> tuple[int, ...] | None:
    """``--input-size CxHxW``; with the ``graph``, one that lacks the spec's channels (``300x300`` for a
    ``[3, 32, 32]`` input) is the option's error, not the first layer's."""
    if text is None:
        return None
    shape = parse_shape_text(text)
    if graph is not None and len(shape) != len(graph.input_shape):
        spec_shape = "x".join(map(str, graph.input_shape))
        hint = (f"; did you mean {option} {'x'.join(map(str, missing_channels(shape, graph.input_shape)))}?"
                if len(shape) == len(graph.input_shape) - 1 else "")
        raise ConvcalcError(f"{option} {text} has {len(shape)} {'axis' if len(shape) == 1 else 'axes'}, but the"
                            f" spec's input {spec_shape} has {len(graph.input_shape)} (channels first, no batch)"
                            f"{hint}")
    return shape


__all__ = ["MIN_WIDTH", "PIPED_WIDTH", "imported_onnx", "is_onnx", "load_graph", "missing_channels", "overrides",
           "shape_option", "stderr", "stdout", "table_console"]
