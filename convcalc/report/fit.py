"""Tables that fit the terminal, and never crop a number.

Every table convcalc prints is fitted here to a width (the terminal's, ``COLUMNS`` or ``--width``): a column too
wide for it is left out *whole*, least important first (each table names its order), and only then are long names
shortened in the middle ('layer4.…downsample.1'). A number, a shape or a mark is never cut or wrapped; prose
columns wrap between words (a long word without a number may be folded), so a number in them stays whole too. A
line under the table says what was left out and how to see it (``LEFT_OUT``). With no width to fit (``--wide``;
piped output with no ``COLUMNS``) nothing is left out: the table keeps its full width and the terminal wraps or
scrolls it.

A table is columns of plain strings or `rich.text.Text` (their styles kept; never Rich markup, so a user's
``[bold]`` stays text), fitted by `fit` and drawn by `Fitted.table`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Literal, Sequence, Union

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

Cell = Union[str, Text]

# the line under a table that had to leave something out (pinned by tests/test_terminal_width.py)
LEFT_OUT = "left out to fit {width} columns: {what} (--wide or --format json shows them)"
SHORTENED = "the middle of long names"
NAME_MIN = 8         # a name is never shortened below this many characters
TEXT_MIN = 12        # prose wraps no narrower than this (or its longest word holding a number, if longer)


@dataclass(frozen=True)
class Column:
    """One column. ``kind``: 'whole' (numbers, shapes, marks: never cut, never wrapped), 'name' (one line,
    shortened in the middle as a last resort) or 'text' (prose: wraps between words; a word longer than the column
    is folded, unless it holds a number)."""

    header: str
    justify: Literal["left", "right"] = "left"
    kind: Literal["whole", "name", "text"] = "whole"


def middle_cut(text: str, room: int) -> str:
    """``text`` in at most ``room`` characters, its middle replaced by '…' (both ends of a layer name tell most)."""
    if cell_len(text) <= room:
        return text
    head = (room - 1) // 2
    return text[:head] + "…" + text[len(text) - (room - 1 - head):]


def hanging(text: str, width: int | None, indent: int) -> str:
    """``text``, whose first ``indent`` columns are a label or blanks, wrapped between words into ``width`` columns
    with the lines after the first indented as far (None, or too narrow for it: unchanged, Rich wraps it)."""
    if width is None or cell_len(text) <= width or width - indent < TEXT_MIN:
        return text
    lines = textwrap.wrap(text[indent:], width - indent, break_long_words=False, break_on_hyphens=False)
    return text[:indent] + ("\n" + " " * indent).join(lines)


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _widest(texts: Sequence[str]) -> int:
    return max((cell_len(line) for text in texts for line in text.split("\n")), default=0)


_NUMBER = re.compile(r"(?<![^\W\d])\d")     # a digit that starts a number: not inside a name ('Conv2d', 'pool5')


def _longest_number(texts: Sequence[str]) -> int:
    """The longest word holding a number (prose may fold other words, never these)."""
    return max((cell_len(word) for text in texts for word in text.split() if _NUMBER.search(word)), default=0)


@dataclass
class Fitted:
    """A table fitted to ``width`` (None: not fitted, full width): the columns kept, their cells and content widths,
    what was left out."""

    columns: list[Column]
    rows: list[list[Cell]]
    widths: list[int]
    width: int | None
    left_out: list[str] = field(default_factory=list)
    shortened: bool = False

    @property
    def total(self) -> int:
        """The table's width with its borders and padding (Rich's default box: 1 + (width + 3) per column)."""
        return 1 + sum(w + 3 for w in self.widths)

    def note(self, indent: str = "") -> str:
        """The line saying what was left out ('' when nothing was)."""
        what = [*self.left_out, *([SHORTENED] if self.shortened else [])]
        return indent + LEFT_OUT.format(width=self.width, what=", ".join(what)) if what else ""

    def table(self, title: str | None = None, *, caption: str | None = None, header_style: str = "bold",
              row_styles: Sequence[str | None] | None = None) -> FittedTable:
        """The Rich table of the kept columns, each exactly as wide as fitted; ``title`` and ``caption`` are text
        (not markup); the caption is followed by the left-out line."""
        note = self.note()
        caption_text = "\n".join(t for t in (caption, note) if t) or None
        table = FittedTable(title=escape(title) if title else None, title_justify="left", header_style=header_style,
                      caption=escape(caption_text) if caption_text else None, caption_justify="left")
        for column, width in zip(self.columns, self.widths):
            table.add_column(column.header, justify=column.justify, width=width, no_wrap=column.kind != "text",
                             overflow="fold" if column.kind == "text" else "ellipsis")
        for index, cells in enumerate(self.rows):
            style = row_styles[index] if row_styles else None
            table.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells), style=style)
        table.full_width = self.total
        return table


class FittedTable(Table):
    """A Rich table drawn at least ``full_width`` wide, even past the console's width (``--wide``: the terminal
    wraps it; print it with ``crop=False``)."""

    full_width = 0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from super().__rich_console__(console, options.update_width(max(options.max_width, self.full_width)))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return super().__rich_measure__(console, options.update_width(max(options.max_width, self.full_width)))


def fit(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int | None,
        drop: Sequence[str] = (), *, prose: int | None = None) -> Fitted:
    """Fit a table into ``width`` columns: leave out the columns named in ``drop``, in that order, until it fits,
    then shorten 'name' cells in the middle; 'text' columns wrap (never narrower than a word holding a number).
    ``width`` None (``--wide``): nothing is left out or shortened, and prose columns wrap to ``prose`` columns where
    they can."""
    columns, rows = list(columns), [list(r) for r in rows]
    plain = [[_plain(c) for c in r] for r in rows]
    widest = [_widest([column.header, *(r[i] for r in plain)]) for i, column in enumerate(columns)]
    least = []
    for i, column in enumerate(columns):
        if column.kind == "text":
            least.append(min(widest[i], max(TEXT_MIN, _longest_number([column.header, *(r[i] for r in plain)]))))
        else:
            least.append(widest[i])
    kept = list(range(len(columns)))

    def need(indices: Sequence[int]) -> int:
        return 1 + sum(least[i] + 3 for i in indices)

    target = width if width is not None else prose
    left_out = []
    if width is not None:
        for header in drop:
            if need(kept) <= width:
                break
            index = next((i for i in kept if columns[i].header == header), None)
            if index is not None:
                kept.remove(index)
                left_out.append(header)
    shortened = False
    if width is not None and need(kept) > width:           # names shortened in the middle, never below NAME_MIN
        for i in (i for i in kept if columns[i].kind == "name"):
            excess = need(kept) - width
            room = max(min(NAME_MIN, widest[i]), least[i] - excess)
            if room < least[i]:
                shortened = True
                for r_plain, r in zip(plain, rows):
                    if cell_len(r_plain[i]) > room:
                        r[i] = middle_cut(r_plain[i], room)
                least[i] = room
    widths = [least[i] for i in kept]
    if target is not None:                                 # prose columns take the room that is left, up to full
        slack = target - need(kept)
        for position, i in enumerate(kept):
            if columns[i].kind == "text" and slack > 0:
                extra = min(slack, widest[i] - widths[position])
                widths[position] += extra
                slack -= extra
    else:
        widths = [widest[i] if columns[i].kind == "text" else least[i] for i in kept]
    return Fitted([columns[i] for i in kept], [[r[i] for i in kept] for r in rows], widths, width, left_out,
                  shortened)


__all__ = ["Cell", "Column", "FittedTable", "Fitted", "LEFT_OUT", "fit", "hanging", "middle_cut"]
