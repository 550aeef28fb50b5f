"""`convcalc lint` findings for CI consumers: GitHub Actions annotations, SARIF 2.1.0 and JUnit XML.

``render(report, fmt)`` returns the whole document as text; the CLI prints it. Paths are shown as the report
has them, with forward slashes; an absolute path below the working directory is made relative to it (GitHub
and code scanning want paths relative to the repository root, where CI runs the linter).

* ``github``: one workflow command per finding, ``::error file=..,line=..,col=..,endLine=..,endColumn=..,
  title=CC101::message`` (warning: ``::warning``, info: ``::notice``). Escaping is @actions/core's
  (``toolkit/packages/core/src/command.ts``): in the message ``%``, CR and LF become ``%25 %0D %0A``; in a
  property also ``:`` and ``,`` become ``%3A %2C``. Unknown positions (0) are left out.
* ``sarif``: one run whose driver lists every rule of the report; each result has ruleId/ruleIndex, level
  (error, warning, note), the message, the file as a relative URI and a region (left out when the line is
  unknown), and ``partialFingerprints["convcalc/v1"]``: a hash of rule, file, layer (or message when there is
  no layer) and occurrence number, so that it survives lines moving. Valid against the OASIS 2.1.0 schema.
* ``junit``: ``testsuites > testsuite`` per checked file ``> testcase`` per finding, in the suite of the spec
  whose check found it (a finding in an included file fails the spec that includes it; the case's ``file`` and
  ``line`` still point into the included file). An error is a
  ``<failure>``; a warning or info is a ``<skipped>`` case carrying the message (GitLab and Jenkins list skipped
  cases with their text without failing the report, so the report's pass/fail matches the lint's default
  ``--fail-on error``); a file without findings has one passing case, so clean files show as passed. Every
  ``failure``/``skipped`` has both a ``message`` attribute (Jenkins shows it) and text (GitLab shows only the
  text). ``classname`` is the path without its extension (Jenkins splits a class name at its last dot).
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import quote

from ..errors import ConvcalcError
from ..lint.model import Finding, LintReport, Rule, Severity

FORMATS = ("github", "sarif", "junit")

TOOL_NAME = "convcalc"
INFORMATION_URI = "https://pypi.org/project/convcalc/"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "convcalc/v1"

_GITHUB_COMMAND = {Severity.error: "error", Severity.warning: "warning", Severity.info: "notice"}
_SARIF_LEVEL = {Severity.error: "error", Severity.warning: "warning", Severity.info: "note"}


def render(report: LintReport, fmt: str) -> str:
    """The report as a ``github``, ``sarif`` or ``junit`` document (text, ending in a newline unless empty)."""
    renderers: dict[str, Callable[[LintReport], str]] = {"github": to_github, "sarif": to_sarif,
                                                          "junit": to_junit}
    if fmt not in renderers:
        raise ConvcalcError(f"unknown lint output format '{fmt}'; valid: {', '.join(FORMATS)}")
    return renderers[fmt](report)


# --------------------------------------------------------------------------- shared helpers

def display_path(path: str) -> str:
    """The path with forward slashes, relative to the working directory when it is an absolute path below it."""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return candidate.as_posix()
    return path.replace("\\", "/")


def artifact_uri(path: str) -> str:
    """A SARIF ``uri``: a relative URI reference (percent-encoded) for a relative path, else a ``file:`` URI."""
    shown = display_path(path)
    if Path(shown).is_absolute():
        return Path(shown).as_uri()
    return quote(str(PurePosixPath(shown)), safe="/")


def _known(value: int | None) -> bool:
    return value is not None and value > 0


def _rules_by_id(report: LintReport) -> dict[str, Rule]:
    return {rule.id: rule for rule in report.rules}


# --------------------------------------------------------------------------- GitHub Actions

def escape_data(text: str) -> str:
    """@actions/core ``escapeData``: the message of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """@actions/core ``escapeProperty``: a ``key=value`` property of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(finding: Finding) -> str:
    """One ``::error|warning|notice file=..,line=..::message`` line (without the newline)."""
    properties = [("file", display_path(finding.path))]
    if _known(finding.line):
        properties.append(("line", str(finding.line)))
        if _known(finding.column):
            properties.append(("col", str(finding.column)))
        if _known(finding.end_line):
            properties.append(("endLine", str(finding.end_line)))
            if _known(finding.end_column):
                properties.append(("endColumn", str(finding.end_column)))
    properties.append(("title", finding.rule))
    shown = ",".join(f"{key}={escape_property(value)}" for key, value in properties)
    return f"::{_GITHUB_COMMAND[finding.severity]} {shown}::{escape_data(finding.message)}"


def to_github(report: LintReport) -> str:
    return "".join(github_command(finding) + "\n" for finding in report.findings)


# --------------------------------------------------------------------------- SARIF 2.1.0

def _sarif_rule(rule: Rule) -> dict:
    """A reportingDescriptor; ``help`` (what code scanning shows as the rule's help) is the rationale and the fix."""
    rationale = rule.rationale or rule.summary
    help_text = {"text": f"{rationale}\n\nFix: {rule.fix}", "markdown": f"{rationale}\n\n**Fix:** {rule.fix}"} \
        if rule.fix else {"text": rationale, "markdown": rationale}
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rationale},
        "help": help_text,
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
    }


