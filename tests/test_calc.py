"""`convcalc calc`: the calculator's answers against independent oracles.

* one layer: torch builds the layer and runs it (output shape, parameter count, MACs by
  torch.utils.flop_counter), the printed formula is evaluated as arithmetic, and the dropped input pixels are those
  torch's gradient never reaches;
* padding: every answer builds a torch conv of that padding (TF SAME by TensorFlow's documented formula and F.pad),
  and a brute-force search over paddings finds no answer the solver missed;
* receptive fields: Araujo et al.'s closed forms (Distill 2019), written here from the formula;
* cost: each variant built as a torch module;
* the CLI: exit codes and messages (typer's CliRunner), JSON with schema_version 1, `python -m convcalc calc`.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from convcalc.analysis.calculator import cost, one_layer
from convcalc.analysis.padding_solver import solve_padding
from convcalc.analysis.rf_stack import parse_stack, stack_fields
from convcalc.cli import app
from convcalc.errors import ConvcalcError

RUNNER = CliRunner()
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def torch_macs(module: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


def params_of(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def evaluate(formula: str) -> int:
    """The printed formula 'out = floor((224 + 2·3 − 1·(7 − 1) − 1) / 2) + 1 = 112' as arithmetic (its left side)."""
    text = formula.split("=")[1].split("(the last")[0]
    text = text.replace("·", "*").replace("−", "-").replace("floor", "math.floor").replace("ceil", "math.ceil")
    return eval(text, {"math": math})    # noqa: S307 (the calculator's own formula text)


# --------------------------------------------------------------------------- one layer against torch

def torch_layer(type_name: str, channels: int, out_channels: int, **args):
    family = type_name[:-2]
    module = getattr(nn, type_name)
    if family in ("Conv", "ConvTranspose"):
        return module(channels, out_channels, **args)
    return module(**args)


CASES = [   # (type, input, kernel, stride, padding, dilation, groups, output_padding, ceil_mode, out_channels)
    ("Conv2d", (3, 224, 224), 7, 2, 3, 1, 1, 0, False, 64),
    ("Conv1d", (4, 100), 5, 3, 2, 2, 2, 0, False, 6),
    ("Conv3d", (2, 9, 16, 17), (3, 1, 3), (1, 2, 2), (1, 0, 1), 1, 1, 0, False, 4),
    ("ConvTranspose2d", (8, 16, 15), 4, 2, 1, 1, 2, 1, False, 6),
    ("ConvTranspose1d", (3, 7), 3, 3, 1, 2, 1, 1, False, 5),
    ("ConvTranspose3d", (2, 4, 5, 6), 3, 2, 0, 1, 1, (1, 0, 1), False, 3),
    ("MaxPool2d", (3, 112, 111), 3, 2, 1, 1, None, 0, True, None),
    ("MaxPool1d", (1, 5), 2, 2, 1, 1, None, 0, True, None),
    ("MaxPool3d", (2, 7, 8, 9), 2, None, 0, 2, None, 0, False, None),
    ("AvgPool2d", (3, 7, 6), 3, 2, 1, 1, None, 0, True, None),
    ("AvgPool1d", (3, 6), 3, 2, 0, 1, None, 0, True, None),
    ("AvgPool3d", (1, 5, 6, 7), (2, 3, 3), 2, (1, 0, 1), 1, None, 0, False, None),
]


def _text(value) -> str | None:
    return None if value is None else "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def check_against_torch(type_name, shape, k, s, p, d, g, op, ceil, out):
    family = type_name[:-2]
    torch_args = {"kernel_size": k, "padding": p}
    if s is not None:
        torch_args["stride"] = s
    if family != "AvgPool":
        torch_args["dilation"] = d
    if family in ("Conv", "ConvTranspose"):
        torch_args["groups"] = g
    if family == "ConvTranspose":
        torch_args["output_padding"] = op
    if family in ("MaxPool", "AvgPool"):
        torch_args["ceil_mode"] = ceil
    module = torch_layer(type_name, shape[0], out, **torch_args)
    x = torch.zeros((1, *shape))
    y = module(x)
    answer = one_layer(type_name.lower(), _text(shape), kernel_size=_text(k), stride=_text(s), padding=_text(p),
                       dilation=None if family == "AvgPool" else _text(d),
                       groups=g if family in ("Conv", "ConvTranspose") else None,
                       output_padding=_text(op) if family == "ConvTranspose" else None, ceil_mode=ceil,
                       out_channels=out)
    expected_shape = tuple(y.shape[1:])
    assert answer.output_shape[1:] == expected_shape[1:]
    if family in ("Conv", "ConvTranspose"):
        assert answer.output_shape == expected_shape
        assert answer.params == params_of(module)
        assert answer.macs == torch_macs(module, x)
    else:
        assert answer.params == 0
    for axis, expected in zip(answer.axes, expected_shape[1:]):
        from convcalc.report.calc import formula
        text = formula(answer, axis)
        assert text.endswith(f"= {expected}") or text.endswith(f"= {expected}  (padding 'same': ")
        assert evaluate(text) == expected          # ceil_mode's correction '− 1 (the last window ...)' included
    return answer


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_one_layer_is_torchs(case):
    check_against_torch(*case)


@FEW
@given(dims=st.integers(1, 3), family=st.sampled_from(["Conv", "ConvTranspose", "MaxPool", "AvgPool"]),
       data=st.data())
def test_random_layers_are_torchs(dims, family, data):
    k = data.draw(st.integers(1, 4))
    s = data.draw(st.integers(1, 3))
    d = data.draw(st.integers(1, 2)) if family != "AvgPool" else 1
    limit = k // 2 if family in ("MaxPool", "AvgPool") else 3
    p = data.draw(st.integers(0, limit))
    g = data.draw(st.sampled_from([1, 2])) if family in ("Conv", "ConvTranspose") else None
    op = data.draw(st.integers(0, max(s, d) - 1)) if family == "ConvTranspose" else 0
    ceil = data.draw(st.booleans()) if family in ("MaxPool", "AvgPool") else False
    k_eff = d * (k - 1) + 1
    low = max(1, k_eff - 2 * p) if family != "ConvTranspose" else 1
    spatial = tuple(data.draw(st.integers(low, low + 9)) for _ in range(dims))
    shape = (2 * (g or 1), *spatial)
    try:
        module = torch_layer(f"{family}{dims}d", shape[0], 2 * (g or 1), kernel_size=k, stride=s, padding=p,
                             **({"dilation": d} if family != "AvgPool" else {}),
                             **({"groups": g} if g else {}), **({"output_padding": op} if op else {}),
                             **({"ceil_mode": ceil} if ceil else {}))
        if min(module(torch.zeros((1, *shape))).shape[2:]) == 0:     # grouped ConvTranspose: empty, no error
            raise RuntimeError("an empty output")
    except (RuntimeError, ValueError):
        with pytest.raises(ConvcalcError):       # what torch refuses, the calculator refuses
            one_layer(f"{family}{dims}d", _text(shape), kernel_size=str(k), stride=str(s), padding=str(p),
                      dilation=str(d), groups=g, output_padding=str(op) if family == "ConvTranspose" else None,
                      ceil_mode=ceil, out_channels=2 * (g or 1) if g else None)
        return
    check_against_torch(f"{family}{dims}d", shape, k, s, p, d, g or 1, op, ceil, 2 * (g or 1) if g else None)


def test_the_formula_reads_as_the_issue_asks():
    from convcalc.report.calc import formula
    answer = one_layer("conv2d", "3x224x224", kernel_size="7", stride="2", padding="3", out_channels=64)
    assert formula(answer, answer.axes[0]) == "out = floor((224 + 2·3 − 1·(7 − 1) − 1) / 2) + 1 = 112"
    assert answer.params == 9_472 and answer.macs == 118_013_952      # ResNet's conv1 with a bias


def unread_tail(shape, k, s, p, d) -> list[int]:
    """Per axis, the trailing input positions torch's gradient never reaches (all-ones weights)."""
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    nn.init.ones_(conv.weight)
    x = torch.ones((1, 1, *shape), requires_grad=True)
    conv(x).sum().backward()
    grad = x.grad[0, 0]
    counts = []
    for axis in (0, 1):
        reached = grad.abs().sum(dim=1 - axis) > 0
        last = max(i for i, r in enumerate(reached.tolist()) if r)
        counts.append(shape[axis] - 1 - last)
    return counts


