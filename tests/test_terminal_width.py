"""Issue 18 §4: every table fits the terminal, and a number is never cropped.

For each command that prints a table (analyze, run, rf and its --unit, --verify and --erf tables, lint, zoo,
layers, calc), at 60, 80, 100 and 160 columns, given as --width and as COLUMNS (piped, as CliRunner is): no line
is wider than the width; every column shown holds exactly what the full-width table (--wide) holds, top to bottom
(names may be shortened in the middle, prose may wrap); the columns not shown are named by the line under the
table; and the numbers of the full-width table are the JSON output's.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from convcalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
WIDTHS = [60, 80, 100, 160]
NOTE = re.compile(r"left out to fit (\d+) columns: (.+?) \(--wide or --format json shows them\)")

LENET = str(SPECS / "lenet5.yaml")
LINTED = [str(SPECS / "tfslim" / "alexnet_v2.yaml"), str(ROOT / "tests" / "lint_fixtures" / "gridding_hdc.yaml")]
ZOO_MODELS = ["lenet5", "resnet18", "lraspp_mobilenet_v3_large"]

# every table-printing command, as its arguments
COMMANDS = {
    "analyze": ["analyze", str(SPECS / "resnet18.yaml")],
    "run": ["run", LENET],
    "rf": ["rf", LENET],
    "rf --unit": ["rf", LENET, "--unit", "1,2"],
    "rf --verify": ["rf", LENET, "--verify"],
    "rf --erf": ["rf", LENET, "--erf", "{tmp}/erf.png", "--samples", "2"],
    "lint": ["lint", *LINTED],
    "zoo": ["zoo"],
    "layers": ["layers"],
    "layers --long": ["layers", "--long"],
    "layers TYPE": ["layers", "Conv2d"],
    "calc cost": ["calc", "cost", "--in", "128x56x56", "--out-channels", "256", "-k", "3"],
    "calc rf": ["calc", "rf", "conv3 s1, conv3 d2, pool2 s2, conv3"],
    "calc padding": ["calc", "padding", "-k", "3", "-s", "2", "--in", "224x100", "--out", "112x49"],
}
NAMES = {"name", "layer", "model"}                 # shortened in the middle, never wrapped
PROSE = {"notes", "detail", "in padding", "what it does", "meaning", "published", "variant", "made of", "types",
         "PyTorch (symmetric)"}                    # wrap between words (or fold a word without a number)
CHANGING = {"ms"}                                  # run's timings differ from run to run


_TMP: list[Path] = []


@pytest.fixture(autouse=True)
def few_zoo_models(monkeypatch, tmp_path_factory):
    import convcalc.cli.zoo as command

    monkeypatch.setattr(command, "zoo_names", lambda: ZOO_MODELS)
    monkeypatch.delenv("COLUMNS", raising=False)
    if not _TMP:
        _TMP.append(tmp_path_factory.mktemp("pictures"))


def invoke(args: list[str], env: dict[str, str] | None = None):
    args = [a.replace("{tmp}", str(_TMP[0])) for a in args]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def fitted(command: str, width: int, how: str) -> str:
    args = COMMANDS[command]
    if how == "--width":
        return invoke([*args, "--width", str(width)]).stdout
    return invoke(args, {"COLUMNS": str(width)}).stdout


_WIDE: dict[str, str] = {}
_JSON: dict[str, dict] = {}


def wide(command: str) -> str:
    if command not in _WIDE:
        _WIDE[command] = invoke([*COMMANDS[command], "--wide"]).stdout
    return _WIDE[command]


def as_json(command: str) -> dict:
    if command not in _JSON:
        _JSON[command] = json.loads(invoke([*COMMANDS[command], "--format", "json"]).stdout)
    return _JSON[command]


# --------------------------------------------------------------------------- reading a table back

def tables(text: str) -> list[dict]:
    """Every table drawn in ``text``: its headers, its columns (the cells of each line, top to bottom) and the
    columns the line after it says were left out."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("┏")]
    found = []
    for number, start in enumerate(starts):
        i = start + 1
        header_lines = []
        while not lines[i].startswith("┡"):
            header_lines.append([c.strip() for c in lines[i].rstrip()[1:-1].split("┃")])
            i += 1
        headers = [" ".join(filter(None, parts)) for parts in zip(*header_lines)]
        headers = [h if h not in headers[:k] else f"{h} #{headers[:k].count(h) + 1}" for k, h in enumerate(headers)]
        body = []
        i += 1
        while not lines[i].startswith("└"):
            body.append([c.strip() for c in lines[i].rstrip()[1:-1].split("│")])
            i += 1
        after = lines[i + 1: starts[number + 1] if number + 1 < len(starts) else len(lines)]
        note = NOTE.search(" ".join(" ".join(after).split()))
        left_out = note.group(2).split(", ") if note else []
        found.append({"headers": headers, "columns": {h: [row[k] for row in body] for k, h in enumerate(headers)},
                      "left_out": left_out, "note": note.group(0) if note else None,
                      "note_width": int(note.group(1)) if note else None})
    return found


