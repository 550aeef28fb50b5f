"""Issue 17's classic ImageNet specs against torchvision 0.28 and the papers: squeezenet1_1, resnext50_32x4d,
googlenet, inception_v3, densenet121, and the original AlexNet with local response normalisation (alexnet_lrn).

Oracles (tests/torchvision_ref.py): torchvision's published ``num_params`` and GMACs (``_ops``, which count
multiply-accumulates), torchvision's own model (every state_dict key and shape, per-module parameters, leaf output
shapes, FlopCounterMode FLOPs = 2 x MACs per layer and in total, float64 outputs with its randomized state_dict
loaded into ``convcalc.run``). AlexNet-LRN has no torchvision model: its oracle is the network written below in
plain torch.nn from the paper's Section 3, and the parameter count worked out by hand from the paper's layer sizes.
Every spec also passes ``convcalc lint`` (its ``expect:`` block included) without an error finding.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import convcalc
from convcalc.lint import LintConfig, lint_paths
from torchvision_ref import SPECS, assert_same_network, assert_same_outputs, build, published, randomize, summary_of
from torchvision_ref import torchvision_models


def _torchvision(factory_name: str, **kwargs):
    """A factory of torchvision's model, built as the spec describes it (no weights, no slow initialisation)."""
    def factory() -> nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return getattr(torchvision_models(), factory_name)(**kwargs)
    return factory


# spec: (weights enum, torchvision factory, a small input size the network takes, for the float64 outputs)
TORCHVISION = {
    "squeezenet1_1": ("SqueezeNet1_1_Weights", _torchvision("squeezenet1_1"), (3, 48, 40)),
    "resnext50_32x4d": ("ResNeXt50_32X4D_Weights", _torchvision("resnext50_32x4d"), (3, 40, 48)),
    "googlenet": ("GoogLeNet_Weights", _torchvision("googlenet", aux_logits=False, transform_input=False,
                                                    init_weights=False), (3, 48, 56)),
    "inception_v3": ("Inception_V3_Weights", _torchvision("inception_v3", aux_logits=False, transform_input=False,
                                                          init_weights=False), (3, 75, 80)),
    "densenet121": ("DenseNet121_Weights", _torchvision("densenet121"), (3, 40, 36)),
}


def expect_of(name: str) -> dict:
    return yaml.safe_load((SPECS / f"{name}.yaml").read_text())["expect"]


# =========================================================================== published figures

def inception_aux_params() -> int:
    """torchvision's InceptionAux(768, 1000), the training-only head that the published 27,161,264 counts and the
    spec (aux_logits=False) leaves out: conv0 1x1 768->128 and conv1 5x5 128->768 (BasicConv2d: no bias, BatchNorm
    weight and bias), fc 768->1000."""
    conv0 = 128 * 768 + 2 * 128
    conv1 = 768 * 128 * 5 * 5 + 2 * 768
    fc = 768 * 1000 + 1000
    return conv0 + conv1 + fc


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_published_params_and_gmacs(name):
    weights, _, _ = TORCHVISION[name]
    params, gmacs = published(weights)
    summary = summary_of(name)
    if name == "inception_v3":
        with_aux = build(_torchvision("inception_v3", aux_logits=True, init_weights=False))
        assert sum(p.numel() for p in with_aux.AuxLogits.parameters()) == inception_aux_params() == 3_326_696
        assert sum(p.numel() for p in with_aux.parameters()) == params
        params -= inception_aux_params()
    assert summary.totals.params == summary.totals.trainable_params == params
    assert round(summary.totals.macs / 1e9, 3) == gmacs
    assert summary.output_shape == (1000,)
    assert expect_of(name)["params"] == params


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_same_network_as_torchvision(name):
    _, factory, _ = TORCHVISION[name]
    summary = summary_of(name)
    assert_same_network(summary, build(factory))


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_same_outputs_as_torchvision(name):
    _, factory, size = TORCHVISION[name]
    assert_same_outputs(name, build(factory), size)      # randomized in float64: no initialisation needed


def test_expect_macs_are_torchvisions():
    """The exact MACs each spec's ``expect:`` promises: assert_same_network proves the summary's total equals
    torch's FlopCounterMode count / 2, so this ties the spec's promise to torch."""
    for name in TORCHVISION:
        assert expect_of(name)["macs"] == summary_of(name).totals.macs
        assert expect_of(name)["output_shape"] == [1000]


def test_densenet_stages_give_densenet169_and_201():
    """The spec's ``stages`` arg (``--set``) gives torchvision's deeper DenseNets, at their published sizes."""
    for stages, weights in [([6, 12, 32, 32], "DenseNet169_Weights"), ([6, 12, 48, 32], "DenseNet201_Weights")]:
        graph = convcalc.build_graph(convcalc.load_spec(SPECS / "densenet121.yaml"), {"stages": stages})
        summary = convcalc.analyze(graph)
        params, gmacs = published(weights)
        assert summary.totals.params == params
        assert round(summary.totals.macs / 1e9, 3) == gmacs
        last = stages[-1]
        assert f"features.denseblock4.denselayer{last}.conv2" in {row.name for row in summary.layers}


