"""`convcalc import` (issue 19): ONNX models → specs and weights, checked against onnxruntime.

* torch models covering the op list, exported with torch.onnx.export (the TorchScript exporter, ``dynamo=False``:
  the dynamo one needs onnxscript), imported, and run by convcalc's executor with the model's initializers, which
  are first replaced by seeded random values (BatchNorm statistics too), so no weight is trivially 0 or 1; the same
  model runs in onnxruntime (CPU, float32): output shapes equal, values within float32 tolerance; convcalc's
  params equal the model's parameter initializers;
* hand-built onnx.helper graphs for ONNX-only attributes (SAME_LOWER, pool strides default 1, count_include_pad
  default 0, LpPool over |x|^p, Pad modes, DepthToSpace DCR/CRD, asymmetric pads, ConvTranspose output_shape,
  Resize modes), the same way;
* what convcalc cannot express: one-line errors naming the node, op and attribute; ``partial``;
* the CLI (typer's CliRunner): ``import`` with -o/--weights/--partial, ``analyze/run/rf/lint MODEL.onnx``, exit codes.
"""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import convcalc  # noqa: E402
from convcalc.analysis.summary import analyze  # noqa: E402
from convcalc.cli import app  # noqa: E402
from convcalc.errors import ConvcalcError  # noqa: E402
from convcalc.importers.onnx_import import ImportedModel, import_onnx  # noqa: E402

torch.set_num_threads(1)
WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "InstanceNormalization",
              "LayerNormalization", "GroupNormalization", "PRelu", "Add", "Mul", "Sub", "Div"}


# ============================================================================ helpers

