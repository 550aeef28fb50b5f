"""The specs of the composite / unshared / shuffle family against published numbers, hand counts written from the
papers, and the same networks built by hand in torch (state_dict names and shapes, parameters, and FLOPs counted
by FlopCounterMode on the meta device, 2 per MAC).

Published figures checked here:
* MobileNet v1 (Howard et al. 2017): 4,231,976 parameters, 568,740,352 MACs at 224 (the paper's "569 million
  Mult-Adds"), and against a hand-built torch model;
* Xception (keras.applications): 22,855,952 trainable parameters (Keras's 54,528 non-trainable ones are
  BatchNorm moving statistics, buffers here);
* ShuffleNet v1 1× g=3 (Zhang et al. 2017, Table 2): 140 MFLOPs (mult-adds, to the paper's two digits), and
  the stage output sizes of Table 1;
* Keras LocallyConnected2D: 1,612,800 parameters for 32×32×3, 64@3×3 (in test_family_layers);
* DeepFace (Taigman et al. 2014, Fig. 2): the map sizes, and "more than 95%" of the parameters in the local and
  fully connected layers (the total, 118,923,774 by the hand count below, is a little under the paper's
  "more than 120 million").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from family_references import DepthwiseSeparableReference  # noqa: E402

import convcalc  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"
torch.set_num_threads(1)


def summary_of(name: str, **overrides) -> convcalc.Summary:
    return convcalc.analyze(graph_of(name, **overrides))


def graph_of(name: str, **overrides):
    return convcalc.build_graph(convcalc.load_spec(SPECS / f"{name}.yaml"), overrides or None)


def meta_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    """FlopCounterMode's total for one forward at batch 1, run on the meta device (no arithmetic)."""
    model = model.to("meta").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *shape, device="meta"))
    return counter.get_total_flops()


def state_shapes(summary: convcalc.Summary) -> dict[str, tuple[int, ...]]:
    return {f"{row.name}.{key}": tuple(shape) for row in summary.layers
            for key, shape in {**row.weights, **row.buffer_shapes}.items()}


def check_against_torch(name: str, model: nn.Module, summary: convcalc.Summary) -> None:
    theirs = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert theirs == state_shapes(summary)
    assert sum(p.numel() for p in model.parameters()) == summary.totals.params
    assert meta_flops(model, summary.input_shape) == 2 * summary.totals.macs


# ============================================================================ MobileNet v1

class Separable(nn.Module):
    def __init__(self, channels: int, out: int, stride: int):
        super().__init__()
        self.conv = DepthwiseSeparableReference(channels, out, 3, stride=stride, padding=1, bias=False,
                                                norm="BatchNorm2d", activation="ReLU")
        self.bn = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class MobileNetV1(nn.Module):
    """Howard et al. 2017, Table 1, by hand (the last separable layer at stride 1, as released implementations)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        plan = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)]
        for index, (channels, out, stride) in enumerate(plan, start=1):
            setattr(self, f"dw{index}", Separable(channels, out, stride))
        self.dw7 = nn.Sequential(*[Separable(512, 512, 1) for _ in range(5)])
        self.dw8 = Separable(512, 1024, 2)
        self.dw9 = Separable(1024, 1024, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        for index in range(1, 10):
            x = getattr(self, f"dw{index}")(x)
        return self.fc(self.flatten(self.avgpool(x)))


def test_mobilenet_v1_published_totals():
    summary = summary_of("mobilenet_v1")
    assert summary.totals.params == 4_231_976
    assert summary.totals.macs == 568_740_352
    assert round(summary.totals.macs / 1e6) == 569          # "569 million Mult-Adds" (Table 8)
    assert summary.output_shape == (1000,)
    assert summary.layer("dw9.conv").output_shape == (1024, 7, 7)


def test_mobilenet_v1_against_a_hand_built_torch_model():
    check_against_torch("mobilenet_v1", MobileNetV1(), summary_of("mobilenet_v1"))


def test_mobilenet_v1_runs_torch_weights_as_saved():
    """The torch model's state_dict (keys 'dw3.conv.depthwise.weight', 'dw7.2.conv.norm.running_var', ...) loads as
    it is and gives torch's output (at 64×64 to stay fast), with the BatchNorms folded and not."""
    torch.manual_seed(0)
    model = MobileNetV1(num_classes=10).double().eval()
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif key.endswith("running_mean") or key.endswith("norm.bias") or key.endswith("bn.bias"):
                tensor.uniform_(-0.2, 0.2)
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x).numpy()
    graph = graph_of("mobilenet_v1", num_classes=10)
    state = {key: value.numpy() for key, value in model.state_dict().items()}
    for fold in (True, False):
        result = Network(graph, (3, 64, 64), state=state, dtype="float64", fold_batchnorm=fold).run(x.numpy())
        assert result.ok
        assert np.abs(result.output - expected).max() < 1e-9 * max(1.0, np.abs(expected).max())


