"""Whole layers whose check is their input's (`verify._Verifier._shared_whole`): an activation or a normalisation
after a global pooling shares the pooling's check (same units, same reach, an identity step), a layer that moves
the masks walks its own, and a wrong reach stated for the root fails every layer that shares its check."""

from __future__ import annotations

import convcalc
from convcalc.proof import verify


def _spec(layers):
    return convcalc.spec_from_dict({"name": "t", "input": [2, 12, 12], "layers": layers})


def test_an_activation_after_a_global_pool_shares_its_check():
    summary = convcalc.analyze(_spec([
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "name": "conv"},
        {"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "pool"},
        {"type": "ReLU", "name": "relu"},
        {"type": "BatchNorm2d", "name": "bn"},
        {"type": "Conv2d", "out_channels": 3, "kernel_size": 1, "name": "head"}]))
    checks = {check.layer: check for check in convcalc.verify_fields(summary)}
    assert all(check.ok for check in checks.values())
    assert checks["pool"].whole and checks["pool"].via is None
    assert checks["relu"].via == "pool" and checks["bn"].via == "pool" and checks["relu"].whole
    assert checks["relu"].hulls == checks["pool"].hulls == ((((0, 11), (0, 11)),) * len(checks["pool"].hulls))
    assert checks["head"].via is None            # channels 4 -> 3: its masks are not its input's, it walks its own


def test_a_wrong_reach_fails_the_layers_that_share_the_check(monkeypatch):
    summary = convcalc.analyze(_spec([
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "name": "conv"},
        {"type": "AdaptiveMaxPool2d", "output_size": 1, "name": "pool"},
        {"type": "ReLU", "name": "relu"}]))
    original = verify._Verifier._reach

    def wrong(self, name):
        found = original(self, name)
        return ((found[0][0], found[0][1] - 1), found[1])          # one row short, for both layers alike

    monkeypatch.setattr(verify._Verifier, "_reach", wrong)
    checks = {check.layer: check for check in convcalc.verify_fields(summary)}
    assert not checks["pool"].ok and not checks["relu"].ok and checks["relu"].via == "pool"
    assert "the analysis says" in checks["relu"].detail


def test_a_pointwise_conv_whose_field_judges_alike_shares_and_a_wrong_extent_does_not():
    """A 1x1 conv keeping the channel count after a 3x3 conv: a field built anew but equal, with the same extents
    (`_alike`), and an identity step on all-channel masks: it shares the conv's check. With one unit's extent
    stated wrong it is not alike any more, walks its own and fails."""
    layers = [{"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1, "name": "conv"},
              {"type": "Conv2d", "out_channels": 3, "kernel_size": 1, "name": "point"}]
    summary = convcalc.analyze(_spec(layers))
    checks = {check.layer: check for check in convcalc.verify_fields(summary)}
    assert checks["point"].via == "conv" and checks["point"].ok
    summary = convcalc.analyze(_spec(layers))
    point = next(row for row in summary.layers if row.name == "point")
    axis = point.rf.axes[0]
    honest = axis.extent
    object.__setattr__(axis, "extent", lambda unit: None if honest(unit) is None else
                       (honest(unit)[0], honest(unit)[1] + 1))
    checks = {check.layer: check for check in convcalc.verify_fields(summary)}
    assert checks["point"].via is None and not checks["point"].ok and checks["conv"].ok
