"""`convcalc explain` (issue 18 §3): the matrix C of a conv, built from convcalc's own layer units, against independent
oracles: C·x against torch's F.conv1d/conv2d, Cᵀ·y against F.conv_transpose1d/2d and against torch.autograd's input
gradient, true convolution against scipy.signal.convolve2d and numpy.convolve; the command's text, JSON, PNG, exit
codes and messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from PIL import Image
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.errors import ConvcalcError
from convcalc.proof import toeplitz
from convcalc.proof.toeplitz import explain_conv
from convcalc.report.explain import CAPTION_HEIGHT, GAP, TITLE_HEIGHT, matrix_lines

RUNNER = CliRunner()
FEW = settings(max_examples=12, deadline=None, derandomize=True)


def invoke(*args: str):
    return RUNNER.invoke(app, ["explain", *args])


def _conv_case(draw, dims: int):
    groups = draw(st.sampled_from([1, 2]))
    channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    spatial = tuple(draw(st.integers(2, 6)) for _ in range(dims))
    kernel = draw(st.integers(1, 3))
    stride, padding, dilation = draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 2))
    return dict(in_shape=(channels, *spatial), kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                groups=groups, out_channels=out_channels, seed=draw(st.integers(0, 99)))


@st.composite
def conv_cases(draw, dims: int = 2):
    return _conv_case(draw, dims)


def _study(kind: str, case: dict):
    case = dict(case)
    in_shape = case.pop("in_shape")
    try:
        return explain_conv(kind, in_shape, **case)
    except ConvcalcError as exc:          # PyTorch would refuse too (kernel wider than the padded input, ...)
        assert "spans" in str(exc) or "at least 1" in str(exc) or "padding" in str(exc), str(exc)
        return None


def _output_padding(study) -> list[int]:
    """What F.conv_transpose needs to give back the conv's input size: i - ((o-1)s - 2p + d(k-1) + 1)."""
    args = study.arguments
    return [i - ((o - 1) * s - 2 * p + d * (k - 1) + 1) for i, o, s, p, d, k in
            zip(study.in_shape[1:], study.out_shape[1:], args["stride"], args["padding"], args["dilation"],
                args["kernel_size"])]


@pytest.mark.parametrize("dims", [1, 2])
@FEW
@given(data=st.data())
def test_matrix_is_the_conv_and_its_transpose_is_the_transposed_conv_and_the_gradient(dims, data):
    case = data.draw(conv_cases(dims))
    study = _study(f"conv{dims}d", case)
    if study is None:
        return
    conv, conv_t = (F.conv1d, F.conv_transpose1d) if dims == 1 else (F.conv2d, F.conv_transpose2d)
    args = study.arguments
    options = dict(stride=args["stride"], padding=args["padding"], dilation=args["dilation"], groups=args["groups"])
    weight = torch.tensor(study.weight)
    rng = np.random.default_rng(case["seed"])
    x = torch.tensor(rng.normal(size=study.in_shape), requires_grad=True)
    y = torch.tensor(rng.normal(size=study.out_shape))
    # C·x is torch's conv
    expected = conv(x[None], weight, **options)[0]
    assert np.allclose(study.matrix @ x.detach().numpy().ravel(), expected.detach().numpy().ravel(), atol=1e-10)
    # Cᵀ·y is torch's transposed conv with the same stride, padding, dilation, groups (and the output_padding
    # that gives the conv's input size back)
    transposed = conv_t(y[None], weight, output_padding=_output_padding(study), **options)[0]
    assert transposed.shape == x.shape
    assert np.allclose(study.matrix.T @ y.numpy().ravel(), transposed.numpy().ravel(), atol=1e-10)
    # Cᵀ is the input gradient: d(sum(y * conv(x)))/dx = Cᵀ·y
    (expected * y).sum().backward()
    assert np.allclose(study.matrix.T @ y.numpy().ravel(), x.grad.numpy().ravel(), atol=1e-10)
    assert study.ok and all(check.ok for check in study.checks)