def export(model: nn.Module, shape, opset: int = 18) -> onnx.ModelProto:
    """``model`` (eval mode) exported by torch's TorchScript exporter at ``opset``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.randn(1, *shape), buffer, dynamo=False, opset_version=opset,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    return onnx.load_from_string(buffer.getvalue())


def randomised(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """The model with every float initializer that a weight-bearing op reads replaced by seeded random values
    (variances of BatchNormalization positive)."""
    rng = np.random.default_rng(seed)
    readers: dict[str, set] = {}
    variances = set()
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            readers.setdefault(name, set()).add(node.op_type)
            if node.op_type == "BatchNormalization" and index == 4:
                variances.add(name)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for init in copy.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype != np.float32 or array.size < 2 or not readers.get(init.name, set()) <= WEIGHT_OPS:
            continue
        if init.name in variances:
            values = rng.uniform(0.5, 1.5, array.shape)
        else:
            values = rng.uniform(0.2, 1.0, array.shape) * rng.choice([-1, 1], array.shape)
        init.CopyFrom(numpy_helper.from_array(values.astype(np.float32), init.name))
    return copy


def ort_run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def check(model: onnx.ModelProto, shape=None, seed: int = 0, atol: float = 2e-4) -> ImportedModel:
    """Import ``model`` (initializers randomised), run it with convcalc and onnxruntime on the same input, and
    compare output shapes (analysis and execution) and values."""
    model = randomised(model, seed)
    imported = import_onnx(model)
    graph = imported.graph()
    shape = shape or imported.input_shape
    x = np.random.default_rng(seed + 1).standard_normal((2, *shape)).astype(np.float32)
    expected = ort_run(model, x)
    summary = analyze(graph)
    assert tuple(summary.output_shape) == expected.shape[1:], imported.spec_text
    assert summary.totals.params == sum(v.size for k, v in imported.weights.items() if "running_" not in k)
    checked = convcalc.run(graph, x, weights=imported.weights, rf_check=False)
    assert checked.ok
    assert checked.output.shape == expected.shape
    np.testing.assert_allclose(checked.output, expected, rtol=1e-4, atol=atol, err_msg=imported.spec_text)
    return imported


def onnx_model(nodes, input_shape, initializers=(), opset: int = 18, output: str = "y") -> onnx.ModelProto:
    """A one-input graph of ``nodes`` from 'x' to ``output``, with numpy ``initializers`` {name: array}."""
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()]
    input_shape = ["N", *input_shape[1:]]        # any batch
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def one_node(op: str, input_shape, *, inputs=(), initializers=(), opset: int = 18, **attributes):
    """A model of one ``op`` node reading 'x' and then ``inputs`` (names of ``initializers``)."""
    node = helper.make_node(op, ["x", *inputs], ["y"], name=f"the_{op.lower()}", **attributes)
    return onnx_model([node], input_shape, initializers, opset)


def param_count(imported: ImportedModel) -> int:
    return analyze(imported.graph()).totals.params


def weights(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


# ============================================================================ torch models, exported

class Activations(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4)
        self.p1, self.p2 = nn.PReLU(8), nn.PReLU()
        self.acts = nn.Sequential(nn.LeakyReLU(0.1), nn.ELU(0.5), nn.SELU(), nn.Sigmoid(), nn.Tanh(), nn.Softplus(),
                                  nn.Mish(), nn.GELU(), nn.Hardswish(), nn.Hardsigmoid(), nn.SiLU(), nn.ReLU6(),
                                  nn.Hardtanh(-0.5, 0.5), nn.GELU(approximate="tanh"), nn.CELU(0.7))

    def forward(self, x):
        return self.acts(self.p2(self.p1(self.c2(self.bn(self.c1(x))))))


@pytest.mark.parametrize("opset", [18, 20])
def test_activations_and_convs(opset):
    """Opset 18 writes GELU (erf and tanh forms) and Mish as several nodes, recognised as one layer; opset 20 has
    Gelu."""
    imported = check(export(Activations(), (3, 16, 16), opset))
    types = [line.split("type: ")[1].split(",")[0].rstrip("}") for line in imported.spec_text.splitlines()
             if "type: " in line]
    assert types[4:] == ["LeakyReLU", "ELU", "SELU", "Sigmoid", "Tanh", "Softplus", "Mish", "GELU", "Hardswish",
                         "Hardsigmoid", "SiLU", "ReLU6", "Hardtanh", "GELU", "CELU"]
    assert "type: GELU, approximate: tanh}" in imported.spec_text
    assert "negative_slope: 0.1}" in imported.spec_text        # float32 attributes written shortest


class Pools(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3)
        self.m1 = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.a1 = nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        self.a2 = nn.AvgPool2d(3, 2, 1, ceil_mode=True)
        self.m2 = nn.MaxPool2d(2, 1, dilation=2)

    def forward(self, x):
        return torch.cat([self.m2(self.m1(x)), self.m2(self.a1(x)), self.m2(self.a2(x))], 1)


def test_pools():
    check(export(Pools(), (3, 17, 15)))


def test_conv1d_conv3d_and_transposed():
    model = nn.Sequential(nn.Conv3d(2, 4, (3, 1, 3), stride=(1, 2, 1), padding=(1, 0, 1)), nn.BatchNorm3d(4),
                          nn.ConvTranspose3d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=2))
    check(export(model, (2, 5, 6, 7)))
    model = nn.Sequential(nn.Conv1d(3, 6, 5, padding=2, padding_mode="zeros"), nn.BatchNorm1d(6), nn.ReLU(),
                          nn.ConvTranspose1d(6, 4, 4, stride=3, padding=2, dilation=2, output_padding=1),
                          nn.MaxPool1d(2), nn.Flatten(), nn.Linear(4 * 14, 7))
    check(export(model, (3, 9)))


class Resampling(nn.Module):
    def __init__(self, mode, align_corners=None, scale=2.0):
        super().__init__()
        self.up = nn.Upsample(scale_factor=scale, mode=mode, align_corners=align_corners)
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.up(self.conv(x))


@pytest.mark.parametrize("mode, align_corners, scale", [
    ("nearest", None, 2.0), ("nearest", None, 0.5), ("bilinear", False, 2.0),
    ("bilinear", True, 2.0), ("bicubic", False, 2.0), ("bicubic", True, 1.5), ("bilinear", False, 0.5)])
def test_upsample_modes(mode, align_corners, scale):
    check(export(Resampling(mode, align_corners, scale), (3, 6, 8)))


class Layout(nn.Module):
    """Shuffle, split, narrow, pixel shuffle, squeeze, the flatten of x.view(x.size(0), -1), softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 1)
        self.ps, self.pu = nn.PixelShuffle(2), nn.PixelUnshuffle(2)
        self.fc = nn.Linear(8 * 16, 10)

    def forward(self, x):
        x = self.conv(x)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)     # ShuffleNet's channel shuffle
        a, b = x.chunk(2, dim=1)
        b = torch.nn.functional.relu(b)
        x = torch.cat([a, b[:, 1:3], b[:, :2]], 1)[:, :, :, 1:]
        x = self.pu(self.ps(x))
        x = x.unsqueeze(2).squeeze(2)
        y = self.fc(x.reshape(x.size(0), -1))
        return torch.log_softmax(y, 1) + torch.softmax(y, dim=-1)


