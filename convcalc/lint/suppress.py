"""Inline suppressions written in a spec's YAML comments.

* ``# convcalc: disable=CC201,CC302`` after content on a line: findings located on that line;
* the same comment on a line of its own: findings on the next line that holds content;
* ``# convcalc: disable-file=CC301`` anywhere: every finding of those rules in the file.

Rules are named by ID or name (``dropped-pixels``), or ``all``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
    ids: set[str] = set()
    for word in text.replace(" ", ",").replace("\t", ",").split(","):
        if word:
            ids.update(rule.id for rule in matching_rules(word))
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


def parse_suppressions(text: str) -> Suppressions:
    result = Suppressions()
    pending: set[str] = set()        # from directives on lines of their own, waiting for the next content line
    for number, line in enumerate(text.splitlines(), start=1):
        start = _comment_start(line)
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
