"""The mobile-class shipped specs against torchvision 0.28's own models (issue 17, "Specs to ship").

Each spec in ``specs/`` is written from the README as a user would and named with torchvision's state_dict keys.
Checked here, per spec: torchvision's published ``num_params`` and GMACs (``_ops``, multiply-accumulates, rounded as
torchvision rounds them); the whole network against the torchvision model at the spec's input size
(`assert_same_network`: keys, shapes, per-module params, every leaf's output shape, FLOPs = 2 x MACs per layer and
in total); float64 outputs against the model with its (randomized) state_dict loaded into ``convcalc.run``, at a
small input to keep the file fast; ``convcalc lint`` finds no error; the segmentation head follows ``--input-size``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import pytest
from torch import nn

import convcalc
from convcalc.lint import LintConfig, Severity, lint_paths
from torchvision_ref import (assert_same_network, assert_same_outputs, build, published, summary_of,
                             torchvision_models)

SPECS = Path(__file__).resolve().parent.parent / "specs"


class Zoo(NamedTuple):
    factory: Callable[[], nn.Module]    # torchvision's model, weights=None
    weights: str                        # the weights enum holding the published figures
    small: tuple[int, ...]              # the input of the float64 output comparison
    on_meta: bool = True                # False: the builder computes on tensors (RegNet's BlockParams)


def _tv(name: str, **kwargs) -> Callable[[], nn.Module]:
    def factory() -> nn.Module:
        module = torchvision_models()
        for part in name.split("."):
            module = getattr(module, part)
        return module(weights=None, **kwargs)
    return factory


ZOO = {
    "efficientnet_b0": Zoo(_tv("efficientnet_b0"), "EfficientNet_B0_Weights", (3, 64, 64)),
    "mobilenet_v2": Zoo(_tv("mobilenet_v2"), "MobileNet_V2_Weights", (3, 64, 64)),
    "mobilenet_v3_large": Zoo(_tv("mobilenet_v3_large"), "MobileNet_V3_Large_Weights", (3, 64, 64)),
    "shufflenet_v2_x1_0": Zoo(_tv("shufflenet_v2_x1_0"), "ShuffleNet_V2_X1_0_Weights", (3, 64, 64)),
    "lraspp_mobilenet_v3_large": Zoo(_tv("segmentation.lraspp_mobilenet_v3_large", weights_backbone=None,
                                         num_classes=21), "LRASPP_MobileNet_V3_Large_Weights", (3, 64, 64)),
    "regnet_y_400mf": Zoo(_tv("regnet_y_400mf"), "RegNet_Y_400MF_Weights", (3, 64, 64), on_meta=False),
}


def _model(name: str) -> nn.Module:
    zoo = ZOO[name]
    return build(zoo.factory) if zoo.on_meta else zoo.factory().eval()


@pytest.mark.parametrize("name", sorted(ZOO))
def test_published_params_and_gmacs(name):
    params, gmacs = published(ZOO[name].weights)
    summary = summary_of(name)
    assert summary.totals.params == params
    assert summary.totals.trainable_params == params
    assert round(summary.totals.macs / 1e9, 3) == gmacs


@pytest.mark.parametrize("name", sorted(ZOO))
def test_same_network_as_torchvision(name):
    assert_same_network(summary_of(name), _model(name))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_same_outputs_as_torchvision(name):
    assert_same_outputs(name, _model(name), ZOO[name].small, rtol=1e-9)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_lint_finds_no_error(name):
    report = lint_paths([SPECS / f"{name}.yaml"], LintConfig())
    assert [f.message for f in report.findings if f.severity >= Severity.error] == []


@pytest.mark.parametrize("size", [(3, 512, 512), (3, 97, 131), (3, 33, 40)])
def test_lraspp_output_follows_the_input_size(size):
    summary = summary_of("lraspp_mobilenet_v3_large", size)
    assert summary.output_shape == (21, *size[1:])
    # the head's upsampling meets the low-level features at their size, as torchvision's at any input
    low = summary.layer("classifier.low_classifier").output_shape[1:]
    assert summary.layer("classifier.upsampled").output_shape[1:] == low


def test_lraspp_at_another_size_is_torchvisions():
    assert_same_network(summary_of("lraspp_mobilenet_v3_large", (3, 97, 131)), _model("lraspp_mobilenet_v3_large"))
    assert_same_outputs("lraspp_mobilenet_v3_large", _model("lraspp_mobilenet_v3_large"), (3, 45, 71), rtol=1e-9)


def _regnet(**init) -> tuple[dict, Callable[[], nn.Module]]:
    """The spec's stage arguments for a RegNet built by torchvision's own BlockParams from its design parameters."""
    models = torchvision_models()
    params = models.regnet.BlockParams.from_init_params(**init)
    assert len(set(params.group_widths)) == 1 and set(params.bottleneck_multipliers) == {1.0}
    overrides = {"depths": params.depths, "widths": params.widths, "group_width": params.group_widths[0],
                 "se_ratio": params.se_ratio}
    return overrides, lambda: models.regnet.RegNet(params)


# the specs' arguments (`--set`) give torchvision's other variants
VARIANTS = {
    "shufflenet_v2_x0_5": ("shufflenet_v2_x1_0", {"stages_out_channels": [24, 48, 96, 192, 1024]},
                           _tv("shufflenet_v2_x0_5")),
    "shufflenet_v2_x2_0": ("shufflenet_v2_x1_0", {"stages_out_channels": [24, 244, 488, 976, 2048]},
                           _tv("shufflenet_v2_x2_0")),
    "mobilenet_v2_0.5": ("mobilenet_v2", {"width_mult": 0.5, "num_classes": 10}, _tv("mobilenet_v2", width_mult=0.5,
                                                                                      num_classes=10)),
    "mobilenet_v3_large_0.75_dilated_reduced": (
        "mobilenet_v3_large", {"width_mult": 0.75, "dilated": True, "reduced_tail": True},
        _tv("mobilenet_v3_large", width_mult=0.75, dilated=True, reduced_tail=True)),
    "regnet_y_800mf": ("regnet_y_400mf", *_regnet(depth=14, w_0=56, w_a=38.84, w_m=2.4, group_width=16,
                                                  se_ratio=0.25)),
    "regnet_x_400mf": ("regnet_y_400mf", *_regnet(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16)),
    "lraspp_7_classes": ("lraspp_mobilenet_v3_large", {"num_classes": 7},
                         _tv("segmentation.lraspp_mobilenet_v3_large", weights_backbone=None, num_classes=7)),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_arguments_give_torchvisions_variants(variant):
    spec, overrides, factory = VARIANTS[variant]
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / f"{spec}.yaml"), overrides, (3, 96, 96))
    assert_same_network(convcalc.analyze(graph), build(factory))


def test_efficientnet_stochastic_depth_is_torchvisions():
    # torchvision gives every MBConv a StochasticDepth(p = 0.2 * block / 16); the spec has one where it is called
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / "efficientnet_b0.yaml"))
    ours = {node.name: (node.layer.p, node.layer.mode) for node in graph.nodes if node.type_name == "StochasticDepth"}
    model = _model("efficientnet_b0")
    theirs = {name: (module.p, module.mode) for name, module in model.named_modules()
              if type(module).__name__ == "StochasticDepth"
              and model.get_submodule(name.rsplit(".", 1)[0]).use_res_connect}
    assert ours == theirs and len(ours) == 9