def values(cells: list[str]) -> list[str]:
    return [c for c in cells if c]


def same_name(short: str, full: str) -> bool:
    if short == full:
        return True
    head, sep, tail = short.partition("…")
    return bool(sep) and full.startswith(head) and full.endswith(tail) and len(short) < len(full)


def check_against_wide(shown: dict, full: dict, width: int) -> None:
    """The fitted table holds the full table's columns, minus those its note names, with the same cells."""
    said = [c for c in shown["left_out"] if c != "the middle of long names"]
    assert [h for h in full["headers"] if h not in said] == shown["headers"], (shown["headers"], said)
    if said or "the middle of long names" in shown["left_out"]:
        assert shown["note_width"] == width
    for header in shown["headers"]:
        mine, theirs = shown["columns"][header], full["columns"][header]
        if header in CHANGING:
            continue
        if header in PROSE or (header == "type" and "what it does" in shown["headers"]):
            assert "".join(mine).replace(" ", "") == "".join(theirs).replace(" ", ""), header
        elif header in NAMES:
            assert len(values(mine)) == len(values(theirs)), header
            for short, whole in zip(values(mine), values(theirs)):
                assert same_name(short, whole), (short, whole)
        else:
            assert values(mine) == values(theirs), header


# --------------------------------------------------------------------------- the full table is the JSON's numbers

def shape(values_: list) -> str:
    return "×".join(str(v) for v in values_)


def number(value) -> str:
    """A JSON number as the tables write it (a float from a fraction: its shortest exact form)."""
    if isinstance(value, float) and not value.is_integer():
        return str(Fraction(value).limit_denominator(1000))
    return str(int(value))


def joined(values_: list) -> str:
    return "×".join(number(v) for v in values_)