def test_mobilenet_v1_cost_ratio_per_layer_is_one_over_n_plus_one_over_k_squared():
    """MobileNet §3.1: a depthwise-separable layer costs 1/N + 1/D_K² of the standard conv it replaces."""
    summary = summary_of("mobilenet_v1")
    rows = [row for row in summary.layers if row.baseline is not None]
    assert len(rows) == 13
    for row in rows:
        out = row.output_shape[0]
        assert row.macs * out * 9 == row.baseline.inferred.macs * (9 + out)       # ratio (N + 9) / (9 N)


# ============================================================================ Xception

def test_xception_keras_parameter_count():
    summary = summary_of("xception")
    assert summary.totals.params == 22_855_952                   # Keras: trainable params
    batchnorms = [row for row in summary.layers if row.type == "BatchNorm2d"]
    tracked = len(batchnorms)                                    # one num_batches_tracked scalar each
    assert summary.totals.buffers - tracked == 54_528            # Keras: non-trainable (moving mean and variance)
    assert summary.totals.params + summary.totals.buffers - tracked == 22_910_480   # Keras: total params
    assert summary.output_shape == (1000,)
    assert summary.layer("block13.add").output_shape == (1024, 10, 10)
    assert summary.layer("block14_sepconv2").output_shape == (2048, 10, 10)


def test_xception_separable_convs_have_keras_parameter_counts():
    # Keras SeparableConv2D(filters, 3, use_bias=False): 3*3*C (depthwise) + C*filters (pointwise)
    summary = summary_of("xception")
    assert summary.layer("block2.sep1.sepconv").params == 9 * 64 + 64 * 128
    assert summary.layer("middle.3.sep2.sepconv").params == 9 * 728 + 728 * 728
    assert summary.layer("block14_sepconv2").params == 9 * 1536 + 1536 * 2048


# ============================================================================ ShuffleNet v1 g=3

def test_shufflenet_v1_g3_complexity_and_stage_sizes():
    summary = summary_of("shufflenet_v1_g3")
    assert round(summary.totals.macs / 1e7) == 14                # Table 2: 140 MFLOPs (1×, g = 3)
    # Table 1 (g = 3): Stage2 28×28×240, Stage3 14×14×480, Stage4 7×7×960
    assert summary.layer("stage2.3.relu").output_shape == (240, 28, 28)
    assert summary.layer("stage3.7.relu").output_shape == (480, 14, 14)
    assert summary.layer("stage4.3.relu").output_shape == (960, 7, 7)
    # a stride-1 unit of Stage 3 by hand: 1×1 GConv 480→120 (g=3), 3×3 DW, 1×1 GConv 120→480 (g=3), 3 BNs
    unit = 480 * 120 // 3 + 9 * 120 + 120 * 480 // 3 + 2 * (120 + 120 + 480)
    assert sum(row.params for row in summary.layers if row.name.startswith("stage3.1.")) == unit
    assert summary.layer("stage2.0.branch.compress").weights["weight"] == (60, 24, 1, 1)   # first: no groups
    assert summary.layer("stage2.0.branch.expand").output_shape == (216, 28, 28)          # 240 - 24


# ============================================================================ C3D

