"""Errors that point at the cause (issue 18 §6) and help texts (§5): every message pinned exactly, through the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def error(runner: CliRunner, *args: str, code: int = 2) -> str:
    """The stderr of a command that fails with ``code``."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stderr


# ----------------------------------------------------------------------------- 1. a merge broken by dropped pixels

UNET = """
    input: [3, 65, 65]
    layers:
      - {name: enc, type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}
      - {name: down, type: MaxPool2d, kernel_size: 2}
      - {name: mid, type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}
      - {name: up, type: Upsample, scale_factor: 2}
      - {name: cat, type: Concat, from: [enc, up]}
    """


def test_merge_error_names_its_inputs_and_the_layer_that_dropped_pixels(runner, tmp_path):
    spec = write(tmp_path, UNET)
    assert error(runner, "analyze", spec) == (
        f"error: {spec}:7:31: layer 'cat' (Concat): Concat along dim 1 needs the other axes equal, got 'enc'"
        " [8, 65, 65], 'up' [8, 64, 64]; the cause: layer 'down' (MaxPool2d) dropped the last row and the last"
        " column of its 65x65 input ((65 + 0 + 0 - 2) mod 2 = 1) (lint rule CC201)\n")


def test_add_error_names_its_inputs_and_the_cause(runner, tmp_path):
    spec = write(tmp_path, """
        input: [3, 32, 33]
        layers:
          - {name: stem, type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}
          - {name: conv, type: Conv2d, out_channels: 8, kernel_size: 2, stride: 2}
          - {name: up, type: ConvTranspose2d, out_channels: 8, kernel_size: 2, stride: 2}
          - {name: sum, type: Add, from: [stem, up]}
        """)
    assert error(runner, "analyze", spec) == (
        f"error: {spec}:6:28: layer 'sum' (Add): Add cannot broadcast 'stem' [8, 32, 33], 'up' [8, 32, 32]: the"
        " sizes along dim 3 (the batch is dim 0) must be equal or 1, got 33, 32; the cause: layer 'conv' (Conv2d)"
        " dropped the last column of its 32x33 input ((33 + 0 + 0 - 2) mod 2 = 1) (lint rule CC201)\n")


def test_merge_error_without_dropped_pixels_names_only_the_inputs(runner, tmp_path):
    spec = write(tmp_path, """
        input: [3, 8, 8]
        layers:
          - {name: a, type: Conv2d, out_channels: 4, kernel_size: 1}
          - {name: b, type: Conv2d, from: input, out_channels: 5, kernel_size: 1}
          - {type: Add, from: [a, b]}
        """)
    assert error(runner, "analyze", spec) == (
        f"error: {spec}:5:17: layer 'add_1' (Add): Add cannot broadcast 'a' [4, 8, 8], 'b' [5, 8, 8]: the sizes"
        " along dim 1 (the batch is dim 0) must be equal or 1, got 4, 5\n")


def test_lint_reports_the_root_cause_where_it_is(runner, tmp_path):
    spec = write(tmp_path, UNET)
    result = runner.invoke(app, ["lint", spec, "--format", "json"])
    assert result.exit_code == 1
    findings = [(f["rule"], f["line"], f["message"]) for f in json.loads(result.stdout)["findings"]]
    assert findings == [
        ("CC201", 4, "layer 'down' (MaxPool2d): the last row and the last column of its 65x65 input never reach the"
                     " output: (i + pad_lo + pad_hi - k_eff) mod stride = (65 + 0 + 0 - 2) mod 2 = 1; it breaks"
                     " the merge 'cat' (CC102)"),
        ("CC102", 7, "layer 'cat' (Concat): Concat along dim 1 needs the other axes equal, got 'enc' [8, 65, 65],"
                     " 'up' [8, 64, 64]; the cause: layer 'down' (MaxPool2d) dropped the last row and the last"
                     " column of its 65x65 input ((65 + 0 + 0 - 2) mod 2 = 1) (lint rule CC201)"),
    ]


# ----------------------------------------------------------------------------- 2. an input the network cannot take

UNET2 = """
    input: [3, 64, 64]
    layers:
      - {name: enc, type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}
      - {name: down, type: MaxPool2d, kernel_size: 2}
      - {name: enc2, type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}
      - {name: down2, type: MaxPool2d, kernel_size: 2}
      - {name: up2, type: Upsample, scale_factor: 2}
      - {name: cat2, type: Concat, from: [enc2, up2]}
      - {name: up, type: Upsample, scale_factor: 2}
      - {name: cat, type: Concat, from: [enc, up]}
    """


