"""`convcalc.analyze` pauses the cycle collector while it works (its many small live objects were scanned again and
again: 30-45 % of a 10,000-layer spec's time) and leaves it as it found it, also when the analysis fails."""

from __future__ import annotations

import gc

import pytest

import convcalc


def _spec(layers: int, kernel: int = 3):
    return convcalc.spec_from_dict({"name": "t", "input": [3, 16, 16], "layers": [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": kernel, "padding": 1} for _ in range(layers)]})


def test_no_collection_runs_during_the_analysis_and_the_collector_is_on_again_after():
    spec = _spec(200)
    inside = [False]
    during, after = [], []

    def seen(phase, info):
        if phase == "start":
            (during if inside[0] else after).append(info["generation"])

    was = gc.isenabled()        # (a CLI command run in-process before may have left it off, as the CLI does)
    gc.enable()
    gc.callbacks.append(seen)
    try:
        inside[0] = True
        convcalc.analyze(spec)
        inside[0] = False
        gc.collect()
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(seen)
        if not was:
            gc.disable()
    assert during == []             # 200 layers allocate far past gen 0's threshold of 700 objects
    assert after                    # (the callback does see collections)


def test_the_collector_stays_as_it_was():
    was = gc.isenabled()
    try:
        gc.disable()
        convcalc.analyze(_spec(3))
        assert not gc.isenabled()
        gc.enable()
        with pytest.raises(convcalc.ConvcalcError):
            convcalc.analyze(_spec(30, kernel=5))      # the map shrinks by 2 per layer: 16x16 cannot take 30
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
