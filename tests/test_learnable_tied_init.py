"""Learnable tensors (LearnableTensor), StochasticDepth, weights tied across layers (``tie:``) and initialisation
schemes (``init:``, ``convcalc run --init``), against torch.

* LearnableTensor: its state_dict key is torchvision's (``features.1.0.layer_scale``, no suffix), a ConvNeXt-style
  block loads a torch module's state_dict and matches its output in float64; what would change the batch axis is
  refused (torch shows it would); its receptive field against autograd support where it broadcasts the input up.
  The per-type randomized cross-checks (shapes, params, forward, backward) are in learnable_cases.py.
* Tied layers: a recurrent convolutional network (Liang & Hu 2015: one recurrent conv applied three times) has
  torch's parameter count for a module used several times (``sum(p.numel() for p in model.parameters())``), its
  state_dict keys, FlopCounterMode's flops (MACs counted per use) and its outputs (float64, with and without a
  BatchNorm after each use); a tie across types (a conv's weight used by a transposed conv, a tied autoencoder);
  a state dict listing the shared parameter under both names (a module registered twice) loads when the two
  agree; every refusal.
* Schemes: calculate_gain, the fans of conv weights (grouped, transposed) and every scheme's bound or std against
  torch.nn.init's own functions on the same shapes; sample moments against torch's samples at large sizes;
  orthogonal's W·Wᵀ = gain²·I as torch's; trunc_normal's bounds; reproducibility from the seed; precedence.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import convcalc
from convcalc.errors import LayerArgError
from convcalc.execution.init_schemes import SCHEME_NAMES, calculate_gain, fans, parse_scheme, scheme_from_text
from convcalc.execution.network import Network
from convcalc.execution.weights import expected_keys, initial_state, state_from_dict
from convcalc.layers import lookup

torch.set_num_threads(1)


def build(layers: str, input_shape: str = "[4, 8, 8]", blocks: str = ""):
    text = f"name: t\ninput: {input_shape}\n{blocks}layers:\n{layers}"
    graph = convcalc.build_graph(convcalc.parse_spec(text, "t.yaml"))
    return graph, convcalc.analyze(graph)


def refusal(layers: str, input_shape: str = "[4, 8, 8]", blocks: str = "") -> convcalc.ConvcalcError:
    with pytest.raises(convcalc.ConvcalcError) as info:
        build(layers, input_shape, blocks)
    return info.value


def numpy_state(module: nn.Module) -> dict[str, np.ndarray]:
    return {key: value.detach().double().numpy().copy() for key, value in module.state_dict().items()}


def run_ours(graph, summary, flat: dict[str, np.ndarray], x: torch.Tensor, **kwargs) -> np.ndarray:
    network = Network(summary, state=flat, dtype="float64", **kwargs)
    return network.run(x.numpy()).output


def assert_matches(ours: np.ndarray, theirs: torch.Tensor) -> None:
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    scale = max(1.0, float(np.abs(theirs).max()))
    assert np.abs(ours - theirs).max() <= 1e-9 * scale


# ============================================================================ LearnableTensor

CNBLOCK = """blocks:
  Block:
    args: {dim: required}
    layers:
      - {name: dwconv, type: Conv2d, out_channels: $dim, kernel_size: 7, padding: 3, groups: $dim}
      - {name: pwconv, type: Conv2d, out_channels: $dim, kernel_size: 1}
      - {name: layer_scale, type: LearnableTensor, shape: [$dim, 1, 1], init: 1e-6}
      - {name: stochastic_depth, type: StochasticDepth, p: 0.1, mode: row}
      - {type: Add, from: [input, stochastic_depth]}
