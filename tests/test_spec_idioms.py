"""Issue 17, the spec language's idioms: sizes taken from the graph (``{like: NAME}``, ``in_shape``, ``shape()``),
blocks that read their input's shape (``in_channels``), conditional residuals (``when`` on a merge), the expression
language's indexing and functions (torchvision's ``_make_divisible``), precedence made visible (lint CC209), and
repeats named as torchvision names them (``features.N``, ``denseblock1.denselayer1``).

Oracles: torch modules written as torchvision writes MobileNetV2, DenseNet and FCN's upsampling head (state_dict keys,
shapes and float64 outputs with the same weights), torchvision's published parameter counts, and torchvision's
``_make_divisible`` source. Each idiom follows ``--input-size``; each error is one line with file:line:col.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import convcalc
from convcalc.cli import app
from convcalc.errors import ConvcalcError, GraphError
from convcalc.execution.network import Network
from convcalc.lint import LintConfig, lint_paths
from convcalc.spec import limits
from convcalc.spec.expr import ExprError, evaluate

ROOT = Path(__file__).resolve().parent.parent


def readme_spec(name: str) -> str:
    """The YAML example named ``name`` in the README's "The spec format" section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The spec format"):text.index("## Layer types")]
    for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL):
        if re.search(rf"^name: {name}$", block, re.MULTILINE):
            return block
    raise AssertionError(f"no README example named {name}")


def spec_of(text: str, filename: str = "net.yaml") -> convcalc.Spec:
    return convcalc.parse_spec(textwrap.dedent(text).lstrip("\n"), filename)


def graph_of(text: str, overrides=None) -> convcalc.Graph:
    return convcalc.build_graph(spec_of(text), overrides)


def error_of(text: str, kind: type = ConvcalcError, shape=None) -> str:
    """The one-line message of building and analysing ``text``, which must fail with ``kind``."""
    with pytest.raises(kind) as info:
        convcalc.analyze(spec_of(text), shape)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def state_of(model: nn.Module) -> dict[str, np.ndarray]:
    return {key: value.detach().numpy() for key, value in model.state_dict().items()}


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BatchNorm statistics (so that a wrong wiring cannot hide behind defaults), float64."""
    torch.manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


def assert_runs_as_torch(graph: convcalc.Graph, model: nn.Module, shape: tuple[int, ...], seed: int = 1) -> None:
    """convcalc's float64 output equals the torch model's, with the torch model's state_dict, at ``shape``."""
    x = np.random.default_rng(seed).standard_normal((2, *shape))
    expected = model(torch.from_numpy(x)).detach().numpy()
    network = Network(graph, shape, state=state_of(model), dtype="float64")
    got = network.run(x).output
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


def assert_same_keys(summary: convcalc.Summary, model: nn.Module) -> None:
    """Every parameter and buffer: the same state_dict key and shape as the torch model's."""
    ours = {f"{row.name}.{key}": tuple(shape) for row in summary.layers
            for key, shape in {**row.weights, **row.buffer_shapes}.items()}
    theirs = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert ours == theirs


# =========================================================================== torch oracles (torchvision's code)

def _make_divisible(v, divisor, min_value=None):
    """torchvision.models._utils._make_divisible, as published."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    # Make sure that round down does not go down by more than 10%.
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNActivation(nn.Sequential):
    def __init__(self, inp, oup, kernel_size=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(inp, oup, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNActivation(inp, hidden_dim, kernel_size=1))
        layers.extend([ConvBNActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
                       nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)])
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, width_mult=1.0, round_nearest=8, num_classes=1000):
        super().__init__()
        input_channel, last_channel = 32, 1280
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                   [6, 320, 1, 1]]
        input_channel = _make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features = [ConvBNActivation(3, input_channel, stride=2)]
        for t, c, n, s in setting:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t))
                input_channel = output_channel
        features.append(ConvBNActivation(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class DenseLayer(nn.Module):
    def __init__(self, num_input_features, growth_rate, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, features):
        prev = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(prev))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers, num_input_features, bn_size, growth_rate):
        super().__init__()
        for i in range(num_layers):
            self.add_module("denselayer%d" % (i + 1), DenseLayer(num_input_features + i * growth_rate, growth_rate,
                                                                 bn_size))

    def forward(self, init_features):
        features = [init_features]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, num_input_features, num_output_features):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                 num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))]))
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module("denseblock%d" % (i + 1), DenseBlock(num_layers, num_features, bn_size,
                                                                          growth_rate))
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module("transition%d" % (i + 1), Transition(num_features, num_features // 2))
                num_features = num_features // 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

    def forward(self, x):
        out = F.adaptive_avg_pool2d(F.relu(self.features(x)), (1, 1))
        return self.classifier(torch.flatten(out, 1))


class SegHead(nn.Module):
    """FCN's head as torchvision runs it: features, classifier, then F.interpolate to the input's size."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 16, 3, stride=8, padding=1)
        self.classifier = nn.Conv2d(16, 21, 1)

    def forward(self, x):
        input_shape = x.shape[-2:]
        x = self.classifier(F.relu(self.backbone(x)))
        return F.interpolate(x, size=input_shape, mode="bilinear", align_corners=False)