def expected_columns(command: str) -> dict[str, list[str]]:
    """Per column of the full table, the cells the JSON output says it holds (non-empty, top to bottom)."""
    data = as_json(command)
    if command == "analyze":
        return {"params": [f"{layer['params']:,}" for layer in data["layers"]],
                "MACs": [f"{layer['macs']:,}" for layer in data["layers"]],
                "output shape": [shape(layer["output_shape"]) for layer in data["layers"]]}
    if command == "run":
        return {"shape predicted": [shape(layer["predicted_shape"]) for layer in data["layers"]],
                "actual": [shape(layer["actual_shape"]) for layer in data["layers"]],
                "MACs predicted": [f"{layer['predicted_macs']:,}" for layer in data["layers"]],
                "executed": [f"{layer['executed_macs']:,}" for layer in data["layers"]]}
    if command == "rf":
        rows = data["growth"]
        return {"size": ["whole input" if r["whole_input"] else "×".join(
                    number(s) if s == m else f"{number(m)}..{number(s)}" for s, m in zip(r["size"], r["size_min"]))
                    for r in rows],
                "stride": ["–" if r["whole_input"] else joined(r["stride"]) for r in rows]}
    if command == "rf --unit":
        axes = data["region"]["axes"]
        pair = lambda p: f"[{p[0]}, {p[1]}]"         # noqa: E731
        return {"axis": [str(i) for i in range(len(axes))], "unit": [str(a["unit"]) for a in axes],
                "region": [pair(a["region"]) for a in axes], "size": [str(a["size"]) for a in axes],
                "inside input": [pair(a["inside"]) for a in axes], "reads": [pair(a["reads"]) for a in axes],
                "centre": [a["centre"] for a in axes]}       # a number: written 11.5 or 23/2
    if command == "rf --verify":
        def field(layer, which):
            if layer["whole"]:
                return "whole input"
            axes = [a[which] for a in layer["axes"]]
            sizes = "×".join(number(a["size"]) if a["size_min"] in (None, a["size"])
                             else f"{number(a['size_min'])}..{number(a['size'])}" for a in axes)
            return " / ".join([sizes, joined([a["stride"] for a in axes]), joined([a["padding"] for a in axes])])
        layers = data["verify"]["layers"]
        return {"predicted r / S / P": [field(layer, "predicted") for layer in layers],
                "measured": [field(layer, "measured") for layer in layers if not layer["whole"]],
                "units": [str(len(layer["units"])) for layer in layers]}
    if command == "rf --erf":
        axes = data["erf"]["axes"]
        pair = lambda p: f"[{p[0]}, {p[1]}]"         # noqa: E731
        return {"theoretical size": [str(a["theoretical_size"]) for a in axes],
                "inside input": [pair(a["inside"]) for a in axes],
                "ERF side (95 %)": [str(a["side"]) for a in axes],
                "ERF std": [f"{a['std']:.2f}" for a in axes], "ERF mean": [f"{a['mean']:.2f}" for a in axes]}
    if command == "calc cost":
        variants = data["variants"]
        ratio = lambda r: "1" if r == 1 else f"{r:.4f}"        # noqa: E731
        return {"output": [shape(v["output_shape"]) for v in variants],
                "params": [f"{v['params']:,}" for v in variants],
                "× std": [ratio(v["params_ratio"]) for v in variants],
                "MACs": [f"{v['macs']:,}" for v in variants], "× std #2": [ratio(v["macs_ratio"]) for v in variants]}
    if command == "calc rf":
        rows = data["layers"]
        return {"output": [joined(r["output"]) for r in rows], "RF size": [joined(r["size"]) for r in rows],
                "jump": [joined(r["stride"]) for r in rows], "padding": [joined(r["padding"]) for r in rows],
                "start": [r["start"][0] for r in rows]}          # a number: written 3.5 or 7/2
    if command == "calc padding":
        axes = data["axes"]
        return {"in → out": [f"{a['input']} → {a['output']}" for a in axes],
                "asymmetric (lo, hi)": [f"({a['tf_same'][0]}, {a['tf_same'][1]})" for a in axes]}   # --out given
    if command == "zoo":
        models = data["models"]
        return {"input": [shape(m["input_shape"]) for m in models], "params": [f"{m['params']:,}" for m in models],
                "GMACs": [f"{m['macs'] / 1e9:.3f}" for m in models]}
    return {}


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in ("lint", "layers", "layers --long", "layers TYPE")])
def test_the_full_table_holds_the_json_numbers(command):
    (full, *_) = [t for t in tables(wide(command)) if set(expected_columns(command)) <= set(t["headers"])]
    assert full["left_out"] == []
    for header, expected in expected_columns(command).items():
        cells = values(full["columns"][header])
        assert len(cells) == len(expected), header
        for cell, value in zip(cells, expected):
            if isinstance(value, str):
                assert cell == value, header
            else:
                assert Fraction(cell) == Fraction(value).limit_denominator(10 ** 6), (header, cell, value)


