"""The classic specs against published numbers and against the same networks built in PyTorch.

Published numbers are torchvision's weight metadata (``num_params`` and ``_ops``, the "GFLOPS"
column of https://pytorch.org/vision/stable/models.html, which counts multiply-accumulates):
convcalc's MACs, rounded as torchvision rounds them, must equal it.

Each network is also written by hand (tests/torch_models.py) with plain
``torch.nn``, following torchvision's module layout (so its ``named_parameters()`` keys are
torchvision's state_dict keys), independently of convcalc. For each we compare every parameter
and buffer name and shape, the parameter count and FLOPs of every layer, the output shape of
every module, and the total FLOPs of one forward pass at batch 1 measured by
``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add, so it must be 2 x MACs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import convcalc
from torch_models import TORCH_MODELS  # noqa: F401  (also the oracle of test_run_cli)
from torchvision_ref import assert_same_network, build, torchvision_models

SPECS = Path(__file__).resolve().parent.parent / "specs"

# name: (parameters, GFLOPS as torchvision publishes them)
PUBLISHED = {
    "alexnet": (61_100_840, 0.714),
    "vgg16": (138_357_544, 15.47),
    "resnet18": (11_689_512, 1.814),
    "resnet50": (25_557_032, 4.089),
}

# a few torchvision state_dict key prefixes that must be layer names
TORCHVISION_NAMES = {
    "alexnet": ["features.0", "features.3", "features.6", "features.8", "features.10",
                "classifier.1", "classifier.4", "classifier.6"],
    "vgg16": ["features.0", "features.2", "features.5", "features.28", "classifier.0", "classifier.3",
              "classifier.6"],
    "resnet18": ["conv1", "bn1", "layer1.0.conv1", "layer1.1.bn2", "layer2.0.downsample.0",
                 "layer2.0.downsample.1", "layer3.1.conv1", "layer4.1.conv2", "fc"],
    "resnet50": ["conv1", "layer1.0.downsample.0", "layer3.5.conv3", "layer4.2.bn3", "fc"],
}


def summary_of(name: str) -> convcalc.Summary:
    return convcalc.analyze(convcalc.load_spec(SPECS / f"{name}.yaml"))


# --------------------------------------------------------------------------- published numbers

@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_params_and_gflops(name):
    params, gflops = PUBLISHED[name]
    summary = summary_of(name)
    assert summary.totals.params == params
    assert summary.totals.trainable_params == params
    assert round(summary.totals.macs / 1e9, 3) == gflops
    assert summary.output_shape == (1000,)


@pytest.mark.parametrize("name", sorted(TORCHVISION_NAMES))
def test_torchvision_state_dict_names(name):
    names = {row.name for row in summary_of(name).layers}
    missing = [n for n in TORCHVISION_NAMES[name] if n not in names]
    assert not missing


def test_lenet5_hand_count():
    # conv: out*(in*k*k) weights + out biases; linear: out*in weights + out biases
    conv1 = 6 * (1 * 5 * 5) + 6            # 150 + 6 = 156        1x32x32 -> 6x28x28, pool -> 6x14x14
    conv2 = 16 * (6 * 5 * 5) + 16          # 2,400 + 16 = 2,416   -> 16x10x10, pool -> 16x5x5 = 400
    fc1 = 120 * 400 + 120                  # 48,000 + 120 = 48,120
    fc2 = 84 * 120 + 84                    # 10,080 + 84 = 10,164
    fc3 = 10 * 84 + 10                     # 840 + 10 = 850
    assert conv1 + conv2 + fc1 + fc2 + fc3 == 61_706
    # MACs: output elements x (in channels x kernel area), or out x in for a linear layer
    macs = (6 * 28 * 28) * (1 * 25) + (16 * 10 * 10) * (6 * 25) + 400 * 120 + 120 * 84 + 84 * 10
    assert macs == 117_600 + 240_000 + 48_000 + 10_080 + 840 == 416_520

    summary = summary_of("lenet5")
    assert summary.totals.params == 61_706
    assert summary.totals.macs == 416_520
    assert summary.output_shape == (10,)
    assert {row.name: row.params for row in summary.layers if row.params} == {
        "conv1": conv1, "conv2": conv2, "fc1": fc1, "fc2": fc2, "fc3": fc3}
    assert summary.layer("pool2").output_shape == (16, 5, 5)


# --------------------------------------------------------------------------- against the networks in torch.nn

@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_matches_hand_built_torch(name):
    factory, in_shape, out_shape = TORCH_MODELS[name]
    summary = summary_of(name)
    assert summary.input_shape == in_shape       # the spec's input is the one the torch model takes
    assert summary.output_shape == out_shape
    assert_same_network(summary, build(factory))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_matches_torchvision_itself(name):
    """The same specs against torchvision 0.28's own model definitions (not only the hand-built ones)."""
    assert_same_network(summary_of(name), build(getattr(torchvision_models(), name)))
