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