@pytest.mark.parametrize("shape, k, s, p, d", [((224, 224), 3, 2, 0, 1), ((225, 224), 3, 2, 0, 1),
                                               ((28, 31), 3, 4, 1, 1), ((20, 20), 2, 3, 0, 2)])
def test_dropped_pixels_are_those_torch_never_reads(shape, k, s, p, d):
    answer = one_layer("conv2d", "x".join(map(str, shape)), kernel_size=str(k), stride=str(s), padding=str(p),
                       dilation=str(d))
    expected = unread_tail(shape, k, s, p, d)
    if d * (k - 1) + 1 >= s:
        assert list(answer.dropped) == expected
    result = RUNNER.invoke(app, ["calc", "conv2d", "--in", "x".join(map(str, shape)), "-k", str(k), "-s", str(s),
                                 "-p", str(p), "-d", str(d)])
    assert result.exit_code == 0, result.output
    assert ("CC201" in result.output) == any(answer.dropped)


# --------------------------------------------------------------------------- padding against torch and TF's formula

def torch_conv_out(i, k, s, d, lo, hi) -> int:
    x = F.pad(torch.zeros((1, 1, i)), (lo, hi))
    return F.conv1d(x, torch.zeros((1, 1, k)), stride=s, dilation=d).shape[-1]


