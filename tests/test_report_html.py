"""`convcalc report`: the page is one self-contained file whose data is the library's own JSON (analyze, lint),
every unit's region is Araujo's formula where the field is even, and the command is total. (The page in a real
browser: tests/test_report_html_browser.py.)"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.report.html.page import layout_library, script_json

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "convcalc" / "report" / "assets"
SPECS = ["resnet50", "unet", "inception_v3", "c3d"]         # a residual net, a U-Net, Inception, a 3-D net
PAYLOAD = re.compile(r'<script id="payload" type="application/json">(.*?)</script>', re.S)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def page_of(spec: str, directory: Path, *options: str) -> str:
    target = directory / f"{Path(spec).stem}.html"
    result = invoke("report", spec, "-o", str(target), *options)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"report written to {target} (")
    return target.read_text(encoding="utf-8")


def expand(runs: list) -> list:
    """A region table's units, each [first, last] ([None, None]: reads nothing), from its runs."""
    units = []
    for count, first, last, step_first, step_last in runs:
        units += [[None, None] if first is None else [first + i * step_first, last + i * step_last]
                  for i in range(count)]
    return units


def payload_of(page: str) -> dict:
    found = PAYLOAD.findall(page)
    assert len(found) == 1
    return json.loads(found[0])


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("pages")
    return {spec: page_of(spec, directory) for spec in SPECS}


# --------------------------------------------------------------------------- self-contained

