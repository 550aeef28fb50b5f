"""The classic specs against published numbers and against the same networks built in PyTorch.

Published numbers are torchvision's weight metadata (``num_params`` and ``_ops``, the "GFLOPS"
column of https://pytorch.org/vision/stable/models.html, which counts multiply-accumulates):
convcalc's MACs, rounded as torchvision rounds them, must equal it.

torchvision is not installed here, so each network is also written by hand below with plain
``torch.nn``, following torchvision's module layout (so its ``named_parameters()`` keys are
torchvision's state_dict keys), independently of convcalc. For each we compare every parameter
and buffer name and shape, the parameter count and FLOPs of every layer, the output shape of
every module, and the total FLOPs of one forward pass at batch 1 measured by
``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add, so it must be 2 x MACs).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import convcalc
from torch_models import TORCH_MODELS  # noqa: F401  (also the oracle of test_run_cli)

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

def build(factory) -> nn.Module:
    """The model with uninitialised weights: built on the meta device, then given CPU storage.

    Random initialisation of ~100M weights takes seconds and plays no part in what is compared.
    """
    with torch.device("meta"):
        model = factory()
    return model.to_empty(device="cpu").eval()


@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_matches_hand_built_torch(name):
    factory, in_shape, out_shape = TORCH_MODELS[name]
    summary = summary_of(name)
    model = build(factory)

    # the spec's input is the one the torch model takes
    assert summary.input_shape == in_shape

    # every parameter and buffer: same state_dict key, same shape
    convcalc_params = {f"{row.name}.{key}": tuple(shape) for row in summary.layers
                       for key, shape in row.weights.items()}
    torch_params = {key: tuple(p.shape) for key, p in model.named_parameters()}
    assert convcalc_params == torch_params
    convcalc_buffers = {f"{row.name}.{key}": tuple(shape) for row in summary.layers
                        for key, shape in row.buffer_shapes.items()}
    torch_buffers = {key: tuple(b.shape) for key, b in model.named_buffers()}
    assert convcalc_buffers == torch_buffers

    # parameter count per layer (module) name, and in total
    per_module: dict[str, int] = defaultdict(int)
    for key, p in model.named_parameters():
        per_module[key.rsplit(".", 1)[0]] += p.numel()
    assert {row.name: row.params for row in summary.layers if row.params} == dict(per_module)
    assert summary.totals.params == sum(p.numel() for p in model.parameters())
    assert summary.totals.buffers == sum(b.numel() for b in model.buffers())

    # one forward at batch 1: output shapes of every leaf module called once, and FLOPs
    leaves = {n: m for n, m in model.named_modules() if n and not any(m.children())}
    calls: Counter[str] = Counter()
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(module_name):
        def record(module, inputs, output):
            calls[module_name] += 1
            shapes[module_name] = tuple(output.shape[1:])
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves.items()]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(torch.zeros(1, *in_shape))
    for handle in handles:
        handle.remove()

    assert tuple(out.shape) == (1, *out_shape)
    assert summary.output_shape == out_shape
    layer_names = {row.name for row in summary.layers}
    compared = {n: shapes[n] for n in leaves if calls[n] == 1 and n in layer_names}
    assert compared == {n: summary.layer(n).output_shape for n in compared}
    # every module with parameters (conv, bn, linear) is among the compared ones
    assert set(per_module) <= set(compared)

    assert counter.get_total_flops() == 2 * summary.totals.macs
    # per layer: FlopCounterMode keys modules as '<ClassName>.<name>'
    root = type(model).__name__ + "."
    torch_flops = {key[len(root):]: sum(ops.values()) for key, ops in counter.get_flop_counts().items()
                   if key.startswith(root) and key[len(root):] in leaves}
    assert torch_flops == {row.name: row.flops for row in summary.layers if row.macs}
