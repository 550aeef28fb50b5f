"""`convcalc report`'s page in a real browser: Debian's headless chromium, driven by the `playwright` package
(`executable_path`; no downloaded browser). It loads the reports of shipped specs (ResNet-50, U-Net, Inception-v3,
the 3-D C3D) and of a ResNet-152, checks there are no console errors, that every layer is a node (or inside a
closed block, and a node once it is opened), that a click shows the numbers of `analyze --format json`, and keeps
screenshots in build/test-artefacts/ for a person to look at. With CI=true a missing browser fails these tests:
a gate does not pass what it could not check (`scripts/install-test-deps` installs chromium)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = ROOT / "build" / "test-artefacts"
SPECS = ["resnet50", "unet", "inception_v3", "c3d"]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
MAX_BYTES = 2 * 1024 * 1024            # the ResNet-152 page's budget
RENDER_BUDGET = 2.0                    # seconds, the issue's; printed, asserted only with a wide margin (x5)


def _browser_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}: the browser tests cannot run (run scripts/install-test-deps)")
    pytest.skip(f"{reason} (scripts/install-test-deps installs chromium; pip install -e '.[test]' playwright)")


@pytest.fixture(scope="module")
def browser():
    path = _browser_path()
    if path is None:
        _unavailable("no chromium on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=path, args=ARGS)
        yield launched
        launched.close()


def _report(spec: str, target: Path, *options: str) -> Path:
    result = CliRunner().invoke(app, ["report", spec, "-o", str(target), *options])
    assert result.exit_code == 0, result.output
    return target


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("reports")
    return {spec: _report(spec, directory / f"{spec}.html") for spec in SPECS}


def _analysis(spec: str) -> dict:
    done = CliRunner().invoke(app, ["analyze", spec, "--format", "json"])
    assert done.exit_code == 0
    return json.loads(done.stdout)


class Opened:
    """A page loaded from a file, with the console errors and failed requests it produced."""

    def __init__(self, browser, path: Path, width: int = 1400, height: int = 900) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        started = time.perf_counter()
        self.page.goto(path.as_uri())
        self.page.wait_for_function("window.convcalcReport && window.convcalcReport.rendered", timeout=60_000)
        self.seconds = time.perf_counter() - started
        self.render_ms = self.page.evaluate("convcalcReport.renderMs")

    def shoot(self, name: str, full: bool = False) -> Path:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTEFACTS / name
        self.page.screenshot(path=str(target), full_page=full)
        return target


def _missing_layers(page, layers: list[dict]) -> list[str]:
    """The layers with no node of their own and no closed block holding them."""
    return page.evaluate("""(layers) => layers.filter((l) => {
        if (document.querySelector(`.node[data-layer="${CSS.escape(l.name)}"]`)) return false;
        return !l.groups.some((g) => document.querySelector(`.node[data-group="${CSS.escape(g)}"]`));
      }).map((l) => l.name)""", layers)


def _details(page) -> dict:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#details [data-field]')]
        .map((td) => [td.dataset.field, JSON.parse(td.dataset.value)]))""")