# =========================================================================== the README's examples

def test_readme_examples_analyse():
    seg = convcalc.analyze(spec_of(readme_spec("seg_head")))
    assert seg.output_shape == (21, 64, 64)
    assert convcalc.analyze(spec_of(readme_spec("seg_head")), (3, 50, 70)).output_shape == (21, 50, 70)

    mobilenet = convcalc.analyze(spec_of(readme_spec("mobilenet_v2")))
    assert mobilenet.totals.params == 3_504_872        # torchvision's published mobilenet_v2 figures
    assert round(mobilenet.totals.macs / 1e9, 2) == 0.30
    assert mobilenet.output_shape == (1000,)

    dense = convcalc.analyze(spec_of(readme_spec("densenet121")))
    assert dense.totals.params == 7_978_856             # torchvision's published densenet121 figures
    assert round(dense.totals.macs / 1e9, 2) == 2.83
    names = {row.name for row in dense.layers}
    assert {"features.denseblock1.denselayer1.norm1", "features.denseblock1.denselayer6.conv2",
            "features.denseblock4.denselayer16.conv1", "features.transition3.pool", "features.norm5"} <= names
    assert not any(".denselayer0." in name or "denseblock1.0" in name for name in names)


def test_readme_mobilenet_v2_is_torchvisions():
    graph = convcalc.build_graph(spec_of(readme_spec("mobilenet_v2")))
    model = randomize(MobileNetV2())
    summary = convcalc.analyze(graph)
    assert_same_keys(summary, model)
    assert summary.totals.params == sum(p.numel() for p in model.parameters())
    residuals = {row.name.rsplit(".", 1)[0] for row in summary.layers if row.type == "Add"}
    assert residuals == {f"features.{i}" for i, block in enumerate(model.features)
                         if getattr(block, "use_res_connect", False)}
    # outputs: a narrow one (--set width_mult=0.35: make_divisible at work) at another input size than the spec's
    narrow = convcalc.build_graph(spec_of(readme_spec("mobilenet_v2")), {"width_mult": 0.35})
    model = randomize(MobileNetV2(width_mult=0.35))
    assert_same_keys(convcalc.analyze(narrow), model)
    assert_runs_as_torch(narrow, model, (3, 40, 32))


def test_readme_densenet_is_torchvisions():
    spec = spec_of(readme_spec("densenet121"))
    assert_same_keys(convcalc.analyze(spec), DenseNet())
    graph = convcalc.build_graph(spec, {"stages": [2, 3, 2, 1]})     # --set: a small one to run
    model = randomize(DenseNet(block_config=(2, 3, 2, 1)))
    assert_same_keys(convcalc.analyze(graph), model)
    assert_runs_as_torch(graph, model, (3, 64, 48))


# =========================================================================== sizes taken from the graph

