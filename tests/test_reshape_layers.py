"""The layout layers in networks: Permute, Unflatten, Reshape/View, Narrow, Chunk and Split, and the references
``NAME.K`` that name a Chunk's or Split's parts (`convcalc.spec.parts`).

The oracles are torch modules built here from torch.nn and torch functions (float64 outputs within 1e-9), autograd
for receptive fields (through `convcalc.run`'s exact dependency proof, itself checked against autograd elsewhere,
and directly where a field is stated exactly), and the texts the builder must say. The per-type randomized
cross-checks (shapes, refusals, outputs, gradients) are in layout_cases.py, run by the registry-parametrized tests.
(``test_layout.py`` is the package layout's test, not these layers'.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import convcalc
from convcalc.errors import ConvcalcError, GraphError, LayerArgError, SpecError
from convcalc.layers import lookup

torch.set_num_threads(1)


def spec(layers, input_shape=(8, 6, 6), blocks=None, **top):
    data = {"name": "t", "input": list(input_shape), "layers": layers, **top}
    if blocks:
        data["blocks"] = blocks
    return convcalc.spec_from_dict(data)


def build(layers, **kwargs):
    return convcalc.build_graph(spec(layers, **kwargs))


def message(layers, **kwargs) -> str:
    with pytest.raises(ConvcalcError) as info:
        convcalc.analyze(spec(layers, **kwargs))
    return info.value.message


def state(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in module.state_dict().items() if v.is_floating_point()}


def randomized(module: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if tensor.is_floating_point():
                value = torch.rand(tensor.shape, generator=gen, dtype=torch.float64)
                tensor.copy_(value + 0.5 if name.endswith("running_var") else value * 2 - 1)
    return module.double().eval()


# ============================================================================ ShuffleNetV2's unit: x.chunk(2, dim=1)

SHUFFLE_BLOCK = {"Unit": {"args": {"c": "required"}, "layers": [
    {"name": "split", "type": "Chunk", "chunks": 2, "dim": 1},
    {"name": "branch2", "type": "Sequential", "from": "split.1", "layers": [
        {"type": "Conv2d", "out_channels": "${c // 2}", "kernel_size": 1, "bias": False},
        {"type": "BatchNorm2d"}, {"type": "ReLU"},
        {"type": "Conv2d", "out_channels": "${c // 2}", "kernel_size": 3, "padding": 1, "groups": "${c // 2}",
         "bias": False},
        {"type": "BatchNorm2d"},
        {"type": "Conv2d", "out_channels": "${c // 2}", "kernel_size": 1, "bias": False},
        {"type": "BatchNorm2d"}, {"type": "ReLU"}]},
    {"name": "cat", "type": "Concat", "from": ["split.0", "branch2"]},
    {"name": "shuffle", "type": "ChannelShuffle", "groups": 2}]}}


class TorchUnit(nn.Module):
    """torchvision's ShuffleNetV2 InvertedResidual with stride 1, as its source writes it."""

    def __init__(self, c: int):
        super().__init__()
        h = c // 2
        self.branch2 = nn.Sequential(nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU(),
                                     nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h),
                                     nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU())

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def test_shufflenet_unit_with_named_chunk_parts_matches_torch():
    units = nn.Sequential(TorchUnit(8), TorchUnit(8))
    randomized(units)
    weights = {f"stage.{k}": v for k, v in state(units).items()}
    net = spec([{"name": "stage", "type": "Unit", "c": 8, "repeat": 2}], blocks=SHUFFLE_BLOCK)
    x = np.random.default_rng(1).standard_normal((2, 8, 6, 6))
    checked = convcalc.run(net, x, weights=weights, dtype="float64")
    assert checked.ok
    with torch.no_grad():
        expected = units(torch.from_numpy(x)).numpy()
    assert np.abs(checked.output - expected).max() <= 1e-9 * max(1.0, np.abs(expected).max())
    summary = convcalc.analyze(net)
    names = [row.name for row in summary.layers]
    # a part's node sits where it is first named; the Chunk itself makes no node
    assert names[:2] == ["stage.0.split.1", "stage.0.branch2.0"] and "stage.0.split" not in names
    assert names.index("stage.0.split.0") == names.index("stage.0.cat") - 1
    part = summary.layer("stage.1.split.0")
    assert part.type == "Chunk" and part.output_shape == (4, 6, 6) and part.params == 0 and part.macs == 0


