"""The data of `convcalc lint`: rules, findings and severities. Rules and formats both build on these.

A finding is plain data with a location (file, 1-based line and column); formatting them (text, JSON,
GitHub annotations, SARIF, JUnit) is `convcalc.report.lint_formats`' job, deciding them is the rules'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Severity(IntEnum):
    """Ordered: a finding fails the run when its severity is at or above ``--fail-on``."""

    info = 1
    warning = 2
    error = 3

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class Rule:
    """One lint rule: a stable ID (``CC101``), a short kebab-case name, its default severity, a one-line
    summary, and the rationale and fix that ``convcalc lint --explain`` prints."""

    id: str
    name: str
    severity: Severity
    summary: str
    rationale: str
    fix: str


@dataclass(frozen=True)
class Finding:
    """One problem in one spec file. ``line``/``column`` are 1-based; 0 when no position is known.
    ``layer`` is the full name of the layer concerned, when there is one. ``spec`` is the checked file whose check
    found it (`lint_paths` sets it): ``path`` itself, or a spec that includes ``path``."""

    path: str
    line: int
    column: int
    rule: str
    severity: Severity
    message: str
    layer: str | None = None
    end_line: int | None = None
    end_column: int | None = None
    spec: str = ""


@dataclass(frozen=True)
class LintReport:
    """Everything one `convcalc lint` run found: the files it checked (in order, also the clean ones, so
    JUnit can list passing cases) and the findings, sorted by file, line, column, rule."""

    files: tuple[str, ...]
    findings: tuple[Finding, ...]
    rules: tuple[Rule, ...] = field(default=())   # every rule known to the run (SARIF lists them)
    seconds: float = 0.0
    skipped: tuple[str, ...] = ()                  # YAML files under the given directories not checked: hidden
                                                   # or matching an exclude pattern
