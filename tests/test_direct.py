"""`convcalc analyze` without Typer (`cli.direct`): the same bytes and exit code as the Typer command for every
command line it takes, and every other command line (and every spec with an error) left to Typer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from convcalc.cli.direct import _options

ROOT = Path(__file__).resolve().parent.parent
MAIN = "import sys; from convcalc.cli import main; sys.exit(main())"
TYPER = "import sys; from convcalc.cli import app; app()"          # the Typer command, never the direct path


def _run(code: str, argv: list[str], columns: str = "100") -> tuple[int, str, str]:
    env = {**os.environ, "COLUMNS": columns, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                 os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("argv", [
    ["analyze", "tiny"],
    ["analyze", "resnet18", "--format", "json"],
    ["analyze", "mobilenet_v1", "--parts", "-f", "markdown"],
    ["analyze", "googlenet", "--depth", "1", "-f", "csv"],
    ["analyze", "densenet121", "--width", "60", "--depth", "2"],
    ["analyze", "unet", "--wide", "--dtype", "float16"],
    ["analyze", "tiny", "-i", "3x64x64"],
    ["analyze", "specs/tiny.yaml", "--allow-include-outside", "-d", "1"],
    ["analyze", "nosuch"],                                   # errors: the direct path declines, Typer says it
    ["analyze", "tiny", "-i", "64x64x64x3"],
    ["analyze", "tiny", "--depth", "0"],
    ["analyze", "tiny", "-f", "json", "--format", "csv"],
    ["analyze", "tiny", "--format=json"],
])
def test_direct_analyze_writes_what_typer_writes(argv):
    assert _run(MAIN, argv) == _run(TYPER, argv)


def test_direct_options_read_only_what_is_certain():
    spec = Path("tiny")
    assert _options(["tiny"]) == {"spec": spec}
    assert _options(["-f", "json", "tiny", "--parts", "--depth", "3", "--width", "20"]) == {
        "format": "json", "spec": spec, "parts": True, "depth": 3, "width": 20}
    for declined in (["tiny", "--format", "JSON"], ["tiny", "--depth", "0"], ["tiny", "--depth", "+1"],
                     ["tiny", "--width", "19"], ["tiny", "--parts", "--parts"], ["tiny", "-f", "json", "-f", "csv"],
                     ["tiny", "--set", "a=1"], ["-"], [], ["tiny", "tiny"], ["tiny", "--format=json"],
                     ["tiny", "-h"], ["tiny", "--dtype", "float128"], ["tiny", "-i", "-3x4x4"], ["tiny", "--"],
                     ["tiny", "--format"], ["a\0b"]):
        assert _options(declined) is None, declined
