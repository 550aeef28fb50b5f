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


# --------------------------------------------------------------------------- the networks in torch.nn

class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.tanh1 = nn.Tanh()
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.tanh2 = nn.Tanh()
        self.pool2 = nn.AvgPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.tanh3 = nn.Tanh()
        self.fc2 = nn.Linear(120, 84)
        self.tanh4 = nn.Tanh()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool1(self.tanh1(self.conv1(x)))
        x = self.pool2(self.tanh2(self.conv2(x)))
        x = self.flatten(x)
        return self.fc3(self.tanh4(self.fc2(self.tanh3(self.fc1(x)))))


class AlexNet(nn.Module):
    """torchvision.models.alexnet's layout."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class VGG(nn.Module):
    """torchvision.models.vgg's layout (without BatchNorm)."""

    def __init__(self, cfg, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet v1.5: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision.models.resnet's layout."""

    def __init__(self, block, layers, num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


TORCH_MODELS = {
    "lenet5": (LeNet5, (1, 32, 32), (10,)),
    "alexnet": (AlexNet, (3, 224, 224), (1000,)),
    "vgg16": (lambda: VGG(VGG16_CFG), (3, 224, 224), (1000,)),
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2]), (3, 224, 224), (1000,)),
    "resnet50": (lambda: ResNet(Bottleneck, [3, 4, 6, 3]), (3, 224, 224), (1000,)),
}


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
