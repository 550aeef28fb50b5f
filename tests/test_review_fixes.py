"""Issue 18, a new user's review of the installed wheel: one test (or a few) per defect found, with exact messages.

Expected figures come from the formulas (Araujo et al.'s r = 1 + sum (k_l - 1) prod s_j, via tests/test_vocabulary.py's
chains of the papers' tables), never from convcalc's output.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from test_vocabulary import EFFICIENTNET_B0, MOBILENET_V3_LARGE, REGNET_Y_400MF, araujo

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


# --------------------------------------------------------------------------- 1. rf and zoo past SE gates

SE_NETS = [("efficientnet_b0", EFFICIENTNET_B0, "features.8.2"),
           ("mobilenet_v3_large", MOBILENET_V3_LARGE, "features.16.2"),
           ("regnet_y_400mf", REGNET_Y_400MF, "trunk_output.block4.block4-5.activation")]


@pytest.mark.parametrize("name, chain, layer", SE_NETS)
def test_rf_default_layer_of_se_networks_is_the_classifiers_map(name, chain, layer):
    """`convcalc rf` stops at the map the classifier's pool gathers, not before the first SE gate's pool."""
    result = invoke("rf", name, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["layer"] == layer
    last = data["growth"][-1]
    assert (last["name"], last["size"], last["whole_input"]) == (layer, [araujo(chain)] * 2, False)
    gates = [row["name"] for row in data["growth"] if row["gate_left_out"]]
    assert gates and all(row["merge"] for row in data["growth"] if row["gate_left_out"])


def test_rf_table_says_the_gates_are_left_out():
    result = invoke("rf", "efficientnet_b0")
    assert result.exit_code == 0, result.output
    assert "merge; SE gate left out" in result.output
    assert "SE gate left out: a squeeze-and-excitation block pools its map globally" in result.output


def test_rf_regions_of_an_se_network_still_default_to_a_layer_with_regions():
    """--unit needs exact regions; behind a gate every unit's region is the whole input, so the default stays
    the last layer before the first gate's pool."""
    result = invoke("rf", "efficientnet_b0", "--unit", "0,0", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["layer"] == "features.1.0.block.0.2"


def test_zoo_rf_column_of_se_networks():
    result = invoke("zoo", "--format", "json")
    assert result.exit_code == 0, result.output
    models = {m["name"]: m for m in json.loads(result.output)["models"]}
    for name, chain, layer in SE_NETS:
        assert models[name]["rf_layer"] == layer
        assert models[name]["rf"]["size"] == [araujo(chain)] * 2
    # LR-ASPP's segmentation head multiplies its own SE-like gate in: the output's field is the conv path's
    assert models["lraspp_mobilenet_v3_large"]["rf_layer"] == "upsample"
    # DeepLabV3's ASPP: the widest branch (rate 36) where every branch covers the input
    assert models["deeplabv3_resnet50"]["rf_layer"] == "classifier.0.convs.3.2"


# --------------------------------------------------------------------------- 2. sizes a U-Net of valid convs takes

def gray(tmp_path, size: int) -> str:
    import numpy as np
    from PIL import Image

    path = tmp_path / f"gray{size}.png"
    Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(path)
    return str(path)


def unet_sizes() -> list[int]:
    """The sizes the textbook U-Net (Ronneberger et al.: two valid 3x3 convs per level, four 2x2 pools, up-convs)
    takes: n such that every level's map is even before its pool (n - 4 after the first pair of convs, and so on)
    and every map of the decoder (up-conv doubling, then a valid pair: 2m - 4) is positive."""
    sizes = []
    for n in range(1, 700):
        size, ok = n, True
        for _ in range(4):
            size -= 4
            ok = ok and size > 0 and size % 2 == 0
            size //= 2
        size -= 4                  # the bottom's pair of convs
        for _ in range(4):
            ok = ok and size > 0
            size = 2 * size - 4
        if ok and size > 0:
            sizes.append(n)
    return sizes


@pytest.mark.parametrize("size, nearest", [(570, 572), (566, 572), (560, 556)])
def test_run_unet_at_a_size_it_cannot_take_lists_sizes_that_work_and_resize(tmp_path, size, nearest):
    works = unet_sizes()
    assert {556, 572} <= set(works) and size not in works
    assert works[0] == 188 and all(b - a == 16 for a, b in zip(works, works[1:]))
    result = invoke("run", "unet", "--input", gray(tmp_path, size))
    assert result.exit_code != 0
    assert result.output.rstrip().endswith(
        "sizes that work: the nearest 556x556 and 572x572 (16k + 12: a multiple of the network's total stride 16,"
        f" plus 12), the smallest 188x188; pass --resize {nearest}x{nearest} (or any size that works) to resize the"
        " image")


# --------------------------------------------------------------------------- 3. a size without its channels

@pytest.mark.parametrize("given, meant", [("3x512", "3x512x512"), ("512x512", "3x512x512"), ("480x640", "3x480x640"),
                                          ("3x3", "3x3x3")])
def test_input_size_one_axis_short_suggests_the_channels_and_a_square(given, meant):
    result = invoke("analyze", "deeplabv3_resnet50", "-i", given)
    assert result.exit_code != 0
    assert result.output == (f"error: --input-size {given} has 2 axes, but the spec's input 3x520x520 has 3 (channels"
                             f" first, no batch); did you mean --input-size {meant}?\n")


# --------------------------------------------------------------------------- 4. analyze at a size it cannot take

UNET_570 = ("a size the network cannot take: {spec}:{line}:32: layer 'cat4' (Concat): Concat along dim 1 needs the"
            " other axes equal, got 'crop4' [512, 55, 55], 'up4' [512, 54, 54]")


@pytest.mark.parametrize("command, option", [("analyze", "-i"), ("rf", "--input-size")])
def test_input_size_the_network_cannot_take_is_the_options_fault(command, option):
    from convcalc.spec.zoo import zoo_path

    spec = zoo_path("unet")
    line = next(i for i, text in enumerate(open(spec).read().splitlines(), 1) if "name: cat4" in text)
    result = invoke(command, "unet", option, "1x570x570")
    assert result.exit_code != 0
    message = result.output
    assert message.startswith(f"error: --input-size 1x570x570 is {UNET_570.format(spec=spec, line=line)}"), message
    assert message.endswith("; sizes that work: the nearest 556x556 and 572x572 (16k + 12: a multiple of the"
                            " network's total stride 16, plus 12), the smallest 188x188; pass --input-size 1x572x572"
                            " (or any size that works)\n")


def test_a_spec_broken_at_every_size_still_blames_the_spec(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("input: [3, 8, 8]\nlayers:\n  - {name: a, type: Conv2d, out_channels: 4, kernel_size: 1}\n"
                    "  - {name: b, type: Conv2d, out_channels: 8, kernel_size: 1, from: input}\n"
                    "  - {name: sum, type: Add, from: [a, b]}\n")
    result = invoke("analyze", str(path), "-i", "3x6x6")
    assert result.exit_code != 0
    assert result.output.startswith(f"error: {path}:5:") and "--input-size" not in result.output, result.output


# --------------------------------------------------------------------------- 5, 9. calc's --in

@pytest.mark.parametrize("args, message", [
    (("conv2d", "--in", "224x224x3", "-k", "3", "-o", "64"),
     "error: --in '224x224x3' looks channels last (HxWxC): it would be 224 channels of 224x3; --in takes CxHxW,"
     " channels first: did you mean 3x224x224?\n"),
    (("conv3d", "--in", "16x112x112x1", "-k", "1"), None),        # not equal-ish: taken as written
    (("cost", "--in", "240x320x4", "-o", "8", "-k", "3"),
     "error: --in '240x320x4' looks channels last (HxWxC): it would be 240 channels of 320x4; --in takes CxHxW,"
     " channels first: did you mean 4x240x320?\n"),
])
def test_channels_last_input_is_refused_with_the_channels_first_shape(args, message):
    result = invoke("calc", *args)
    if message is None:
        assert result.exit_code == 0, result.output
    else:
        assert (result.exit_code, result.output) == (2, message)


@pytest.mark.parametrize("given", ["3X224X224", "(3, 224, 224)", "[3, 224, 224]", "3×224×224"])
def test_in_written_with_capital_x_or_as_a_tuple_is_read(given):
    result = invoke("calc", "conv2d", "--in", given, "-k", "3", "-o", "64", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["input_shape"], data["output_shape"]) == ([3, 224, 224], [64, 222, 222])


@pytest.mark.parametrize("given", ["3x224x224x", "3 by 224", "3xabc"])
def test_in_that_is_no_size_gets_the_in_wording(given):
    result = invoke("calc", "conv2d", "--in", given, "-k", "3")
    assert (result.exit_code, result.output) == (2, (
        f"error: --in '{given}' is not a size: --in takes CxHxW (channels first), e.g. 3x224x224 (or the spatial size"
        " alone where channels do not matter: 224x224, 224)\n"))


# --------------------------------------------------------------------------- 6. calc's layer names, any case

@pytest.mark.parametrize("name", ["Conv2d", "CONV2D", "conv2D"])
def test_calc_layer_subcommands_are_case_insensitive(name):
    result = invoke("calc", name, "--in", "224", "-k", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["output_shape"] == [1, 222, 222]


# --------------------------------------------------------------------------- 7. calc rf's exact numbers

def test_calc_rf_writes_every_number_as_a_fraction():
    """conv3 then up2 (Araujo et al.): jump 1 -> 1/2; the centre of unit 0: 1 (the conv's), then 1 + (1/2 - 1)/2
    ... written as the table writes jump and padding: 3/4, never 0.75."""
    result = invoke("calc", "rf", "conv3, up2")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ 2 "))
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["2", "up2", "Upsample", "124", "3", "1/2", "3/4",
                                                                    "1/4"]
    assert "0.75" not in result.output


# --------------------------------------------------------------------------- 8. calc cost's spatially separable conv

def separable_params(c: int, m: int, n: int, k: int) -> int:
    """k×1 conv C -> M, then 1×k conv M -> N, both with bias: k·C·M + M + k·M·N + N."""
    return k * c * m + m + k * m * n + n


@pytest.mark.parametrize("args, middle, note", [
    (("--in", "3x224x224", "-o", "64", "-k", "3"), 3,
     "spatially separable: 3×1 conv 3 → 3, then 1×3 conv 3 → 64 (C → C → N, the cheaper textbook form;"
     " --separable-mid M sets the middle)"),
    (("--in", "64x56x56", "-o", "16", "-k", "3"), 16,
     "spatially separable: 3×1 conv 64 → 16, then 1×3 conv 16 → 16 (C → N → N, the cheaper textbook form;"
     " --separable-mid M sets the middle)"),
    (("--in", "3x224x224", "-o", "64", "-k", "3", "--separable-mid", "64"), 64,
     "spatially separable: 3×1 conv 3 → 64, then 1×3 conv 64 → 64 (--separable-mid 64)"),
])
def test_cost_spatially_separable_goes_through_the_cheaper_width(args, middle, note):
    result = invoke("calc", "cost", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (variant,) = [v for v in data["variants"] if v["key"] == "spatially_separable"]
    c, n = data["input_shape"][0], data["out_channels"]
    assert data["separable_mid_channels"] == middle
    assert variant["params"] == separable_params(c, middle, n, 3)
    table = invoke("calc", "cost", *args)
    assert note in " ".join(table.output.split())


def test_cost_of_the_reviews_example_is_cheaper_than_the_standard():
    """3 -> 64, 3×3: the standard has 3·64·9 + 64 = 1,792 params; C -> C -> N has 27 + 3 + 576 + 64 = 670."""
    data = json.loads(invoke("calc", "cost", "--in", "3x224x224", "-o", "64", "-k", "3", "-f", "json").output)
    params = {v["key"]: v["params"] for v in data["variants"]}
    assert (params["standard"], params["spatially_separable"]) == (1792, 670)


# --------------------------------------------------------------------------- 10. run -i SIZE

@pytest.mark.parametrize("given, size", [("300x300", "300x300"), ("3x300x300", "300x300"), ("300", "300x300"),
                                         ("224X200", "224x200")])
def test_run_input_that_reads_as_a_size_says_where_a_size_goes(given, size, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "tiny", "-i", given)
    assert (result.exit_code, result.output) == (2, (
        f"error: no such input: {given} (no such file; -i/--input takes an image, a directory of images, a glob"
        f" pattern or a .npy file; for the input's size, pass --resize {size} to run, --input-size to analyze or"
        " rf)\n"))


def test_run_missing_file_that_is_no_size_says_only_that(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "tiny", "-i", "photo.png")
    assert (result.exit_code, result.output) == (2, "error: no such input: photo.png\n")
