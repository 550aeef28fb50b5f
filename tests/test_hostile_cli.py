"""Hostile input at the CLI's surface (issue 16): user strings reach the terminal as text, never as Rich markup; the
lint gate never passes a file it could not check; a bare or unknown command is an error.

Each test fails on the code before its fix: Rich parsed a spec named ``[/]`` as a closing tag (MarkupError
traceback from ``rf``/``run``) and a layer named ``[bold]x`` lost its brackets; ``lint`` skipped YAML files it could
not read as specs (capitalised keys, an empty file) and passed a directory holding none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
RUNNER = CliRunner()

MARKUP_NAMES = ["[/]", "[bold]x[/bold]", "[link=https://example.com]y[/link]", "a[red]b", "[b]"]


def invoke(*args: str):
    return RUNNER.invoke(app, list(args))


def spec_named(tmp_path: Path, name: str, layer: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: {json.dumps(name)}\ninput: [1, 12, 12]\nlayers:\n"
                    f"  - {{type: Conv2d, out_channels: 2, kernel_size: 3, name: {json.dumps(layer)}}}\n"
                    "  - {type: ReLU}\n")
    return path


@pytest.mark.parametrize("name", MARKUP_NAMES)
@pytest.mark.parametrize("command", [("analyze",), ("analyze", "--depth", "1"), ("analyze", "--format", "markdown"),
                                     ("run",), ("rf",), ("rf", "--unit", "0,0"), ("rf", "--verify"), ("lint",)])
def test_user_strings_are_never_markup(tmp_path, name, command):
    spec = spec_named(tmp_path, name, "conv")       # layer names may not hold brackets; spec names may
    result = invoke(command[0], str(spec), *command[1:])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if command in (("analyze",), ("analyze", "--depth", "1"), ("run",), ("rf",)):    # those that show the name
        assert name in result.stdout.replace("\n", ""), result.stdout


def test_markup_in_the_spec_name_is_printed_literally_in_titles(tmp_path):
    spec = spec_named(tmp_path, "[bold]net[/bold]", "conv")
    result = invoke("rf", str(spec))
    assert result.exit_code == 0, result.output
    assert "receptive-field growth of '[bold]net[/bold]' up to" in result.stdout
    result = invoke("run", str(spec))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[bold]net[/bold]: built-in test image")


def test_layer_docs_keep_their_brackets():
    """`convcalc layers` rendered registry text as markup: PixelShuffle's `out[c, h·r+a, w·r+b]` vanished."""
    result = invoke("layers", "--long")
    assert result.exit_code == 0
    assert "out[c, h·r+a, w·r+b]" in result.stdout.replace("\n", "").replace("│", "").replace("  ", " ") or \
        "out[c," in result.stdout


# --------------------------------------------------------------------------- lint never passes what it cannot check

def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


GOOD = "input: [1, 8, 8]\nlayers:\n  - {type: Conv2d, out_channels: 1, kernel_size: 3}\n"


