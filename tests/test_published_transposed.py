"""The transposed-convolution specs against published numbers and hand-built PyTorch models.

* specs/unet.yaml: Ronneberger et al. (2015), Fig. 1: 1x572x572 -> 2x388x388 with 31,030,658 parameters (the
  figure quoted for the original 2-class U-Net, and the sum of its layers written out below).
* specs/dcgan_generator.yaml: Radford et al. (2016) as pytorch/examples' dcgan Generator: 100x1x1 -> 3x64x64.

Each is also written by hand with plain ``torch.nn`` (module names = the spec's layer names) and compared:
state_dict keys and shapes, parameters per module, every leaf module's output shape, and FLOPs per module
and in total from FlopCounterMode (2 per MAC; U-Net runs on the meta device, no arithmetic). The DCGAN
generator is also executed by convcalc (BatchNorm folded into the transposed convs) against torch's numbers.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_receptive_field import analyze, oracle_forward, positive_input, supports  # noqa: E402

import convcalc  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"


def summary_of(name: str, **overrides) -> convcalc.Summary:
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / f"{name}.yaml"), overrides or None)
    return convcalc.analyze(graph)


# --------------------------------------------------------------------------- the networks in torch.nn

class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


def center_crop(x: torch.Tensor, size) -> torch.Tensor:
    """torchvision.transforms.functional.center_crop's offsets: round((in - out) / 2)."""
    top = int(round((x.shape[-2] - size[0]) / 2.0))
    left = int(round((x.shape[-1] - size[1]) / 2.0))
    return x[..., top:top + size[0], left:left + size[1]]


class UNet(nn.Module):
    """Ronneberger et al. 2015, Fig. 1: valid 3x3 convs, 2x2 max-pools, 2x2 up-convs, crop + concat, 1x1 head."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2):
        super().__init__()
        widths = [64, 128, 256, 512, 1024]
        previous = in_channels
        for level, width in enumerate(widths, start=1):
            setattr(self, f"enc{level}", DoubleConv(previous, width))
            if level < 5:
                setattr(self, f"pool{level}", nn.MaxPool2d(2, 2))
            previous = width
        for level in (4, 3, 2, 1):
            width = widths[level - 1]
            setattr(self, f"up{level}", nn.ConvTranspose2d(2 * width, width, kernel_size=2, stride=2))
            setattr(self, f"dec{level}", DoubleConv(2 * width, width))
        self.head = nn.Conv2d(64, num_classes, 1)

    def forward(self, x):
        skips = []
        for level in range(1, 6):
            x = getattr(self, f"enc{level}")(x)
            if level < 5:
                skips.append(x)
                x = getattr(self, f"pool{level}")(x)
        for level in (4, 3, 2, 1):
            up = getattr(self, f"up{level}")(x)
            x = getattr(self, f"dec{level}")(torch.cat([center_crop(skips[level - 1], up.shape[-2:]), up], dim=1))
        return self.head(x)


class Generator(nn.Module):
    """pytorch/examples dcgan/main.py, class Generator."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, x):
        return self.main(x)


def compare_with_torch(summary: convcalc.Summary, model: nn.Module, device: str) -> None:
    """Names, shapes, parameter counts, leaf output shapes and FLOPs (per module and in total)."""
    assert {f"{row.name}.{k}": tuple(s) for row in summary.layers for k, s in row.weights.items()} == \
        {k: tuple(p.shape) for k, p in model.named_parameters()}
    assert {f"{row.name}.{k}": tuple(s) for row in summary.layers for k, s in row.buffer_shapes.items()} == \
        {k: tuple(b.shape) for k, b in model.named_buffers()}
    per_module: dict[str, int] = defaultdict(int)
    for key, p in model.named_parameters():
        per_module[key.rsplit(".", 1)[0]] += p.numel()
    assert {row.name: row.params for row in summary.layers if row.params} == dict(per_module)
    assert summary.totals.params == sum(p.numel() for p in model.parameters())

    leaves = {n: m for n, m in model.named_modules() if n and not any(m.children())}
    calls: Counter[str] = Counter()
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name):
        def record(module, inputs, output):
            calls[name] += 1
            shapes[name] = tuple(output.shape[1:])
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves.items()]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(torch.zeros(1, *summary.input_shape, device=device))
    for handle in handles:
        handle.remove()
    assert tuple(out.shape[1:]) == summary.output_shape
    assert all(calls[n] == 1 for n in leaves)
    assert shapes == {n: summary.layer(n).output_shape for n in leaves}
    assert counter.get_total_flops() == 2 * summary.totals.macs
    root = type(model).__name__ + "."
    torch_flops = {key[len(root):]: sum(ops.values()) for key, ops in counter.get_flop_counts().items()
                   if key.startswith(root) and key[len(root):] in leaves}
    assert torch_flops == {row.name: row.flops for row in summary.layers if row.macs}


# --------------------------------------------------------------------------- U-Net

