"""Pictures people can read (issue 18 §8) and progress on stderr (§5).

* The ERF heatmap: a PNG whose plot (where its ``convcalc:plot`` text chunk says) shows the theoretical region with a
  margin, the region outlined in cyan and the 95 % window dashed in green at the pixels computed here from
  ``convcalc rf --format json``'s numbers, a colour bar (a column of pixels monotone in lightness), a title and a
  legend; ``--erf-scale log`` lights more of the field than ``linear``.
* Overlays: each unit's box, its centre marked, a legend in the units' colours.
* Feature-map grids: small maps scaled up by whole pixels (nearest), labelled with their channel index.
* The growth chart: one bar per layer, as long as the share of the input its field spans.
* Progress: shown on a terminal stderr (a pseudo-terminal), not when piped nor with --quiet; stdout is byte-identical.
"""

from __future__ import annotations

import json
import math
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.report.canvas import BACKGROUND, GEOMETRY_KEY
from convcalc.report.drawing import BOX_COLOUR, PALETTE, WINDOW_COLOUR
from convcalc.report.maps import _to_uint8
from convcalc.report.rf_pictures import BAR, GROWTH_COLOUR, MERGE_COLOUR, ROW

RUNNER = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

NET = [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1},
       {"type": "ReLU"},
       {"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1, "name": "c2"},
       {"type": "ReLU"},
       {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1, "name": "c3"}]


def write_spec(tmp_path: Path, shape, layers, name: str = "net") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "input": list(shape), "layers": layers}, sort_keys=False))
    return path


def invoke(*args) -> dict | str:
    result = RUNNER.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "json" in args else result.stdout


def picture(path: Path) -> tuple[np.ndarray, dict]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        plot = json.loads(image.text[GEOMETRY_KEY])
        return np.asarray(image.convert("RGB")), plot


def ring(shape, top: int, left: int, bottom: int, right: int, width: int) -> np.ndarray:
    """The pixels of a ``width``-pixel outline of [top, bottom] x [left, right], inwards."""
    mask = np.zeros(shape[:2], dtype=bool)
    mask[top:bottom + 1, left:right + 1] = True
    mask[top + width:bottom + 1 - width, left + width:right + 1 - width] = False
    return mask


