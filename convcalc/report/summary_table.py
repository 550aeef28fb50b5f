"""Summary -> the per-layer Rich table (`to_table`) and totals, drawn in time linear in the rows (`LayerTable`).
Nothing here prints."""

from __future__ import annotations

from typing import Sequence

from rich.cells import set_cell_size
from rich.console import Console, ConsoleOptions, Group as RichGroup, RenderResult
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from ..analysis.summary import Summary
from .fit import NAMES, Column, all_ascii, cell_width, fit, hanging
from .summary import HEADERS, _cells, rows, shape_cell, totals_lines


# control characters shown escaped, so a row stays one line (layer names may not hold them; other cells are checked
# nowhere else)
_VISIBLE = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


class LayerTable:
    """The per-layer table, drawn exactly as a Rich `Table` of these rows would be (no_wrap cells cut with '…'),
    in time linear in the rows with a small constant (a Rich Table costs ~1 ms a row: 13 s for 10,000 layers).

    Rich still lays out and draws the frame (title, header, borders, column widths): it renders a table of the
    same columns holding only, per column, the cell with the longest line and the cell with the longest word
    (all a column's width depends on); the body lines are then written here, one string per row."""

    def __init__(self, title: str, columns: Sequence[tuple[str, str, int | None]],
                 rows: Sequence[tuple[Sequence[str], bool]], full_width: int = 0):
        self.title, self.columns, self.full_width = title, list(columns), full_width
        self.rows = [([c.translate(_VISIBLE) for c in cells], dim) for cells, dim in rows]

    def _frame(self, proxies: Sequence[Sequence[str]]) -> Table:
        table = Table(title=escape(self.title), title_justify="left", header_style="bold")
        for header, justify, min_width in self.columns:
            table.add_column(header, justify=justify, no_wrap=True, min_width=min_width)
        for cells in proxies:
            table.add_row(*(Text(c) for c in cells))
        return table

    def full_table(self) -> Table:
        """The same table as a plain Rich `Table` of every row (what the frame stands for)."""
        table = self._frame([])
        for cells, dim in self.rows:
            table.add_row(*(Text(c) for c in cells), style="dim" if dim else None)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        options = options.update_width(max(options.max_width, self.full_width))    # --wide: past the console's
        if not self.rows:
            yield self._frame([])
            return
        count = len(self.columns)
        longest, wordiest = [], []
        for i in range(count):
            column = [cells[i] for cells, _ in self.rows]
            ascii_only = all_ascii(column)
            longest.append(max(column, key=len if ascii_only else cell_width))
            wordiest.append(max(column, key=_longest_ascii_word if ascii_only else _longest_word))
        frame = self._frame([longest, wordiest])
        lines = list(Segment.split_lines(console.render(frame, options)))
        box = frame.box.substitute(options, safe=console.safe_box)
        head = "".join(segment.text for segment in lines[-4]) if len(lines) >= 6 else ""
        widths = [len(part) for part in head[1:-1].split(box.head_row_cross)]
        if len(widths) != count or box.get_row(widths, "head", edge=True) != head:
            yield self.full_table()            # a layout this does not know: Rich draws every row
            return
        for line in lines[:-3]:
            yield from line
            yield Segment.line()
        dim = console.get_style("dim")
        justify = [j for _, j, _ in self.columns]
        last = len(self.rows) - 1
        for index, (cells, faint) in enumerate(self.rows):
            left, right, divider = ((box.foot_left, box.foot_right, box.foot_vertical) if index == last
                                    else (box.mid_left, box.mid_right, box.mid_vertical))
            texts = [_cell(c, w, j) for c, w, j in zip(cells, widths, justify)]
            if faint:
                yield Segment(left)
                for i, text in enumerate(texts):    # padding and text apart, as Rich styles them
                    yield from (Segment(text[:1], dim), Segment(text[1:-1], dim), Segment(text[-1:], dim)) \
                        if len(text) > 2 else (Segment(text, dim),)
                    yield Segment(divider if i < count - 1 else right)
            else:
                yield Segment(left + divider.join(texts) + right)
            yield Segment.line()
        yield from lines[-1]
        yield Segment.line()


def _longest_word(text: str) -> int:
    return max((cell_width(word) for word in text.split()), default=0)


def _longest_ascii_word(text: str) -> int:
    return max(map(len, text.split()), default=0)


def _cell(text: str, width: int, justify: str) -> str:
    """One cell as Rich draws a no_wrap, ellipsis-overflow Text padded by one space each side in ``width``."""
    inner = width - 2
    if inner <= 0:
        return " " * max(width, 0)
    if justify == "right":
        text = text.rstrip()
    length = cell_width(text)
    if length > inner:
        text = set_cell_size(text, inner - 1) + "…"
    elif length < inner:
        text = " " * (inner - length) + text if justify == "right" else text + " " * (inner - length)
    return f" {text} "


# the columns a narrow terminal loses first (a cell is never cropped: a column that does not fit is left out whole)
# (RF size, what an RF tool is for, stays while long names can be shortened instead)
DROP_ORDER = ("RF padding", "RF stride", "type", NAMES, "RF size")
COLUMNS = [Column(header, "right" if header in ("params", "MACs") else "left", "name" if header == "name" else "whole")
           for header in HEADERS]


def to_table(summary: Summary, depth: int | None = None, parts: bool = False,
             width: int | None = None, wide: bool = False) -> RichGroup:
    """The per-layer table and totals; ``width``: the terminal's, where columns are left out (DROP_ORDER) and then
    long names shortened until the table fits (`report.fit`), and a line says what was left out. ``wide``: every
    column, at full width even past the console's."""
    title = f"{summary.name}: input {shape_cell(summary.input_shape)} → output {shape_cell(summary.output_shape)}"
    shown = rows(summary, depth, parts)
    cells = [_cells(row) for row in shown]
    for row, row_cells in zip(shown, cells):
        row_cells[0] = "  " * row.depth + row_cells[0]
    fitted = fit(COLUMNS, cells, None if wide else width, DROP_ORDER)
    if width is None and not wide:      # not fitted: Rich lays it out, narrowing what is not a number, shape or name
        columns = [(c.header, c.justify, w if c.header in ("name", "output shape", "params", "MACs") else None)
                   for c, w in zip(fitted.columns, fitted.widths)]
    else:
        columns = [(c.header, c.justify, w) for c, w in zip(fitted.columns, fitted.widths)]
    table = LayerTable(title, columns, [(row_cells, row.part) for row, row_cells in zip(shown, fitted.rows)],
                       full_width=fitted.total if wide else 0)
    notes = []
    if fitted.note():
        notes.append(fitted.note())
    if any(row.part for row in shown):
        notes.append("parts (dim rows) are inside the layer above them, not added to the totals")
    if any(row.rf.misaligned for row in shown if not row.part):
        notes.append("⚠: a merge of inputs whose receptive fields have different strides or centres")
    if any(".." in c[5] for row, c in zip(shown, cells) if not row.part):
        notes.append("a..b: the units' receptive fields differ in size (uneven windows, e.g. the checkerboard"
                     " pattern of transposed convs and upsampling)")
    totals = Text()
    for note in notes:                  # fitted: wrapped under their first word, as the totals under their values
        totals.append(hanging(" " * 11 + note, width, 11) + "\n")
    for label, value in totals_lines(summary):
        totals.append(f"{label:>12}: ", style="bold")
        totals.append(hanging(" " * 14 + value, width, 14)[14:] + "\n")
    return RichGroup(table, totals)


__all__ = ["COLUMNS", "DROP_ORDER", "LayerTable", "to_table"]