"""


class TorchBlock(nn.Module):
    """A ConvNeXt-style residual block with torchvision's layer_scale attribute (CNBlock's
    ``nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)``) and a stochastic depth that is the identity in eval."""

    def __init__(self, dim: int, layer_scale: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.pwconv = nn.Conv2d(dim, dim, 1)
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)

    def forward(self, x):
        return x + self.layer_scale * self.pwconv(self.dwconv(x))


def convnext_like():
    return build("  - {name: features, type: Sequential, layers: [{type: Block, dim: 4}, {type: Block, dim: 4}]}\n",
                 blocks=CNBLOCK)


def test_layer_scale_key_is_torchvisions_and_the_block_matches_torch():
    graph, summary = convnext_like()
    keys = expected_keys(summary)
    assert keys["features.1.layer_scale"] == (4, 1, 1) and "features.1.layer_scale.weight" not in keys
    torch.manual_seed(0)
    model = nn.Sequential(TorchBlock(4), TorchBlock(4)).double().eval()
    with torch.no_grad():
        for block in model:
            block.layer_scale.uniform_(-1, 1)          # not the init value: the loaded one must be used
    theirs = {f"features.{k}": v for k, v in numpy_state(model).items()}
    assert set(theirs) == set(keys)
    assert summary.totals.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    assert_matches(run_ours(graph, summary, theirs, x), model(x))


def test_layer_scale_init_value_is_used_by_run():
    graph, summary = convnext_like()
    state = initial_state(graph, summary, seed=3)
    np.testing.assert_array_equal(state["features.0.layer_scale"][""], np.full((4, 1, 1), 1e-6))
    graph, summary = build("  - {name: g, type: LearnableTensor, shape: [4, 1, 1], param: gamma}\n"
                           "  - {name: pe, type: LearnableTensor, shape: [1, 4, 8, 8], op: add}\n")
    state = initial_state(graph, summary)
    np.testing.assert_array_equal(state["g"]["gamma"], np.ones((4, 1, 1)))       # torch.ones: the scale's identity
    np.testing.assert_array_equal(state["pe"][""], np.zeros((1, 4, 8, 8)))       # zeros: the addend's
    assert set(expected_keys(summary)) == {"g.gamma", "pe"}


@pytest.mark.parametrize("shape, sample", [((2, 4, 1, 1), (4, 5, 5)), ((1, 1, 4, 1, 1), (4, 5, 5)), ((3, 6), (6,))])
def test_a_tensor_that_would_change_the_batch_axis_is_refused(shape, sample):
    out = torch.zeros(1, *sample) * torch.ones(shape)
    assert out.shape[0] != 1 or out.dim() != len(sample) + 1        # torch: another batch size or more axes
    with pytest.raises(LayerArgError) as info:
        lookup("LearnableTensor").from_args({"shape": list(shape)}).infer([sample])
    assert info.value.arg == "shape" and "batch" in info.value.message


def test_learnable_tensor_messages():
    with pytest.raises(LayerArgError) as info:
        lookup("LearnableTensor").from_args({"shape": [4, 1, 1]}).infer([(3, 5, 5)])
    assert info.value.message == ("shape [4, 1, 1] does not broadcast against the input [3, 5, 5]: dim 1 (the batch"
                                  " is dim 0) is 3 there and 4 here")
    with pytest.raises(LayerArgError) as info:
        lookup("LearnableTensor").from_args({"shape": [4, 0]})
    assert info.value.message.startswith("shape must be a list of positive integers")


def test_broadcast_up_field_is_autograds_support():
    """A [4, 1, 8] sample times a [4, 6, 8] tensor: every output row reads the one input row (torch's broadcasting)."""
    graph, summary = build("  - {name: c, type: Conv2d, out_channels: 4, kernel_size: [9, 3], padding: [0, 1]}\n"
                           "  - {name: t, type: LearnableTensor, shape: [4, 6, 8]}\n"
                           "  - {name: d, type: Conv2d, out_channels: 1, kernel_size: 3}\n", "[2, 9, 8]")
    assert summary.layer("t").output_shape == (4, 6, 8)
    conv1 = nn.Conv2d(2, 4, (9, 3), padding=(0, 1)).double()
    conv2 = nn.Conv2d(4, 1, 3).double()
    for module in (conv1, conv2):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    x = torch.rand(1, 2, 9, 8, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    y = conv2(conv1(x) * torch.ones(4, 6, 8, dtype=torch.float64))
    rf = summary.layer("d").rf
    for row in range(y.shape[2]):
        for col in range(1, y.shape[3] - 1):                  # interior along the width
            grad, = torch.autograd.grad(y[0, 0, row, col], x, retain_graph=True)
            rows, cols = np.nonzero(grad[0].abs().sum(0).numpy())
            (row_lo, row_hi), (col_lo, col_hi) = rf.region((row, col))
            assert (rows.min(), rows.max()) == (row_lo, row_hi) == (0, 8)
            assert (cols.min(), cols.max()) == (col_lo, col_hi)


# ============================================================================ StochasticDepth

def test_stochastic_depth_validates_as_torchvision():
    for args, message in (({"p": 1.5, "mode": "row"}, "p must be between 0.0 and 1.0, got 1.5"),
                          ({"p": 0.5, "mode": "rows"}, "mode must be one of 'batch', 'row', got the string 'rows'"),
                          ({"mode": "row"}, "StochasticDepth needs 'p'")):
        with pytest.raises(LayerArgError) as info:
            lookup("StochasticDepth").from_args(args)
        assert info.value.message == message
    layer = lookup("StochasticDepth").from_args({"p": 0.0, "mode": "batch"})
    assert layer.is_noop([(3, 4)], (3, 4)) and layer.infer([(3, 4)]).params == {}


# ============================================================================ tied weights: a recurrent conv net

RCNN = """  - {name: ff, type: Conv2d, out_channels: 6, kernel_size: 3, padding: 1}
  - {name: rec, type: Conv2d, out_channels: 6, kernel_size: 3, padding: 1, bias: false}
  - {name: sum1, type: Add, from: [ff, rec]}
  - {name: relu1, type: ReLU}
  - {name: rec2, type: Conv2d, out_channels: 6, kernel_size: 3, padding: 1, bias: false, tie: rec}
  - {name: sum2, type: Add, from: [ff, rec2]}
  - {name: relu2, type: ReLU}
  - {name: rec3, type: Conv2d, out_channels: 6, kernel_size: 3, padding: 1, bias: false, tie: rec2}
  - {name: sum3, type: Add, from: [ff, rec3]}
  - {name: relu3, type: ReLU}
"""


class TorchRCL(nn.Module):
    """Liang & Hu's recurrent convolutional layer unfolded for 3 steps: x(t) = relu(ff(u) + rec(x(t-1))), x(0) the
    feed-forward response; one ``rec`` module, called three times."""

    def __init__(self, norm: bool = False):
        super().__init__()
        self.ff = nn.Conv2d(4, 6, 3, padding=1)
        self.rec = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.norms = nn.ModuleList([nn.BatchNorm2d(6) for _ in range(3)]) if norm else None

    def forward(self, u):
        feed = self.ff(u)
        x = feed
        for step in range(3):
            r = self.rec(x)
            if self.norms is not None:
                r = self.norms[step](r)
            x = torch.relu(feed + r)
        return x


def test_rcnn_counts_params_once_and_macs_per_use_as_torch():
    graph, summary = build(RCNN)
    model = TorchRCL().double().eval()
    assert summary.totals.params == sum(p.numel() for p in model.parameters()) == 4 * 6 * 9 + 6 + 6 * 6 * 9
    assert set(expected_keys(summary)) == set(model.state_dict())
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 4, 8, 8, dtype=torch.float64))
    assert 2 * summary.totals.macs == counter.get_total_flops()
    assert [summary.layer(name).tied_to for name in ("rec", "rec2", "rec3")] == [None, "rec", "rec"]
    assert summary.layer("rec3").macs == summary.layer("rec").macs and summary.layer("rec3").params == 0


