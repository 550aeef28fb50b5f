"""The library calls the CLI wraps (`convcalc.run`, `convcalc.study_fields`, `convcalc.lint.settings_for`): the
command and the call give the same answer, and a command analyses its network once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import convcalc
import convcalc.lint
from convcalc.analysis import summary as summary_module
from convcalc.cli import app
from convcalc.lint import Severity

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture
def analyses(monkeypatch):
    """Counts calls of the analyzer, wherever a module imported it by name."""
    calls = []
    original = summary_module.analyze

    def counted(*args, **kwargs):
        calls.append(args[1] if len(args) > 1 else kwargs.get("input_shape"))
        return original(*args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("convcalc") and getattr(module, "analyze", None) is original:
            monkeypatch.setattr(module, "analyze", counted)
    return calls


def test_run_analyses_once(tmp_path, analyses):
    """`convcalc run` with weights and --topk analysed its network three times; now once."""
    from convcalc.execution.weights import expected_keys

    summary = convcalc.analyze(convcalc.load_spec(SPECS / "tiny.yaml"))
    np.savez(tmp_path / "w.npz", **{key: np.full(shape, 0.01) for key, shape in expected_keys(summary).items()})
    analyses.clear()
    args = ["run", str(SPECS / "tiny.yaml"), "--weights", str(tmp_path / "w.npz"), "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(analyses) == 1


def test_rf_erf_analyses_each_graph_once(tmp_path, analyses):
    """The ERF's samples share one analysis of the truncated network (was one per sample)."""
    result = CliRunner().invoke(app, ["rf", str(SPECS / "tiny.yaml"), "--erf", str(tmp_path / "e.png"),
                                      "--samples", "4", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert len(analyses) == 2      # the whole network, and the part the studied layer depends on


def test_library_run_equals_the_command(tmp_path):
    out = tmp_path / "y.npy"
    result = CliRunner().invoke(app, ["run", str(SPECS / "edges.yaml"), "--output", str(out), "--format", "json",
                                      "--seed", "3", "--dtype", "float64", "--no-tune"])   # the library: the
    # cost model's algorithms (the command's tuner may choose others, whose sums round otherwise)
    assert result.exit_code == 0, result.output
    checked = convcalc.run(SPECS / "edges.yaml", seed=3, dtype="float64")
    assert checked.ok and checked.source == "built-in test image"
    assert np.array_equal(np.load(out), checked.output)
    data = json.loads(result.stdout)
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in checked.layers]


def test_library_run_takes_arrays_specs_and_graphs():
    spec = convcalc.load_spec(SPECS / "edges.yaml")
    x = np.random.default_rng(0).random((3, 40, 30))
    from_array = convcalc.run(spec, x, dtype="float64", rf_check=False)
    from_graph = convcalc.run(convcalc.build_graph(spec), x[None], dtype="float64", rf_check=False)
    assert from_array.output.shape == (1, 1, 40, 30) and from_array.rf_checks is None
    assert np.array_equal(from_array.output, from_graph.output)
    with pytest.raises(convcalc.ConvcalcError, match=r"the input array has shape \[2, 40, 30\]"):
        convcalc.run(spec, x[:2])
    with pytest.raises(convcalc.ConvcalcError, match="NaN/Inf"):
        convcalc.run(spec, np.full((3, 8, 8), np.nan))
    with pytest.raises(convcalc.ConvcalcError, match="need the spec"):
        convcalc.run(convcalc.build_graph(spec), overrides={"x": 1})


def test_library_run_refuses_topk_of_a_non_classifier():
    with pytest.raises(convcalc.ConvcalcError, match="ranks the classes of a classifier"):
        convcalc.run(SPECS / "edges.yaml", topk=3)


def test_study_fields_equals_the_command():
    result = CliRunner().invoke(app, ["rf", str(SPECS / "vgg16.yaml"), "--layer", "features.16", "--unit", "3,5",
                                      "--verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    study = convcalc.study_fields(SPECS / "vgg16.yaml", layer="features.16", unit=(3, 5), verify=True)
    data = json.loads(result.stdout)
    axes = data["region"]["axes"]
    assert [tuple(a["region"]) for a in axes] == [(a.first, a.last) for a in study.region.axes] == [(6, 49), (22, 65)]
    assert data["verify"]["checked"] == len(study.checks) == 17 and all(check.ok for check in study.checks)
    assert study.growth is None and study.erf is None


def test_settings_for_is_what_the_command_uses(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.convcalc.lint]\nignore = ["CC303"]\nfail-on = "warning"\n')
    settings = convcalc.lint.settings_for([str(tmp_path)])
    assert settings.ignore == ("CC303",) and settings.fail_on is Severity.warning
    chosen = convcalc.lint.settings_for([str(tmp_path)], select=["CC303"], fail_on="error")
    assert chosen.ignore == () and chosen.select == ("CC303",) and chosen.fail_on is Severity.error
    assert convcalc.lint.settings_for([str(tmp_path)], no_config=True).ignore == ()