@FEW
@given(i=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3),
       target=st.one_of(st.none(), st.integers(1, 45)))
def test_conv_padding_against_torch(i, k, s, d, target):
    axis = solve_padding(str(i), str(k), stride=str(s), dilation=str(d),
                         out=None if target is None else str(target)).axes[0]
    o = -(-i // s) if target is None else target
    assert axis.target == o
    k_eff = d * (k - 1) + 1
    found = [p for p in range(0, (o + 2) * s + k_eff) if i + 2 * p >= k_eff and torch_conv_out(i, k, s, d, p, p) == o]
    assert list(axis.symmetric) == found                         # every symmetric padding, and nothing else
    for p in axis.symmetric:
        assert nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros((1, 1, i))).shape[-1] == o
    total = max((o - 1) * s + k_eff - i, 0)                     # TF: pad_along = max((out - 1)*s + k_eff - in, 0)
    if (i + total - k_eff) // s + 1 == o and i + total >= k_eff:
        assert axis.asymmetric == (total // 2, total - total // 2)    # pad_top = pad_along // 2, the rest after
        assert torch_conv_out(i, k, s, d, *axis.asymmetric) == o
    else:
        assert axis.asymmetric is None and axis.reason
    if not axis.symmetric:
        assert axis.reason


def test_tf_same_matches_the_documented_vectors():
    assert solve_padding("6", "3", stride="2").axes[0].asymmetric == (0, 1)      # semantics §9: TF SAME i=6,k=3,s=2
    seven = solve_padding("7", "4").axes[0]
    assert seven.asymmetric == (1, 2) and seven.torch_same == (1, 2) and seven.symmetric == ()
    assert "odd" in seven.reason
    assert solve_padding("64", "5", dilation="2").axes[0].symmetric == (4,)


@FEW
@given(i=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 4), d=st.integers(1, 3),
       target=st.one_of(st.none(), st.integers(1, 50)))
def test_transposed_padding_against_torch(i, k, s, d, target):
    axis = solve_padding(str(i), str(k), stride=str(s), dilation=str(d), transposed=True,
                         out=None if target is None else str(target)).axes[0]
    o = i * s if target is None else target
    found = []
    for p in range(0, (i + 1) * s + d * k + 2):
        for op in range(max(s, d)):
            layer = nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d)
            try:
                if layer(torch.zeros((1, 1, i))).shape[-1] == o:
                    found.append((p, op))
            except RuntimeError:
                pass
    assert sorted(axis.pairs) == found
    assert bool(axis.reason) == (not found)


def test_padding_says_why_none():
    too_long = solve_padding("8", "3", out="1").axes[0]
    assert too_long.symmetric == () and too_long.asymmetric is None
    assert "even without padding the output is 6 long" in too_long.reason
    too_big = solve_padding("4", "3", out="7", transposed=True).axes[0]
    assert too_big.reason.startswith("the largest output is 6")
    odd = solve_padding("4", "3", out="5", transposed=True).axes[0]
    assert "is odd" in odd.reason


