"""`convcalc lint --format github|sarif|junit`: golden documents, and checks against the consumers' own rules.

Oracles: the OASIS SARIF 2.1.0 JSON schema (vendored in tests/data, see its ORIGIN note); the GitHub Actions
runner's parsing of workflow commands (re-implemented here from its documented behaviour: the command ends at
the first ``::``, properties split at ``,`` and ``=``, then ``%0D %0A %3A %2C`` and last ``%25`` are decoded);
the structure GitLab's JUnit parser reads (testsuites > testsuite > testcase, with failure/skipped text).

The golden files are built from a hand-made report, not from the lint rules, so they change only when a format
does. Regenerate with ``CONVCALC_UPDATE_GOLDEN=1 python -m pytest tests/test_lint_formats.py`` and review the
diff against the consumers' specifications before committing.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.errors import ConvcalcError
from convcalc.report.lint_formats import render
from convcalc.lint.model import Finding, LintReport, Rule, Severity

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
SARIF_SCHEMA = json.loads((HERE / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
UPDATE = os.environ.get("CONVCALC_UPDATE_GOLDEN") == "1"

RULES = (
    Rule("CC102", "shape-error", Severity.error, "a layer cannot accept the shape it is given",
         "PyTorch would raise at the first forward.", "Fix the arguments the message names."),
    Rule("CC201", "dropped-pixels", Severity.warning, "the last rows/columns never reach the output",
         "A strided window covers the padded input only up to the last full window.", "Pad one more at the end."),
    Rule("CC301", "note", Severity.info, "worth knowing", "", ""),
)
ODD_PATH = "specs/odd dir/with,comma:colon.yaml"
REPORT = LintReport(
    files=("specs/net.yaml", "specs/clean.yaml", ODD_PATH),
    findings=(
        Finding("specs/net.yaml", 0, 0, "CC301", Severity.info, "file-level note"),
        Finding("specs/net.yaml", 12, 7, "CC102", Severity.error,
                "layer 'conv3' (Conv2d): kernel 7 with dilation 2 spans 13 but the padded input is 11 wide",
                layer="conv3", end_line=12, end_column=19),
        Finding("specs/net.yaml", 20, 3, "CC201", Severity.warning,
                "the last 1 row is dropped: 50% of the border\nsecond line", layer="down.pool"),
        Finding(ODD_PATH, 4, 1, "CC201", Severity.warning, "100% of: things, here", layer="p"),
    ),
    rules=RULES,
    seconds=0.25,
)
GOLDEN_NAMES = {"github": "lint.github.txt", "sarif": "lint.sarif.json", "junit": "lint.junit.xml"}


@pytest.mark.parametrize("fmt", sorted(GOLDEN_NAMES))
def test_golden(fmt):
    path = GOLDEN / GOLDEN_NAMES[fmt]
    text = render(REPORT, fmt)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_unknown_format_is_a_convcalc_error():
    with pytest.raises(ConvcalcError, match="unknown lint output format 'xml'; valid: github, sarif, junit"):
        render(REPORT, "xml")


# --------------------------------------------------------------------------- GitHub Actions

def runner_parse(line: str) -> tuple[str, dict[str, str], str]:
    """The runner's reading of ``::command k=v,k=v::message`` (actions/runner ActionCommand.TryParseV2)."""
    assert line.startswith("::")
    end = line.index("::", 2)
    info, data = line[2:end], line[end + 2:]
    command, _, props = info.partition(" ")
    properties = {}
    for pair in filter(None, props.split(",")):
        key, _, value = pair.partition("=")
        properties[key] = _unescape(value, property_=True)
    return command, properties, _unescape(data, property_=False)


def _unescape(text: str, property_: bool) -> str:
    text = text.replace("%0D", "\r").replace("%0A", "\n")
    if property_:
        text = text.replace("%3A", ":").replace("%2C", ",")
    return text.replace("%25", "%")


