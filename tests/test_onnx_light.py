"""The nine "light" model-zoo models the onnx wheel ships, imported and run by convcalc (issue 19).

``onnx/backend/test/data/light/light_<model>.onnx`` (AlexNet, ZFNet-512, VGG-19, ResNet-50, SqueezeNet,
DenseNet-121, Inception v1/v2, ShuffleNet: Caffe2 exports at opset 9) keep their architecture but not their
weights: every large tensor is a ``ConstantOfShape`` of its shape filled with 0.02, the small per-channel ones
(BatchNorm, scale/bias) are real initializers. Each ships ``light_<model>_output_0.pb``, the output for the input
ONNX's backend runner generates (``Runner.generate_dummy_data(random=False)``: ``arange(n).reshape(shape) / n`` in
float32), compared with the model's rtol (1e-3; DenseNet-121 2e-3) and atol 1e-7
(``onnx/backend/test/case/model/__init__.py``). With constant weights those outputs are degenerate (a uniform
softmax, 0.001 everywhere), so the layer-by-layer evidence uses seeded random weights as well.

Per model:

* own weights, the runner's input: ``import_onnx`` (the ConstantOfShape weights materialised) and ``convcalc.run``
  equal the shipped expected output, within the model's tolerance, and onnxruntime's layer by layer (as below);
* seeded random weights (every ConstantOfShape weight replaced by a seeded random initializer, the same model fed
  to both), a seeded random input: every layer output convcalc keeps equals an onnxruntime tensor of the same shape
  (every node output exposed as a graph output), and every Conv/Gemm/pool/Concat/Sum/Relu/LRN/Softmax output of
  onnxruntime is matched by a convcalc layer (a Conv whose only reader is a BatchNormalization is folded into it:
  convcalc's conv output is then the normalised one), and the final outputs are equal;
* params: convcalc's params equal the sum of the sizes of the model's float weight tensors (initializers and
  materialised ConstantOfShape outputs) less BatchNormalization's running mean and variance (buffers).

The big ones (VGG-19, ZFNet-512, AlexNet: 5 to 20 s a NumPy forward at 224, and their large fully connected layers)
run with ``CONVCALC_ONNX_FULL=1``; the default six keep the file under a minute of CPU on 2 cores (about 40 s).
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper, numpy_helper  # noqa: E402

import convcalc  # noqa: E402

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
# model -> rtol (onnx/backend/test/case/model/__init__.py's model_tests; atol 1e-7 for all)
MODELS = {"bvlc_alexnet": 1e-3, "densenet121": 2e-3, "inception_v1": 1e-3, "inception_v2": 1e-3, "resnet50": 1e-3,
          "shufflenet": 1e-3, "squeezenet": 1e-3, "vgg19": 1e-3, "zfnet512": 1e-3}
ATOL = 1e-7
FULL = os.environ.get("CONVCALC_ONNX_FULL") == "1"
SLOW = {"vgg19", "zfnet512", "bvlc_alexnet"}   # 5-20 s a NumPy forward at 224 (VGG-19: 19.6 GMACs), run twice each
HAS_IMPORTER = (importlib.util.find_spec("convcalc.importers") is not None
                and importlib.util.find_spec("convcalc.importers.onnx_import") is not None)
needs_importer = pytest.mark.skipif(not HAS_IMPORTER, reason="convcalc.importers.onnx_import is not in the tree yet")


def model_param(name: str):
    marks = [needs_importer]
    if name in SLOW:
        marks.append(pytest.mark.skipif(not FULL, reason="slow in NumPy: CONVCALC_ONNX_FULL=1 runs it"))
    return pytest.param(name, marks=marks, id=name)


PARAMS = [model_param(name) for name in MODELS]


def import_onnx(model):
    from convcalc.importers.onnx_import import import_onnx as importer
    return importer(model)


# ============================================================================ the models, the inputs, the weights

@lru_cache(maxsize=None)
def load(name: str):
    return onnx.load(str(LIGHT / f"light_{name}.onnx"))


def data_input(model):
    inits = {init.name for init in model.graph.initializer}
    value = next(value for value in model.graph.input if value.name not in inits)
    return value.name, tuple(dim.dim_value if dim.HasField("dim_value") else 1
                             for dim in value.type.tensor_type.shape.dim)


def runner_input(shape) -> np.ndarray:
    """ONNX's backend runner's input for the light models: ``generate_dummy_data(x, seed=0, random=False)``."""
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def random_input(shape, seed: int = 0) -> np.ndarray:
    """``generate_dummy_data(random=True)``'s draw: uniform [0, 1) float32, seeded."""
    return np.random.default_rng(seed).random(shape, np.float32)