def test_the_layers_tables_hold_the_registry():
    from convcalc.layers import REQUIRED, layer_types

    (conv,) = [t for t in layer_types() if t.type_name == "Conv2d"]
    (full,) = tables(wide("layers TYPE"))
    assert values(full["columns"]["argument"]) == list(conv.arguments)
    assert values(full["columns"]["default"]) == ["required" if a.default is REQUIRED else json.dumps(a.default)
                                                  for a in conv.arguments.values()]
    (listing,) = tables(wide("layers --long"))
    text = "".join(listing["columns"]["type"]).replace(" ", "")
    assert all(t.type_name in text for t in layer_types())


def listed_types(text: str) -> list[str]:
    """The type names of `convcalc layers`' family table, 'AvgPool1d/2d/3d' read as three."""
    (listing,) = tables(text)
    names = []
    for entry in " ".join(values(listing["columns"]["types"])).replace(",", " ").split():
        stem, *dims = entry.split("/")
        names.append(stem)
        names += [stem[:-2] + dim for dim in dims]
    return names


@pytest.mark.parametrize("width", WIDTHS)
def test_layers_lists_every_type_once_by_family_in_a_screen(width):
    from convcalc.layers import layer_types

    text = fitted("layers", width, "COLUMNS")
    assert sorted(listed_types(text)) == sorted(t.type_name for t in layer_types())
    assert len(text.splitlines()) <= {60: 50, 80: 36, 100: 30, 160: 22}[width], len(text.splitlines())
    (listing,) = tables(text)
    assert "convolution" in values(listing["columns"]["family"])


def test_layers_json_holds_the_registry():
    from convcalc.layers import REQUIRED, layer_types
    from convcalc.report.layers import family_of

    data = as_json("layers")
    assert data["schema_version"] == 1
    assert [t["type"] for t in data["types"]] == [t.type_name for t in layer_types()]
    (conv,) = [t for t in data["types"] if t["type"] == "Conv2d"]
    assert conv["family"] == family_of("Conv2d") == "convolution"
    (registered,) = [t for t in layer_types() if t.type_name == "Conv2d"]
    assert [a["name"] for a in conv["arguments"]] == list(registered.arguments)
    assert [a["required"] for a in conv["arguments"]] == [a.default is REQUIRED for a in registered.arguments.values()]
    one = json.loads(invoke(["layers", "conv2d", "--format", "json"]).stdout)
    assert one == conv


# --------------------------------------------------------------------------- fitted: as wide as asked, nothing cut

@pytest.mark.parametrize("how", ["--width", "COLUMNS"])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_table_fits_the_width_and_keeps_every_number_whole(command, width, how):
    text = fitted(command, width, how)
    assert text.strip(), command
    too_wide = [line for line in text.splitlines() if cell_len(line.rstrip()) > width]
    assert not too_wide, too_wide[:3]
    if command == "lint":
        check_lint(text)
        return
    shown, full = tables(text), tables(wide(command))
    assert shown and len(shown) == len(full)
    for mine, theirs in zip(shown, full):
        check_against_wide(mine, theirs, width)


def check_lint(text: str) -> None:
    """Every finding whole: its line:column, rule and message (wrapped only between words)."""
    flat = " ".join(text.split())
    for finding in as_json("lint")["findings"]:
        assert f"{finding['line']}:{finding['column']}" in text
        assert f"{finding['rule']} {' '.join(finding['message'].split())}" in flat, finding["message"]


# --------------------------------------------------------------------------- the exact lines

def test_the_left_out_line_names_the_columns_in_their_order():
    run = " ".join(fitted("run", 60, "--width").split())
    assert "left out to fit 60 columns: executed, actual, ms, type (--wide or --format json shows them)" in run
    analyze = fitted("analyze", 100, "COLUMNS")
    assert "\n           left out to fit 100 columns: RF padding, RF stride, type (--wide" in analyze   # as the notes
    assert ("left out to fit 100 columns: RF padding, RF stride, type (--wide or --format json shows them)"
            in " ".join(analyze.split()))
    narrow = " ".join(fitted("analyze", 60, "--width").split())
    assert ("left out to fit 60 columns: RF padding, RF stride, type, RF size, the middle of long names (--wide"
            " or --format json shows them)") in narrow
    rf = " ".join(fitted("rf", 60, "--width").split())
    assert "left out to fit 60 columns: growth (--wide or --format json shows them)" in rf