def test_github_lines_read_back_as_written():
    lines = render(REPORT, "github").splitlines()
    assert len(lines) == len(REPORT.findings)
    parsed = [runner_parse(line) for line in lines]
    assert [p[0] for p in parsed] == ["notice", "error", "warning", "warning"]
    assert parsed[0][1] == {"file": "specs/net.yaml", "title": "CC301"}          # no position: no line/col
    assert parsed[1][1] == {"file": "specs/net.yaml", "line": "12", "col": "7", "endLine": "12",
                            "endColumn": "19", "title": "CC102"}
    assert parsed[2][2] == "the last 1 row is dropped: 50% of the border\nsecond line"
    assert parsed[3][1]["file"] == ODD_PATH
    assert parsed[3][2] == "100% of: things, here"


def test_github_escapes_exactly_as_actions_core():
    line = render(REPORT, "github").splitlines()[3]
    # property: % -> %25, : -> %3A, , -> %2C (a literal '%' must not survive, nor ':' ',' inside a value)
    assert "file=specs/odd dir/with%2Ccomma%3Acolon.yaml," in line
    # message: only % CR LF are escaped; ':' and ',' stay
    assert line.endswith("::100%25 of: things, here")
    assert "%0Asecond line" in render(REPORT, "github").splitlines()[2]


_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(path=_text.filter(lambda p: not p.startswith("/") and "\\" not in p), message=_text,
       line=st.integers(0, 5000), column=st.integers(0, 300),
       severity=st.sampled_from(list(Severity)))
def test_github_round_trip(path, message, line, column, severity):
    finding = Finding(path, line, column, "CC201", severity, message)
    text = render(LintReport((path,), (finding,), RULES), "github")
    assert text.count("\n") == 1 and "\r" not in text          # one physical line per finding
    command, properties, data = runner_parse(text.rstrip("\n"))
    assert command == {Severity.error: "error", Severity.warning: "warning", Severity.info: "notice"}[severity]
    assert properties["file"] == path and data == message and properties["title"] == "CC201"
    assert properties.get("line") == (str(line) if line else None)
    assert properties.get("col") == (str(column) if line and column else None)


# --------------------------------------------------------------------------- SARIF

def _validate_sarif(document: dict) -> None:
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(document)


def test_sarif_validates_against_the_official_schema():
    _validate_sarif(json.loads(render(REPORT, "sarif")))


def test_vendored_schema_is_the_sarif_2_1_0_schema():
    jsonschema.Draft4Validator.check_schema(SARIF_SCHEMA)
    assert SARIF_SCHEMA["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    assert len(SARIF_SCHEMA["definitions"]) == 52
    # the schema does reject what it should: a result level SARIF does not know
    bad = json.loads(render(REPORT, "sarif"))
    bad["runs"][0]["results"][0]["level"] = "info"
    with pytest.raises(jsonschema.ValidationError):
        _validate_sarif(bad)


def test_sarif_content_for_code_scanning():
    log = json.loads(render(REPORT, "sarif"))
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "convcalc" and driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == ["CC102", "CC201", "CC301"]
    assert [r["defaultConfiguration"]["level"] for r in driver["rules"]] == ["error", "warning", "note"]
    results = run["results"]
    assert [r["level"] for r in results] == ["note", "error", "warning", "warning"]
    for result in results:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert "\\" not in uri and not uri.startswith("/") and re.fullmatch(r"[A-Za-z0-9/._~%!$&'()*+,;=:@-]+", uri)
        assert run["artifacts"][location["artifactLocation"]["index"]]["location"]["uri"] == uri
        assert re.fullmatch(r"[0-9a-f]{32}", result["partialFingerprints"]["convcalc/v1"])
    assert "region" not in results[0]["locations"][0]["physicalLocation"]      # line unknown: no region
    assert results[1]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 12, "startColumn": 7, "endLine": 12, "endColumn": 19}
    assert results[3]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "specs/odd%20dir/with%2Ccomma%3Acolon.yaml"
    assert results[2]["message"]["text"] == "the last 1 row is dropped: 50% of the border\nsecond line"


