"""The lint engine: find the spec files, analyze each, run the enabled rules, apply configuration and
inline suppressions, and return one sorted `LintReport`. It never prints."""

from __future__ import annotations

import glob
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import yaml

from ..analysis.summary import analyze
from ..errors import ConvcalcError, ShapeError
from ..spec.build import build_graph
from ..spec.load import load_spec, parse_spec
from .checks import Context, run_checks
from .config import LintConfig, LintConfigError, find_config
from .model import Finding, LintReport
from .rules import RULES, RULES_BY_ID
from .suppress import Suppressions, parse_suppressions

SPEC_SUFFIXES = (".yaml", ".yml")
# a YAML file found in a directory is linted only if it looks like a spec (a top-level 'layers' or 'input' key);
# files that only bring blocks for others to include, CI workflows and other YAML are skipped
_SPEC_KEY = re.compile(r"^(?:layers|input)\s*:", re.MULTILINE)
# a file named explicitly (pre-commit passes every staged file) that brings only blocks for specs to include
_LIBRARY_KEY = re.compile(r"^(?:blocks|include)\s*:", re.MULTILINE)


class LintPathError(LintConfigError):
    """A path to lint does not exist, matches nothing or cannot be read: a usage or I/O error (exit 2)."""


def _looks_like_spec(path: Path) -> bool:
    """A top-level 'layers' or 'input' key: found by a pattern in block style, else (flow style, quoted keys) by
    parsing the file; a file that does not parse and shows neither key is no spec."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True            # let the lint report why it cannot be read
    if _SPEC_KEY.search(text):
        return True
    try:
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return False
    return isinstance(document, dict) and ("layers" in document or "input" in document)


def _walk(directory: Path) -> list[Path]:
    found = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in SPEC_SUFFIXES and path.is_file() and _looks_like_spec(path):
            found.append(path)
    return found


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, directories recursively (*.yaml, *.yml that look like specs; hidden ones skipped), and glob
    patterns (``specs/**/*.yaml``). Each file once, in order."""
    files: list[Path] = []
    for raw in paths:
        text = str(raw)
        path = Path(text)
        if path.is_dir():
            files.extend(_walk(path))
        elif path.exists():
            files.append(path)
        elif glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            matched = [m for m in matches if m.is_file() and m.suffix.lower() in SPEC_SUFFIXES]
            for directory in (m for m in matches if m.is_dir()):
                matched.extend(_walk(directory))
            if not matched:
                raise LintPathError(f"no spec files match '{text}'")
            files.extend(matched)
        else:
            raise LintPathError(f"no such file or directory: {text}")
    unique: dict[str, Path] = {}
    for file in files:
        unique.setdefault(str(file.resolve()), file)
    return list(unique.values())


def _error_finding(exc: ConvcalcError, path: str) -> Finding:
    rule = "CC102" if isinstance(exc, ShapeError) else "CC101"
    loc = exc.location
    message = exc.message + "".join(f" ({note})" for note in exc.notes)
    if loc and loc.file != path and Path(loc.file).resolve() == Path(path).resolve():
        loc = replace(loc, file=path)            # the linted file itself, reached as an include: named as given
    return Finding(path=loc.file if loc else path, line=loc.line if loc else 0, column=loc.column if loc else 0,
                   rule=rule, severity=RULES_BY_ID[rule].severity, message=message)


def lint_file(path: str | Path, config: LintConfig, enabled: set[str] | None = None) -> list[Finding]:
    """Findings of one spec file (default severities, before suppressions)."""
    shown = str(path)
    enabled = config.enabled() if enabled is None else enabled
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise LintPathError(f"cannot read {shown}: {exc.strerror or exc}") from None
    try:
        if _is_block_library(Path(path)):
            _check_block_library(Path(path), config)
            return []
        spec = load_spec(path, allow_include_outside=config.allow_include_outside)
        summary = analyze(build_graph(spec))
    except ConvcalcError as exc:
        return [_error_finding(exc, shown)]
    except RecursionError:
        return [Finding(shown, 0, 0, "CC101", RULES_BY_ID["CC101"].severity, "the spec nests blocks too deeply")]
    return run_checks(Context(shown, spec, summary, config.rf_min_coverage), enabled)


def _is_block_library(path: Path) -> bool:
    """A file with top-level ``blocks:``/``include:`` but neither ``input:`` nor ``layers:``: blocks to include."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return not _SPEC_KEY.search(text) and bool(_LIBRARY_KEY.search(text))


def _check_block_library(path: Path, config: LintConfig) -> None:
    """Check a block library as a spec that includes it would (YAML, the keys an included file may hold, block
    definitions, its own includes); its layers are checked where a spec uses the blocks. Raises `SpecError`."""
    wrapper = f"include: {json.dumps(path.name)}\ninput: [1]\nlayers: [{{type: Identity}}]\n"
    parse_spec(wrapper, f"<include of {path.name}>", base_dir=path.resolve().parent,
               allow_include_outside=config.allow_include_outside)


def lint_paths(paths: Sequence[str | Path], config: LintConfig | None = None) -> LintReport:
    """Lint every spec that ``paths`` name (files, directories, globs). ``config`` None: the settings found by
    walking up from the first path (`find_config`). Raises `LintConfigError` (a `ConvcalcError`) for a path that
    does not exist or matches nothing, or an invalid configuration."""
    started = time.perf_counter()
    files = expand_paths(paths)
    if config is None:
        config = find_config(paths[0] if paths else None)
    enabled = config.enabled()
    suppressions: dict[str, Suppressions] = {}
    findings: list[Finding] = []
    for file in files:
        for finding in lint_file(file, config, enabled):
            if finding.rule not in enabled:
                continue
            if finding.path not in suppressions:
                suppressions[finding.path] = _suppressions_of(finding.path)
            if suppressions[finding.path].covers(finding.rule, finding.line):
                continue
            severity = config.severity_of(finding.rule, finding.severity)
            findings.append(replace(finding, severity=severity, spec=str(file)))
    findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule, f.message))
    return LintReport(files=tuple(str(f) for f in files), findings=tuple(findings), rules=RULES,
                      seconds=time.perf_counter() - started)


def _suppressions_of(path: str) -> Suppressions:
    try:
        return parse_suppressions(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return Suppressions()


def failed(report: LintReport, config: LintConfig) -> bool:
    """Whether any finding is at or above ``config.fail_on`` (the CLI's exit code 1)."""
    return any(f.severity >= config.fail_on for f in report.findings)
