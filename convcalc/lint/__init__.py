"""`convcalc lint`: a CI gate for architecture specs.

    report = lint_paths(["specs/"])                # files, directories, globs; config found walking up
    report = lint_paths(["a.yaml"], LintConfig(ignore=("CC303",), fail_on=Severity.warning))
    RULES                                          # every rule: ID, name, severity, summary, rationale, fix

Rendering: `convcalc.report.lint_text` (text, json) and `convcalc.report.lint_formats` (github, sarif, junit).
"""

from __future__ import annotations

from .config import LintConfig, LintConfigError, find_config, load_config
from .engine import expand_paths, failed, lint_file, lint_paths
from .model import Finding, LintReport, Rule, Severity
from .rules import RULES, find_rule

__all__ = ["Finding", "LintConfig", "LintConfigError", "LintReport", "RULES", "Rule", "Severity", "expand_paths",
           "failed", "find_config", "find_rule", "lint_file", "lint_paths", "load_config"]
