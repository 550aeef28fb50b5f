"""`convcalc lint PATH...`: the CI gate (`convcalc.lint.lint_paths`), in text, JSON, GitHub, SARIF or JUnit."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConvcalcError
from ..report.json_text import dumps as json_text
from .completion import complete_lint_path
from .common import (EXIT_CHECK_FAILED, app, errors_to_exit, onnx_as_specs, restore_onnx_paths, table_console,
                     wide_option, width_option)
from .progress import QUIET_HELP, progress_bars


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    info = "info"


class LintFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"
    junit = "junit"


def _rule_words(values: list[str]) -> list[str]:
    """--select/--ignore values: repeatable, each comma-separated."""
    return [word.strip() for value in values for word in value.split(",") if word.strip()]


@app.command(name="lint")
def lint_command(
    paths: Optional[list[str]] = typer.Argument(None, metavar="PATH",
                                                help="Spec files, directories (searched for *.yaml/*.yml specs) or"
                                                     " quoted globs.", show_default=False,
                                                autocompletion=complete_lint_path),
    format: LintFormat = typer.Option(LintFormat.text, "--format", "-f", help="Output format."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", show_default=False, case_sensitive=False,
                                             help="Exit 1 when a finding is at or above this severity (default:"
                                                  " error, or the config's)."),
    select: list[str] = typer.Option([], "--select", metavar="RULES",
                                     help="Only these rules (IDs, names, ID prefixes such as CC2; comma-separated,"
                                          " repeatable). Replaces the configured selection."),
    ignore: list[str] = typer.Option([], "--ignore", metavar="RULES", help="Skip these rules (adds to the config)."),
    exclude: list[str] = typer.Option([], "--exclude", metavar="GLOB",
                                      help="Skip YAML files under the given directories that match GLOB, e.g."
                                           " 'legacy/*' or '**/ci.yml' (repeatable; adds to the config's exclude)."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="FILE",
                                          help="Read settings from FILE (pyproject.toml or YAML with 'lint:')"
                                               " instead of searching upwards."),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore configuration files."),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside",
                                               help="Let specs include files outside their directory tree."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N", show_default=False,
                                       help="Check the files in up to N processes (default: the usable CPUs; 1: in"
                                            " this one). Never more than the CPUs, nor for a few files: the output"
                                            " is the same."),
    explain: Optional[str] = typer.Option(None, "--explain", metavar="RULE",
                                          help="Print a rule's rationale and fix, and exit."),
    width: Optional[int] = width_option(),
    wide: bool = wide_option(),
) -> None:
    """Check specs for errors and likely mistakes; exit 1 on findings at or above --fail-on (default: error).

    Every finding has file:line:col, a rule ID, a severity and the numbers behind it. Settings come from
    [tool.convcalc.lint] in pyproject.toml or 'lint:' in .convcalc.yaml (the nearest one up from the first
    PATH). Silence a finding with '# convcalc: disable=CC201' on its line (or alone on the line before), or a
    whole file with '# convcalc: disable-file=CC301'. Exit codes: 0 clean, 1 findings, 2 usage or I/O error.

    \b
    Examples:
      convcalc lint models/ resnet50     # your directory of specs, a zoo model
      convcalc lint 'models/**/*.yaml' --fail-on warning
      convcalc lint unet --select CC2 --format json
      convcalc lint --explain CC203
    """
    from ..lint import failed, lint_paths, rule_named, settings_for, usable_cpus
    from ..report.lint_text import explain as explain_rule, to_json, to_text

    with errors_to_exit():
        if explain is not None:
            table_console(width, wide)[0].print(explain_rule(rule_named(explain)))
            return
        if not paths:
            raise ConvcalcError("give at least one PATH to lint (a spec file, a directory or a glob)")
        settings = settings_for(paths, config=config, no_config=no_config, select=_rule_words(select),
                                ignore=_rule_words(ignore),
                                fail_on=fail_on.value if fail_on is not None else None,
                                allow_include_outside=allow_include_outside, exclude=exclude)
        with progress_bars(quiet) as bars, onnx_as_specs(paths) as (specs, models):
            report = restore_onnx_paths(lint_paths(specs, settings, on_progress=None if bars is None
                                                   else bars.stage("linting"), jobs=jobs or usable_cpus()), models)
        if format is LintFormat.json:
            text = json_text(to_json(report))
        elif format is not LintFormat.text:
            from ..report.lint_formats import render      # (github, sarif, junit: imported for them only)

            text = render(report, format.value)
            text = text if text.endswith("\n") else text + "\n"
    if format is not LintFormat.text:
        sys.stdout.write(text)
    else:
        console, fit_width = table_console(width, wide)
        console.soft_wrap = fit_width is None          # --wide: a finding on one line, whatever its length
        console.print(to_text(report, fit_width), crop=False)
    if failed(report, settings):
        raise typer.Exit(EXIT_CHECK_FAILED)
