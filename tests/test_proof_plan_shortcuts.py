"""The proof's planning shortcuts (`verify._Verifier`) against the slow paths they skip, layer by layer on every
zoo spec and on random chains:

* `_units_of_input` (a layer keeping its input's field takes its input's units) must give what `units_for`
  chooses;
* `_dims_map_to_themselves` (each distinct set stepped once per dim) must answer as the seed terms stepped whole
  (`terms.stepped`) compared dim by dim;
* `_extents` (per-axis extents read once per coordinate) must equal `Field.extent` unit by unit.

Each test also checks that the shortcut was taken on some layers, so it cannot pass by never running."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import convcalc
from convcalc.proof import verify
from convcalc.proof.terms import stepped
from convcalc.spec.zoo import zoo_names, zoo_path

SPECS = zoo_names()


def _old_maps_to_itself(verifier, plan, in_shape, rule) -> bool:
    """The slow path: the seed terms stepped whole, compared walk for walk and dim by dim."""
    terms = verifier.seed_terms(plan)
    found = stepped(terms, rule, in_shape)
    return found is not None and len(found.walks) == len(terms.walks) and \
        all(np.array_equal(a, b) for a, b in zip(found.dims, terms.dims))


def _compare(summary) -> dict[str, int]:
    """Plan every layer as `verify_fields` does, comparing each shortcut with its slow path where it applies."""
    verifier = verify._Verifier(summary, verify.BUDGET)
    taken = {"units": 0, "dims": 0, "extents": 0}
    if not verifier.input_spatial:
        return taken
    for row in summary.layers:
        name, rf = row.name, row.rf
        if not rf.whole and len(rf.axes) == len(row.output_shape) - 1 == len(verifier.input_spatial):
            spatial = verify._spatial(rf, row.output_shape)
            short = verifier._units_of_input(name, rf, spatial)
            if short is not None:
                taken["units"] += 1
                assert short == verifier.units_for(name), name
            if not rf.terms and rf.standard:
                units = verifier.units_for(name)[0]
                assert verify._extents(rf, units) == tuple(rf.extent(unit) for unit in units), name
                taken["extents"] += 1
        plan = verifier.plan(name)
        node = verifier.dependencies.nodes[name]
        if not isinstance(plan, verify._Plan) or len(node.inputs) != 1:
            continue
        factors = verifier.dependencies.factors(name)
        in_shape = verifier.dependencies.shapes[node.inputs[0]]
        if factors is not None and factors[0].sources is None and \
                verifier.dependencies.shapes[name][1:] == in_shape[1:]:
            taken["dims"] += 1
            assert verifier._dims_map_to_themselves(plan, factors[0], in_shape) == \
                _old_maps_to_itself(verifier, plan, in_shape, factors[0]), name
    return taken


def test_the_shortcuts_answer_as_the_slow_paths_on_every_zoo_spec():
    taken = {"units": 0, "dims": 0, "extents": 0}
    for name in SPECS:
        found = _compare(convcalc.analyze(convcalc.load_spec(zoo_path(name))))
        taken = {key: taken[key] + found[key] for key in taken}
    assert all(count > 50 for count in taken.values()), taken


@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "convnext_tiny"])
def test_the_zoo_checks_stay_those_of_the_slow_paths(name, monkeypatch):
    """The whole proof with the shortcuts off (the slow paths in their place) gives the same checks."""
    summary = convcalc.analyze(convcalc.load_spec(zoo_path(name)))
    fast = convcalc.verify_fields(summary)
    monkeypatch.setattr(verify._Verifier, "_units_of_input", lambda self, name, rf, spatial: None)
    monkeypatch.setattr(verify._Verifier, "_dims_map_to_themselves",
                        lambda self, plan, rule, in_shape: _old_maps_to_itself(self, plan, in_shape, rule))
    monkeypatch.setattr(verify, "_extents", lambda rf, units: tuple(rf.extent(unit) for unit in units))
    assert convcalc.verify_fields(summary) == fast


_LAYER = st.one_of(
    st.builds(lambda k, s, p, c: {"type": "Conv2d", "out_channels": c, "kernel_size": k, "stride": s,
                                  "padding": min(p, k // 2)},
              st.integers(1, 4), st.integers(1, 2), st.integers(0, 2), st.integers(2, 6)),
    st.builds(lambda g: {"type": "ChannelShuffle", "groups": g}, st.sampled_from([1, 2])),
    st.builds(lambda k, s: {"type": "MaxPool2d", "kernel_size": k, "stride": s}, st.integers(2, 3),
              st.integers(1, 2)),
    st.just({"type": "ReLU"}), st.just({"type": "BatchNorm2d"}), st.just({"type": "Identity"}),
    st.builds(lambda m: {"type": "ReflectionPad2d", "padding": m}, st.integers(1, 2)),
)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(_LAYER, min_size=1, max_size=6), st.integers(9, 20), st.integers(9, 20))
def test_the_shortcuts_answer_as_the_slow_paths_on_random_chains(layers, height, width):
    try:
        summary = convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": [4, height, width],
                                                            "layers": layers}))
    except convcalc.ConvcalcError:
        return                              # a chain the input size cannot take
    _compare(summary)
