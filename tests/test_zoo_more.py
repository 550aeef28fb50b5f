"""Issue 17's shipped specs: convnext_tiny, deeplabv3_resnet50, maxout_cifar10, pconv_unet.

Oracles: torchvision 0.28's own models (tests/torchvision_ref.py: every state_dict key and shape, parameters per
module, every leaf's output shape, FlopCounterMode FLOPs = 2 x MACs, and float64 outputs with torchvision's
state_dict loaded into ``convcalc.run``) and torchvision's published metadata; for the two networks torchvision lacks,
torch models written here by hand: Goodfellow et al.'s conv maxout net as its pylearn2 configuration defines it,
and Liu et al.'s PConv U-Net on a partial convolution that is NVIDIA's ``PartialConv2d`` code (multi_channel,
return_mask), outputs within 1e-9 in float64.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import convcalc
from convcalc.execution.weights import expected_keys
from convcalc.lint import LintConfig, lint_paths
from convcalc.lint.model import Severity
from torchvision_ref import (assert_same_network, assert_same_outputs, build, published, randomize, summary_of,
                             torchvision_models)

SPECS = Path(__file__).resolve().parent.parent / "specs"


def analyzed(name: str, input_size=None, overrides=None) -> convcalc.Summary:
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / f"{name}.yaml"), overrides)
    return convcalc.analyze(graph, input_size)


@pytest.mark.parametrize("name", ["convnext_tiny", "deeplabv3_resnet50", "maxout_cifar10", "pconv_unet"])
def test_lint_finds_no_error(name):
    report = lint_paths([str(SPECS / f"{name}.yaml")], LintConfig())
    errors = [f for f in report.findings if f.severity >= Severity.error]
    assert not errors, errors


# --------------------------------------------------------------------------- ConvNeXt-T

def convnext_tiny() -> nn.Module:
    return torchvision_models().convnext_tiny(weights=None)


def test_convnext_tiny_published():
    params, gmacs = published("ConvNeXt_Tiny_Weights")
    assert (params, gmacs) == (28_589_128, 4.456)
    summary = summary_of("convnext_tiny")
    assert summary.totals.params == params
    assert round(summary.totals.macs / 1e9, 3) == gmacs
    assert summary.output_shape == (1000,)


def test_convnext_tiny_matches_torchvision():
    summary = summary_of("convnext_tiny")
    keys = expected_keys(summary)
    assert keys["features.1.0.layer_scale"] == (96, 1, 1)            # torchvision's key, no suffix
    assert keys["features.7.2.layer_scale"] == (768, 1, 1)
    model = build(convnext_tiny)
    assert_same_network(summary, model)
    # the stochastic depth rates grow as torchvision's: 0.1 * block_id / 17 (identity at inference)
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / "convnext_tiny.yaml"))
    rates = {node.name: node.layer.p for node in graph.nodes if node.type_name == "StochasticDepth"}
    torch_rates = {name: m.p for name, m in model.named_modules() if type(m).__name__ == "StochasticDepth"}
    assert len(rates) == 18 and rates == pytest.approx(torch_rates, rel=1e-15)


def test_convnext_tiny_outputs():
    assert_same_outputs("convnext_tiny", build(convnext_tiny), (3, 32, 32))   # torchvision's min_size


# --------------------------------------------------------------------------- DeepLabV3-ResNet50

def deeplabv3(aux_loss: bool = False) -> nn.Module:
    segmentation = torchvision_models().segmentation
    return segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=aux_loss)


def test_deeplabv3_published_with_its_aux_head():
    # torchvision's figures are those of the model trained with the auxiliary FCN head on layer3
    params, gmacs = published("DeepLabV3_ResNet50_Weights")
    summary = analyzed("deeplabv3_resnet50", overrides={"aux_loss": True})
    assert summary.totals.params == params == 42_004_074
    assert round(summary.totals.macs / 1e9, 3) == gmacs == 178.722
    model = build(lambda: deeplabv3(aux_loss=True))
    assert expected_keys(summary) == {key: tuple(v.shape) for key, v in model.state_dict().items()}


def test_deeplabv3_matches_torchvision():
    summary = summary_of("deeplabv3_resnet50")
    assert summary.output_shape == (21, 520, 520)
    assert summary.totals.params == 39_638_869
    assert_same_network(summary, build(deeplabv3))


@pytest.mark.parametrize("size", [(3, 512, 512), (3, 520, 520), (3, 321, 479)])
def test_deeplabv3_follows_the_input_size(size):
    summary = summary_of("deeplabv3_resnet50", size)
    assert summary.output_shape == (21, *size[1:])
    features = ((size[1] - 1) // 2 // 2 // 2 + 1, (size[2] - 1) // 2 // 2 // 2 + 1)   # output stride 8
    assert summary.layer("classifier.0.pooling_upsample").output_shape == (256, *features)
    assert summary.layer("classifier.4").output_shape == (21, *features)


def test_deeplabv3_outputs():
    # neither square nor 520: the pooling branch and the logits follow the input in execution too
    assert_same_outputs("deeplabv3_resnet50", build(deeplabv3), (3, 72, 56))


# --------------------------------------------------------------------------- Maxout (Goodfellow et al. 2013)

class Maxout(nn.Module):
    """pylearn2's maxout: z[i::k] maxima, i.e. the max over consecutive groups of k channels/features."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x):
        out = x[:, 0::self.pieces]
        for i in range(1, self.pieces):
            out = torch.maximum(out, x[:, i::self.pieces])
        return out