def expected_output(name: str) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{name}_output_0.pb")))


def materialised(model, seed: int | None = None):
    """The model with every ``ConstantOfShape`` of a constant shape replaced by an initializer: its own fill value
    (``seed`` None) or seeded random values: weights of 2+ dimensions U(±√(3/fan_in)) (unit-variance
    activations stay bounded through 100+ layers), BatchNormalization variances U(0.5, 1.5), scales U(0.5, 1.5)
    where a BatchNormalization reads them, other vectors U(±0.5)."""
    rng = np.random.default_rng(seed)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    readers: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            readers.setdefault(name, []).append((node.op_type, index))
    kept, new_inits = [], []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(d) for d in inits[node.input[0]])
            attr = next((a for a in node.attribute if a.name == "value"), None)
            fill = numpy_helper.to_array(attr.t) if attr is not None else np.zeros(1, np.float32)
            if seed is None:
                value = np.full(shape, fill.ravel()[0], dtype=fill.dtype)
            else:
                roles = readers.get(node.output[0], [])
                if any(op == "BatchNormalization" and index == 4 for op, index in roles):
                    value = rng.uniform(0.5, 1.5, shape)
                elif any(op == "BatchNormalization" and index == 1 for op, index in roles):
                    value = rng.uniform(0.5, 1.5, shape)
                elif len(shape) >= 2:
                    fan_in = int(np.prod(shape[1:]))
                    value = rng.uniform(-1, 1, shape) * np.sqrt(3.0 / fan_in)
                else:
                    value = rng.uniform(-0.5, 0.5, shape)
                value = value.astype(fill.dtype)
            new_inits.append(numpy_helper.from_array(value, node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(new_inits)
    if model.ir_version < 4:                              # IR 3: every initializer is also a graph input
        graph.input.extend(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
                           for init in new_inits)
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:                                   # the shape vectors, now read by nothing
        graph.initializer.remove(init)
    names = {init.name for init in unused}
    for value in [value for value in graph.input if value.name in names]:
        graph.input.remove(value)
    return model


def weight_sizes(model) -> tuple[int, int]:
    """(params, BatchNorm running statistics) of a materialised model: the sizes of the float initializers nodes
    read, the running mean and variance (BatchNormalization inputs 3 and 4) apart."""
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    stats = {node.input[i] for node in model.graph.node if node.op_type == "BatchNormalization" for i in (3, 4)}
    read = {name for node in model.graph.node for name in node.input if name in inits}
    floats = {name for name in read if inits[name].dtype.kind == "f"}
    return (sum(inits[name].size for name in floats - stats), sum(inits[name].size for name in floats & stats))


# ============================================================================ onnxruntime, every tensor exposed

def ort_tensors(model, feeds) -> dict[str, np.ndarray]:
    """Every float node output of the model, as onnxruntime computes it (each added as a graph output)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {value.name: value for value in inferred.graph.value_info}
    present = {value.name for value in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            value = types.get(name)
            if name and name not in present and value is not None \
                    and value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
                model.graph.output.append(value)
                present.add(name)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def close(got: np.ndarray, ref: np.ndarray, rtol: float) -> bool:
    """Equal within rtol, the absolute tolerance scaled to the tensor (float32 sums in another order cancel
    differently near zero): atol = rtol * 1e-2 * max|ref|."""
    if got.shape != ref.shape:
        return False
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return bool(np.allclose(got, ref, rtol=rtol, atol=max(ATOL, rtol * 1e-2 * scale)))


# ============================================================================ convcalc

@lru_cache(maxsize=2)              # VGG-19's weights are 0.6 GB a copy: keep few
def imported(name: str, seed: int | None):
    model = materialised(load(name), seed) if seed is not None else load(name)
    return import_onnx(model)


def convcalc_run(name: str, seed: int | None, x: np.ndarray, keep_maps: bool = False):
    model = imported(name, seed)
    return convcalc.run(model.graph(), x, weights=model.weights, dtype="float32", rf_check=False,
                        keep_maps=keep_maps)


# ============================================================================ the tests

@pytest.mark.parametrize("name", list(MODELS))
def test_shipped_output_is_onnxruntimes(name):
    """The oracle itself: onnxruntime on the runner's input gives the shipped output (no convcalc involved)."""
    model = load(name)
    input_name, shape = data_input(model)
    out = ort_tensors(model, {input_name: runner_input(shape)})[model.graph.output[0].name]
    np.testing.assert_allclose(out, expected_output(name), rtol=MODELS[name], atol=ATOL)


@pytest.mark.parametrize("name", PARAMS)
def test_own_weights_equal_shipped_output(name):
    """The model's own weights (ConstantOfShape 0.02 materialised by the importer), the runner's input: convcalc's
    output equals the shipped expected output within the model's tolerance, every layer equals onnxruntime's, and
    every prediction holds."""
    model = load(name)
    _, shape = data_input(model)
    x = runner_input(shape)
    checked = convcalc_run(name, None, x, keep_maps=True)
    expected = expected_output(name)
    assert checked.ok, [layer for layer in checked.layers if not layer.ok]
    assert checked.output.size == expected.size
    graph = imported(name, None).graph()
    if graph.nodes[-1].name not in unstable_softmaxes(graph, checked.result.maps, MODELS[name]):
        np.testing.assert_allclose(checked.output.reshape(expected.shape), expected, rtol=MODELS[name], atol=ATOL)
    assert_layers_match(model, graph, x, checked, MODELS[name])     # and onnxruntime's, layer by layer


@pytest.mark.parametrize("name", PARAMS)
def test_params_equal_initializer_sizes(name):
    """Params = the float weights' sizes (initializers + ConstantOfShape outputs), running statistics apart."""
    params, stats = weight_sizes(materialised(load(name), None))
    summary = convcalc.analyze(imported(name, None).graph())
    assert summary.totals.params == params
    assert summary.totals.params + summary.totals.buffers >= params + stats


def softmax_unstable(logits: np.ndarray, rtol: float) -> bool:
    """True when float32 cannot state a softmax of ``logits`` to ``rtol``: one rounding of the largest logit (half
    its ulp, the least error any float32 computation of it can carry) already moves the output by more than rtol
    (an absolute error d in the input is a relative one of up to exp(2d) - 1 in the output). The light models' own
    weights (0.02 everywhere) give SqueezeNet logits of ~1e10, all equal in exact arithmetic, whose float32 ulp is
    1024: their softmax then depends only on the order in which each logit's products were summed (OpenBLAS's
    Haswell kernels sum a column's products in an order set by its place in the register block)."""
    scale = float(np.max(np.abs(logits))) if logits.size else 0.0
    return bool(float(np.spacing(np.float32(scale))) > np.log1p(rtol))     # exp(2 * ulp/2) - 1 > rtol


def unstable_softmaxes(graph, maps: dict[str, np.ndarray], rtol: float = 1e-3) -> set[str]:
    """convcalc's Softmax layers whose input (convcalc's own map of it) is `softmax_unstable`."""
    return {node.name for node in graph.nodes if node.type_name == "Softmax" and node.inputs[0] in maps
            and softmax_unstable(maps[node.inputs[0]], rtol)}


def assert_softmax_of_own_input(graph, maps: dict[str, np.ndarray], name: str, rtol: float) -> None:
    """Layer ``name`` (a Softmax) equals the float64 softmax of convcalc's own float32 input to it."""
    node = next(node for node in graph.nodes if node.name == name)
    logits, got = maps[node.inputs[0]].astype(np.float64), maps[name]
    axis = node.layer.dim % logits.ndim
    want = np.exp(logits - logits.max(axis=axis, keepdims=True))
    want /= want.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=ATOL, err_msg=name)


def assert_layers_match(model, graph, x: np.ndarray, checked, rtol: float) -> None:
    """Every convcalc layer's output is an onnxruntime tensor of the model on ``x``, every main onnxruntime tensor
    is a convcalc layer's output, and the final outputs are equal. A Softmax whose input float32 cannot carry to
    ``rtol`` (`softmax_unstable`: judged on onnxruntime's input for its nodes, on convcalc's for its layers) is
    checked as the softmax of its own input instead, its input being matched like any other tensor."""
    input_name, _ = data_input(model)
    theirs = ort_tensors(model, {input_name: x})
    ours_unstable = unstable_softmaxes(graph, checked.result.maps, rtol)
    theirs_unstable = {node.output[0] for node in model.graph.node if node.op_type == "Softmax"
                       and node.input[0] in theirs and softmax_unstable(theirs[node.input[0]], rtol)}
    for name in ours_unstable:
        assert_softmax_of_own_input(graph, checked.result.maps, name, rtol)
    final = theirs[model.graph.output[0].name]
    assert checked.output.size == final.size
    if model.graph.output[0].name not in theirs_unstable:
        assert close(checked.output.reshape(final.shape), final, rtol), "final output"
    else:
        assert graph.nodes[-1].name in ours_unstable, "onnxruntime's final softmax is unstable, convcalc's is not"

    by_shape: dict[tuple, list[str]] = {}
    for tensor, value in theirs.items():
        by_shape.setdefault(value.shape, []).append(tensor)

    def same(value: np.ndarray, tensor: str) -> bool:
        ref = theirs[tensor]
        probe = np.linspace(0, ref.size - 1, num=min(ref.size, 97), dtype=np.int64)   # cheap first: 97 elements
        flat, ref_flat = value.reshape(-1), ref.reshape(-1)
        scale = float(np.max(np.abs(ref_flat[probe]))) if ref.size else 0.0
        if not np.allclose(flat[probe], ref_flat[probe], rtol=rtol, atol=max(ATOL, rtol * 1e-1 * scale)):
            return False
        return close(value.reshape(ref.shape), ref, rtol)

    ours = checked.result.maps
    ours_by_shape: dict[tuple, list[str]] = {}
    for layer, value in ours.items():
        ours_by_shape.setdefault(value.shape, []).append(layer)
    unmatched = []
    for layer, value in ours.items():
        if layer in ours_unstable:
            continue
        candidates = by_shape.get(value.shape, [])
        if value.ndim == 2:                      # a classifier's (N, F) against ONNX's (N, F, 1, 1)
            candidates = candidates + [t for t, v in theirs.items() if v.size == value.size and v.shape != value.shape]
        if not any(same(value, t) for t in candidates):
            unmatched.append(layer)
    assert not unmatched, f"convcalc layers matching no onnxruntime tensor: {unmatched[:10]}"

    readers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for tensor in node.input:
            readers.setdefault(tensor, []).append(node.op_type)
    main = {"Conv", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Sum", "Relu", "LRN",
            "Softmax", "BatchNormalization"}
    missing = []
    for node in model.graph.node:
        if node.op_type not in main or node.output[0] not in theirs or node.output[0] in theirs_unstable:
            continue
        if node.op_type in ("Conv", "Gemm") and readers.get(node.output[0]) == ["BatchNormalization"]:
            continue                                   # folded: convcalc's conv output is the BatchNorm's
        ref = theirs[node.output[0]]
        candidates = [layer for shape, layers in ours_by_shape.items() if int(np.prod(shape)) == ref.size
                      for layer in layers]
        if not any(same(ours[layer], node.output[0]) for layer in candidates):
            missing.append(f"{node.name or node.output[0]} ({node.op_type})")
    assert not missing, f"onnxruntime tensors no convcalc layer produced: {missing[:10]}"


@pytest.mark.parametrize("name", PARAMS)
def test_random_weights_layer_by_layer(name):
    """Seeded random weights and input: every convcalc layer's output is an onnxruntime tensor, every main
    onnxruntime tensor is a convcalc layer's output, and the outputs are equal."""
    model = materialised(load(name), seed=0)
    _, shape = data_input(model)
    x = random_input(shape)
    checked = convcalc_run(name, 0, x, keep_maps=True)
    assert checked.ok, [layer for layer in checked.layers if not layer.ok]
    assert_layers_match(model, imported(name, 0).graph(), x, checked, MODELS[name])