@pytest.mark.parametrize("norm", [False, True])
def test_rcnn_outputs_match_torch(norm):
    layers = RCNN
    if norm:      # a BatchNorm after each use: each folds into its own copy of the shared weights
        for step in (1, 2, 3):
            rec = "rec" if step == 1 else f"rec{step}"
            layers = layers.replace(f"  - {{name: sum{step}, type: Add, from: [ff, {rec}]}}\n",
                                    f"  - {{name: norms.{step - 1}, type: BatchNorm2d}}\n"
                                    f"  - {{name: sum{step}, type: Add, from: [ff, norms.{step - 1}]}}\n")
    graph, summary = build(layers)
    torch.manual_seed(1)
    model = TorchRCL(norm).double().eval()
    if norm:
        with torch.no_grad():
            for bn in model.norms:
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-1, 1)
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    network = Network(summary, state=numpy_state(model), dtype="float64")
    if norm:
        assert {"norms.0", "norms.1", "norms.2"} <= network.folded
    assert_matches(network.run(x.numpy()).output, model(x))
    assert network.state["rec3"]["weight"] is network.state["rec"]["weight"]      # the same array


def test_rcnn_seeded_weights_are_shared():
    graph, summary = build(RCNN)
    network = Network(summary, seed=5, dtype="float64")
    assert network.state["rec2"]["weight"] is network.state["rec"]["weight"]
    np.testing.assert_array_equal(initial_state(graph, summary, 5)["rec"]["weight"],
                                  initial_state(graph, summary, 5)["rec"]["weight"])


