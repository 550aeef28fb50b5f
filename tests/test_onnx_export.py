"""The ONNX exporter (`convcalc.importers.onnx_export.export_onnx`, `convcalc export`) against ONNX Runtime.

* Every shipped spec (specs/, specs/tfslim/; not the block libraries) exports, and ONNX Runtime's output equals
  `convcalc run`'s (float32, the same seeded weights) within 1e-5 + 1e-4·max|output|; at small input sizes where
  the spec allows. The exported model's parameters (its initializers less the buffers) are convcalc's params, its
  initializer names the state_dict's keys. The ten slowest (60 M parameters or more, or the deepest at their sizes)
  run only with CONVCALC_ONNX_ALL=1; `REFUSED` lists the shipped specs the exporter refuses, with the message (none).
* Per layer type (tests/onnx_export_cases.py: at least one small spec for every registered type, checked here to
  cover the registry): random weights, batch 2, opsets 13, 18 and 22, float64 convcalc reference.
* The command: exit codes and messages; --weights, --seed, --input-size; the refusal of a layer with no ONNX form
  and the missing-package message.
* Round trip: export, then `convcalc.importers.onnx_import.import_onnx`, gives the same params, MACs, output shape
  and outputs, for every shipped spec (the composite forms by the exporter's tags, metadata_props
  'convcalc.layers'; params and MACs over the layers reaching the output: wavenet has one unused layer, which the
  importer drops) and per tagged layer type; a tag whose nodes were edited is ignored.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from typer.testing import CliRunner  # noqa: E402

import convcalc  # noqa: E402
from convcalc.cli import app  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402
from convcalc.execution.weights import expected_keys  # noqa: E402
from convcalc.importers import onnx_export, onnx_export_ops  # noqa: E402
from convcalc.importers.onnx_export import INSTALL_HINT, ExportError, export_onnx  # noqa: E402
from convcalc.layers.registry import layer_types  # noqa: E402
from convcalc.spec.load import spec_from_dict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_export_cases import CASES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ALL = os.environ.get("CONVCALC_ONNX_ALL") == "1"
ort.set_default_logger_severity(3)

# spec -> (overrides, input size): small where the spec allows (None: the spec's own)
SIZES: dict[str, tuple[dict, tuple[int, ...] | None]] = {
    "alexnet": ({}, (3, 64, 64)), "alexnet_lrn": ({}, (3, 67, 67)), "c3d": ({}, (3, 16, 32, 32)),
    "convnext_tiny": ({}, (3, 64, 64)), "dcgan_generator": ({}, None), "deepface_lc": ({}, None),
    "deeplab_aspp": ({}, None), "deeplabv3_resnet50": ({}, (3, 40, 56)), "densenet121": ({}, (3, 64, 64)),
    "edges": ({}, (3, 32, 32)), "efficientnet_b0": ({}, (3, 64, 64)), "gated_inpainting": ({}, (5, 32, 32)),
    "googlenet": ({}, (3, 64, 64)), "inception_v3": ({}, (3, 75, 75)), "lenet5": ({}, None),
    "lraspp_mobilenet_v3_large": ({}, (3, 64, 64)), "maxout_cifar10": ({}, None), "mobilenet_v1": ({}, (3, 64, 64)),
    "mobilenet_v2": ({}, (3, 64, 64)), "mobilenet_v3_large": ({}, (3, 64, 64)),
    "pconv_unet": ({"width": 8}, (6, 256, 256)), "regnet_y_400mf": ({}, (3, 64, 64)),
    "resnet18": ({}, (3, 64, 64)), "resnet50": ({}, (3, 64, 64)), "resnext50_32x4d": ({}, (3, 64, 64)),
    "shufflenet_v1_g3": ({}, (3, 64, 64)), "shufflenet_v2_x1_0": ({}, (3, 64, 64)),
    "squeezenet1_1": ({}, (3, 64, 64)), "tiled_demo": ({}, None), "tiny": ({}, None), "unet": ({}, (1, 188, 188)),
    "vgg16": ({}, (3, 64, 64)), "wavenet": ({}, (256, 1100)), "xception": ({}, (3, 71, 71)),
    "tfslim/alexnet_v2": ({}, None), "tfslim/inception_v3": ({}, None), "tfslim/mobilenet_v1": ({}, None),
    "tfslim/resnet_v1_50": ({}, (3, 64, 64)), "tfslim/vgg_16": ({}, None),
}
# the slowest: 60 M parameters or more (10-70 s each: serializing, checking, loading, running) and the deepest at
# their sizes (their layer types are covered by the others and the per-type cases): CONVCALC_ONNX_ALL=1
SLOW = {"alexnet", "c3d", "deepface_lc", "vgg16", "tfslim/alexnet_v2", "tfslim/vgg_16", "inception_v3",
        "tfslim/inception_v3", "resnext50_32x4d", "deeplabv3_resnet50"}
# shipped specs the exporter refuses, with the first words of the message: none (every layer type has an ONNX form)
REFUSED: dict[str, str] = {}


def shipped_specs() -> list[str]:
    found = [p for p in (ROOT / "specs").glob("*.yaml")] + [p for p in (ROOT / "specs" / "tfslim").glob("*.yaml")]
    return sorted(str(p.relative_to(ROOT / "specs").with_suffix("")) for p in found)


def session(data: bytes):
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def assert_close(got: np.ndarray, want: np.ndarray, relative: float = 1e-4) -> None:
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    scale = float(np.nanmax(np.abs(want))) if want.size else 0.0
    assert np.nanmax(np.abs(got - want), initial=0.0) <= 1e-5 + relative * scale


def test_every_shipped_spec_has_a_size():
    assert sorted(SIZES) == shipped_specs()


@pytest.mark.parametrize("name", [name if name not in SLOW else pytest.param(
    name, marks=pytest.mark.skipif(not ALL, reason="large: set CONVCALC_ONNX_ALL=1")) for name in sorted(SIZES)])
def test_shipped_spec_matches_onnxruntime(name):
    overrides, shape = SIZES[name]
    graph = convcalc.build_graph(convcalc.load_spec(name), overrides=overrides)
    if name in REFUSED:
        with pytest.raises(ExportError, match=REFUSED[name]):
            export_onnx(graph, input_shape=shape)
        return
    data = export_onnx(graph, input_shape=shape, seed=1)
    shape = shape or graph.input_shape
    x = np.random.default_rng(0).random((1, *shape)).astype(np.float32)
    checked = convcalc.run(graph, x, seed=1, rf_check=False)           # convcalc run --seed 1, float32
    assert_close(session(data).run(None, {"input": x})[0], checked.output)
    model = onnx.load_from_string(data)
    summary = checked.summary
    buffers = {f"{row.name}.{buffer}" for row in summary.layers for buffer in row.buffer_shapes}
    sizes = {tensor.name: int(np.prod(tensor.dims)) for tensor in model.graph.initializer}
    assert sum(size for key, size in sizes.items() if key not in buffers) == summary.totals.params
    assert set(sizes) == {key for key in expected_keys(summary) if not key.endswith("num_batches_tracked")}
    assert model.graph.output[0].name == graph.output


def random_weights(summary, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in expected_keys(summary).items():
        if key.endswith("num_batches_tracked"):
            weights[key] = np.zeros((), np.int64)
            continue
        value = rng.standard_normal(shape)
        weights[key] = (np.abs(value) + 0.5 if key.endswith("running_var") else value).astype(np.float32)
    return weights


def test_the_cases_cover_every_layer_type():
    covered = {type_name.lower() for type_name, _ in CASES}
    assert sorted(cls.type_name for cls in layer_types() if cls.type_name.lower() not in covered) == []


@pytest.mark.parametrize("opset", [13, 18, 22])
def test_every_layer_type_matches_onnxruntime(opset):
    failures = []
    for index, (type_name, spec) in enumerate(CASES):
        if opset != 18 and index % 3 != opset % 3:      # the other opsets: every third case
            continue
        graph = convcalc.build_graph(spec_from_dict({"name": f"case{index}", **spec}))
        weights = random_weights(convcalc.analyze(graph), index)
        data = export_onnx(graph, weights, opset=opset)
        x = np.random.default_rng(index).standard_normal((2, *graph.input_shape)).astype(np.float32)
        want = Network(graph, state=weights, dtype="float64").run(x).output
        try:
            assert_close(session(data).run(None, {"input": x})[0], want)
        except AssertionError:
            failures.append(f"{index} {type_name} {spec['layers'][-1]}")
    assert failures == []


def test_names_batch_and_opset():
    graph = convcalc.build_graph(convcalc.load_spec("tiny"))
    model = onnx.load_from_string(export_onnx(graph, opset=17))
    assert model.opset_import[0].version == 17
    assert [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == ["N", 3, 32, 32]
    nodes = {node.name for node in model.graph.node}
    assert {node.name for node in graph.nodes} <= nodes
    x = np.random.default_rng(0).random((5, 3, 32, 32)).astype(np.float32)
    assert session(model.SerializeToString()).run(None, {"input": x})[0].shape == (5, 10)


def test_tied_layers_share_one_initializer():
    spec = {"name": "tied", "input": [3, 8, 8], "layers": [
        {"name": "rec", "type": "Conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"name": "rec2", "type": "Conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1, "tie": "rec"}]}
    graph = convcalc.build_graph(spec_from_dict(spec))
    model = onnx.load_from_string(export_onnx(graph))
    assert [t.name for t in model.graph.initializer] == ["rec.weight", "rec.bias"]
    x = np.random.default_rng(0).random((1, 3, 8, 8)).astype(np.float32)
    assert_close(session(model.SerializeToString()).run(None, {"input": x})[0],
                 convcalc.run(graph, x, rf_check=False).output)


# --------------------------------------------------------------------------- errors

def test_a_layer_without_an_onnx_form_is_refused(monkeypatch):
    monkeypatch.delitem(onnx_export_ops.EMITTERS, "TiledConv2d")
    graph = convcalc.build_graph(convcalc.load_spec("tiled_demo"))
    with pytest.raises(ExportError) as caught:
        export_onnx(graph)
    assert caught.value.message == ("layer 'tiled1' (TiledConv2d) cannot be exported to ONNX: convcalc has no ONNX"
                                    " form for this layer type")


def test_opset_out_of_range():
    graph = convcalc.build_graph(convcalc.load_spec("tiny"))
    with pytest.raises(ExportError, match=r"^opset 12 is not supported: choose 13 to 22$"):
        export_onnx(graph, opset=12)


def test_without_the_onnx_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ExportError, match=r"^convcalc export needs the onnx package: pip install 'convcalc\[onnx\]'$"):
        export_onnx(convcalc.build_graph(convcalc.load_spec("tiny")))
    result = CliRunner().invoke(app, ["export", "tiny", "-o", str(tmp_path / "t.onnx")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {INSTALL_HINT}"


# --------------------------------------------------------------------------- the command

def cli(*args: str):
    return CliRunner().invoke(app, ["export", *args])


def test_cli_writes_a_model_that_runs_like_convcalc_run(tmp_path):
    out = tmp_path / "r.onnx"
    result = cli("resnet18", "-o", str(out), "--input-size", "3x48x48", "--seed", "3", "--opset", "16")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(f"wrote {out}: 69 layers, opset 16, seeded weights (--seed 3), ")
    x = np.random.default_rng(0).random((1, 3, 48, 48)).astype(np.float32)
    graph = convcalc.build_graph(convcalc.load_spec("resnet18"))
    assert_close(session(out.read_bytes()).run(None, {"input": x})[0],
                 convcalc.run(graph, x, seed=3, rf_check=False).output)
    other = convcalc.run(graph, x, seed=0, rf_check=False).output
    assert not np.allclose(session(out.read_bytes()).run(None, {"input": x})[0], other)


def test_cli_weights_file(tmp_path):
    graph = convcalc.build_graph(convcalc.load_spec("tiny"))
    weights = random_weights(convcalc.analyze(graph), 7)
    np.savez(tmp_path / "w.npz", **weights)
    result = cli("tiny", "-o", str(tmp_path / "t.onnx"), "-w", str(tmp_path / "w.npz"))
    assert result.exit_code == 0, result.stderr
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32)
    assert_close(session((tmp_path / "t.onnx").read_bytes()).run(None, {"input": x})[0],
                 convcalc.run(graph, x, weights=str(tmp_path / "w.npz"), rf_check=False).output)


@pytest.mark.parametrize("args, message", [
    (["--opset", "30"], "error: opset 30 is not supported: choose 13 to 22"),
    (["--input-size", "32x32"], "error: --input-size 32x32 has 2 axes, but the spec's input 3x32x32 has 3 (channels"
                                " first, no batch); did you mean --input-size 3x32x32?"),
    (["-w", "missing.npz"], "error: no such weights file: missing.npz"),
])
def test_cli_errors(tmp_path, args, message):
    result = cli("tiny", "-o", str(tmp_path / "t.onnx"), *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert not (tmp_path / "t.onnx").exists()


def test_cli_wrong_weights(tmp_path):
    np.savez(tmp_path / "w.npz", **{"conv2d_1.weight": np.zeros((2, 2))})
    result = cli("tiny", "-o", str(tmp_path / "t.onnx"), "-w", str(tmp_path / "w.npz"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: weights do not fit the network: missing ")


def test_cli_refusal_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delitem(onnx_export_ops.EMITTERS, "LPPoolNd")
    result = cli("tiled_demo", "-o", str(tmp_path / "t.onnx"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "layer 'pool1' (LPPool2d) cannot be exported to ONNX: convcalc has no ONNX form" in result.stderr


# --------------------------------------------------------------------------- round trip through the importer

# Every shipped spec round-trips (the slow ones with CONVCALC_ONNX_ALL=1). The exporter's composite forms the
# importer's node-by-node rules do not read (partial and tiled convs' ReduceSum, Maxout's ReduceMax over a reshaped
# axis, an even LRN's or LPPool's Pow, uneven adaptive pools' MatMul, locally connected layers' Einsum) come back
# whole by the exporter's tags (metadata_props 'convcalc.layers'). Params and MACs compare over the layers that reach
# the output: the importer keeps only those (wavenet's unused last skip projection `stack.2.layer.9.dense`, 1,024
# params, is dropped; the outputs are the same).
ROUND_TRIP = [name if name not in SLOW else pytest.param(
    name, marks=pytest.mark.skipif(not ALL, reason="large: set CONVCALC_ONNX_ALL=1")) for name in sorted(SIZES)]
# shipped specs that do not round-trip, with the reason: none
NOT_ROUND_TRIP: dict[str, str] = {}


def reaching_the_output(graph) -> set[str]:
    by_name = {node.name: node for node in graph.nodes}
    found, todo = set(), [graph.output]
    while todo:
        name = todo.pop()
        if name in by_name and name not in found:
            found.add(name)
            todo += list(by_name[name].inputs)
            if by_name[name].tie:
                todo.append(by_name[name].tie)
    return found


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_export_then_import_gives_the_same_network(name):
    onnx_import = pytest.importorskip("convcalc.importers.onnx_import")
    if name in NOT_ROUND_TRIP:
        pytest.skip(NOT_ROUND_TRIP[name])
    overrides, shape = SIZES[name]
    graph = convcalc.build_graph(convcalc.load_spec(name), overrides=overrides)
    imported = onnx_import.import_onnx(export_onnx(graph, input_shape=shape, seed=2))
    again = imported.graph()
    ours, theirs = convcalc.analyze(graph, shape), convcalc.analyze(again, shape)
    live = [row for row in ours.layers if row.name in reaching_the_output(graph)]
    assert (theirs.totals.params, theirs.totals.macs) == (sum(r.params for r in live), sum(r.macs for r in live))
    assert (len(live) == len(ours.layers)) == (name != "wavenet")          # the one shipped spec with a dead layer
    assert theirs.layer(again.output).output_shape == ours.layer(graph.output).output_shape
    x = np.random.default_rng(0).random((1, *(shape or graph.input_shape))).astype(np.float32)
    assert_close(Network(again, shape, state=imported.weights).run(x).output, Network(graph, shape, seed=2).run(x).output)


TAGGED_CASES = [(index, type_name, spec) for index, (type_name, spec) in enumerate(CASES)
                if type_name.startswith(onnx_export.TAGGED)]


@pytest.mark.parametrize("index, type_name, spec", TAGGED_CASES, ids=[f"{i}-{t}" for i, t, _ in TAGGED_CASES])
def test_tagged_composite_layers_round_trip(index, type_name, spec):
    """The exporter's composite forms (tagged in metadata_props 'convcalc.layers'; an even LRN, 1-3-D partial and
    tiled convs, Maxout, LPPool, adaptive pools, locally connected layers) come back as the same layer: type,
    params, MACs, outputs."""
    from convcalc.importers.onnx_import import import_onnx
    graph = convcalc.build_graph(spec_from_dict({"name": f"case{index}", **spec}))
    weights = random_weights(convcalc.analyze(graph), index)
    imported = import_onnx(export_onnx(graph, weights))
    again = imported.graph()
    assert type_name in [node.type_name for node in again.nodes]
    ours, theirs = convcalc.analyze(graph), convcalc.analyze(again)
    assert (theirs.totals.params, theirs.totals.macs) == (ours.totals.params, ours.totals.macs)
    x = np.random.default_rng(index).standard_normal((2, *graph.input_shape)).astype(np.float32)
    assert_close(Network(again, state=imported.weights).run(x).output, Network(graph, state=weights).run(x).output)


def test_a_tag_whose_nodes_differ_is_not_used():
    """A tag is used only where the layer's nodes are exactly the tagged ones: a model edited after export (here
    the tag's op list altered) is read node by node, as a model from elsewhere (Maxout's ReduceMax: refused)."""
    from convcalc.importers.onnx_import import OnnxImportError, import_onnx
    import json
    model = onnx.load_from_string(export_onnx(convcalc.build_graph(convcalc.load_spec("maxout_cifar10"))))
    prop = next(p for p in model.metadata_props if p.key == "convcalc.layers")
    assert import_onnx(model).graph() is not None
    tags = json.loads(prop.value)
    tags["h0.maxout"]["ops"][-1] = "ReduceMean"
    prop.value = json.dumps(tags)
    with pytest.raises(OnnxImportError, match="h0.maxout"):
        import_onnx(model)


def test_a_tagged_layer_whose_attributes_differ_is_read_node_by_node():
    """The tag and node names intact but an attribute added to Maxout's ReduceMax (even one restating the default):
    not exactly what the exporter emits for that layer, so the tag is not used and the nodes are read as any
    model's (Maxout's ReduceMax over a reshaped axis: refused)."""
    from convcalc.importers.onnx_import import OnnxImportError, import_onnx
    model = onnx.load_from_string(export_onnx(convcalc.build_graph(convcalc.load_spec("maxout_cifar10"))))
    node = next(n for n in model.graph.node if n.name == "h0.maxout")
    node.attribute.append(onnx.helper.make_attribute("noop_with_empty_axes", 0))
    with pytest.raises(OnnxImportError, match="h0.maxout"):
        import_onnx(model)


def test_cli_exports_an_onnx_model_again_with_its_own_weights(tmp_path):
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    assert cli("tiny", "-o", str(first), "--seed", "4").exit_code == 0
    result = cli(str(first), "-o", str(second))
    assert result.exit_code == 0, result.stderr
    assert "the model's own weights" in result.stderr
    arrays = [{t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
              for path in (first, second)]
    assert arrays[0].keys() == arrays[1].keys()
    assert all(np.array_equal(arrays[0][key], arrays[1][key]) for key in arrays[0])


def test_parameters_past_protobufs_limit_are_refused(monkeypatch):
    from convcalc.importers import onnx_export
    monkeypatch.setattr(onnx_export, "PROTOBUF_LIMIT", 1000)
    with pytest.raises(ExportError, match=r"^the parameters take more than 0 GiB, the most one ONNX file holds"):
        export_onnx(convcalc.build_graph(convcalc.load_spec("tiny")))


def test_parameters_past_protobufs_limit_are_refused_before_they_are_drawn():
    """A Linear after a 100000x100000 input would need 2.9 TiB of weights: refused from the analysis, in seconds,
    before any is drawn (it was a NumPy MemoryError traceback)."""
    import time
    started = time.perf_counter()
    result = cli("tiny", "-o", "never.onnx", "--input-size", "3x100000x100000")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the parameters take more than 2 GiB, the most one ONNX file holds")
    assert time.perf_counter() - started < 30