def test_a_part_named_twice_is_one_node_and_parts_nobody_names_are_not_made():
    graph = build([{"name": "split", "type": "Split", "split_size_or_sections": [2, 3, 3]},
                   {"name": "a", "type": "ReLU", "from": "split.2"},
                   {"name": "b", "type": "Add", "from": ["split.2", "a"]}])
    names = [node.name for node in graph]
    assert names == ["split.2", "a", "b"]
    assert graph.node("b").inputs == ("split.2", "a") and graph.node("split.2").inputs == ("input",)
    assert graph.node("split.2").layer.part == 2


def test_parts_are_named_from_outside_their_block_and_as_the_spec_output():
    summary = convcalc.analyze(spec([{"name": "stage", "type": "Unit", "c": 8},
                                     {"name": "head", "type": "ReLU", "from": "stage.split.0"},
                                     {"name": "s", "type": "Split", "split_size_or_sections": [2, 2, 4], "from": "input"}],
                                    blocks=SHUFFLE_BLOCK, output="s.2"))
    assert summary.output_shape == (4, 6, 6)
    assert [row.name for row in summary.layers][-2:] == ["head", "s.2"]
    assert summary.layer("head").inputs == ("stage.split.0",)


# ============================================================================ what the builder says

def test_a_part_past_the_count_is_refused():
    text = message([{"name": "split", "type": "Chunk", "chunks": 2}, {"type": "ReLU", "from": "split.5"}])
    assert text == ("'from' refers to 'split.5': layer 'split' (Chunk): there is no part 5: it has at most 2 parts"
                    " (0 to 1)")
    text = message([{"name": "split", "type": "Split", "split_size_or_sections": [4, 4]},
                    {"type": "ReLU", "from": "split.2"}])
    assert "there is no part 2: it has at most 2 parts (0 to 1)" in text


def test_a_part_past_the_count_the_shape_decides_is_refused_at_analysis():
    # Split by size 3 of 8 channels: 3 parts; chunks 5 of 8: ceil(8/5) = 2 per part, so 4 parts (torch makes 4)
    text = message([{"name": "split", "type": "Split", "split_size_or_sections": 3}, {"type": "ReLU",
                                                                                      "from": "split.3"}])
    assert "layer 'split.3' (Split): there is no part 3: axis 1 (dim 1) of size 8 makes 3 parts of 3 (the last 2)" in text
    assert len(torch.chunk(torch.zeros(1, 8), 5, dim=1)) == 4
    text = message([{"name": "split", "type": "Chunk", "chunks": 5}, {"type": "ReLU", "from": "split.4"}])
    assert "there is no part 4: axis 1 (dim 1) of size 8 makes 4 parts of 2" in text


def test_the_splitter_itself_cannot_be_read_whole():
    text = message([{"name": "split", "type": "Chunk", "chunks": 2}, {"type": "ReLU", "from": "split"}])
    assert text == ("'from' refers to 'split', a Chunk with several outputs; name one of its parts: split.0 to"
                    " split.1")
    text = message([{"name": "split", "type": "Chunk", "chunks": 2}, {"name": "r", "type": "ReLU"}])
    assert text == ("layer 'r' (ReLU) reads 'split', a Chunk with several outputs; name one of its parts: split.0"
                    " to split.1")
    text = message([{"name": "split", "type": "Split", "split_size_or_sections": 2}])
    assert text == ("the spec's output is its last layer, 'split', a Split with several outputs; name one of its"
                    " parts: split.0, split.1, ...")
    text = message([{"name": "split", "type": "Chunk", "chunks": 2}, {"type": "ReLU", "from": "split.0"}],
                   output="split")
    assert "'output' refers to 'split', a Chunk with several outputs" in text


def test_a_dotted_name_that_is_not_a_part():
    text = message([{"name": "conv", "type": "Conv2d", "out_channels": 2, "kernel_size": 1},
                    {"type": "ReLU", "from": "conv.1"}])
    assert text == ("'from' refers to 'conv.1', which is not a layer defined before this one in this spec: 'conv' is"
                    " not a Chunk or Split (whose parts are named NAME.K) and has no copy or child '1'")
    text = message([{"type": "ReLU", "from": "nothing.1"}])
    assert text.startswith("'from' refers to 'nothing.1', which is not a layer defined before this one in this spec;")


