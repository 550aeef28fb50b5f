"""The dependency rules stated as products of per-dim relations (`Layer.support_factors`, `convcalc.layers.factors`)
that the proof's sweep steps (`convcalc.proof.terms`), against the layers' own whole-mask rules (`support_step`: the
structural backward pass, itself checked against PyTorch autograd and perturbation in test_dependency); and a
factor declared wrong on purpose makes the proof fail.

* Per layer (windows with every padding mode, groups, depthwise, shuffles, splits, concatenations, broadcasts,
  adaptive bins, channel bands, permutes, norms, resampling, pads): random product masks (per-dim random sets,
  some channels left out) stepped dim by dim equal `support_step` of the same masks, element by element.
* Each kind of relation, made wrong in one layer (a window one tap short, dense channels claimed grouped, a
  shuffle's or a split's gather off by one, a broadcast claimed elementwise, bins shifted, a band narrowed, a
  permute's dims swapped): `verify_fields` reports that layer (or a later one it feeds) as failed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import convcalc
from convcalc.layers import factors as factors_module
from convcalc.layers.factors import EVERY, Factors, Taps, as_matrix, step_sets
from convcalc.layers.support import MASK_DTYPE, support_step
from convcalc.proof.terms import products
from convcalc.proof.verify import verify_fields

CASES: dict[str, tuple[list[int], list[dict]]] = {
    "conv": ([3, 9, 8], [{"type": "Conv2d", "out_channels": 4, "kernel_size": [3, 2], "stride": [2, 1],
                          "padding": [1, 0], "dilation": [1, 2]}]),
    "conv_reflect": ([2, 7, 6], [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 2,
                                  "padding_mode": "reflect"}]),
    "conv_circular": ([2, 7, 6], [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 2,
                                   "padding_mode": "circular"}]),
    "conv_replicate_tf_same": ([2, 8, 7], [{"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2,
                                            "padding": "tf_same", "padding_mode": "replicate"}]),
    "conv_groups": ([6, 7, 7], [{"type": "Conv2d", "out_channels": 9, "kernel_size": 3, "groups": 3}]),
    "depthwise": ([4, 7, 7], [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "groups": 4}]),
    "depthwise_multiplier": ([3, 7, 7], [{"type": "Conv2d", "out_channels": 6, "kernel_size": 3, "groups": 3}]),
    "conv1d": ([3, 11], [{"type": "Conv1d", "out_channels": 2, "kernel_size": 4, "stride": 3, "padding": 2}]),
    "conv3d": ([2, 5, 6, 4], [{"type": "Conv3d", "out_channels": 2, "kernel_size": [3, 1, 2], "padding": [1, 0, 1]}]),
    "maxpool_ceil": ([2, 8, 9], [{"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1,
                                  "ceil_mode": True}]),
    "avgpool": ([2, 9, 9], [{"type": "AvgPool2d", "kernel_size": 3, "stride": 2}]),
    "adaptive": ([2, 10, 7], [{"type": "AdaptiveAvgPool2d", "output_size": [3, 4]}]),
    "adaptive_max": ([2, 7, 10], [{"type": "AdaptiveMaxPool2d", "output_size": [5, 3]}]),
    "batchnorm": ([3, 5, 5], [{"type": "BatchNorm2d"}]),
    "relu": ([3, 5, 5], [{"type": "ReLU6"}]),
    "softmax_channels": ([4, 5, 3], [{"type": "Softmax", "dim": 1}]),
    "softmax_width": ([4, 5, 3], [{"type": "Softmax", "dim": 3}]),
    "layernorm": ([4, 5, 6], [{"type": "LayerNorm", "normalized_shape": [5, 6]}]),
    "layernorm2d": ([4, 5, 6], [{"type": "LayerNorm2d"}]),
    "groupnorm": ([6, 4, 5], [{"type": "GroupNorm", "num_groups": 3}]),
    "lrn": ([7, 4, 4], [{"type": "LocalResponseNorm", "size": 4}]),
    "shuffle": ([6, 4, 5], [{"type": "ChannelShuffle", "groups": 3}]),
    "chunk_channels": ([6, 4, 5], [{"name": "c", "type": "Chunk", "chunks": 3},
                                   {"type": "ReLU", "from": "c.1"}]),
    "narrow_width": ([3, 4, 9], [{"type": "Narrow", "dim": 3, "start": 2, "length": 5}]),
    "concat_channels": ([3, 6, 6], [{"name": "a", "type": "Conv2d", "out_channels": 2, "kernel_size": 1},
                                    {"name": "b", "type": "Conv2d", "out_channels": 3, "kernel_size": 1,
                                     "from": "input"},
                                    {"type": "Concat", "from": ["a", "b"]}]),
    "concat_width": ([2, 5, 6], [{"name": "a", "type": "Conv2d", "out_channels": 2, "kernel_size": 1},
                                 {"name": "b", "type": "Conv2d", "out_channels": 2, "kernel_size": [1, 3],
                                  "from": "input"},
                                 {"type": "Concat", "dim": 3, "from": ["a", "b"]}]),
    "gate": ([4, 6, 6], [{"name": "g", "type": "AdaptiveAvgPool2d", "output_size": 1},
                         {"type": "Multiply", "from": ["input", "g"]}]),
    "add_broadcast_row": ([3, 5, 6], [{"name": "r", "type": "AdaptiveAvgPool2d", "output_size": [1, 6]},
                                      {"type": "Add", "from": ["input", "r"]}]),
    "permute": ([3, 5, 6], [{"type": "Permute", "dims": [0, 2, 3, 1]}]),
    "linear_last_dim": ([3, 5, 6], [{"type": "Linear", "out_features": 4}]),
    "linear": ([12], [{"type": "Linear", "out_features": 5}]),
    "upsample_nearest": ([2, 4, 5], [{"type": "Upsample", "scale_factor": 2.5, "mode": "nearest"}]),
    "upsample_bilinear": ([2, 4, 5], [{"type": "Upsample", "size": [9, 7], "mode": "bilinear"}]),
    "zeropad": ([2, 4, 5], [{"type": "ZeroPad2d", "padding": [1, 2, -1, 3]}]),
    "reflectpad": ([2, 4, 5], [{"type": "ReflectionPad2d", "padding": [2, 1, 3, 0]}]),
    "separable": ([3, 8, 8], [{"type": "DepthwiseSeparableConv2d", "out_channels": 5, "kernel_size": 3,
                               "padding": 1, "norm": "BatchNorm2d", "activation": "ReLU"}]),
    "gated": ([3, 8, 8], [{"type": "GatedConv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}]),
    "partial": ([3, 8, 8], [{"name": "m", "type": "Conv2d", "out_channels": 3, "kernel_size": 1},
                            {"type": "PartialConv2d", "out_channels": 4, "kernel_size": 3, "padding": 1,
                             "multi_channel": True, "from": ["input", "m"]}]),
    "partial_mask": ([3, 8, 8], [{"type": "PartialConvMask2d", "kernel_size": 3, "stride": 2, "padding": 1,
                                  "multi_channel": True, "out_channels": 4}]),
    "locally_connected": ([4, 7, 6], [{"type": "LocallyConnected2d", "out_channels": 4, "kernel_size": 3,
                                       "groups": 2, "padding": 1}]),
    "tiled": ([2, 8, 8], [{"type": "TiledConv2d", "out_channels": 3, "kernel_size": 3, "tile_size": 2}]),
    "lppool": ([2, 9, 8], [{"type": "LPPool2d", "norm_type": 2, "kernel_size": 3, "stride": 2}]),
    "global_max": ([3, 5, 4], [{"type": "GlobalMaxPool"}]),
    "maxout": ([6, 4, 4], [{"type": "Maxout", "pool_size": 3}]),
    "channel_window": ([7, 3, 3], [{"type": "ChannelMaxPool", "kernel_size": 3, "stride": 2}]),
    "layer_scale": ([4, 5, 5], [{"type": "LearnableTensor", "shape": [4, 1, 1]}]),
}


def summary_of(shape: list[int], layers: list[dict]) -> convcalc.Summary:
    return convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": shape, "layers": layers}))


def random_product(shape: tuple[int, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """One random set per dim, none empty, one of them (randomly) every position."""
    dims = []
    for n in shape:
        found = rng.random(n) < rng.uniform(0.2, 0.8)
        found[rng.integers(n)] = True
        dims.append(found)
    if rng.random() < 0.3:
        dims[0][:] = True
    return dims


@pytest.mark.parametrize("small_taps", [None, 0], ids=["taps_as_matrix", "taps_by_tap"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_factors_step_as_the_layer_rule_does(case, small_taps, monkeypatch):
    if small_taps is not None:          # every Taps relation stepped tap by tap (the path of long axes)
        monkeypatch.setattr(factors_module, "SMALL_TAPS", small_taps)
    shape, layers = CASES[case]
    summary = summary_of(shape, layers)
    row = summary.layers[-1]
    node = next(n for n in summary.graph.nodes if n.name == row.name)
    shapes = {"input": tuple(summary.input_shape), **{r.name: tuple(r.output_shape) for r in summary.layers}}
    in_shapes = [shapes[source] for source in node.inputs]
    out_shape = tuple(row.output_shape)
    factors = node.layer.support_factors(in_shapes, out_shape)
    assert factors is not None, f"{row.type} states no factors"
    rng = np.random.default_rng(len(case))
    for _ in range(6):
        sets = random_product(out_shape, rng)
        whole = products([s[None] for s in sets]) if len(out_shape) > 1 else sets[0][None]
        mask = whole.astype(MASK_DTYPE)
        expected = support_step(node.layer, mask, in_shapes, out_shape, {})
        for rule, in_shape, found in zip(factors, in_shapes, expected):
            stepped = [step_sets(relation, sets[rule.source(d)][None], in_shape[d])
                       for d, relation in enumerate(rule.relations)]
            got = products(stepped) if len(in_shape) > 1 else stepped[0]
            found = np.broadcast_to(found != 0, got.shape) if found.shape[-1] == 1 else found != 0
            assert np.array_equal(got, found), (case, rule)


# --------------------------------------------------------------------------- wrong factors fail the proof

def _failed(shape: list[int], layers: list[dict]) -> list[str]:
    return [check.layer for check in verify_fields(summary_of(shape, layers)) if not check.ok]


def _patch(monkeypatch, layer_type: str, change) -> None:
    """``layer_type``'s factors passed through ``change(factors, in_shapes, out_shape)`` (its class, per test)."""
    from convcalc.layers import lookup
    cls = lookup(layer_type)
    original = cls.support_factors

    def wrong(self: Any, in_shapes, out_shape):
        found = original(self, in_shapes, out_shape)
        return change(found, in_shapes, out_shape)

    monkeypatch.setattr(cls, "support_factors", wrong)


