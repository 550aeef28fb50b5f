"""The library takes an ONNX model's path where the CLI does (issue 19): `convcalc.run("model.onnx")` imports it in
memory and runs it with its own initializers, `convcalc.study_fields("model.onnx")` studies its fields. The oracle
is onnxruntime on the same file, and the spec the model was exported from."""

from pathlib import Path

import numpy as np
import pytest

import convcalc

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """lenet5 exported with weights that are not convcalc's seeded defaults (so running the model with its own
    initializers, and not with a seed, is what is tested)."""
    from convcalc.importers.onnx_export import export_onnx

    from convcalc.execution.weights import expected_keys

    graph = convcalc.build_graph(convcalc.load_spec(SPECS / "lenet5.yaml"))
    rng = np.random.default_rng(7)
    weights = {key: (rng.standard_normal(shape) * 0.1).astype(np.float32)
               for key, shape in expected_keys(convcalc.analyze(graph)).items()}
    path = tmp_path_factory.mktemp("onnx") / "lenet5.onnx"
    path.write_bytes(export_onnx(graph, weights, seed=3))
    return path


def test_run_takes_an_onnx_path_and_its_own_weights(model):
    checked = convcalc.run(model)
    assert checked.ok
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((2, *checked.summary.input_shape)).astype(np.float32)
    checked = convcalc.run(model, x)
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(checked.output, expected, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(expected).max())))


def test_run_of_an_onnx_path_differs_from_the_seeded_spec(model):
    """The model's initializers are used, not convcalc's seeded initialisation of the same architecture."""
    from_model = convcalc.run(model, rf_check=False).output
    seeded = convcalc.run(SPECS / "lenet5.yaml", seed=0, rf_check=False).output
    assert from_model.shape == seeded.shape
    assert not np.allclose(from_model, seeded)


def test_study_fields_takes_an_onnx_path(model):
    study = convcalc.study_fields(model)
    spec_study = convcalc.study_fields(SPECS / "lenet5.yaml")
    assert study.summary.totals.params == spec_study.summary.totals.params