def test_layout_ops():
    imported = check(export(Layout(), (4, 4, 5)))
    assert "type: ChannelShuffle, groups: 2" in imported.spec_text
    assert "type: Narrow" in imported.spec_text        # torch writes chunk as Slices
    # torch's PixelUnshuffle (Unsqueeze, Reshape, Reshape, Transpose, Reshape, Squeeze) and unsqueeze-squeeze
    assert "{name: pu, type: PixelUnshuffle, downscale_factor: 2}\n  - {name: reshape_2, type: Flatten}" in \
        imported.spec_text
    assert "Permute" not in imported.spec_text and "type: Reshape" not in imported.spec_text


class Norms(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(4, 8)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.ln = nn.LayerNorm([8, 6, 6], eps=1e-6)

    def forward(self, x):       # (torch writes LocalResponseNorm as a dozen nodes and an If: see the LRN node test)
        return self.ln(self.inorm(self.gn(self.conv(x))))


@pytest.mark.parametrize("opset", [18, 21])
def test_norms(opset):
    """Opset 18: torch writes GroupNorm as Reshape → InstanceNormalization → Reshape → Mul → Add, one GroupNorm."""
    imported = check(export(Norms(), (3, 6, 6), opset), atol=1e-3)
    assert "{name: gn, type: GroupNorm, num_groups: 4}" in imported.spec_text
    assert param_count(imported) == sum(p.numel() for p in Norms().parameters())


class Arithmetic(nn.Module):
    """Residuals, constants on either side, per-channel scale and shift, F.pad's modes, Linear on a 3-D tensor
    (MatMul + Add), Dropout (torch 2.13 cannot trace MaxUnpool2d: see the hand-built MaxUnpool test)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.scale = nn.Parameter(torch.rand(4, 1, 1) + 0.5)
        self.fc = nn.Linear(8, 5)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        F = torch.nn.functional
        x = self.conv(x)
        x = x + torch.relu(x)
        x = (x * self.scale + 0.5) / 2.0 - 1.0
        x = 3.0 - x
        x = F.pad(x, (1, 2, 0, 1), mode="reflect") * F.pad(x, (1, 2, 0, 1), mode="replicate")
        x = F.pad(x, (2, 1, 1, 0), mode="circular") + F.pad(x, (2, 1, 1, 0), value=0.5)
        x = self.drop(x)
        return self.fc(x[..., :8])


def test_arithmetic_pads_matmul():
    imported = check(export(Arithmetic(), (3, 8, 6)))
    assert "type: LearnableTensor" in imported.spec_text and "type: ReflectionPad2d" in imported.spec_text


# ============================================================================ hand-built graphs: ONNX's own attributes

W33 = {"w": weights(4, 3, 3, 3), "b": weights(4, seed=1)}


@pytest.mark.parametrize("attributes", [
    dict(auto_pad="SAME_UPPER", strides=[2, 2]), dict(auto_pad="SAME_LOWER", strides=[2, 2]),
    dict(auto_pad="SAME_LOWER", strides=[3, 1]), dict(auto_pad="VALID", strides=[2, 1]),
    dict(pads=[0, 1, 2, 0]), dict(pads=[1, 2, 1, 2], strides=[3, 2], group=1)])
def test_conv_pads(attributes):
    imported = check(one_node("Conv", [1, 3, 9, 8], inputs=["w", "b"], initializers=W33, **attributes))
    if attributes.get("auto_pad") == "SAME_UPPER":
        assert "padding: tf_same" in imported.spec_text


@pytest.mark.parametrize("attributes", [
    dict(strides=[2, 2], pads=[1, 0, 2, 1]), dict(strides=[2, 3], output_padding=[1, 2]),
    dict(strides=[2, 2], output_shape=[10, 8]), dict(strides=[2, 2], auto_pad="SAME_UPPER"),
    dict(strides=[3, 2], auto_pad="SAME_LOWER"), dict(strides=[2, 2], pads=[0, 1, 1, 0], output_padding=[1, 1]),
    dict(dilations=[2, 1], group=2)])
def test_conv_transpose(attributes):
    init = {"w": weights(4, 3, 3, 3), "b": weights(3 * attributes.get("group", 1), seed=1)}
    check(one_node("ConvTranspose", [1, 4, 5, 4], inputs=["w", "b"], initializers=init, **attributes))


@pytest.mark.parametrize("op, attributes", [
    ("MaxPool", dict(kernel_shape=[3, 2])),                                    # strides default 1 (torch: kernel)
    ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),            # count_include_pad default 0
    ("AveragePool", dict(kernel_shape=[3, 3], pads=[2, 0, 1, 2], count_include_pad=1, strides=[2, 2])),
    ("AveragePool", dict(kernel_shape=[2, 3], auto_pad="SAME_UPPER", strides=[2, 2])),
    ("AveragePool", dict(kernel_shape=[3, 2], auto_pad="SAME_LOWER", strides=[2, 3], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 0, 0, 1], ceil_mode=1, strides=[2, 2])),
    ("LpPool", dict(kernel_shape=[2, 3], p=3, strides=[2, 1])),               # |x|^p
    ("LpPool", dict(kernel_shape=[3, 3], p=2, pads=[1, 0, 1, 2], dilations=[1, 2])),
    ("GlobalLpPool", dict(p=2)), ("GlobalAveragePool", {}), ("GlobalMaxPool", {})])
def test_pools(op, attributes):
    imported = check(one_node(op, [1, 3, 9, 8], **attributes))
    if op == "MaxPool" and "strides" not in attributes:
        assert "stride: 1" in imported.spec_text


def test_max_unpool():
    nodes = [helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Relu", ["p"], ["r"], name="relu"),
             helper.make_node("MaxUnpool", ["r", "i", "s"], ["y"], kernel_shape=[2, 2], strides=[2, 2], name="up")]
    imported = check(onnx_model(nodes, [1, 3, 7, 6], {"s": np.array([2, 3, 7, 6], np.int64)}))   # check's batch 2
    assert "pool: pool" in imported.spec_text and "return_indices: true" in imported.spec_text


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes(mode):
    init = {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 0], np.int64), "v": np.array(0.25, np.float32)}
    check(one_node("Pad", [1, 3, 5, 6], inputs=["pads", "v"], initializers=init, mode=mode))


@pytest.mark.parametrize("op, mode", [("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"), ("SpaceToDepth", None)])
def test_depth_space(op, mode):
    attributes = {"blocksize": 2} | ({"mode": mode} if mode else {})
    shape = [1, 8, 3, 4] if op == "DepthToSpace" else [1, 3, 4, 6]
    check(one_node(op, shape, **attributes))


RESIZE_CASES = [
    dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    dict(mode="nearest", coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_ceil"),
    dict(mode="nearest", coordinate_transformation_mode="pytorch_half_pixel", nearest_mode="round_prefer_ceil"),
    dict(mode="nearest", coordinate_transformation_mode="half_pixel"),      # round_prefer_floor: no tie at ×2
    dict(mode="linear", coordinate_transformation_mode="half_pixel"),
    dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
    dict(mode="linear", coordinate_transformation_mode="align_corners"),
    dict(mode="cubic", coordinate_transformation_mode="half_pixel"),
    dict(mode="cubic", coordinate_transformation_mode="align_corners")]


@pytest.mark.parametrize("attributes", RESIZE_CASES)
@pytest.mark.parametrize("by", ["scales", "sizes"])
def test_resize_modes(attributes, by):
    init = {"roi": np.array([], np.float32)}
    if by == "scales":
        init |= {"scales": np.array([1, 1, 2, 2], np.float32)}
        inputs = ["roi", "scales"]
    else:                                       # sizes of the spatial axes (axes), not a multiple of the input's
        init |= {"scales": np.array([], np.float32), "sizes": np.array([10, 9], np.int64)}
        inputs = ["roi", "scales", "sizes"]
        attributes = attributes | {"axes": [2, 3]}
    model = one_node("Resize", [1, 3, 5, 4], inputs=inputs, initializers=init, **attributes)
    if by == "sizes" and attributes.get("nearest_mode", "round_prefer_floor") == "round_prefer_floor" \
            and attributes["mode"] == "nearest":
        with pytest.raises(ConvcalcError, match="round_prefer_floor' with coordinate_transformation_mode"
                                                " 'half_pixel'"):
            import_onnx(model)          # 4 → 9: position 4 of the output falls on a tie of ONNX's rounding
        return
    check(model)


def test_upsample_op_before_opset_10():
    init = {"scales": np.array([1, 1, 2, 3], np.float32)}
    check(one_node("Upsample", [1, 2, 3, 4], inputs=["scales"], initializers=init, opset=9, mode="nearest"))


def test_norm_nodes():
    channels = 6
    init = {"s": weights(channels), "b": weights(channels, seed=1), "m": weights(channels, seed=2),
            "v": np.random.default_rng(3).uniform(0.5, 1.5, channels).astype(np.float32),
            "gs": weights(3, seed=4), "gb": weights(3, seed=5), "ls": weights(5, seed=6)}
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["a"], epsilon=1e-3),
             helper.make_node("LRN", ["a"], ["c"], size=3, alpha=0.02, beta=0.6, bias=2.0),
             helper.make_node("InstanceNormalization", ["c", "s", "b"], ["d"], epsilon=1e-4),
             helper.make_node("GroupNormalization", ["d", "gs", "gb"], ["e"], num_groups=3),   # opset 18: per group
             helper.make_node("LayerNormalization", ["e", "ls"], ["y"], axis=-1)]
    check(onnx_model(nodes, [1, channels, 4, 5], init), atol=1e-3)


def test_gemm_and_matmul():
    init = {"B": weights(12, 5), "C": weights(1, 5, seed=1), "M": weights(5, 3, seed=2), "A": weights(3, seed=3)}
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "B", "C"], ["g"], alpha=0.5, beta=2.0, transB=0, name="fc1"),
             helper.make_node("MatMul", ["g", "M"], ["h"], name="fc2"),
             helper.make_node("Add", ["h", "A"], ["y"], name="fc2_bias")]
    imported = check(onnx_model(nodes, [1, 3, 2, 2], init))
    assert imported.spec_text.count("type: Linear") == 2 and "LearnableTensor" not in imported.spec_text


def test_channel_shuffle_pattern_and_constant_shapes():
    """Reshape → Transpose → Reshape with shapes built by Shape/Gather/Concat from the tensor: one ChannelShuffle."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
             helper.make_node("Concat", ["n1", "grouped"], ["s1"], axis=0),
             helper.make_node("Reshape", ["x", "s1"], ["r1"], name="shuffle"),
             helper.make_node("Transpose", ["r1"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Concat", ["n1", "flat"], ["s2"], axis=0),
             helper.make_node("Reshape", ["t", "s2"], ["y"])]
    init = {"zero": np.array(0, np.int64), "axes0": np.array([0], np.int64),
            "grouped": np.array([3, 2, 4, 5], np.int64), "flat": np.array([6, 4, 5], np.int64)}
    imported = check(onnx_model(nodes, [1, 6, 4, 5], init))
    assert imported.spec_text.splitlines()[-1] == "  - {name: shuffle, type: ChannelShuffle, groups: 3}"


def test_split_slice_squeeze():
    init = {"split": np.array([2, 4], np.int64), "st": np.array([1], np.int64), "en": np.array([-1], np.int64),
            "ax": np.array([3], np.int64), "sq": np.array([2], np.int64)}
    nodes = [helper.make_node("Split", ["x", "split"], ["a", "b"], axis=1, name="split"),
             helper.make_node("Slice", ["b", "st", "en", "ax"], ["c"], name="narrow"),
             helper.make_node("Relu", ["a"], ["d"], name="relu"),
             helper.make_node("Slice", ["d", "st", "en", "ax"], ["e"], name="narrow2"),
             helper.make_node("Concat", ["e", "c"], ["f"], axis=1),
             helper.make_node("Unsqueeze", ["f", "sq"], ["g"]),
             helper.make_node("Squeeze", ["g", "sq"], ["y"])]
    imported = check(onnx_model(nodes, [1, 6, 3, 5], init))
    assert "from: split.1" in imported.spec_text and "from: split.0" in imported.spec_text


# ============================================================================ what convcalc cannot express

def _relu_exp_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Exp", ["r"], ["e"], name="exp"),
             helper.make_node("Relu", ["e"], ["y"], name="relu2")]
    return onnx_model(nodes, [1, 3, 6, 6], W33)


@pytest.mark.parametrize("model, message", [
    (_relu_exp_model(), "node 'exp' (Exp): convcalc has no layer for the ONNX op Exp"),
    (one_node("LRN", [1, 4, 3, 3], size=4),
     "node 'the_lrn' (LRN): size 4: ONNX's even window puts the extra channel after, torch's LocalResponseNorm"
     " before (convcalc's); only odd sizes agree"),
    (one_node("HardSigmoid", [1, 4, 3, 3]),
     "node 'the_hardsigmoid' (HardSigmoid): alpha 0.2, beta 0.5: convcalc's Hardsigmoid is relu6(x + 3)/6"
     " (alpha 1/6, beta 1/2)"),
    (one_node("Resize", [1, 3, 4, 4], inputs=["", "s"], initializers={"s": np.array([1, 1, 2, 2], np.float32)},
              mode="linear", coordinate_transformation_mode="asymmetric"),
     "node 'the_resize' (Resize): coordinate_transformation_mode 'asymmetric' with mode 'linear': convcalc's"
     " Upsample interpolates with half_pixel or align_corners only"),
    (one_node("Softmax", [1, 4, 3, 3], opset=11, axis=1),
     "node 'the_softmax' (Softmax): axis 1 before opset 13 normalises over every axis from 1 on (a flattened 2-D"
     " softmax over [4, 3, 3]); convcalc's Softmax takes one dim"),
    (onnx_model([helper.make_node("Sub", ["x", "x"], ["y"], name="diff")], [1, 2, 3, 3]),
     "node 'diff' (Sub): a difference of two computed tensors: convcalc has Add and Multiply of tensors only"),
    (one_node("Transpose", [1, 2, 3, 3], perm=[1, 0, 2, 3]),
     "node 'the_transpose' (Transpose): perm [1, 0, 2, 3] moves the batch axis: convcalc's Permute keeps it"
     " first"),
    (one_node("Pad", [1, 2, 3, 3], inputs=["p"], initializers={"p": np.array([0, 1, 0, 0, 0, 1, 0, 0])}),
     "node 'the_pad' (Pad): pads [0, 1, 0, 0, 0, 1, 0, 0] pad axis 1 (the channels); convcalc's padding layers"
     " pad the spatial axes only"),
])
def test_one_line_errors(model, message):
    with pytest.raises(ConvcalcError) as caught:
        import_onnx(model)
    assert str(caught.value) == message


def test_symbolic_input_size():
    model = one_node("Relu", [1, 3, 4, 4])
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    with pytest.raises(ConvcalcError, match="the input 'x' has a symbolic size on axis 2 \\('height'\\); convcalc"
                                            " needs the model's input size"):
        import_onnx(model)


def test_partial_imports_up_to_the_first_node_it_cannot_express():
    imported = import_onnx(_relu_exp_model(), partial=True)
    assert imported.skipped == ["node 'exp' (Exp): convcalc has no layer for the ONNX op Exp", "node 'relu2' (Relu)"]
    assert [node.name for node in imported.graph().nodes] == ["conv", "relu"]
    assert ("# --partial: 2 node(s) not imported; it stopped at node 'exp' (Exp): convcalc has no layer for the ONNX"
            " op Exp") in imported.spec_text


def test_without_the_onnx_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ConvcalcError) as caught:
        import_onnx(b"")
    assert str(caught.value) == "convcalc import needs the onnx package: pip install 'convcalc[onnx]'"
    result = CliRunner().invoke(app, ["import", "model.onnx"])
    assert result.exit_code == 2
    assert result.stderr == "error: convcalc import needs the onnx package: pip install 'convcalc[onnx]'\n"