@pytest.mark.parametrize("spec", SPECS)
def test_the_page_loads_nothing_from_the_network(pages, spec):
    page = pages[spec]
    assert not re.search(r"<(script|img|link|iframe|source|video|audio|embed|object)\b[^>]*\b(src|href|data)\s*=",
                         page, re.I), "an element that loads a file"
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", page, re.I)
    assert "@import" not in page and "<link" not in page.lower()
    for call in ("fetch(", "XMLHttpRequest", "importScripts", "WebSocket", "sendBeacon", "EventSource"):
        assert call not in page, call
    # the only absolute URL in the page is SVG's namespace name (an identifier, never loaded)
    assert set(re.findall(r"https?://[^\s\"'`)<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "sourceMappingURL" not in page


def test_the_vendored_layout_library_is_the_pinned_release():
    """assets/README.md names the file's checksum; the file and its licence are there, inlined unchanged but for
    the source-map comment."""
    code = (ASSETS / "dagre.min.js").read_bytes()
    readme = (ASSETS / "README.md").read_text(encoding="utf-8")
    assert f"`{hashlib.sha256(code).hexdigest()}`" in readme
    assert "| 3.1.4 " in readme and "MIT" in readme
    assert "Permission is hereby granted" in (ASSETS / "LICENSE.dagre").read_text(encoding="utf-8")
    text = code.decode("utf-8")
    assert layout_library() == "\n".join(line for line in text.splitlines() if not line.startswith("//# source"))
    assert 'version:re' in text.replace(" ", "") or "3.1.4" in text


def test_the_scripts_are_all_joined():
    from convcalc.report.html.page import SCRIPTS, script
    folder = ROOT / "convcalc" / "report" / "html"
    assert sorted(SCRIPTS) == sorted(p.name for p in folder.glob("*.js"))
    text = script()
    assert all((folder / name).read_text(encoding="utf-8") in text for name in SCRIPTS)


def test_script_json_cannot_end_its_element():
    data = {"name": "</script><script>alert(1)</script>", "note": "a & b <!-- c", "line": "\u2028"}
    text = script_json(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data


# --------------------------------------------------------------------------- the library's numbers, unchanged

@pytest.mark.parametrize("spec", SPECS)
def test_the_payload_is_analyze_json(pages, spec):
    analysed = invoke("analyze", spec, "--format", "json")
    assert analysed.exit_code == 0
    payload = payload_of(pages[spec])
    assert payload["analysis"] == json.loads(analysed.stdout)
    assert set(payload["layers"]) == {layer["name"] for layer in payload["analysis"]["layers"]}


@pytest.mark.parametrize("spec", ["unet", "resnet50"])
def test_the_payload_lint_is_lint_json(pages, spec):
    linted = invoke("lint", spec, "--format", "json")
    expected = json.loads(linted.stdout)
    found = payload_of(pages[spec])["lint"]
    for data in (expected, found):
        data["summary"].pop("seconds")
    assert found == expected


def test_resnet50_regions_follow_araujos_formula(pages):
    """Where a layer's field is the same for every unit (Araujo et al., Distill 2019), unit u sees
    [u*S - P, u*S - P + r - 1]: ResNet-50's conv1 (r 7, S 2, P 3) and layer1's 3x3 convs (r 19, S 4, P 9, by hand:
    conv1 7/2/3, maxpool +2*2 -> 11/4/5, 1x1 keeps it, 3x3 +2*4 -> 19/4/9)."""
    payload = payload_of(pages["resnet50"])
    regions, tables = payload["regions"]["layers"], payload["regions"]["tables"]
    for layer, (r, s, p), length in (("conv1", (7, 2, 3), 112), ("layer1.0.conv2", (19, 4, 9), 56)):
        for axis in (0, 1):
            table = expand(tables[regions[layer]["region"][axis]])
            assert table == [[u * s - p, u * s - p + r - 1] for u in range(length)]
            extent = expand(tables[regions[layer]["extent"][axis]])  # what it reads: clipped to the 224 pixels
            assert extent == [[max(0, u * s - p), min(223, u * s - p + r - 1)] for u in range(length)]
    assert "fc" not in regions and "avgpool" not in regions             # whole-input fields have no regions


def test_c3d_regions_have_three_axes_and_unet_has_its_valid_convs(pages):
    c3d = payload_of(pages["c3d"])
    assert len(c3d["regions"]["layers"]["conv1"]["region"]) == 3
    assert c3d["image"]["axes"] == ["depth", "row", "column"] and c3d["image"]["depth"] == 8
    unet = payload_of(pages["unet"])
    table = expand(unet["regions"]["tables"][unet["regions"]["layers"]["enc1.conv1"]["region"][0]])
    assert table == [[u, u + 2] for u in range(570)]          # a 3x3 conv without padding: unit u sees u..u+2
    assert unet["image"]["png"].startswith("data:image/png;base64,")


def test_the_region_of_a_unit_is_rf_units(pages):
    """The page's table gives the region `convcalc rf --unit` prints, for a unit near the border."""
    payload = payload_of(pages["inception_v3"])
    layer = "Mixed_5b.branch3x3dbl_3.conv"
    done = invoke("rf", "inception_v3", "--layer", layer, "--unit", "0,5", "--format", "json")
    assert done.exit_code == 0, done.output
    axes = json.loads(done.stdout)["region"]["axes"]
    tables, entry = payload["regions"]["tables"], payload["regions"]["layers"][layer]
    for axis, unit in enumerate((0, 5)):
        assert expand(tables[entry["region"][axis]])[unit] == axes[axis]["region"]
        assert expand(tables[entry["extent"][axis]])[unit] == axes[axis]["reads"]


def test_progressions_round_trip():
    from convcalc.report.html.payload import progressions
    pairs = [None, None, (0, 2), (1, 3), (2, 4), (2, 5), (4, 7), None, (9, 9)]
    runs = progressions(pairs)
    assert runs == [[2, None, None, 0, 0], [3, 0, 2, 1, 1], [2, 2, 5, 2, 2], [1, None, None, 0, 0], [1, 9, 9, 0, 0]]
    assert expand(runs) == [[None, None] if p is None else list(p) for p in pairs]


def test_a_long_1d_network_stays_small(tmp_path):
    """WaveNet: 126 layers of 4096 units each; one run per even field keeps the page small."""
    page = page_of("wavenet", tmp_path)
    assert len(page.encode()) < 1024 * 1024


def test_an_onnx_model_is_reported_as_analyze_and_lint_read_it(tmp_path):
    model = tmp_path / "tiny.onnx"
    exported = invoke("export", "tiny", "-o", str(model))
    assert exported.exit_code == 0, exported.output
    payload = payload_of(page_of(str(model), tmp_path))
    assert payload["analysis"] == json.loads(invoke("analyze", str(model), "--format", "json").stdout)
    linted = json.loads(invoke("lint", str(model), "--format", "json").stdout)
    for data in (linted, payload["lint"]):
        data["summary"].pop("seconds")
    assert payload["lint"] == linted and payload["lint"]["files"] == [str(model)]


# --------------------------------------------------------------------------- the command is total

def test_a_bad_spec_is_one_line(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("input: [3, 32, 32]\nlayers:\n  - {type: Conv2d, out_channels: 8, kernel_size: 99}\n")
    result = invoke("report", str(spec), "-o", str(tmp_path / "x.html"))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "x.html").exists()
    missing = invoke("report", str(tmp_path / "nothing.yaml"))
    assert missing.exit_code == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_an_unwritable_output_is_one_line(tmp_path):
    result = invoke("report", "tiny", "-o", str(tmp_path / "no" / "such" / "dir" / "r.html"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write {tmp_path / 'no' / 'such' / 'dir' / 'r.html'}: No such file or directory"]
    directory = invoke("report", "tiny", "-o", str(tmp_path))
    assert directory.exit_code == 2 and len(directory.stderr.strip().splitlines()) == 1


def test_an_unknown_layer_is_one_line(tmp_path):
    result = invoke("report", "tiny", "-o", str(tmp_path / "r.html"), "--layer", "conv9")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "no layer 'conv9'" in result.stderr


def test_the_default_name_and_stdin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("report", "tiny")
    assert result.exit_code == 0 and (tmp_path / "tiny.html").exists()
    text = (ROOT / "specs" / "tiny.yaml").read_text()
    piped = CliRunner().invoke(app, ["report", "-", "-o", "piped.html"], input=text)
    assert piped.exit_code == 0, piped.output
    payload = payload_of((tmp_path / "piped.html").read_text())
    assert payload["lint"] is None and "standard input" in payload["lint_note"]


def test_a_network_of_vectors_has_no_regions_but_a_page(tmp_path):
    spec = tmp_path / "mlp.yaml"
    spec.write_text("name: mlp\ninput: [20]\nlayers:\n  - {type: Linear, out_features: 8}\n  - {type: ReLU}\n")
    payload = payload_of(page_of(str(spec), tmp_path))
    assert payload["regions"]["layers"] == {} and payload["rf_layer"] is None


def test_run_adds_the_executors_checks_and_thumbnails(tmp_path):
    payload = payload_of(page_of("tiny", tmp_path, "--run"))
    ran = invoke("run", "tiny", "--format", "json")
    expected = json.loads(ran.stdout)
    for data in (expected, payload["run"]):        # times differ from run to run
        data.pop("seconds")
        for layer in data["layers"]:
            layer.pop("seconds")
    assert payload["run"] == expected
    assert set(payload["thumbnails"]) == {layer["name"] for layer in payload["analysis"]["layers"]}
    assert all(url.startswith("data:image/png;base64,") for url in payload["thumbnails"].values())


# --------------------------------------------------------------------------- packaging

def test_the_wheel_carries_the_page_and_the_layout_library(tmp_path):
    code = f"from setuptools import build_meta; print(build_meta.build_wheel({str(tmp_path)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    names = set(zipfile.ZipFile(tmp_path / done.stdout.strip().splitlines()[-1]).namelist())
    assert {"convcalc/report/assets/dagre.min.js", "convcalc/report/assets/LICENSE.dagre",
            "convcalc/report/assets/README.md", "convcalc/report/html/page.html", "convcalc/report/html/page_start.js",
            "convcalc/report/html/page.css", "convcalc/report/html/payload.py"} <= names


def test_ci_runs_the_readmes_test_command_which_installs_the_browser():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"this is what `\.ci/run` does\):\n\n```sh\n(.*?)\n```", readme).group(1)
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == command
    assert command.startswith("bash scripts/install-test-deps && ")
    assert "apt-get install -y --no-install-recommends chromium" in (ROOT / "scripts" / "install-test-deps").read_text()


def test_a_large_input_is_drawn_at_every_kth_position(tmp_path):
    """A 3x2100x900 input (tiny takes any size): the picture keeps every 3rd position (2100 / 1024 rounded up), and
    the regions stay in the input's own positions."""
    from PIL import Image
    import base64
    import io

    payload = payload_of(page_of("tiny", tmp_path, "--input-size", "3x2100x900"))
    image = payload["image"]
    assert image["lengths"] == [2100, 900] and image["step"] == 3
    picture = Image.open(io.BytesIO(base64.b64decode(image["png"].split(",", 1)[1])))
    assert picture.size == (300, 700)
    regions = payload["regions"]
    assert len(expand(regions["tables"][regions["layers"]["conv2d_1"]["region"][0]])) == 2100