def test_repeat_copies_keep_their_names_beside_parts():
    """``name.0`` is a repeat copy's name: a reference to it still means the copy, and a Chunk cannot repeat."""
    graph = build([{"name": "conv", "type": "Conv2d", "out_channels": 8, "kernel_size": 1, "repeat": 2},
                   {"name": "split", "type": "Chunk", "chunks": 2},
                   {"name": "a", "type": "Add", "from": ["conv.0", "split.0", "split.1"]}], input_shape=(8, 4, 4))
    assert graph.node("a").inputs == ("conv.0", "split.0", "split.1")
    assert graph.node("conv.0").type_name == "Conv2d" and graph.node("split.0").type_name == "Chunk"
    text = message([{"name": "split", "type": "Chunk", "chunks": 2, "repeat": 2}])
    assert text == ("layer 'split.0' (Chunk) cannot repeat: its parts are named split.0.0, split.0.1, ... as repeat"
                    " copies would be")


def test_a_layer_named_like_a_part_is_refused_either_way():
    text = message([{"name": "split", "type": "Chunk", "chunks": 2}, {"name": "split.1", "type": "ReLU",
                                                                      "from": "split.0"}])
    assert text == "the name 'split.1' is taken: it names part 1 of 'split' (Chunk)"
    text = message([{"name": "split.0", "type": "ReLU"}, {"name": "split", "type": "Chunk", "chunks": 2}])
    assert text == ("layer 'split' (Chunk): its parts would be named split.0, split.1, ..., but a layer named split.K"
                    " exists")
    text = message([{"name": "split", "type": "Chunk", "chunks": 2}, {"type": "ReLU", "from": "split.0"},
                    {"name": "split.0", "type": "ReLU"}])
    assert text.startswith("duplicate layer name 'split.0'")


def test_a_chunk_with_a_part_is_an_ordinary_layer_and_without_one_it_has_no_single_output():
    assert [n.name for n in build([{"name": "half", "type": "Chunk", "chunks": 2, "part": 1}])] == ["half"]
    with pytest.raises(LayerArgError, match="Chunk has 2 outputs here; a later layer names one as NAME.K"):
        lookup("Chunk").from_args({"chunks": 2}).infer([(8, 4, 4)])


# ============================================================================ ConvNeXt's block: Linear on the last axis

def test_convnext_block_permute_layernorm_linear_matches_torch():
    """Permute -> LayerNorm -> Linear -> GELU -> Linear -> Permute with the residual Add, as torchvision's CNBlock
    (without layer scale and stochastic depth): outputs as torch's, and every receptive field proven."""
    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
            self.ln = nn.LayerNorm(c, eps=1e-6)
            self.fc1, self.fc2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

        def forward(self, x):
            y = self.dw(x).permute(0, 2, 3, 1)
            y = self.fc2(nn.functional.gelu(self.fc1(self.ln(y))))
            return x + y.permute(0, 3, 1, 2)

    block = randomized(Block(8))
    net = spec([{"name": "dw", "type": "Conv2d", "out_channels": 8, "kernel_size": 7, "padding": 3, "groups": 8},
                {"name": "p1", "type": "Permute", "dims": [0, 2, 3, 1]},
                {"name": "ln", "type": "LayerNorm", "normalized_shape": [8], "eps": 1e-6},
                {"name": "fc1", "type": "Linear", "out_features": 32}, {"type": "GELU"},
                {"name": "fc2", "type": "Linear", "out_features": 8},
                {"name": "p2", "type": "Permute", "dims": [0, 3, 1, 2]},
                {"name": "add", "type": "Add", "from": ["input", "p2"]}], input_shape=(8, 9, 9))
    x = np.random.default_rng(2).standard_normal((2, 8, 9, 9))
    checked = convcalc.run(net, x, weights=state(block), dtype="float64")
    assert checked.ok, [c.detail for c in checked.rf_checks if not c.ok]
    with torch.no_grad():
        expected = block(torch.from_numpy(x)).numpy()
    assert np.abs(checked.output - expected).max() <= 1e-9 * max(1.0, np.abs(expected).max())
    summary = convcalc.analyze(net)
    assert summary.layer("p1").output_shape == (9, 9, 8) and summary.layer("fc1").output_shape == (9, 9, 32)
    assert summary.layer("fc1").macs == 9 * 9 * 32 * 8
    assert summary.totals.params == sum(p.numel() for p in block.parameters())
    # issue 17: a Permute keeps every unit's field, in the permuted order (`Field.layout`), through the Linear over
    # the channels now last, and the Permute back gives the standard field (tests/test_rf_permute.py: autograd)
    for name in ("p1", "fc1"):
        assert summary.layer(name).rf.layout == (0, 1, None) and not summary.layer(name).rf.whole, name
    for name in ("p2", "add"):
        assert summary.layer(name).rf.standard and [a.size for a in summary.layer(name).rf.axes] == [7, 7], name


