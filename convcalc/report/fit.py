"""Tables that fit the terminal, and never crop a number.

Every table convcalc prints is fitted here to a width (the terminal's, ``COLUMNS`` or ``--width``): a column too
wide for it is left out *whole*, least important first (each table names its order, and may shorten names at a
step of it), and only then are long names shortened: a tree's indentation first, then in the middle
('laye…downsample.1'), names that differ kept different. A number, a shape or a mark is never cut or wrapped; prose
columns wrap between words (a long word without a number may be folded), so a number in them stays whole too. A
line under the table says what was left out and how to see it (``LEFT_OUT``). With no width to fit (``--wide``;
piped output with no ``COLUMNS``) nothing is left out: the table keeps its full width and the terminal wraps or
scrolls it.

A table is columns of plain strings or `rich.text.Text` (their styles kept; never Rich markup, so a user's
``[bold]`` stays text), fitted by `fit` and drawn by `Fitted.table`.
"""

from __future__ import annotations

import os
from collections import Counter
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


def cell_width(text: str) -> int:
    """`rich.cells.cell_len` (the columns ``text`` takes), without its cached lookup for printable ASCII, where it
    is the length: a 10,000-layer table measures 300,000 cells."""
    return len(text) if text.isascii() and text.isprintable() else cell_len(text)


# the line under a table that had to leave something out (pinned by tests/test_terminal_width.py)
LEFT_OUT = "left out to fit {width} columns: {what} (--wide or --format json shows them)"
SHORTENED = "the middle of long names"
NAMES = "<shorten names>"  # in a `fit`'s drop order: shorten names (no narrower than NAME_KEEP) before going on
NAME_KEEP = 16       # ... a name shortened there keeps this many characters
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
    """``text`` in at most ``room`` characters, its middle replaced by '…': the tail kept in whole segments where
    they fit ('features.…denselayer14.conv1'), both ends of a layer name telling most."""
    if cell_width(text) <= room:
        return text
    return _cut(text, room, _head(text, room))


_SEPARATORS = re.compile(r"[._/:\-]")