@FEW
@given(case=conv_cases(2), output_padding=st.integers(0, 2))
def test_transposed_matrix_is_torchs_transposed_conv(case, output_padding):
    in_shape = case.pop("in_shape")
    if output_padding >= max(case["stride"], case["dilation"]):
        output_padding = 0
    try:
        study = explain_conv("convtranspose2d", in_shape, output_padding=output_padding, **case)
    except ConvcalcError as exc:
        assert "at least 1" in str(exc), str(exc)
        return
    args = study.arguments
    options = dict(stride=args["stride"], padding=args["padding"], dilation=args["dilation"], groups=args["groups"])
    weight = torch.tensor(study.weight)
    x = torch.tensor(np.random.default_rng(case["seed"]).normal(size=study.in_shape))
    expected = F.conv_transpose2d(x[None], weight, output_padding=args["output_padding"], **options)[0]
    assert np.allclose(study.matrix @ x.numpy().ravel(), expected.numpy().ravel(), atol=1e-10)
    # its transpose is the conv with the same arguments, from its output back to its input
    y = torch.tensor(np.random.default_rng(1).normal(size=study.out_shape))
    back = F.conv2d(y[None], weight, **options)[0]
    if tuple(back.shape) == study.in_shape:
        assert np.allclose(study.matrix.T @ y.numpy().ravel(), back.numpy().ravel(), atol=1e-10)
    assert study.ok


def test_true_convolution_is_scipys_convolve2d_and_numpys_convolve():
    kernel = [[1, 2, 0], [4, -1, 3]]
    study = explain_conv("conv2d", (1, 5, 6), kernel_size=[2, 3], weight=kernel)
    x = study.x[0]
    true = scipy.signal.convolve2d(x, np.array(kernel, dtype=float), mode="valid")
    assert np.array_equal(study.true_convolution.true_conv[0], true)
    assert np.array_equal(study.true_convolution.correlated_flipped[0], true)
    assert np.array_equal(study.true_convolution.flipped[0, 0], np.array(kernel)[::-1, ::-1])
    assert np.array_equal(study.y[0], scipy.signal.correlate2d(x, np.array(kernel, dtype=float), mode="valid"))
    assert not np.array_equal(study.y, study.true_convolution.true_conv)   # the two differ on this kernel
    line = explain_conv("conv1d", (1, 7), kernel_size=3, weight=[1, 5, 2])
    assert np.array_equal(line.true_convolution.true_conv[0], np.convolve(line.x[0], [1, 5, 2], "valid"))


def test_the_matrix_is_printed_with_the_weight_symbols():
    study = explain_conv("conv2d", (1, 4, 4), kernel_size=3)
    assert matrix_lines(study) == [
        "       │ x[0,:]          │ x[1,:]          │ x[2,:]          │ x[3,:]",
        "       │   0   1   2   3 │   0   1   2   3 │   0   1   2   3 │   0   1   2   3",
        "───────┼─────────────────┼─────────────────┼─────────────────┼─────────────────",
        "y[0,0] │ w00 w01 w02   · │ w10 w11 w12   · │ w20 w21 w22   · │   ·   ·   ·   ·",
        "y[0,1] │   · w00 w01 w02 │   · w10 w11 w12 │   · w20 w21 w22 │   ·   ·   ·   ·",
        "───────┼─────────────────┼─────────────────┼─────────────────┼─────────────────",
        "y[1,0] │   ·   ·   ·   · │ w00 w01 w02   · │ w10 w11 w12   · │ w20 w21 w22   ·",
        "y[1,1] │   ·   ·   ·   · │   · w00 w01 w02 │   · w10 w11 w12 │   · w20 w21 w22"]
    numbers = explain_conv("conv1d", (1, 4), kernel_size=2, weight=[3, -7])
    assert matrix_lines(numbers, numbers=True)[3:] == ["y[0] │  3 -7  ·  ·", "y[1] │  ·  3 -7  ·", "y[2] │  ·  ·  3 -7"]


def test_several_kernels_get_letters():
    study = explain_conv("conv1d", (2, 3), kernel_size=2, out_channels=2, groups=2)
    assert matrix_lines(study)[3:5] == ["y[0,0] │ a0 a1  · │  ·  ·  ·", "y[0,1] │  · a0 a1 │  ·  ·  ·"]