def image(tmp_path: Path, height: int, width: int) -> str:
    import numpy as np
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(np.full((height, width, 3), 128, dtype=np.uint8)).save(path)
    return str(path)


def test_run_on_an_image_of_a_size_the_network_cannot_take_says_so(runner, tmp_path):
    spec, photo = write(tmp_path, UNET2), image(tmp_path, 65, 65)
    assert error(runner, "run", spec, "--input", photo) == (
        f"error: the input is 3x65x65 ({photo}), a size the network cannot take: layer 'cat' (Concat): Concat along"
        " dim 1 needs the other axes equal, got 'enc' [8, 65, 65], 'up' [16, 64, 64]; the cause: layer 'down'"
        " (MaxPool2d) dropped the last row and the last column of its 65x65 input ((65 + 0 + 0 - 2) mod 2 = 1)"
        " (lint rule CC201); sizes that work: the nearest 64x64 and 68x68 (multiples of 4, the network's total"
        " stride), the smallest 4x4; pass --resize 64x64 (or any size that works) to resize the image\n")


def test_run_resized_to_a_size_the_network_cannot_take(runner, tmp_path):
    spec = write(tmp_path, UNET2)
    assert error(runner, "run", spec, "--resize", "30x30") == (
        "error: the resized input is 3x30x30, a size the network cannot take: layer 'cat2' (Concat): Concat along"
        " dim 1 needs the other axes equal, got 'enc2' [8, 15, 15], 'up2' [8, 14, 14]; the cause: layer 'down2'"
        " (MaxPool2d) dropped the last row and the last column of its 15x15 input ((15 + 0 + 0 - 2) mod 2 = 1)"
        " (lint rule CC201); sizes that work: the nearest 28x28 and 32x32 (multiples of 4, the network's total"
        " stride), the smallest 4x4; pass --resize 28x28 (or any size that works) to resize the built-in image\n")


def test_rf_on_an_image_of_a_size_the_network_cannot_take_names_input_size(runner, tmp_path):
    spec, photo = write(tmp_path, UNET2), image(tmp_path, 66, 62)
    message = error(runner, "rf", spec, "--input", photo, "--overlay", str(tmp_path / "o.png"))
    assert message.startswith(f"error: the input is 3x66x62 ({photo}), a size the network cannot take: layer 'cat2'")
    assert message.endswith("sizes that work: the nearest 64x60 and 68x64 (multiples of 4, the network's total"
                            " stride), the smallest 4x4; pass --input-size 3x64x60 (or any size that works)\n")


@pytest.mark.parametrize("command", ["analyze", "rf"])
def test_input_size_without_the_channels_points_at_the_option(runner, tmp_path, command):
    spec = write(tmp_path, UNET2)
    assert error(runner, command, spec, "--input-size", "300x300") == (
        "error: --input-size 300x300 has 2 axes, but the spec's input 3x64x64 has 3 (channels first, no batch); did"
        " you mean --input-size 3x300x300?\n")
    assert error(runner, command, spec, "--input-size", "1x3x64x64") == (
        "error: --input-size 1x3x64x64 has 4 axes, but the spec's input 3x64x64 has 3 (channels first, no batch)\n")


# ----------------------------------------------------------------------------- 3. YAML syntax errors

