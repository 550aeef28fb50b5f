"""`convcalc lint`'s engine and command: paths, configuration, inline suppressions, exit codes, text and JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.lint import RULES, LintConfig, LintConfigError, Severity, find_config, lint_paths, load_config
from convcalc.lint.suppress import parse_suppressions

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "lint_fixtures"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def lint(runner: CliRunner, *args: str):
    return runner.invoke(app, ["lint", *args])


def copy(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


# --------------------------------------------------------------------------- suppressions

def test_inline_suppressions():
    report = lint_paths([FIXTURES / "suppressed.yaml"], LintConfig())
    # 'a' (same line) and 'b' (directive on the line before) are suppressed; 'c' disables another rule only;
    # the whole file disables rf-coverage
    assert [(f.rule, f.layer, f.line) for f in report.findings] == [("CC201", "c", 8)]


def test_suppression_parser():
    text = ("a: 1  # convcalc: disable=CC201, CC202\n"
            "# convcalc: disable=noop-layer\n"
            "\n"
            "b: '# convcalc: disable=CC207'   # not in a comment\n"
            "# convcalc: disable-file=CC2\n")
    parsed = parse_suppressions(text)
    assert parsed.lines[1] == {"CC201", "CC202"}
    assert parsed.lines[4] == {"CC302"}                                 # the next line with content
    assert parsed.whole_file == {r.id for r in RULES if r.id.startswith("CC2")}
    assert 2 not in parsed.lines and 3 not in parsed.lines


# --------------------------------------------------------------------------- configuration

def test_config_select_ignore_severity():
    name = [FIXTURES / "dropped_pixels.yaml"]
    assert {f.rule for f in lint_paths(name, LintConfig(select=("CC2",))).findings} == {"CC201"}
    assert {f.rule for f in lint_paths(name, LintConfig(ignore=("dropped-pixels",))).findings} == {"CC301"}
    raised = lint_paths(name, LintConfig(severity={"CC201": Severity.error})).findings
    assert {f.severity for f in raised if f.rule == "CC201"} == {Severity.error}


def test_pyproject_is_found_walking_up(tmp_path, runner):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.convcalc.lint]\nignore = ["CC301"]\n'
                                             'fail-on = "warning"\n\n[tool.convcalc.lint.severity]\nCC303 = "error"\n')
    nested = tmp_path / "models" / "deep"
    nested.mkdir(parents=True)
    copy(nested, "dropped_pixels.yaml", "asymmetric.yaml")
    config = find_config(nested / "dropped_pixels.yaml")
    assert config.source == str(tmp_path / "pyproject.toml")
    assert config.fail_on is Severity.warning and config.severity == {"CC303": Severity.error}
    result = lint(runner, str(nested))
    assert result.exit_code == 1, result.output
    assert "CC301" not in result.stdout and "CC201" in result.stdout
    assert "error   CC303" in result.stdout
    # --no-config: the defaults (fail on errors only; CC303 is info)
    assert lint(runner, str(nested), "--no-config", "--ignore", "CC303").exit_code == 0


def test_convcalc_yaml_and_explicit_config(tmp_path, runner):
    copy(tmp_path, "dropped_pixels.yaml")
    (tmp_path / ".convcalc.yaml").write_text("lint:\n  select: [CC201]\n  fail_on: warning\n")
    config = find_config(tmp_path)
    assert config.select == ("CC201",) and config.fail_on is Severity.warning
    assert lint(runner, str(tmp_path)).exit_code == 1
    other = tmp_path / "other.toml"
    # a 7x7 field of a 226x225 input covers 49/50850 = 0.096 % of its area: above 0.05 %
    other.write_text("[tool.convcalc.lint]\nrf-min-coverage = 0.0005\n")
    assert load_config(other).rf_min_coverage == 0.0005
    result = lint(runner, str(tmp_path / "dropped_pixels.yaml"), "--config", str(other), "--format", "json")
    assert result.exit_code == 0 and "CC301" not in result.stdout


@pytest.mark.parametrize("text, message", [
    ("[tool.convcalc.lint]\nselectt = ['CC2']\n", "unknown lint setting 'selectt'; did you mean 'select'?"),
    ("[tool.convcalc.lint]\nignore = ['CC999']\n", "unknown lint rule 'CC999'"),
    ("[tool.convcalc.lint]\nfail-on = 'fatal'\n", "fail-on must be one of error, warning, info; got 'fatal'"),
    ("[tool.convcalc.lint]\nrf-min-coverage = 2\n", "rf-min-coverage must be a number from 0 to 1, got 2"),
])
def test_bad_config_is_a_usage_error(tmp_path, runner, text, message):
    config = tmp_path / "pyproject.toml"
    config.write_text(text)
    with pytest.raises(LintConfigError, match=message.replace("?", r"\?")):
        load_config(config)
    copy(tmp_path, "rf_coverage.yaml")
    result = lint(runner, str(tmp_path))
    assert result.exit_code == 2 and message in result.stderr


# --------------------------------------------------------------------------- paths and exit codes

def test_paths_directories_and_globs(tmp_path, runner):
    copy(tmp_path, "rf_coverage.yaml", "invalid.yaml")
    (tmp_path / "blocks.yaml").write_text("blocks:\n  B: {layers: [{type: ReLU}]}\n")    # a block library: checked
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yml").write_text("on: push\njobs: {}\n")                        # hidden: skipped
    report = lint_paths([tmp_path], LintConfig())
    assert [Path(f).name for f in report.files] == ["blocks.yaml", "invalid.yaml", "rf_coverage.yaml"]
    assert [Path(f).name for f in report.skipped] == ["ci.yml"]
    report = lint_paths([str(tmp_path / "*.yaml")], LintConfig())
    assert sorted(Path(f).name for f in report.files) == ["blocks.yaml", "invalid.yaml", "rf_coverage.yaml"]
    assert lint(runner, str(tmp_path / "nothing_*.yaml")).exit_code == 2
    missing = lint(runner, str(tmp_path / "missing.yaml"))
    assert missing.exit_code == 2 and "no such file or directory" in missing.stderr
    assert lint(runner).exit_code == 2


def test_exit_codes_and_fail_on(runner):
    clean = str(FIXTURES / "expect_clean.yaml")
    warned = str(FIXTURES / "checkerboard.yaml")
    broken = str(FIXTURES / "shape_error.yaml")
    assert lint(runner, clean, "--no-config").exit_code == 0                                    # info only
    assert lint(runner, clean, "--no-config", "--fail-on", "info").exit_code == 1
    assert lint(runner, warned, "--no-config").exit_code == 0
    assert lint(runner, warned, "--no-config", "--fail-on", "warning").exit_code == 1
    assert lint(runner, warned, "--no-config", "--fail-on", "warning", "--ignore", "CC202").exit_code == 0
    assert lint(runner, broken, "--no-config").exit_code == 1
    bad = lint(runner, broken, "--no-config", "--fail-on", "fatal")
    assert bad.exit_code == 2 and "'--fail-on': 'fatal' is not one of 'error', 'warning', 'info'" in bad.stderr


def test_text_output(runner):
    result = lint(runner, str(FIXTURES / "misaligned.yaml"), str(FIXTURES / "shape_error.yaml"), "--no-config")
    lines = result.stdout.splitlines()
    assert lines[0].endswith("misaligned.yaml")
    assert lines[1].split()[:3] == ["7:5", "warning", "CC206"]
    assert any(line.split()[:3] == ["4:49", "error", "CC102"] for line in lines)
    assert lines[-1].startswith("2 specs checked: 1 error, 1 warning, 1 info in 2 files")


def test_json_output(runner):
    result = lint(runner, str(FIXTURES / "dead_layer.yaml"), "--format", "json", "--no-config")
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1
    assert data["files"] == [str(FIXTURES / "dead_layer.yaml")]
    dead = next(f for f in data["findings"] if f["rule"] == "CC207")
    assert dead == {"path": str(FIXTURES / "dead_layer.yaml"), "line": 7, "column": 5, "rule": "CC207",
                    "severity": "warning", "message": dead["message"], "layer": "aux_head",
                    "spec": str(FIXTURES / "dead_layer.yaml")}
    assert data["summary"] == {"files": 1, "skipped": 0, "findings": 2, "error": 0, "warning": 1, "info": 1,
                               "seconds": data["summary"]["seconds"]}
    assert data["skipped"] == []


def test_explain(runner):
    result = lint(runner, "--explain", "CC204")
    assert result.exit_code == 0
    assert result.stdout.startswith("CC204 gridding-hdc (warning)")
    assert "M_2 <= K" in result.stdout and "Fix:" in result.stdout
    assert lint(runner, "--explain", "checkerboard").stdout.startswith("CC202 checkerboard")
    unknown = lint(runner, "--explain", "CC2O1")
    assert unknown.exit_code == 2 and "unknown lint rule 'CC2O1'; did you mean 'CC201'?" in unknown.stderr


def test_machine_formats_render_through_formats_module(runner):
    pytest.importorskip("convcalc.report.lint_formats")
    result = lint(runner, str(FIXTURES / "checkerboard.yaml"), "--format", "github", "--no-config")
    assert result.exit_code == 0
    assert "::warning " in result.stdout and "CC202" in result.stdout


def test_rules_are_documented():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert rule.rationale and rule.fix and rule.summary
        assert f"| {rule.id} |" in readme, rule.id


# --------------------------------------------------------------------------- the shipped specs

def test_shipped_specs_pass(runner):
    result = lint(runner, str(ROOT / "specs"), "--no-config")
    assert result.exit_code == 0, result.stdout
    report = lint_paths([ROOT / "specs"], LintConfig())
    assert not [f for f in report.findings if f.severity is Severity.error]
    # facts about them, checked independently: VGG16's pool5 units see 212x212 (Araujo et al., Distill 2019,
    # table); AlexNet's pool5 195x195 (the same table)
    messages = {(Path(f.path).name, f.rule): f.message for f in report.findings}
    assert "is 212x212" in messages[("vgg16.yaml", "CC301")]
    assert "is 195x195" in messages[("alexnet.yaml", "CC301")]


def test_findings_in_an_included_block_point_at_it(tmp_path):
    (tmp_path / "blocks.yaml").write_text(
        "blocks:\n"
        "  Down:\n"
        "    layers:\n"
        "      - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3, stride: 2}\n")
    spec = tmp_path / "net.yaml"
    spec.write_text("include: blocks.yaml\ninput: [3, 10, 10]\nlayers:\n  - {name: d1, type: Down}\n"
                    "  - {name: d2, type: Down}\n")
    report = lint_paths([spec], LintConfig(select=("CC201",)))
    # 10 -> 4 rows: (10 - 3) mod 2 = 1 drops one; the second use sees 4 -> (4 - 3) mod 2 = 1 as well
    assert [(Path(f.path).name, f.line, f.column, f.layer) for f in report.findings] == [
        ("blocks.yaml", 4, 9, "d1.conv"), ("blocks.yaml", 4, 9, "d2.conv")]
    (tmp_path / "blocks.yaml").write_text((tmp_path / "blocks.yaml").read_text().replace(
        "stride: 2}", "stride: 2}  # convcalc: disable=CC201"))
    assert lint_paths([spec], LintConfig(select=("CC201",))).findings == ()


# --------------------------------------------------------------------------- review of issue 6 (a demanding user)

def test_allow_include_outside_reaches_lint(tmp_path, runner):
    # the error tells the user to pass --allow-include-outside: lint must accept it (as analyze does)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "blocks.yaml").write_text(
        "blocks:\n  Down:\n    layers:\n      - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3,"
        " stride: 2}\n")
    (tmp_path / "models").mkdir()
    spec = tmp_path / "models" / "net.yaml"
    spec.write_text("include: ../shared/blocks.yaml\ninput: [3, 10, 10]\nlayers:\n  - {name: d, type: Down}\n")
    refused = lint(runner, str(spec), "--no-config", "--select", "CC1")
    assert refused.exit_code == 1 and "--allow-include-outside" in refused.stdout
    allowed = lint(runner, str(spec), "--no-config", "--allow-include-outside", "--format", "json")
    assert allowed.exit_code == 0, allowed.output
    found = json.loads(allowed.stdout)["findings"]
    # 10 rows, k 3, stride 2: (10 - 3) mod 2 = 1 row and column dropped, found in the included block (line 4)
    assert [(Path(f["path"]).name, f["line"], f["rule"]) for f in found if f["rule"] != "CC301"] == [
        ("blocks.yaml", 4, "CC201")]
    assert not [f for f in found if f["rule"] == "CC101"]
    assert lint_paths([spec], LintConfig(allow_include_outside=True, select=("CC1",))).findings == ()


@pytest.mark.parametrize("name, text, section", [
    ("other.toml", "[tool.ruff]\nline-length = 100\n", "[tool.convcalc.lint]"),
    ("lint.yaml", "select: [CC1]\n", "'lint:'"),            # settings at the top level instead of under lint:
])
def test_explicit_config_without_lint_section_is_a_usage_error(tmp_path, runner, name, text, section):
    copy(tmp_path, "dropped_pixels.yaml")
    (tmp_path / name).write_text(text)
    with pytest.raises(LintConfigError, match="no .* section"):
        load_config(tmp_path / name)
    result = lint(runner, str(tmp_path / "dropped_pixels.yaml"), "--config", str(tmp_path / name))
    assert result.exit_code == 2 and section in result.stderr


def test_empty_lint_section_in_convcalc_yaml_means_the_defaults(tmp_path):
    # .convcalc.yaml is looked at first; 'lint:' with its settings commented out must not fall through to the
    # pyproject.toml next to it
    (tmp_path / "pyproject.toml").write_text("[tool.convcalc.lint]\nselect = ['CC3']\n")
    (tmp_path / ".convcalc.yaml").write_text("lint:\n  # select: [CC2]\n")
    config = find_config(tmp_path)
    assert config.source == str(tmp_path / ".convcalc.yaml") and config.select == ()


@pytest.mark.parametrize("text", [
    "[tool.convcalc.lint]\nignore = ['CC999']\n",
    "[tool.convcalc.lint]\nselect = ['CC2', 'droped-pixels']\n",
    "[tool.convcalc.lint.severity]\nCC9 = 'error'\n",
])
def test_unknown_rule_in_a_config_file_names_the_file(tmp_path, runner, text):
    (tmp_path / "pyproject.toml").write_text(text)
    copy(tmp_path, "dropped_pixels.yaml")
    result = lint(runner, str(tmp_path))
    assert result.exit_code == 2
    assert str(tmp_path / "pyproject.toml") in result.stderr and "unknown lint rule" in result.stderr
    # a bad rule on the command line is not blamed on a file
    cli = lint(runner, str(tmp_path), "--no-config", "--ignore", "CC999")
    assert cli.exit_code == 2 and "pyproject.toml" not in cli.stderr


def test_suppressions_follow_yaml_comments_not_quote_characters(tmp_path):
    body = ("input: [3, 226, 225]\nlayers:\n"
            "  - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3, stride: 2}\n")
    # an apostrophe in a plain scalar opens no string: the comment after it is a directive
    spec = tmp_path / "apostrophe.yaml"
    spec.write_text("description: Krizhevsky's net  # convcalc: disable-file=CC201\n" + body)
    assert [f.rule for f in lint_paths([spec], LintConfig()).findings] == ["CC301"]
    # '#' inside a block scalar is text, not a comment: it suppresses nothing
    spec = tmp_path / "block_scalar.yaml"
    spec.write_text("description: |\n  To silence it: # convcalc: disable-file=all\n" + body)
    assert sorted(f.rule for f in lint_paths([spec], LintConfig()).findings) == ["CC201", "CC301"]
    assert parse_suppressions("a: |  # convcalc: disable=CC201\n  text\n").lines == {1: {"CC201"}}


def test_command_line_select_overrides_the_configured_ignore(tmp_path, runner):
    # asking for a rule by name on the command line must not answer "no problems" because the file ignores it
    copy(tmp_path, "dropped_pixels.yaml")
    (tmp_path / ".convcalc.yaml").write_text("lint:\n  ignore: [CC201, CC301]\n")
    assert "CC201" not in lint(runner, str(tmp_path)).stdout
    picked = lint(runner, str(tmp_path), "--select", "CC201", "--format", "json")
    # 226 rows, k 3, s 2: (226 - 3) mod 2 = 1 (conv); 112 rows and columns at the pool: (112 - 3) mod 2 = 1
    assert [f["layer"] for f in json.loads(picked.stdout)["findings"]] == ["conv", "pool"]
    # --ignore on the same command line still applies
    both = lint(runner, str(tmp_path), "--select", "CC2,CC3", "--ignore", "CC201", "--format", "json")
    assert [f["rule"] for f in json.loads(both.stdout)["findings"]] == ["CC301"]


def test_a_reason_after_the_suppressed_rules_widens_nothing():
    parsed = parse_suppressions("a: 1  # convcalc: disable=CC201 because all of the border is junk, see CC3\n"
                                "b: 2  # convcalc: disable=CC201 CC303 -- ok for all inputs\n"
                                "# convcalc: disable-file=rf-coverage (the head is trained later on all crops)\n")
    assert parsed.lines == {1: {"CC201"}, 2: {"CC201", "CC303"}}
    assert parsed.whole_file == {"CC301"}


def test_a_block_library_named_explicitly_is_checked_as_an_include(tmp_path, runner):
    # pre-commit passes every staged spec-directory file, block libraries included: a valid one is not an error
    # ("the spec needs 'input'"); a broken one is reported where it is broken
    library = tmp_path / "common.yaml"
    library.write_text("blocks:\n  Down:\n    layers:\n      - {name: conv, type: Conv2d, out_channels: 4,"
                       " kernel_size: 3, stride: 2}\n")
    spec = tmp_path / "net.yaml"
    spec.write_text("include: common.yaml\ninput: [3, 9, 9]\nlayers:\n  - {name: d, type: Down}\n")
    result = lint(runner, str(library), str(spec), "--no-config", "--select", "CC1", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"] == []
    assert lint(runner, str(tmp_path / "*.yaml"), "--no-config", "--select", "CC1").exit_code == 0
    library.write_text("blocks:\n  Down:\n    layer:\n      - {type: ReLU}\n")
    (found,) = lint_paths([library], LintConfig()).findings
    assert (found.path, found.line, found.column, found.rule) == (str(library), 3, 5, "CC101")
    assert "'layer'" in found.message
    library.write_text("include: missing.yaml\n")
    (found,) = lint_paths([library], LintConfig()).findings
    assert (found.path, found.line, found.rule) == (str(library), 1, "CC101") and "missing.yaml" in found.message


def test_convcalc_yml_spelling_is_found_too(tmp_path):
    # the shipped pre-commit hook treats .convcalc.yml as convcalc's settings file: so must the lint
    (tmp_path / ".convcalc.yml").write_text("lint:\n  ignore: [CC301]\n  fail-on: info\n")
    config = find_config(tmp_path)
    assert config.source == str(tmp_path / ".convcalc.yml")
    assert config.ignore == ("CC301",) and config.fail_on is Severity.info


def test_directories_find_specs_in_flow_style_and_with_quoted_keys(tmp_path):
    (tmp_path / "flow.yaml").write_text('{name: f, input: [1, 8, 8], layers: [{type: ReLU}]}\n')
    (tmp_path / "quoted.yml").write_text('"input": [1, 8, 8]\n"layers":\n  - {type: ReLU}\n')
    report = lint_paths([tmp_path], LintConfig())
    assert [Path(f).name for f in report.files] == ["flow.yaml", "quoted.yml"]
    assert {f.rule for f in report.findings} == {"CC301"}                 # both read and analyzed: one ReLU each
