"""Start-up costs imports only where a command needs them (issue 20): the structure that keeps `convcalc --version`
and `import convcalc` light, checked by which modules a fresh interpreter loaded (never by timing), and the
Pydantic-free conversion of option values checked against Typer's own converter, parameter by parameter."""

from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def loaded_after(code: str, *argv: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code`` (argv: ``argv``)."""
    return {name.split(".")[0] for name in loaded_modules(code, *argv)}


def loaded_modules(code: str, *argv: str) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code`` (argv: ``argv``)."""
    probe = (f"import sys, os, json\nsys.argv = ['convcalc', *{list(argv)!r}]\n"
             "def report():\n"
             "    with open(os.environ['PROBE_OUT'], 'w') as out:\n"
             "        json.dump(sorted(sys.modules), out)\n"
             "os._exit = (lambda real: lambda code: (report(), real(code)))(os._exit)\n"
             f"{code}\nreport()\n")
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"convcalc-probe-{os.getpid()}.json"
    env = {**os.environ, "PROBE_OUT": str(out), "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                  os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    try:
        return set(json.loads(out.read_text()))
    finally:
        out.unlink()


def test_importing_the_library_imports_no_cli_and_no_numpy():
    loaded = loaded_after("import convcalc\nconvcalc.ConvcalcError, convcalc.__version__")
    assert "convcalc" in loaded
    assert not loaded & {"typer", "rich", "click", "numpy", "yaml", "pydantic"}


def test_the_library_still_has_every_name():
    loaded = loaded_after("import convcalc\nassert all(getattr(convcalc, n) is not None for n in convcalc.__all__)")
    assert "numpy" in loaded and "typer" not in loaded and "click" not in loaded     # (to_json's report uses Rich)


def test_version_imports_neither_numpy_nor_typer():
    loaded = loaded_after("from convcalc.cli import main\nmain()", "--version")
    assert not loaded & {"typer", "rich", "click", "numpy", "yaml", "pydantic"}


def test_analyze_and_lint_import_no_pydantic():
    """Typer converts option values with Pydantic; the common values are converted without it (`quick_params`)."""
    for argv in (["analyze", "lenet5", "--set", "num_classes=5"], ["lint", "specs/tiny.yaml", "-j", "1"]):
        loaded = loaded_after("from convcalc.cli import main\nmain()", *argv)
        assert "typer" in loaded and "pydantic" not in loaded, argv
    loaded = loaded_after("from convcalc.cli import main\nmain()", "analyze", "tiny")
    assert "convcalc" in loaded and "onnx" not in loaded and "torch" not in loaded and "PIL" not in loaded


def test_analyze_runs_without_typer_and_json_without_rich():
    """The commonest analyze command lines run without Typer (`cli.direct`), and JSON without Rich."""
    loaded = loaded_after("from convcalc.cli import main\nmain()", "analyze", "tiny", "--format", "json")
    assert "convcalc" in loaded and not {"typer", "rich", "click", "pydantic"} & loaded
    loaded = loaded_after("from convcalc.cli import main\nmain()", "analyze", "tiny", "--depth", "1")
    assert "rich" in loaded and "typer" not in loaded


def test_analyze_never_imports_numpy_and_the_executor_runs_on_the_real_module():
    """The analysis reads no array, so `analyze` never pays NumPy's import (`convcalc._numpy`); the first array a
    run makes puts the real module in place of the stand-in in every module that held it (and for later imports)."""
    for argv in (["analyze", "resnet50"], ["analyze", "inception_v3", "--format", "json"], ["analyze", "unet"]):
        loaded = loaded_after("from convcalc.cli import main\nmain()", *argv)
        assert "convcalc" in loaded and "numpy" not in loaded, argv
    code = ("import numpy, sys\nimport convcalc\nconvcalc.run('tiny', rf_check=False)\n"
            "import convcalc.proof.verify, convcalc._numpy\n"
            "held = [m for m, mod in list(sys.modules.items()) if m.startswith('convcalc') and 'np' in vars(mod)\n"
            "        and vars(mod)['np'] is not numpy]\n"
            "assert not held, held\nassert convcalc._numpy.np is numpy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


def test_each_command_knows_its_module():
    """`convcalc NAME` imports only the module registering NAME (`cli._MODULE_OF`): every command is in the map,
    and its module registers it."""
    code = ("import convcalc.cli as cli\n"
            "names = {i.name for i in cli.app.registered_commands} | {g.name for g in cli.app.registered_groups}\n"
            "assert names == set(cli._MODULE_OF), names ^ set(cli._MODULE_OF)\n"
            "for info in cli.app.registered_commands:\n"
            "    assert info.callback.__module__ == 'convcalc.cli.' + cli._MODULE_OF[info.name], info.name\n")
    loaded_after(code)
    modules = loaded_modules("from convcalc.cli import main\nmain()", "analyze", "lenet5", "--set", "num_classes=5")
    assert "convcalc.cli.analyze" in modules and not {"convcalc.cli.calc", "convcalc.cli.zoo", "convcalc.cli.run",
                                                       "convcalc.cli.lint"} & modules


# --------------------------------------------------------------------------- option values: Typer's answers

def _commands(command, context):
    """(command, its context) for every command of the app, groups included, as Typer builds them."""
    yield command, context
    for name, child in getattr(command, "commands", {}).items():
        child_context = child.context_class(child, info_name=name, parent=context, **child.context_settings)
        yield from _commands(child, child_context)


def _samples(param) -> list:
    values = [None, (), ("a", "b"), ["x"], "", "0", "-0", "7", "19", "20", "021", " 5", "5 ", "+5", "1_0", "1e3",
              "99999999999999999999", "-5", "x", "json", "JSON", "Table", "table", "-", "specs/tiny.yaml",
              "/no/such/file", "a\0b", 5, -3, True, False, 2.5, b"bytes", param.default]
    annotation = param.type_descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        for member in annotation:
            values += [member, member.value, str(member.value).upper()]
    return values


def _outcome(function):
    try:
        value = function()
    except Exception as exc:              # noqa: BLE001 - the error is part of the answer
        return ("error", type(exc).__name__, str(exc))
    return ("value", type(value), value)


def test_quick_conversion_answers_as_typer_does():
    typer_coercion = pytest.importorskip("typer._coercion")
    if not hasattr(typer_coercion, "build_runtime_param"):
        pytest.skip("this Typer converts with click's types (no Pydantic to avoid)")
    import typer

    from convcalc.cli import app
    from convcalc.cli.quick_params import QuickParam, install

    root = typer.main.get_command(app)
    checked = 0
    for command, context in _commands(root, root.context_class(root, info_name="convcalc")):
        install(command)
        for param in command.get_params(context):
            assert isinstance(param._runtime_param, QuickParam), (command.name, param.name)
            full = typer_coercion.build_runtime_param(param.type_descriptor)
            for value in _samples(param):
                quick = _outcome(lambda: param._runtime_param.coerce(value, param=param, ctx=context))
                expected = _outcome(lambda: full.coerce(value, param=param, ctx=context))
                assert quick == expected, (command.name, param.name, value)
                checked += 1
    assert checked > 5000


# --------------------------------------------------------------------------- benchmarks/startup.py

def test_startup_benchmark_runs():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "startup.py"), "--rounds", "1", "--only",
                           "version"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("CPU: ")
    assert any(line.startswith("convcalc --version") for line in lines)
    assert any(line.startswith("python -c 'import numpy'") and line.split()[-3] == line.split()[-1] == "1.00" for line in lines)