def test_rcnn_runs_and_shows_the_tie():
    from convcalc.report.summary import to_json, to_markdown

    graph, summary = build(RCNN)
    checked = convcalc.run(graph, dtype="float64")
    assert checked.ok
    layers = {layer["name"]: layer for layer in to_json(summary)["layers"]}
    assert layers["rec2"]["tied_to"] == "rec" and layers["rec2"]["weights"] == {} and layers["rec"]["tied_to"] is None
    assert "Conv2d (tied: rec)" in to_markdown(summary)


def test_tie_across_types_a_tied_autoencoder():
    """A decoder that is the transposed encoder (``F.conv_transpose2d(h, encoder.weight)``): one weight [8, 4, 3, 3]."""
    graph, summary = build("  - {name: enc, type: Conv2d, out_channels: 8, kernel_size: 3, stride: 2, bias: false}\n"
                           "  - {type: ReLU}\n"
                           "  - {name: dec, type: ConvTranspose2d, out_channels: 4, kernel_size: 3, stride: 2,"
                           " output_padding: 1, bias: false, tie: enc}\n", "[4, 9, 9]")
    encoder = nn.Conv2d(4, 8, 3, stride=2, bias=False).double()
    x = torch.randn(1, 4, 9, 9, dtype=torch.float64)
    theirs = F.conv_transpose2d(torch.relu(encoder(x)), encoder.weight, stride=2, output_padding=1)
    assert summary.totals.params == encoder.weight.numel()
    assert_matches(run_ours(graph, summary, {"enc.weight": numpy_state(encoder)["weight"]}, x), theirs)


def test_a_state_dict_with_the_shared_parameter_under_both_names():
    """torch lists a module registered under two names twice in its state_dict (and counts it once)."""
    graph, summary = build(RCNN)
    model = TorchRCL().double()
    model.rec2 = model.rec
    flat = numpy_state(model)
    assert "rec2.weight" in flat and sum(p.numel() for p in model.parameters()) == summary.totals.params
    state_from_dict(flat, summary)                                   # equal arrays: loads
    flat["rec2.weight"] = flat["rec2.weight"] + 1.0
    with pytest.raises(convcalc.ConvcalcError) as info:
        state_from_dict(flat, summary)
    assert str(info.value) == ("weights: rec2.weight differs from rec.weight, but they are one parameter (the layer is"
                               " tied: its parameters are its owner's)")