@pytest.mark.parametrize("text, expected", [
    ("input: [3, 32, 32]\nlayers:\n  - type: Conv2d\n      out_channels: 8\n    kernel_size: 3\n",
     "net.yaml:4:7: invalid YAML: 'out_channels' is indented more than 'type' on line 3 (column 7, not 5): the keys"
     " of one layer line up in one column\n"
     "  4 |       out_channels: 8\n"
     "    |       ^\n"),
    ("input: [3, 32, 32]\nlayers:\n  - type: Conv2d\n  out_channels: 8\n  kernel_size: 3\n",
     "net.yaml:4:3: invalid YAML: 'out_channels' stands under the '-' of line 3, so it is not one of that layer's"
     " keys: indent it to column 5, under 'type'\n"
     "  4 |   out_channels: 8\n"
     "    |   ^\n"),
    ("input: [3, 32, 32]\nlayers:\n  -\n  type: Conv2d\n  out_channels: 8\n",          # a '-' alone, keys under it
     "net.yaml:4:3: invalid YAML: 'type' stands under the '-' of line 3, which is alone on its line: that list item"
     " is empty and 'type' is not one of its keys; write '- type: ...' on one line, or indent 'type' and the keys"
     " below it to column 5\n"
     "  4 |   type: Conv2d\n"
     "    |   ^\n"),
    ("input: [3, 32, 32]\nlayers:\n  - type: Conv2d\n    out_channels: 8\n   kernel_size: 3\n",
     "net.yaml:5:4: invalid YAML: 'kernel_size' is indented less than 'out_channels' on line 4 (column 4, not 5):"
     " the keys of one layer line up in one column\n"
     "  5 |    kernel_size: 3\n"
     "    |    ^\n"),
    ("input: [3, 32, 32]\nlayers:\n  - type: Conv2d\n\tout_channels: 8\n",
     "net.yaml:4:1: invalid YAML: a tab character; YAML indents with spaces only: replace the tab with spaces\n"
     "  4 | →out_channels: 8\n"
     "    | ^\n"),
    ("input: [3, 32, 32]\nlayers:\n  - {type: Conv2d, out_channels: 8, kernel_size: [3, 3}\n",
     "net.yaml:3:50: invalid YAML: the '[' opened here is never closed: 3:55 has '}' where a ',' or ']' should be"
     " (a list is written [3, 3], a mapping {type: ReLU})\n"
     "  3 |   - {type: Conv2d, out_channels: 8, kernel_size: [3, 3}\n"
     "    |                                                  ^\n"),
    ("input: [3, 32, 32\nlayers:\n  - {type: Conv2d, out_channels: 8, kernel_size: 3}\n",     # noticed on line 2
     "net.yaml:1:8: invalid YAML: the '[' opened here is never closed: 2:7 has ':' where a ',' or ']' should be"
     " (a list is written [3, 3], a mapping {type: ReLU})\n"
     "  1 | input: [3, 32, 32\n"
     "    |        ^\n"),
])
def test_yaml_syntax_errors_point_at_the_mistake_with_the_line_and_a_caret(runner, tmp_path, text, expected):
    spec = tmp_path / "net.yaml"
    spec.write_text(text, encoding="utf-8")
    assert error(runner, "analyze", str(spec)) == f"error: {tmp_path}/{expected}"