def block_edges(box, plot) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) pixels of the blocks input box (rows, columns) spans on the plot."""
    (r0, r1), (c0, c1) = box
    zoom, (f0, f1) = plot["zoom"], plot["first"]
    return (plot["y"] + (r0 - f0) * zoom, plot["x"] + (c0 - f1) * zoom,
            plot["y"] + (r1 - f0 + 1) * zoom - 1, plot["x"] + (c1 - f1 + 1) * zoom - 1)


def is_colour(pixels: np.ndarray, colour) -> np.ndarray:
    return (pixels == np.array(colour, dtype=np.uint8)).all(axis=-1)


def lightness(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def text_pixels(region: np.ndarray) -> int:
    """Pixels of a region of the picture that differ from the background (text, lines)."""
    return int((np.abs(region.astype(int) - np.array(BACKGROUND)).sum(axis=-1) > 60).sum())


# --------------------------------------------------------------------------- ERF


@pytest.fixture(scope="module")
def erf_pictures(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("erf")
    spec = write_spec(tmp_path, (1, 24, 24), NET)
    found = {}
    for scale in ("log", "linear"):
        path = tmp_path / f"erf_{scale}.png"
        data = invoke("rf", spec, "--erf", path, "--erf-scale", scale, "--samples", "3", "--unit", "5,6",
                      "--format", "json")
        found[scale] = (path, data)
    return found


def test_erf_picture_geometry_and_boxes(erf_pictures):
    path, data = erf_pictures["log"]
    pixels, plot = picture(path)
    erf = data["erf"]
    # c3: r = 3 + 2 + 2*2 = 9, S = 2, P = 4; unit (5, 6) sees [6, 14] x [8, 16]: the plot shows it with a margin of
    # half its size (4) on each side
    box = [axis["inside"] for axis in erf["axes"]]
    assert box == [[6, 14], [8, 16]]
    assert plot["first"] == [b0 - 4 for b0, _ in box] and plot["last"] == [b1 + 4 for _, b1 in box]
    shown = [last - first + 1 for first, last in zip(plot["first"], plot["last"])]
    assert plot["zoom"] == math.ceil(320 / max(shown))
    height, width = pixels.shape[:2]
    assert height >= plot["y"] + shown[0] * plot["zoom"] and width >= plot["x"] + shown[1] * plot["zoom"] + 40
    # the 95 % window: the positions nearest the unit's centre, from the JSON's side and centre
    window = []
    for axis in erf["axes"]:
        first = math.ceil(axis["centre"] - (axis["side"] - 1) / 2)
        window.append([first, first + axis["side"] - 1])
    assert [axis["window"] for axis in erf["axes"]] == window
    zoom = plot["zoom"]
    line = 2 if zoom >= 4 else 1
    outer = ring(pixels.shape, *block_edges(box, plot), line)
    assert is_colour(pixels[outer], BOX_COLOUR).all()
    top, left, bottom, right = block_edges(window, plot)
    inner = ring(pixels.shape, top + line, left + line, bottom - line, right - line, line)   # just inside
    green = is_colour(pixels[inner], WINDOW_COLOUR)
    assert 0.45 < green.mean() < 0.75                                      # dashed: 6 on, 4 off
    plot_mask = np.zeros(pixels.shape[:2], dtype=bool)
    plot_mask[plot["y"]:plot["y"] + shown[0] * zoom, plot["x"]:plot["x"] + shown[1] * zoom] = True
    assert not is_colour(pixels[plot_mask & ~outer], BOX_COLOUR).any()
    assert not is_colour(pixels[plot_mask & ~inner], WINDOW_COLOUR).any()


def test_erf_picture_has_a_colour_bar_title_and_legend(erf_pictures):
    path, _ = erf_pictures["log"]
    pixels, plot = picture(path)
    plot_right = plot["x"] + (plot["last"][1] - plot["first"][1] + 1) * plot["zoom"]
    plot_height = (plot["last"][0] - plot["first"][0] + 1) * plot["zoom"]
    bars = []
    for x in range(plot_right + 1, pixels.shape[1]):
        column = pixels[:, x]
        coloured = np.flatnonzero(np.abs(column.astype(int) - np.array(BACKGROUND)).sum(axis=-1) > 0)
        if len(coloured) < plot_height * 0.9:
            continue
        runs = np.split(coloured, np.flatnonzero(np.diff(coloured) != 1) + 1)
        longest = max(runs, key=len)
        values = lightness(column[longest])
        if len(longest) >= plot_height * 0.9 and (np.diff(values) <= 1e-9).all() and values[0] - values[-1] > 150:
            bars.append(x)
    assert len(bars) >= 10                                  # a bar ~16 pixels wide, light at the top, dark below
    assert text_pixels(pixels[:plot["y"] - 20, :]) > 200     # the title lines
    assert text_pixels(pixels[:, bars[-1] + 4:]) > 100       # the tick values beside the bar
    legend = pixels[plot["y"] + plot_height + 40:, :]
    assert is_colour(legend, BOX_COLOUR).sum() > 20 and is_colour(legend, WINDOW_COLOUR).sum() > 10
    assert text_pixels(legend) > 300


def test_log_scale_lights_more_of_the_field_than_linear(erf_pictures):
    lit = {}
    for scale, (path, data) in erf_pictures.items():
        pixels, plot = picture(path)
        (r0, r1), (c0, c1) = (axis["inside"] for axis in data["erf"]["axes"])
        top, left, bottom, right = block_edges(((r0, r1), (c0, c1)), plot)
        inside = pixels[top + 3:bottom - 2, left + 3:right - 2]
        lit[scale] = (lightness(inside) > 100).mean()
    assert lit["log"] > lit["linear"] + 0.1


# --------------------------------------------------------------------------- overlays, maps, growth


def test_overlay_marks_each_unit_and_has_a_legend(tmp_path):
    spec = write_spec(tmp_path, (3, 20, 20), NET)
    path = tmp_path / "overlay.png"
    data = invoke("rf", spec, "--overlay", path, "--format", "json")
    pixels, plot = picture(path)
    zoom = plot["zoom"]
    assert plot["first"] == [0, 0] and plot["last"] == [19, 19] and zoom == math.ceil(320 / 20)
    units = data["overlay"]["units"]
    assert [u["unit"] for u in units] == [[5, 5], [0, 0]]
    plot_bottom = plot["y"] + 20 * zoom
    for index, unit in enumerate(units):
        colour = PALETTE[index]
        box = [axis["inside"] for axis in unit["axes"]]
        outline = ring(pixels.shape, *block_edges(box, plot), 2)
        assert is_colour(pixels[outline], colour).mean() > 0.9          # (the centre's cross may cross it)
        y, x = (plot["y"] + round((unit["axes"][0]["centre"] + 0.5) * zoom),
                plot["x"] + round((unit["axes"][1]["centre"] + 0.5) * zoom))
        assert is_colour(pixels[y - 1:y + 1, x - 6:x + 6], colour).mean() > 0.8   # the cross's arm
        assert is_colour(pixels[plot_bottom + 30:], colour).sum() > 20            # its legend sample
    assert text_pixels(pixels[plot_bottom + 30:]) > 300


def test_feature_maps_are_scaled_up_and_labelled(tmp_path):
    spec = write_spec(tmp_path, (3, 6, 8), [{"type": "ReLU", "name": "r"}])
    values = np.random.default_rng(0).uniform(0.1, 1.0, (3, 6, 8))
    np.save(tmp_path / "x.npy", values)
    maps = tmp_path / "maps"
    invoke("run", spec, "--input", tmp_path / "x.npy", "--save-maps", maps, "--rf-check", "none")
    with Image.open(maps / "000_r.png") as image:
        assert image.mode == "L"
        plot = json.loads(image.text[GEOMETRY_KEY])
        pixels = np.asarray(image)
    zoom = plot["zoom"]
    assert zoom == math.ceil(96 / 8)                                     # 8 columns -> 96 pixels, nearest
    assert len(plot["tiles"]) == 3
    for channel, (x, y) in enumerate(plot["tiles"]):
        expected = np.kron(_to_uint8(values[channel]), np.ones((zoom, zoom), dtype=np.uint8))
        assert (pixels[y:y + 6 * zoom, x:x + 8 * zoom] == expected).all()
        label = pixels[y - 14:y - 1, x:x + 8 * zoom]                     # the channel's index and range above it
        assert (label > 120).sum() > 20
    assert (pixels[:plot["tiles"][0][1] - 16] > 120).sum() > 300        # the title


def test_growth_chart(tmp_path):
    layers = [*NET[:3], {"type": "Conv2d", "out_channels": 3, "kernel_size": 1, "name": "skip", "from": "c2"},
              {"type": "Add", "from": ["c2", "skip"], "name": "sum"}]
    spec = write_spec(tmp_path, (1, 16, 16), layers)
    path = tmp_path / "growth.png"
    data = invoke("rf", spec, "--growth-png", path, "--format", "json")
    assert data["growth_picture"] == str(path)
    rows = data["growth"]
    pixels, plot = picture(path)
    assert plot["rows"] == len(rows) and plot["row"] == ROW and plot["bar"] == BAR
    for index, row in enumerate(rows):
        share = math.prod(row["size"][a] / 16 if row["size"][a] < 16 else 1 for a in range(2)) ** 0.5
        length = max(1, round(BAR * share))
        y = plot["y"] + index * ROW + ROW // 2
        colour = MERGE_COLOUR if len(row["inputs"]) > 1 else GROWTH_COLOUR
        assert is_colour(pixels[y, plot["x"] + 1:plot["x"] + length], colour).all(), row["name"]
        assert not is_colour(pixels[y, plot["x"] + length:plot["x"] + BAR], colour).any(), row["name"]
        assert text_pixels(pixels[y - 6:y + 6, :plot["x"] - 4]) > 20         # its name and type
    table = invoke("rf", spec, "--growth-png", path)
    assert f"growth chart written to {path}" in table


# --------------------------------------------------------------------------- progress on stderr


def run_with_stderr(args, tty: bool, cwd: Path) -> tuple[bytes, bytes]:
    """Run ``convcalc ARGS`` with stdout piped and stderr a pseudo-terminal (``tty``) or a pipe."""
    command = [sys.executable, "-m", "convcalc", *map(str, args)]
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm", "PYTHONPATH": str(ROOT)}
    env.pop("FORCE_COLOR", None)
    env.pop("NO_COLOR", None)
    if not tty:
        done = subprocess.run(command, capture_output=True, cwd=cwd, env=env, timeout=120)
        assert done.returncode in (0, 1), done.stderr.decode()
        return done.stdout, done.stderr
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, cwd=cwd, env=env)
    os.close(follower)
    err = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        elif process.poll() is not None:
            break
    out = process.stdout.read()
    process.wait(timeout=120)
    os.close(leader)
    assert process.returncode in (0, 1), err.decode(errors="replace")
    return out, err


@pytest.fixture(scope="module")
def progress_case(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("progress")
    spec = write_spec(tmp_path, (1, 16, 16), NET)
    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        Image.fromarray(np.full((16, 16), 40 * index, dtype=np.uint8)).save(images / f"{index}.png")
    return tmp_path, spec, images


@pytest.mark.parametrize("command, stage", [
    (["rf", "{spec}", "--erf", "{dir}/erf.png", "--samples", "2", "--verify", "--format", "json"],
     b"effective receptive field"),
    (["run", "{spec}", "--input", "{images}", "--format", "json"], b"receptive-field proof"),
    (["lint", "{spec}", "{spec}", "--format", "json"], b"linting"),
], ids=["rf", "run", "lint"])
def test_progress_only_on_a_terminal_stderr(progress_case, command, stage):
    tmp_path, spec, images = progress_case
    args = [part.format(spec=spec, dir=tmp_path, images=images) for part in command]
    out_tty, err_tty = run_with_stderr(args, tty=True, cwd=ROOT)
    out_pipe, err_pipe = run_with_stderr(args, tty=False, cwd=ROOT)
    out_quiet, err_quiet = run_with_stderr([*args, "--quiet"], tty=True, cwd=ROOT)
    assert stage in err_tty
    assert stage not in err_pipe and err_pipe == b""
    assert stage not in err_quiet
    # stdout byte-identical (the wall-clock "seconds" of run and lint aside)
    outputs = {re.sub(rb'"seconds": [0-9.e+-]+', b'"seconds": 0', out) for out in (out_tty, out_pipe, out_quiet)}
    assert len(outputs) == 1
    if command[0] == "rf":
        assert out_tty == out_pipe == out_quiet
    data = json.loads(out_tty)
    if command[0] == "run":
        assert b"reading inputs" in err_tty and b"running" in err_tty
        assert data["input"]["shape"] == [3, 1, 16, 16]


def test_long_one_dimensional_axes_are_drawn_in_blocks(tmp_path):
    spec = write_spec(tmp_path, (1, 5000), [{"type": "Conv1d", "out_channels": 1, "kernel_size": 801, "padding": 400,
                                            "name": "wide"}])
    path = tmp_path / "erf1d.png"
    data = invoke("rf", spec, "--erf", path, "--samples", "1", "--unit", "2500", "--format", "json")
    (b0, b1), = [axis["inside"] for axis in data["erf"]["axes"]]
    assert (b0, b1) == (2100, 2900)
    pixels, plot = picture(path)
    first, last = plot["first"][0], plot["last"][0]
    assert (first, last) == (b0 - 400, b1 + 400)                 # a margin of half the field's size
    bin = plot["bin"]
    assert bin == math.ceil((last - first + 1) / 1200) and plot["zoom"] == 1
    y = plot["y"] + 64
    left, right = plot["x"] + (b0 - first) // bin, plot["x"] + (b1 - first) // bin
    assert is_colour(pixels[y, left], BOX_COLOUR) and is_colour(pixels[y, right], BOX_COLOUR)
    assert not is_colour(pixels[y, plot["x"]:left], BOX_COLOUR).any()
    width = math.ceil((last - first + 1) / bin)
    assert not is_colour(pixels[y, right + 1:plot["x"] + width], BOX_COLOUR).any()
    overlay = tmp_path / "overlay1d.png"
    invoke("rf", spec, "--overlay", overlay, "--unit", "2500")
    pixels, plot = picture(overlay)
    assert plot["bin"] == math.ceil(5000 / 1200) and plot["first"] == [0] and plot["last"] == [4999]
    left = plot["x"] + b0 // plot["bin"]
    assert is_colour(pixels[plot["y"] + 64, left], PALETTE[0])


def test_vectors_and_one_value_maps_are_one_grid_on_a_shared_scale(tmp_path):
    layers = [{"type": "AdaptiveAvgPool2d", "name": "pool", "output_size": 1}, {"type": "Flatten", "name": "flat"}]
    spec = write_spec(tmp_path, (40, 3, 3), layers)
    values = np.random.default_rng(1).uniform(-1.0, 1.0, (40, 3, 3))
    np.save(tmp_path / "x.npy", values)
    maps = tmp_path / "maps"
    invoke("run", spec, "--input", tmp_path / "x.npy", "--save-maps", maps, "--rf-check", "none")
    expected = values.mean(axis=(1, 2))
    for name in ("000_pool.png", "001_flat.png"):
        with Image.open(maps / name) as image:
            plot = json.loads(image.text[GEOMETRY_KEY])
            pixels = np.asarray(image)
        cell, columns, (x, y) = plot["zoom"], plot["columns"], plot["tiles"][0]
        assert 10 <= cell <= 24 and pixels.shape[1] <= 1200 and pixels.shape[0] < pixels.shape[1]
        shades = _to_uint8(expected)                     # one scale for every value, not one per channel
        for index in (0, 7, 39):
            r, c = divmod(index, columns)
            assert pixels[y + r * cell + cell // 2, x + c * cell + cell // 2] == shades[index]
        assert len(set(pixels[y + cell // 2, x:x + columns * cell:cell].tolist())) > 4   # not all black


def test_a_long_vector_stays_a_readable_size():
    from convcalc.report.maps import map_grid

    for count in (4096, 25088):
        pixels = map_grid(np.arange(count, dtype=float)).pixels
        assert pixels.shape[1] <= 1200 and pixels.shape[0] <= 1200, (count, pixels.shape)


def test_growth_chart_names_are_cut_in_the_middle_and_stay_different():
    from convcalc.report.canvas import text_size
    from convcalc.report.rf_pictures import _fit_names

    names = [f"features.denseblock{b}.denselayer{n}.{part}" for b in (3, 4) for n in (1, 14)
             for part in ("norm1", "conv1", "concat_1")] + ["conv1"]
    shown = _fit_names(names, 220)
    assert len(set(shown)) == len(names) and shown[-1] == "conv1"
    assert all(text_size(s)[0] <= 220 for s in shown)
    for short, full in zip(shown, names):
        head, _, tail = short.partition("…")
        assert full.startswith(head) and full.endswith(tail) and not short.endswith("..")
    assert any(s.endswith("denseblock4.denselayer14.conv1") for s in shown)


def test_overlay_footer_names_its_unit_and_topk_names_the_file(tmp_path):
    spec = write_spec(tmp_path, (3, 20, 20), NET)
    text = " ".join(invoke("rf", spec, "--overlay", tmp_path / "o.png").split())
    assert re.search(r"[\d.]+ % of the region's box of unit \(5, 5\) of layer '[^']+' lies in padding", text)
    assert re.search(r"[\d.]+ % of the region's box of unit \(0, 0\) of layer '[^']+' lies in padding", text)
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("cat.png", "dog.png"):
        Image.fromarray((rng.uniform(0, 255, (20, 20, 3))).astype(np.uint8)).save(images / name)
    np.save(images / "more.npy", rng.uniform(0, 1, (2, 3, 20, 20)))
    classifier = write_spec(tmp_path, (3, 20, 20), [*NET, {"type": "AdaptiveAvgPool2d", "output_size": 1},
                                                    {"type": "Flatten"}], name="classifier")
    ran = invoke("run", classifier, "--input", images, "--topk", "1", "--rf-check", "none")
    for index, name in enumerate(["cat.png", "dog.png", "more.npy[0]", "more.npy[1]"]):
        assert f"top-1 of sample {index} ({name}): " in ran, ran
