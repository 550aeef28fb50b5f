"""A YAML syntax error in the spec's words: where the mistake is (not where the parser gave up), what it is, and
the line itself with a caret under the column.

The parsers (libyaml, PyYAML) describe the token they could not take ("mapping values are not allowed here",
"expected <block end>, but found '?'") at the place they noticed it. The common mistakes in a spec are few: a key
indented more or less than the keys beside it, a key under the list's '-' instead of after it, a tab, a '[' or
'{' never closed (noticed lines later). `describe` recognises them from the parser's words and the text around
the mark, and falls back to the parser's own words for anything else.
"""

from __future__ import annotations

import re

import yaml

from ..errors import Location, SpecError

_KEY = re.compile(r"(?P<dash>-\s+)*(?P<key>[^\s#:{\[\-'\"][^:#]*?|'[^']*'|\"[^\"]*\")\s*:(?:\s|$)")


def source_excerpt(text: str, line: int, column: int) -> tuple[str, ...]:
    """The spec's ``line`` (1-based) and a caret under ``column``, as Python and rustc show them::

          4 |       out_channels: 8
            |       ^

    Tabs show as '→' (one column each, so the caret stays under its character); a long line is cut around the
    column."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return ()
    shown = lines[line - 1].rstrip("\r").replace("\t", "→")
    offset = max(0, column - 1)
    if len(shown) > 100:
        start = max(0, min(offset - 40, len(shown) - 100))
        shown = ("…" if start else "") + shown[start:start + 100] + ("…" if start + 100 < len(shown) else "")
        offset = offset - start + (1 if start else 0)
    number = str(line)
    return (f"{number} | {shown}", f"{' ' * len(number)} | {' ' * min(offset, len(shown))}^")


def _key_at(text_line: str) -> tuple[int, int, str] | None:
    """(dash column, key column, key) of a line ``  - type: Conv2d`` or ``    out_channels: 8`` (1-based columns;
    the dash column is the key's when there is no dash), or None for a line that starts no key."""
    stripped = text_line.lstrip(" ")
    if not stripped or stripped.startswith("#"):
        return None
    indent = len(text_line) - len(stripped)
    match = _KEY.match(stripped)
    if match is None:
        return None
    key_column = indent + match.start("key") + 1
    return indent + 1, key_column, match.group("key").strip().strip("'\"")


def _previous_key(lines: list[str], index: int) -> tuple[int, int, str, int] | None:
    """The nearest line above ``index`` (0-based) that starts a key: (dash column, key column, key, its line)."""
    for above in range(index - 1, -1, -1):
        found = _key_at(lines[above])
        if found is not None:
            return (*found, above + 1)
        if lines[above].strip() and not lines[above].lstrip().startswith("#"):
            return None
    return None


def _indentation(lines: list[str], line: int, filename: str) -> tuple[str, Location] | None:
    """A key that does not line up with the key above it: the message and where the key stands."""
    if not 1 <= line <= len(lines):
        return None
    here = _key_at(lines[line - 1])
    above = _previous_key(lines, line - 1)
    if here is None or above is None:
        return None
    _, column, key = here
    dash, above_column, above_key, above_line = above
    where = Location(filename, line, column)
    rule = ("the spec's top-level keys all start at column 1" if above_column == 1
            else "the keys of one layer line up in one column")
    if column > above_column:
        return (f"'{key}' is indented more than '{above_key}' on line {above_line} (column {column}, not"
                f" {above_column}): {rule}", where)
    if column < above_column and dash < above_column and column == dash:
        return (f"'{key}' stands under the '-' of line {above_line}, so it is not one of that layer's keys: indent"
                f" it to column {above_column}, under '{above_key}'", where)
    if dash < column < above_column:
        return (f"'{key}' is indented to column {column}, between the '-' and '{above_key}' of line {above_line}:"
                f" the keys of one layer line up under its first key (column {above_column})", where)
    if column < above_column:
        return (f"'{key}' is indented less than '{above_key}' on line {above_line} (column {column}, not"
                f" {above_column}): {rule}", where)
    return None


def _under_bare_dash(lines: list[str], line: int, filename: str) -> tuple[str, Location] | None:
    """A key at the column of a '-' that stands alone on the line above (``-`` then ``type: Conv2d`` under it):
    the item is empty and the key is no part of it. The message and where the key stands."""
    if not 1 <= line <= len(lines):
        return None
    here = _key_at(lines[line - 1])
    if here is None:
        return None
    _, column, key = here
    for above in range(line - 2, -1, -1):
        text = lines[above].rstrip()
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        dash = len(text) - len(text.lstrip(" ")) + 1
        if text.strip() != "-" or dash != column:
            return None
        return (f"'{key}' stands under the '-' of line {above + 1}, which is alone on its line: that list item is"
                f" empty and '{key}' is not one of its keys; write '- {key}: ...' on one line, or indent '{key}'"
                f" and the keys below it to column {column + 2}", Location(filename, line, column))
    return None


def describe(exc: yaml.MarkedYAMLError, text: str, filename: str) -> SpecError:
    """The parser's error as a located `SpecError` with a hint in the spec's terms and the line it points at."""
    mark = exc.problem_mark or exc.context_mark
    loc = Location(filename, mark.line + 1, mark.column + 1) if mark else Location(filename, 1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    lines = text.split("\n")
    message = None
    if "another document" in problem or "expected a single document" in problem:
        message = "a spec holds one YAML document, but a second one starts here"
    elif "recursive node" in problem:
        message = "an alias stands inside the value it names"
    elif "\\t" in problem or "tab" in problem:
        row = lines[loc.line - 1] if 1 <= loc.line <= len(lines) else ""
        tab = row.find("\t")
        if tab >= 0:
            loc = Location(filename, loc.line, tab + 1)
        message = "a tab character; YAML indents with spaces only: replace the tab with spaces"
    elif "mapping values are not allowed" in problem:
        found = _indentation(lines, loc.line, filename)
        if found is not None:
            message, loc = found
        else:
            message = ("a ':' where no key may start: put each key on its own line (or in {key: value, ...}),"
                       " or quote a value that holds ': '")
    elif "expected <block end>" in problem or "expected '-' indicator" in problem or "expected key" in problem:
        found = _indentation(lines, loc.line, filename)
        if found is not None:
            message, loc = found
    elif "expected the node content" in problem:
        found = _under_bare_dash(lines, loc.line, filename)
        if found is not None:
            message, loc = found
    elif re.search(r"expected ',' or '[]}]'", problem) and exc.context_mark is not None:
        opener = exc.context_mark
        closer = re.search(r"expected ',' or '([]}])'", problem).group(1)
        bracket = "[" if closer == "]" else "{"
        got = re.search(r"but got '(.*)'$", problem)
        found = got.group(1) if got else None
        if found is None and mark is not None:        # libyaml does not say what it found: read it
            row = lines[mark.line] if mark.line < len(lines) else ""
            found = row[mark.column] if mark.column < len(row) else "<end of line>"
            if mark.line >= len(lines) - 1 and not row.strip():
                found = "<stream end>"
        problem_at = f"{mark.line + 1}:{mark.column + 1}" if mark else "further on"
        where = (f"the file ends" if found == "<stream end>" else
                 f"line {problem_at.split(':')[0]} ends" if found == "<end of line>" else f"{problem_at} has '{found}'")
        loc = Location(filename, opener.line + 1, opener.column + 1)
        message = (f"the '{bracket}' opened here is never closed: {where} where a ',' or '{closer}' should be"
                   " (a list is written [3, 3], a mapping {type: ReLU})")
    error = SpecError(f"invalid YAML: {message or problem}", loc)
    error.excerpt = source_excerpt(text, loc.line, loc.column)
    return error


__all__ = ["describe", "source_excerpt"]