class C3D(nn.Module):
    """Tran et al. 2015 in the layout of the common PyTorch port (conv1 ... conv5b, pool1 ... pool5, fc6-fc8)."""

    def __init__(self, num_classes: int = 487):
        super().__init__()
        widths = [("conv1", 3, 64), ("conv2", 64, 128), ("conv3a", 128, 256), ("conv3b", 256, 256),
                  ("conv4a", 256, 512), ("conv4b", 512, 512), ("conv5a", 512, 512), ("conv5b", 512, 512)]
        for name, channels, out in widths:
            setattr(self, name, nn.Conv3d(channels, out, 3, padding=1))
        self.pool1 = nn.MaxPool3d((1, 2, 2), (1, 2, 2))
        self.pool = nn.MaxPool3d(2, 2)
        self.pool5 = nn.MaxPool3d(2, 2, padding=(0, 1, 1))
        self.fc6, self.fc7, self.fc8 = nn.Linear(8192, 4096), nn.Linear(4096, 4096), nn.Linear(4096, num_classes)

    def forward(self, x):
        r = torch.relu
        x = self.pool1(r(self.conv1(x)))
        x = self.pool(r(self.conv2(x)))
        x = self.pool(r(self.conv3b(r(self.conv3a(x)))))
        x = self.pool(r(self.conv4b(r(self.conv4a(x)))))
        x = self.pool5(r(self.conv5b(r(self.conv5a(x)))))
        return self.fc8(r(self.fc7(r(self.fc6(x.flatten(1))))))


def test_c3d_hand_count_and_torch():
    summary = summary_of("c3d")
    convs = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    conv_params = sum(27 * c * o + o for c, o in convs)
    assert conv_params == 27_655_936
    fc = 8192 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 487 + 487
    assert summary.totals.params == conv_params + fc == 79_991_015
    assert summary.layer("pool5").output_shape == (512, 1, 4, 4)
    assert summary.layer("pool1").output_shape == (64, 16, 56, 56)     # the first pool keeps the 16 frames
    check_against_torch("c3d", C3D(), summary)


# ============================================================================ WaveNet

def test_wavenet_parameters_and_receptive_field():
    summary = summary_of("wavenet")
    layer = 2 * (32 * 32 * 2) + 32 * 256 + 32 * 32        # filter and gate (width 2), skip 1×1, residual 1×1
    assert summary.totals.params == 256 * 32 * 2 + 30 * layer + 256 * 256 + 256 * 256 == 546_816
    rf = summary.layer("postprocess2").rf.axes[0]
    assert rf.size == 3 * 1023 + 2 == 3071                # 1 + (2-1)·1 for the causal conv + Σ dilations
    assert rf.padding == rf.size - 1                      # unit u sees [u - 3070, u]: nothing after u
    assert summary.output_shape == (256, 4096)


