"""The package's layout keeps its design: stages that import only the stages before them, small modules, a thin CLI
over the library, and README examples that run.

Read from the source with `ast` (no import of the package is needed to check the imports), so an upward import
inside a function body, where a lazy import would hide it from a test that only imports modules, is caught too.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "convcalc"

# The stages in data-flow order: a module may import its own stage and the ones before it, never a later one.
STAGES = ("errors", "algebra", "kernels", "layers", "spec", "analysis", "execution", "proof", "lint", "importers",
          "report", "cli")
BASE = {"_version": 0, "errors": 0, "_numpy": 0}   # convcalc/_version.py, errors.py and _numpy.py (NumPy on first use): every stage may import them
MAX_LINES = 500
MAX_COMMAND_LINES = 60


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> int | None:
    """The rank of ``convcalc.<stage>...`` in STAGES; None for the package root (the public API, imports anything)."""
    parts = module.split(".")
    if parts[0] != "convcalc":
        raise ValueError(module)
    if len(parts) == 1:
        return None
    if parts[1] in BASE:
        return BASE[parts[1]]
    return STAGES.index(parts[1])


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every convcalc import in the file, at any depth (lazy imports too). For
    ``from . import x`` the module is ``<package>.x`` when that is a module, else the package."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "convcalc"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "convcalc":
                continue
            if node.module is None or target == "convcalc":
                for alias in node.names:     # from . import analyze, run  /  from .. import x
                    candidate = f"{target}.{alias.name}"
                    is_module = (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                        (ROOT / Path(*candidate.split("."))).is_dir()
                    found.append((node.lineno, candidate if is_module else target))
            else:
                found.append((node.lineno, target))
    return found


def test_every_module_belongs_to_a_stage():
    strays = [module_name(p) for p in modules() if module_name(p) != "convcalc"
              and module_name(p).split(".")[1] not in (*STAGES, *BASE, "__main__")]
    assert not strays, f"modules outside the stages {STAGES}: {strays}"


def test_no_stage_imports_a_later_stage():
    upward = []
    for path in modules():
        here = module_name(path)
        if here in ("convcalc", "convcalc.__main__"):
            continue
        rank = stage_of(here)
        for line, target in imported_modules(path):
            their = stage_of(target)
            if their is None:
                upward.append(f"{path.relative_to(ROOT)}:{line}: imports the package root ({target}); import the"
                              " module that defines the name")
            elif their > rank:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {here} (stage {STAGES[rank] if rank else 'base'})"
                              f" imports {target} (the later stage {STAGES[their]})")
    assert not upward, "\n".join(upward)


def test_the_import_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a lazy import of the CLI inside a layer unit is reported."""
    fake_root = tmp_path / "root"
    layers = fake_root / "convcalc" / "layers"
    layers.mkdir(parents=True)
    (fake_root / "convcalc" / "__init__.py").write_text("")
    (fake_root / "convcalc" / "cli").mkdir()
    (fake_root / "convcalc" / "cli" / "__init__.py").write_text("")
    (layers / "__init__.py").write_text("")
    (layers / "bad.py").write_text("def f():\n    from ..cli import app\n    from ..algebra import shapes\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    found = imported_modules(layers / "bad.py")
    assert found == [(2, "convcalc.cli"), (3, "convcalc.algebra")]
    assert stage_of("convcalc.cli") > stage_of("convcalc.layers.bad") > stage_of("convcalc.algebra")


def test_no_module_over_the_line_budget():
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them along their seams): {long}"


def test_every_stage_says_what_it_owns():
    for stage in STAGES[1:]:
        doc = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))
        assert doc and len(doc) > 150, f"convcalc/{stage}/__init__.py needs a docstring saying what the stage owns"
        assert "import" in doc, f"convcalc/{stage}/__init__.py's docstring must say what the stage may import"


@pytest.mark.parametrize("module, command", [("analyze", "analyze_command"), ("run", "run_command"),
                                             ("rf", "rf_command"), ("lint", "lint_command")])
def test_cli_commands_are_thin(module, command):
    """A command's body (after its signature and docstring) only parses, calls the library, renders and exits."""
    tree = ast.parse((PACKAGE / "cli" / f"{module}.py").read_text())
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == command)
    body = function.body[1:] if ast.get_docstring(function) else function.body
    lines = body[-1].end_lineno - body[0].lineno + 1
    assert lines <= MAX_COMMAND_LINES, f"{command} has a {lines}-line body"


# --------------------------------------------------------------------------- README's library examples

def readme_library_examples() -> list[str]:
    """The ```python blocks of the README's "Library use" section."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Library use\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Library use' section"
    return re.findall(r"```python\n(.*?)```", section.group(1), re.S)


def test_readme_has_library_examples():
    blocks = readme_library_examples()
    joined = "\n".join(blocks)
    for call in ("load_spec", "analyze(", "convcalc.run(", "study_fields(", "lint_paths("):
        assert call in joined, f"README's library examples do not show {call}"


@pytest.mark.parametrize("index", range(len(readme_library_examples())))
def test_readme_library_example_runs(index, monkeypatch, tmp_path):
    """Each example runs as written from an empty directory (its names are the zoo's, as a user of the installed
    package has them), with its own asserts."""
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_library_examples()[index], f"README.md library example {index + 1}", "exec"), {})


def test_the_readme_counts_the_layer_types():
    from convcalc.layers import layer_types
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"\n{len(layer_types())} types, each one unit" in readme
