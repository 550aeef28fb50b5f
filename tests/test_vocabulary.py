"""Issue 18 §7, one vocabulary: the commands that describe the same receptive field say the same thing.

1. coverage: one definition (the share of the input's area), the `rf` growth chart's "covers" and lint CC301 alike;
2. exact numbers: one way per format (text: `147/2`; JSON: the nearest double), one helper each;
3. `misaligned`: the merge whose own inputs differ, in the JSON, the analyze table (⚠) and CC206 alike;
4. CC206's advice on U-Nets: which decoder settings line up, checked against centres measured with torch autograd;
5. CC301 describes the classifier's pool, not a squeeze-and-excitation gate's;
6. a dilated stack failing CC203, CC204 and CC205 is one finding.

Expected values are computed here from the formulas (Araujo et al.'s r = 1 + sum (k_l - 1) prod s_j), from the
dependencies torch autograd measures, or by NumPy, never read from convcalc's output.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from rich.console import Console
from typer.testing import CliRunner

import convcalc
from convcalc.algebra.numbers import fraction_text, json_number, percent_text
from convcalc.analysis.coverage import coverage
from convcalc.analysis.regions import growth
from convcalc.cli import app
from convcalc.lint import LintConfig, lint_paths
from convcalc.lint.context import Context, number
from convcalc.lint.coverage import check_rf_coverage, output_field
from convcalc.report.summary import SCHEMA_VERSION, rf_texts, to_csv, to_json, to_table

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
ALL = LintConfig()


def write(tmp_path: Path, name: str, input_shape, layers, blocks=None) -> Path:
    path = tmp_path / f"{name}.yaml"
    data = {"name": name, "input": list(input_shape), "layers": layers}
    if blocks:
        data["blocks"] = blocks
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def findings(path: Path, config: LintConfig = ALL, rule: str | None = None):
    return [f for f in lint_paths([path], config).findings if rule is None or f.rule == rule]


def summary_of(path: Path, input_shape=None):
    return convcalc.analyze(convcalc.build_graph(convcalc.load_spec(path)), input_shape)


def rendered(renderable, width: int = 250) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# --------------------------------------------------------------------------- 1. coverage

def test_coverage_is_the_share_of_the_area_in_rf_and_lint(tmp_path):
    """A 4x4 then 3x3 conv on a 9x9 input: r = 1 + 3 + 2 = 6 per axis, 2/3 of each side, so 4/9 = 44.4 % of the
    area: the rf chart and CC301 say the same number."""
    spec = write(tmp_path, "cover", [1, 9, 9], [
        {"name": "a", "type": "Conv2d", "out_channels": 1, "kernel_size": 4},
        {"name": "b", "type": "Conv2d", "out_channels": 1, "kernel_size": 3}])
    summary = summary_of(spec)
    field = summary.layer("b").rf
    assert [axis.size for axis in field.axes] == [6, 6]
    assert coverage(field, (9, 9)) == Fraction(4, 9)
    assert growth(summary)[-1].area == Fraction(4, 9)
    (found,) = findings(spec, rule="CC301")
    assert found.message == "the receptive field of 'b' (the output) is 6x6, covering 44.4 % of the 9x9 input's area"
    result = CliRunner().invoke(app, ["rf", str(spec)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ b "))
    assert "44.4 %" in row
    data = json.loads(CliRunner().invoke(app, ["rf", str(spec), "--format", "json"]).stdout)
    assert data["growth"][-1]["coverage"] == pytest.approx(4 / 9)
    # the threshold is the same share: 4/9 passes at 0.44, not at 0.45
    assert findings(spec, LintConfig(rf_min_coverage=0.44), rule="CC301") == []
    assert len(findings(spec, LintConfig(rf_min_coverage=0.45), rule="CC301")) == 1


def test_coverage_of_uneven_axes_is_the_product(tmp_path):
    spec = write(tmp_path, "uneven", [1, 10, 20], [
        {"name": "a", "type": "Conv2d", "out_channels": 1, "kernel_size": [5, 5]}])
    # 5/10 * 5/20 = 1/8
    (found,) = findings(spec, rule="CC301")
    assert "is 5x5, covering 12.5 % of the 10x20 input's area" in found.message
    assert growth(summary_of(spec))[-1].area == Fraction(1, 8)


# --------------------------------------------------------------------------- 2. exact numbers

@pytest.mark.parametrize("value, text", [(Fraction(147, 2), "147/2"), (Fraction(-1, 2), "-1/2"), (Fraction(6, 2), "3"),
                                         (3, "3"), (Fraction(1, 3), "1/3"), (0.5, "1/2")])
def test_fraction_text(value, text):
    assert fraction_text(value) == text
    assert number(Fraction(value)) == text            # lint's messages write a field's numbers the same way


def test_json_and_percent_helpers():
    assert json_number(Fraction(147, 2)) == 73.5 and type(json_number(Fraction(4, 2))) is int
    assert [percent_text(x) for x in (0, 0.0004, Fraction(4, 9), 1)] == ["0 %", "<0.1 %", "44.4 %", "100.0 %"]


def test_a_fractional_field_is_written_alike_everywhere(tmp_path):
    """Nearest x2 upsampling after a 2-wide conv: stride 1/2, and padding / centre halves, in every text format
    as an exact fraction (never 0.5), in JSON as a number."""
    spec = write(tmp_path, "frac", [1, 16], [
        {"name": "c", "type": "Conv1d", "out_channels": 1, "kernel_size": 2},
        {"name": "up", "type": "Upsample", "scale_factor": 2, "mode": "nearest"},
        {"name": "c2", "type": "Conv1d", "out_channels": 1, "kernel_size": 2, "padding": [[0, 1]], "from": "up"},
        {"name": "wide", "type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "from": "up"},
        {"name": "sum", "type": "Add", "from": ["c2", "wide"]}])
    summary = summary_of(spec)
    (axis,) = summary.layer("up").rf.axes
    assert axis.stride == Fraction(1, 2)
    size, stride, padding = rf_texts(summary.layer("up").rf)
    assert stride == "1/2" and padding == fraction_text(axis.padding)
    csv_row = next(line for line in to_csv(summary).splitlines() if line.startswith("up,"))
    assert csv_row.split(",")[-2:] == ["1/2", fraction_text(axis.padding)]
    table = rendered(to_table(summary))
    assert "1/2" in table and "0.5" not in table
    data = to_json(summary)
    assert data["schema_version"] == SCHEMA_VERSION == 3
    up = next(layer for layer in data["layers"] if layer["name"] == "up")
    assert up["rf"]["stride"] == [0.5]
    # lint's CC206 states the centres the same way: the 2-wide conv after the upsampling centres half a unit
    # (1/4 of an input pixel) off the 3-wide padded one
    (found,) = findings(spec, rule="CC206")
    assert "0.5" not in found.message and "0.25" not in found.message and "/4" in found.message
    # the rf command's region table writes the centre exactly
    result = CliRunner().invoke(app, ["rf", str(spec), "--layer", "c", "--unit", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "7/2" in result.stdout and "3.5" not in result.stdout       # unit 3 of a 2-wide conv reads [3, 4]


# --------------------------------------------------------------------------- 3. misaligned: one meaning

def test_misaligned_marks_the_merge_only_in_json_table_and_lint(tmp_path):
    """A 3x3/2 padded path added to a 2x2/2 path (centres 0 and 1/2), then two convs and an aligned merge: only
    'add' is flagged, by the JSON, the table's ⚠ and CC206."""
    spec = write(tmp_path, "mis", [3, 32, 32], [
        {"name": "a", "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1,
         "from": "input"},
        {"name": "b", "type": "Conv2d", "out_channels": 4, "kernel_size": 2, "stride": 2, "from": "input"},
        {"name": "add", "type": "Add", "from": ["a", "b"]},
        {"name": "after", "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"name": "relu", "type": "ReLU"},
        {"name": "after2", "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "from": "add"},
        {"name": "join", "type": "Add", "from": ["relu", "after2"]}])
    summary = summary_of(spec)
    in_json = {layer["name"] for layer in to_json(summary)["layers"] if layer["rf"]["misaligned"]}
    table = rendered(to_table(summary))
    in_table = {line.split("│")[1].strip() for line in table.splitlines() if "⚠" in line and "│" in line}
    in_lint = {f.layer for f in findings(spec, rule="CC206")}
    assert in_json == in_table == in_lint == {"add"}
    rows = {row.name: row for row in growth(summary)}
    assert [name for name, row in rows.items() if row.misaligned] == ["add"]


def test_a_merge_after_a_misaligned_one_says_where_the_shift_comes_from(tmp_path):
    spec = write(tmp_path, "chain", [1, 32], [
        {"name": "a", "type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "from": "input"},
        {"name": "b", "type": "Conv1d", "out_channels": 1, "kernel_size": 2, "padding": [[1, 0]], "from": "input"},
        {"name": "first", "type": "Add", "from": ["a", "b"]},
        {"name": "second", "type": "Add", "from": ["first", "a"]}])
    messages = {f.layer: f.message for f in findings(spec, rule="CC206")}
    flagged = {layer["name"] for layer in to_json(summary_of(spec))["layers"] if layer["rf"]["misaligned"]}
    assert set(messages) == flagged
    assert "first" in messages and "It comes after" not in messages["first"]
    if "second" in messages:
        assert "It comes after the misaligned merge 'first'" in messages["second"]


# --------------------------------------------------------------------------- 4. CC206 and U-Nets

def centre_offset_by_autograd(encoder, decoder, length: int = 64) -> Fraction:
    """The mean over interior output units o of (centre of the input positions unit o depends on) - o, for a 1-D
    chain: ``encoder`` (('pool', k, s, p) or ('conv', k, s, p)) then a transposed conv ``decoder`` (k, s, p, op)
    of ones, measured by autograd (a positive input, positive weights: the gradient's support is the dependency)."""
    kind, k, s, p = encoder
    dk, ds, dp, dop = decoder
    x = torch.ones(1, 1, length, dtype=torch.float64, requires_grad=True)
    if kind == "pool":
        y = F.avg_pool1d(x, k, s, p)
    else:
        y = F.conv1d(x, torch.ones(1, 1, k, dtype=torch.float64), stride=s, padding=p)
    z = F.conv_transpose1d(y, torch.ones(1, 1, dk, dtype=torch.float64), stride=ds, padding=dp, output_padding=dop)
    offsets = []
    for unit in range(length // 4, length // 4 + 2 * ds):           # interior units, whole periods
        if x.grad is not None:
            x.grad = None
        z[0, 0, unit].backward(retain_graph=True)
        touched = np.flatnonzero(x.grad[0, 0].numpy())
        offsets.append(Fraction(int(touched.min()) + int(touched.max()), 2) - unit)
    return sum(offsets, Fraction(0)) / len(offsets)


def unet_spec(tmp_path: Path, down: dict, up: dict, name: str = "unet") -> Path:
    """A padded ('same') two-level U-Net: DoubleConv, a downsampling, DoubleConv, the decoder's upsampling, the skip
    concatenation, DoubleConv, a 1x1 head (Ronneberger et al.'s layout with padding 1)."""
    blocks = {"DoubleConv": {"args": {"channels": "required"}, "layers": [
        {"name": "conv1", "type": "Conv2d", "out_channels": "$channels", "kernel_size": 3, "padding": 1},
        {"name": "relu1", "type": "ReLU"},
        {"name": "conv2", "type": "Conv2d", "out_channels": "$channels", "kernel_size": 3, "padding": 1},
        {"name": "relu2", "type": "ReLU"}]}}
    layers = [
        {"name": "enc1", "type": "DoubleConv", "channels": 8},
        {"name": "down1", **down},
        {"name": "enc2", "type": "DoubleConv", "channels": 16},
        {"name": "down2", **({**down, "out_channels": 16} if down["type"] == "Conv2d" else down)},
        {"name": "enc3", "type": "DoubleConv", "channels": 32},
        {"name": "up2", "type": "ConvTranspose2d", "out_channels": 16, **up},
        {"name": "cat2", "type": "Concat", "from": ["enc2", "up2"]},
        {"name": "dec2", "type": "DoubleConv", "channels": 16},
        {"name": "up1", "type": "ConvTranspose2d", "out_channels": 8, **up},
        {"name": "cat1", "type": "Concat", "from": ["enc1", "up1"]},
        {"name": "dec1", "type": "DoubleConv", "channels": 8},
        {"name": "head", "type": "Conv2d", "out_channels": 2, "kernel_size": 1}]
    return write(tmp_path, name, [1, 64, 64], layers, blocks)


MAX_POOL = {"type": "MaxPool2d", "kernel_size": 2, "stride": 2}
CENTRED_CONV = {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1}


@pytest.mark.parametrize("down, encoder", [(MAX_POOL, ("pool", 2, 2, 0)), (CENTRED_CONV, ("conv", 3, 2, 1))],
                         ids=["maxpool", "centred-conv"])
@pytest.mark.parametrize("up", [{"kernel_size": 2, "stride": 2}, {"kernel_size": 4, "stride": 2, "padding": 1},
                                {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}],
                         ids=["k2", "k4p1", "k3p1op1"])
def test_cc206_on_unets_agrees_with_autograd(tmp_path, down, encoder, up):
    """Ronneberger et al.'s decoder (k2 s2, or k4 s2 p1) after a 2x2 max pool lines up with its skip; after a
    centred stride-2 conv only an odd kernel does. The skip at stride 1 has centre offset 0; the decoder's offset
    is measured by autograd on a one-level 1-D chain (the same arithmetic per axis, and per level)."""
    decoder = (up["kernel_size"], up["stride"], up.get("padding", 0), up.get("output_padding", 0))
    aligned = centre_offset_by_autograd(encoder, decoder) == 0
    spec = unet_spec(tmp_path, down, up)
    found = findings(spec, rule="CC206")
    assert (found == []) == aligned, [f.message for f in found]
    if aligned:
        assert findings(spec, rule="CC202") == [] or decoder[0] % 2       # the textbook decoders are even too
        return
    # the advice names settings that autograd confirms
    message = found[0].message
    assert "To line them up" in message and found[0].layer == "cat2"
    if encoder[0] == "pool":
        assert "a transposed conv of stride 2 with kernel 2 padding 0 or kernel 4 padding 1" in message
        for setting in ((2, 2, 0, 0), (4, 2, 1, 0)):
            assert centre_offset_by_autograd(encoder, setting) == 0
    else:
        assert ("only a kernel that overlaps unevenly does (kernel 3 padding 1 output_padding 1 (uneven overlap,"
                " CC202))") in message
        assert "rather centre the downsampling 'down2' between input positions" in message
        assert centre_offset_by_autograd(encoder, (3, 2, 1, 1)) == 0
        assert centre_offset_by_autograd(("conv", 2, 2, 0), (2, 2, 0, 0)) == 0          # what it suggests
        assert centre_offset_by_autograd(("conv", 4, 2, 1), (4, 2, 1, 0)) == 0


def test_the_textbook_unets_are_clean():
    """The shipped U-Net (valid convs, crop, k2 s2 up-convolutions) has no CC206 and no CC202."""
    assert [f for f in lint_paths([SPECS / "unet.yaml"], ALL).findings if f.rule in ("CC202", "CC206")] == []


# --------------------------------------------------------------------------- 5. CC301 and squeeze-and-excitation

def araujo(layers) -> int:
    """r = 1 + sum_l (k_l - 1) prod_{j<l} s_j over (kernel, stride) pairs (Araujo et al., Distill 2019)."""
    size, jump = 1, 1
    for k, s in layers:
        size += (k - 1) * jump
        jump *= s
    return size


def test_se_gate_is_not_the_classifiers_pool(tmp_path):
    spec = write(tmp_path, "se", [3, 16, 16], [
        {"name": "c1", "type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"name": "squeeze", "type": "AdaptiveAvgPool2d", "output_size": 1},
        {"name": "fc", "type": "Conv2d", "out_channels": 8, "kernel_size": 1},
        {"name": "gate", "type": "Sigmoid"},
        {"name": "scale", "type": "Multiply", "from": ["c1", "gate"]},
        {"name": "c2", "type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"name": "pool", "type": "AdaptiveAvgPool2d", "output_size": 1},
        {"name": "flat", "type": "Flatten"},
        {"name": "head", "type": "Linear", "out_features": 10}])
    (found,) = findings(spec, rule="CC301")
    # two 3x3 convs: 5x5, 25/256 = 9.8 % of the area, gathered by the classifier's pool
    assert found.message.startswith("the receptive field of 'c2' (gathered by 'pool') is 5x5, covering 9.8 % of the"
                                    " 16x16 input's area; the global pools multiplied back into the map by 1 gate")
    assert found.layer == "c2"


EFFICIENTNET_B0 = [(3, 2)] + [(3, 1)] + [(3, 2), (3, 1)] + [(5, 2), (5, 1)] + [(3, 2)] + [(3, 1)] * 2 + [(5, 1)] * 3 \
    + [(5, 2)] + [(5, 1)] * 3 + [(3, 1)]
MOBILENET_V3_LARGE = [(3, 2), (3, 1), (3, 2), (3, 1), (5, 2), (5, 1), (5, 1), (3, 2)] + [(3, 1)] * 5 \
    + [(5, 2), (5, 1), (5, 1)]
REGNET_Y_400MF = [(3, 2)] + [(3, 2)] + [(3, 2)] + [(3, 1)] * 2 + [(3, 2)] + [(3, 1)] * 5 + [(3, 2)] + [(3, 1)] * 5


@pytest.mark.parametrize("name, chain, layer", [
    ("efficientnet_b0", EFFICIENTNET_B0, "features.8.2"),
    ("mobilenet_v3_large", MOBILENET_V3_LARGE, "features.16.2"),
    ("regnet_y_400mf", REGNET_Y_400MF, "trunk_output.block4.block4-5.activation"),
])
def test_cc301_of_se_networks_is_the_final_pools(name, chain, layer):
    """The spatial kernels and strides of the main path (stem, then each block's depthwise/grouped conv), from the
    papers' tables: EfficientNet-B0 851, MobileNetV3-Large 595, RegNetY-400MF 575. At 224 the field covers the
    input (no CC301, whatever the SE gates); at 1024 CC301 is about the final pool's input."""
    size = araujo(chain)
    assert size == {"efficientnet_b0": 851, "mobilenet_v3_large": 595, "regnet_y_400mf": 575}[name]
    assert [f for f in lint_paths([SPECS / f"{name}.yaml"], ALL).findings if f.rule == "CC301"] == []
    spec = convcalc.load_spec(SPECS / f"{name}.yaml")
    summary = convcalc.analyze(convcalc.build_graph(spec), (3, 1024, 1024))
    ctx = Context(name, spec, summary)
    where, gatherer, field, gated = output_field(ctx)
    assert (where, gatherer) == (layer, "avgpool") and gated
    assert [axis.size for axis in field.axes] == [size, size]
    (found,) = check_rf_coverage(ctx)
    percent = percent_text(Fraction(size, 1024) ** 2)
    assert found.message.startswith(f"the receptive field of '{layer}' (gathered by 'avgpool') is {size}x{size},"
                                    f" covering {percent} of the 1024x1024 input's area")


# --------------------------------------------------------------------------- 6. one finding per dilated stack

def holes_by_numpy(layers) -> list[int]:
    reached = np.ones(1)
    for kernel, dilation in layers:
        mask = np.zeros(dilation * (kernel - 1) + 1)
        mask[::dilation] = 1
        reached = np.convolve(reached, mask)
    return [int(i) for i in np.flatnonzero(reached == 0)]


def test_dilation_2_then_4_is_one_finding(tmp_path):
    spec = write(tmp_path, "d24", [4, 64, 64], [
        {"name": "d2", "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "dilation": 2, "padding": 2},
        {"name": "relu", "type": "ReLU"},
        {"name": "d4", "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "dilation": 4, "padding": 4}])
    holes = holes_by_numpy([(3, 2), (3, 4)])
    assert holes == [1, 3, 5, 7, 9, 11]                     # {0, 2, 4} + {0, 4, 8}: the even offsets 0..12
    gridding = [f for f in findings(spec) if f.rule in ("CC203", "CC204", "CC205")]
    assert len(gridding) == 1
    (found,) = gridding
    assert found.rule == "CC203" and found.layer == "d4"
    assert found.message == (
        "layer 'd4' (Conv2d), dilated stack: height and width: rates 2, 4 of 'd2', 'd4' share the factor 2: a unit"
        " sees only input positions 2 apart; also CC204 (HDC): height and width: rates 2, 4 give M_2 = 4 > kernel 3"
        " (Wang et al. 2018); CC205 (holes): height and width: a unit reaches 7 of the 13 positions its field spans"
        " in the input of 'd2': 6 holes, at offsets 1, 3, 5, 7, 9, ...")
    # with CC203 ignored the stack is still reported once, under the next rule; with only CC205 selected, alone
    (hdc,) = [f for f in findings(spec, LintConfig(ignore=("CC203",))) if f.rule.startswith("CC20")]
    assert hdc.rule == "CC204" and "also CC205 (holes)" in hdc.message and "CC203" not in hdc.message
    (holes_only,) = findings(spec, LintConfig(select=("CC205",)))
    assert holes_only.rule == "CC205" and "also" not in holes_only.message