# --------------------------------------------------------------------------- receptive fields against Araujo et al.

def araujo(layers):
    """r_l = r_{l-1} + (k_eff - 1)·j_{l-1}; j_l = j_{l-1}·s; centre_l = centre_{l-1} + ((k_eff - 1)/2 - p)·j_{l-1}."""
    r, j, centre, rows = 1, 1, Fraction(0), []
    for k, s, p, d in layers:
        k_eff = d * (k - 1) + 1
        r, centre, j = r + (k_eff - 1) * j, centre + (Fraction(k_eff - 1, 2) - p) * j, j * s
        rows.append((r, j, centre))
    return rows


def test_the_issues_stack():
    answer = stack_fields("conv3 s1, conv3 d2, pool2 s2, conv3")
    assert [int(row.field.axes[0].size) for row in answer.rows] == [3, 7, 8, 12]   # 1+2, +4, +1, +2·2
    assert [row.field.axes[0].stride for row in answer.rows] == [1, 1, 2, 2]
    assert [row.centre[0] for row in answer.rows] == [1, 3, Fraction(7, 2), Fraction(11, 2)]


@FEW
@given(st.lists(st.tuples(st.sampled_from(["conv", "pool", "avgpool"]), st.integers(1, 5), st.integers(1, 3),
                          st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=6))
def test_random_stacks_against_araujo(items):
    layers, texts = [], []
    for kind, k, s, p, d in items:
        if kind != "conv":
            d, p = 1, min(p, k // 2)
        layers.append((k, s, p, d))
        texts.append(f"{kind}{k} s{s} p{p}" + (f" d{d}" if d > 1 else ""))
    answer = stack_fields(", ".join(texts))
    for row, (r, j, centre) in zip(answer.rows, araujo(layers)):
        axis = row.field.axes[0]
        assert (axis.size, axis.stride, axis.centre) == (r, j, centre), row.text


def test_transposed_and_upsampling_divide_the_jump():
    answer = stack_fields("conv4 s2 p1, conv4 s2 p1, tconv4 s2 p1, up2")
    sizes = [row.growth.size[0] for row in answer.rows]
    jumps = [row.field.axes[0].stride for row in answer.rows]
    assert sizes[:3] == [4, 10, 14]          # a 4-tap stride-2 transposed conv reads k/s = 2 inputs: 10 + (2 - 1)·4
    assert jumps == [2, 4, 2, 1]
    assert stack_fields("up2 x2, conv3").rows[-1].field.axes[0].stride == Fraction(1, 4)


def test_the_grammar():
    layers = parse_stack("conv3-s2-p1, tconv4 s2 p1 op1; pool3x2 s2 ceil, up1.5 bilinear, avg2 x3, conv3 same")
    assert [layer.head for layer in layers] == ["Conv", "ConvTranspose", "MaxPool", "Upsample", "AvgPool", "Conv"]
    assert layers[0].args == {"kernel_size": 3, "stride": 2, "padding": 1}
    assert layers[1].args == {"kernel_size": 4, "stride": 2, "padding": 1, "output_padding": 1}
    assert layers[2].args == {"kernel_size": [3, 2], "stride": 2, "ceil_mode": True} and layers[2].axes == 2
    assert layers[3].args == {"scale_factor": 1.5, "mode": "bilinear"}
    assert layers[4].repeat == 3 and layers[5].args["padding"] == "same"
    assert stack_fields("conv3x1, pool2").input_shape[1:] == (64, 64)
    assert stack_fields("conv3 s2, conv3", "224x200").rows[-1].output == (109, 97)


# --------------------------------------------------------------------------- cost against torch modules

def test_cost_variants_are_torch_modules():
    c, n, k, g, mid = 128, 256, 3, 4, 64
    answer = cost(f"{c}x28x28", n, str(k))
    x = torch.zeros((1, c, 28, 28))
    modules = {
        "standard": nn.Conv2d(c, n, k, padding=1),
        "grouped": nn.Conv2d(c, n, k, padding=1, groups=g),
        "depthwise_separable": nn.Sequential(nn.Conv2d(c, c, k, padding=1, groups=c, bias=False), nn.Conv2d(c, n, 1)),
        "depthwise_grouped_pointwise": nn.Sequential(nn.Conv2d(c, c, k, padding=1, groups=c, bias=False),
                                                     nn.Conv2d(c, n, 1, groups=g), nn.ChannelShuffle(g)),
        "shufflenet_unit": nn.Sequential(nn.Conv2d(c, mid, 1, groups=g, bias=False), nn.ChannelShuffle(g),
                                         nn.Conv2d(mid, mid, k, padding=1, groups=mid, bias=False),
                                         nn.Conv2d(mid, n, 1, groups=g)),
        # the cheaper textbook form: C -> C -> N where C < N
        "spatially_separable": nn.Sequential(nn.Conv2d(c, c, (k, 1), padding=(1, 0)),
                                             nn.Conv2d(c, n, (1, k), padding=(0, 1))),
    }
    assert [v.key for v in answer.variants] == list(modules)
    for variant in answer.variants:
        module = modules[variant.key]
        assert variant.params == params_of(module), variant.key
        assert variant.macs == torch_macs(module, x), variant.key
        assert variant.output_shape == tuple(module(x).shape[1:])
    separable = answer.variants[2]
    assert separable.macs_ratio == Fraction(1, n) + Fraction(1, k * k) == answer.separable_formula
    assert answer.variants[1].macs_ratio == Fraction(1, g)


def test_cost_in_1d_and_3d_and_without_groups():
    one = cost("6x50", 10, "5", stride="2", groups=2, bias=False)
    assert one.variants[0].params == params_of(nn.Conv1d(6, 10, 5, bias=False))
    assert "spatially separable" in dict(one.skipped)
    three = cost("8x4x6x6", 16, "3", bias=False)
    ds = nn.Sequential(nn.Conv3d(8, 8, 3, padding=1, groups=8, bias=False), nn.Conv3d(8, 16, 1, bias=False))
    assert three.variants[2].key == "depthwise_separable" and three.variants[2].params == params_of(ds)
    assert three.variants[2].macs == torch_macs(ds, torch.zeros((1, 8, 4, 6, 6)))
    odd = cost("3x8x8", 5, "3")
    assert [v.key for v in odd.variants] == ["standard", "depthwise_separable", "spatially_separable"]
    assert dict(odd.skipped)["grouped"].endswith("give --groups G")


# --------------------------------------------------------------------------- the command line

def run(*args: str):
    return RUNNER.invoke(app, ["calc", *args])


def test_cli_layer_table_and_json():
    result = run("conv2d", "--in", "3x224x224", "-k", "7", "-s", "2", "-p", "3", "--out-channels", "64")
    assert result.exit_code == 0, result.output
    for text in ("64×112×112", "9,472", "118,013,952", "size 7, stride 2, padding 3",
                 "out = floor((224 + 2·3 − 1·(7 − 1) − 1) / 2) + 1 = 112"):
        assert text in result.output
    data = json.loads(run("maxpool2d", "--in", "112", "-k", "3", "-s", "2", "-p", "1", "--ceil-mode",
                          "--format", "json").stdout)
    assert data["schema_version"] == 1 and data["output_shape"] == [1, 57, 57] and data["channels_given"] is False
    assert data["rf"]["size"] == [3, 3]


def test_cli_other_commands_json():
    for args in (("padding", "-k", "5", "-d", "2", "--in", "64", "--same"), ("rf", "conv3 s1, conv3 d2, pool2 s2"),
                 ("cost", "--in", "128x56x56", "--out-channels", "256", "-k", "3"),
                 ("padding", "-t", "-k", "4", "-s", "2", "--in", "16", "--out", "32")):
        result = run(*args, "--format", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["schema_version"] == 1
    assert "padding=4" in run("padding", "-k", "5", "-d", "2", "--in", "64", "--same").output


@pytest.mark.parametrize("args, message", [
    (("conv2d", "--in", "3x8x8x8x8", "-k", "3"), "error: --in '3x8x8x8x8' has 5 sizes"),
    (("conv2d", "--in", "3x8x8"), "error: Conv2d needs a kernel size"),
    (("conv2d", "--in", "3x5x5", "-k", "7"), "error: layer 'conv2d' (Conv2d): kernel_size 7"),
    (("conv1d", "--in", "100", "-k", "5", "-s", "3", "-p", "same"), "error: layer 'conv1d' (Conv1d): padding='same'"),
    (("maxpool2d", "--in", "8", "-k", "2", "--groups", "2"), "error: --groups does not apply to MaxPool2d"),
    (("conv2d", "--in", "3x8x8", "-k", "3", "-p", "bogus"), "error: --padding 'bogus' must be an integer"),
    (("padding", "-k", "3", "--in", "8", "--same", "--out", "8"), "error: give --same or --out N, not both"),
    (("rf", "conv3 s2 q1"), "error: 'q1' in 'conv3 s2 q1' is not an option"),
    (("rf", "dense3"), "error: 'dense3' must start with a layer"),
    (("rf", "conv3, conv9", "--in", "8"), "error: layer 2 'conv9' (Conv1d): kernel_size 9"),
    (("cost", "--in", "56", "-o", "8", "-k", "3"), "error: --in '56' must be C×spatial"),
])
def test_cli_errors_are_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_an_unknown_layer_is_a_usage_error():
    result = run("conv4d", "--in", "3x8x8", "-k", "3")
    assert result.exit_code == 2 and "No such command 'conv4d'" in result.stderr and "conv3d" in result.stderr
    with pytest.raises(ConvcalcError, match="unknown layer 'conv4d'; did you mean 'conv3d'"):
        one_layer("conv4d", "8", kernel_size="3")


def test_help_has_examples():
    for command in ("conv2d", "padding", "rf", "cost"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "convcalc calc" in result.output


def test_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "convcalc", "calc", "rf", "conv3, pool2 s2", "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [layer["size"] for layer in json.loads(done.stdout)["layers"]] == [[3], [4]]
    assert re.search(r"\bcalc\b", subprocess.run([sys.executable, "-m", "convcalc", "--help"], capture_output=True,
                                                 text=True, timeout=60).stdout)


def test_the_readme_shows_real_output():
    """Each whole example of the README's calculator section is what the command prints."""
    import shlex
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## The calculator: one-off questions\n(.*?)(?=^## )", text, re.S | re.M).group(1)
    checked = 0
    for block in re.findall(r"```\n(.*?)```", section, re.S):
        for example in re.split(r"^(?=\$ convcalc calc )", block, flags=re.M):
            command, _, shown = example.partition("\n")
            if not command.startswith("$ convcalc calc ") or "|" in command or "..." in shown:
                continue
            result = RUNNER.invoke(app, shlex.split(command)[2:])
            assert result.exit_code == 0, command
            assert [line.rstrip() for line in result.stdout.splitlines()] == shown.rstrip("\n").splitlines(), command
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize("args, message", [
    (["--out", "1000000000000000000000"],
     "error: --out '1000000000000000000000' is too large (at most 1,099,511,627,776)"),
    (["-s", "99999999999999999", "--transposed"], "error: --stride '99999999999999999' is too large (at most"),
])
def test_padding_refuses_sizes_past_the_layers_limit_in_one_line(args, message):
    """A target or stride past what a layer takes was a LayerArgError traceback from the answer's check."""
    result = RUNNER.invoke(app, ["calc", "padding", "-k", "3", "--in", "64", *args])
    assert result.exit_code == 2 and result.stderr.startswith(message), result.output


def test_padding_names_the_split_tf_same_only_when_the_size_is_same_s():
    """With --out the (lo, hi) pads are not TF SAME's (SAME gives ⌈in/s⌉, not 20 from 10): the column and the
    legend say 'asymmetric'; with --same (the default) they say TF SAME."""
    given = RUNNER.invoke(app, ["calc", "padding", "-k", "3", "--in", "10", "--out", "20"]).output
    assert "asymmetric (lo, hi)" in given and "TF SAME (lo, hi)" not in given
    assert "as TF SAME splits it" in " ".join(given.split())
    same = RUNNER.invoke(app, ["calc", "padding", "-k", "3", "--in", "10"]).output
    assert "TF SAME (lo, hi)" in same and "asymmetric" not in same