def test_permute_refuses_to_move_the_batch_and_checks_its_dims():
    permute = lookup("Permute")
    with pytest.raises(LayerArgError) as info:
        permute.from_args({"dims": [1, 0, 2, 3]}).infer([(3, 4, 5)])
    assert info.value.message == ("dims [1, 0, 2, 3] would move the batch axis: convcalc analyses one sample, so dims"
                                  " (which count the batch as 0, as torch's do) must start with 0")
    with pytest.raises(LayerArgError, match=r"dims \[0, 2, 1\] has 3 entries but the input has 4 axes"):
        permute.from_args({"dims": [0, 2, 1]}).infer([(3, 4, 5)])
    with pytest.raises(LayerArgError, match="repeats an axis"):
        permute.from_args({"dims": [0, 1, -1, 3]}).infer([(3, 4, 5)])
    assert permute.from_args({"dims": [0, -1, 1, 2]}).infer([(3, 4, 5)]).out_shape == (5, 3, 4)


# ============================================================================ receptive fields

def test_narrow_and_parts_along_a_spatial_axis_crop_the_field_exactly():
    """Positions start.. of the width: unit u of the part reads what unit u + start of its input reads."""
    net = spec([{"name": "conv", "type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1},
                {"name": "n", "type": "Narrow", "dim": 3, "start": -4, "length": 3},
                {"name": "split", "type": "Split", "split_size_or_sections": [2, 4, 3], "dim": -1, "from": "conv"},
                {"name": "a", "type": "Conv2d", "out_channels": 1, "kernel_size": 3, "from": "split.1"},
                {"name": "c", "type": "Chunk", "chunks": 2, "dim": 2, "part": 1, "from": "conv"}],
               input_shape=(1, 9, 9))
    summary = convcalc.analyze(net)
    conv = summary.layer("conv").rf
    assert summary.layer("n").rf.region((0, 0)) == (conv.region((0, 5))[0], conv.region((0, 5))[1])
    assert summary.layer("split.1").rf.region((3, 1)) == conv.region((3, 3))
    assert summary.layer("c").rf.region((0, 2)) == conv.region((5, 2))       # chunks of 9 rows: 5 and 4
    assert summary.layer("a").output_shape == (1, 7, 2)
    # autograd: unit (0, 0) of 'a' reads split.1's columns 0-2, the conv's 2-4, the input's 1-5 (rows -1..3, clipped)
    x = torch.ones(1, 1, 9, 9, dtype=torch.float64, requires_grad=True)
    y = nn.functional.conv2d(nn.functional.conv2d(x, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=1)
                             .split([2, 4, 3], dim=-1)[1], torch.ones(1, 1, 3, 3, dtype=torch.float64))
    grad, = torch.autograd.grad(y[0, 0, 0, 0], x)
    rows, cols = np.nonzero(grad[0, 0].numpy())
    assert summary.layer("a").rf.region((0, 0)) == ((-1, 3), (1, 5))         # unclipped (padding row -1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 3, 1, 5)
    checked = convcalc.run(net, np.ones((1, 1, 9, 9)), dtype="float64")
    assert checked.ok


def test_channel_parts_keep_the_field_and_identities_keep_it_exactly():
    net = spec([{"name": "conv", "type": "Conv2d", "out_channels": 8, "kernel_size": 3},
                {"name": "n", "type": "Narrow", "dim": 1, "start": 2, "length": 3},
                {"name": "p", "type": "Permute", "dims": [0, 1, 2, 3]},
                {"name": "r", "type": "View", "shape": [3, -1, 4]},
                {"name": "u", "type": "Unflatten", "dim": -1, "unflattened_size": [4]}], input_shape=(2, 6, 6))
    summary = convcalc.analyze(net)
    conv = summary.layer("conv").rf
    for name in ("n", "p", "r", "u"):
        assert summary.layer(name).rf.axes == conv.axes, name
    graph = convcalc.build_graph(net)
    assert graph.node("p").layer.is_noop([(3, 4, 4)], (3, 4, 4)) == "dims keep every axis in place"
    assert graph.node("r").layer.is_noop([(3, 4, 4)], (3, 4, 4)) == "the shape is kept"


def test_reshapes_state_what_units_reach_together_and_a_vector_is_whole():
    net = spec([{"name": "conv", "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2},
                {"name": "u", "type": "Unflatten", "dim": 1, "unflattened_size": [2, 2]},
                {"name": "r", "type": "Reshape", "shape": [4, 16]},
                {"name": "v", "type": "Reshape", "shape": [-1]},
                {"name": "fc", "type": "Linear", "out_features": 3}], input_shape=(1, 9, 10))
    summary = convcalc.analyze(net)
    assert summary.layer("u").output_shape == (2, 2, 4, 4) and summary.layer("r").output_shape == (4, 16)
    assert summary.layer("u").rf.reshaped and summary.layer("r").rf.reshaped
    assert summary.layer("v").rf.whole and not summary.layer("v").rf.reshaped
    assert summary.layer("u").rf.reach == ((0, 8), (0, 8))                    # the stride-2 conv drops row/col 9
    checked = convcalc.run(net, np.ones((1, 1, 9, 10)), dtype="float64")
    assert checked.ok, [c.detail for c in checked.rf_checks if not c.ok]


# ============================================================================ argument errors in the spec's words

@pytest.mark.parametrize("layer, text", [
    ({"type": "Reshape", "shape": [5, -1]}, "shape [5, -1]: the input [8, 6, 6] has 288 elements, not a multiple of"
                                            " 5, so the -1 cannot be inferred"),
    ({"type": "Reshape", "shape": [-1, -1]}, "shape [-1, -1] has more than one -1; only one size can be inferred"),
    ({"type": "View", "shape": [8, 6]}, "shape [8, 6] holds 48 elements but the input [8, 6, 6] has 288"),
    ({"type": "Reshape", "shape": [0, 6]}, "shape sizes must be positive, or -1 for the one inferred from the input,"
                                           " got 0"),
    ({"type": "Unflatten", "dim": 2, "unflattened_size": [4, 2]}, "unflattened_size [4, 2] holds 8 elements but"
                                                                  " axis 2 (dim 2) has 6"),
    ({"type": "Unflatten", "dim": 0, "unflattened_size": [1, 1]}, "Unflatten over dim 0 would mix the batch"),
    ({"type": "Narrow", "dim": 2, "start": 4, "length": 3}, "start 4 + length 3 goes past the end of axis 2 (dim 2),"
                                                            " whose size is 6"),
    ({"type": "Narrow", "dim": 2, "start": -7, "length": 1}, "start -7 is out of range for axis 2 (dim 2) of size 6:"
                                                             " it must lie in [-6, 6]"),
    ({"type": "Split", "split_size_or_sections": [3, 4], "part": 0}, "split_size_or_sections [3, 4] adds up to 7,"
                                                                     " but the axis has 8"),
    ({"type": "Split", "split_size_or_sections": [8, 0], "part": 1}, "part 1 is empty (the sizes are [8, 0])"),
])
def test_argument_errors(layer, text):
    found = message([{"name": "x", **layer}])
    assert text in found, found
    assert found.startswith(f"layer 'x' ({lookup(layer['type']).type_name}): ")


def test_spec_errors_carry_the_line():
    source = "name: t\ninput: [4, 6, 6]\nlayers:\n  - {name: s, type: Chunk, chunks: 2}\n  - {type: ReLU, from: s.3}\n"
    with pytest.raises((SpecError, GraphError)) as info:
        convcalc.build_graph(convcalc.load_spec_text(source) if hasattr(convcalc, "load_spec_text")
                             else convcalc.spec.load.parse_spec(source))
    assert info.value.location is not None and info.value.location.line == 5


def test_the_readme_example_of_parts_builds():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text[text.index("## The spec format"):text.index("## Layer types")]
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL) if "type: Chunk" in b)
    source = "name: t\ninput: [8, 4, 4]\nlayers:\n" + block.replace("[...]", "[{type: ReLU}]")
    graph = convcalc.build_graph(convcalc.spec.load.parse_spec(source))
    assert [node.name for node in graph] == ["split.1", "branch2.0", "split.0", "concat_1"]
    assert convcalc.analyze(graph).output_shape == (8, 4, 4)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="known limit (README, Layout layers): a part of a reshaped tensor keeps the"
                                       " whole tensor's reach, which can be more than the part reaches")
def test_a_spatial_part_after_a_reshape_states_its_own_reach():
    net = spec([{"name": "p", "type": "Permute", "dims": [0, 1, 3, 2]},
                {"name": "s", "type": "Narrow", "dim": 3, "start": 3, "length": 2}], input_shape=(1, 5, 6))
    checked = convcalc.run(net, np.ones((1, 1, 5, 6)), dtype="float64")
    assert checked.ok
