"""The lint engine: find the spec files, analyze each, run the enabled rules, apply configuration and
inline suppressions, and return one sorted `LintReport`. It never prints."""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import json
import os
import re
import stat
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from ..analysis.summary import analyze
from ..errors import ConvcalcError, ShapeError
from ..spec.build import build_graph
from ..spec.load import load_spec, parse_spec
from ..spec.files import read_text_file
from ..spec.marked_yaml import load_marked
from ..spec.zoo import PREFIX as ZOO_PREFIX, zoo_file, zoo_name_of, zoo_path
from .checks import Context, run_checks
from .config import LintConfig, LintConfigError, find_config
from .model import Finding, LintReport
from .parallel import in_order
from .rules import RULES, RULES_BY_ID
from .suppress import Suppressions, parse_suppressions

SPEC_SUFFIXES = (".yaml", ".yml")
# every *.yaml/*.yml a directory or glob names is checked: a spec as a spec, a block library (top-level
# 'blocks'/'include' and neither 'input' nor 'layers') as a spec that includes it would see it, and anything else
# is an error finding, so a gate never passes a file it could not check; hidden files and directories, and paths
# matching an exclude pattern (--exclude, or 'exclude' in the settings), are skipped and counted
_SPEC_KEY = re.compile(r"^(?:layers|input)\s*:", re.MULTILINE)
_LIBRARY_KEY = re.compile(r"^(?:blocks|include)\s*:", re.MULTILINE)


class LintPathError(LintConfigError):
    """A path to lint does not exist, matches nothing or cannot be read: a usage or I/O error (exit 2)."""


def excluded(path: Path, patterns: Sequence[str], root: Path | None = None) -> bool:
    """Whether ``path`` matches one of the exclude ``patterns`` (fnmatch globs, ``**`` allowed), tried on the
    path as found, on its part below ``root`` (the directory given), and on each of its trailing parts, so
    ``legacy/*``, ``*.ci.yml`` and ``**/workflows/*.yml`` all work."""
    candidates = {path.as_posix()}
    if root is not None:
        with contextlib.suppress(ValueError):
            candidates.add(path.relative_to(root).as_posix())
    parts = path.parts
    candidates.update("/".join(parts[i:]) for i in range(len(parts)))
    return any(fnmatch.fnmatchcase(c, p) or fnmatch.fnmatchcase(c, p.replace("**/", "")) for p in patterns
               for c in candidates)


def _walk(directory: Path, patterns: Sequence[str], skipped: list[Path]) -> list[Path]:
    found = []
    for path in sorted(directory.rglob("*")):
        if path.suffix.lower() not in SPEC_SUFFIXES or not path.is_file():
            continue
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or excluded(path, patterns, directory):
            skipped.append(path)
        else:
            found.append(path)
    return found


def expand_paths(paths: Sequence[str | Path], exclude: Sequence[str] = (),
                 skipped: list[Path] | None = None) -> list[Path]:
    """Files as given (always checked), directories recursively (every *.yaml, *.yml; hidden ones and those
    matching ``exclude`` go to ``skipped``), glob patterns (``specs/**/*.yaml``; ``exclude`` applies), and zoo
    models: ``zoo:NAME``, or a bare zoo name (``resnet50``) where no such path exists. Each file once, in order.
    Raises `LintPathError` for a path that does not exist (saying so when its file name is a zoo model's: an
    explicit path is never replaced), a glob that matches nothing, or paths that hold no file to check."""
    skipped = [] if skipped is None else skipped
    files: list[Path] = []
    for raw in paths:
        text = str(raw)
        path = Path(text)
        if text.startswith(ZOO_PREFIX) or (not os.path.lexists(text) and not glob.has_magic(text)
                                           and zoo_file(text) is not None):
            files.append(_zoo_model(text))         # zoo:NAME, or a bare zoo name that is no path here
        elif path.is_dir():
            files.extend(_walk(path, exclude, skipped))
        elif path.exists():
            files.append(path)
        elif glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            matched = []
            for match in matches:
                if match.is_dir():
                    matched.extend(_walk(match, exclude, skipped))
                elif match.is_file() and match.suffix.lower() in SPEC_SUFFIXES:
                    (skipped if excluded(match, exclude) else matched).append(match)
            if not matched and not skipped:
                raise LintPathError(f"no spec files match '{text}'")
            files.extend(matched)
        else:
            named = zoo_name_of(text)
            argument = named if named and not os.path.lexists(named) else f"{ZOO_PREFIX}{named}"
            hint = f" (the zoo has '{named}': convcalc lint {argument})" if named else ""
            raise LintPathError(f"no such file or directory: {text}{hint}")
    unique: dict[str, Path] = {}
    for file in files:
        unique.setdefault(str(file.resolve()), file)
    if not unique:
        listed = ", ".join(str(p) for p in paths)
        hint = f" ({len(skipped)} skipped: hidden or excluded)" if skipped else ""
        raise LintPathError(f"no *.yaml/*.yml spec files to check under {listed}{hint}")
    return list(unique.values())