def _head(text: str, room: int) -> int:
    """How many leading characters `middle_cut` keeps: the longest tail of whole segments that leaves a few (up to 4,
    a quarter of the room) and is a third of it at least, else half of the room."""
    least = max(1, min(4, room // 4))
    for match in _SEPARATORS.finditer(text):
        if room // 3 <= len(text) - match.end() <= room - 1 - least:
            return room - 1 - (len(text) - match.end())
    return (room - 1) // 2


def _cut(text: str, room: int, head: int) -> str:
    return text if cell_width(text) <= room else text[:head] + "…" + text[len(text) - (room - 1 - head):]


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def shorten_names(names: Sequence[str], room: int) -> list[str]:
    """``names`` (each maybe indented with blanks, a tree's depth) in at most ``room`` characters: the indentation
    is halved, then dropped, before any name is cut; then each long name is cut in the middle (`middle_cut`), and
    where two different names would read the same ('lay…0.conv1' for layer1.0.conv1 and layer4.0.conv1) the cut
    moves until they differ ('l…1.0.conv1', 'l…4.0.conv1'), whenever a single '…' can tell them apart."""
    if all(cell_width(n) <= room for n in names):
        return list(names)
    indents = [_indent(n) for n in names]
    bodies = [n[i:] for n, i in zip(names, indents)]
    for indent in ([i // 2 for i in indents], [0] * len(names)):
        shown = [" " * i + body for i, body in zip(indent, bodies)]
        if all(cell_width(n) <= room for n in shown):
            return shown
    return unique_cuts(bodies, room)


def unique_cuts(names: Sequence[str], room: int) -> list[str]:
    """Each name in at most ``room`` characters (`middle_cut`), names that differ kept different where the cut can
    be moved to show where they differ (the same cut for every name of a clash, nearest the tail; where no single
    cut tells them all apart, the one that tells most)."""
    shown = [middle_cut(n, room) for n in names]
    for _ in range(8):
        owners: dict[str, set[str]] = {}
        for name, short in zip(names, shown):
            owners.setdefault(short, set()).add(name)
        clashes = {short for short, full in owners.items() if len(full) > 1}
        if not clashes:
            break
        moved = False
        for short in clashes:
            group = sorted(owners[short])
            taken = {s for s in owners if s != short}
            best, best_score = None, 1
            for head in [*range(1, room - 1), 0]:
                cuts = [_cut(n, room, head) for n in group]
                score = len(set(cuts) - taken)
                if score > best_score:
                    best, best_score = cuts, score
                if score == len(group):
                    break
            if best is not None:
                chosen = dict(zip(group, best))
                shown = [chosen.get(n, s) if s == short else s for n, s in zip(names, shown)]
                moved = True
        if not moved:
            break
    return _twice_cut(names, shown, room)


def _twice_cut(names: Sequence[str], shown: list[str], room: int) -> list[str]:
    """Names that still read the same, cut twice: a head, the characters from where the clashing names first
    differ, and a tail ('Mixed_5b…3…_1.conv', 'Mixed_5b…5…_1.conv'); the longest tail that tells them apart
    from each other and from every other name shown (those cut here included), else the cut that tells most apart,
    and again for those still alike (their shared start is longer then)."""
    for _ in range(12):
        owners: dict[str, set[str]] = {}
        for name, short in zip(names, shown):
            owners.setdefault(short, set()).add(name)
        clashes = sorted(short for short, full in owners.items() if len(full) > 1)
        if not clashes or room < 6:
            break
        taken = set(owners)
        moved = False
        for short in clashes:
            group = sorted(owners[short])
            taken.discard(short)
            shared = len(os.path.commonprefix(group))
            best, best_score = None, 1
            for tail in range(room - 4, 0, -1):
                for window in range(1, room - 2 - tail):
                    head = room - 2 - window - tail
                    cuts = [n[:head] + "…" + n[shared:shared + window] + "…" + n[len(n) - tail:]
                            if len(n) > room and head < shared and shared + window < len(n) - tail
                            else _cut(n, room, room // 2) for n in group]
                    counts = Counter(cuts)
                    score = sum(1 for c in cuts if counts[c] == 1 and c not in taken)
                    if score > best_score:
                        best, best_score = cuts, score
                    if score == len(group):
                        break
                if best_score == len(group):
                    break
            if best_score < len(group):
                branched = _branch_cut(group, room, names)
                if branched is not None and not taken & set(branched):
                    best = branched
            if best is None:
                taken.add(short)
                continue
            taken.update(best)
            mapping = dict(zip(group, best))
            shown = [mapping.get(n, s) if s == short else s for n, s in zip(names, shown)]
            moved = True
        if not moved:
            break
    return shown


def _kept_text(name: str, keep: set[int]) -> str:
    """``name`` with the characters at ``keep``, each run of the others as one '…'."""
    out, gap = [], False
    for i, char in enumerate(name):
        if i in keep:
            out.append(char)
            gap = False
        elif not gap:
            out.append("…")
            gap = True
    return "".join(out)


def _branch_cut(group: Sequence[str], room: int, everyone: Sequence[str] = ()) -> list[str] | None:
    """Names that differ in several places ('Mixed_5b.Branch_1.Conv2d_0a_1x1.BatchNorm' among its 40 siblings),
    each kept at the characters where it parts from another name of the group (its branch points in their trie),
    with the same head and the longest tail the room leaves: different names keep different characters at the
    first place they differ. The branch points are taken among ``everyone`` (all the names shown), so that cuts of
    different groups differ too, where that is cheap enough. None when the branch points alone need more than the
    room."""
    others = list(everyone) if len(group) * len(everyone) <= 2_000_000 else list(group)
    branch = []
    for name in group:
        points = {len(os.path.commonprefix([name, other])) for other in others if other != name}
        branch.append({p for p in points if p < len(name)})

    def cuts(head: int, tail: int) -> list[str] | None:
        shown = []
        for name, points in zip(group, branch):
            keep = points | set(range(min(head, len(name)))) | set(range(max(0, len(name) - tail), len(name)))
            text = _kept_text(name, keep)
            if cell_len(text) > room:
                return None
            shown.append(text)
        return shown if len(set(shown)) == len(group) else None

    for tail in range(room, -1, -1):
        for head in range(room - tail, -1, -1):
            found = cuts(head, tail)
            if found is not None:
                return found
    return None


def hanging(text: str, width: int | None, indent: int) -> str:
    """``text``, whose first ``indent`` columns are a label or blanks, wrapped between words into ``width`` columns
    with the lines after the first indented as far (None, or too narrow for it: unchanged, Rich wraps it)."""
    if width is None or cell_width(text) <= width or width - indent < TEXT_MIN:
        return text
    lines = textwrap.wrap(text[indent:], width - indent, break_long_words=False, break_on_hyphens=False)
    return text[:indent] + ("\n" + " " * indent).join(lines)


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _widest(texts: Sequence[str]) -> int:
    lines = "\n".join(texts).split("\n")
    if all_ascii(lines):
        return max(map(len, lines), default=0)
    return max((cell_width(line) for line in lines), default=0)


def all_ascii(texts: Sequence[str]) -> bool:
    """Whether every text is printable ASCII (one column a character: widths are lengths)."""
    joined = "".join(texts)
    return joined.isascii() and joined.isprintable()


_NUMBER = re.compile(r"(?<![^\W\d])\d")     # a digit that starts a number: not inside a name ('Conv2d', 'pool5')


def _longest_number(texts: Sequence[str]) -> int:
    """The longest word holding a number (prose may fold other words, never these)."""
    return max((cell_width(word) for text in texts for word in text.split() if _NUMBER.search(word)), default=0)


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
    (`NAMES` among them: shorten names there, to NAME_KEEP at the least), then shorten 'name' cells (indentation
    first, then in the middle, different names kept different: `shorten_names`); 'text' columns wrap (never narrower than a word holding a number).
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
    shortened = False

    def shorten(floor: int) -> None:                   # names shortened, never below ``floor`` characters
        nonlocal shortened
        for i in (i for i in kept if columns[i].kind == "name"):
            excess = need(kept) - width
            room = max(min(floor, widest[i]), least[i] - excess)
            if excess <= 0 or room >= least[i]:
                continue
            names = shorten_names([r[i] for r in plain], room)
            for r_plain, r, name in zip(plain, rows, names):
                if name != r_plain[i]:
                    r[i] = name
                    shortened = shortened or "…" in name
            least[i] = _widest(names + [columns[i].header])

    if width is not None:
        for header in drop:
            if need(kept) <= width:
                break
            if header == NAMES:
                shorten(NAME_KEEP)
                continue
            index = next((i for i in kept if columns[i].header == header), None)
            if index is not None:
                kept.remove(index)
                left_out.append(header)
        if need(kept) > width:                         # names shortened in the middle, never below NAME_MIN
            shorten(NAME_MIN)
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
    for position, i in enumerate(kept):                # prose wrapped between words here (Rich would fold words)
        if columns[i].kind == "text":
            for r in rows:
                if isinstance(r[i], str) and _widest([r[i]]) > widths[position]:
                    r[i] = wrap_words(r[i], widths[position])
    return Fitted([columns[i] for i in kept], [[r[i] for i in kept] for r in rows], widths, width, left_out,
                  shortened)


def wrap_words(text: str, width: int) -> str:
    """``text`` wrapped into ``width`` columns between words, or after a hyphen ('depthwise-' 'separable'); only a
    word longer than the width is folded."""
    return "\n".join(line for paragraph in text.split("\n")
                     for line in textwrap.wrap(paragraph, width, break_on_hyphens=True) or [""])


__all__ = ["Cell", "Column", "FittedTable", "Fitted", "LEFT_OUT", "NAMES", "fit", "hanging", "middle_cut", "shorten_names", "wrap_words"]
