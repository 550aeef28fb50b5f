"""Receptive fields through Permute (issue 17: ConvNeXt's block), against torch autograd support.

The analysis keeps the per-unit field through a Permute (`Field.layout`: which output dims the field's axes are), through
layers that read position for position along those dims (Linear/LayerNorm/Softmax over the channels now last,
elementwise layers, Add) and back through the Permute to [C, *spatial]; any other layer given a permuted tensor
claims only what its units reach together (`Field.reshaped`).

Oracle: the same network in torch.nn (float64, random positive weights and input), and per output unit the support of
the input gradient of that unit, a random positive combination of its values along the dims that are no spatial
axis (the channels wherever they are), so that a LayerNorm's gradient does not cancel: structural zeros are exact
zeros in autograd, every other entry is non-zero almost surely. A unit's support hull (per input axis the first and
last index with a non-zero gradient) must equal `Field.extent` of that unit, the unit found in the torch tensor
through the field's layout; non-square inputs catch swapped axes. A reshaped/whole field: the hull of all units'
supports together must be its `reach`. Independent of convcalc's dependency walk, which `run --rf-check` uses
(also checked here on the whole convnext_tiny).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

import convcalc
from convcalc.errors import ConvcalcError
from convcalc.analysis.regions import parse_units

DTYPE = torch.float64
SPECS = Path(__file__).resolve().parent.parent / "specs"


# --------------------------------------------------------------------------- the oracle

def positive(module: nn.Module, gen: torch.Generator) -> nn.Module:
    """Random positive parameters, weights divided by their fan-in: the values stay near 1, where no softmax, GELU or
    Softplus saturates to an exactly constant output (whose zero gradient would hide a dependency)."""
    with torch.no_grad():
        for tensor in module.parameters():
            fan_in = int(np.prod(tensor.shape[1:])) if tensor.dim() > 1 else 1
            tensor.copy_((torch.rand(tensor.shape, generator=gen, dtype=DTYPE) + 0.25) / fan_in)
    return module.double()


def support_hull(grad: torch.Tensor):
    """Per input spatial axis the first and last index where the gradient (any channel) is non-zero; None: none
    (``grad``: one sample's, [C, *spatial])."""
    mask = (grad != 0).any(dim=0).numpy()
    if not mask.any():
        return None
    hull = []
    for axis in range(mask.ndim):
        found = np.nonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))[0]
        hull.append((int(found[0]), int(found[-1])))
    return tuple(hull)


def unit_index(field, unit, shape):
    """The torch index (without the batch) of a unit: its position on the field's axes, every index on the other
    dims."""
    return tuple(slice(None) if p is None else p for p in field.position(unit, shape))


def check_layers(summary, outputs, x, gen, units=None) -> int:
    """Every unit's (or ``units[name]``'s) support hull against the analysis, for every layer of ``outputs``; a
    whole/reshaped layer: the hull of all its units together against its reach. ``x`` holds one copy of the input per
    batch row (samples are independent), so one backward checks as many (layer, unit) pairs as it has rows; returns
    how many were checked."""
    units = units or {}
    pairs = []
    for name, out in outputs.items():
        row = summary.layer(name)
        field, shape = row.rf, tuple(row.output_shape)
        assert tuple(out.shape[1:]) == shape, name
        if field.whole:
            pairs.append((name, None))
            continue
        lengths = field.lengths(shape) if not field.standard else shape[1:]
        chosen = units.get(name) or list(itertools.product(*(range(n) for n in lengths)))
        pairs += [(name, unit) for unit in chosen]
    rows = x.shape[0]
    for start in range(0, len(pairs), rows):
        group = pairs[start:start + rows]
        weights = {}
        for r, (name, unit) in enumerate(group):
            out, row = outputs[name], summary.layer(name)
            w = weights.setdefault(name, torch.zeros(out.shape, dtype=DTYPE))
            index = (r,) if unit is None else (r, *unit_index(row.rf, unit, tuple(row.output_shape)))
            w[index] = torch.rand(w[index].shape, generator=gen, dtype=DTYPE) + 0.25
        names = list(weights)
        grad, = torch.autograd.grad([outputs[n] for n in names], x, [weights[n] for n in names], retain_graph=True)
        for r, (name, unit) in enumerate(group):
            field, found = summary.layer(name).rf, support_hull(grad[r])
            if unit is None:
                assert found == (field.reach or tuple((0, n - 1) for n in x.shape[2:])), (name, found, field.reach)
            else:
                assert found == field.extent(unit), (name, unit, found, field.extent(unit))
    return len(pairs)


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class DepthwiseConv7(nn.Module):
    """nn.Conv2d(c, c, 7, padding=3, groups=c) written with F.unfold (torch's float64 grouped conv on the CPU loops
    over the groups: minutes for convnext_tiny's backward passes)."""

    def __init__(self, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty((c, 1, 7, 7), dtype=DTYPE))
        self.bias = nn.Parameter(torch.empty((c,), dtype=DTYPE))

    def forward(self, x):
        n, c, h, w = x.shape
        columns = nn.functional.unfold(x, 7, padding=3).view(n, c, 49, h * w)
        out = (columns * self.weight.view(1, c, 49, 1)).sum(dim=2).view(n, c, h, w)
        return out + self.bias.view(1, c, 1, 1)