def test_wide_keeps_every_column_and_piped_output_without_columns_too():
    for command in ("analyze", "run", "rf --verify", "zoo"):
        narrow = invoke([*COMMANDS[command], "--width", "60", "--wide"]).stdout
        assert "left out" not in narrow and max(cell_len(line) for line in narrow.splitlines()) > 60
        headers = [t["headers"] for t in tables(narrow)]
        assert headers == [t["headers"] for t in tables(wide(command))]
        piped = invoke(COMMANDS[command], {"COLUMNS": "not a number"}).stdout
        assert "left out" not in piped and [t["headers"] for t in tables(piped)] == headers
    # prose still wraps at 200 columns when piped without COLUMNS; the table keeps its full width
    drawn = ("┏", "┃", "┡", "│", "└")
    legend = [line for line in invoke(COMMANDS["rf"]).stdout.splitlines() if not line.startswith(drawn)]
    assert max(map(cell_len, legend)) <= 200


@pytest.mark.parametrize("width", WIDTHS)
def test_calc_s_one_layer_answer_fits_too(width):
    text = invoke(["calc", "conv2d", "--in", "3x224x224", "-k", "7", "-s", "2", "-p", "3", "--out-channels", "64",
                   "--width", str(width)]).stdout
    assert max(cell_len(line.rstrip()) for line in text.splitlines()) <= width
    flat = text.split()
    assert "118,013,952" in flat and "64×112×112" in flat and "9,472" in flat


def test_a_width_below_twenty_is_a_usage_error():
    result = invoke(["analyze", LENET, "--width", "10"])
    assert result.exit_code == 2 and "--width" in result.output


def test_fit_leaves_columns_out_in_order_then_shortens_names_and_never_cuts_a_number():
    from convcalc.report.fit import Column, fit

    columns = [Column("name", kind="name"), Column("a"), Column("b", "right"), Column("note", kind="text")]
    rows = [["layer4.1.downsample.0", "xxxxxxxx", "1,234,567", "a b c 12345678901234 and more words here"]]
    shown = {}
    for width in (200, 70, 60, 50, 40, None):
        fitted_ = fit(columns, rows, width, ("a",))
        shown[width] = ([c.header for c in fitted_.columns], fitted_.widths, fitted_.rows[0][0], fitted_.total,
                        fitted_.note())
    assert shown[200] == (["name", "a", "b", "note"], [21, 8, 9, 40], "layer4.1.downsample.0", 91, "")
    assert shown[70] == (["name", "a", "b", "note"], [21, 8, 9, 19], "layer4.1.downsample.0", 70, "")  # prose wraps
    assert shown[60] == (["name", "b", "note"], [21, 9, 20], "layer4.1.downsample.0", 60,
                         "left out to fit 60 columns: a (--wide or --format json shows them)")
    assert shown[50] == (["name", "b", "note"], [17, 9, 14], "laye…downsample.0", 50,
                         "left out to fit 50 columns: a, the middle of long names (--wide or --format json shows"
                         " them)")
    # no narrower: a name keeps 8 characters, the number its 9, the prose its longest number (14 > TEXT_MIN)
    assert shown[40][:4] == (["name", "b", "note"], [8, 9, 14], "lay…le.0", 41)
    assert shown[None] == (["name", "a", "b", "note"], [21, 8, 9, 40], "layer4.1.downsample.0", 91, "")