def test_upsample_to_the_input_size_follows_every_input_size():
    spec = spec_of(readme_spec("seg_head"))
    graph = convcalc.build_graph(spec)
    model = randomize(SegHead())
    for shape in [(3, 64, 64), (3, 50, 70), (3, 33, 17)]:
        assert convcalc.analyze(graph, shape).output_shape == (21, *shape[1:])
        assert convcalc.analyze(spec, shape).output_shape == (21, *shape[1:])
        assert_runs_as_torch(graph, model, shape)
    assert graph.at_input((3, 64, 64)) is graph
    # the CLI: --input-size / -i, analyze and run
    result = CliRunner().invoke(app, ["analyze", "-", "-i", "3x40x56", "--format", "json"],
                                input=readme_spec("seg_head"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output_shape"] == [21, 40, 56]


def test_a_graph_that_reads_no_shape_is_not_rebuilt():
    graph = graph_of("""
        input: [3, 16, 16]
        layers: [{type: Conv2d, out_channels: 4, kernel_size: 3}, {type: Upsample, size: [9, 9]}]
        """)
    assert graph.rebuild is None
    assert convcalc.analyze(graph, (3, 20, 20)).output_shape == (4, 9, 9)


@pytest.mark.parametrize("size", ["{like: input}", "\"${in_shape[1:]}\"", "\"${shape('input')[1:]}\""])
def test_like_inside_a_block_is_the_blocks_input(size):
    text = f"""
        input: [3, 32, 32]
        blocks:
          Head:
            layers:
              - {{type: Conv2d, out_channels: 4, kernel_size: 1, stride: 4}}
              - {{type: Upsample, size: {size}, mode: nearest}}
        layers:
          - {{name: stem, type: Conv2d, out_channels: 8, kernel_size: 2, stride: 2}}    # 8x16x16
          - {{name: head, type: Head}}
        """
    assert convcalc.analyze(spec_of(text)).output_shape == (4, 16, 16)
    assert convcalc.analyze(spec_of(text), (3, 20, 12)).output_shape == (4, 10, 6)


def test_like_names_any_earlier_layer():
    text = """
        input: [3, 32, 32]
        layers:
          - {name: stem, type: Conv2d, out_channels: 8, kernel_size: 2, stride: 2}
          - {name: down, type: Conv2d, out_channels: 8, kernel_size: 3, stride: 4}
          - {name: up, type: Upsample, size: {like: stem}, mode: bilinear}
          - {name: up2, type: Upsample, size: "${shape('stem')[1:]}", mode: bilinear, from: down}
          - {type: Add, from: [stem, up, up2]}
        """
    summary = convcalc.analyze(spec_of(text))
    assert summary.layer("up").output_shape == summary.layer("up2").output_shape == (8, 16, 16)
    assert convcalc.analyze(spec_of(text), (3, 64, 40)).output_shape == (8, 32, 20)


def test_like_in_a_block_argument_means_the_size_where_the_block_is_used():
    text = """
        input: [3, 24, 24]
        blocks:
          Up: {args: {to: required}, layers: [{type: Upsample, size: $to}]}
        layers:
          - {name: stem, type: Conv2d, out_channels: 2, kernel_size: 1}
          - {type: MaxPool2d, kernel_size: 4}
          - {type: Up, to: {like: stem}}
        """
    assert convcalc.analyze(spec_of(text)).output_shape == (2, 24, 24)
    assert convcalc.analyze(spec_of(text), (3, 8, 12)).output_shape == (2, 8, 12)


@pytest.mark.parametrize("layer, message", [
    ("{type: Upsample, size: {like: nope}}",
     "net.yaml:4:28: 'size: {like: ...}' refers to 'nope', which is not a layer defined before this one in this spec;"
     " valid: flat, input"),
    ("{type: Upsample, size: \"${shape('nope')[1:]}\"}",
     "net.yaml:4:28: in 'size': shape() refers to 'nope', which is not a layer defined before this one in this"
     " spec; valid: flat, input"),
    ("{type: Upsample, size: \"${shape(3, 4)}\"}",
     "net.yaml:4:28: in 'size': shape() takes one layer name, e.g. shape('input') or shape('layer1.0.conv1')"),
    ("{type: Linear, out_features: {like: flat}}",
     "net.yaml:4:34: 'out_features: {like: flat}': 'flat' has no spatial size (its shape is [48])"),
    ("{type: Upsample, size: \"${in_shape[3]}\"}",
     "net.yaml:4:28: in 'size': index 3 is out of range for a list of 3 items"),
])
def test_size_reference_errors_are_one_located_line(layer, message):
    text = f"""
        input: [3, 4, 4]
        layers:
          - {{name: flat, type: Flatten}}
          - {layer}
        """
    assert error_of(text) == message


def test_a_shape_error_before_the_reference_names_its_layer():
    message = error_of("""
        input: [3, 4, 4]
        layers:
          - {name: big, type: Conv2d, out_channels: 2, kernel_size: 9}
          - {type: Upsample, size: {like: big}}
        """, convcalc.ShapeError)
    assert message == ("net.yaml:3:48: layer 'big' (Conv2d): kernel_size 9 spans 9, but the padded input is 4 wide"
                       " along the height")


# =========================================================================== blocks that read their input's shape

SE_SPEC = """
    input: [16, 8, 8]
    blocks:
      SE:                             # squeeze-and-excitation: the block's width is its input's
        args: {squeeze: "${make_divisible(in_channels // 4, 8)}"}
        layers:
          - {name: avgpool, type: AdaptiveAvgPool2d, output_size: 1}
          - {name: fc1, type: Conv2d, out_channels: $squeeze, kernel_size: 1}
          - {name: relu, type: ReLU}
          - {name: fc2, type: Conv2d, out_channels: $in_channels, kernel_size: 1}
          - {name: scale, type: Hardsigmoid}
          - {type: Multiply, from: [input, scale]}
    layers:
      - {name: conv, type: Conv2d, out_channels: 40, kernel_size: 3, padding: 1}
      - {name: se, type: SE}
    """


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation with Hardsigmoid, as MobileNetV3 uses it."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.relu = nn.ReLU()
        self.scale = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.scale(self.fc2(self.relu(self.fc1(self.avgpool(x)))))


class ConvSE(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 40, 3, padding=1)
        self.se = SqueezeExcitation(40, _make_divisible(40 // 4, 8))

    def forward(self, x):
        return self.se(self.conv(x))


def test_a_block_reads_its_input_channels():
    graph = graph_of(SE_SPEC)
    summary = convcalc.analyze(graph)
    assert summary.layer("se.fc1").output_shape == (16, 1, 1)      # make_divisible(40 // 4, 8) = 16
    assert summary.layer("se.fc2").output_shape == (40, 1, 1)
    model = randomize(ConvSE(16))
    assert_same_keys(summary, model)
    assert_runs_as_torch(graph, model, (16, 8, 8))
    assert_runs_as_torch(graph, model, (16, 5, 9))


def test_in_channels_follows_the_input_size_option():
    text = """
        input: [3, 8, 8]
        layers:
          - {type: Conv2d, out_channels: "${in_channels * 2}", kernel_size: 1}
        """
    assert convcalc.analyze(spec_of(text)).output_shape == (6, 8, 8)
    assert convcalc.analyze(spec_of(text), (5, 4, 4)).output_shape == (10, 4, 4)
    result = CliRunner().invoke(app, ["analyze", "-", "-i", "7x3x3", "--format", "json"], input=textwrap.dedent(text))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output_shape"] == [14, 3, 3]


def test_what_in_channels_means_beside_arguments_of_that_name():
    text = """
        input: [3, 8, 8]
        args: {in_channels: 100}
        blocks:
          Auto: {layers: [{type: Conv2d, out_channels: $in_channels, kernel_size: 1}]}
          Given:
            args: {in_channels: 7}
            layers: [{type: Conv2d, out_channels: $in_channels, kernel_size: 1}]
        layers:
          - {name: top, type: Conv2d, out_channels: $in_channels, kernel_size: 1}   # the top-level arg: 100
          - {name: auto, type: Auto}                                            # the block's input: 100
          - {type: Conv2d, out_channels: 4, kernel_size: 1}
          - {name: auto2, type: Auto}                                           # the block's input: 4
          - {name: given, type: Given}                                          # the block's argument: 7
        """
    summary = convcalc.analyze(spec_of(text))
    assert [summary.layer(name).output_shape[0] for name in
            ("top", "auto.conv2d_1", "auto2.conv2d_1", "given.conv2d_1")] == [100, 100, 4, 7]


# =========================================================================== conditional residuals

RESIDUAL_SPEC = """
    input: [8, 6, 6]
    blocks:
      Block:
        args: {out: required, stride: 1}
        layers:
          - {name: conv, type: Conv2d, out_channels: $out, kernel_size: 3, stride: $stride, padding: 1}
          - {name: add, type: Add, from: [input, conv], when: "${stride == 1 and in_channels == out}"}
          - {type: ReLU}
    layers:
      - {name: b0, type: Block, out: 8}
      - {name: b1, type: Block, out: 16}
      - {name: b2, type: Block, out: 16, stride: 2}
      - {name: b3, type: Block, out: 16}
    """


def test_when_on_a_merge_makes_a_conditional_residual():
    summary = convcalc.analyze(spec_of(RESIDUAL_SPEC))
    adds = [row.name for row in summary.layers if row.type == "Add"]
    assert adds == ["b0.add", "b3.add"]
    assert summary.layer("b1.relu_1").inputs == ("b1.conv",)      # absent: the ReLU reads the conv
    assert summary.layer("b3.add").inputs == ("b2.relu_1", "b3.conv")


def test_the_type_expression_spelling_still_works():
    text = RESIDUAL_SPEC.replace(
        '{name: add, type: Add, from: [input, conv], when: "${stride == 1 and in_channels == out}"}',
        '{name: add, type: "${\'Add\' if stride == 1 and in_channels == out else \'Identity\'}",'
        ' from: "${[\'input\', \'conv\'] if stride == 1 and in_channels == out else \'conv\'}"}')
    summary = convcalc.analyze(spec_of(text))
    assert [row.name for row in summary.layers if row.type == "Add"] == ["b0.add", "b3.add"]
    reference = convcalc.analyze(spec_of(RESIDUAL_SPEC))
    assert summary.totals.params == reference.totals.params and summary.totals.macs == reference.totals.macs


def test_a_bypassed_merge_must_follow_one_of_its_inputs():
    message = error_of("""
        input: [8, 6, 6]
        layers:
          - {name: a, type: Conv2d, out_channels: 8, kernel_size: 1}
          - {name: b, type: Conv2d, out_channels: 8, kernel_size: 1, from: input}
          - {type: ReLU}
          - {type: Add, from: [a, b], when: false}
        """)
    assert message == ("net.yaml:6:31: a bypassed layer with several inputs stands for the layer before it, which must"
                       " be one of its inputs (a conditional residual: {type: Add, from: [input, conv], when: ...}"
                       " right after 'conv')")


# =========================================================================== expressions

@pytest.mark.parametrize("source, expected", [
    ("rates[0]", 6), ("rates[-1]", 18), ("rates[1:]", [12, 18]), ("rates[::-1]", [18, 12, 6]), ("'abc'[1]", "b"),
    ("widths['stem']", 32), ("[[1, 2], [3]][0][1]", 2),
    ("min(3, 4)", 3), ("max(rates)", 18), ("min(rates[1:])", 12), ("max(1.0, 0.75)", 1.0), ("abs(-3)", 3),
    ("round(2.5)", 2), ("round(3.5)", 4), ("round(2.675, 2)", 2.67), ("round(1234, -2)", 1200),
    ("int(3.9)", 3), ("int(-3.9)", -3), ("len(rates)", 3), ("7 // 2", 3), ("-7 // 2", -4),
    ("make_divisible(32 * 0.75, 8)", 24), ("_make_divisible(16 * 1.4, 8, min_value=16)", 24),
    ("make_divisible(v=10, divisor=8)", 16), ("max(min(rates), abs(-20))", 20),
])
def test_indexing_and_functions_follow_python(source, expected):
    names = {"rates": [6, 12, 18], "widths": {"stem": 32}}
    result = evaluate(source, names)
    assert result == expected and type(result) is type(expected)


def test_make_divisible_is_torchvisions_digit_for_digit():
    values = [v / 4 for v in range(1, 4 * 200)] + [v * 1.0 for v in range(800, 1400, 7)] + [
        c * m for c in (16, 24, 32, 40, 80, 112, 160, 960, 1280) for m in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4, 2.0)]
    for divisor in (1, 3, 4, 8, 16):
        for v in values:
            assert evaluate("make_divisible(v, d)", {"v": v, "d": divisor}) == _make_divisible(v, divisor)
        assert evaluate("make_divisible(v, d, 24)", {"v": 5.0, "d": divisor}) == _make_divisible(5.0, divisor, 24)


@pytest.mark.parametrize("source, message", [
    ("rates[10**18]", "index 1000000000000000000 is out of range for a list of 3 items"),
    ("rates[1.5]", "an index must be a whole number, got a number (1.5)"),
    ("rates[::0]", "a slice step cannot be zero"),
    ("(3)[0]", "'[]' indexes a list, a string or a mapping, got a number"),
    ("widths['x']", "the mapping has no key 'x' (keys: stem)"),
    ("round(1e308)", "the result 10000000000000000109... is too large (the limit is 9,223,372,036,854,775,807)"),
    ("round(1e400)", "round() cannot make a whole number of inf"),
    ("int(-1e400)", "int() cannot make a whole number of -inf"),
    ("make_divisible(1e308, 8)", "the result 10000000000000000109... is too large (the limit is"
                                 " 9,223,372,036,854,775,807)"),
    ("make_divisible(1e400, 8)", "make_divisible() cannot round inf"),
    ("make_divisible(8, 0)", "make_divisible() needs a divisor other than 0"),
    ("make_divisible(8)", "make_divisible() needs 'divisor'"),
    ("make_divisible(8, 8, 8, 8)", "make_divisible() takes at most 3 arguments, got 4"),
    ("make_divisible(8, 8, size=3)", "make_divisible() has no argument 'size' (its arguments: v, divisor, min_value)"),
    ("min()", "min() needs at least one value"), ("max([])", "max() of an empty list"),
    ("min(1, 'a')", "min() cannot compare a number with a string"), ("max(3)", "max() of one value needs a list, got a"
                                                                         " number"),
    ("max(rates, key=1)", "max() takes no keyword arguments here"),
    ("abs('a')", "abs() needs a number, got a string"), ("len(3)", "len() needs a list, a string or a mapping, got a"
                                                                  " number"),
    ("min(*rates)", "'*' and '**' are not allowed in a call of min()"),
    ("open('f')", "'open' is not a function of the expression language (functions: abs, int, len, make_divisible,"
                  " max, min, round)"),
    ("rates.index(6)", "'rates.index(6)' is not allowed in an expression"),
    ("min(" * 120 + "1" + ")" * 120, f"'{'min(' * 19 + 'm'}...' nests too deeply (at most 100 levels)"),
])
def test_expression_errors_are_plain(source, message):
    with pytest.raises(ExprError) as info:
        evaluate(source, {"rates": [6, 12, 18], "widths": {"stem": 32}})
    assert str(info.value) == message


def test_hostile_arguments_are_answered_without_the_work():
    started = time.perf_counter()
    assert evaluate("round(5, -10**18)", {}) == 0                 # Python's answer, without computing 10**10**18
    assert evaluate("round(123, -19)", {}) == 0
    assert evaluate("round(1.5, 10**18)", {}) == 1.5
    assert evaluate("rates[-10**18:10**18]", {"rates": [1, 2]}) == [1, 2]
    assert time.perf_counter() - started < 1


def test_calls_and_slices_count_their_items_as_steps(monkeypatch):
    monkeypatch.setattr(limits, "MAX_EXPRESSION_STEPS", 1000)
    big = {"xs": list(range(800))}
    assert evaluate("max(xs)", big) == 799
    with pytest.raises(ExprError, match="the expression takes more than 1,000 steps"):
        evaluate("max(xs) + min(xs)", big)
    with pytest.raises(ExprError, match="the expression takes more than 1,000 steps"):
        evaluate("len(xs[1:]) + len(xs[2:])", big)


def test_named_copies_stay_within_the_layer_budget():
    text = """
        input: [3, 4, 4]
        args: {n: 10000}
        blocks:
          B: {layers: [{type: ReLU, repeat: $n, names: "r${index}"}]}
          C: {layers: [{type: B, repeat: $n, names: "b${index}"}]}
        layers:
          - {name: s, type: Sequential, layers: [{type: C, repeat: $n}]}
        """
    started = time.perf_counter()
    message = error_of(text, GraphError)
    assert message.startswith("net.yaml:4:29: the spec expands to more than 100,000 layers (nested repeats multiply)")
    duplicate = error_of("""
        input: [3, 4, 4]
        layers: [{type: ReLU, repeat: 10000, names: "${'r' if index == 9999 else index}"}, {type: ReLU, name: x}]
        """.replace("9999", "9998").replace("else index", "else 'r' if index == 9999 else index"))
    assert duplicate == "net.yaml:2:45: 'names' gives two copies the name 'r' (use ${index} in the pattern)"
    assert time.perf_counter() - started < 30


def test_expressions_in_type_from_names_and_defaults():
    text = """
        input: [3, 8, 8]
        args: {rates: [1, 2, 3], kinds: [ReLU, Tanh]}
        blocks:
          B:
            args: {rate: required, width: "${max(4, rate * 2)}", last: "${width + 1}"}   # defaults use earlier args
            layers:
              - {name: "conv${rate}", type: Conv2d, out_channels: $last, kernel_size: 3, dilation: $rate,
                 padding: $rate}
              - {type: "${kinds[rate % 2]}", from: "${'conv%d' % rate}"}
        layers:
          - {name: a, type: B, rate: "${rates[0]}"}
          - {name: b, type: B, rate: "${rates[-1]}"}
        """
    summary = convcalc.analyze(spec_of(text))
    assert summary.layer("a.conv1").output_shape == (5, 8, 8)
    assert summary.layer("b.conv3").output_shape == (7, 8, 8)
    assert [row.type for row in summary.layers] == ["Conv2d", "Tanh", "Conv2d", "Tanh"]


# =========================================================================== precedence: lint CC209

SHADOW_SPEC = """
input: [3, 16, 16]
args: {groups: 4}
blocks:
  Bottleneck:
    args: {planes: 8, groups: 1}
    layers:
      - {type: Conv2d, out_channels: $planes, kernel_size: 3, padding: 1, groups: $groups}
layers:
  - {type: Conv2d, out_channels: 8, kernel_size: 1}
  - {name: layer1, type: Bottleneck, repeat: 2}
  - {name: layer2, type: Bottleneck}
"""


def lint_text(tmp_path: Path, text: str, name: str = "net.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return [f for f in lint_paths([path], LintConfig()).findings if f.rule == "CC209"]


def test_lint_warns_where_a_block_default_shadows_a_top_level_arg(tmp_path):
    (finding,) = lint_text(tmp_path, SHADOW_SPEC)
    assert (finding.line, finding.column) == (11, 5)
    assert finding.severity.name == "warning"
    assert finding.message == ("block 'Bottleneck' here and in 1 more place takes its own default groups = 1 (line 6),"
                               " not the top-level arg groups = 4 (a block's defaults win over top-level args): pass"
                               " 'groups: $groups' where it is used, or make the default $groups")
    # the rule the warning names: the block's default won
    summary = convcalc.analyze(spec_of(SHADOW_SPEC))
    assert summary.layer("layer2.conv2d_1").params == 8 * 8 * 9 + 8


@pytest.mark.parametrize("change", [
    ("{name: layer1, type: Bottleneck, repeat: 2}", "{name: layer1, type: Bottleneck, repeat: 2, groups: $groups}"),
    ("args: {planes: 8, groups: 1}", "args: {planes: 8, groups: $groups}"),
    ("args: {groups: 4}", "args: {groups: 1}"),
])
def test_no_warning_where_the_value_is_given_or_equal(tmp_path, change):
    text = SHADOW_SPEC.replace(*change)
    if "repeat: 2, groups" in text:
        text = text.replace("{name: layer2, type: Bottleneck}", "{name: layer2, type: Bottleneck, groups: 4}")
    assert lint_text(tmp_path, text) == []


def test_the_rule_is_documented():
    result = CliRunner().invoke(app, ["lint", "--explain", "CC209"])
    assert result.exit_code == 0 and "shadowed-arg" in result.stdout and "block's default" in result.stdout
    readme = (ROOT / "README.md").read_text()
    assert "| CC209 | shadowed-arg | warning |" in readme
    assert "a block's default *wins* over a" in readme.replace("\n", " ")


# =========================================================================== repeats named as torchvision names them

def test_unnamed_repeats_continue_a_sequentials_numbering():
    summary = convcalc.analyze(spec_of("""
        input: [3, 8, 8]
        blocks:
          B: {layers: [{name: conv, type: Conv2d, out_channels: 4, kernel_size: 1}]}
        layers:
          - name: features
            type: Sequential
            layers:
              - {type: Conv2d, out_channels: 4, kernel_size: 1}       # features.0
              - {type: ReLU, repeat: 2}                               # features.1, features.2
              - {type: B, repeat: 3}                                  # features.3 .. features.5
              - {name: tail, type: B, repeat: 2}                      # a named repeat keeps its group: tail.0, tail.1
              - {type: ReLU}                                          # features.7
        """))
    assert [row.name for row in summary.layers] == [
        "features.0", "features.1", "features.2", "features.3.conv", "features.4.conv", "features.5.conv",
        "features.tail.0.conv", "features.tail.1.conv", "features.7"]


def test_names_pattern_and_positional_names():
    summary = convcalc.analyze(spec_of("""
        input: [3, 8, 8]
        blocks:
          B:
            layers:
              - {name: 0, type: Conv2d, out_channels: 4, kernel_size: 1}
              - {name: "1", type: ReLU, from: 0}
        layers:
          - {type: B, repeat: 3, names: "layer${index + 1}", first: {}}
          - {type: Conv2d, out_channels: 4, kernel_size: 1, repeat: 2, names: "head_${'abc'[index]}"}
          - {type: Add, from: [layer2, head_b]}
        """))
    assert [row.name for row in summary.layers] == [
        "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "head_a", "head_b", "add_1"]
    assert summary.layer("add_1").inputs == ("layer2.1", "head_b")
    assert summary.layer("layer1.1").inputs == ("layer1.0",)


@pytest.mark.parametrize("entry, message", [
    ("{type: ReLU, names: \"r${index}\"}",
     "net.yaml:3:25: 'names' names the copies of a 'repeat'; this entry has none"),
    ("{name: r, type: ReLU, repeat: 2, names: \"r${index}\"}", "net.yaml:3:12: 'names' names each copy; drop 'name'"),
    ("{type: ReLU, repeat: 2, names: r}", "net.yaml:3:36: 'names' gives two copies the name 'r' (use ${index} in the"
                                         " pattern)"),
    ("{type: ReLU, repeat: 2, names: \"r ${index}\"}", "net.yaml:3:36: a name made by 'names' 'r 0' may not contain"
                                                     " spaces, control characters or brackets"),
    ("{type: ReLU, repeat: 2, names: [a, b]}", "net.yaml:3:36: 'names' must be a name pattern such as"
                                              " \"layer${index + 1}\", got ['a', 'b']"),
    ("{type: ReLU, repeat: 2, names: \"${foo}\"}", "net.yaml:3:36: in 'names': unknown name 'foo' (known: index,"
                                                 " repeat)"),
    ("{type: ReLU, repeat: 2, inline: true, names: \"r${index}\"}", "net.yaml:3:37: 'names' and 'inline' cannot be"
                                                                  " combined (inline copies continue the enclosing"
                                                                  " numbering)"),
])
def test_names_errors_are_one_located_line(entry, message):
    text = f"input: [3, 4, 4]\nlayers:\n  - {entry}\n"
    got = error_of(text)
    assert got == message


def test_names_and_when_and_shapes_work_in_included_blocks(tmp_path):
    (tmp_path / "common.yaml").write_text(textwrap.dedent("""
        blocks:
          Res:
            layers:
              - {name: conv, type: Conv2d, out_channels: "${in_channels}", kernel_size: 3, padding: 1}
              - {type: Add, from: [input, conv], when: "${in_shape[1] > 4}"}
        """))
    (tmp_path / "net.yaml").write_text(textwrap.dedent("""
        input: [4, 8, 8]
        include: common.yaml
        layers:
          - {type: Res, repeat: 2, names: "res${index}"}
          - {type: MaxPool2d, kernel_size: 4}
          - {name: last, type: Res}
        """))
    summary = convcalc.analyze(convcalc.load_spec(tmp_path / "net.yaml"))
    assert [row.name for row in summary.layers if row.type == "Add"] == ["res0.add_1", "res1.add_1"]
    small = convcalc.analyze(convcalc.load_spec(tmp_path / "net.yaml"), (4, 5, 5))
    assert [row.name for row in small.layers if row.type == "Add"] == ["res0.add_1", "res1.add_1"]
    tiny = convcalc.analyze(convcalc.load_spec(tmp_path / "net.yaml"), (4, 4, 4))
    assert [row.name for row in tiny.layers if row.type == "Add"] == []


def test_a_bypassed_entry_need_not_name_a_type():
    """torchvision writes "no activation" as activation_layer=None: `type: $act` with `when` false is bypassed
    before its type is looked at; an entry that stays in must still name a type."""
    text = ("input: [3, 8, 8]\nargs: {act: null}\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 3}\n"
            "  - {type: $act, when: \"${act != None}\"}\n")
    summary = convcalc.analyze(graph_of(text))
    assert [row.type for row in summary.layers] == ["Conv2d"]
    assert error_of(text + "  - {type: $act}\n") == "net.yaml:6:12: 'type' must be a layer type or block name, got null"
