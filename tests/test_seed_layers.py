"""The seed documents' last layers: channel pooling (Maxout, ChannelMaxPool, ChannelAvgPool), grouped
LocallyConnected/TiledConv2d, and partial convolution (PartialConv2d, PartialConvMask2d).

Oracles, never convcalc's own output: torch's max/avg pooling run over the channel axis (F.max_pool3d on
x.unsqueeze(1)), grouped nn.Conv2d (for the grouped unshared convs at their conv limits), the published formulas
(parameter counts, Liu et al.'s sum(1)/sum(M)), and a torch re-implementation of NVIDIA's PartialConv2d
(github.com/NVIDIA/partialconv, models/partialconv2d.py) that computes the mask update, as NVIDIA does, with a
convolution of ones (`NvidiaPartialConv2d` below; the cross-check's reference in family_references.py computes
it with F.unfold instead, so that FlopCounterMode counts only the image conv). The randomized cross-checks
(shapes, params, MACs, forward, backward) of every type run in test_torch_crosscheck / test_executor_torch /
test_backward_torch with the strategies of family_cases.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from family_references import LocallyConnectedReference, TiledReference  # noqa: E402

import convcalc  # noqa: E402
from convcalc.errors import ConvcalcError, LayerArgError  # noqa: E402
from convcalc.kernels import MacCounter, to_logical, to_storage  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

torch.set_num_threads(1)


def layer(type_name: str, **args):
    return lookup(type_name).from_args(args)


def forward(unit, inputs: list[np.ndarray], params: dict[str, np.ndarray] | None = None):
    """(output (N, C, *S), prepared, MACs counted) of one unit in float64 on torch-layout arrays."""
    shapes = [tuple(x.shape[1:]) for x in inputs]
    inferred = unit.infer(shapes)
    params = {} if params is None else params
    prepared = unit.prepare(params, shapes, inferred.out_shape, np.dtype(np.float64))
    counter = MacCounter()
    y = unit.forward([to_storage(x) for x in inputs], prepared, counter)
    return np.asarray(to_logical(y)), prepared, counter.total


def backward(unit, inputs: list[np.ndarray], params: dict[str, np.ndarray], cotangent: np.ndarray) -> list[np.ndarray]:
    _, prepared, _ = forward(unit, inputs, params)
    stored = [to_storage(x) for x in inputs]
    y = unit.forward(stored, prepared, MacCounter())
    grads = unit.backward(stored, y, np.ascontiguousarray(to_storage(cotangent)), prepared)
    return [np.asarray(to_logical(g)) for g in grads]


def graph_of(layers: list[dict], input_shape: list[int], blocks: dict | None = None):
    spec = {"name": "t", "input": input_shape, "layers": layers, **({"blocks": blocks} if blocks else {})}
    return convcalc.build_graph(convcalc.spec_from_dict(spec))


def rf_of(summary, name: str) -> tuple:
    """A layer's receptive field as the JSON reports it: size, smallest size, stride, padding."""
    rf = next(row for row in convcalc.to_json(summary)["layers"] if row["name"] == name)["rf"]
    return rf["size"], rf["size_min"], rf["stride"], rf["padding"]


def close(ours: np.ndarray, theirs, tolerance: float = 1e-12) -> None:
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = max(1.0, float(np.abs(theirs).max()) if theirs.size else 1.0)
    assert np.abs(ours - theirs).max() <= tolerance * scale, np.abs(ours - theirs).max()


# ============================================================================ channel pooling