class MaxoutConv(nn.Module):
    """pylearn2's MaxoutConvC01B: conv (units x pieces channels) -> maxout -> max pool (ceil: its last window
    overhangs, padded with -inf)."""

    def __init__(self, c_in, units, pieces, k, pad, pool, drop=0.5):
        super().__init__()
        self.dropout = nn.Dropout(drop)
        self.conv = nn.Conv2d(c_in, units * pieces, k, padding=pad)
        self.maxout = Maxout(pieces)
        self.pool = nn.MaxPool2d(pool, 2, ceil_mode=True)

    def forward(self, x):
        return self.pool(self.maxout(self.conv(self.dropout(x))))


class MaxoutCifar10(nn.Module):
    def __init__(self):
        super().__init__()
        self.h0 = MaxoutConv(3, 96, 2, 8, 4, 4, drop=0.2)
        self.h1 = MaxoutConv(96, 192, 2, 8, 3, 4)
        self.h2 = MaxoutConv(192, 192, 2, 5, 3, 2)
        self.flatten = nn.Flatten()
        self.h3 = nn.Sequential()
        self.h3.add_module("dropout", nn.Dropout(0.5))
        self.h3.add_module("fc", nn.Linear(192 * 5 * 5, 500 * 5))
        self.h3.add_module("maxout", Maxout(5))
        self.y = nn.Sequential()
        self.y.add_module("dropout", nn.Dropout(0.5))
        self.y.add_module("fc", nn.Linear(500, 10))
        self.y.add_module("softmax", nn.Softmax(dim=1))

    def forward(self, x):
        return self.y(self.h3(self.flatten(self.h2(self.h1(self.h0(x))))))


def test_maxout_cifar10_matches_torch():
    summary = summary_of("maxout_cifar10")
    # hand count: conv out*(in*k*k) + out; the maxout layers have no parameters
    h0 = 192 * 3 * 8 * 8 + 192
    h1 = 384 * 96 * 8 * 8 + 384
    h2 = 384 * 192 * 5 * 5 + 384
    h3 = 2500 * 4800 + 2500
    y = 10 * 500 + 10
    assert summary.totals.params == h0 + h1 + h2 + h3 + y == 16_247_830
    # the pylearn2 maps: 33 -> 16 -> 15 -> 7 -> 9 -> 5 (partial_sum 33 and 15 divide the conv maps' areas)
    assert [summary.layer(n).output_shape for n in ("h0.conv", "h0.pool", "h1.conv", "h1.pool", "h2.conv", "h2.pool")] \
        == [(192, 33, 33), (96, 16, 16), (384, 15, 15), (192, 7, 7), (384, 9, 9), (192, 5, 5)]
    assert summary.layer("h3.maxout").output_shape == (500,)
    assert_same_network(summary, build(MaxoutCifar10))
    assert_same_outputs("maxout_cifar10", build(MaxoutCifar10), (3, 32, 32))