@pytest.mark.parametrize("layers, message", [
    ("  - {name: a, type: Conv2d, out_channels: 4, kernel_size: 3}\n"
     "  - {name: b, type: Conv2d, out_channels: 4, kernel_size: 1, tie: a}\n",
     "t.yaml:5:{key}: layer 'b' (Conv2d): tie: its parameters must be those of 'a' (Conv2d), name for name and shape"
     " for shape: weight [4, 4, 3, 3], bias [4] there, weight [4, 4, 1, 1], bias [4] here"),
    ("  - {name: a, type: ReLU}\n  - {name: b, type: Conv2d, out_channels: 4, kernel_size: 1, tie: a}\n",
     "t.yaml:5:{key}: layer 'b' (Conv2d): tie: 'a' has no parameters to share"),
    ("  - {name: b, type: Conv2d, out_channels: 4, kernel_size: 1, tie: input}\n",
     "t.yaml:4:{value}: 'tie' must name a layer whose parameters this one uses, not the input"),
    ("  - {name: a, type: Conv2d, out_channels: 4, kernel_size: 1}\n"
     "  - {name: b, type: Conv2d, out_channels: 4, kernel_size: 1, tie: a, init: {weight: 1}}\n",
     "t.yaml:5:{init}: a tied layer uses the parameters of 'a'; put 'init' there"),
    ("  - {name: b, type: Conv2d, out_channels: 4, kernel_size: 1, tie: nothing}\n",
     "t.yaml:4:{value}: 'tie' refers to 'nothing', which is not a layer defined before this one in this spec;"
     " valid: input"),
    ("  - {name: s, type: Sequential, layers: [{type: Conv2d, out_channels: 4, kernel_size: 1}]}\n"
     "  - {name: b, type: Conv2d, out_channels: 4, kernel_size: 1, tie: s}\n",
     "t.yaml:5:{value}: 'tie' must name a layer whose parameters this one uses, not a block or repeat group (whose"
     " output is 's.0')"),
    ("  - {name: s, type: Sequential, tie: x, layers: [{type: ReLU}]}\n",
     "t.yaml:4:{key}: 'tie' is about a layer's parameters; put it on the layers inside 'Sequential'"),
])
def test_tie_refusals(layers, message):
    last = layers.splitlines()[-1]
    columns = {"key": last.index("tie:") + 1, "value": last.index("tie:") + 6, "init": last.index("init:") + 1
               if "init:" in last else 0}
    assert str(refusal(layers)) == message.format(**columns)


# ============================================================================ initialisation schemes

NONLINEARITIES = [("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
                  ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0), ("selu", None)]


@pytest.mark.parametrize("nonlinearity, param", NONLINEARITIES)
def test_gain_is_torchs(nonlinearity, param):
    assert calculate_gain(nonlinearity, param) == nn.init.calculate_gain(nonlinearity, param)


def weight_shapes() -> list[tuple[int, ...]]:
    """The weight shapes of a grouped conv, a transposed grouped conv, a 3-D conv and a Linear, as convcalc infers
    them (torch's state_dict shapes: fans are computed from them, groups included)."""
    shapes = []
    for type_name, args, in_shape in (
            ("Conv2d", {"out_channels": 12, "kernel_size": [3, 5], "groups": 3}, (6, 9, 9)),
            ("ConvTranspose2d", {"out_channels": 8, "kernel_size": 3, "groups": 2}, (6, 5, 5)),
            ("Conv3d", {"out_channels": 5, "kernel_size": 2}, (3, 4, 4, 4)),
            ("Linear", {"out_features": 7}, (11,))):
        shapes.append(lookup(type_name).from_args(args).infer([in_shape]).params["weight"])
    return shapes


SHAPES = weight_shapes()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fans_are_torchs(shape):
    assert fans(shape) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


