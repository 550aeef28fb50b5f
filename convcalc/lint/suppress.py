"""Inline suppressions written in a spec's YAML comments.

* ``# convcalc: disable=CC201,CC302`` after content on a line: findings located on that line;
* the same comment on a line of its own: findings on the next line that holds content;
* ``# convcalc: disable-file=CC301`` anywhere: every finding of those rules in the file.

Rules are named by ID or name (``dropped-pixels``), or ``all``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

import yaml

from ..errors import ConvcalcError
from ..spec.marked_yaml import measure
from .rules import matching_rules

_DIRECTIVE = re.compile(r"#\s*convcalc:\s*(disable-file|disable)\s*=\s*([A-Za-z0-9_,\- \t]+)")


@dataclass
class Suppressions:
    """Rule IDs suppressed per 1-based line, and in the whole file."""

    lines: dict[int, set[str]] = field(default_factory=dict)
    whole_file: set[str] = field(default_factory=set)

    def covers(self, rule: str, line: int) -> bool:
        return rule in self.whole_file or rule in self.lines.get(line, ())


def _rule_ids(text: str) -> set[str]:
    """The rules a directive lists (separated by commas or blanks). The list ends at the first word that names no
    rule: what follows is a free-text reason, whose words ('all', 'CC3') must not widen the suppression."""
    ids: set[str] = set()
    for word in text.replace(" ", ",").replace("\t", ",").split(","):
        if word:
            rules = matching_rules(word)
            if not rules:
                break
            ids.update(rule.id for rule in rules)
    return ids


def _comment_start(line: str) -> int | None:
    """Index of the '#' that starts a YAML comment (outside quotes), or None."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return index
    return None


def _scalar_spans(text: str) -> list[tuple[int, int]] | None:
    """Sorted ``(start, end)`` character offsets of the YAML scalars in ``text`` (a ``#`` inside one is text, not a
    comment: quoted strings, block scalars, a plain ``Krizhevsky's``), or None when the text does not scan."""
    spans = []
    try:
        measure(text, "<suppressions>")   # the scanner below costs its depth per token: within the YAML budgets only
    except ConvcalcError:
        return None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.ScalarToken):
                start, end = token.start_mark.index, token.end_mark.index
                if token.style in ("|", ">"):    # the header line ('|  # comment') is not content
                    newline = text.find("\n", start, end)
                    start = end if newline < 0 else newline + 1
                spans.append((start, end))
    except yaml.YAMLError:
        return None
    return spans


def _comment_outside(line: str, offset: int, spans: list[tuple[int, int]], starts: list[int]) -> int | None:
    """Index in ``line`` (which starts at character ``offset``) of the first '#' that starts a comment."""
    for index, char in enumerate(line):
        if char == "#" and (index == 0 or line[index - 1] in " \t"):
            at = offset + index
            scalar = bisect.bisect_right(starts, at) - 1
            if scalar < 0 or not spans[scalar][0] <= at < spans[scalar][1]:
                return index
    return None


def parse_suppressions(text: str) -> Suppressions:
    result = Suppressions()
    if _DIRECTIVE.search(text) is None:     # no directive anywhere (a line's would match here): skip the YAML scan
        return result
    pending: set[str] = set()        # from directives on lines of their own, waiting for the next content line
    spans = _scalar_spans(text)
    starts = [start for start, _ in spans] if spans is not None else []
    offset = 0
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        line, line_offset = raw.rstrip("\r\n"), offset
        offset += len(raw)
        start = _comment_start(line) if spans is None else _comment_outside(line, line_offset, spans, starts)
        content = line[:start] if start is not None else line
        has_content = bool(content.strip())
        if has_content and pending:
            result.lines.setdefault(number, set()).update(pending)
            pending = set()
        if start is None:
            continue
        match = _DIRECTIVE.search(line, start)
        if not match:
            continue
        ids = _rule_ids(match.group(2))
        if match.group(1) == "disable-file":
            result.whole_file.update(ids)
        elif has_content:
            result.lines.setdefault(number, set()).update(ids)
        else:
            pending.update(ids)
    return result
