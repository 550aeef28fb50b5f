"""The model zoo inside the package (issue 18): the wheel carries every spec of specs/ as convcalc/zoo/, a bare name
finds it from any directory, and the sdist holds everything the tests need.

The wheel and the sdist are built for real (setuptools' PEP 517 hooks, in a child process, as pip would), the wheel
unpacked into an empty directory and used from another empty directory, so nothing of the checkout is in view.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import convcalc
from convcalc.errors import ConvcalcError
from convcalc.spec.zoo import spec_location, zoo_names

try:
    import tomllib
except ModuleNotFoundError:      # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p.relative_to(ROOT / "specs").as_posix() for p in (ROOT / "specs").rglob("*.yaml"))


def fresh_checkout(directory: Path) -> Path:
    """The repository's tracked files (as they are in the working tree) copied into ``directory``, as a fresh
    clone has them: no build/ or *.egg-info of earlier builds, whose SOURCES.txt setuptools would add to the
    sdist (it hid a file MANIFEST.in left out). The repository itself where it is no git checkout."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        return ROOT
    for name in filter(None, tracked.stdout.split("\0")):
        source, target = ROOT / name, directory / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return directory


def build(hook: str, directory: Path) -> Path:
    """Run setuptools' ``build_wheel``/``build_sdist`` hook in a fresh copy of the repository (a child process)
    into ``directory``."""
    source = fresh_checkout(directory / "source")
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(directory)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return directory / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build("build_wheel", tmp_path_factory.mktemp("wheel"))


def test_the_package_list_is_every_stage_and_the_zoo():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    folders = sorted(".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "convcalc").rglob("__init__.py"))
    assert sorted(listed) == sorted([*folders, "convcalc.zoo"])


def test_the_wheel_carries_every_spec_once(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n[len("convcalc/zoo/"):] for n in names if n.startswith("convcalc/zoo/")) == SPECS
    assert not [n for n in names if n.startswith("specs/")]


def test_the_wheel_metadata_names_the_license_and_the_one_version(wheel):
    """PEP 639: the licence as an SPDX expression with its file; the version is convcalc._version's, not a copy."""
    archive = zipfile.ZipFile(wheel)
    metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    headers = archive.read(metadata).decode()
    assert "License-Expression: MIT" in headers.splitlines()
    assert f"Version: {convcalc.__version__}" in headers.splitlines()
    assert "Classifier: Environment :: Console" in headers.splitlines()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())
    assert 'version = "' not in (ROOT / "pyproject.toml").read_text()