SCHEMES = [
    ("xavier_uniform", {}), ("glorot_uniform", {"gain": 2.5}), ("xavier_uniform", {"gain": "relu"}),
    ("xavier_normal", {}), ("glorot_normal", {"gain": 0.5}),
    ("kaiming_uniform", {}), ("he_uniform", {"a": 0.2}),
    ("kaiming_uniform", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal", {}), ("he_normal", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal", {"a": 0.1, "mode": "fan_in", "nonlinearity": "leaky_relu"}),
    ("kaiming_normal", {"nonlinearity": "tanh"}),
]


def torch_spread(name: str, args: dict, shape) -> float:
    """torch.nn.init's bound (uniform) or std (normal) for ``shape``, from torch's own helpers."""
    tensor = torch.empty(shape)
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(tensor)
    if "xavier" in name or "glorot" in name:
        gain = args.get("gain", 1.0)
        gain = nn.init.calculate_gain(gain) if isinstance(gain, str) else gain
        std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        fan = nn.init._calculate_correct_fan(tensor, args.get("mode", "fan_in"))
        std = nn.init.calculate_gain(args.get("nonlinearity", "leaky_relu"), args.get("a", 0)) / math.sqrt(fan)
    return math.sqrt(3.0) * std if "uniform" in name else std


@pytest.mark.parametrize("name, args", SCHEMES, ids=lambda v: str(v))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_scheme_spread_is_torchs(name, args, shape):
    scheme = parse_scheme({"scheme": name, **args})
    ours = scheme.bound(shape) if "uniform" in name else scheme.std(shape)
    assert ours == pytest.approx(torch_spread(name, args, shape), rel=1e-15)


def test_scheme_spread_is_exactly_what_torch_draws_with(monkeypatch):
    """The very bound / std torch.nn.init passes to Tensor.uniform_ / normal_, caught on the way, for every scheme
    and shape above."""
    calls = []
    for method in ("uniform_", "normal_"):
        original = getattr(torch.Tensor, method)

        def recording(tensor, *args, _original=original, _method=method, **kwargs):
            calls.append((_method, args))
            return _original(tensor, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, method, recording)
    for name, args in SCHEMES:
        torch_args = {k: (nn.init.calculate_gain(v) if k == "gain" and isinstance(v, str) else v)
                      for k, v in args.items()}
        scheme = parse_scheme({"scheme": name, **args})
        for shape in SHAPES:
            calls.clear()
            TORCH_FUNCTIONS[name](torch.empty(shape, dtype=torch.float64), **torch_args)
            (method, values), = calls
            if method == "uniform_":
                assert values == (-scheme.bound(shape), scheme.bound(shape)), (name, args, shape)
            else:
                assert values == (0.0, scheme.std(shape)) or values == (0, scheme.std(shape)), (name, args, shape)


TORCH_FUNCTIONS = {"xavier_uniform": nn.init.xavier_uniform_, "glorot_uniform": nn.init.xavier_uniform_,
                   "xavier_normal": nn.init.xavier_normal_, "glorot_normal": nn.init.xavier_normal_,
                   "kaiming_uniform": nn.init.kaiming_uniform_, "he_uniform": nn.init.kaiming_uniform_,
                   "kaiming_normal": nn.init.kaiming_normal_, "he_normal": nn.init.kaiming_normal_}


@pytest.mark.parametrize("name, args", SCHEMES, ids=lambda v: str(v))
def test_samples_match_torchs_at_a_large_size(name, args):
    """A [2000, 250, 3, 3] weight (4.5 M values): mean, std and extremes against torch's own sample."""
    shape = (2000, 250, 3, 3)
    torch_args = {k: (nn.init.calculate_gain(v) if k == "gain" and isinstance(v, str) else v) for k, v in args.items()}
    theirs = TORCH_FUNCTIONS[name](torch.empty(shape, dtype=torch.float64),
                                   generator=torch.Generator().manual_seed(0), **torch_args).numpy()
    ours = parse_scheme({"scheme": name, **args}).draw(shape, np.random.default_rng(0))
    spread = theirs.std()
    assert abs(ours.mean()) < 5 * spread / math.sqrt(ours.size) and abs(theirs.mean()) < 5 * spread / math.sqrt(ours.size)
    assert ours.std() == pytest.approx(spread, rel=2e-3)
    if "uniform" in name:
        bound = torch_spread(name, args, shape)
        assert np.abs(ours).max() <= bound and np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=1e-5)


