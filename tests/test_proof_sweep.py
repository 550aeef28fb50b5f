"""The receptive-field proof's one reverse sweep (`Dependencies.propagate_many`, `verify_fields`) against one walk
per layer (`Dependencies.masks`, itself checked against PyTorch autograd and perturbation in test_dependency), on
shipped networks whose masks differ per channel (ShuffleNet's channel split and shuffle), merge many branches
(GoogLeNet's concatenations) or move the channels (ConvNeXt's Permutes); and that a wrong rule still fails.

* Every checked layer's units reach, in the sweep, exactly the input positions their own walk reaches.
* A sweep split in halves (its masks past the byte limit) gives the same checks.
* A dense conv's per-channel rule (a mask folded to one channel) is the structural backward pass's.
* A wrong rule deep in a network (every depthwise conv's padding shifted by one) fails at the first such layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import convcalc
import convcalc.proof.verify as verify_module
from convcalc.kernels import MacCounter
from convcalc.layers import lookup
from convcalc.layers.base import Layer
from convcalc.layers.conv import ConvNd
from convcalc.proof.dependency import Dependencies, SweepTooLarge
from convcalc.proof.verify import BUDGET, _Verifier, verify_fields
from convcalc.spec.build import build_graph
from convcalc.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = {"shufflenet_v2_x1_0": (3, 64, 64), "googlenet": (3, 64, 64), "convnext_tiny": (3, 64, 64)}


def small(name: str) -> convcalc.Summary:
    return convcalc.analyze(build_graph(load_spec(ROOT / f"specs/{name}.yaml")), NETWORKS[name])


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_one_sweep_reaches_what_each_walk_reaches(name):
    summary = small(name)
    verifier = _Verifier(summary, BUDGET)
    seeds = {}
    for row in summary.layers:
        plan = verifier.plan(row.name)
        if plan is not None and not isinstance(plan, verify_module.FieldCheck):
            seeds[row.name] = verifier.seeds(plan)
    masks, reached = Dependencies(summary).propagate_many(seeds)
    one_by_one = Dependencies(summary)
    for layer, rows in seeds.items():
        alone = one_by_one.propagate(layer, rows).any(axis=-1)
        assert np.array_equal(masks[reached[layer]], alone), layer
    assert one_by_one.steps > 10 * len(summary.layers)       # the walks: many times the sweep's steps


def test_halved_sweeps_give_the_same_checks(monkeypatch):
    summary = small("shufflenet_v2_x1_0")
    whole = verify_fields(summary)
    monkeypatch.setattr(verify_module, "SWEEP_BYTES", 1)     # every sweep of 2+ layers is split down to one layer
    halved = verify_fields(summary)
    assert [(c.layer, c.ok, c.hulls, c.detail) for c in halved] == [(c.layer, c.ok, c.hulls, c.detail) for c in whole]
    assert all(c.ok for c in whole)


def test_a_sweep_past_its_bytes_stops():
    summary = small("googlenet")
    verifier = _Verifier(summary, BUDGET)
    names = [row.name for row in summary.layers[:6]]
    seeds = {name: verifier.seeds(verifier.plan(name)) for name in names}
    with pytest.raises(SweepTooLarge):
        Dependencies(summary).propagate_many(seeds, most_bytes=1)


@pytest.mark.parametrize("args", [
    {"out_channels": 5, "kernel_size": 3},
    {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1},
    {"out_channels": 3, "kernel_size": [3, 2], "dilation": 2, "padding": 2, "padding_mode": "circular"},
    {"out_channels": 2, "kernel_size": 3, "padding": 1, "padding_mode": "reflect"},
])
def test_a_dense_conv_folds_a_per_channel_mask_as_its_backward_does(args):
    layer = lookup("Conv2d").from_args(args)
    in_shape = (3, 9, 8)
    inferred = layer.infer([in_shape])
    prepared = layer.prepare(layer.structural_params(inferred), [in_shape], inferred.out_shape, np.dtype("float32"))
    out = inferred.out_shape
    rng = np.random.default_rng(1)
    mask = (rng.random((4, *out[1:], out[0])) < 0.15).astype(np.float32)
    x = np.ones((4, *in_shape[1:], in_shape[0]), dtype=np.float32)
    output = layer.forward([x], prepared, MacCounter())
    (folded,) = ConvNd.support_backward(layer, [x], output, mask, prepared)
    (structural,) = Layer.support_backward(layer, [x], output, mask, prepared)
    assert np.array_equal(np.broadcast_to(folded, structural.shape), structural)


def shifted_depthwise_rule(original):
    def rule(self, fields, in_shapes, out_shape):
        if self.groups == 1:
            return original(self, fields, in_shapes, out_shape)
        pads = self.pads(in_shapes[0][1:])
        return fields[0].through_window(self.kernel_size, self.stride, [lo + 1 for lo, _ in pads], out_shape[1:],
                                        self.dilation, self.padding_mode)
    return rule


def test_a_wrong_rule_deep_in_a_network_fails_there(monkeypatch):
    monkeypatch.setattr(ConvNd, "receptive_field", shifted_depthwise_rule(ConvNd.receptive_field))
    summary = small("shufflenet_v2_x1_0")
    checks = verify_fields(summary)
    layers = {node.name: node.layer for node in summary.graph.nodes}
    first_depthwise = next(row.name for row in summary.layers if row.type == "Conv2d" and layers[row.name].groups > 1)
    failed = [check.layer for check in checks if not check.ok]
    assert failed and failed[0] == first_depthwise
    assert "the analysis says" in next(check.detail for check in checks if check.layer == first_depthwise)