def channel_max_pool(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """Max pooling along dim 1 of (N, C, *S): F.max_pool3d over a (N, 1, C, rest) view, kernel (k, 1, 1)."""
    flat = x.reshape(x.shape[0], 1, x.shape[1], -1, 1)
    return F.max_pool3d(flat, (k, 1, 1), (s, 1, 1)).reshape(x.shape[0], -1, *x.shape[2:])


def channel_avg_pool(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    flat = x.reshape(x.shape[0], 1, x.shape[1], -1, 1)
    return F.avg_pool3d(flat, (k, 1, 1), (s, 1, 1)).reshape(x.shape[0], -1, *x.shape[2:])


@pytest.mark.parametrize("shape", [(12, 5, 4), (12,), (12, 7), (12, 2, 3, 2)])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 6, 12])
def test_maxout_is_max_pooling_over_groups_of_k_channels(shape, k):
    """Goodfellow et al. 2013: out[j] = max_m in[j·k + m]; torch: max pooling along the channels, and the view
    x.view(N, C/k, k, *S).amax(2)."""
    x = torch.randn(2, *shape, dtype=torch.float64)
    unit = layer("Maxout", pool_size=k)
    y, _, macs = forward(unit, [x.numpy()])
    close(y, channel_max_pool(x, k, k), 0)
    close(y, x.view(2, shape[0] // k, k, *shape[1:]).amax(2), 0)
    inferred = unit.infer([shape])
    assert inferred.out_shape == (shape[0] // k, *shape[1:]) and inferred.param_count == 0
    assert inferred.macs == 0 and macs == 0


@pytest.mark.parametrize("k, s", [(3, 1), (3, 2), (2, 3), (4, 4), (10, 1), (1, 1)])
@pytest.mark.parametrize("kind", ["Max", "Avg"])
def test_channel_pools_are_1d_pools_along_the_channels(k, s, kind):
    x = torch.randn(3, 10, 4, 5, dtype=torch.float64)
    unit = layer(f"Channel{kind}Pool", kernel_size=k, stride=s)
    y, _, _ = forward(unit, [x.numpy()])
    expected = (channel_max_pool if kind == "Max" else channel_avg_pool)(x, k, s)
    close(y, expected, 1e-15)
    assert unit.infer([(10, 4, 5)]).out_shape == ((10 - k) // s + 1, 4, 5)
    assert layer(f"Channel{kind}Pool", kernel_size=k).infer([(10, 4, 5)]).out_shape[0] == (10 - k) // k + 1


@pytest.mark.parametrize("type_name, args", [("Maxout", {"pool_size": 3}), ("ChannelMaxPool", {"kernel_size": 3,
                                                                                                "stride": 2})])
def test_channel_max_gradient_goes_to_the_first_maximum_as_max_pooling_routes_it(type_name, args):
    """Ties (integer data): the gradient of each window goes to its first maximal channel, as torch's max pooling
    (and x.max(dim)) route it; overlapping windows add."""
    x = torch.randint(0, 3, (2, 9, 3, 3)).double().requires_grad_(True)
    k, s = (args["pool_size"],) * 2 if type_name == "Maxout" else (args["kernel_size"], args["stride"])
    out = channel_max_pool(x, k, s)
    cotangent = torch.randn(out.shape, dtype=torch.float64)
    (expected,) = torch.autograd.grad(out, x, cotangent)
    (ours,) = backward(layer(type_name, **args), [x.detach().numpy()], {}, cotangent.numpy())
    close(ours, expected, 0)


def test_channel_avg_gradient_spreads_evenly():
    x = torch.randn(1, 7, 2, 2, dtype=torch.float64, requires_grad=True)
    out = channel_avg_pool(x, 3, 2)
    cotangent = torch.randn(out.shape, dtype=torch.float64)
    (expected,) = torch.autograd.grad(out, x, cotangent)
    (ours,) = backward(layer("ChannelAvgPool", kernel_size=3, stride=2), [x.detach().numpy()], {}, cotangent.numpy())
    close(ours, expected, 1e-15)


@pytest.mark.parametrize("type_name, args, shape, message", [
    ("Maxout", {"pool_size": 2}, (7, 4, 4),
     "Maxout with pool_size 2 needs a channel count divisible by 2, but the input has 7 channels"),
    ("ChannelMaxPool", {"kernel_size": 5}, (4, 3, 3), "kernel_size 5 is wider than the input's 4 channels"),
    ("ChannelAvgPool", {"kernel_size": 5, "stride": 2}, (4,), "kernel_size 5 is wider than the input's 4 channels"),
])
def test_channel_pool_errors(type_name, args, shape, message):
    with pytest.raises(LayerArgError) as info:
        layer(type_name, **args).infer([shape])
    assert info.value.message == message


def test_channel_pools_keep_the_receptive_field_and_pass_the_proof():
    graph = graph_of([{"type": "Conv2d", "out_channels": 12, "kernel_size": 3, "name": "c"},
                      {"type": "Maxout", "pool_size": 4, "name": "m"},
                      {"type": "ChannelMaxPool", "kernel_size": 2, "stride": 3, "name": "p"},
                      {"type": "ChannelAvgPool", "kernel_size": 1, "name": "a"}], [3, 9, 9])
    summary = convcalc.analyze(graph)
    for name in ("m", "p", "a"):
        assert rf_of(summary, name) == rf_of(summary, "c")
    assert summary.layer("p").output_shape == (1, 7, 7)
    checked = convcalc.run(graph, np.random.default_rng(0).random((3, 9, 9)), dtype="float64")
    assert checked.ok and all(check.ok for check in checked.rf_checks)


def test_maxout_over_separately_parametrised_convs():
    """The README's example: three convs of their own kernels, Concat, ChannelShuffle(3) so that channel j of
    every conv sits side by side, Maxout(3): out[j] = max(c0[j], c1[j], c2[j]) (learned invariance, DL book §9.3);
    and the maxout conv: one Conv2d of N·k channels then Maxout(k)."""
    layers = [{"name": f"c{i}", "type": "Conv2d", "from": "input", "out_channels": 4, "kernel_size": 3,
               "padding": 1, "dilation": 1} for i in range(3)]
    layers[2].update(dilation=2, padding=2)
    layers += [{"name": "cat", "type": "Concat", "from": ["c0", "c1", "c2"]},
               {"name": "shuffle", "type": "ChannelShuffle", "groups": 3},
               {"name": "maxout", "type": "Maxout", "pool_size": 3}]
    graph = graph_of(layers, [2, 8, 8])
    rng = np.random.default_rng(1)
    state = {f"c{i}.{p}": rng.standard_normal(s) for i in range(3) for p, s in (("weight", (4, 2, 3, 3)),
                                                                               ("bias", (4,)))}
    x = rng.standard_normal((2, 2, 8, 8))
    checked = convcalc.run(graph, x, weights=state, dtype="float64")
    assert checked.ok
    tx = torch.from_numpy(x)
    convs = [F.conv2d(tx, torch.from_numpy(state[f"c{i}.weight"]), torch.from_numpy(state[f"c{i}.bias"]),
                      padding=2 if i == 2 else 1, dilation=2 if i == 2 else 1) for i in range(3)]
    close(checked.output, torch.stack(convs).amax(0), 1e-12)
    summary = convcalc.analyze(graph)
    assert summary.layer("maxout").output_shape == (4, 8, 8) and summary.totals.params == 3 * (4 * 2 * 9 + 4)


def test_maxout_conv_and_maxout_over_features_in_a_network():
    """The maxout conv (Conv2d of N·k channels, Maxout(k)) and a maxout over the features of a Linear, run against
    the torch expressions, float64; their fields pass the run's proof."""
    graph = graph_of([{"name": "conv", "type": "Conv2d", "out_channels": 12, "kernel_size": 3, "stride": 2},
                      {"name": "mo", "type": "Maxout", "pool_size": 4},
                      {"type": "Flatten"},
                      {"name": "fc", "type": "Linear", "out_features": 10},
                      {"name": "mo2", "type": "Maxout", "pool_size": 5}], [2, 9, 9])
    rng = np.random.default_rng(7)
    state = {"conv.weight": rng.standard_normal((12, 2, 3, 3)), "conv.bias": rng.standard_normal(12),
             "fc.weight": rng.standard_normal((10, 48)), "fc.bias": rng.standard_normal(10)}
    x = rng.standard_normal((3, 2, 9, 9))
    checked = convcalc.run(graph, x, weights=state, dtype="float64")
    assert checked.ok and all(check.ok for check in checked.rf_checks)
    t = {k: torch.from_numpy(v) for k, v in state.items()}
    h = F.conv2d(torch.from_numpy(x), t["conv.weight"], t["conv.bias"], stride=2)
    h = h.view(3, 3, 4, 4, 4).amax(2).flatten(1)
    h = F.linear(h, t["fc.weight"], t["fc.bias"]).view(3, 2, 5).amax(2)
    close(checked.output, h)
    assert convcalc.analyze(graph).output_shape == (2,)


# ============================================================================ grouped locally connected / tiled

def test_grouped_unshared_params_and_macs_formulas():
    """weight (*out, N, C/g, *k) / (*t, N, C/g, *k); MACs ∏o·N·(C/g)·∏k (DL book §9.5 with the grouped conv's
    channel split)."""
    lc = layer("LocallyConnected2d", out_channels=4, kernel_size=3, groups=2).infer([(6, 8, 7)])
    assert lc.out_shape == (4, 6, 5)
    assert lc.params == {"weight": (6, 5, 4, 3, 3, 3), "bias": (6, 5, 4)}
    assert lc.param_count == 6 * 5 * 4 * 3 * 9 + 6 * 5 * 4 and lc.macs == 6 * 5 * 4 * 3 * 9
    tiled = layer("TiledConv2d", out_channels=6, kernel_size=[3, 2], tile_size=[2, 3], groups=3).infer([(9, 8, 7)])
    assert tiled.params == {"weight": (2, 3, 6, 3, 3, 2), "bias": (6,)}
    assert tiled.macs == 6 * 6 * 6 * 3 * 6
    lc1 = layer("LocallyConnected1d", out_channels=6, kernel_size=2, stride=2, groups=6).infer([(6, 9)])
    assert lc1.params == {"weight": (4, 6, 1, 2), "bias": (4, 6)}


@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (2, 1, 1), (1, "same", 2), ([2, 1], [1, 0], [1, 2])])
@pytest.mark.parametrize("groups", [2, 3, 6])
def test_grouped_unshared_convs_at_their_conv_limits_are_the_grouped_conv(stride, padding, dilation, groups):
    """A grouped TiledConv2d with tile 1, and a grouped LocallyConnected2d whose kernels are all equal (its bias
    too), are the grouped nn.Conv2d."""
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((2, 6, 9, 8))
    kernel, bias = rng.standard_normal((6, 6 // groups, 3, 2)), rng.standard_normal(6)
    pair = lambda v: tuple(v) if isinstance(v, list) else v      # noqa: E731
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(kernel), torch.from_numpy(bias), pair(stride),
                        pair(padding), pair(dilation), groups)
    geometry = {"out_channels": 6, "kernel_size": [3, 2], "stride": stride, "padding": padding,
                "dilation": dilation, "groups": groups}
    tiled = layer("TiledConv2d", tile_size=1, **geometry)
    y, _, macs = forward(tiled, [x], {"weight": kernel[None, None], "bias": bias})
    close(y, expected)
    conv = layer("Conv2d", **geometry)
    assert tiled.infer([(6, 9, 8)]).macs == conv.infer([(6, 9, 8)]).macs == macs // 2
    local = layer("LocallyConnected2d", **geometry)
    out = local.infer([(6, 9, 8)]).out_shape[1:]
    params = {"weight": np.broadcast_to(kernel, (*out, *kernel.shape)).copy(),
              "bias": np.broadcast_to(bias, (*out, 6)).copy()}
    y, _, _ = forward(local, [x], params)
    close(y, expected)


@pytest.mark.parametrize("type_name, extra", [("LocallyConnected2d", {}), ("TiledConv2d", {"tile_size": [2, 3]}),
                                              ("LocallyConnected1d", {})])
def test_grouped_unshared_forward_and_gradient_match_the_loop_of_the_definition(type_name, extra):
    dims = 1 if type_name.endswith("1d") else 2
    reference_class = TiledReference if type_name == "TiledConv2d" else LocallyConnectedReference
    if dims == 1:
        reference_class = type("LC1", (LocallyConnectedReference,), {"dims": 1})
    size = (7,) * dims
    torch.manual_seed(0)
    module = reference_class(6, 4, 2, stride=1, padding=1, groups=2, **extra,
                             input_size=size).double()
    x = torch.randn(2, 6, *size, dtype=torch.float64, requires_grad=True)
    out = module(x)
    cotangent = torch.randn(out.shape, dtype=torch.float64)
    (expected_grad,) = torch.autograd.grad(out, x, cotangent)
    unit = layer(type_name, out_channels=4, kernel_size=2, padding=1, groups=2, **extra)
    params = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    y, _, _ = forward(unit, [x.detach().numpy()], params)
    close(y, out)
    (grad,) = backward(unit, [x.detach().numpy()], params, cotangent.numpy())
    close(grad, expected_grad)


@pytest.mark.parametrize("type_name", ["LocallyConnected2d", "TiledConv2d"])
def test_grouped_unshared_errors_are_the_grouped_conv_s(type_name):
    extra = {"tile_size": 2} if type_name == "TiledConv2d" else {}
    with pytest.raises(LayerArgError) as info:
        layer(type_name, out_channels=5, kernel_size=3, groups=2, **extra)
    assert info.value.message == "out_channels 5 is not divisible by groups 2"
    with pytest.raises(LayerArgError) as info:
        layer(type_name, out_channels=4, kernel_size=3, groups=2, **extra).infer([(3, 8, 8)])
    assert info.value.message == "the input's 3 channels are not divisible by groups 2"


# ============================================================================ partial convolution

class NvidiaPartialConv2d(nn.Conv2d):
    """NVIDIA's PartialConv2d semantics, re-implemented: ``multi_channel`` and ``return_mask`` as theirs; the mask
    update is F.conv2d(mask, ones) with groups 1 under no_grad, slide_winsize = ones.shape[1]·kh·kw, the ratio
    slide_winsize/(update + 1e-8)·clamp(update, 0, 1), the output ((raw − b)·ratio + b)·update (raw·ratio·update
    without a bias); without a mask, ones ([1, 1, H, W], or the input's shape with multi_channel)."""

    def __init__(self, *args, multi_channel=False, return_mask=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.multi_channel, self.return_mask = multi_channel, return_mask
        shape = (self.out_channels, self.in_channels) if multi_channel else (1, 1)
        self.ones = torch.ones(*shape, *self.kernel_size, dtype=torch.float64)
        self.slide_winsize = self.ones.shape[1] * self.ones.shape[2] * self.ones.shape[3]

    def forward(self, x, mask=None):
        with torch.no_grad():
            given = mask
            if mask is None:
                mask = torch.ones(*(x.shape if self.multi_channel else (1, 1, *x.shape[2:])), dtype=x.dtype)
            update = F.conv2d(mask, self.ones.to(x), None, self.stride, self.padding, self.dilation, 1)
            ratio = self.slide_winsize / (update + 1e-8)
            update = torch.clamp(update, 0, 1)
            ratio = ratio * update
        raw = super().forward(x * given if given is not None else x)
        if self.bias is not None:
            bias = self.bias.view(1, self.out_channels, 1, 1)
            out = (raw - bias) * ratio + bias
        else:
            out = raw * ratio
        out = out * update
        return (out, update) if self.return_mask else out


def holes(rng: np.random.Generator, batch: int, channels: int, size: tuple[int, int], hole: int = 4) -> np.ndarray:
    """A 0/1 mask with a square hole of ``hole`` × ``hole`` per sample (windows inside it see nothing valid) and
    scattered zeros."""
    mask = (rng.random((batch, channels, *size)) > 0.3).astype(np.float64)
    for n in range(batch):
        top, left = rng.integers(0, size[0] - hole + 1), rng.integers(0, size[1] - hole + 1)
        mask[n, :, top:top + hole, left:left + hole] = 0
    return mask


PARTIAL_GEOMETRIES = [
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": 5, "stride": 2, "padding": 2},
    {"kernel_size": [3, 2], "dilation": [2, 1], "padding": [2, 0]},
    {"kernel_size": 7, "stride": 2, "padding": 3, "groups": 2},
    {"kernel_size": 3, "padding": "same", "dilation": 2},
    {"kernel_size": 1},
]


def nvidia_module(in_channels, out_channels, geometry, multi_channel, bias, seed):
    torch.manual_seed(seed)
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in geometry.items()}
    return NvidiaPartialConv2d(in_channels, out_channels, multi_channel=multi_channel, return_mask=True, bias=bias,
                               **args).double()


@pytest.mark.parametrize("geometry", PARTIAL_GEOMETRIES)
@pytest.mark.parametrize("multi_channel", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_partial_conv_and_its_mask_match_nvidia_s_with_holes(geometry, multi_channel, bias):
    rng = np.random.default_rng(len(str(geometry)) + multi_channel)
    module = nvidia_module(4, 6, geometry, multi_channel, bias, 0)
    x = rng.standard_normal((2, 4, 11, 10))
    mask = holes(rng, 2, 4 if multi_channel else 1, (11, 10), hole=8)
    with torch.no_grad():
        expected, expected_mask = module(torch.from_numpy(x), torch.from_numpy(mask))
    unit = layer("PartialConv2d", out_channels=6, multi_channel=multi_channel, bias=bias, **geometry)
    params = {k: v.numpy() for k, v in module.state_dict().items()}
    y, _, macs = forward(unit, [x, mask], params)
    close(y, expected)
    assert (expected_mask == 0).any() and (expected_mask == 1).any()      # the holes reach the output
    geometry_only = {k: v for k, v in geometry.items() if k != "groups"}
    mask_unit = layer("PartialConvMask2d", multi_channel=multi_channel, out_channels=6 if multi_channel else None,
                      **geometry_only)
    updated, _, mask_macs = forward(mask_unit, [mask])
    close(updated, expected_mask, 0)
    # parameters, state_dict keys and MACs are the image conv's (FlopCounterMode of nn.Conv2d alone / 2)
    inferred = unit.infer([(4, 11, 10), tuple(mask.shape[1:])])
    assert dict(inferred.params) == {k: tuple(v.shape) for k, v in module.named_parameters()}
    conv = nn.Conv2d(4, 6, **{k: tuple(v) if isinstance(v, list) else v for k, v in geometry.items()}).double()
    with FlopCounterMode(display=False) as flops:
        conv(torch.from_numpy(x))
    assert 2 * macs == flops.get_total_flops() == 2 * 2 * inferred.macs and mask_macs == 0


@pytest.mark.parametrize("multi_channel", [False, True])
def test_without_a_mask_it_is_nvidia_s_ones_mask_or_the_image_s_nonzeros(multi_channel):
    """One input: derive_mask 'ones' (default) is NVIDIA's forward without a mask (partial-convolution-based
    padding); 'nonzero' is NVIDIA's forward with the mask x != 0 (per channel, or any channel)."""
    rng = np.random.default_rng(3)
    module = nvidia_module(3, 4, {"kernel_size": 5, "stride": 2, "padding": 3}, multi_channel, True, 1)
    x = rng.standard_normal((2, 3, 9, 12)) * holes(rng, 2, 3 if multi_channel else 1, (9, 12))
    params = {k: v.numpy() for k, v in module.state_dict().items()}
    geometry = {"out_channels": 4, "kernel_size": 5, "stride": 2, "padding": 3, "multi_channel": multi_channel}
    with torch.no_grad():
        expected_ones, _ = module(torch.from_numpy(x))
        nonzero = torch.from_numpy(x) != 0
        nonzero = (nonzero if multi_channel else nonzero.any(1, keepdim=True)).double()
        expected_nonzero, expected_mask = module(torch.from_numpy(x), nonzero)
    close(forward(layer("PartialConv2d", **geometry), [x], params)[0], expected_ones)
    close(forward(layer("PartialConv2d", derive_mask="ones", **geometry), [x], params)[0], expected_ones)
    close(forward(layer("PartialConv2d", derive_mask="nonzero", **geometry), [x], params)[0], expected_nonzero)
    mask_args = {k: v for k, v in geometry.items() if k != "out_channels"}
    mask_unit = layer("PartialConvMask2d", derive_mask="nonzero", out_channels=4 if multi_channel else None,
                      **mask_args)
    close(forward(mask_unit, [x])[0], expected_mask, 0)


def test_eps_zero_is_the_paper_s_formula():
    """Liu et al. 2018 eq. (1): x' = Wᵀ(X ⊙ M)·sum(1)/sum(M) + b where sum(M) > 0, else 0; eq. (2): m' = 1 where
    sum(M) > 0. Written as loops over the windows of a 0/1 one-channel mask."""
    rng = np.random.default_rng(4)
    x, mask = rng.standard_normal((1, 2, 6, 7)), holes(rng, 1, 1, (6, 7))
    weight, bias = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    unit = layer("PartialConv2d", out_channels=3, kernel_size=3, padding=1, eps=0)
    y, _, _ = forward(unit, [x, mask], {"weight": weight, "bias": bias})
    padded_x, padded_m = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), np.pad(mask, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((1, 3, 6, 7))
    for i in range(6):
        for j in range(7):
            window_x, window_m = padded_x[0, :, i:i + 3, j:j + 3], padded_m[0, 0, i:i + 3, j:j + 3]
            if window_m.sum() > 0:
                expected[0, :, i, j] = (np.einsum("ocij,cij->o", weight, window_x * window_m) * 9 / window_m.sum()
                                        + bias)
    close(y, expected)
    assert ((y == 0) == (expected == 0)).all() and (expected == 0).any()


@pytest.mark.parametrize("multi_channel", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_partial_conv_gradients_are_nvidia_s_autograd(multi_channel, bias):
    """d/dX and d/dM as torch autograd gives them through NVIDIA's module (count, update and ratio under no_grad):
    0/1 holes and a positive non-binary mask."""
    rng = np.random.default_rng(5)
    geometry = {"kernel_size": 3, "stride": 2, "padding": 1, "groups": 2}
    module = nvidia_module(4, 6, geometry, multi_channel, bias, 2)
    params = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    unit = layer("PartialConv2d", out_channels=6, multi_channel=multi_channel, bias=bias, **geometry)
    channels = 4 if multi_channel else 1
    for mask in (holes(rng, 2, channels, (9, 8)), rng.random((2, channels, 9, 8)) + 0.05):
        x = torch.from_numpy(rng.standard_normal((2, 4, 9, 8))).requires_grad_(True)
        m = torch.from_numpy(mask).requires_grad_(True)
        out, _ = module(x, m)
        cotangent = torch.randn(out.shape, dtype=torch.float64)
        expected = torch.autograd.grad(out, [x, m], cotangent)
        ours = backward(unit, [x.detach().numpy(), mask], params, cotangent.numpy())
        close(ours[0], expected[0])
        close(ours[1], expected[1])
    x = rng.standard_normal((2, 1, 5, 5))
    (zero,) = backward(layer("PartialConvMask2d", kernel_size=3), [x], {}, rng.standard_normal((2, 1, 3, 3)))
    assert not zero.any()


def test_partial_conv_errors():
    unit = layer("PartialConv2d", out_channels=4, kernel_size=3)
    cases = [
        (unit, [(3, 8, 8), (3, 8, 8)], "the mask [3, 8, 8] must have 1 channel (multi_channel false; true takes one"
                                       " mask channel per image channel)"),
        (layer("PartialConv2d", out_channels=4, kernel_size=3, multi_channel=True), [(3, 8, 8), (1, 8, 8)],
         "the mask [1, 8, 8] must have the image's 3 channels (multi_channel true)"),
        (unit, [(3, 8, 8), (1, 8, 7)], "the mask [1, 8, 7] must have the image's height and width ([3, 8, 8])"),
        (layer("PartialConv2d", out_channels=4, kernel_size=3, derive_mask="nonzero"), [(3, 8, 8), (1, 8, 8)],
         "derive_mask 'nonzero' is for a PartialConv2d without a mask input, but 'from' gives it one (the second"
         " input)"),
        (layer("PartialConvMask2d", kernel_size=3), [(2, 8, 8)],
         "the mask [2, 8, 8] must have 1 channel (multi_channel false; true takes one mask channel per image"
         " channel; derive_mask 'nonzero' takes the image)"),
    ]
    for unit, shapes, message in cases:
        with pytest.raises(LayerArgError) as info:
            unit.infer(shapes)
        assert info.value.message == message
    with pytest.raises(LayerArgError) as info:
        layer("PartialConvMask2d", kernel_size=3, multi_channel=True)
    assert info.value.message.startswith("multi_channel needs out_channels")
    with pytest.raises(ConvcalcError, match="takes 1 to 2 inputs, got 3"):
        graph_of([{"name": "a", "type": "ReLU"},
                  {"type": "PartialConv2d", "from": ["a", "a", "a"], "out_channels": 2, "kernel_size": 3}], [1, 5, 5])


INPAINTING_BLOCKS = {
    "PConv": {
        "args": {"image": "required", "mask": "required", "out": "required", "k": "required", "s": 1},
        "layers": [
            {"name": "conv", "type": "PartialConv2d", "from": ["$image", "$mask"], "out_channels": "$out",
             "kernel_size": "$k", "stride": "$s", "padding": "${k // 2}"},
            {"name": "mask", "type": "PartialConvMask2d", "from": "$mask", "kernel_size": "$k", "stride": "$s",
             "padding": "${k // 2}"},
            {"name": "relu", "type": "ReLU", "from": "conv"},
        ],
        "output": "relu",
    },
}


def test_partial_conv_chain_in_a_spec_matches_nvidia_s_modules():
    """An inpainting encoder as the README writes it: the first layer derives its mask from the image's zeros; each
    block's PartialConvMask2d passes the updated mask to the next block, whose PartialConv2d reads
    ``from: [image, mask]``. Against NVIDIA's modules chained with return_mask, float64; the run's receptive-field
    proof holds."""
    layers = [
        {"name": "enc1", "type": "PartialConv2d", "derive_mask": "nonzero", "out_channels": 8, "kernel_size": 7,
         "stride": 2, "padding": 3},
        {"name": "mask1", "type": "PartialConvMask2d", "from": "input", "derive_mask": "nonzero", "kernel_size": 7,
         "stride": 2, "padding": 3},
        {"name": "relu1", "type": "ReLU", "from": "enc1"},
        {"name": "enc2", "type": "PConv", "image": "relu1", "mask": "mask1", "out": 16, "k": 5, "s": 2},
        {"name": "enc3", "type": "PConv", "image": "enc2", "mask": "enc2.mask", "out": 16, "k": 3},
    ]
    graph = graph_of(layers, [3, 24, 20], INPAINTING_BLOCKS)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 24, 20)) * holes(rng, 2, 1, (24, 20))
    modules = [nvidia_module(3, 8, {"kernel_size": 7, "stride": 2, "padding": 3}, False, True, 3),
               nvidia_module(8, 16, {"kernel_size": 5, "stride": 2, "padding": 2}, False, True, 4),
               nvidia_module(16, 16, {"kernel_size": 3, "padding": 1}, False, True, 5)]
    names = ["enc1", "enc2.conv", "enc3.conv"]
    state = {f"{name}.{k}": v.numpy() for name, m in zip(names, modules) for k, v in m.state_dict().items()}
    with torch.no_grad():
        h = torch.from_numpy(x)
        mask = (h != 0).any(1, keepdim=True).double()
        for module in modules:
            h, mask = module(h, mask)
            h = torch.relu(h)
    checked = convcalc.run(graph, x, weights=state, dtype="float64")
    assert checked.ok and all(check.ok for check in checked.rf_checks)
    close(checked.output, h)
    summary = convcalc.analyze(graph)
    assert summary.layer("enc3.mask").output_shape == (1, 6, 5)
    assert summary.totals.params == sum(p.numel() for m in modules for p in m.parameters())
    conv = convcalc.analyze(graph_of([{"name": "c", "type": "Conv2d", "out_channels": 8, "kernel_size": 7,
                                       "stride": 2, "padding": 3}], [3, 24, 20]))
    assert rf_of(summary, "enc1") == rf_of(conv, "c") == rf_of(summary, "mask1")


def test_a_mask_given_as_the_input_s_last_channel_is_cut_off_with_narrow():
    """input [4, H, W] = image and mask: Narrow gives each its layer, as the README says."""
    layers = [{"name": "image", "type": "Narrow", "from": "input", "dim": 1, "start": 0, "length": 3},
              {"name": "holes", "type": "Narrow", "from": "input", "dim": 1, "start": -1, "length": 1},
              {"name": "enc1", "type": "PartialConv2d", "from": ["image", "holes"], "out_channels": 8,
               "kernel_size": 5, "stride": 2, "padding": 2, "bias": False},
              {"name": "mask1", "type": "PartialConvMask2d", "from": "holes", "kernel_size": 5, "stride": 2,
               "padding": 2},
              {"name": "enc2", "type": "PartialConv2d", "from": ["enc1", "mask1"], "out_channels": 4, "kernel_size": 3,
               "padding": 1}]
    graph = graph_of(layers, [4, 16, 15])
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, 16, 15))
    x[:, 3:] = holes(rng, 2, 1, (16, 15), hole=7)
    modules = [nvidia_module(3, 8, {"kernel_size": 5, "stride": 2, "padding": 2}, False, False, 6),
               nvidia_module(8, 4, {"kernel_size": 3, "padding": 1}, False, True, 7)]
    state = {f"{name}.{k}": v.numpy() for name, m in zip(["enc1", "enc2"], modules) for k, v in m.state_dict().items()}
    with torch.no_grad():
        h, mask = modules[0](torch.from_numpy(x[:, :3]), torch.from_numpy(x[:, 3:]))
        h, _ = modules[1](h, mask)
    checked = convcalc.run(graph, x, weights=state, dtype="float64")
    assert checked.ok and all(check.ok for check in checked.rf_checks)
    close(checked.output, h)