def test_the_advice_for_keys_under_a_bare_dash_gives_a_valid_spec(runner, tmp_path):
    # both repairs the message offers (keys on the '-' line, or indented to column 5) load as the layer meant
    for fixed in ("input: [3, 32, 32]\nlayers:\n  - type: Conv2d\n    out_channels: 8\n    kernel_size: 3\n",
                  "input: [3, 32, 32]\nlayers:\n  -\n    type: Conv2d\n    out_channels: 8\n    kernel_size: 3\n"):
        result = runner.invoke(app, ["analyze", write(tmp_path, fixed), "--format", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["layers"][0]["output_shape"] == [8, 30, 30]


def test_yaml_syntax_error_is_one_line_in_lint_and_the_library(runner, tmp_path):
    import convcalc
    from convcalc.errors import SpecError

    spec = write(tmp_path, "input: [3, 32, 32]\nlayers:\n  - type: Conv2d\n  out_channels: 8\n")
    with pytest.raises(SpecError) as info:
        convcalc.load_spec(spec)
    assert str(info.value) == (f"{spec}:4:3: invalid YAML: 'out_channels' stands under the '-' of line 3, so it is"
                               " not one of that layer's keys: indent it to column 5, under 'type'")
    result = runner.invoke(app, ["lint", spec, "--format", "json"])
    assert [f["message"] for f in json.loads(result.stdout)["findings"]] == [str(info.value).split(": ", 1)[1]]


# ----------------------------------------------------------------------------- 4. did you mean

LISTING = "`convcalc layers` lists all 115 layer types"


def layer_error(runner, tmp_path, layer: str, input_shape: str = "[3, 32, 32]") -> str:
    spec = write(tmp_path, f"input: {input_shape}\nlayers:\n  - {{{layer}}}\n")
    message = error(runner, "analyze", spec)
    assert message.startswith(f"error: {spec}:3:")
    return message.split(": ", 2)[2].rstrip("\n")


@pytest.mark.parametrize("layer, expected", [
    ("type: Conv2DTranspose", "unknown layer type 'Conv2DTranspose'; did you mean 'ConvTranspose2d'? {listing}"),
    ("type: BatchNorm", "unknown layer type 'BatchNorm'; did you mean 'BatchNorm2d'? {listing}"),
    ("type: MaxPooling2D",
     "unknown layer type 'MaxPooling2D'; did you mean 'MaxPool2d' (Keras' pool_size is kernel_size)? {listing}"),
    ("type: AveragePooling2D",
     "unknown layer type 'AveragePooling2D'; did you mean 'AvgPool2d' (Keras' pool_size is kernel_size)? {listing}"),
    ("type: BatchNormalization", "unknown layer type 'BatchNormalization'; did you mean 'BatchNorm2d'? {listing}"),
    ("type: Dense", "unknown layer type 'Dense'; did you mean 'Linear' (Keras' units is out_features)? {listing}"),
    ("type: GlobalAveragePooling2D", "unknown layer type 'GlobalAveragePooling2D'; did you mean 'GlobalAvgPool'"
                                     " (then Flatten: Keras' also flattens)? {listing}"),
    ("type: UpSampling2D",
     "unknown layer type 'UpSampling2D'; did you mean 'Upsample' (Keras' size: 2 is scale_factor: 2)? {listing}"),
    ("type: DepthwiseConv2D", "unknown layer type 'DepthwiseConv2D'; did you mean 'Conv2d' (with groups equal to its"
                              " in_channels; out_channels = in_channels x depth_multiplier)? {listing}"),
    ("type: ZeroPadding2D", "unknown layer type 'ZeroPadding2D'; did you mean 'ZeroPad2d'? {listing}"),
    ("type: Activation", "unknown layer type 'Activation'; Keras' Activation is the activation's own type here: ReLU,"
                         " Sigmoid, Tanh, Softmax, GELU, SiLU, ...; {listing}"),
    ("type: MaxPool", "unknown layer type 'MaxPool'; did you mean 'MaxPool2d'? {listing}"),
])
def test_did_you_mean_knows_keras_and_prefers_the_specs_dimensionality(runner, tmp_path, layer, expected):
    assert layer_error(runner, tmp_path, layer) == expected.format(listing=LISTING)


def test_did_you_mean_follows_the_specs_dimensionality(runner, tmp_path):
    assert layer_error(runner, tmp_path, "type: BatchNorm", "[3, 32]") == \
        f"unknown layer type 'BatchNorm'; did you mean 'BatchNorm1d'? {LISTING}"
    assert layer_error(runner, tmp_path, "type: Conv3DTranspose", "[3, 8, 8, 8]") == \
        f"unknown layer type 'Conv3DTranspose'; did you mean 'ConvTranspose3d'? {LISTING}"


CONV_ARGS = ("algorithm, bias, dilation, flip_kernel, groups, in_channels, kernel_size, out_channels, padding,"
             " padding_mode, stride")


@pytest.mark.parametrize("layer, expected", [
    ("type: Conv2d, filters: 8, kernel_size: 3",
     "unknown argument 'filters' for Conv2d; did you mean 'out_channels' (Keras' filters)? valid: {args}"),
    ("type: Conv2d, out_channels: 8, kernel_size: 3, strides: 2",
     "unknown argument 'strides' for Conv2d; did you mean 'stride' (Keras' strides)? valid: {args}"),
    ("type: Conv2d, out_channels: 8, kernel_size: 3, use_bias: false",
     "unknown argument 'use_bias' for Conv2d; did you mean 'bias' (Keras' use_bias)? valid: {args}"),
    ("type: Conv2d, out_channels: 8, kernel_size: 3, activation: relu",
     "unknown argument 'activation' for Conv2d; there is no fused activation: add a ReLU layer after it"
     " ({{type: ReLU}}); valid: {args}"),
    ("type: Conv2d, out_channels: 8, kernel_size: 3, activation: linear",
     "unknown argument 'activation' for Conv2d; Keras' activation: linear is no activation at all: drop the argument;"
     " valid: {args}"),
    ("type: Conv2d, out_channels: 8, kernel_size: '3x3'",
     "kernel_size must be an integer or a list, got the string '3x3': write kernel_size: [3, 3]"),
    ("type: Conv2d, out_channels: 8, kernel_size: '3,3'",
     "kernel_size must be an integer or a list, got the string '3,3': write kernel_size: [3, 3]"),
    ("type: Conv2d, out_channels: 8, kernel_size: '(3, 3)'",
     "kernel_size must be an integer or a list, got the string '(3, 3)': write kernel_size: [3, 3]"),
    ("type: Conv2d, out_channels: 8, kernel_size: (3, 3)",
     "kernel_size: (3, 3) is not a list in YAML (inside {{...}} its comma even splits it in two): write"
     " kernel_size: [3, 3]"),
    ("type: Conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: same",
     "padding='same' is not supported for strided convolutions (stride [2, 2]); PyTorch allows it with stride 1"
     " only (TensorFlow/Keras SAME, which takes a stride, is padding: tf_same)"),
    ("type: Conv2d, out_channels: 8, kernel_size: 3, padding: SAME",
     "padding must be an integer, a list of 2 integers, a list of 2 [before, after] pairs, 'valid', 'same', 'full'"
     " or 'tf_same', got the string 'SAME' (lower case: 'same'; TensorFlow/Keras SAME is tf_same)"),
    ("type: Linear, units: 10", "unknown argument 'units' for Linear; did you mean 'out_features' (Keras' units)?"
                                " valid: bias, in_features, out_features"),
])
def test_did_you_mean_knows_keras_argument_names(runner, tmp_path, layer, expected):
    assert layer_error(runner, tmp_path, layer).split("): ", 1)[1] == expected.format(args=CONV_ARGS)


def test_layers_command_suggests_the_type(runner):
    assert error(runner, "layers", "Conv2DTranspose") == \
        "error: unknown layer type 'Conv2DTranspose'; did you mean 'ConvTranspose2d'? `convcalc layers` lists them all\n"


# ----------------------------------------------------------------------------- 5. an option given twice

TINY = str(Path(__file__).resolve().parent.parent / "specs" / "tiny.yaml")


@pytest.mark.parametrize("args, shown", [
    (["rf", TINY, "--unit", "0,0", "--unit", "1,1"], "--unit"),
    (["rf", TINY, "-u", "0,0", "--unit=1,1"], "--unit"),
    (["analyze", TINY, "--input-size", "3x32x32", "-i", "3x64x64"], "--input-size"),
    (["analyze", TINY, "--format", "json", "-f", "table"], "--format"),
    (["run", TINY, "--dtype", "float32", "--dtype", "float64"], "--dtype"),
    (["lint", TINY, "--fail-on", "warning", "--fail-on", "error"], "--fail-on"),
    (["zoo", "--format", "json", "--format", "json"], "--format"),
])
def test_a_single_valued_option_given_twice_is_an_error(runner, args, shown):
    assert error(runner, *args) == f"error: {shown} given twice; it takes one value (give it once)\n"


def test_repeatable_options_and_flags_may_repeat(runner):
    result = runner.invoke(app, ["lint", TINY, "--select", "CC2", "--select", "CC1", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["analyze", TINY, "--parts", "--parts", "--format", "json"])
    assert result.exit_code == 0, result.stderr


# ----------------------------------------------------------------------------- 6. help texts and completion

def command_names() -> list[str]:
    import typer

    return list(typer.main.get_command(app).commands)


@pytest.mark.parametrize("command", ["", *command_names()])
def test_every_help_reads_as_plain_text_at_80_columns(runner, command):
    result = runner.invoke(app, [*([command] if command else []), "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith(f"Usage: convcalc {command + ' ' if command else ''}[OPTIONS]")
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert too_wide == []
    for placeholder in ("<bool>", "<list[str]>", "<str>", "<int", "<path>", "{SPEC}", "...]...", "[[", "Value error",
                        "╭", "\\["):
        assert placeholder not in text, placeholder


def test_help_placeholders(runner):
    def help_of(*args: str) -> str:
        return runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80"}).stdout

    lint = help_of("lint")
    assert lint.startswith("Usage: convcalc lint [OPTIONS] [PATH]...\n")
    assert "Settings come from [tool.convcalc.lint] in pyproject.toml" in " ".join(lint.split())
    assert "  --fail-on [error|warning|info]  Exit 1 when a finding is at or above this\n" in lint
    assert "  --no-config                     Ignore configuration files.\n" in lint
    analyze = help_of("analyze")
    assert analyze.startswith("Usage: convcalc analyze [OPTIONS] SPEC\n")
    assert "  -f, --format [table|json|markdown|csv]\n" in analyze
    assert "  --dtype [float64|float32|float16|bfloat16|int8]\n" in analyze
    assert "  -d, --depth N  " in analyze
    assert "  --dtype [float32|float64]  Element type of the run.  [default: float32]\n" in help_of("run")
    assert "  --normalize [imagenet]  " in help_of("run")
    assert help_of("zoo").startswith("Usage: convcalc zoo [OPTIONS] [NAME]\n")
    assert help_of("layers").startswith("Usage: convcalc layers [OPTIONS] [TYPE]\n")
    assert "  -l, --layer NAME  " in help_of("rf")


@pytest.mark.parametrize("args, expected", [
    (["analyze", TINY, "-f", "foo"], "Invalid value for '--format' / '-f': 'foo' is not one of 'table', 'json',"
                                     " 'markdown', 'csv' ('convcalc analyze -h' lists the options)"),
    (["run", TINY, "--dtype", "float16"], "Invalid value for '--dtype': 'float16' is not one of 'float32', 'float64'"
                                          " ('convcalc run -h' lists the options)"),
    (["lint", TINY, "--fail-on", "never"], "Invalid value for '--fail-on': 'never' is not one of 'error', 'warning',"
                                           " 'info' ('convcalc lint -h' lists the options)"),
    (["analyze"], "Missing argument 'SPEC' ('convcalc analyze -h' lists the options)"),
    (["analyze", TINY, "--bogus"], "No such option: --bogus ('convcalc analyze -h' lists the options)"),
    (["analyse", TINY], "No such command 'analyse'. Did you mean 'analyze'? ('convcalc -h' lists the commands)"),
])
def test_a_usage_error_is_one_line(runner, args, expected):
    assert error(runner, *args) == f"error: {expected}\n"


def test_fail_on_takes_any_case(runner):
    assert runner.invoke(app, ["lint", TINY, "--fail-on", "WARNING", "-f", "json"]).exit_code == 0


def test_shell_completion_is_offered_and_bare_convcalc_still_fails(runner):
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "80"}).stdout
    assert "  --install-completion  Install completion for the current shell.\n" in top
    assert "  --show-completion " in top
    assert runner.invoke(app, []).exit_code == 2
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("convcalc ")


# ----------------------------------------------------------------------------- 7. every argument described

def all_arguments():
    from convcalc.layers import layer_types

    return [(cls, name, arg) for cls in layer_types() for name, arg in cls.arguments.items()]


@pytest.mark.parametrize("cls, name, arg", all_arguments(), ids=lambda v: getattr(v, "type_name", None) or str(v)[:20])
def test_every_argument_of_every_layer_type_has_a_one_line_description(cls, name, arg):
    assert arg.doc.strip() and "\n" not in arg.doc, f"{cls.type_name}.{name} has no one-line description"


def test_the_schema_describes_every_argument_with_its_default(runner):
    from convcalc.layers import REQUIRED

    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    described = schema["definitions"]["arguments"]
    for cls, name, arg in all_arguments():
        if name not in described[cls.type_name]["properties"]:      # a reserved key ('init'): the graph's, not the unit's
            continue
        entry = described[cls.type_name]["properties"][name]
        assert entry["description"] == arg.doc
        assert ("default" in entry) == (arg.default is not REQUIRED)


def test_layers_shows_conv2d_stride_with_its_description_and_default(runner):
    text = runner.invoke(app, ["layers", "Conv2d", "--width", "200"]).stdout
    row = next(line for line in text.splitlines() if "│ stride" in line)
    assert " 1 " in row and "the step between windows per spatial axis" in row


@pytest.mark.parametrize("text, expected", [
    ("input: [3, 32, 32]\n  layers:\n  - {type: ReLU}\n",
     "2:3: invalid YAML: 'layers' is indented more than 'input' on line 1 (column 3, not 1): the spec's top-level keys"
     " all start at column 1"),
    ("input: [3, 32, 32]\nlayers:\n  - {type: Conv2d, out_channels: 8, kernel_size: 3]\n",
     "3:5: invalid YAML: the '{' opened here is never closed: 3:51 has ']' where a ',' or '}' should be (a list is"
     " written [3, 3], a mapping {type: ReLU})"),
    ("input: [3, 32, 32]\nlayers:\n- type: Conv2d\nout_channels: 8\n",
     "4:1: unknown key 'out_channels' in the spec ('out_channels' is a layer's argument: if it belongs to the layer"
     " above, indent it to line up under that layer's 'type'); valid: args, blocks, description, expect, include,"
     " input, layers, name, output"),
])
def test_more_indentation_slips(runner, tmp_path, text, expected):
    spec = tmp_path / "net.yaml"
    spec.write_text(text, encoding="utf-8")
    assert error(runner, "analyze", str(spec)).splitlines()[0] == f"error: {spec}:{expected}"