# ============================================================================ the command line

@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small residual classifier as an .onnx file (random initializers)."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.conv = nn.Conv2d(8, 8, 3, padding=1)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))

        def forward(self, x):
            x = self.stem(x)
            return self.head(torch.relu(self.conv(x) + x))

    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    onnx.save(randomised(export(Net(), (3, 12, 12))), path)
    return path


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_import_writes_spec_and_weights(model_file, tmp_path):
    spec, npz = tmp_path / "net.yaml", tmp_path / "net.npz"
    result = invoke("import", model_file, "-o", spec, "--weights", npz)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"spec written to {spec}\n6 weight arrays written to {npz}\n"
    text = spec.read_text()
    assert text.startswith("# imported from net.onnx by convcalc import (ONNX opset 18, ir 8, produced by pytorch")
    assert "name: net\ninput: [3, 12, 12]\n" in text
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 12)).astype(np.float32)
    from_spec = convcalc.run(str(spec), x, weights=str(npz), rf_check=False)
    np.testing.assert_allclose(from_spec.output, ort_run(onnx.load(model_file), x), rtol=1e-4, atol=1e-5)
    assert invoke("import", model_file).stdout == text           # no -o: the spec on standard output


def test_cli_commands_take_an_onnx_model(model_file):
    result = invoke("analyze", model_file, "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json
    assert json.loads(result.stdout)["totals"]["params"] == 224 + 584 + 45    # the BatchNorm folded by the export
    result = invoke("run", model_file, "--format", "json", "--rf-check", "none")
    assert result.exit_code == 0, result.stderr
    for command in (["rf", model_file], ["lint", model_file, "--format", "json"]):
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.stderr)
    assert str(model_file) in invoke("lint", model_file).stdout