def test_command_prints_matrix_vectors_and_checks():
    result = invoke("conv2d", "--in", "1x4x4", "-k", "3", "--kernel", "1,2,3;4,5,6;7,8,9")
    assert result.exit_code == 0, result.output
    assert "y[0,0] │ w00 w01 w02   · │ w10 w11 w12   · │ w20 w21 w22   · │   ·   ·   ·   ·" in result.output
    assert "C: 4 × 16 (36 of 64 entries nonzero)" in result.output
    assert result.output.count("✓") == 6 and "✗" not in result.output
    assert "ConvTranspose2d(y; stride 1, padding 0, dilation 1, output_padding 0) = Cᵀ·y" in result.output
    assert "w22=9  w21=8  w20=7" in result.output          # the flipped kernel
    transposed = invoke("convtranspose2d", "--in", "1x2x2", "-k", "3", "-s", "2", "-p", "1", "--output-padding", "1")
    assert transposed.exit_code == 0 and "Cᵀ: 16 × 4 (25 of 64 entries nonzero)" in transposed.output


def test_json_output():
    result = invoke("conv2d", "--in", "3x3", "-k", "2", "--kernel", "1,2;3,4", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["schema_version"] == 1 and data["ok"] is True
    assert data["matrix"]["values"] == [[1, 2, 0, 3, 4, 0, 0, 0, 0], [0, 1, 2, 0, 3, 4, 0, 0, 0],
                                        [0, 0, 0, 1, 2, 0, 3, 4, 0], [0, 0, 0, 0, 1, 2, 0, 3, 4]]
    assert data["input_shape"] == [1, 3, 3] and data["output_shape"] == [1, 2, 2]
    assert [check["ok"] for check in data["checks"]] == [True] * 5
    assert data["true_convolution"]["flipped_weight"] == [[[[4, 3], [2, 1]]]]


def test_png_has_the_expected_size_and_pattern(tmp_path):
    path = tmp_path / "c.png"
    result = invoke("conv2d", "--in", "1x4x4", "-k", "3", "--png", str(path), "--transpose")
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(path).convert("RGB"))
    cell = 24                                                  # ceil(512 / 16), at most 24 pixels a cell
    assert picture.shape[0] == TITLE_HEIGHT + 16 * cell + 1 + CAPTION_HEIGHT      # Cᵀ is 16 rows high
    assert picture.shape[1] >= GAP + 16 * cell + 1 + GAP + 4 * cell + 1 + GAP
    centre = TITLE_HEIGHT + cell // 2
    assert tuple(picture[centre, GAP + cell // 2]) != (255, 255, 255)      # C[0, 0] = w00
    assert tuple(picture[centre, GAP + 3 * cell + cell // 2]) == (255, 255, 255)   # C[0, 3] = 0


def test_large_matrix_is_left_out_with_a_note(tmp_path):
    result = invoke("conv2d", "--in", "1x20x20", "-k", "3")
    assert result.exit_code == 0
    assert "(the matrix is too large to print here: --png FILE draws it, --format json lists it)" in result.output
    assert "checks (both sides" in result.output and "│" not in result.output
    example = invoke("conv2d", "--in", "2x8x8", "-k", "3", "-p", "1")          # the help's example without --png
    assert example.exit_code == 0 and "too large to print here" in example.output
    drawn = invoke("conv2d", "--in", "1x20x20", "-k", "3", "--png", str(tmp_path / "big.png"))
    assert drawn.exit_code == 0 and "too large to print here" in drawn.output
    assert Image.open(tmp_path / "big.png").size[1] == TITLE_HEIGHT + 324 * 2 + 1 + CAPTION_HEIGHT   # 2 px a cell


@pytest.mark.parametrize("args, message", [
    (["conv2d", "--in", "1x70x70", "-k", "3"],
     "error: the matrix would be 4,624×4,900 (output units × input units); at most 4096×4096 is built: take a"
     " smaller input"),
    (["conv2d", "--in", "4096x1x1", "-k", "1", "--out-channels", "4096"],
     "error: building the 4,096×4,096 matrix from the unit takes 206,158,430,208 multiply-accumulates (a conv of"
     " 16,777,216 per input and output unit); at most 1,000,000,000: take fewer channels or a smaller input"),
    (["conv2d", "--in", "1x4x4", "-k", "3", "--kernel", "1,2;3,4"],
     "error: the kernel values give 1 kernel of 2×2, but Conv2d needs 1 of 3×3 (weight [1, 1, 3, 3]: out ×"
     " in/groups kernels, one after another)"),
    (["conv2d", "--in", "1x4x4", "-k", "2", "--kernel", "1,2;3"],
     "error: --kernel '1,2;3': its kernels, slices or rows have different lengths"),
    (["conv2d", "--in", "1x4x4", "-k", "2", "--kernel", "1,x;3,4"], "error: --kernel: 'x' is not a number"),
    (["conv1d", "--in", "8", "-k", "3", "--output-padding", "1"],
     "error: output_padding belongs to transposed convs (Conv1d has none)"),
    (["conv2d", "--in", "1x4x4", "-k", "three"],
     "error: --kernel-size 'three' must be an integer or one per spatial axis (3, 1x3)"),
    (["conv2d", "--in", "1x2x2", "-k", "3"],
     "error: Conv2d: kernel_size 3 spans 3, but the padded input is 2 wide along the height"),
    (["conv2d", "--in", "3x4x4", "-k", "3", "-g", "2", "--out-channels", "2"],
     "error: Conv2d: the input's 3 channels are not divisible by groups 2"),
])
def test_errors_are_one_line_and_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.output.strip() == message


def test_unknown_layer_is_a_usage_error():
    assert invoke("pool2d", "--in", "4x4", "-k", "2").exit_code == 2


def test_a_failed_check_exits_1(monkeypatch):
    real = toeplitz.unit_matrix_rows
    monkeypatch.setattr(toeplitz, "unit_matrix_rows", lambda *args: real(*args) + 1.0)
    result = invoke("conv1d", "--in", "5", "-k", "2")
    assert result.exit_code == 1 and "✗ Conv1d's backward at the one-hot output" in result.output


def test_not_applicable_checks_say_why():
    study = explain_conv("conv1d", (1, 6), kernel_size=4, padding="same")
    note = next(check for check in study.checks if check.name == "transposed")
    assert note.ok is None and "padding [[1, 2]] is not the same on both sides" in note.note
    wide = explain_conv("convtranspose1d", (1, 3), kernel_size=2, dilation=3, output_padding=2)
    assert wide.ok and any(check.ok is None and "output_padding at least the stride" in check.note
                           for check in wide.checks)
    cube = explain_conv("conv3d", (1, 3, 3, 3), kernel_size=2)
    assert cube.ok and cube.matrix.shape == (8, 27)


def test_the_readme_examples_are_real_output():
    """Each `$ convcalc explain ...` block of the README's section is what the command prints (a block ending in
    '...' is a prefix of it)."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Convolution as a matrix: `convcalc explain`\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README.md has no 'Convolution as a matrix' section"
    blocks = re.findall(r"```\n\$ convcalc (explain .*?)\n(.*?)```", section.group(1), re.S)
    assert len(blocks) >= 2
    for command, shown in blocks:
        result = RUNNER.invoke(app, shlex.split(command))
        assert result.exit_code == 0, command
        if shown.rstrip().endswith("..."):
            assert result.output.startswith(shown.rstrip()[:-3].rstrip("\n")), command
        else:
            assert result.output.rstrip("\n") == shown.rstrip("\n"), command


def test_explain_fits_the_width_and_prints_the_matrix_in_blocks_of_columns():
    from rich.cells import cell_len

    for width in (60, 80):
        result = invoke("conv2d", "--in", "1x4x4", "-k", "3", "--width", str(width))
        assert result.exit_code == 0
        assert max(cell_len(line) for line in result.output.splitlines()) <= width, width
    narrow = invoke("conv2d", "--in", "1x4x4", "-k", "3", "--width", "60").output
    assert "(C in blocks of columns that fit 60 columns; --wide prints it side by side)" in " ".join(narrow.split())
    assert narrow.count("│ x[0,:]") == 1 and narrow.count("│ x[3,:]") == 1 and narrow.count("┼") > 4
    wide = invoke("conv2d", "--in", "1x4x4", "-k", "3", "--width", "60", "--wide").output
    assert "│ x[0,:]          │ x[1,:]          │ x[2,:]          │ x[3,:]" in wide
    piped = RUNNER.invoke(app, ["explain", "conv2d", "--in", "1x4x4", "-k", "3"], env={"COLUMNS": "80"}).output
    assert max(cell_len(line) for line in piped.splitlines()) <= 80


def test_the_scipy_note_states_the_relation_of_the_example_shown():
    simple = invoke("conv2d", "--in", "1x4x4", "-k", "3").output
    assert "With stride 1, padding 0, dilation 1 and one channel, scipy.signal.convolve2d(x, w, mode='valid')" in simple
    padded = " ".join(invoke("conv2d", "--in", "2x5x5", "-k", "3", "-p", "1", "-s", "2").output.split())
    assert "stride 1, padding 0, dilation 1 and one channel" not in padded
    assert ("Here (stride 2, padding 1, dilation 1, 2 input and 1 output channel): y = Σ_c"
            " scipy.signal.correlate2d(numpy.pad(x[c], 1), w[0, c], mode='valid')[::2, ::2] is the cross-correlation"
            " Conv2d computes, and Σ_c scipy.signal.convolve2d(numpy.pad(x[c], 1), w[0, c], mode='valid')[::2, ::2]"
            " its true convolution.") in padded


@pytest.mark.parametrize("width", [60, 80, 100])
def test_explain_prose_wraps_as_paragraphs_with_hanging_indents(width):
    """A sentence wrapped into the width keeps its indentation on every line (it broke into an unindented stub:
    'max' / '|difference| = 0', 'is this' / 'true convolution'), and a check's 'max |difference| = N' stays whole."""
    import re

    from rich.cells import cell_len

    text = RUNNER.invoke(app, ["explain", "conv2d", "--in", "4x4", "-k", "3", "--width", str(width)]).output
    lines = text.splitlines()
    assert max(cell_len(line) for line in lines) <= width
    checks = [i for i, line in enumerate(lines) if line.startswith(("  ✓ ", "  ✗ "))]
    assert len(checks) == 6
    assert text.count("max |difference| = 0") == 6
    for i in checks:                      # a check's further lines are indented under its statement
        statement = [lines[i]]
        for follow in lines[i + 1:]:
            if not follow.startswith("    ") or re.match(r"    w\d+=", follow):     # a kernel's lines
                break
            statement.append(follow)
        assert " ".join(statement).endswith("max |difference| = 0"), statement
    for i, line in enumerate(lines):      # a vector wrapped goes on under its first value
        if " = [" in line and not line.rstrip().endswith("]"):
            assert lines[i + 1].startswith(" " * line.index("[")), (line, lines[i + 1])
    scipy = next(i for i, line in enumerate(lines) if line.startswith("  With stride 1"))
    assert all(line.startswith("  ") for line in lines[scipy:]), lines[scipy:]
    assert " ".join(" ".join(lines[scipy:]).split()).endswith("the cross-correlation Conv2d computes.")


def test_explain_takes_the_calculator_s_short_options():
    """`convcalc explain` takes a conv as `convcalc calc` does: -i/--in and -o/--out-channels (explain refused -o)."""
    short = RUNNER.invoke(app, ["explain", "conv2d", "-i", "2x5x5", "-k", "3", "-o", "2", "-s", "2", "-p", "1",
                                "--format", "json"])
    assert short.exit_code == 0, short.output
    data = json.loads(short.output)
    assert data["input_shape"] == [2, 5, 5] and data["output_shape"] == [2, 3, 3]
    assert list(np.shape(data["weight"])) == [2, 2, 3, 3]
