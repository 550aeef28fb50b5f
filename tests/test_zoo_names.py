"""Issue 18, a new user's review of the installed zoo: help examples that work from any directory, a hint when a
path names a zoo model, zoo names in lint, the zoo table at 60 columns, published figures, block libraries and
shell completion. Every message pinned exactly; run from an empty working directory."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

import convcalc
from convcalc.cli import app
from convcalc.errors import ConvcalcError


@pytest.fixture(autouse=True)
def empty_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str, columns: int = 200):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})


# --------------------------------------------------------------------------- 1: help examples and the hint

@pytest.mark.parametrize("command", ["analyze", "run", "rf", "lint"])
def test_help_examples_name_zoo_models_that_work_from_any_directory(command):
    text = invoke(command, "--help").output
    examples = [line.split()[2] for line in text.splitlines()
                if line.strip().startswith(f"convcalc {command} ") and not line.split()[2].startswith("-")]
    assert examples and not [e for e in examples if e.startswith("specs/")]
    from convcalc.spec.zoo import zoo_names
    assert [e for e in examples if e in zoo_names()], examples


@pytest.mark.parametrize("args, message", [
    (["rf", "specs/vgg16.yaml"], "no such spec file: specs/vgg16.yaml (the zoo has 'vgg16': convcalc rf vgg16)"),
    (["analyze", "specs/tfslim/vgg_16.yaml"],
     "no such spec file: specs/tfslim/vgg_16.yaml (the zoo has 'tfslim/vgg_16': convcalc analyze tfslim/vgg_16)"),
    (["run", "models/resnet18.yml"],
     "no such spec file: models/resnet18.yml (the zoo has 'resnet18': convcalc run resnet18)"),
    (["analyze", "mine.yaml"], "no such spec file: mine.yaml"),
])
def test_a_missing_path_named_like_a_zoo_model_says_how_to_name_it(args, message):
    done = invoke(*args)
    assert done.exit_code == 2 and done.output == f"error: {message}\n"


def test_a_directory_named_like_a_zoo_model_says_zoo_name(empty_directory):
    (empty_directory / "resnet50").mkdir()
    done = invoke("analyze", "resnet50")
    assert done.exit_code == 2
    assert done.output == ("error: resnet50 is a directory, not a spec file (the zoo has 'resnet50': convcalc analyze"
                           " zoo:resnet50)\n")
    assert invoke("analyze", "zoo:resnet50", "--format", "json").exit_code == 0


def test_the_library_hint_and_an_existing_file_wins(empty_directory):
    with pytest.raises(ConvcalcError) as info:
        convcalc.load_spec("specs/vgg16.yaml")
    assert str(info.value) == "no such spec file: specs/vgg16.yaml (the zoo has 'vgg16': load_spec('vgg16'))"
    (empty_directory / "vgg16").write_text("input: [3, 8, 8]\nlayers: [{type: ReLU}]\n")
    with pytest.raises(ConvcalcError) as info:       # a file 'vgg16' would win over the bare name: zoo:vgg16
        convcalc.load_spec("specs/vgg16.yaml")
    assert str(info.value) == "no such spec file: specs/vgg16.yaml (the zoo has 'vgg16': load_spec('zoo:vgg16'))"
    (empty_directory / "specs").mkdir()
    (empty_directory / "specs" / "vgg16.yaml").write_text("input: [3, 8, 8]\nlayers: [{type: ReLU}]\n")
    assert convcalc.load_spec("specs/vgg16.yaml").input_shape == (3, 8, 8)     # never replaced by the zoo's


# --------------------------------------------------------------------------- 2: lint takes zoo names

def zoo_file(name: str) -> str:
    from convcalc.spec.zoo import zoo_directory
    return str(zoo_directory() / f"{name}.yaml")


def test_lint_takes_a_bare_zoo_name_and_zoo_names():
    import json
    done = invoke("lint", "resnet50", "zoo:efficientnet_b0", "zoo:blocks/mobilenet_v3", "--format", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["files"] == [zoo_file("resnet50"), zoo_file("efficientnet_b0"),
                                                 zoo_file("blocks/mobilenet_v3")]
    text = invoke("lint", "resnet50")
    assert text.exit_code == 0 and text.output.startswith("1 spec checked: no problems (")


def test_lint_paths_takes_zoo_names_and_a_path_here_wins(empty_directory):
    from convcalc.lint import LintConfig, lint_paths
    assert lint_paths(["resnet50"], LintConfig()).files == (zoo_file("resnet50"),)
    (empty_directory / "resnet50").write_text("input: [3, 8, 8]\nlayers: [{type: ReLU}]\n")
    assert lint_paths(["resnet50"], LintConfig()).files == ("resnet50",)
    assert lint_paths(["zoo:resnet50"], LintConfig()).files == (zoo_file("resnet50"),)


@pytest.mark.parametrize("args, message", [
    (["specs/vgg16.yaml"], "no such file or directory: specs/vgg16.yaml (the zoo has 'vgg16': convcalc lint vgg16)"),
    (["zoo:resnet5"], "no zoo model 'resnet5'; did you mean resnet50, resnet18,"
                      " lenet5? (convcalc zoo lists them)"),
    (["nothing_like_a_model"], "no such file or directory: nothing_like_a_model"),
])
def test_lint_of_a_missing_path_or_zoo_name(args, message):
    done = invoke("lint", *args)
    assert done.exit_code == 2 and done.output == f"error: {message}\n"


# --------------------------------------------------------------------------- 4: published figures

# what each zoo model that models a published network is published with, taken from the tests that check it
# (never convcalc's own output): torchvision's weights metadata (test_published.PUBLISHED), Keras' trainable
# parameters and the papers' Mult-Adds (test_published_family), Fig. 1's output and layer sizes
# (test_published_transposed), Araujo et al.'s receptive fields (test_published_rf.DISTILL), torchvision's and
# Keras' counts for the TF-slim networks (test_tfslim_specs); and the exact counts of the newer torchvision
# specs, which their tests check against torchvision's own models
def published_oracles() -> dict[str, dict]:
    from test_published import PUBLISHED
    from test_published_rf import DISTILL
    oracles = {name: {"output_shape": (1000,), "params": params, "gmacs": gmacs}
               for name, (params, gmacs) in PUBLISHED.items()}
    oracles["mobilenet_v1"] = {"output_shape": (1000,), "params": 4_231_976, "gmacs": 0.569}
    oracles["xception"] = {"output_shape": (1000,), "params": 22_855_952}
    oracles["shufflenet_v1_g3"] = {"output_shape": (1000,), "gmacs": 0.14}
    oracles["unet"] = {"output_shape": (2, 388, 388), "params": 31_030_658}
    slim_params = {"vgg_16": 138_357_544, "resnet_v1_50": 25_557_032, "mobilenet_v1": 4_231_976}
    for model, (end_point, size, _, _) in DISTILL.items():
        oracles[f"tfslim/{model}"] = {"rf_at": {end_point: size},
                                      **({"params": slim_params[model]} if model in slim_params else {})}
    return oracles


# zoo specs with no published figure to show, and why
NOT_PUBLISHED = {
    "lenet5": "a fully connected C3, not the paper's connection table",
    "c3d": "checked against a hand-built torch model",
    "dcgan_generator": "checked against a hand-built torch model",
    "deepface_lc": "Fig. 2's map sizes; the paper's 'more than 120 million' is no count",
    "deeplab_aspp": "a head on a given feature map",
    "gated_inpainting": "the official code's per-layer counts",
    "wavenet": "causality and its receptive field, no published total",
    "edges": "not a published network", "tiled_demo": "not a published network", "tiny": "the README's example",
}


def test_every_zoo_model_of_a_published_network_shows_its_published_figure():
    import json
    done = invoke("zoo", "--format", "json")
    assert done.exit_code == 0, done.output
    models = {m["name"]: m for m in json.loads(done.output)["models"]}
    oracles = published_oracles()
    for name, model in models.items():
        assert model["description"], name
        if name in NOT_PUBLISHED:
            continue
        assert model["expect_met"] is True, name
        if name in oracles:
            wanted = {key: list(v) if isinstance(v, tuple) else v for key, v in oracles[name].items()}
            assert model["expect"] == wanted, name
        else:      # the torchvision specs of the newer families: exact counts, checked against torchvision's models
            assert set(model["expect"]) >= {"params", "macs"}, name
    table = invoke("zoo", "--wide").output
    cells = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in table.splitlines()
             if line.startswith("│")}
    assert cells["resnet50"] == "25.56 M, 4.089 G MACs ✓"
    assert cells["unet"] == "31.03 M ✓"
    assert cells["tfslim/vgg_16"] == "138.36 M, RF 212 at pool5 ✓"
    assert cells["shufflenet_v1_g3"] == "0.14 G MACs ✓"
    assert [name for name, cell in cells.items() if not cell] == sorted(NOT_PUBLISHED)


@pytest.mark.parametrize("expect, message", [
    ("{gmacs: 0.715}", "expect gmacs: the network has 714,188,480 MACs, 0.714188 billion, which does not round to"
                       " 0.715"),
    ("{rf_at: {features.12: 100}}", "expect rf_at: the receptive field of 'features.12' is 195x195, not 100"),
    ("{rf_at: {nothing: 100}}", "expect rf_at: no layer or block 'nothing'"),
])
def test_lint_checks_published_gmacs_and_receptive_fields(expect, message, empty_directory):
    from convcalc.spec.zoo import zoo_directory
    text = (zoo_directory() / "alexnet.yaml").read_text()
    text = re.sub(r"(?m)^expect: .*$", f"expect: {expect}", text)
    (empty_directory / "mine.yaml").write_text(text)
    done = invoke("lint", "mine.yaml", "--select", "CC103", "--format", "json")
    import json
    assert [f["message"] for f in json.loads(done.output)["findings"]] == [message]


# --------------------------------------------------------------------------- 3: the whole zoo fits the terminal

@pytest.mark.parametrize("how", ["COLUMNS", "--width"])
@pytest.mark.parametrize("columns", [60, 80, 100, 160])
def test_the_whole_zoo_fits_the_terminal_with_its_names_readable(columns, how):
    from rich.cells import cell_len
    from convcalc.spec.zoo import zoo_names
    done = invoke("zoo", "--width", str(columns)) if how == "--width" else invoke("zoo", columns=columns)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert max(cell_len(line) for line in lines) <= columns
    rows = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    rows = [row for row in rows if row]            # (the published figures may wrap)
    assert len(rows) == len(zoo_names())          # no name wraps
    whole = [name for name in zoo_names() if name in rows]
    assert [name for name in zoo_names() if name not in whole] == \
        (["lraspp_mobilenet_v3_large"] if columns == 80 else [])      # shortened to keep the fields
    assert columns != 80 or [row for row in rows if row.startswith("lras") and "…" in row and len(row) >= 20]
    for number in ("25,557,032", "4.089", "138,357,544"):
        assert any(number in line for line in lines), number
    if columns == 60:
        assert ("left out to fit 60 columns: published, RF layer, RF, input (--wide or --format json shows them)"
                in " ".join(done.output.split()))


# --------------------------------------------------------------------------- 5: block libraries

def test_zoo_lists_the_block_libraries_and_prints_one():
    import json
    from convcalc.spec.zoo import zoo_directory
    table = invoke("zoo", "--width", "60")
    assert table.exit_code == 0
    assert table.output.splitlines()[-1] == "block libraries (include: zoo:NAME): blocks/mobilenet_v3"
    assert json.loads(invoke("zoo", "--format", "json").output)["libraries"] == ["blocks/mobilenet_v3"]
    for name in ("blocks/mobilenet_v3", "zoo:blocks/mobilenet_v3", "blocks/mobilenet_v3.yaml"):
        done = invoke("zoo", name)
        assert done.exit_code == 0
        assert done.output == (zoo_directory() / "blocks" / "mobilenet_v3.yaml").read_text()
    missing = invoke("zoo", "blocks/mobilenet_v2")
    assert missing.exit_code == 2 and missing.output == (
        "error: no spec file 'blocks/mobilenet_v2' and no zoo model 'blocks/mobilenet_v2'; did you mean"
        " blocks/mobilenet_v3? (convcalc zoo lists them)\n")


# --------------------------------------------------------------------------- 6: shell completion

def complete(words: str) -> list[str]:
    done = CliRunner().invoke(app, [], prog_name="convcalc", env={
        "_CONVCALC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)})
    assert done.exit_code == 0, done.output
    return done.output.split()


def test_the_spec_arguments_complete_files_and_zoo_names(empty_directory):
    from convcalc.spec.zoo import zoo_names
    (empty_directory / "my.yaml").write_text("")
    (empty_directory / "model.onnx").write_text("")
    (empty_directory / "notes.txt").write_text("")
    (empty_directory / "sub").mkdir()
    (empty_directory / ".hidden.yaml").write_text("")
    for command in ("analyze", "run", "rf"):
        assert complete(f"convcalc {command} res") == ["resnet18", "resnet50", "resnext50_32x4d"]
        assert complete(f"convcalc {command} ") == ["model.onnx", "my.yaml", "sub/", *zoo_names()]
        assert complete(f"convcalc {command} zoo:tfslim/v") == ["zoo:tfslim/vgg_16"]
        assert complete(f"convcalc {command} zoo:bl") == []                  # a block library is no network
    assert complete("convcalc lint m") == ["model.onnx", "my.yaml", "maxout_cifar10", "mobilenet_v1",
                                           "mobilenet_v2", "mobilenet_v3_large"]
    assert complete("convcalc lint zoo:bl") == complete("convcalc zoo zoo:bl") == ["zoo:blocks/mobilenet_v3"]
    assert complete("convcalc zoo bl") == ["blocks/mobilenet_v3"]
    assert complete("convcalc zoo m") == ["maxout_cifar10", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large"]
    assert complete("convcalc rf .h") == [".hidden.yaml"]


def test_a_file_named_like_a_zoo_model_is_offered_once(empty_directory):
    (empty_directory / "tiny").mkdir()
    assert complete("convcalc analyze tin") == ["tiny/"]


def test_readme_examples_of_the_spec_commands_name_zoo_models():
    """The README's examples of analyze, run, rf and export are typed from any directory (an installed wheel has no
    specs/ folder): each names a zoo model, which the zoo has. lint's CI examples keep a project's own specs/."""
    from pathlib import Path

    from convcalc.spec.zoo import zoo_names

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", readme, re.S)
    commands = [line.lstrip("$ ").split() for block in blocks for line in block.splitlines()
                if re.match(r"\$? ?convcalc (analyze|run|rf|export) ", line)]
    assert len(commands) >= 15
    named = [words[2] for words in commands if not words[2].startswith("-")]
    files = [n for n in named if n.endswith((".onnx", ".yaml")) or n in ("-", "net.yaml")]
    assert not [n for n in named if n.startswith("specs/")], named
    assert set(named) - set(files) <= set(zoo_names()) | {"SPEC"}, set(named) - set(files) - set(zoo_names())


def test_rf_help_s_overlay_example_works_with_any_photo(empty_directory):
    """`convcalc rf --help`'s overlay example, typed with a photo of any size (100x130 here), draws the overlay: it
    resizes the photo to a size U-Net takes (without --input-size, a 100x130 photo was refused)."""
    import shlex

    import numpy as np
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((100, 130, 3)) * 255).astype("uint8")).save("photo.png")
    (line,) = [line.strip() for line in invoke("rf", "--help").output.splitlines() if "--overlay rf.png" in line]
    done = invoke(*shlex.split(line)[1:])
    assert done.exit_code == 0, done.output
    assert (empty_directory / "rf.png").exists()