def test_wavenet_is_causal_when_executed():
    """Changing sample t changes outputs at t and later only (run on 96 samples instead of 4096)."""
    graph = graph_of("wavenet")
    network = Network(graph, (256, 96), dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    x = np.eye(256)[rng.integers(0, 256, 96)].T[None]           # one-hot (1, 256, 96)
    y = network.run(x).output
    t = 40
    changed = x.copy()
    changed[0, :, t] = np.eye(256)[(int(np.argmax(x[0, :, t])) + 1) % 256]
    z = network.run(changed).output
    assert np.array_equal(y[..., :t], z[..., :t])
    assert not np.allclose(y[..., t], z[..., t])


# ============================================================================ gated inpainting (DeepFill v2)

def test_gated_inpainting_parameters_are_the_official_code_s():
    """Each gen_conv(x, c, k) of the official code is one conv with c filters (split in two halves):
    k*k*C_in*c + c parameters; the gated outputs are c/2 channels."""
    plan = [  # (c, k, input channels) of conv1 ... conv16, cnum = 48
        (48, 5, 5), (96, 3, 24), (96, 3, 48), (192, 3, 48), (192, 3, 96), (192, 3, 96), (192, 3, 96), (192, 3, 96),
        (192, 3, 96), (192, 3, 96), (192, 3, 96), (192, 3, 96), (96, 3, 96), (96, 3, 48), (48, 3, 48), (24, 3, 24)]
    expected = sum(k * k * c_in * c + c for c, k, c_in in plan) + (3 * 3 * 12 * 3 + 3)      # + conv17 (plain)
    summary = summary_of("gated_inpainting")
    assert summary.totals.params == expected
    assert summary.output_shape == (3, 256, 256)
    assert summary.layer("conv10_atrous").output_shape == (96, 64, 64)


# ============================================================================ DeepFace

def test_deepface_map_sizes_and_parameter_share():
    summary = summary_of("deepface_lc")
    sizes = {name: summary.layer(name).output_shape for name in ("C1", "M2", "C3", "L4", "L5", "L6")}
    assert sizes == {"C1": (32, 142, 142), "M2": (32, 71, 71), "C3": (16, 63, 63), "L4": (16, 55, 55),
                     "L5": (16, 25, 25), "L6": (16, 21, 21)}                            # Fig. 2
    local = {"L4": 55 * 55 * 16 * (16 * 81 + 1), "L5": 25 * 25 * 16 * (16 * 49 + 1), "L6": 21 * 21 * 16 * (16 * 25 + 1)}
    dense = {"F7": 21 * 21 * 16 * 4096 + 4096, "F8": 4096 * 4030 + 4030}
    for name, count in {**local, **dense}.items():
        assert summary.layer(name).params == count
    total = 32 * 3 * 121 + 32 + 16 * 32 * 81 + 16 + sum(local.values()) + sum(dense.values())
    assert summary.totals.params == total == 118_923_774
    assert (sum(local.values()) + sum(dense.values())) / total > 0.95                   # "more than 95%"


# ============================================================================ tiled demo

def test_tiled_demo_tile_1_is_the_cnn_and_larger_tiles_multiply_the_kernels():
    plain = summary_of("tiled_demo", tile=1)
    tiled = summary_of("tiled_demo")
    assert tiled.totals.macs == plain.totals.macs
    for name, kernel, channels in (("tiled1", 64, 1), ("tiled2", 16, 16)):
        assert plain.layer(name).params == 16 * channels * kernel + 16
        assert tiled.layer(name).params == 4 * 16 * channels * kernel + 16               # t² C_out C_in ∏k + C_out
    tiles = summary_of("tiled_demo", tile=25)                                           # t >= 25×25: unshared
    assert tiles.layer("tiled1").params == 25 * 25 * 16 * 64 + 16


# ============================================================================ DeepLab ASPP

class ASPPHead(nn.Module):
    """torchvision.models.segmentation.deeplabv3.DeepLabHead (ASPP + 3×3 conv + classifier), rebuilt by hand."""

    def __init__(self, channels: int = 2048, num_classes: int = 21, rates=(6, 12, 18), width: int = 256):
        super().__init__()

        def branch(*modules):
            return nn.Sequential(*modules, nn.BatchNorm2d(width), nn.ReLU())

        aspp = nn.Module()
        aspp.convs = nn.ModuleList(
            [branch(nn.Conv2d(channels, width, 1, bias=False))]
            + [branch(nn.Conv2d(channels, width, 3, padding=r, dilation=r, bias=False)) for r in rates]
            + [branch(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, width, 1, bias=False))])
        aspp.project = nn.Sequential(nn.Conv2d(5 * width, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                     nn.Dropout(0.5))
        self.classifier = nn.Sequential(aspp, nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                        nn.ReLU(), nn.Conv2d(width, num_classes, 1))

    def forward(self, x):
        aspp = self.classifier[0]
        outs = [conv(x) for conv in aspp.convs[:4]]
        pooled = aspp.convs[4](x)
        outs.append(nn.functional.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        x = aspp.project(torch.cat(outs, dim=1))
        for module in list(self.classifier)[1:]:
            x = module(x)
        return x


@pytest.mark.parametrize("rates", [(6, 12, 18), (12, 24, 36)])
def test_deeplab_aspp_against_torchvision_s_layout(rates):
    summary = summary_of("deeplab_aspp", rate1=rates[0], rate2=rates[1], rate3=rates[2])
    width = 256
    aspp = 2048 * width + 3 * 9 * 2048 * width + 2048 * width + 5 * width * width + 5 * 2 * width + 2 * width
    assert summary.totals.params == aspp + 9 * width * width + 2 * width + width * 21 + 21 == 16_130_837
    assert summary.output_shape == (21, 33, 33)
    assert summary.layer("classifier.0.concat").output_shape == (1280, 33, 33)
    check_against_torch("deeplab_aspp", ASPPHead(rates=rates), summary)