def test_sarif_fingerprint_is_stable_when_lines_move_and_distinct_for_repeats():
    def fingerprints(findings):
        log = json.loads(render(LintReport(("a.yaml",), tuple(findings), RULES), "sarif"))
        return [r["partialFingerprints"]["convcalc/v1"] for r in log["runs"][0]["results"]]

    here = Finding("a.yaml", 10, 3, "CC201", Severity.warning, "dropped 1 row", layer="pool")
    moved = Finding("a.yaml", 14, 5, "CC201", Severity.warning, "dropped 1 row", layer="pool")
    other = Finding("a.yaml", 10, 3, "CC201", Severity.warning, "dropped 1 row", layer="pool2")
    assert fingerprints([here]) == fingerprints([moved])
    assert fingerprints([here]) != fingerprints([other])
    twice = fingerprints([here, moved])
    assert len(set(twice)) == 2


def test_sarif_lists_a_rule_the_report_does_not_know():
    finding = Finding("a.yaml", 1, 1, "CC999", Severity.error, "from a plugin")
    log = json.loads(render(LintReport(("a.yaml",), (finding,), RULES), "sarif"))
    _validate_sarif(log)
    driver = log["runs"][0]["tool"]["driver"]
    result = log["runs"][0]["results"][0]
    assert driver["rules"][result["ruleIndex"]]["id"] == "CC999"


def test_sarif_of_a_clean_run_is_valid_and_has_empty_results():
    log = json.loads(render(LintReport(("a.yaml", "b.yaml"), (), RULES), "sarif"))
    _validate_sarif(log)
    assert log["runs"][0]["results"] == []      # "present (but may be empty) if a log file represents a scan"


@settings(max_examples=40, deadline=None)
@given(message=_text, layer=st.none() | _text, line=st.integers(0, 100), column=st.integers(0, 100),
       path=st.sampled_from(["a.yaml", "dir with space/b.yml", "x/ünï,cödé:1.yaml", "100%.yaml"]))
def test_sarif_always_valid(message, layer, line, column, path):
    finding = Finding(path, line, column, "CC201", Severity.warning, message, layer=layer)
    _validate_sarif(json.loads(render(LintReport((path,), (finding,), RULES), "sarif")))


# --------------------------------------------------------------------------- JUnit

def _gitlab_cases(text: str) -> list[dict]:
    """The test cases as GitLab's parser sees them: status from the child element, details from its text."""
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    cases = []
    for suite in root.findall("testsuite"):
        for case in suite.findall("testcase"):
            failure, skipped = case.find("failure"), case.find("skipped")
            status = "failed" if failure is not None else "skipped" if skipped is not None else "success"
            detail = (failure if failure is not None else skipped)
            cases.append({"suite": suite.get("name"), "name": case.get("name"), "classname": case.get("classname"),
                          "file": case.get("file"), "status": status,
                          "text": detail.text if detail is not None else None,
                          "message": detail.get("message") if detail is not None else None})
    return cases


def test_junit_structure_as_gitlab_reads_it():
    text = render(REPORT, "junit")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    cases = _gitlab_cases(text)
    assert [(c["suite"], c["status"]) for c in cases] == [
        ("specs/net.yaml", "skipped"), ("specs/net.yaml", "failed"), ("specs/net.yaml", "skipped"),
        ("specs/clean.yaml", "success"), (ODD_PATH, "skipped")]
    failed = cases[1]
    assert failed["name"] == "CC102 shape-error: layer 'conv3'"
    assert failed["classname"] == "specs/net" and failed["file"] == "specs/net.yaml"
    assert failed["text"].startswith("specs/net.yaml:12:7: error CC102: layer 'conv3' (Conv2d): kernel 7")
    assert failed["message"] == REPORT.findings[1].message
    assert cases[2]["message"] == "the last 1 row is dropped: 50% of the border\nsecond line"   # &#10; read back
    assert cases[4]["file"] == ODD_PATH


def test_junit_counts_add_up():
    root = ET.fromstring(render(REPORT, "junit").encode("utf-8"))
    for element in [root, *root.findall("testsuite")]:
        cases = element.iter("testcase")
        listed = list(cases)
        assert int(element.get("tests")) == len(listed)
        assert int(element.get("failures")) == sum(c.find("failure") is not None for c in listed)
        assert int(element.get("skipped")) == sum(c.find("skipped") is not None for c in listed)
        assert element.get("errors") == "0"
    assert root.get("time") == "0.250"


