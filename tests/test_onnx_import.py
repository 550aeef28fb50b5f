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
    checked = convcalc.run(graph, x, weights=imported.weights, rf_check=False)
    assert checked.ok
    assert checked.output.shape == expected.shape
    np.testing.assert_allclose(checked.output, expected, rtol=1e-4, atol=atol, err_msg=imported.spec_text)
    return imported


def onnx_model(nodes, input_shape, initializers=(), opset: int = 18, output: str = "y") -> onnx.ModelProto:
    """A one-input graph of ``nodes`` from 'x' to ``output``, with numpy ``initializers`` {name: array}."""
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()]
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
    """Opset 18 writes GELU (erf) and Mish as several nodes, recognised as one layer; opset 20 has Gelu."""
    imported = check(export(Activations(), (3, 16, 16), opset))
    types = [line.split("type: ")[1].split(",")[0].rstrip("}") for line in imported.spec_text.splitlines()
             if "type: " in line]
    expected = ["LeakyReLU", "ELU", "SELU", "Sigmoid", "Tanh", "Softplus", "Mish", "GELU", "Hardswish",
                "Hardsigmoid", "SiLU", "ReLU6", "Hardtanh", "GELU", "CELU"]
    if opset == 18:       # GELU's tanh form stays the nodes torch writes (Mul, Add, Tanh, ...): exact, not fused
        assert types[4:17] == expected[:13]
    else:
        assert types[4:] == expected
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
    check(export(Norms(), (3, 6, 6), opset), atol=1e-3)


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