def test_names_lose_their_indentation_first_then_their_middle_and_stay_different():
    from convcalc.report.fit import middle_cut, shorten_names

    tree = ["conv1", "    layer1.0.conv1", "    layer4.0.conv1", "      layer4.0.downsample.0"]
    assert shorten_names(tree, 27) == tree
    assert shorten_names(tree, 24) == ["conv1", "  layer1.0.conv1", "  layer4.0.conv1", "   layer4.0.downsample.0"]
    assert shorten_names(tree, 21) == ["conv1", "layer1.0.conv1", "layer4.0.conv1", "layer4.0.downsample.0"]
    assert shorten_names(tree[:3], 11) == ["conv1", "l…1.0.conv1", "l…4.0.conv1"]    # not 'lay…0.conv1' twice
    assert middle_cut("features.denseblock4.denselayer14.conv1", 30) == "features.de…denselayer14.conv1"
    relus = [f"backbone.layer{b}.{i}.relu_3" for b in (1, 2, 3) for i in (0, 1, 2)]
    shown = shorten_names(relus, 12)
    assert len(set(shown)) == len(relus) and all(len(s) <= 12 for s in shown), shown
    # names that differ in several places (inception's branches): every one kept apart at 15 characters
    dense = [f"Mixed_{block}.Branch_{b}.Conv2d_0{c}_{k}.{part}" for block in ("5b", "5c", "6b", "6c", "7a")
             for b in (0, 1, 2) for c in "abcd" for k in ("1x1", "7x1", "1x7") for part in ("Conv2D", "BatchNorm", "Relu")]
    shown = shorten_names(dense, 15)
    assert len(set(shown)) == len(dense) and all(len(s) <= 15 for s in shown), \
        [s for s in shown if shown.count(s) > 1][:4]


@pytest.mark.parametrize("model", ["resnet50", "deeplabv3_resnet50", "inception_v3", "zoo:tfslim/inception_v3"])
@pytest.mark.parametrize("width", [60, 80])
def test_analyze_names_at_narrow_widths_tell_the_layers_apart(model, width):
    text = invoke(["analyze", model, "--width", str(width)]).stdout
    (table,) = tables(text)
    names = values(table["columns"]["name"])
    assert len(set(names)) == len(names), [n for n in names if names.count(n) > 1][:4]
    assert not any(n.startswith(" ") for n in text.splitlines() if n.startswith("│ "))
    if width == 80:      # an RF tool keeps the RF size: names are shortened before it is left out
        assert "RF size" in table["headers"] and "RF size" not in table["left_out"]


@pytest.mark.parametrize("command", ["analyze", "calc cost", "calc rf", "layers", "rf"])
def test_no_line_ends_in_blanks(command):
    for text in (fitted(command, 80, "COLUMNS"), wide(command)):
        assert not [line for line in text.splitlines() if line != line.rstrip()], command


def test_calc_alone_prints_its_help_and_a_missing_value_names_the_command():
    result = invoke(["calc"])
    assert result.exit_code == 2 and result.stdout.startswith("Usage: ") and "error:" not in result.output
    assert "Commands:" in result.stdout
    missing = invoke(["run", LENET, "--resize"])
    assert missing.exit_code == 2
    assert "Option '--resize' requires an argument ('convcalc run -h' lists the options)" in missing.stderr


def test_prose_wraps_between_words_or_after_a_hyphen_never_inside_a_word():
    cost = invoke(["calc", "cost", "--in", "128x56x56", "--out-channels", "256", "-k", "3", "--width", "60"]).stdout
    assert "│ depthwise-     │" in cost and "sepa" not in cost.replace("separable", "")
    listing = invoke(["layers", "--long", "--width", "80"]).stdout
    (table,) = tables(listing)
    assert max(cell_len(c) for c in table["columns"]["type"]) <= 24        # the aliases are in the description
    assert "(torch.nn.AdaptiveAvgPoolNd)" in listing
    from convcalc.layers import layer_types

    aliased = next(t for t in layer_types() if t.aliases)
    assert f"(also {', '.join(aliased.aliases)})" in " ".join(" ".join(table["columns"]["what it does"]).split())
    assert len(listing.splitlines()) < 260
