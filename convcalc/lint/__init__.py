"""Stage 8, lint: a CI gate for architecture specs (`convcalc lint`): rules, checks, configuration, suppressions.

May import every stage up to analysis (it analyses each spec and reads the summary); its renderers (text, JSON,
GitHub annotations, SARIF, JUnit) are in the report stage, which comes after it.

    report = lint_paths(["specs/"])                # files, directories, globs; config found walking up
    report = lint_paths(["a.yaml"], LintConfig(ignore=("CC303",), fail_on=Severity.warning))
    report = lint_paths(paths, settings_for(paths, select=["CC2"], fail_on="warning"))   # as the CLI's options
    report = lint_paths(paths, jobs=usable_cpus())  # on every core (the CLI's default); the same report
    RULES                                          # every rule: ID, name, severity, summary, rationale, fix

Rendering: `convcalc.report.lint_text` (text, json) and `convcalc.report.lint_formats` (github, sarif, junit).
"""

from __future__ import annotations

from .config import LintConfig, LintConfigError, find_config, load_config, settings_for
from .engine import expand_paths, failed, lint_file, lint_paths
from .model import Finding, LintReport, Rule, Severity
from .parallel import LintWorkerError, usable_cpus
from .rules import RULES, find_rule, rule_named

__all__ = ["Finding", "LintConfig", "LintConfigError", "LintReport", "LintWorkerError", "RULES", "Rule", "Severity",
           "expand_paths", "failed", "find_config", "find_rule", "lint_file", "lint_paths", "load_config", "rule_named",
           "settings_for", "usable_cpus"]