# --------------------------------------------------------------------------- PConv U-Net (Liu et al. 2018)

class PartialConv2d(nn.Conv2d):
    """NVIDIA's models/partialconv2d.py (github.com/NVIDIA/partialconv), its forward kept statement for statement
    (the mask is recomputed on every call; its ones live on the CPU even when the model is built on the meta
    device)."""

    def __init__(self, *args, multi_channel=False, return_mask=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.multi_channel = multi_channel
        self.return_mask = return_mask
        if multi_channel:
            self.weight_maskUpdater = torch.ones(self.out_channels, self.in_channels, *self.kernel_size, device="cpu")
        else:
            self.weight_maskUpdater = torch.ones(1, 1, *self.kernel_size, device="cpu")
        self.slide_winsize = self.weight_maskUpdater.shape[1] * self.weight_maskUpdater.shape[2] * \
            self.weight_maskUpdater.shape[3]

    def forward(self, input, mask=None):
        with torch.no_grad():
            self.weight_maskUpdater = self.weight_maskUpdater.to(input)
            if mask is None:
                if self.multi_channel:
                    mask = torch.ones(input.shape).to(input)
                else:
                    mask = torch.ones(1, 1, input.shape[2], input.shape[3]).to(input)
            update_mask = F.conv2d(mask, self.weight_maskUpdater, bias=None, stride=self.stride,
                                   padding=self.padding, dilation=self.dilation, groups=1)
            mask_ratio = self.slide_winsize / (update_mask + 1e-8)
            update_mask = torch.clamp(update_mask, 0, 1)
            mask_ratio = torch.mul(mask_ratio, update_mask)
        raw_out = super().forward(torch.mul(input, mask) if mask is not None else input)
        if self.bias is not None:
            bias_view = self.bias.view(1, self.out_channels, 1, 1)
            output = torch.mul(raw_out - bias_view, mask_ratio) + bias_view
        else:
            output = torch.mul(raw_out, mask_ratio)
        output = torch.mul(output, update_mask)
        return (output, update_mask) if self.return_mask else output


class PConvLayer(nn.Module):
    def __init__(self, c_in, c_out, k=3, stride=1, bn=True, act="relu"):
        super().__init__()
        self.conv = PartialConv2d(c_in, c_out, k, stride, k // 2, bias=not bn, multi_channel=True, return_mask=True)
        self.bn = nn.BatchNorm2d(c_out) if bn else None
        self.act = act
        if act == "relu":
            self.relu = nn.ReLU()
        elif act == "leaky":
            self.leaky_relu = nn.LeakyReLU(0.2)

    def forward(self, x, mask):
        x, mask = self.conv(x, mask)
        if self.bn is not None:
            x = self.bn(x)
        if self.act != "none":
            x = self.relu(x) if self.act == "relu" else self.leaky_relu(x)
        return x, mask


class PConvUNet(nn.Module):
    """Liu et al. 2018's U-Net (supplementary table): PConv1-8 encode, PConv9-16 decode after nearest x2
    upsampling and concatenation with the skip (image with image, mask with mask)."""

    def __init__(self, width: int = 64):
        super().__init__()
        w = width
        enc = [(3, w, 7, False), (w, 2 * w, 5, True), (2 * w, 4 * w, 5, True), (4 * w, 8 * w, 3, True)] + \
            [(8 * w, 8 * w, 3, True)] * 4
        for i, (c_in, c_out, k, bn) in enumerate(enc, 1):
            setattr(self, f"pconv{i}", PConvLayer(c_in, c_out, k, 2, bn, "relu"))
        dec = [(16 * w, 8 * w)] * 4 + [(12 * w, 4 * w), (6 * w, 2 * w), (3 * w, w)]
        for i, (c_in, c_out) in enumerate(dec, 9):
            setattr(self, f"pconv{i}", PConvLayer(c_in, c_out, 3, 1, True, "leaky"))
        self.pconv16 = PConvLayer(w + 3, 3, 3, 1, False, "none")

    def forward(self, image, mask):
        skips = [(image, mask)]
        x, m = image, mask
        for i in range(1, 9):
            x, m = getattr(self, f"pconv{i}")(x, m)
            skips.append((x, m))
        skips.pop()
        for i in range(9, 17):
            skip_x, skip_m = skips.pop()
            x = torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip_x], dim=1)
            m = torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), skip_m], dim=1)
            x, m = getattr(self, f"pconv{i}")(x, m)
        return x