class LayerNorm2d(nn.LayerNorm):
    """torchvision's channels-first LayerNorm."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- ConvNeXt's block and convnext_tiny

def test_the_depthwise_oracle_is_torchs_grouped_conv():
    gen = torch.Generator().manual_seed(3)
    ours = positive(DepthwiseConv7(5), gen)
    conv = nn.Conv2d(5, 5, 7, padding=3, groups=5).double()
    conv.load_state_dict(ours.state_dict())
    x = torch.rand((2, 5, 9, 12), generator=gen, dtype=DTYPE)
    assert torch.allclose(ours(x), conv(x), rtol=1e-12, atol=1e-12)


def cn_block(c: int, prefix: str, gen: torch.Generator) -> list:
    """torchvision's CNBlock as (name, module or 'add') steps (stochastic depth: identity at inference)."""
    scale = nn.Parameter(torch.rand((c, 1, 1), generator=gen, dtype=DTYPE) + 0.25)
    return [(f"{prefix}.block.0", positive(DepthwiseConv7(c), gen)),
            (f"{prefix}.block.1", Permute((0, 2, 3, 1))),
            (f"{prefix}.block.2", positive(nn.LayerNorm(c, eps=1e-6), gen)),
            (f"{prefix}.block.3", positive(nn.Linear(c, 4 * c), gen)),
            (f"{prefix}.block.4", nn.GELU()),
            (f"{prefix}.block.5", positive(nn.Linear(4 * c, c), gen)),
            (f"{prefix}.block.6", Permute((0, 3, 1, 2))),
            (f"{prefix}.layer_scale", lambda y, s=scale: y * s),
            (f"{prefix}.stochastic_depth", nn.Identity()),
            (f"{prefix}.add_1", "add")]


def run_steps(steps, x):
    """The outputs of every named step; 'add' adds the block's input (the last output before '.block.0')."""
    outputs, y, block_input = {}, x, x
    for name, step in steps:
        if name.endswith(".block.0"):
            block_input = y
        y = y + block_input if step == "add" else step(y)
        outputs[name] = y
    return outputs


def convnext_tiny_steps(gen: torch.Generator) -> list:
    dims, depths = [96, 192, 384, 768], [3, 3, 9, 3]
    steps = [("features.0.0", positive(nn.Conv2d(3, 96, 4, stride=4), gen)),
             ("features.0.1", positive(LayerNorm2d(96, eps=1e-6), gen))]
    for stage, (c, depth) in enumerate(zip(dims, depths)):
        if stage:
            steps += [(f"features.{2 * stage}.0", positive(LayerNorm2d(dims[stage - 1], eps=1e-6), gen)),
                      (f"features.{2 * stage}.1", positive(nn.Conv2d(dims[stage - 1], c, 2, stride=2), gen))]
        for j in range(depth):
            steps += cn_block(c, f"features.{2 * stage + 1}.{j}", gen)
    steps += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("classifier.0", positive(LayerNorm2d(768, eps=1e-6), gen)),
              ("classifier.1", nn.Flatten(1)), ("classifier.2", positive(nn.Linear(768, 1000), gen))]
    return steps


