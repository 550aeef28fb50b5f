"""Receptive fields of shipped and inline networks against published figures (independent oracles).

Every figure is (size r, effective stride S, effective padding P) per spatial axis, in the convention of Araujo,
Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019
(doi 10.23915/distill.00021): output index u sees input indices [u*S - P, u*S - P + r - 1].

Sources:

* TF-slim networks (specs/tfslim/): the Distill article's table (alexnet_v2 pool5 195/32/64, vgg_16 pool5 212/32/90,
  resnet_v1_50 block4 483/32/239, mobilenet_v1 Conv2d_13_pointwise 315/32/126, inception_v3 Mixed_7c 1311/32/618),
  and the per-end-point table it comes from, google-research/receptive_field's RECEPTIVE_FIELD_TABLE.md, computed by
  that library (`rf_benchmark.py`) from the TF-slim graphs at input resolutions 224 and 321.

  On the padding convention: the library resolves SAME padding with the input resolution known, per layer, by
  TensorFlow's rule (``parse_layer_parameters._padding_size_conv_pool``: total = max(k - s, 0) if i % s == 0 else
  max(k - i % s, 0), which is max((ceil(i/s) - 1)*s + k - i, 0), and left pad = floor(total / 2)); its P is the sum
  of those left pads times the stride products. convcalc's ``tf_same`` applies the same rule to the same per-layer
  sizes, so no conversion is needed and the figures below are compared as published, at 224 and at 321 alike. The
  input size matters exactly where a SAME layer is strided: mobilenet_v1 (stride-2 3x3 convs) and resnet_v1_50
  (pool1) have other paddings at 321 than at 224 (e.g. Conv2d_13_pointwise 315/32/157, block4 483/32/241), while
  alexnet_v2, vgg_16 and inception_v3, whose SAME layers all have stride 1, give the same numbers at every size (the
  table's rows for 224, 321 and unknown resolution agree) — which is why inception_v3's figure holds at its usual
  299 input, the spec's.
* Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016: Fig. 1 (3x3 convs dilated 1, 2,
  4: fields 3, 7, 15; in general (2^(i+2) - 1) after i+1 such layers) and Table 1 (the context module: 3, 5, 9, 17,
  33, 65, 67, 67).
* van den Oord et al., "WaveNet", arXiv:1609.03499, §2.1: causal convs of width 2 dilated 1, 2, ..., 512 have a field
  of 1024; three such blocks 3 * 1023 + 1 = 3070.
* torchvision ResNets at layer4 (the figures of the issue): resnet18 435/32/217, resnet50 427/32/213.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import convcalc

SPECS = Path(__file__).resolve().parent.parent / "specs"


def field_of(summary: convcalc.Summary, name: str, aligned: bool | None = True) -> list[tuple[int, int, int]]:
    """(size, stride, padding) per spatial axis of a layer, or of a block/Sequential by its name (its output).

    ``aligned``: every merge on the way joins inputs centred alike (as the receptive-field library requires of the
    TF-slim networks); None: not checked (WaveNet's residual adds join causal fields of different sizes, which end at
    the same sample but are not centred alike).
    """
    groups = summary.graph.groups
    row = summary.layer(groups[name].output if name in groups else name)
    assert not row.rf.whole, (name, row.rf)
    if aligned is not None:
        assert row.rf.misaligned is not aligned, (name, row.rf)
    fields = []
    for axis in row.rf.axes:
        assert axis.size.denominator == axis.stride.denominator == axis.padding.denominator == 1, (name, axis)
        fields.append((int(axis.size), int(axis.stride), int(axis.padding)))
    return fields


def analyze_spec(relative: str, size: int | None = None, **overrides) -> convcalc.Summary:
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / relative), overrides)
    return convcalc.analyze(graph, None if size is None else (3, size, size))


def analyze_inline(input_shape: list[int], layers: list[dict]) -> convcalc.Summary:
    return convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": input_shape, "layers": layers}))


# --------------------------------------------------------------------------- TF-slim: the Distill article's table

DISTILL = {   # spec: (end point, size, stride, padding), at the spec's own input (224; inception_v3 299)
    "alexnet_v2": ("pool5", 195, 32, 64),
    "vgg_16": ("pool5", 212, 32, 90),
    "resnet_v1_50": ("block4", 483, 32, 239),
    "mobilenet_v1": ("Conv2d_13_pointwise", 315, 32, 126),
    "inception_v3": ("Mixed_7c", 1311, 32, 618),
}


@pytest.mark.parametrize("model", sorted(DISTILL))
def test_tfslim_distill_figures(model):
    end_point, size, stride, padding = DISTILL[model]
    summary = analyze_spec(f"tfslim/{model}.yaml")
    assert summary.input_shape == ((3, 299, 299) if model == "inception_v3" else (3, 224, 224))
    assert field_of(summary, end_point) == [(size, stride, padding)] * 2


# --------------------------------------------------------------------------- TF-slim: every end point, 224 and 321

# google-research/receptive_field, RECEPTIVE_FIELD_TABLE.md: end point -> (RF, effective stride, effective padding)
# at resolution 224 and at 321 (the table's end-point names; vgg's conv1/conv1_1 is the spec's conv1.conv1_1).
TABLE = {
    "alexnet_v2": {
        224: {"conv1": (11, 4, 0), "pool1": (19, 8, 0), "conv2": (51, 8, 16), "conv3": (99, 16, 32),
              "conv4": (131, 16, 48), "conv5": (163, 16, 64), "pool5": (195, 32, 64)},
    },
    "vgg_16": {
        224: {"conv1/conv1_1": (3, 1, 1), "pool1": (6, 2, 2), "conv2/conv2_1": (10, 2, 4), "pool2": (16, 4, 6),
              "conv3/conv3_1": (24, 4, 10), "conv3/conv3_2": (32, 4, 14), "pool3": (44, 8, 18),
              "conv4/conv4_1": (60, 8, 26), "conv4/conv4_2": (76, 8, 34), "pool4": (100, 16, 42),
              "conv5/conv5_1": (132, 16, 58), "conv5/conv5_2": (164, 16, 74), "pool5": (212, 32, 90)},
    },
    "mobilenet_v1": {
        224: {"Conv2d_0": (3, 2, 0), "Conv2d_1_pointwise": (7, 2, 2), "Conv2d_2_pointwise": (11, 4, 2),
              "Conv2d_3_pointwise": (19, 4, 6), "Conv2d_4_pointwise": (27, 8, 6), "Conv2d_5_pointwise": (43, 8, 14),
              "Conv2d_6_pointwise": (59, 16, 14), "Conv2d_7_pointwise": (91, 16, 30),
              "Conv2d_8_pointwise": (123, 16, 46), "Conv2d_9_pointwise": (155, 16, 62),
              "Conv2d_10_pointwise": (187, 16, 78), "Conv2d_11_pointwise": (219, 16, 94),
              "Conv2d_12_pointwise": (251, 32, 94), "Conv2d_13_pointwise": (315, 32, 126)},
        321: {"Conv2d_0": (3, 2, 1), "Conv2d_1_pointwise": (7, 2, 3), "Conv2d_2_pointwise": (11, 4, 5),
              "Conv2d_3_pointwise": (19, 4, 9), "Conv2d_4_pointwise": (27, 8, 13), "Conv2d_5_pointwise": (43, 8, 21),
              "Conv2d_6_pointwise": (59, 16, 29), "Conv2d_7_pointwise": (91, 16, 45),
              "Conv2d_8_pointwise": (123, 16, 61), "Conv2d_9_pointwise": (155, 16, 77),
              "Conv2d_10_pointwise": (187, 16, 93), "Conv2d_11_pointwise": (219, 16, 109),
              "Conv2d_12_pointwise": (251, 32, 125), "Conv2d_13_pointwise": (315, 32, 157)},
    },
    "resnet_v1_50": {
        224: {"block1": (35, 8, 15), "block2": (99, 16, 47), "block3": (291, 32, 143), "block4": (483, 32, 239)},
        321: {"block1": (35, 8, 17), "block2": (99, 16, 49), "block3": (291, 32, 145), "block4": (483, 32, 241)},
    },
    "inception_v3": {
        224: {"Conv2d_1a_3x3": (3, 2, 0), "Conv2d_2a_3x3": (7, 2, 0), "Conv2d_2b_3x3": (11, 2, 2),
              "MaxPool_3a_3x3": (15, 4, 2), "Conv2d_3b_1x1": (15, 4, 2), "Conv2d_4a_3x3": (23, 4, 2),
              "MaxPool_5a_3x3": (31, 8, 2), "Mixed_5b": (63, 8, 18), "Mixed_5c": (95, 8, 34),
              "Mixed_5d": (127, 8, 50), "Mixed_6a": (159, 16, 58), "Mixed_6b": (351, 16, 154),
              "Mixed_6c": (543, 16, 250), "Mixed_6d": (735, 16, 346), "Mixed_6e": (927, 16, 442),
              "Mixed_7a": (1055, 32, 490), "Mixed_7b": (1183, 32, 554), "Mixed_7c": (1311, 32, 618)},
    },
}
# the table lists alexnet_v2, vgg_16 and inception_v3 with the same figures at 321 (their SAME layers have stride 1)
for _model in ("alexnet_v2", "vgg_16", "inception_v3"):
    TABLE[_model][321] = TABLE[_model][224]

CASES = [(model, size) for model in sorted(TABLE) for size in sorted(TABLE[model])]


@pytest.mark.parametrize("model, size", CASES, ids=[f"{m}-{s}" for m, s in CASES])
def test_tfslim_end_points_match_the_receptive_field_library(model, size):
    # slim shrinks inception_v3's final 8x8 average pool to a smaller map (5x5 at 224); the end points precede it
    overrides = {"logits_pool": 5} if (model, size) == ("inception_v3", 224) else {}
    summary = analyze_spec(f"tfslim/{model}.yaml", size, **overrides)
    found = {end_point: field_of(summary, end_point.replace("/", ".")) for end_point in TABLE[model][size]}
    assert found == {end_point: [figure] * 2 for end_point, figure in TABLE[model][size].items()}


def test_tf_same_depends_on_the_input_size_where_a_layer_is_strided():
    """mobilenet_v1's Conv2d_0 (3x3, stride 2, SAME): on 224 TF pads 0 before (total max(3 - 2, 0) = 1: 0 + 1),
    on 321 1 before (total max(3 - 321 % 2, 0) = 2: 1 + 1). A PyTorch port with padding 1 has P = 1 at both."""
    assert field_of(analyze_spec("tfslim/mobilenet_v1.yaml", 224), "Conv2d_0") == [(3, 2, 0)] * 2
    assert field_of(analyze_spec("tfslim/mobilenet_v1.yaml", 321), "Conv2d_0") == [(3, 2, 1)] * 2
    assert field_of(analyze_spec("mobilenet_v1.yaml"), "conv1") == [(3, 2, 1)] * 2


# --------------------------------------------------------------------------- Yu & Koltun (ICLR 2016)

@pytest.mark.parametrize("depth", range(1, 7))
def test_yu_koltun_exponential_field(depth):
    """Fig. 1 / §2: F_{i+1} = F_i *_{2^i} k_i with 3x3 kernels; each element of F_{i+1} sees (2^(i+2) - 1)^2."""
    layers = [{"name": f"F{i + 1}", "type": "Conv2d", "out_channels": 1, "kernel_size": 3, "dilation": 2 ** i,
               "padding": 2 ** i} for i in range(depth)]
    summary = analyze_inline([1, 300, 300], layers)
    for i in range(depth):
        size = 2 ** (i + 2) - 1
        assert field_of(summary, f"F{i + 1}") == [(size, 1, (size - 1) // 2)] * 2
    assert [field_of(summary, f"F{i + 1}")[0][0] for i in range(min(depth, 3))] == [3, 7, 15][:depth]


def test_yu_koltun_context_module():
    """Table 1, the basic context module: 3x3 convs dilated 1, 1, 2, 4, 8, 16, 1, then a 1x1; resolution kept."""
    dilations = [1, 1, 2, 4, 8, 16, 1]
    layers = [{"name": f"layer{i + 1}", "type": "Conv2d", "out_channels": 2, "kernel_size": 3, "dilation": d,
               "padding": d} for i, d in enumerate(dilations)]
    layers.append({"name": "layer8", "type": "Conv2d", "out_channels": 2, "kernel_size": 1})
    summary = analyze_inline([2, 96, 96], layers)
    published = [3, 5, 9, 17, 33, 65, 67, 67]
    assert [field_of(summary, f"layer{i + 1}") for i in range(8)] == [[(r, 1, (r - 1) // 2)] * 2 for r in published]


# --------------------------------------------------------------------------- WaveNet (van den Oord et al. 2016)

def causal_stack(blocks: int) -> list[dict]:
    return [{"name": f"block{b}.dilation{2 ** i}", "type": "Conv1d", "out_channels": 4, "kernel_size": 2,
             "dilation": 2 ** i, "padding": [[2 ** i, 0]]} for b in range(blocks) for i in range(10)]


def test_wavenet_dilated_causal_stacks():
    """§2.1: one 1, 2, ..., 512 block sees 1024 samples; three see 3 * 1023 + 1 = 3070. Causal: stride 1 and
    P = r - 1 (unit u sees [u - r + 1, u], no later sample)."""
    summary = analyze_inline([4, 4096], causal_stack(3))
    assert field_of(summary, "block0.dilation512") == [(1024, 1, 1023)]
    assert field_of(summary, "block1.dilation512") == [(2047, 1, 2046)]
    assert field_of(summary, "block2.dilation512") == [(3070, 1, 3069)]


def test_wavenet_spec():
    """specs/wavenet.yaml: the same three blocks (gated, with residual and skip 1x1 convs that add no reach) after
    a width-2 causal input conv, which adds 1: 1024 + 1 after the first block, 3070 + 1 at the output."""
    summary = analyze_spec("wavenet.yaml")
    assert field_of(summary, "causal") == [(2, 1, 1)]
    assert field_of(summary, "stack.0", aligned=None) == [(1025, 1, 1024)]
    assert field_of(summary, "stack.2", aligned=None) == [(3071, 1, 3070)]
    assert field_of(summary, "skips", aligned=None) == [(3071, 1, 3070)]
    assert field_of(summary, "postprocess2", aligned=None) == [(3071, 1, 3070)]


# --------------------------------------------------------------------------- torchvision ResNets

@pytest.mark.parametrize("model, figure", [("resnet18", (435, 32, 217)), ("resnet50", (427, 32, 213))])
def test_torchvision_resnets_at_layer4(model, figure):
    assert field_of(analyze_spec(f"{model}.yaml"), "layer4") == [figure] * 2