def test_cli_run_uses_the_models_initializers(model_file, tmp_path):
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = invoke("run", model_file, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                    "--rf-check", "none")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), ort_run(onnx.load(model_file), x), rtol=1e-4,
                               atol=1e-5)


def test_cli_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    onnx.save(_relu_exp_model(), bad)
    result = invoke("import", bad)
    assert result.exit_code == 2
    assert result.stderr == "error: node 'exp' (Exp): convcalc has no layer for the ONNX op Exp\n"
    assert invoke("analyze", bad).stderr == result.stderr
    result = invoke("import", bad, "--partial", "-o", tmp_path / "part.yaml")
    assert result.exit_code == 0
    assert result.stderr.endswith("--partial: 2 nodes not imported; it stopped at node 'exp' (Exp): convcalc has"
                                  " no layer for the ONNX op Exp\n")
    result = invoke("import", tmp_path / "missing.onnx")
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path / 'missing.onnx'}: no such ONNX file\n")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    result = invoke("analyze", tmp_path / "junk.onnx")
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {tmp_path / 'junk.onnx'}: not an ONNX model")
    result = invoke("analyze", bad, "--set", "a=1")
    assert result.exit_code == 2 and "an ONNX model has none" in result.stderr


# ============================================================================ readable output: names, branches, blocks