# =========================================================================== ResNeXt: top-level args the block reads

TRAP = ("args: {planes: required, stride: 1, downsample: false, groups: $groups,",
        "args: {planes: required, stride: 1, downsample: false, groups: 1, width_per_group: 64,")


def lint_findings(path: Path) -> list:
    return list(lint_paths([path], LintConfig()).findings)


def test_resnext_is_not_resnet50_in_disguise(tmp_path):
    """The issue's trap: a Bottleneck declaring its own ``groups: 1``/``width_per_group: 64`` wins over the
    top-level args and gives ResNet-50's 25,557,032. The shipped spec reads the top-level args (25,028,904, every
    conv2 grouped 32 ways) and lint finds no shadowed arg in it; the trap is caught by CC209."""
    summary = summary_of("resnext50_32x4d")
    assert summary.totals.params == 25_028_904
    convs = [row for row in summary.layers if row.name.endswith(".conv2")]
    assert len(convs) == 16
    for row in convs:
        width = row.output_shape[0]
        assert row.weights["weight"] == (width, width // 32, 3, 3)
    # layer1.0, layer2.2, layer3.3, layer4.2: Xie et al.'s Table 1, grouped conv widths 128, 256, 512, 1024
    assert [row.output_shape[0] for row in convs[::5]] == [128, 256, 512, 1024]
    assert not [f for f in lint_findings(SPECS / "resnext50_32x4d.yaml") if f.rule == "CC209"]

    text = (SPECS / "resnext50_32x4d.yaml").read_text()
    assert text.count(TRAP[0]) == 1
    trapped = tmp_path / "resnext_trap.yaml"
    trapped.write_text(text.replace(*TRAP))
    assert summary_of(trapped).totals.params == published("ResNet50_Weights")[0] == 25_557_032
    shadowed = [f for f in lint_findings(trapped) if f.rule == "CC209"]
    assert shadowed and all(f.severity.name == "warning" for f in shadowed)
    assert any("groups = 1" in f.message and "groups = 32" in f.message for f in shadowed)
    # and --set on the shipped spec still reaches the block: ResNet-50 itself
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / "resnext50_32x4d.yaml"),
                                 {"groups": 1, "width_per_group": 64})
    assert convcalc.analyze(graph).totals.params == 25_557_032


# =========================================================================== lint

SPEC_NAMES = sorted([*TORCHVISION, "alexnet_lrn"])


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_lint_passes_and_checks_the_expectations(name, tmp_path):
    report = lint_paths([SPECS / f"{name}.yaml"], LintConfig())
    assert [f for f in report.findings if f.severity.name == "error"] == []
    spec = yaml.safe_load((SPECS / f"{name}.yaml").read_text())
    assert spec["description"] and spec["expect"]["params"] and spec["expect"]["macs"]
    # the expectations are live: one MAC off is an error finding
    text = (SPECS / f"{name}.yaml").read_text()
    promise = f"macs: {spec['expect']['macs']}"
    assert text.count(promise) == 1
    wrong = tmp_path / f"{name}.yaml"
    wrong.write_text(text.replace(promise, f"macs: {spec['expect']['macs'] + 1}"))
    assert [f.rule for f in lint_findings(wrong) if f.severity.name == "error"] == ["CC103"]


# =========================================================================== the original AlexNet, with LRN