def _zoo_model(name: str) -> Path:
    """The zoo's spec or block library called ``name`` (``resnet50``, ``zoo:efficientnet_b0``,
    ``zoo:blocks/mobilenet_v3``), or a `LintPathError` naming the closest models."""
    found = zoo_file(name)
    if found is not None:
        return found
    try:
        return zoo_path(name)                    # raises, naming the closest zoo models
    except ConvcalcError as exc:
        raise LintPathError(str(exc)) from None


def _not_a_spec(path: Path) -> str | None:
    """Why a YAML file that is neither a spec nor a block library cannot be checked, or None when it is one."""
    try:
        text = read_text_file(path)      # a regular file within the spec size budget, UTF-8
    except ConvcalcError:
        return None              # the spec loader reports why it cannot be read
    if _SPEC_KEY.search(text) or _LIBRARY_KEY.search(text):
        return None
    try:
        document = load_marked(text, str(path))   # within the YAML budgets (depth, aliases): never a deep recursion
    except ConvcalcError:
        return None              # the spec loader reports the YAML error with its position
    if isinstance(document, dict) and any(key in document for key in ("input", "layers", "blocks", "include")):
        return None
    if document is None:
        return "the file is empty: a spec needs top-level 'input' and 'layers' keys"
    if not isinstance(document, dict):
        return (f"not a convcalc spec: a spec is a mapping with top-level 'input' and 'layers' keys, this file holds"
                f" a {type(document).__name__.replace('str', 'string').replace('MarkedList', 'list')}")
    keys = [str(k) for k in document][:5]
    near = [k for k in keys if k.lower() in ("input", "layers", "blocks", "include")]
    why = (f" (keys are case-sensitive: found {', '.join(repr(k) for k in near)})" if near
           else f" (found {', '.join(repr(k) for k in keys)})")
    return (f"not a convcalc spec: no top-level 'input' and 'layers' keys{why}; exclude the file with --exclude or"
            " the 'exclude' setting if it is not meant to be one")


def _error_finding(exc: ConvcalcError, path: str) -> Finding:
    rule = "CC102" if isinstance(exc, ShapeError) else "CC101"
    loc = exc.location
    message = exc.message + "".join(f" ({note})" for note in exc.notes)
    if loc and loc.file != path and Path(loc.file).resolve() == Path(path).resolve():
        loc = replace(loc, file=path)            # the linted file itself, reached as an include: named as given
    return Finding(path=loc.file if loc else path, line=loc.line if loc else 0, column=loc.column if loc else 0,
                   rule=rule, severity=RULES_BY_ID[rule].severity, message=message)


def _dropped_findings(exc: ConvcalcError, path: str, enabled: set[str]) -> list[Finding]:
    """CC201 at each layer upstream of a failed merge that dropped pixels (`analysis.causes`): the root cause,
    reported where it is although the analysis stopped at the merge."""
    if "CC201" not in enabled:
        return []
    findings = []
    for dropped in getattr(exc, "dropped", ()):
        loc = dropped.node.location
        if loc and loc.file != path and Path(loc.file).resolve() == Path(path).resolve():
            loc = replace(loc, file=path)
        findings.append(Finding(
            path=loc.file if loc else path, line=loc.line if loc else 0, column=loc.column if loc else 0,
            rule="CC201", severity=RULES_BY_ID["CC201"].severity, layer=dropped.node.name,
            message=f"layer '{dropped.node.name}' ({dropped.node.type_name}): {dropped.lost_text()} never"
                    f" {'reaches' if len(dropped.lost) == 1 and dropped.lost[0][1] == 1 else 'reach'} the output:"
                    f" (i + pad_lo + pad_hi - k_eff) mod stride = {dropped.formulas()}; it breaks the merge"
                    f" '{getattr(exc, 'merge', '?')}' (CC102)"))
    return findings