def test_unet_published_numbers():
    summary = summary_of("unet")
    assert summary.totals.params == 31_030_658
    assert summary.output_shape == (2, 388, 388)
    # Fig. 1's sizes along the U
    expected = {"enc1": (64, 568, 568), "enc2": (128, 280, 280), "enc3": (256, 136, 136), "enc4": (512, 64, 64),
                "enc5": (1024, 28, 28), "up4": (512, 56, 56), "dec4": (512, 52, 52), "up3": (256, 104, 104),
                "dec3": (256, 100, 100), "up2": (128, 200, 200), "dec2": (128, 196, 196), "up1": (64, 392, 392),
                "dec1": (64, 388, 388)}
    assert {name: summary.layer(name if name.startswith("up") else f"{name}.relu2").output_shape
            for name in expected} == expected
    # the up-conv: (C_in, C_out, 2, 2) + bias; MACs walk the input positions
    up4 = summary.layer("up4")
    assert up4.weights == {"weight": (1024, 512, 2, 2), "bias": (512,)}
    assert up4.macs == 28 * 28 * 1024 * 512 * 4
    # the sum written out: double convs 9*i*o + o + 9*o*o + o, up-convs 4*i*o + o, head 64*2 + 2
    double = lambda i, o: 9 * i * o + o + 9 * o * o + o  # noqa: E731
    up = lambda i, o: 4 * i * o + o  # noqa: E731
    hand = sum(double(i, o) for i, o in [(1, 64), (64, 128), (128, 256), (256, 512), (512, 1024)])
    hand += sum(up(c, c // 2) + double(c, c // 2) for c in (1024, 512, 256, 128)) + 64 * 2 + 2
    assert hand == 31_030_658


@pytest.mark.parametrize("k", [4, 5, 28])
def test_unet_crops_fit_every_valid_tile(k):
    """Tiles of 16k + 124 pixels: the valid convs take 184 in all, the crops stay the same."""
    size = 16 * k + 124
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / "unet.yaml"))
    assert convcalc.analyze(graph, (1, size, size)).output_shape == (2, size - 184, size - 184)


def test_unet_matches_hand_built_torch():
    with torch.device("meta"):
        model = UNet().eval()
    compare_with_torch(summary_of("unet"), model, "meta")


def unet_1d_layers() -> list[dict]:
    """specs/unet.yaml along one axis with one channel: the receptive-field oracle's network."""
    layers: list[dict] = []
    for layer in yaml.safe_load((SPECS / "unet.yaml").read_text())["layers"]:
        if layer["type"] == "DoubleConv":
            first = {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "name": f"{layer['name']}.conv1"}
            if "from" in layer:
                first["from"] = layer["from"]
            layers += [first, {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "name": layer["name"]}]
        else:
            one_d = {**layer, "type": layer["type"].replace("2d", "1d")}
            if "out_channels" in one_d:
                one_d["out_channels"] = 1
            layers.append(one_d)
    return layers


@pytest.fixture(scope="module")
def unet_fields():
    """Per layer: (convcalc's field, the oracle's widest and narrowest extent over units away from the border)."""
    layers = unet_1d_layers()
    summary = analyze((1, 572), layers)
    x = positive_input((1, 572))
    result = {}
    for row, y in zip(summary.layers, oracle_forward(layers, x)):
        if row.name.endswith(".conv1") or row.name.startswith("crop"):
            continue                  # the stage outputs are enough (and each oracle call takes a while)
        middle = y.shape[2] // 2      # 32 units about the middle: every position mod 16 (the deepest stride)
        found = supports(y, x, [[u] for u in range(max(0, middle - 16), min(y.shape[2], middle + 16))])
        extents = [p[-1] - p[0] + 1 for (p,) in found if p and p[0] > 0 and p[-1] < 571]
        result[row.name] = (row.rf.axes[0], max(extents), min(extents))
    return result


def test_unet_field_is_exact_down_to_the_first_up_convs(unet_fields):
    """Every stage, contracting (affine fields) and expanding (uneven after the up-convs; a Concat's units see
    the union of both inputs): exactly the oracle's widest and narrowest extent."""
    for name, (axis, widest, narrowest) in unet_fields.items():
        assert (axis.size, axis.size_min) == (widest, narrowest), (name, axis, widest, narrowest)
    assert (unet_fields["enc5"][0].size, unet_fields["up4"][0].size, unet_fields["up4"][0].stride) == (140, 140, 8)


def test_unet_output_field_is_exact(unet_fields):
    """After the up-convs the units' windows are uneven (pairs of up-conv outputs share one input): the exact
    per-unit regions give the oracle's widest and narrowest extent (188 to 204)."""
    axis, widest, narrowest = unet_fields["head"]
    assert (axis.size, axis.size_min) == (widest, narrowest)


# --------------------------------------------------------------------------- DCGAN generator

@pytest.mark.parametrize("ngf", [64, 128])
def test_dcgan_generator_matches_hand_built_torch(ngf):
    summary = summary_of("dcgan_generator", ngf=ngf)
    assert summary.output_shape == (3, 64, 64)
    assert [summary.layer(f"main.{i}").output_shape[1:] for i in (0, 3, 6, 9, 12)] == \
        [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    if ngf == 64:
        assert summary.totals.params == 3_576_704
        assert summary.layer("main.0").weights == {"weight": (100, 512, 4, 4)}
    else:   # the paper's Fig. 1 widths: 1024, 512, 256, 128
        assert [summary.layer(f"main.{i}").output_shape[0] for i in (0, 3, 6, 9)] == [1024, 512, 256, 128]
    with torch.device("meta"):
        model = Generator(ngf=ngf).eval()
    compare_with_torch(summary, model, "meta")


def test_dcgan_generator_runs_like_torch():
    """convcalc's executor (the 4 BatchNorms folded into the transposed convs) against torch, float64."""
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / "dcgan_generator.yaml"), {"ngf": 16})
    torch.manual_seed(0)
    model = Generator(ngf=16).double().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    z = torch.randn(3, 100, 1, 1, dtype=torch.float64)
    with torch.no_grad():
        expected = model(z).numpy()
    result = Network(graph, state=state, dtype="float64").run(z.numpy())
    assert result.ok          # shapes and executed MACs are the analyzer's
    assert sum(layer.folded for layer in result.layers) == 4
    assert np.abs(result.output - expected).max() < 1e-10