@pytest.mark.parametrize("text, message", [
    ("Input: [1, 8, 8]\nLayers:\n  - {type: ReLU}\n",
     "not a convcalc spec: no top-level 'input' and 'layers' keys (keys are case-sensitive: found 'Input', 'Layers')"),
    ("", "the file is empty: a spec needs top-level 'input' and 'layers' keys"),
    ("# only a comment\n", "the file is empty: a spec needs top-level 'input' and 'layers' keys"),
    ("jobs: {build: 1}\n", "not a convcalc spec: no top-level 'input' and 'layers' keys (found 'jobs')"),
    ("- 1\n- 2\n", "not a convcalc spec: a spec is a mapping with top-level 'input' and 'layers' keys, this file"
                   " holds a list"),
])
def test_a_yaml_file_that_is_no_spec_fails_the_gate(tmp_path, text, message):
    write(tmp_path / "good.yaml", GOOD)
    write(tmp_path / "bad.yaml", text)
    result = invoke("lint", str(tmp_path), "--no-config", "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    bad = [f for f in data["findings"] if f["path"].endswith("bad.yaml")]
    assert [(f["rule"], f["severity"]) for f in bad] == [("CC101", "error")]
    assert bad[0]["message"].startswith(message)
    assert data["summary"]["files"] == 2


def test_a_directory_without_specs_is_an_error(tmp_path):
    write(tmp_path / "README.md", "no specs here\n")
    result = invoke("lint", str(tmp_path), "--no-config")
    assert result.exit_code == 2
    assert f"no *.yaml/*.yml spec files to check under {tmp_path}" in result.stderr


def test_excluded_and_hidden_files_are_skipped_and_counted(tmp_path):
    write(tmp_path / "good.yaml", GOOD)
    write(tmp_path / "ci" / "workflow.yml", "jobs: {}\n")
    write(tmp_path / "legacy" / "old.yaml", "Input: [1]\n")
    write(tmp_path / ".hidden" / "x.yaml", "jobs: {}\n")
    result = invoke("lint", str(tmp_path), "--no-config", "--exclude", "ci/*", "--exclude", "**/old.yaml")
    assert result.exit_code == 0, result.output
    assert "1 spec checked, 3 skipped (hidden or excluded)" in result.stdout
    data = json.loads(invoke("lint", str(tmp_path), "--no-config", "--exclude", "ci/*", "--exclude", "legacy/*",
                             "--format", "json").stdout)
    assert data["summary"]["skipped"] == 3 and len(data["skipped"]) == 3
    # without the excludes the two non-specs fail the gate
    assert invoke("lint", str(tmp_path), "--no-config").exit_code == 1


def test_exclude_in_the_settings(tmp_path):
    write(tmp_path / "good.yaml", GOOD)
    write(tmp_path / "mkdocs.yml", "site_name: x\n")
    write(tmp_path / "pyproject.toml", '[tool.convcalc.lint]\nexclude = ["mkdocs.yml"]\n')
    result = invoke("lint", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "1 skipped" in result.stdout
    write(tmp_path / "pyproject.toml", '[tool.convcalc.lint]\nexclude = [1]\n')
    bad = invoke("lint", str(tmp_path))
    assert bad.exit_code == 2 and "exclude must be a glob pattern or a list of them, got [1]" in bad.stderr


def test_everything_excluded_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", GOOD)
    result = invoke("lint", str(tmp_path), "--no-config", "--exclude", "*.yaml")
    assert result.exit_code == 2
    assert "no *.yaml/*.yml spec files to check" in result.stderr and "(1 skipped: hidden or excluded)" in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_lint_of_a_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "convcalc", "lint", str(fifo)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().endswith(f"cannot read {fifo}: not a regular file")


# --------------------------------------------------------------------------- exit codes of the command line itself

@pytest.mark.parametrize("args", [[], ["frobnicate"], ["analyze"], ["analyze", "x.yaml", "--format", "nope"],
                                  ["lint", "--fail-on"]])
def test_usage_errors_exit_2(args):
    result = invoke(*args)
    assert result.exit_code == 2, (args, result.output)


def test_a_bare_convcalc_exits_2_in_a_real_process():
    done = subprocess.run([sys.executable, "-m", "convcalc"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert "Usage" in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr


def test_emoji_codes_in_user_strings_stay_text(tmp_path):
    """Rich turned ':100:' into an emoji: 'net.yaml:100:5' in messages, a spec named 'v:100:' in titles."""
    spec = spec_named(tmp_path, "v:100:x:smile:", "conv")
    for command in (("analyze",), ("run",), ("rf",)):
        result = invoke(command[0], str(spec))
        assert result.exit_code == 0, result.output
        assert "v:100:x:smile:" in result.stdout, (command, result.stdout)


@pytest.mark.parametrize("width", [60, 80, 100, 160])
@pytest.mark.parametrize("spec", ["resnet50", "tfslim/inception_v3", "unet"])
def test_the_analyze_table_fits_the_width_and_never_crops_a_number(spec, width, monkeypatch):
    """COLUMNS was ignored when piped (lines of 131+ characters at 80); now columns are left out (RF padding
    first) and long names shortened in the middle until the table fits, and every number stays whole."""
    import convcalc

    monkeypatch.setenv("COLUMNS", str(width))
    result = invoke("analyze", str(ROOT / "specs" / f"{spec}.yaml"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    summary = convcalc.analyze(convcalc.load_spec(ROOT / "specs" / f"{spec}.yaml"))
    body = [line for line in lines if line.startswith("│")]
    assert len(body) == len(summary.layers)
    for line, layer in zip(body, summary.layers):
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        assert f"{layer.params:,}" in cells and f"{layer.macs:,}" in cells, line
    if width < 131:
        assert f"left out to fit {width} columns: RF padding" in result.stdout
