"""The TF-slim specs (specs/tfslim/) against independent parameter counts and shapes.

* vgg_16 and alexnet_v2, resnet_v1_50: the same networks written here in plain ``torch.nn`` from the slim definitions
  (tensorflow/models research/slim/nets/{vgg,alexnet,resnet_v1,resnet_utils}.py), independently of convcalc: their
  parameter counts, and for resnet_v1_50 the output shape of every block on a 224x224 input (TF's SAME max-pool
  written as F.pad with -inf by TensorFlow's documented pads, then a padding-0 max-pool).
* Published counts: vgg_16 has the 138,357,544 parameters of torchvision's vgg16 (``VGG16_Weights.num_params``;
  slim's fully connected layers are convs with the same weights). resnet_v1_50 has the 25,557,032 of torchvision's
  resnet50 (``ResNet50_Weights.num_params``): the same convs without bias, BatchNorm with scale and shift, a
  2048x1000 classifier with bias; slim moves strides (no parameters) and its subsampling shortcut is a parameter-free
  1x1 max-pool, exactly where torchvision's shortcut is the identity.
* mobilenet_v1 and inception_v3 are the networks of Keras Applications (``MobileNet()``, ``InceptionV3()``, 1000
  classes, no auxiliary head), whose ``summary()`` reports 4,253,864 parameters (4,231,976 trainable) and
  23,851,784 (23,817,352 trainable); the non-trainable ones are BatchNorm's moving mean and variance. Keras'
  InceptionV3, like slim's, has BatchNorm without scale; convcalc's BatchNorm2d always has one, which the spec
  documents, so one parameter per BatchNorm channel is taken off before comparing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convcalc

SPECS = Path(__file__).resolve().parent.parent / "specs" / "tfslim"


def summary_of(name: str) -> convcalc.Summary:
    return convcalc.analyze(convcalc.load_spec(SPECS / f"{name}.yaml"))


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def on_meta(build):
    """Build on PyTorch's meta device: real shapes and parameter counts, no memory and no initialisation time."""
    with torch.device("meta"):
        return build().eval()


# --------------------------------------------------------------------------- torch.nn builds

def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME: out = ceil(size / stride), total = max((out - 1) * stride + kernel - size, 0), half before."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class TfSameMaxPool(nn.Module):
    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = (tf_same_pads(n, self.kernel, self.stride) for n in x.shape[2:])
        return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-float("inf")), self.kernel, self.stride)


def conv_relu(c_in: int, c_out: int, k: int, padding: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=padding), nn.ReLU()]


def torch_vgg_16() -> nn.Module:
    layers: list[nn.Module] = []
    c_in = 3
    for width, repeat in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(repeat):
            layers += conv_relu(c_in, width, 3, padding=1)      # SAME, stride 1: one each side
            c_in = width
        layers.append(nn.MaxPool2d(2, 2))
    layers += conv_relu(512, 4096, 7) + [nn.Dropout()] + conv_relu(4096, 4096, 1) + [nn.Dropout()]
    layers += [nn.Conv2d(4096, 1000, 1), nn.Flatten()]
    return nn.Sequential(*layers)


def torch_alexnet_v2() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4), nn.ReLU(), nn.MaxPool2d(3, 2),
        *conv_relu(64, 192, 5, padding=2), nn.MaxPool2d(3, 2),
        *conv_relu(192, 384, 3, padding=1), *conv_relu(384, 384, 3, padding=1), *conv_relu(384, 256, 3, padding=1),
        nn.MaxPool2d(3, 2),
        *conv_relu(256, 4096, 5), nn.Dropout(), *conv_relu(4096, 4096, 1), nn.Dropout(),
        nn.Conv2d(4096, 1000, 1), nn.Flatten())


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, k, stride, padding, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, *([nn.ReLU()] if relu else []))


class SlimBottleneck(nn.Module):
    """resnet_v1.bottleneck: projection shortcut where the depth changes, else subsample (1x1 max-pool) or identity."""

    def __init__(self, c_in: int, depth: int, bottleneck: int, stride: int):
        super().__init__()
        if c_in != depth:
            self.shortcut = conv_bn(c_in, depth, 1, stride, relu=False)
        else:
            self.shortcut = nn.MaxPool2d(1, stride) if stride > 1 else nn.Identity()
        self.residual = nn.Sequential(conv_bn(c_in, bottleneck, 1), conv_bn(bottleneck, bottleneck, 3, stride, 1),
                                      conv_bn(bottleneck, depth, 1, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x) + self.residual(x))


class TorchResnetV1_50(nn.Module):
    def __init__(self):
        super().__init__()
        self.root = nn.Sequential(conv_bn(3, 64, 7, 2, 3), TfSameMaxPool(3, 2))
        self.blocks = nn.ModuleList()
        c_in = 64
        for base, units, stride in ((64, 3, 2), (128, 4, 2), (256, 6, 2), (512, 3, 1)):
            strides = [1] * (units - 1) + [stride]          # the block's stride in its last unit
            self.blocks.append(nn.Sequential(*(SlimBottleneck(c_in if i == 0 else base * 4, base * 4, base, s)
                                               for i, s in enumerate(strides))))
            c_in = base * 4
        self.logits = nn.Conv2d(2048, 1000, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        x = self.root(x)
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        outputs.append(self.logits(x.mean(dim=(2, 3), keepdim=True)).flatten(1))
        return outputs


# --------------------------------------------------------------------------- the checks

@pytest.mark.parametrize("name, build, published", [
    ("vgg_16", torch_vgg_16, 138_357_544),
    ("alexnet_v2", torch_alexnet_v2, None),
])
def test_plain_networks_against_torch(name, build, published):
    summary = summary_of(name)
    model = on_meta(build)
    assert summary.totals.params == count(model)
    if published is not None:
        assert summary.totals.params == published
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 224, 224, device="meta")).shape[1:]) == summary.output_shape == (1000,)


def test_resnet_v1_50_against_torch_and_torchvisions_count():
    summary = summary_of("resnet_v1_50")
    model = on_meta(TorchResnetV1_50)
    assert summary.totals.params == count(model) == 25_557_032
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 224, 224, device="meta"))
    groups = summary.graph.groups
    for index, output in enumerate(outputs[:4]):
        name = f"block{index + 1}"
        assert summary.layer(groups[name].output).output_shape == tuple(output.shape[1:]), name
        block_params = sum(row.params for row in summary.layers if name in row.groups)
        assert block_params == count(model.blocks[index]), name
    assert summary.output_shape == tuple(outputs[-1].shape[1:]) == (1000,)


def batchnorm_channels(summary: convcalc.Summary) -> int:
    return sum(row.output_shape[0] for row in summary.layers if row.type == "BatchNorm2d")


@pytest.mark.parametrize("name, trainable, total, scale_free", [
    ("mobilenet_v1", 4_231_976, 4_253_864, False),
    ("inception_v3", 23_817_352, 23_851_784, True),
])
def test_keras_applications_counts(name, trainable, total, scale_free):
    summary = summary_of(name)
    channels = batchnorm_channels(summary)
    extra_scale = channels if scale_free else 0          # convcalc's BatchNorm2d scale, absent in slim and Keras
    assert summary.totals.params - extra_scale == trainable
    assert summary.totals.params - extra_scale + 2 * channels == total      # + moving mean and variance