def holes(size: int, seed: int) -> np.ndarray:
    """A 3-channel 0/1 mask (1 valid) with irregular holes: random rectangles, some per channel."""
    rng = np.random.default_rng(seed)
    mask = np.ones((1, 3, size, size))
    for _ in range(12):
        y, x = rng.integers(0, size, 2)
        h, w = rng.integers(size // 16, size // 3, 2)
        channels = slice(None) if rng.random() < 0.7 else slice(int(rng.integers(3)), None)
        mask[0, channels, y:y + h, x:x + w] = 0.0
    return mask


def test_pconv_unet_network():
    """Keys, shapes, parameters per module, leaf output shapes and MACs against the torch U-Net at 512x512."""
    summary = summary_of("pconv_unet")
    assert summary.output_shape == (3, 512, 512)
    with torch.device("meta"):
        meta = PConvUNet(64)
    assert expected_keys(summary) == {key: tuple(v.shape) for key, v in meta.state_dict().items()}
    per_module: dict[str, int] = defaultdict(int)
    for key, p in meta.named_parameters():
        per_module[key.rsplit(".", 1)[0]] += p.numel()
    assert {row.name: row.params for row in summary.layers if row.params} == dict(per_module)
    assert summary.totals.params == sum(p.numel() for p in meta.parameters()) == 32_859_796

    # the forward pass at 512x512 with the widths / 8 (MACs scale by 1/64): every leaf's shape, and FLOPs
    small = analyzed("pconv_unet", overrides={"width": 8})
    model = build(lambda: PConvUNet(8))
    shapes: dict[str, tuple] = {}
    masks: dict[str, tuple] = {}
    calls: Counter[str] = Counter()
    mask_flops = 0

    def hook(name):
        def record(module, inputs, output):
            nonlocal mask_flops
            calls[name] += 1
            if isinstance(output, tuple):       # PartialConv2d: (output, updated mask)
                output, mask = output
                masks[name] = tuple(mask.shape[1:])
                # NVIDIA computes the window sums as a conv of ones, which FlopCounterMode counts
                mask_flops += 2 * module.weight_maskUpdater.numel() * output.shape[2] * output.shape[3]
            shapes[name] = tuple(output.shape[1:])
        return record

    leaves = {n: m for n, m in model.named_modules() if n and not any(m.children())}
    for name, module in leaves.items():
        module.register_forward_hook(hook(name))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(torch.zeros(1, 3, 512, 512), torch.ones(1, 3, 512, 512))
    assert tuple(out.shape[1:]) == small.output_shape
    assert set(calls.values()) == {1}
    names = {row.name for row in small.layers}
    assert {n: shapes[n] for n in leaves if n in names} == {n: small.layer(n).output_shape for n in leaves if n in names}
    assert {n for n in leaves if n not in names} == set()
    for conv, mask_shape in masks.items():
        mask_layer = conv.rsplit(".", 1)[0] + ".mask"
        if mask_layer in names:
            assert small.layer(mask_layer).output_shape == mask_shape
    assert counter.get_total_flops() == 2 * small.totals.macs + mask_flops


def test_pconv_unet_outputs():
    """float64 outputs of the torch U-Net (NVIDIA's partial convolution) and convcalc with its state_dict, on a
    masked image at 256x256 (the smallest size: 8 halvings), widths / 8."""
    model = randomize(build(lambda: PConvUNet(8)), seed=3)
    rng = np.random.default_rng(3)
    mask = holes(256, seed=3)
    image = rng.standard_normal((1, 3, 256, 256)) * mask
    with torch.no_grad():
        expected = model(torch.from_numpy(image), torch.from_numpy(mask)).numpy()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    got = convcalc.run(SPECS / "pconv_unet.yaml", np.concatenate([image, mask], axis=1), weights=state,
                       dtype="float64", rf_check=False, overrides={"width": 8}).output
    assert got.shape == expected.shape == (1, 3, 256, 256)
    assert np.abs(expected).max() > 0
    assert float(np.abs(got - expected).max()) <= 1e-9 * float(np.abs(expected).max())