def block_spec(c: int, shape) -> convcalc.Spec:
    layers = [{"name": "stem", "type": "Conv2d", "out_channels": c, "kernel_size": 2, "stride": 2},
              {"name": "b", "type": "Sequential", "layers": [
                  {"name": "block", "type": "Sequential", "layers": [
                      {"type": "Conv2d", "out_channels": c, "kernel_size": 7, "padding": 3, "groups": c},
                      {"type": "Permute", "dims": [0, 2, 3, 1]},
                      {"type": "LayerNorm", "normalized_shape": c, "eps": 1e-6},
                      {"type": "Linear", "out_features": 4 * c}, {"type": "GELU"},
                      {"type": "Linear", "out_features": c}, {"type": "Permute", "dims": [0, 3, 1, 2]}]},
                  {"name": "layer_scale", "type": "LearnableTensor", "shape": [c, 1, 1], "init": 1e-6},
                  {"name": "stochastic_depth", "type": "StochasticDepth", "p": 0.1, "mode": "row"},
                  {"name": "add_1", "type": "Add", "from": ["stochastic_depth", "stem"]}]}]
    return convcalc.spec_from_dict({"name": "cn", "input": list(shape), "layers": layers})


def test_convnext_block_every_unit_of_every_layer_as_autograd():
    gen = torch.Generator().manual_seed(0)
    shape = (3, 22, 30)                                  # non-square: a swapped axis would show
    summary = convcalc.analyze(block_spec(8, shape))
    steps = [("stem", positive(nn.Conv2d(3, 8, 2, stride=2), gen)), *cn_block(8, "b", gen)]
    x = (torch.rand((1, *shape), generator=gen, dtype=DTYPE) + 0.25).repeat(165, 1, 1, 1).requires_grad_(True)
    outputs = run_steps(steps, x)
    assert [row.name for row in summary.layers] == list(outputs)
    checked = check_layers(summary, outputs, x, gen)
    assert checked == 11 * 15 * 11                      # the stem and the block's 10 layers, every unit
    for name in ("b.block.1", "b.block.3", "b.block.5"):       # exact, in the permuted order [H, W, C]
        field = summary.layer(name).rf
        assert not field.whole and field.layout == (0, 1, None) and field.lengths(summary.layer(name).output_shape) \
            == (11, 15)
    for name in ("b.block.6", "b.add_1"):
        field = summary.layer(name).rf
        assert field.standard and not field.whole
        assert [a.size for a in field.axes] == [2 + 6 * 2] * 2 and [a.stride for a in field.axes] == [2, 2]