@pytest.mark.parametrize("spec", SPECS)
def test_every_layer_is_a_node_and_a_click_shows_analyze_numbers(browser, reports, spec):
    analysis = _analysis(spec)
    opened = Opened(browser, reports[spec])
    page = opened.page
    opened.shoot(f"report-{spec}.png")
    assert _missing_layers(page, analysis["layers"]) == []
    # a layer inside a closed block: open the block by clicking it, then click the layer
    inner = next((l for l in analysis["layers"]
                  if l["groups"] and page.query_selector(f'.node[data-layer="{l["name"]}"]') is None), None)
    if inner is not None:
        block = next(g for g in inner["groups"] if page.query_selector(f'.node[data-group="{g}"]'))
        page.click(f'.node[data-group="{block}"]')
    for layer in [inner or analysis["layers"][0], analysis["layers"][0], analysis["layers"][len(analysis["layers"]) // 2]]:
        if page.query_selector(f'.node[data-layer="{layer["name"]}"]') is None:
            page.evaluate("(name) => convcalcReport.select(name)", layer["name"])
        page.click(f'.node[data-layer="{layer["name"]}"]')
        assert page.get_attribute("#details", "data-layer") == layer["name"]
        shown = _details(page)
        for key in ("type", "inputs", "output_shape", "params", "trainable_params", "buffers", "macs", "flops",
                    "activations", "weights"):
            assert shown[key] == layer[key], (layer["name"], key)
        for key in ("size", "size_min", "misaligned"):
            assert shown[f"rf.{key}"] == layer["rf"][key], (layer["name"], key)
        if not layer["rf"]["whole_input"]:
            for key in ("stride", "padding", "path_size_max", "path_size_min"):
                assert shown[f"rf.{key}"] == layer["rf"][key], (layer["name"], key)
    opened.shoot(f"report-{spec}-clicked.png")
    # a closed block's second line keeps its type's start and its output shape whole (the layer count gives way
    # first; the tooltip has it)
    blocks = page.evaluate("""() => [...document.querySelectorAll('.node[data-group]')].map((n) =>
        [n.dataset.group, n.querySelectorAll('text:not(.badge)')[1].textContent, n.querySelector('title').textContent])""")
    outputs = {layer["name"]: layer for layer in analysis["layers"]}
    for group in analysis.get("groups", []):
        for name, line, tip in blocks:
            if name == group["name"]:
                kind, _, rest = line.partition(" · ")
                out = outputs.get(group.get("output"))
                assert group["type"].startswith(kind.removesuffix("…")) and len(kind) >= 3, line
                assert out is None or rest.endswith("×".join(map(str, out["output_shape"]))), line
                assert f"({group['type']}, " in tip and " layers): click to open" in tip, tip
    page.evaluate("convcalcReport.openAll()")
    missing = page.evaluate("""(names) => names.filter((n) =>
        !document.querySelector(`.node[data-layer="${CSS.escape(n)}"]`))""", [l["name"] for l in analysis["layers"]])
    assert missing == []
    assert page.evaluate("document.querySelectorAll('.node[data-group]').length") == 0
    assert page.evaluate("document.querySelectorAll('#table tbody tr').length") == len(analysis["layers"])
    # a node's second line is "type · shape": a cut type keeps its start ("DepthwiseCo… · 96×112×112"), never
    # "…icConv2d"; the shape after it stays whole
    seconds = page.evaluate("""() => [...document.querySelectorAll('.node[data-layer]')].map((n) =>
        [n.dataset.layer, n.querySelectorAll('text:not(.badge)')[1].textContent])""")
    types = {layer["name"]: layer["type"] for layer in analysis["layers"]}
    shapes = {layer["name"]: "×".join(map(str, layer["output_shape"])) or "scalar" for layer in analysis["layers"]}
    for name, line in seconds:
        kind, _, rest = line.partition(" · ")
        assert rest == shapes[name] and types[name].startswith(kind.removesuffix("…")) and len(kind) >= 3, line
    opened.shoot(f"report-{spec}-full.png", full=True)
    assert opened.errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in opened.requests), opened.requests
    page.close()


def test_the_table_sorts_and_filters_and_the_rf_view_draws_a_unit(browser, reports):
    analysis = _analysis("resnet50")
    opened = Opened(browser, reports["resnet50"])
    page = opened.page
    page.click("#table th:nth-child(6)")                     # MACs, largest first
    first = page.get_attribute("#table tbody tr:first-child", "data-layer")
    assert first == max(analysis["layers"], key=lambda l: l["macs"])["name"]
    page.fill("#filter", "downsample")
    shown = page.evaluate("[...document.querySelectorAll('#table tbody tr')].filter((r) => !r.hidden).length")
    assert shown == sum("downsample" in l["name"] for l in analysis["layers"])
    # the RF view: layer1.0.conv2's centre unit (28, 28), then a click at the picture's top-left corner
    page.select_option("#rf-layer", "layer1.0.conv2")
    assert json.loads(page.get_attribute("#rf-text", "data-region")) == [[28 * 4 - 9, 28 * 4 + 9]] * 2
    canvas = page.query_selector("#rf-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + 2)
    assert json.loads(page.get_attribute("#rf-text", "data-units")) == [0, 0]
    assert json.loads(page.get_attribute("#rf-text", "data-region")) == [[-9, 9]] * 2
    opened.shoot("report-resnet50-fields.png")
    assert opened.errors == []
    page.close()


def test_run_and_erf_pages_draw_their_checks(browser, tmp_path):
    path = _report("tiny", tmp_path / "tiny.html", "--run", "--erf", "--samples", "2")
    opened = Opened(browser, path)
    page = opened.page
    marks = page.evaluate("[...document.querySelectorAll('#table tbody tr')].map((r) => r.children[11].textContent)")
    assert marks and set(marks) == {"✓"}
    page.evaluate("convcalcReport.select('conv2d_1')")
    assert page.query_selector("#details img") is not None            # the feature-map thumbnail
    assert page.query_selector("#erf img") is not None
    opened.shoot("report-tiny-run.png", full=True)
    assert opened.errors == []
    page.close()


def test_resnet152_size_and_render_time(browser, tmp_path):
    """ResNet-152 (torchvision's: 60,192,808 parameters) written by changing ResNet-50's stage repeats to 3, 8, 36,
    3 (He et al., Table 1): its page stays under 2 MB; the time to draw it is printed (and kept in
    build/test-artefacts/timings.txt); asserting it is left to a wide margin, never this CPU's number."""
    text = (ROOT / "specs" / "resnet50.yaml").read_text()
    text = text.replace("name: resnet50", "name: resnet152").replace("repeat: 4, planes: 128", "repeat: 8, planes: 128")
    text = text.replace("repeat: 6, planes: 256", "repeat: 36, planes: 256").replace("expect:", "# expect:")
    spec = tmp_path / "resnet152.yaml"
    spec.write_text(text)
    assert _analysis(str(spec))["totals"]["params"] == 60_192_808
    path = _report(str(spec), tmp_path / "resnet152.html")
    size = path.stat().st_size
    opened = Opened(browser, path)
    nodes = opened.page.evaluate("convcalcReport.nodeCount")
    opened.page.evaluate("convcalcReport.openAll()")
    layout_all = opened.page.evaluate("convcalcReport.lastLayoutMs")
    line = (f"ResNet-152 report: {size / 1024:.0f} KiB; page drawn in {opened.render_ms:.0f} ms ({nodes} nodes; load"
            f" to drawn {opened.seconds:.2f} s); every block opened: layout {layout_all:.0f} ms")
    print("\n" + line)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "timings.txt").write_text(line + "\n")
    opened.shoot("report-resnet152.png")
    assert size < MAX_BYTES
    assert opened.render_ms < 5 * RENDER_BUDGET * 1000
    assert opened.errors == []
    opened.page.close()


def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and no chromium"):
        _unavailable("no chromium on PATH")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="scripts/install-test-deps installs chromium"):
        _unavailable("no chromium on PATH")