@pytest.mark.parametrize("shape", [(6, 4, 3, 3), (200, 5), (3, 40)], ids=str)
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal_is_semi_orthogonal_as_torchs(shape, gain):
    ours = parse_scheme({"scheme": "orthogonal", "gain": gain}).draw(shape, np.random.default_rng(1))
    theirs = nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=gain).numpy()
    for weight in (ours, theirs):
        flat = weight.reshape(shape[0], -1)
        product = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
        np.testing.assert_allclose(product, gain ** 2 * np.eye(product.shape[0]), atol=1e-12)
    assert ours.shape == theirs.shape


@pytest.mark.parametrize("args", [{"std": 0.02}, {"a": -0.5, "b": 1.0}, {"a": 2.0, "b": 3.0}], ids=str)
def test_trunc_normal_is_torchs(args):
    """Both of torch's regimes: [a, b] holding most of the normal (redraws) and a tail (uniform rejection)."""
    ours = parse_scheme({"scheme": "trunc_normal", **args}).draw((1000, 1000), np.random.default_rng(0))
    theirs = nn.init.trunc_normal_(torch.empty(1000, 1000, dtype=torch.float64), **args).numpy()
    low, high = args.get("a", -2.0), args.get("b", 2.0)
    assert ours.min() >= low and ours.max() <= high
    assert ours.mean() == pytest.approx(theirs.mean(), abs=5 * theirs.std() / 1000)
    assert ours.std() == pytest.approx(theirs.std(), rel=5e-3)


def test_constant():
    np.testing.assert_array_equal(parse_scheme({"scheme": "constant", "val": "1e-6"}).draw((2, 3), None),
                                  np.full((2, 3), 1e-6))


def test_scheme_parse_errors():
    for spec, message in (("kaiming", "unknown initialisation scheme 'kaiming'; valid: " + ", ".join(SCHEME_NAMES)),
                          ({"scheme": "kaiming_normal", "mode": "fan_avg"},
                           "kaiming_normal: mode must be 'fan_in' or 'fan_out', got 'fan_avg'"),
                          ({"scheme": "kaiming_normal", "nonlinearity": "gelu"},
                           "kaiming_normal: nonlinearity 'gelu' is not a nonlinearity torch's calculate_gain knows;"
                           " valid: linear, identity, conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,"
                           " conv_transpose3d, sigmoid, tanh, relu, leaky_relu, selu"),
                          ({"scheme": "constant"}, "constant needs 'val'"),
                          ({"scheme": "orthogonal", "std": 1}, "orthogonal takes gain; got 'std'")):
        with pytest.raises(ValueError) as info:
            parse_scheme(spec)
        assert str(info.value) == message
    with pytest.raises(convcalc.ConvcalcError, match="--init: cannot read"):
        scheme_from_text("{scheme: [")


TWO_CONVS = ("  - {name: a, type: Conv2d, out_channels: 8, kernel_size: 3%s}\n"
             "  - {name: b, type: Conv2d, out_channels: 8, kernel_size: 3%s}\n"
             "  - {name: n, type: BatchNorm2d}\n")