@settings(max_examples=40, deadline=None)
@given(message=st.text(max_size=30), layer=st.none() | st.text(max_size=10),
       path=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20))
def test_junit_is_well_formed_whatever_the_text(message, layer, path):
    finding = Finding(path, 3, 1, "CC102", Severity.error, message, layer=layer)
    text = render(LintReport((path,), (finding,), RULES), "junit")
    cases = _gitlab_cases(text)          # parses: control characters were made printable
    assert len(cases) == 1 and cases[0]["status"] == "failed"
    if not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", message):
        assert cases[0]["message"] == message          # attribute escaping (&#10; &#13; ...) reads back exactly


# --------------------------------------------------------------------------- end to end, through the CLI

def test_junit_fails_the_spec_whose_included_file_has_the_error(tmp_path, monkeypatch):
    """The error sits in an included block library; the spec that uses it cannot be built, so its suite fails
    (GitLab must not list it as passed), and the case points at the library's line. The library itself, checked
    as a file, is sound: its suite passes. One failure in all, as the text output counts it."""
    from typer.testing import CliRunner

    from convcalc.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocks.yaml").write_text(
        "blocks:\n  unit:\n    layers:\n      - {type: Conv2d, out_channels: 4, kernel_size: 3, biass: true}\n",
        encoding="utf-8")
    (tmp_path / "net.yaml").write_text(
        "input: [3, 8, 8]\ninclude: blocks.yaml\nlayers:\n  - {type: unit}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["lint", "net.yaml", "blocks.yaml", "--format", "junit", "--no-config"])
    assert result.exit_code == 1, result.output
    cases = _gitlab_cases(result.stdout)
    assert [(c["suite"], c["status"]) for c in cases] == [("net.yaml", "failed"), ("blocks.yaml", "success")]
    assert cases[0]["file"] == "blocks.yaml" and cases[0]["text"].startswith("blocks.yaml:4:")
    data = json.loads(CliRunner().invoke(app, ["lint", "net.yaml", "--format", "json", "--no-config"]).stdout)
    assert [(f["path"], f["spec"]) for f in data["findings"]] == [("blocks.yaml", "net.yaml")]


def test_cli_formats_on_real_findings(tmp_path, monkeypatch):
    """`convcalc lint --format X` on a broken spec and a clean one: every document passes its consumer's check."""
    from typer.testing import CliRunner

    from convcalc.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "bad.yaml").write_text(
        "input: [3, 8, 8]\nlayers:\n  - type: Conv2d\n    out_channels: 4\n    kernal_size: 3\n", encoding="utf-8")
    (tmp_path / "specs" / "good.yaml").write_text(
        "input: [3, 8, 8]\nlayers:\n  - type: ReLU\n", encoding="utf-8")
    runner = CliRunner()
    outputs = {}
    for fmt in ("github", "sarif", "junit"):
        result = runner.invoke(app, ["lint", "specs", "--format", fmt, "--no-config"])
        assert result.exit_code == 1, result.output          # the unknown argument is an error
        outputs[fmt] = result.stdout
    command, properties, message = runner_parse(next(
        line for line in outputs["github"].splitlines() if line.startswith("::error")))
    assert properties["file"] == "specs/bad.yaml" and properties["line"] == "5" and "kernal_size" in message
    log = json.loads(outputs["sarif"])
    _validate_sarif(log)
    assert {a["location"]["uri"] for a in log["runs"][0]["artifacts"]} == {"specs/bad.yaml", "specs/good.yaml"}
    statuses = {(c["suite"], c["status"]) for c in _gitlab_cases(outputs["junit"])}
    assert ("specs/bad.yaml", "failed") in statuses and ("specs/good.yaml", "failed") not in statuses
    assert {suite for suite, _ in statuses} == {"specs/bad.yaml", "specs/good.yaml"}