class BasicBlock(nn.Module):
    def __init__(self, channels, stride=1):
        super().__init__()
        inputs = channels if stride == 1 else channels // 2
        self.conv1 = nn.Conv2d(inputs, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None if stride == 1 else nn.Sequential(nn.Conv2d(inputs, channels, 1, stride, bias=False),
                                                                 nn.BatchNorm2d(channels))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(8), BasicBlock(8), BasicBlock(8))
        self.layer2 = nn.Sequential(BasicBlock(16, 2), BasicBlock(16), BasicBlock(16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.conv1(x)))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_repeated_residual_units_become_blocks():
    """layer1.0-2 and layer2.1-2 (torch's names kept by ``names:``, so the weights' keys are the module's); layer2.0
    (with its downsample) stays as it is; ``from:`` only where the graph branches."""
    model = TinyResNet()
    imported = check(export(model, (3, 16, 16)))
    text = imported.spec_text
    assert "  - {type: Unit1, repeat: 3, names: \"layer1.${index}\"}\n" in text
    assert "  - {type: Unit2, repeat: 2, names: \"layer2.${index + 1}\"}\n" in text
    assert "      - {name: add, type: Add, from: [conv2, input]}\n" in text
    assert "  - {name: layer2.0.conv1, type: Conv2d, out_channels: 16, kernel_size: 3, stride: 2, padding: 1, from:" \
           " layer1.2}\n" in text
    assert set(imported.weights) == {k for k in model.state_dict() if "bn" not in k and "downsample.1" not in k
                                     and "num_batches" not in k} | {k.replace("weight", "bias") for k in
                                                                    model.state_dict() if "conv" in k or
                                                                    "downsample.0" in k}
    assert param_count(imported) == sum(v.size for v in imported.weights.values())