def fingerprint(finding: Finding, occurrence: int) -> str:
    """Stable identity of a finding across runs: rule, file, layer (else message), and which occurrence."""
    subject = finding.layer if finding.layer is not None else finding.message
    key = "\0".join((finding.rule, display_path(finding.path), subject, str(occurrence)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _region(finding: Finding) -> dict | None:
    if not _known(finding.line):
        return None
    region = {"startLine": finding.line}
    if _known(finding.column):
        region["startColumn"] = finding.column
    if _known(finding.end_line) and finding.end_line >= finding.line:
        region["endLine"] = finding.end_line
        if _known(finding.end_column):
            region["endColumn"] = finding.end_column
    return region


def sarif_log(report: LintReport) -> dict:
    """The SARIF 2.1.0 log as plain data (``to_sarif`` serialises it)."""
    from .._version import __version__

    rules = list(report.rules)
    index_of = {rule.id: position for position, rule in enumerate(rules)}
    for finding in report.findings:          # a finding of a rule the report does not list still gets one
        if finding.rule not in index_of:
            index_of[finding.rule] = len(rules)
            rules.append(Rule(finding.rule, finding.rule.lower(), finding.severity, finding.rule, "", ""))
    files = list(dict.fromkeys([*report.files, *(finding.path for finding in report.findings)]))
    artifact_index = {path: position for position, path in enumerate(files)}
    seen: dict[tuple[str, str, str], int] = {}
    results = []
    for finding in report.findings:
        subject = finding.layer if finding.layer is not None else finding.message
        identity = (finding.rule, display_path(finding.path), subject)
        occurrence = seen.get(identity, 0)
        seen[identity] = occurrence + 1
        physical: dict = {"artifactLocation": {"uri": artifact_uri(finding.path),
                                               "index": artifact_index[finding.path]}}
        region = _region(finding)
        if region is not None:
            physical["region"] = region
        result = {
            "ruleId": finding.rule,
            "ruleIndex": index_of[finding.rule],
            "level": _SARIF_LEVEL[finding.severity],
            "message": {"text": finding.message},
            "locations": [{"physicalLocation": physical}],
            "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding, occurrence)},
        }
        if finding.layer is not None:
            result["locations"][0]["logicalLocations"] = [{"name": finding.layer, "kind": "object"}]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": __version__, "semanticVersion": __version__,
                                "informationUri": INFORMATION_URI,
                                "rules": [_sarif_rule(rule) for rule in rules]}},
            "artifacts": [{"location": {"uri": artifact_uri(path)}} for path in files],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def to_sarif(report: LintReport) -> str:
    return json.dumps(sarif_log(report), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- JUnit XML

_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """Text XML 1.0 can carry: characters it forbids (most C0 controls) are shown as ``\\xNN``."""
    return _XML_INVALID.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _position(finding: Finding) -> str:
    where = display_path(finding.path)
    if _known(finding.line):
        where += f":{finding.line}"
        if _known(finding.column):
            where += f":{finding.column}"
    return where


def _case_name(finding: Finding, rules: dict[str, Rule]) -> str:
    """Stable across runs (no line number), so CI servers can match a case between pipelines."""
    rule = rules.get(finding.rule)
    label = f"{finding.rule} {rule.name}" if rule else finding.rule
    if finding.layer is not None:
        return f"{label}: layer '{finding.layer}'"
    return f"{label}: {finding.message.splitlines()[0] if finding.message else ''}"


def _classname(path: str) -> str:
    shown = display_path(path)
    suffix = PurePosixPath(shown).suffix
    return shown[: -len(suffix)] if suffix else shown


def to_junit(report: LintReport) -> str:
    rules = _rules_by_id(report)
    files = list(dict.fromkeys([*report.files, *(finding.spec or finding.path for finding in report.findings)]))
    by_file: dict[str, list[Finding]] = {path: [] for path in files}
    for finding in report.findings:
        by_file[finding.spec or finding.path].append(finding)
    failures_total = sum(f.severity >= Severity.error for f in report.findings)
    skipped_total = len(report.findings) - failures_total
    cases_total = sum(max(1, len(found)) for found in by_file.values())
    root = ET.Element("testsuites", {
        "name": "convcalc lint", "tests": str(cases_total), "failures": str(failures_total), "errors": "0",
        "skipped": str(skipped_total), "time": f"{report.seconds:.3f}"})
    for path in files:
        found = by_file[path]
        failures = sum(f.severity >= Severity.error for f in found)
        suite = ET.SubElement(root, "testsuite", {
            "name": _xml_text(display_path(path)), "tests": str(max(1, len(found))), "failures": str(failures),
            "errors": "0", "skipped": str(len(found) - failures)})
        if not found:
            ET.SubElement(suite, "testcase", {"name": "no findings", "classname": _xml_text(_classname(path)),
                                              "file": _xml_text(display_path(path)), "time": "0"})
            continue
        for finding in found:
            attributes = {"name": _xml_text(_case_name(finding, rules)), "classname": _xml_text(_classname(path)),
                          "file": _xml_text(display_path(finding.path))}
            if _known(finding.line):
                attributes["line"] = str(finding.line)
            attributes["time"] = "0"
            case = ET.SubElement(suite, "testcase", attributes)
            detail = f"{_position(finding)}: {finding.severity.label} {finding.rule}: {finding.message}"
            if finding.layer is not None:
                detail += f"\nlayer: {finding.layer}"
            rule = rules.get(finding.rule)
            if rule is not None and rule.fix:
                detail += f"\nfix: {rule.fix}"
            tag = "failure" if finding.severity >= Severity.error else "skipped"
            outcome = ET.SubElement(case, tag, {"message": _xml_text(finding.message)})
            if tag == "failure":
                outcome.set("type", finding.rule)
            outcome.text = _xml_text(detail)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["FORMATS", "render", "to_github", "to_sarif", "to_junit", "sarif_log", "github_command",
           "escape_data", "escape_property", "fingerprint", "display_path", "artifact_uri"]