def test_an_installed_wheel_answers_a_bare_name_from_an_empty_directory(wheel, tmp_path):
    site, work = tmp_path / "site", tmp_path / "work"
    site.mkdir()
    work.mkdir()
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import json, convcalc; from convcalc.cli import app; import sys\n"
            "s = convcalc.analyze(convcalc.build_graph(convcalc.load_spec('resnet50')))\n"
            "print(json.dumps([convcalc.__file__, s.totals.params]))\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    where, params = json.loads(done.stdout)
    assert Path(where).is_relative_to(site) and params == 25_557_032      # torchvision's resnet50
    cli = subprocess.run([sys.executable, "-m", "convcalc", "analyze", "tfslim/vgg_16", "--format", "json"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["name"] == "vgg_16"


def test_the_sdist_holds_what_the_tests_need(tmp_path):
    sdist = build("build_sdist", tmp_path)
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: the files to expect are git's")
    # every file of the repository but git's own (tests/test_ci_integration.py reads .pre-commit-hooks.yaml, which
    # the sdist lacked), so that the tests run from the unpacked sdist
    needed = [f for f in tracked.stdout.splitlines() if f != ".gitignore"]
    assert [f for f in needed if f not in names] == []
    assert "README.md" in names and "pyproject.toml" in names and "LICENSE" in names


# --------------------------------------------------------------------------- the name rule

def test_every_shipped_spec_has_a_zoo_name():
    assert zoo_names() == [s[:-len(".yaml")] for s in SPECS if not s.startswith("blocks/")]
    assert zoo_names(libraries=True) == [s[:-len(".yaml")] for s in SPECS]


def test_a_spec_anywhere_includes_a_zoo_block_library(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(
        "input: [16, 32, 32]\nargs: {width_mult: 1.0}\ninclude: zoo:blocks/mobilenet_v3\nlayers:\n"
        "  - {name: b, type: InvertedResidual, k: 3, exp: 64, c: 16, se: true, act: Hardswish}\n")
    summary = convcalc.analyze(convcalc.build_graph(convcalc.load_spec("mine.yaml")))
    assert summary.output_shape == (16, 32, 32) and summary.layer("b.block.2.fc1").output_shape == (16, 1, 1)
    (tmp_path / "bad.yaml").write_text("input: [3, 8, 8]\ninclude: zoo:blocks/nothing\nlayers: [{type: ReLU}]\n")
    with pytest.raises(ConvcalcError) as info:
        convcalc.load_spec("bad.yaml")
    assert str(info.value) == ("bad.yaml:2:10: include 'zoo:blocks/nothing': the zoo has no file 'blocks/nothing';"
                               " its block libraries: zoo:blocks/mobilenet_v3")


def test_a_file_in_the_working_directory_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet50").write_text("input: [3, 8, 8]\nlayers: [{type: ReLU}]\n")
    assert spec_location("resnet50") == Path("resnet50")
    assert convcalc.load_spec("resnet50").input_shape == (3, 8, 8)
    assert spec_location("zoo:resnet50") == ROOT / "specs" / "resnet50.yaml" or \
        spec_location("zoo:resnet50").name == "resnet50.yaml"


@pytest.mark.parametrize("name, message", [
    ("resnet5", "no spec file 'resnet5' and no zoo model 'resnet5'; did you mean resnet50, resnet18, lenet5?"
                " (convcalc zoo lists them)"),
    ("zoo:nothing_like_it", "no zoo model 'nothing_like_it'; the zoo has: "),
])
def test_an_unknown_name_names_the_closest_models(name, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConvcalcError) as info:
        convcalc.load_spec(name)
    assert info.value.message.startswith(message)


def test_a_missing_yaml_path_is_a_file_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert spec_location("mine.yaml") == Path("mine.yaml")
    assert spec_location("resnet50.yaml").parent.name in ("specs", "zoo")
    assert spec_location("sub/dir") == Path("sub/dir")


# --------------------------------------------------------------------------- convcalc zoo

def zoo_cli(*args: str, columns: int = 200):
    from typer.testing import CliRunner
    from convcalc.cli import app
    return CliRunner().invoke(app, ["zoo", *args], env={"COLUMNS": str(columns)})


def test_zoo_lists_every_model_with_its_analysis_and_meets_every_promise():
    done = zoo_cli("--format", "json")
    assert done.exit_code == 0, done.output
    models = {m["name"]: m for m in json.loads(done.output)["models"]}
    assert sorted(models) == zoo_names()
    resnet = models["resnet50"]
    assert (resnet["params"], resnet["input_shape"]) == (25_557_032, [3, 224, 224])   # torchvision's
    # torchvision's ResNet-50 at layer4: 427 (tests/test_published_rf.py derives it; Araujo et al. give 483 for TF-slim's)
    assert (resnet["rf_layer"], resnet["rf"]["size"]) == ("layer4.2.relu_3", [427, 427])
    promised = [m for m in models.values() if m["expect_met"] is not None]
    assert promised and all(m["expect_met"] for m in promised), [m["name"] for m in promised if not m["expect_met"]]


@pytest.mark.parametrize("columns", [60, 80, 100, 160])
def test_the_zoo_table_fits_the_terminal_and_keeps_numbers_whole(columns, monkeypatch):
    import convcalc.cli.zoo as command
    monkeypatch.setattr(command, "zoo_names", lambda: ["resnet50", "lraspp_mobilenet_v3_large", "c3d"])
    done = zoo_cli(columns=columns)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert max(len(line) for line in lines) <= columns
    shown = ("25,557,032", "4.089", *(["3×16×112×112"] if columns > 60 else []), "lraspp_mobilenet_v3_large"[:10])
    for number in shown:
        assert any(number in line for line in lines), number
    full = max(len(line) for line in zoo_cli("--wide", columns=columns).output.splitlines())
    assert ("left out" in done.output) == (columns < full)
    if columns == 60:       # the names stay whole: the input shapes go before a name is cut below 20 characters
        assert any("lraspp_mobilenet_v3_large" in line for line in lines)
        assert "left out to fit 60 columns: published, RF layer, RF, input (--wide" in " ".join(done.output.split())


def test_zoo_name_prints_the_spec_to_copy():
    done = zoo_cli("resnet50")
    assert done.exit_code == 0 and done.output == (ROOT / "specs" / "resnet50.yaml").read_text()
    missing = zoo_cli("resnet5")
    assert missing.exit_code == 2 and "did you mean resnet50" in missing.output