def _light(name: str):
    import os
    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", f"light_{name}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"the onnx package ships no {path}")
    return path


def test_light_resnet50_and_shufflenet():
    """The onnx package's light models (caffe2 exports, opset 9, unscoped node names n0, n1, ...): ResNet-50 has
    torchvision's published 25,557,032 parameters and 4,089,184,256 MACs, its identical bottlenecks in blocks
    named block1..4; ShuffleNet's Reshape → Transpose → Reshape become ChannelShuffle layers (values against
    onnxruntime: tests/test_onnx_conformance.py)."""
    imported = import_onnx(_light("resnet50"))
    summary = analyze(imported.graph())
    assert (summary.totals.params, summary.totals.macs) == (25_557_032, 4_089_184_256)
    assert [line for line in imported.spec_text.splitlines() if "repeat" in line] == [
        "  - {name: block1, type: Unit1, repeat: 2}", "  - {name: block2, type: Unit2, repeat: 3}",
        "  - {name: block3, type: Unit3, repeat: 5}", "  - {name: block4, type: Unit4, repeat: 2}"]
    assert "block3.4.conv2d_3.weight" in imported.weights and "block3.4.batchnorm2d_3.running_var" in imported.weights
    assert imported.spec_text.startswith("# imported from light_resnet50.onnx by convcalc import (ONNX opset 9, ir 3,"
                                         " produced by onnx-caffe2)\nname: light_resnet50\ninput: [3, 224, 224]\n")
    imported = import_onnx(_light("shufflenet"))
    text = imported.spec_text       # 3 in the blocks' definitions, 3 in the stride-2 units before them
    assert text.count("type: ChannelShuffle, groups: 4}") == 6 and "Permute" not in text and "Reshape" not in text
    assert analyze(imported.graph()).totals.params == 1_393_320