def _with(factors: Factors, dim: int, relation) -> Factors:
    relations = list(factors.relations)
    relations[dim] = relation
    return Factors(tuple(relations), factors.sources)


# a narrow and a wide branch side by side on the channels: a wrong channel relation changes what the
# channel-0 half reaches (the analysis: the wide branch's field for every channel)
TWO_BRANCHES = [{"name": "narrow", "type": "Conv2d", "out_channels": 2, "kernel_size": 1},
                {"name": "wide", "type": "Conv2d", "out_channels": 2, "kernel_size": 5, "padding": 2, "from": "input"},
                {"name": "both", "type": "Concat", "from": ["narrow", "wide"]}]


def test_a_window_one_tap_short_fails(monkeypatch):
    def short(found, in_shapes, out_shape):
        rule = found[0]
        window = as_matrix(rule.relations[2], out_shape[2], in_shapes[0][2]).copy()
        for row in window:
            taps = np.flatnonzero(row)
            if len(taps):
                row[taps[-1]] = False
        return [_with(rule, 2, window)]

    layers = [{"name": "c", "type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1}]
    assert _failed([1, 8, 8], layers) == []
    _patch(monkeypatch, "Conv2d", short)
    assert _failed([1, 8, 8], layers) == ["c"]


def test_dense_channels_claimed_grouped_fail(monkeypatch):
    layers = TWO_BRANCHES + [{"name": "mix", "type": "Conv2d", "out_channels": 4, "kernel_size": 1},
                             {"name": "pick", "type": "Narrow", "dim": 1, "start": 0, "length": 2}]
    assert _failed([1, 12, 12], layers) == []

    def grouped(found, in_shapes, out_shape):
        if in_shapes[0][0] != 4 or found[0].relations[0] is not EVERY:
            return found
        return [_with(found[0], 0, np.kron(np.eye(2, dtype=bool), np.ones((2, 2), dtype=bool)))]

    _patch(monkeypatch, "Conv2d", grouped)
    assert "pick" in _failed([1, 12, 12], layers)


def test_a_shuffle_gathering_the_wrong_channels_fails(monkeypatch):
    layers = TWO_BRANCHES + [{"name": "shuffle", "type": "ChannelShuffle", "groups": 2},     # 0, 2, 1, 3
                             {"name": "pick", "type": "Narrow", "dim": 1, "start": 0, "length": 2}]
    assert _failed([1, 12, 12], layers) == []

    def first_only(found, in_shapes, out_shape):
        channels = in_shapes[0][0]
        wrong = np.zeros((channels, channels), dtype=bool)
        wrong[:, 0] = True                                 # every output channel reads input channel 0 alone
        return [_with(found[0], 0, wrong)]

    _patch(monkeypatch, "ChannelShuffle", first_only)
    assert "pick" in _failed([1, 12, 12], layers)


def test_a_split_reading_the_other_part_fails(monkeypatch):
    layers = TWO_BRANCHES + [{"name": "halves", "type": "Chunk", "chunks": 2},
                             {"name": "wide_half", "type": "ReLU", "from": "halves.1"}]
    assert _failed([1, 12, 12], layers) == []

    def shifted(found, in_shapes, out_shape):
        relation = as_matrix(found[0].relations[0], out_shape[0], in_shapes[0][0])
        return [_with(found[0], 0, np.roll(relation, -relation.shape[0], axis=1))]   # part k reads part k - 1

    _patch(monkeypatch, "Chunk", shifted)
    assert "wide_half" in _failed([1, 12, 12], layers)


def test_a_broadcast_claimed_elementwise_fails(monkeypatch):
    layers = [{"name": "g", "type": "AdaptiveAvgPool2d", "output_size": [1, 6]},
              {"name": "gate", "type": "Multiply", "from": ["input", "g"]}]
    assert _failed([2, 6, 6], layers) == []

    def elementwise(found, in_shapes, out_shape):
        return [found[0], _with(found[1], 1, np.eye(out_shape[1], in_shapes[1][1], dtype=bool))]

    _patch(monkeypatch, "Multiply", elementwise)
    assert "gate" in _failed([2, 6, 6], layers)


def test_shifted_bins_fail(monkeypatch):
    layers = [{"name": "bins", "type": "AdaptiveAvgPool2d", "output_size": 3}]
    assert _failed([1, 9, 9], layers) == []

    def shifted(found, in_shapes, out_shape):
        return [_with(found[0], 1, np.roll(as_matrix(found[0].relations[1], out_shape[1], in_shapes[0][1]), 1, axis=1))]

    _patch(monkeypatch, "AdaptiveAvgPool2d", shifted)
    assert _failed([1, 9, 9], layers) == ["bins"]


def test_a_narrowed_channel_band_fails(monkeypatch):
    layers = TWO_BRANCHES + [{"name": "lrn", "type": "LocalResponseNorm", "size": 5},
                             {"name": "pick", "type": "Narrow", "dim": 1, "start": 0, "length": 1}]
    assert _failed([1, 12, 12], layers) == []

    def identity(found, in_shapes, out_shape):
        return [_with(found[0], 0, None)]

    _patch(monkeypatch, "LocalResponseNorm", identity)
    assert "pick" in _failed([1, 12, 12], layers)


def test_a_permute_with_its_dims_swapped_fails(monkeypatch):
    layers = [{"name": "c", "type": "Conv2d", "out_channels": 2, "kernel_size": [1, 5], "padding": [0, 2]},
              {"name": "p", "type": "Permute", "dims": [0, 1, 3, 2]},
              {"name": "d", "type": "Conv2d", "out_channels": 2, "kernel_size": 1}]
    assert _failed([1, 8, 8], layers) == []

    def swapped(found, in_shapes, out_shape):
        return [Factors(found[0].relations, (0, 1, 2))]          # H and W left where they were

    _patch(monkeypatch, "Permute", swapped)
    assert "p" in _failed([1, 8, 8], layers)


def test_factors_that_do_not_fit_the_shapes_are_refused(monkeypatch):
    def wrong_rank(found, in_shapes, out_shape):
        return [Factors(found[0].relations[:-1])]

    _patch(monkeypatch, "ReLU", wrong_rank)
    with pytest.raises(convcalc.ConvcalcError, match="dependency factors do not fit"):
        verify_fields(summary_of([1, 6, 6], [{"name": "r", "type": "ReLU"}]))


def test_flatten_into_a_vector_marks_every_element_on_one_channel():
    """Flatten has no factors (its rank changes): its one-channel rule for a mark on every feature is its
    structural backward pass's (every element), and a row with no mark reaches nothing."""
    summary = summary_of([3, 4, 5], [{"type": "Flatten"}])
    layer = summary.graph.nodes[0].layer
    assert layer.support_factors([(3, 4, 5)], (60,)) is None
    mask = np.array([[1.0], [0.0]], dtype=MASK_DTYPE)
    fast = layer.support_uniform(mask, [(3, 4, 5)], (60,))[0]
    slow = layer.support_backward([np.ones((2, 4, 5, 3), dtype=MASK_DTYPE)], None,
                                  np.broadcast_to(mask, (2, 60)).copy(), None)[0]
    assert fast.shape == (2, 4, 5, 1)
    assert np.array_equal(np.broadcast_to(fast, slow.shape), slow != 0)


def test_taps_past_the_input_are_refused(monkeypatch):
    def past(found, in_shapes, out_shape):
        n = in_shapes[0][2]
        return [_with(found[0], 2, Taps(np.arange(out_shape[2])[:, None] + n, n))]

    _patch(monkeypatch, "ReLU", past)
    with pytest.raises(convcalc.ConvcalcError, match="taps read past its 6 positions"):
        verify_fields(summary_of([1, 6, 6], [{"name": "r", "type": "ReLU"}]))


def test_window_taps_are_shared_read_only_and_equal_to_the_window_rule():
    """`window_relation` hands every layer asking for the same window one object: its taps cannot be changed in
    place, and its matrix is the window written out (q reads q*stride + t*dilation - lo, inside the input)."""
    from convcalc.layers.factors import window_relation
    first = window_relation(9, 4, 3, 2, 1, 1, 0)
    assert window_relation(9, 4, 3, 2, 1, 1, 0) is first
    with pytest.raises(ValueError):
        first.index[0, 0] = 5
    expected = np.zeros((4, 9), dtype=bool)
    for q in range(4):
        for t in range(3):
            p = q * 2 + t - 1
            if 0 <= p < 9:
                expected[q, p] = True
    assert np.array_equal(first.matrix(), expected)
