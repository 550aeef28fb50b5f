"""The pre-commit hook manifest and the README's CI/editor snippets: well-formed, and pointing at what exists."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from convcalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
# pre-commit's manifest: required keys and the languages it knows (pre_commit/clientlib.py, pre_commit/languages)
REQUIRED_HOOK_KEYS = {"id", "name", "entry", "language"}
PRE_COMMIT_LANGUAGES = {"conda", "coursier", "dart", "docker", "docker_image", "dotnet", "fail", "golang", "haskell",
                        "julia", "lua", "node", "perl", "pygrep", "python", "r", "ruby", "rust", "script", "swift",
                        "system", "unsupported", "unsupported_script"}


def _hooks() -> list[dict]:
    return yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def test_pre_commit_manifest_is_well_formed():
    hooks = _hooks()
    assert isinstance(hooks, list) and len(hooks) == 1
    hook = hooks[0]
    assert REQUIRED_HOOK_KEYS <= set(hook)
    assert hook["id"] == "convcalc-lint" and hook["language"] in PRE_COMMIT_LANGUAGES
    assert hook["pass_filenames"] is True


def test_pre_commit_entry_runs_the_lint_command():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    program, command = _hooks()[0]["entry"].split()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert program in scripts
    assert CliRunner().invoke(app, [command, "--help"]).exit_code == 0


@pytest.mark.parametrize("path, linted", [
    ("specs/resnet50.yaml", True), ("models/a/b.yml", True), ("x.yaml", True),
    (".github/workflows/ci.yml", False), ("sub/.github/x.yaml", False), (".convcalc.yaml", False),
    ("project/.convcalc.yml", False), (".pre-commit-config.yaml", False), (".pre-commit-hooks.yaml", False),
    ("README.md", False), ("pyproject.toml", False), ("specs/yaml", False),
])
def test_pre_commit_file_selection(path, linted):
    """pre-commit keeps a file when re.search(files) matches and re.search(exclude) does not."""
    hook = _hooks()[0]
    assert (bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)) is linted


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_readme_snippets_parse():
    section = _section("Lint in CI and editors")
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    kinds = [kind for kind, _ in blocks]
    assert kinds.count("yaml") >= 4 and "json" in kinds
    for kind, body in blocks:
        if kind == "yaml":
            yaml.safe_load(body.replace("<URL of the convcalc repository>", "https://example.invalid/convcalc"))
        elif kind == "json":
            json.loads(body)
    workflow = yaml.safe_load(blocks[0][1])
    steps = workflow["jobs"]["lint"]["steps"]
    assert any("--format github" in step.get("run", "") for step in steps)
    assert any(step.get("uses", "").startswith("github/codeql-action/upload-sarif@") for step in steps)
    hook = yaml.safe_load(blocks[2][1].replace("<URL of the convcalc repository>", "x"))["repos"][0]["hooks"][0]
    assert hook["id"] == _hooks()[0]["id"]
