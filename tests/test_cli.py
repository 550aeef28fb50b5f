"""The command line: formats, the JSON contract, exit codes and exact error lines."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "specs" / "tiny.yaml")
RESNET50 = str(ROOT / "specs" / "resnet50.yaml")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str):
    return runner.invoke(app, list(args))


def test_json_contract_and_hand_computed_numbers(runner):
    result = run(runner, "analyze", TINY, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema_version"] == 3
    assert data["name"] == "tiny"
    assert data["input_shape"] == [3, 32, 32]
    assert data["output_shape"] == [10]
    layers = {layer["name"]: layer for layer in data["layers"]}
    for layer in data["layers"]:
        assert set(layer) >= {"name", "type", "inputs", "output_shape", "params", "macs", "flops", "rf"}
        assert set(layer["rf"]) >= {"size", "size_min", "stride", "padding"}
        assert layer["flops"] == 2 * layer["macs"]
    # conv 3->16 3x3 pad 1 on 32x32: params 16*3*9+16, MACs 16*32*32 outputs * 3*9
    assert layers["conv2d_1"]["params"] == 448
    assert layers["conv2d_1"]["macs"] == 16 * 32 * 32 * 27
    assert layers["c2"]["output_shape"] == [16, 16, 16]
    assert layers["add_1"]["inputs"] == ["pool1", "c2"]
    # receptive fields (Araujo et al. recurrences, by hand): conv3 p1 -> r3 S1 P1; pool2 -> r4 S2 P1;
    # conv3 p1 -> r 4+2*2=8, S2, P 1+1*2=3; at the Add every unit sees the union [2u-3, 2u+4] of [2u-1, 2u+2]
    # (pool1) and [2u-3, 2u+4] (c2): 8; the paths' widest (8, through c2) and narrowest (4, pool1 alone)
    assert layers["c2"]["rf"] == {"whole_input": False, "size": [8, 8], "size_min": [8, 8], "stride": [2, 2],
                                  "padding": [3, 3], "aligned": True, "misaligned": False,
                                  "path_size_max": [8, 8], "path_size_min": [8, 8],
                                  "max_path_prev": "pool1", "min_path_prev": "pool1"}
    add = layers["add_1"]["rf"]
    assert (add["size"], add["size_min"], add["path_size_max"], add["path_size_min"]) == ([8, 8],) * 3 + ([4, 4],)
    assert (add["min_path_prev"], add["max_path_prev"]) == ("pool1", "c2")

    def path(name: str, key: str) -> list[str]:      # schema 2: a path is its layers' *_path_prev links followed back
        names = []
        while name is not None:
            names.append(name)
            name = layers[name]["rf"][key]
        return names[::-1]

    assert path("add_1", "min_path_prev") == ["conv2d_1", "relu_1", "pool1", "add_1"]
    assert path("add_1", "max_path_prev")[-2:] == ["c2", "add_1"]
    assert path("conv2d_1", "max_path_prev") == ["conv2d_1"] and layers["conv2d_1"]["rf"]["max_path_prev"] is None
    assert layers["linear_1"]["rf"]["whole_input"] is True
    assert layers["linear_1"]["rf"]["stride"] is None
    totals = data["totals"]
    assert totals["params"] == 448 + (16 * 16 * 9 + 16) + (16 * 16 * 16 * 10 + 10)
    for key in ("params", "macs", "flops", "buffers", "trainable_params"):
        assert totals[key] == sum(layer[key] for layer in data["layers"]), key


def test_totals_equal_row_sums_on_resnet50(runner):
    data = json.loads(run(runner, "analyze", RESNET50, "-f", "json").stdout)
    for key in ("params", "macs", "flops", "buffers", "activations"):
        assert data["totals"][key] == sum(layer[key] for layer in data["layers"]), key
    # BatchNorm buffers: running_mean + running_var per channel, plus one num_batches_tracked each
    bn = [layer for layer in data["layers"] if layer["type"] == "BatchNorm2d"]
    assert data["totals"]["buffers"] == sum(2 * layer["output_shape"][0] + 1 for layer in bn)


def test_table_output(runner):
    result = run(runner, "analyze", TINY)
    assert result.exit_code == 0
    out = result.stdout
    assert "tiny: input 3×32×32 → output 10" in out
    assert "whole input" in out
    assert "43,738" in out  # 448 + 2,320 + 40,970
    assert "MACs" in out and "FLOPs" in out and "peak" in out


def test_markdown_and_csv(runner):
    md = run(runner, "analyze", TINY, "--format", "markdown").stdout
    assert md.startswith("### tiny\n")
    assert "| name | type | output shape | params | MACs | RF size | RF stride | RF padding |" in md
    assert "| c2 | Conv2d | 16×16×16 | 2,320 | 589,824 | 8 | 2 | 3 |" in md
    rows = list(csv.DictReader(io.StringIO(run(runner, "analyze", TINY, "--format", "csv").stdout)))
    assert [r["name"] for r in rows] == ["conv2d_1", "relu_1", "pool1", "c2", "add_1", "flatten_1", "linear_1"]
    assert rows[3]["output_shape"] == "16x16x16" and rows[3]["rf_size"] == "8x8"
    assert rows[4]["rf_size_min"] == "8x8"
    assert rows[6]["rf_size"] == "whole"


def test_input_size_override(runner):
    data = json.loads(run(runner, "analyze", RESNET50, "--input-size", "3x512x512", "-f", "json").stdout)
    assert data["input_shape"] == [3, 512, 512]
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers["layer4.2.conv3"]["output_shape"] == [2048, 16, 16]  # 512 / 32
    assert data["output_shape"] == [1000]


def test_depth_folds_blocks(runner):
    rows = list(csv.DictReader(io.StringIO(run(runner, "analyze", RESNET50, "--depth", "1", "-f", "csv").stdout)))
    assert [r["name"] for r in rows] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                        "avgpool", "flatten", "fc"]
    assert rows[4]["type"] == "Bottleneck ×3"
    assert rows[7]["output_shape"] == "2048x7x7"
    full = json.loads(run(runner, "analyze", RESNET50, "-f", "json").stdout)
    assert sum(int(r["params"]) for r in rows) == full["totals"]["params"]
    assert sum(int(r["macs"]) for r in rows) == full["totals"]["macs"]
    depth2 = list(csv.DictReader(io.StringIO(run(runner, "analyze", RESNET50, "-d", "2", "-f", "csv").stdout)))
    assert [r["name"] for r in depth2 if r["name"].startswith("layer2")] == [f"layer2.{i}" for i in range(4)]


def test_set_overrides_top_level_args(runner):
    data = json.loads(run(runner, "analyze", RESNET50, "--set", "num_classes=10", "-f", "json").stdout)
    assert data["output_shape"] == [10]
    result = run(runner, "analyze", RESNET50, "--set", "classes=10")
    assert result.exit_code == 2
    assert "the spec has no argument 'classes'" in result.stderr


def test_bad_spec_is_one_line_and_exit_2(runner, tmp_path):
    spec = tmp_path / "x.yaml"
    spec.write_text("input: [3, 7, 7]\nlayers:\n  - {type: Conv2d, out_channels: 8, kernel_size: 3}\n"
                    "  - {type: Conv2d, name: c3, out_channels: 8, kernel_size: 5, dilation: 2}\n")
    result = run(runner, "analyze", str(spec))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (f"error: {spec}:4:47: layer 'c3' (Conv2d): kernel_size 5 with dilation 2 spans 9,"
                             " but the padded input is 5 wide along the height\n")
    assert "Traceback" not in result.output


def test_missing_file_and_bad_options(runner, tmp_path):
    result = run(runner, "analyze", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert result.stderr == f"error: no such spec file: {tmp_path / 'nope.yaml'}\n"
    result = run(runner, "analyze", TINY, "--input-size", "3xtwo")
    assert result.exit_code == 2
    assert result.stderr == "error: input size '3xtwo' must be 1 to 4 positive integers such as 3x224x224\n"
    result = run(runner, "analyze", TINY, "--format", "yaml")
    assert result.exit_code == 2  # click's usage error


def test_input_size_that_breaks_the_network_is_a_clean_error(runner):
    # ResNet-50 accepts even 1x1 (as PyTorch does); tiny's 2x2 max pool cannot pool a 1x1 map
    assert run(runner, "analyze", RESNET50, "--input-size", "3x1x1").exit_code == 0
    result = run(runner, "analyze", TINY, "--input-size", "3x1x1")
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(open(TINY).read().splitlines(), 1) if "name: pool1" in text)
    # the size is the option's fault (Issue 18): said first, the spec's line where it fails kept, and what works
    assert result.stderr.startswith(f"error: --input-size 3x1x1 is a size the network cannot take: {TINY}:{line}:23:"
                                    " layer 'pool1' (MaxPool2d): kernel_size 2 spans 2, but the padded input is 1 wide"
                                    " along the height: the output would be empty")
    assert result.stderr.endswith("; pass --input-size 3x2x2 (or any size that works)\n")
    assert "Traceback" not in result.output


def test_version_and_layers_listing(runner):
    assert run(runner, "--version").stdout.startswith("convcalc ")
    listing = run(runner, "layers", "--long").stdout       # one line a type (the default groups 1-D/2-D/3-D)
    for name in ("Conv2d", "MaxPool3d", "AdaptiveAvgPool2d", "BatchNorm1d", "Concat"):
        assert name in listing
    assert "MaxPool1d/2d/3d" in run(runner, "layers").stdout
    conv = run(runner, "layers", "conv2d").stdout
    assert "padding_mode" in conv and "required" in conv
    result = run(runner, "layers", "conv2")
    assert result.exit_code == 2 and "did you mean" in result.stderr


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "convcalc", "analyze", TINY, "-f", "json"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output_shape"] == [10]


def test_depth_must_be_positive_and_handles_bypassed_groups(runner, tmp_path):
    assert run(runner, "analyze", TINY, "--depth", "0").exit_code == 2
    spec = tmp_path / "bypass.yaml"
    spec.write_text("input: [3, 8, 8]\nblocks:\n  B: {layers: [{type: ReLU, when: false}, {type: ReLU}], output: input}\n"
                    "layers:\n  - {type: B, name: b}\n  - {type: Conv2d, out_channels: 2, kernel_size: 1}\n")
    result = run(runner, "analyze", str(spec), "--depth", "1", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert "b,B,3x8x8" in result.stdout


def test_user_text_is_never_read_as_markup(runner, tmp_path):
    spec = tmp_path / "markup.yaml"
    spec.write_text('input: [3, 8, 8]\nlayers:\n  - {type: Conv2d, "[/]": 3}\n')
    result = run(runner, "analyze", str(spec))
    assert result.exit_code == 2
    assert "unknown argument '[/]' for Conv2d" in result.stderr
    named = tmp_path / "named.yaml"
    named.write_text("name: '[bold]net'\ninput: [3, 8, 8]\nlayers: [{type: ReLU}]\n")
    assert "[bold]net: input" in run(runner, "analyze", str(named)).stdout


def test_set_with_invalid_yaml_is_a_clean_error(runner):
    result = run(runner, "analyze", RESNET50, "--set", "num_classes=[")
    assert result.exit_code == 2
    assert result.stderr == "error: --set num_classes: the value '[' is not valid YAML\n"


def test_input_size_is_parsed_strictly(runner):
    for text in ("3x64x64x", "", "x3"):
        assert run(runner, "analyze", TINY, "--input-size", text).exit_code == 2, text


def test_spec_from_standard_input(runner):
    result = runner.invoke(app, ["analyze", "-", "-f", "json"], input=Path(TINY).read_text())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output_shape"] == [10]


def test_numbers_are_never_cut_in_a_narrow_terminal():
    from rich.console import Console

    import convcalc
    from convcalc.report.summary import to_table

    console = Console(width=70, record=True, force_terminal=True)
    console.print(to_table(convcalc.analyze(convcalc.load_spec(RESNET50)), depth=1))
    text = console.export_text()
    assert "118,013,952" in text and "14,964,736" in text