class InvertedResidual(nn.Module):
    """MobileNetV2's block with a squeeze-and-excitation gate (ReLU6 as Clip, depthwise conv, broadcast Mul)."""

    def __init__(self, channels):
        super().__init__()
        hidden = channels * 2
        self.conv = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
                                  nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                                  nn.BatchNorm2d(hidden), nn.ReLU6())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden, 4, 1), nn.ReLU(), nn.Conv2d(4, hidden, 1),
                                nn.Hardsigmoid())
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        y = self.conv(x)
        return x + self.project(y * self.se(y))


def test_mobilenet_like_blocks():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Sequential(*[InvertedResidual(8) for _ in range(3)]),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 4))
    imported = check(export(model, (3, 16, 16)))
    assert "  - {type: Unit1, repeat: 3, names: \"1.${index}\"}\n" in imported.spec_text
    assert "type: ReLU6" in imported.spec_text and "type: Multiply" in imported.spec_text


def test_a_repeated_unit_reuses_its_block():
    model = nn.Sequential(nn.Sequential(BasicBlock(8), BasicBlock(8)), nn.MaxPool2d(2),
                          nn.Sequential(BasicBlock(8), BasicBlock(8), BasicBlock(8)))
    text = check(export(model, (8, 8, 8))).spec_text
    assert text.count("  Unit1:\n") == 1 and "Unit2" not in text
    assert "  - {type: Unit1, repeat: 2, names: \"0.${index}\"}\n" in text
    assert "  - {type: Unit1, repeat: 3, names: \"2.${index}\"}\n" in text


def test_sum_of_three_concat_along_width_and_a_node_the_output_does_not_need():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="a"),
             helper.make_node("Sigmoid", ["x"], ["b"], name="b"),
             helper.make_node("Sum", ["a", "b", "x"], ["s"], name="sum"),
             helper.make_node("Concat", ["s", "a"], ["y"], axis=3, name="join"),
             helper.make_node("Tanh", ["y"], ["dead"], name="unused")]
    imported = check(onnx_model(nodes, [1, 2, 3, 4], {}))
    assert "output:" not in imported.spec_text and "unused" not in imported.spec_text   # what the output needs only
    assert "  - {name: sum, type: Add, from: [a, b, input]}\n" in imported.spec_text
    assert "  - {name: join, type: Concat, dim: 3, from: [sum, a]}\n" in imported.spec_text


def test_a_fixed_batch_size_in_the_models_reshape():
    """A model exported at batch 2 names its batch in Reshape's shape: still the batch axis, kept."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Reshape", ["r", "shape"], ["y"], name="flat")]
    model = onnx_model(nodes, [2, 3, 4, 5], {"shape": np.array([2, -1], np.int64)})
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    imported = check(model)
    assert imported.spec_text.endswith("  - {name: flat, type: Flatten}\n") and imported.input_shape == (3, 4, 5)


def test_constant_nodes_and_constant_of_shape_as_weights():
    """A Conv whose weight is a Constant node and whose bias ConstantOfShape builds (value 0.5), a Transpose of a
    weight folded: all plain weights of the spec."""
    weight = weights(4, 3, 3, 3)
    nodes = [helper.make_node("Constant", [], ["wt"], value=numpy_helper.from_array(weight.transpose(1, 0, 2, 3))),
             helper.make_node("Transpose", ["wt"], ["w"], perm=[1, 0, 2, 3]),
             helper.make_node("ConstantOfShape", ["n"], ["b"],
                              value=numpy_helper.from_array(np.array([0.5], np.float32))),
             helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], name="conv")]
    imported = check(onnx_model(nodes, [1, 3, 6, 6], {"n": np.array([4], np.int64)}))
    np.testing.assert_array_equal(imported.weights["conv.bias"], np.full(4, 0.5, np.float32))
    assert imported.spec_text.splitlines()[-1] == "  - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3}"


def test_gather_of_consecutive_indices():
    nodes = [helper.make_node("Gather", ["x", "two"], ["a"], axis=1, name="pick"),      # x[:, 2]: [N, 4, 5]
             helper.make_node("Gather", ["a", "rows"], ["y"], axis=2, name="rows")]     # [..., 1:3]
    imported = check(onnx_model(nodes, [1, 3, 4, 5], {"two": np.array(2, np.int64),
                                                        "rows": np.array([1, 2], np.int64)}))
    assert "type: Narrow, dim: 1, start: 2, length: 1" in imported.spec_text
    with pytest.raises(ConvcalcError, match="indices \\[2, 0\\]: convcalc's Narrow keeps consecutive positions"):
        import_onnx(one_node("Gather", [1, 3, 4, 5], inputs=["i"], initializers={"i": np.array([2, 0])}, axis=1))