def alexnet_lrn_model(num_classes: int = 1000, alpha: float = 1e-4, pooled: int = 6) -> nn.Module:
    """Krizhevsky et al. 2012, Section 3 and Figure 2, in plain torch.nn, its children named by the paper's layer
    numbering: conv2/4/5 split over the two GPUs (groups=2), LRN(n=5, alpha, beta=0.75, k=2) after the ReLUs of
    conv1 and conv2, overlapping pools (3, 2), dropout before fc7 and fc8. ``pooled``: the side of pool5's maps
    (6 at 227x227)."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 96, 11, stride=4)), ("relu1", nn.ReLU(inplace=True)),
        ("norm1", nn.LocalResponseNorm(5, alpha=alpha, beta=0.75, k=2.0)), ("pool1", nn.MaxPool2d(3, 2)),
        ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=2)), ("relu2", nn.ReLU(inplace=True)),
        ("norm2", nn.LocalResponseNorm(5, alpha=alpha, beta=0.75, k=2.0)), ("pool2", nn.MaxPool2d(3, 2)),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=2)), ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=2)), ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(3, 2)), ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(256 * pooled * pooled, 4096)), ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(4096, num_classes)),
    ]))


def test_alexnet_lrn_parameters_from_the_paper():
    """The paper states "60 million parameters" (Section 1); its Section 3.5 gives every kernel's size, from which
    the exact count follows (weights + one bias per kernel or neuron, as every layer has: Section 5 initialises
    the biases): 60,965,224."""
    conv1 = 96 * (11 * 11 * 3) + 96                   # 96 kernels of 11x11x3
    conv2 = 256 * (5 * 5 * 48) + 256                  # 256 kernels of 5x5x48 (each sees its GPU's 48 maps)
    conv3 = 384 * (3 * 3 * 256) + 384                 # 384 kernels of 3x3x256 (all of conv2's maps)
    conv4 = 384 * (3 * 3 * 192) + 384                 # 384 kernels of 3x3x192
    conv5 = 256 * (3 * 3 * 192) + 256                 # 256 kernels of 3x3x192
    fc6 = 4096 * (6 * 6 * 256) + 4096                 # 4096 neurons on pool5's 6x6x256
    fc7 = 4096 * 4096 + 4096
    fc8 = 1000 * 4096 + 1000
    total = conv1 + conv2 + conv3 + conv4 + conv5 + fc6 + fc7 + fc8
    assert total == 60_965_224 and 60_000_000 <= total < 61_000_000
    summary = summary_of("alexnet_lrn")
    assert summary.totals.params == total == expect_of("alexnet_lrn")["params"]
    assert {row.name: row.params for row in summary.layers if row.params} == {
        "conv1": conv1, "conv2": conv2, "conv3": conv3, "conv4": conv4, "conv5": conv5,
        "fc6": fc6, "fc7": fc7, "fc8": fc8}
    # Section 3.5: "the number of neurons in the network's remaining layers is given by
    # 253,440-186,624-64,896-64,896-43,264-4096-4096-1000" (the first, 253,440, is a known erratum: conv1's
    # 55x55x96 maps hold 290,400; the others are conv2 ... fc8's outputs)
    sizes = {row.name: row.output_shape for row in summary.layers}
    neurons = [int(torch.Size(sizes[name]).numel()) for name in
               ["conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]]
    assert neurons == [186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]
    assert sizes["conv1"] == (96, 55, 55)
    # MACs at 227x227, one multiply-add per kernel tap per output: sum of (outputs x taps)
    macs = (55 * 55 * 96 * 363 + 27 * 27 * 256 * 1200 + 13 * 13 * 384 * 2304 + 13 * 13 * 384 * 1728
            + 13 * 13 * 256 * 1728 + 9216 * 4096 + 4096 * 4096 + 4096 * 1000)
    assert summary.totals.macs == macs == expect_of("alexnet_lrn")["macs"] == 724_406_816


def test_alexnet_lrn_same_network_as_torch():
    summary = summary_of("alexnet_lrn")
    assert_same_network(summary, build(alexnet_lrn_model))
    assert [row.type for row in summary.layers if row.name.startswith("norm")] == ["LocalResponseNorm"] * 2
    assert summary.layer("conv2").weights["weight"] == (256, 48, 5, 5)


@pytest.mark.parametrize("alpha", [1e-4, 5e-4])
def test_alexnet_lrn_same_outputs_as_torch(alpha):
    """float64 outputs at 3x99x99 (pool5 2x2, so fc6 reads 1024 values: small and fast), with torch's
    LocalResponseNorm at the spec's alpha and at ``--set lrn_alpha=5e-4``."""
    size = (3, 99, 99)
    model = randomize(build(lambda: alexnet_lrn_model(alpha=alpha, pooled=2)), seed=3)
    x = np.random.default_rng(3).standard_normal((2, *size))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    overrides = None if alpha == 1e-4 else {"lrn_alpha": alpha}
    got = convcalc.run(SPECS / "alexnet_lrn.yaml", x, weights=state, dtype="float64", rf_check=False,
                       overrides=overrides).output
    assert got.shape == expected.shape == (2, 1000)
    error = float(np.abs(got - expected).max() / np.abs(expected).max())
    assert error <= 1e-9, error
    # the LRNs act: without them (alpha = 0) the outputs differ
    with torch.no_grad():
        model.norm1.alpha = model.norm2.alpha = 0.0
        assert not np.allclose(model(torch.from_numpy(x)).numpy(), expected, rtol=1e-6)


def test_lrn_alpha_convention_against_the_papers_equation():
    """The spec's comment: torch's LocalResponseNorm(n, alpha) divides alpha by n, the paper's equation
    (Section 3.3) does not: b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a_j^2)^beta.
    So the printed equation with alpha = 1e-4 is LocalResponseNorm(5, alpha=5e-4), as the spec's comment says."""
    a = np.random.default_rng(5).standard_normal((1, 12, 4, 3)) * 30
    k, n, alpha, beta = 2.0, 5, 1e-4, 0.75
    channels = a.shape[1]
    paper = np.empty_like(a)
    for i in range(channels):
        window = a[:, max(0, i - n // 2):min(channels - 1, i + n // 2) + 1]
        paper[:, i] = a[:, i] / (k + alpha * (window ** 2).sum(axis=1)) ** beta
    torch_lrn = nn.LocalResponseNorm(n, alpha=n * alpha, beta=beta, k=k)(torch.from_numpy(a)).numpy()
    np.testing.assert_allclose(torch_lrn, paper, rtol=1e-12)
    assert not np.allclose(nn.LocalResponseNorm(n, alpha=alpha, beta=beta, k=k)(torch.from_numpy(a)).numpy(), paper,
                           rtol=1e-6)