def lint_file(path: str | Path, config: LintConfig, enabled: set[str] | None = None) -> list[Finding]:
    """Findings of one spec file (default severities, before suppressions)."""
    shown = str(path)
    enabled = config.enabled() if enabled is None else enabled
    try:
        kind = os.stat(path).st_mode
        if not stat.S_ISREG(kind):          # a FIFO or a device would block or never end: never opened
            raise LintPathError(f"cannot read {shown}: not a regular file")
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise LintPathError(f"cannot read {shown}: {exc.strerror or exc}") from None
    why = _not_a_spec(Path(path))
    if why is not None:
        return [Finding(shown, 1, 1, "CC101", RULES_BY_ID["CC101"].severity, why)]
    try:
        if _is_block_library(Path(path)):
            _check_block_library(Path(path), config)
            return []
        spec = load_spec(path, allow_include_outside=config.allow_include_outside)
        summary = analyze(build_graph(spec))
    except ConvcalcError as exc:
        return [_error_finding(exc, shown), *_dropped_findings(exc, shown, enabled)]
    except RecursionError:
        return [Finding(shown, 0, 0, "CC101", RULES_BY_ID["CC101"].severity, "the spec nests blocks too deeply")]
    return run_checks(Context(shown, spec, summary, config.rf_min_coverage), enabled)


def _is_block_library(path: Path) -> bool:
    """A file with top-level ``blocks:``/``include:`` but neither ``input:`` nor ``layers:``: blocks to include."""
    text = read_text_file(path)     # within the spec size budget; a ConvcalcError is the file's finding
    return not _SPEC_KEY.search(text) and bool(_LIBRARY_KEY.search(text))


def _check_block_library(path: Path, config: LintConfig) -> None:
    """Check a block library as a spec that includes it would (YAML, the keys an included file may hold, block
    definitions, its own includes); its layers are checked where a spec uses the blocks. Raises `SpecError`."""
    wrapper = f"include: {json.dumps(path.name)}\ninput: [1]\nlayers: [{{type: Identity}}]\n"
    parse_spec(wrapper, f"<include of {path.name}>", base_dir=path.resolve().parent,
               allow_include_outside=config.allow_include_outside)


def lint_paths(paths: Sequence[str | Path], config: LintConfig | None = None,
               on_progress: Callable[[int, int], None] | None = None, jobs: int = 1) -> LintReport:
    """Lint every spec that ``paths`` name (files, directories, globs, zoo names). ``config`` None: the settings
    found by walking up from the first path (`find_config`). ``on_progress(done, files)`` is called as files are
    done, in order. ``jobs`` > 1: check the files in up to that many worker processes (`lint.parallel`; fewer where
    there are few files or CPUs), with the same report as one process gives.
    Raises `LintConfigError` (a `ConvcalcError`) for a path that does not exist or matches nothing, or an invalid
    configuration; `LintWorkerError` when a worker process dies."""
    started = time.perf_counter()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise LintConfigError(f"jobs must be a whole number of processes, at least 1 (got {jobs!r})")
    if config is None:
        config = find_config(paths[0] if paths else None)
    skipped: list[Path] = []
    files = expand_paths(paths, config.exclude, skipped)
    enabled = config.enabled()
    findings: list[Finding] = []
    done = 0
    for batch, results in in_order(_reported_findings, files, (config, enabled), jobs):
        for found in results:
            findings.extend(found)
        done += len(batch)
        if on_progress is not None:
            on_progress(done, len(files))
    findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule, f.message))
    return LintReport(files=tuple(str(f) for f in files), findings=tuple(findings), rules=RULES,
                      seconds=time.perf_counter() - started, skipped=tuple(str(p) for p in skipped))


def _reported_findings(file: Path, config: LintConfig, enabled: set[str]) -> list[Finding]:
    """The findings of one file as the report has them: enabled rules only, inline suppressions applied, severities
    as configured, each naming ``file`` as its spec. (Run in a worker process by a parallel `lint_paths`.)"""
    suppressions: dict[str, Suppressions] = {}
    kept = []
    for finding in lint_file(file, config, enabled):
        if finding.rule not in enabled:
            continue
        if finding.path not in suppressions:
            suppressions[finding.path] = _suppressions_of(finding.path)
        if suppressions[finding.path].covers(finding.rule, finding.line):
            continue
        severity = config.severity_of(finding.rule, finding.severity)
        kept.append(replace(finding, severity=severity, spec=str(file)))
    return kept


def _suppressions_of(path: str) -> Suppressions:
    try:
        return parse_suppressions(read_text_file(path))
    except ConvcalcError:          # unreadable or too large: its finding says so; nothing to suppress there
        return Suppressions()


def failed(report: LintReport, config: LintConfig) -> bool:
    """Whether any finding is at or above ``config.fail_on`` (the CLI's exit code 1)."""
    return any(f.severity >= config.fail_on for f in report.findings)
