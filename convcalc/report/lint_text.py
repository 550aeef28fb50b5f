"""The text (rich) and JSON forms of a `LintReport`. They return data; the CLI prints.

(GitHub annotations, SARIF and JUnit live in `convcalc.report.lint_formats`.)
"""

from __future__ import annotations

import textwrap
from typing import Any

from rich.console import Group
from rich.text import Text

from ..lint.model import LintReport, Rule, Severity

SCHEMA_VERSION = 1
STYLES = {Severity.error: "bold red", Severity.warning: "yellow", Severity.info: "cyan"}


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(report: LintReport) -> str:
    counts = {level: sum(1 for f in report.findings if f.severity == level) for level in Severity}
    files_with = len({f.path for f in report.findings})
    skipped = f", {len(report.skipped)} skipped (hidden or excluded)" if report.skipped else ""
    if not report.findings:
        return f"{_count(len(report.files), 'spec')} checked{skipped}: no problems ({report.seconds:.2f} s)"
    return (f"{_count(len(report.files), 'spec')} checked{skipped}: {_count(counts[Severity.error], 'error')},"
            f" {_count(counts[Severity.warning], 'warning')}, {counts[Severity.info]} info"
            f" in {_count(files_with, 'file')} ({report.seconds:.2f} s)")


MESSAGE_INDENT = 25        # '  ' + line:col, severity and rule in 8, 8 and 7 columns
MESSAGE_MIN = 30           # narrower than this beside the indent, a message starts on its own lines


def _message_lines(message: str, width: int | None) -> list[str]:
    """The message wrapped between words into ``width`` columns under a hanging indent (None: one line)."""
    if width is None:
        return [message]
    indent = MESSAGE_INDENT if width - MESSAGE_INDENT >= MESSAGE_MIN else 4
    lines = textwrap.wrap(message, width - indent, break_on_hyphens=False) or [""]
    if indent != MESSAGE_INDENT:
        return ["", *(" " * indent + line for line in lines)]
    return [lines[0], *(" " * indent + line for line in lines[1:])]


def to_text(report: LintReport, width: int | None = None) -> Group:
    """Findings grouped by file (a bold file name, then ``line:col  severity  RULE  message``), and a summary.
    ``width``: messages wrap between words into so many columns, under a hanging indent (None: one line each)."""
    lines: list[Text] = []
    current = None
    for finding in report.findings:
        if finding.path != current:
            if current is not None:
                lines.append(Text(""))
            lines.append(Text(finding.path, style="bold underline"))
            current = finding.path
        row = Text("  ")
        row.append(f"{finding.line}:{finding.column}".ljust(8), style="dim")
        row.append(finding.severity.label.ljust(8), style=STYLES[finding.severity])
        row.append(finding.rule.ljust(7), style="bold")
        message = _message_lines(finding.message, width)
        row.append(message[0])
        lines.append(row)
        lines.extend(Text(line) for line in message[1:])
    if report.findings:
        lines.append(Text(""))
    lines.append(Text(summary_line(report), style="bold"))
    return Group(*lines)


def to_json(report: LintReport) -> dict[str, Any]:
    """The report as plain data (``schema_version`` first)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "files": list(report.files),
        "findings": [
            {"path": f.path, "line": f.line, "column": f.column, "rule": f.rule, "severity": f.severity.label,
             "message": f.message, "layer": f.layer, "spec": f.spec or f.path}
            for f in report.findings],
        "skipped": list(report.skipped),
        "summary": {
            "files": len(report.files),
            "skipped": len(report.skipped),
            "findings": len(report.findings),
            **{level.label: sum(1 for f in report.findings if f.severity == level) for level in Severity},
            "seconds": round(report.seconds, 3),
        },
    }


def explain(rule: Rule) -> Group:
    """What ``convcalc lint --explain RULE`` prints."""
    return Group(
        Text(f"{rule.id} {rule.name} ({rule.severity.label})", style="bold"),
        Text(rule.summary),
        Text(""),
        Text("Why: ", style="bold").append(Text(rule.rationale, style="")),
        Text(""),
        Text("Fix: ", style="bold").append(Text(rule.fix, style="")),
    )