def test_default_scheme_reproducible_and_a_layers_own_init_wins():
    graph, summary = build(TWO_CONVS % (", init: {weight: {scheme: constant, val: 0.5}}", ""))
    scheme = parse_scheme("kaiming_normal")
    first, again = initial_state(graph, summary, 7, scheme), initial_state(graph, summary, 7, scheme)
    other = initial_state(graph, summary, 8, scheme)
    np.testing.assert_array_equal(first["b"]["weight"], again["b"]["weight"])
    assert not np.array_equal(first["b"]["weight"], other["b"]["weight"])
    np.testing.assert_array_equal(first["a"]["weight"], np.full((8, 4, 3, 3), 0.5))       # its own init wins
    default = initial_state(graph, summary, 7)
    assert np.abs(first["b"]["bias"]).max() <= 1 / math.sqrt(8 * 9)               # biases: torch's default U(±1/√fan_in)
    assert first["b"]["weight"].std() == pytest.approx(math.sqrt(2 / (8 * 9)), rel=0.1)   # kaiming: √2/√fan_in
    assert default["b"]["weight"].std() < 0.7 * first["b"]["weight"].std()
    np.testing.assert_array_equal(first["n"]["weight"], np.ones(8))                # 1-D: the BatchNorm's default


def test_whole_layer_init():
    graph, summary = build(TWO_CONVS % (", init: he_uniform", ", init: 0.25"))
    state = initial_state(graph, summary, 0)
    bound = math.sqrt(6.0 / (4 * 9))                                            # gain √2 (a = 0), fan_in 36
    assert np.abs(state["a"]["weight"]).max() <= bound and np.abs(state["a"]["bias"]).max() <= 1 / 6
    np.testing.assert_array_equal(state["b"]["weight"], np.full((8, 8, 3, 3), 0.25))
    np.testing.assert_array_equal(state["b"]["bias"], np.full(8, 0.25))
    graph, summary = build("  - {name: n, type: BatchNorm2d, init: orthogonal}\n")
    with pytest.raises(convcalc.ConvcalcError) as info:
        initial_state(graph, summary)
    assert str(info.value) == ("t.yaml:4:40: layer 'n' (BatchNorm2d): init: orthogonal sets the parameters of 2"
                               " dimensions or more but biases, and this layer has none (it has: 'weight', 'bias');"
                               " name the parameter instead: init: {NAME: ...}")
    graph, summary = build("  - {name: c, type: Conv2d, out_channels: 2, kernel_size: 1, init: {bias: orthogonal}}\n")
    with pytest.raises(convcalc.ConvcalcError, match="orthogonal needs a parameter of 2 dimensions or more"):
        initial_state(graph, summary)
    graph, summary = build("  - {name: c, type: Conv2d, out_channels: 2, kernel_size: 1, init: {weight: kaiming_norml}}\n")
    with pytest.raises(convcalc.ConvcalcError, match="unknown initialisation scheme 'kaiming_norml'; did you mean"
                                                     " 'kaiming_normal'"):
        initial_state(graph, summary)


def test_run_init_option(tmp_path):
    from typer.testing import CliRunner

    from convcalc.cli import app

    spec = tmp_path / "rcnn.yaml"
    spec.write_text("name: rcnn\ninput: [4, 8, 8]\nlayers:\n" + RCNN)
    result = CliRunner().invoke(app, ["run", str(spec), "--init", "{scheme: kaiming_normal, mode: fan_out,"
                                      " nonlinearity: relu}", "--seed", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    weights = tmp_path / "w.npz"
    np.savez(weights, **numpy_state(TorchRCL()))
    result = CliRunner().invoke(app, ["run", str(spec), "--init", "orthogonal", "--weights", str(weights)])
    assert result.exit_code == 2
    assert result.stderr == "error: --init draws the weights and --weights loads them: give one of them\n"
    result = CliRunner().invoke(app, ["run", str(spec), "--init", "kaiming"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --init: unknown initialisation scheme 'kaiming'")


def test_run_with_a_scheme_is_reproducible_from_the_seed():
    graph, _ = build(RCNN)
    first = convcalc.run(graph, seed=4, init="he_normal", rf_check=False).output
    again = convcalc.run(graph, seed=4, init=parse_scheme("kaiming_normal"), rf_check=False).output
    other = convcalc.run(graph, seed=5, init="he_normal", rf_check=False).output
    default = convcalc.run(graph, seed=4, rf_check=False).output
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other) and not np.array_equal(first, default)