def test_convnext_tiny_every_layer_as_autograd():
    """Every layer of convnext_tiny at 3x64x64: the two corners and the centre of each (all four units of the last
    stage's 2x2 maps), against autograd on a torch ConvNeXt-T written from torchvision's code."""
    gen = torch.Generator().manual_seed(1)
    shape = (3, 64, 64)
    summary = convcalc.analyze(convcalc.build_graph(convcalc.load_spec(SPECS / "convnext_tiny.yaml")), shape)
    steps = convnext_tiny_steps(gen)
    x = (torch.rand((1, *shape), generator=gen, dtype=DTYPE) + 0.25).repeat(48, 1, 1, 1).requires_grad_(True)
    outputs = run_steps(steps, x)
    assert [row.name for row in summary.layers] == list(outputs)
    chosen = {}
    for row in summary.layers:
        lengths = () if row.rf.whole else row.rf.lengths(row.output_shape) if not row.rf.standard else \
            row.output_shape[1:]
        if lengths and lengths[0] * lengths[1] > 4:
            h, w = lengths
            chosen[row.name] = list(dict.fromkeys([(0, 0), (h - 1, w - 1), (h // 2, w // 2)]))
    checked = check_layers(summary, outputs, x, gen, chosen)
    assert checked > 500
    permuted = [r for r in summary.layers if not r.rf.whole and not r.rf.standard]
    assert len(permuted) == 18 * 5                      # block.1 .. block.5 of the 18 blocks


def test_convnext_tiny_fields_at_224_follow_the_published_arithmetic():
    """RF of a stack of windows: r += (k - 1) * j, j *= s (Araujo et al.): stem 4/4, three 7x7 at jump 4, 2/2, three at
    8, 2/2, nine at 16, 2/2, three at 32."""
    summary = convcalc.analyze(convcalc.build_graph(convcalc.load_spec(SPECS / "convnext_tiny.yaml")))
    r, j = 4, 4
    expected = {}
    for stage, depth in enumerate([3, 3, 9, 3]):
        if stage:
            r, j = r + j, 2 * j
        for block in range(depth):
            r += 6 * j
            expected[f"features.{2 * stage + 1}.{block}"] = (r, j)
    for prefix, (size, stride) in expected.items():
        for suffix in (".block.0", ".block.3", ".block.6", ".add_1"):
            axes = summary.layer(prefix + suffix).rf.axes
            assert [(a.size, a.stride) for a in axes] == [(size, stride)] * 2, prefix + suffix
    assert expected["features.7.2"] == (1688, 32)


def test_run_proves_every_field_of_convnext_tiny():
    graph = convcalc.build_graph(convcalc.load_spec(SPECS / "convnext_tiny.yaml"))
    x = np.random.default_rng(0).random((1, 3, 64, 64))
    checked = convcalc.run(graph, x, dtype="float64")
    assert checked.rf_checks and len(checked.rf_checks) == len(graph.nodes)
    assert all(c.ok for c in checked.rf_checks), [c.detail for c in checked.rf_checks if not c.ok][:3]


def test_permutes_composing_to_the_identity_give_back_the_field():
    net = convcalc.spec_from_dict({"name": "p", "input": [2, 9, 13], "layers": [
        {"name": "c", "type": "Conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2},
        {"name": "hwc", "type": "Permute", "dims": [0, 2, 3, 1]},
        {"name": "whc", "type": "Permute", "dims": [0, 2, 1, 3]},
        {"name": "chw", "type": "Permute", "dims": [0, 3, 2, 1]},
        {"name": "pool", "type": "MaxPool2d", "kernel_size": 2}]})
    summary = convcalc.analyze(net)
    conv = summary.layer("c").rf
    assert summary.layer("hwc").rf.layout == (0, 1, None) and summary.layer("whc").rf.layout == (1, 0, None)
    assert summary.layer("whc").rf.lengths(summary.layer("whc").output_shape) == (4, 6)
    back = summary.layer("chw").rf
    assert back.standard and back.axes == conv.axes
    assert summary.layer("pool").rf.axes[0].size == 5                     # windows apply again after the way back
    assert convcalc.run(net, np.random.default_rng(0).random((1, 2, 9, 13)), dtype="float64").ok


def test_a_conv_on_a_permuted_tensor_claims_only_what_its_units_reach():
    net = convcalc.spec_from_dict({"name": "p", "input": [2, 9, 13], "layers": [
        {"name": "c", "type": "Conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2},
        {"name": "hwc", "type": "Permute", "dims": [0, 2, 3, 1]},
        {"name": "mix", "type": "Conv2d", "out_channels": 2, "kernel_size": 1}]})   # H taken as the channels
    summary = convcalc.analyze(net)
    mix = summary.layer("mix").rf
    assert mix.whole and mix.reshaped and mix.reach == ((0, 8), (0, 12))
    assert convcalc.run(net, np.random.default_rng(0).random((1, 2, 9, 13)), dtype="float64").ok


def test_rf_unit_refuses_a_permuted_layer_clearly():
    summary = convcalc.analyze(block_spec(8, (3, 22, 30)))
    with pytest.raises(ConvcalcError, match=r"permuted order \(\[H, W, C\], after a Permute\)"):
        parse_units("1,2", summary, "b.block.3")
    assert parse_units("1,2", summary, "b.block.6") == (1, 2)


# --------------------------------------------------------------------------- random chains of Permutes and pointwise layers

OPS = ["permute", "permute", "permute", "leaky", "gelu", "linear", "layernorm", "softmax", "residual", "conv"]


@st.composite
def chains(draw):
    c, h, w = draw(st.integers(2, 3)), draw(st.integers(3, 7)), draw(st.integers(3, 7))
    k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    ops = draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=7))
    perms = [draw(st.permutations([1, 2, 3])) for _ in ops]
    sizes = [draw(st.integers(1, 4)) for _ in ops]
    dims = [draw(st.integers(1, 3)) for _ in ops]
    return (c, h, w), (k, s), list(zip(ops, perms, sizes, dims))


def chain_layers(first, ops):
    k, s = first
    layers = [{"name": "l0", "type": "Conv2d", "out_channels": 2, "kernel_size": k, "stride": s, "padding": k // 2}]
    for index, (op, perm, size, dim) in enumerate(ops, 1):
        name = f"l{index}"
        if op == "permute":
            layers.append({"name": name, "type": "Permute", "dims": [0, *perm]})
        elif op in ("leaky", "gelu"):   # no ReLU (its zero slope below 0, after a LayerNorm, hides dependencies),
            layers.append({"name": name, "type": {"leaky": "LeakyReLU", "gelu": "GELU"}[op]})   # no saturating Tanh
        elif op == "linear":
            layers.append({"name": name, "type": "Linear", "out_features": size})
        elif op == "layernorm":
            layers.append({"name": name, "type": "LayerNorm", "normalized_shape": "last"})
        elif op == "softmax":
            layers.append({"name": name, "type": "Softmax", "dim": dim})
        elif op == "residual":
            layers.append({"name": name + "r", "type": "Softplus"})
            layers.append({"name": name, "type": "Add", "from": [name + "r", f"l{index - 1}"]})
        else:
            layers.append({"name": name, "type": "Conv2d", "out_channels": size, "kernel_size": 3, "padding": 1})
    return layers


def torch_chain(layers, shape, gen):
    steps = []
    previous = "input"
    summary_shape = shape
    for layer in layers:
        kind, name = layer["type"], layer["name"]
        if kind == "Add":
            steps.append((layer["name"], "add", layer["from"]))
            previous = layer["name"]
            continue
        if kind == "Conv2d":
            module = positive(nn.Conv2d(summary_shape[0], layer["out_channels"], layer["kernel_size"],
                                        stride=layer.get("stride", 1), padding=layer["padding"]), gen)
        elif kind == "Permute":
            module = Permute(tuple(layer["dims"]))
        elif (kind == "LayerNorm" and summary_shape[-1] == 1) or (kind == "Softmax" and summary_shape[layer["dim"] - 1]
                                                                  == 1):
            layer.clear()                     # over one value: a constant, whose gradient (0) hides the dependency
            layer.update(name=name, type="LeakyReLU")
            module = nn.LeakyReLU()
        elif kind == "Linear":
            module = positive(nn.Linear(summary_shape[-1], layer["out_features"]), gen)
        elif kind == "LayerNorm":
            module = positive(nn.LayerNorm(summary_shape[-1]), gen)
            layer["normalized_shape"] = summary_shape[-1]
        elif kind == "Softmax":
            module = nn.Softmax(dim=layer["dim"])
        else:
            module = {"LeakyReLU": nn.LeakyReLU(), "GELU": nn.GELU(), "Softplus": nn.Softplus()}[kind]
        with torch.no_grad():
            summary_shape = tuple(module(torch.ones((1, *summary_shape), dtype=DTYPE)).shape[1:])
        steps.append((layer["name"], module, [previous]))
        previous = layer["name"]
    return steps


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains(), st.integers(0, 2 ** 16))
def test_random_permute_chains_as_autograd(chain, seed):
    shape, first, ops = chain
    gen = torch.Generator().manual_seed(seed)
    layers = chain_layers(first, ops)
    try:
        steps = torch_chain(layers, shape, gen)
    except RuntimeError:
        return                                               # torch refuses it (a conv over a 1-wide permuted axis)
    summary = convcalc.analyze(convcalc.spec_from_dict({"name": "chain", "input": list(shape), "layers": layers}))
    x = (torch.rand((1, *shape), generator=gen, dtype=DTYPE) + 0.25).repeat(8, 1, 1, 1).requires_grad_(True)
    values, reshaped = {"input": x}, {}
    for name, step, sources in steps:
        values[name] = (values[sources[0]] + values[sources[1]] if step == "add" else step(values[sources[0]]))
        if summary.layer(name).rf.reshaped:
            reshaped[name] = values[name]
    checked = check_layers(summary, {n: v for n, v in values.items() if n != "input" and n not in reshaped}, x, gen)
    event(f"permuted fields: {sum(1 for r in summary.layers if not r.rf.whole and not r.rf.standard) > 0}")
    event(f"reshaped: {bool(reshaped)}")
    event(f"units checked > 50: {checked > 50}")
    for name, value in reshaped.items():                     # what the units reach together
        grad, = torch.autograd.grad(value, x, torch.rand(value.shape, generator=gen, dtype=DTYPE), retain_graph=True)
        assert support_hull(grad[0]) == summary.layer(name).rf.reach, name
    # a permuted field names one field axis per spatial dim and leaves exactly one dim (the channels) without
    for row in summary.layers:
        if not row.rf.whole and row.rf.layout is not None:
            assert len(row.rf.layout) == len(row.output_shape) and row.rf.layout.count(None) == 1
