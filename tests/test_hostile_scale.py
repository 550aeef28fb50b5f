"""Scale (issue 16): output and analysis linear in the number of layers, lint as cheap as analyze.

Each test fails on the code before its fix: every layer's JSON listed its whole max/min path (quadratic: 3 GB and a
MemoryError for 10,000 layers); the table went through Rich cell by cell (13 s for 10,000 rows); `Summary.layer`
searched the layers and the peak-memory walk summed every live output at every layer (quadratic); lint's gridding
check kept a bit per offset a dilated stack spans and tested them one shift at a time (minutes at dilation 10^6),
copied every chain of windows into its successor (quadratic memory: 700 MB for 12,000 convs) and its checkerboard
check kept a count per stride phase (gigabytes at stride 10^9); dead branches sharing layers were walked once per
dead end (and those layers counted in each).
"""

from __future__ import annotations

import io
import itertools
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner

import convcalc
from convcalc.analysis.regions import growth
from convcalc.analysis.summary import _peak
from convcalc.cli import app
from convcalc.layers.base import ScatterAxis, WindowAxis
from convcalc.lint import LintConfig, lint_paths
from convcalc.lint.checks import tap_counts
from convcalc.lint.gridding import holes_of, reached_runs
from convcalc.report.summary import LayerTable, to_json, to_table

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
RUNNER = CliRunner()
SECONDS = 10          # generous: each case takes about 2 s on a loaded 2-core machine


def block_chain(pairs: int) -> str:
    """A spec of ``2 * pairs`` layers: a two-layer block repeated."""
    return ("name: chain\ninput: [4, 32, 32]\nblocks:\n  B:\n    layers:\n"
            "      - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n"
            "      - {type: ReLU}\n"
            f"layers:\n  - {{name: b, type: B, repeat: {pairs}}}\n")


def flat_chain(layers: int) -> str:
    """A spec listing ``layers`` layers one by one."""
    lines = ["name: flat", "input: [4, 32, 32]", "layers:"]
    lines += ["  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}" if i % 2 == 0 else "  - {type: ReLU}"
              for i in range(layers)]
    return "\n".join(lines) + "\n"


def summary_of(text: str):
    return convcalc.analyze(convcalc.build_graph(convcalc.parse_spec(text)))


def child(code: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``code`` in a fresh interpreter (a hang or a blown memory stays there), timed."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return done, time.perf_counter() - started


@pytest.fixture(scope="module")
def ten_thousand():
    return summary_of(flat_chain(10_000))


# --------------------------------------------------------------------------- the JSON: linear, paths as links

def test_json_grows_linearly_with_the_layers():
    sizes = [len(json.dumps(to_json(summary_of(block_chain(n))), indent=2)) for n in (150, 300, 600)]
    # schema 1 listed every path in every layer: each doubling multiplied the size by about 3.5
    assert sizes[1] / sizes[0] < 2.05 and sizes[2] / sizes[1] < 2.05, sizes
    assert sizes[2] < 1200 * 1200, sizes                  # about 1 KB a layer


def test_json_of_10000_layers_is_small_and_fast(tmp_path):
    spec = tmp_path / "chain.yaml"
    spec.write_text(block_chain(5000))
    code = ("import io, json, resource, sys, time\nfrom typer.testing import CliRunner\nfrom convcalc.cli import app\n"
            "started = time.perf_counter()\n"
            f"result = CliRunner().invoke(app, ['analyze', {str(spec)!r}, '--format', 'json'])\n"
            "seconds = round(time.perf_counter() - started, 2)\n"
            "data = json.loads(result.stdout)\n"
            "print(result.exit_code, len(result.stdout), len(data['layers']), data['schema_version'], seconds,"
            " int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024)\n")
    done, seconds = child(code)
    assert done.returncode == 0, done.stderr[-2000:]
    exit_code, size, layers, version, inside, megabytes = done.stdout.split()
    assert (exit_code, layers, version) == ("0", "10000", "3")   # schema 3: misaligned marks the merge only
    assert int(size) < 15_000_000 and int(megabytes) < 600, done.stdout
    assert float(inside) < SECONDS and seconds < SECONDS + 5, done.stdout


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_path_links_rebuild_every_path(spec):
    """A layer's max (min) path is its max_path_prev's max (min) path, then itself: the links rebuild exactly what
    the analyzer's `Field.max_path` / `min_path` hold."""
    summary = convcalc.analyze(convcalc.build_graph(convcalc.load_spec(spec)))
    data = to_json(summary)
    assert data["schema_version"] == 3
    layers = {layer["name"]: layer for layer in data["layers"]}
    for key in ("max", "min"):
        rebuilt: dict[str, tuple[str, ...]] = {}
        for layer in data["layers"]:
            rf = layer["rf"]
            assert f"{key}_path" not in rf
            before = rf[f"{key}_path_prev"]
            assert before is None or before in layers
            rebuilt[layer["name"]] = (rebuilt[before] if before is not None else ()) + (layer["name"],)
        for row in summary.layers:
            assert rebuilt[row.name] == getattr(row.rf, f"{key}_path"), (spec.name, row.name, key)


# --------------------------------------------------------------------------- the table: Rich's drawing, linear

TABLE_CASES = [("tiny", None, False), ("mobilenet_v1", None, True), ("resnet18", 1, False),
               ("gated_inpainting", None, True), ("xception", 2, True)]


@pytest.mark.parametrize("name, depth, parts", TABLE_CASES)
@pytest.mark.parametrize("colour", [False, True])
def test_the_table_is_drawn_exactly_as_rich_draws_it(name, depth, parts, colour):
    summary = convcalc.analyze(convcalc.build_graph(convcalc.load_spec(ROOT / "specs" / f"{name}.yaml")))
    table = to_table(summary, depth, parts).renderables[0]
    assert isinstance(table, LayerTable)
    for width in (12, 40, 80, 133, 250):
        drawn = []
        for shown in (table, table.full_table()):
            console = Console(file=io.StringIO(), width=width, force_terminal=colour,
                              color_system="truecolor" if colour else None)
            console.print(shown)
            drawn.append(console.file.getvalue())
        assert drawn[0] == drawn[1], (name, width)


def test_the_table_of_10000_layers_is_fast(ten_thousand, monkeypatch):
    """Rich draws the frame; the rows never go through its per-cell rendering (80,000 cells: 8 to 15 s)."""
    calls = []
    render_lines = Console.render_lines
    monkeypatch.setattr(Console, "render_lines", lambda *a, **k: calls.append(1) or render_lines(*a, **k))
    started = time.perf_counter()
    console = Console(file=io.StringIO(), width=160)
    console.print(to_table(ten_thousand))
    seconds = time.perf_counter() - started
    lines = console.file.getvalue().splitlines()
    assert lines[4].startswith("│ conv2d_1 ") and any(line.startswith("│ relu_5000 ") for line in lines[-12:])
    assert len(calls) < 100 and seconds < SECONDS, (len(calls), seconds)


def test_the_cli_tabulates_10000_listed_layers_within_seconds(tmp_path):
    spec = tmp_path / "flat.yaml"
    spec.write_text(flat_chain(10_000))
    started = time.perf_counter()
    result = RUNNER.invoke(app, ["analyze", str(spec)])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output[-2000:]
    assert "relu_5000" in result.stdout and seconds < SECONDS, seconds


def test_layer_lookups_and_the_growth_chart_are_linear(ten_thousand):
    """A search per lookup took 7 s for these 10,000; the chart rebuilt every path to read its last link (3.4 s)."""
    last = ten_thousand.layers[-1]
    started = time.perf_counter()
    assert all(ten_thousand.layer(last.name) is last for _ in range(10_000))
    assert time.perf_counter() - started < 1
    started = time.perf_counter()
    rows = growth(ten_thousand)
    assert time.perf_counter() - started < 1.5
    assert len(rows) == 10_000 and rows[-1].size == (10_001, 10_001)


# --------------------------------------------------------------------------- peak memory in one pass

def peak_by_definition(graph, sizes) -> int:
    """The peak as the docstring defines it, summing what is alive after every layer (quadratic; small graphs)."""
    last_use: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            last_use[name] = index
    last_use[graph.output] = len(graph.nodes)
    live: dict[str, int] = {}
    peak = 0
    for index, node in enumerate(graph.nodes):
        live[node.name] = sizes[node.name]
        peak = max(peak, sum(live.values()))
        for name in [n for n in live if last_use.get(n, -1) <= index]:
            del live[name]
    return peak


def random_graph(rng: random.Random, count: int):
    nodes = []
    for index in range(count):
        earlier = ["input"] + [f"n{i}" for i in range(index)]
        inputs = tuple(rng.sample(earlier, k=min(len(earlier), rng.randint(1, 3))))
        nodes.append(SimpleNamespace(name=f"n{index}", inputs=inputs))
    sizes = {node.name: rng.randint(1, 1000) for node in nodes}
    sizes["input"] = 7
    return SimpleNamespace(nodes=tuple(nodes), output=rng.choice([n.name for n in nodes])), sizes


def test_peak_matches_its_definition():
    rng = random.Random(16)
    for _ in range(300):
        graph, sizes = random_graph(rng, rng.randint(1, 25))
        assert _peak(graph, sizes) == peak_by_definition(graph, sizes)
    for spec in SPECS:
        summary = convcalc.analyze(convcalc.build_graph(convcalc.load_spec(spec)))
        sizes = {"input": 0, **{row.name: row.activations for row in summary.layers}}
        assert summary.totals.peak_activations == peak_by_definition(summary.graph, sizes), spec.name


def test_peak_of_many_live_outputs_is_linear():
    count = 30_000                               # every output alive until the last layer reads them all
    nodes = [SimpleNamespace(name=f"n{i}", inputs=("input",)) for i in range(count - 1)]
    nodes.append(SimpleNamespace(name="last", inputs=tuple(n.name for n in nodes)))
    sizes = {"input": 1, **{n.name: 2 for n in nodes}, "last": 5}
    started = time.perf_counter()
    assert _peak(SimpleNamespace(nodes=tuple(nodes), output="last"), sizes) == 2 * (count - 1) + 5
    assert time.perf_counter() - started < 2


# --------------------------------------------------------------------------- lint: gridding, checkerboard, dead layers

def offsets_by_bits(windows) -> int:
    """The reached offsets as a bit set, layer by layer (the definition; small spans only)."""
    offsets, stride = 1, 1
    for window in windows:
        total = 0
        for m in range(window.kernel):
            total |= offsets << (m * window.dilation * stride)
        offsets, stride = total, stride * window.stride
    return offsets


def test_reached_runs_match_the_bit_set():
    rng = random.Random(1605)
    for _ in range(2000):
        windows = [WindowAxis(rng.randint(1, 5), rng.choice([1, 1, 2, 3]), rng.randint(1, 9), 0, 0)
                   for _ in range(rng.randint(1, 5))]
        bits = offsets_by_bits(windows)
        span = bits.bit_length()
        holes = [o for o in range(span) if not bits >> o & 1]
        runs = reached_runs(windows)
        assert runs[-1][1] + 1 == span and holes_of(runs) == (len(holes), holes[:5]), windows


def test_reached_runs_cost_the_layers_not_the_dilations():
    """Taps c_i in {0, 1, 2} at dilations D + i (D = 10^12, i < 12) reach sum(c_i) * D + sum(c_i * i): offsets
    apart by ~D for each total sum(c_i), each a set of small sums, counted here as pairs (spans 2.4e13 offsets)."""
    big, count = 10**12, 12
    started = time.perf_counter()
    runs = reached_runs([WindowAxis(3, 1, big + i, 0, 0) for i in range(count)])
    assert time.perf_counter() - started < 5
    pairs = {(0, 0)}
    for i in range(count):
        pairs = {(a + c, b + c * i) for a, b in pairs for c in range(3)}
    expected = []
    for a in sorted({a for a, _ in pairs}):
        for b in sorted(b for x, b in pairs if x == a):
            if expected and expected[-1][1] + 1 == a * big + b:
                expected[-1] = (expected[-1][0], a * big + b)
            else:
                expected.append((a * big + b, a * big + b))
    assert runs == expected


def dilated_spec(path: Path, dilation: int) -> Path:
    path.write_text("name: dilated\ninput: [1, 16]\nlayers:\n"
                    f"  - {{type: Conv1d, out_channels: 1, kernel_size: 3, dilation: {dilation}, padding: {dilation}}}\n"
                    "  - {type: ReLU}\n"
                    f"  - {{type: Conv1d, out_channels: 1, kernel_size: 3, dilation: {dilation + 1},"
                    f" padding: {dilation + 1}}}\n"
                    f"  - {{type: Conv1d, out_channels: 1, kernel_size: 3, dilation: {2 * dilation},"
                    f" padding: {2 * dilation}}}\n")
    return path


def test_lint_of_a_dilation_of_a_million_is_as_fast_as_analyze(tmp_path):
    spec = dilated_spec(tmp_path / "dilated.yaml", 10**6)
    done, seconds = child("import sys\nfrom convcalc.cli import main\n"
                          f"sys.argv = ['convcalc', 'lint', {str(spec)!r}, '--format', 'json']\nmain()\n")
    assert done.returncode == 0, done.stderr[-2000:]          # warnings: the default gate fails on errors only
    assert seconds < SECONDS, seconds
    messages = {f["rule"]: f["message"] for f in json.loads(done.stdout)["findings"]}
    # one finding for the stack: CC204 (no common factor), naming its holes (CC205)
    assert "CC205" not in messages and "give M_2 = 1000001 > kernel 3" in messages["CC204"]
    assert messages["CC204"].endswith("; also CC205 (holes): a unit reaches 21 of the 8000003 positions its field"
                                      " spans in the input of 'conv1d_1': 7999982 holes, at offsets 1, 2, 3, 4, 5, ...")


def test_lint_of_a_scattered_stack_stays_within_its_budget(tmp_path):
    """40 distinct huge dilations reach up to 3^40 separate offsets: not counted (no CC205), still CC204, fast."""
    lines = [f"  - {{type: Conv1d, out_channels: 1, kernel_size: 3, dilation: {d}, padding: {d}}}"
             for d in (1_000_003 * (i + 1) + 7919 * i * i for i in range(40))]
    spec = tmp_path / "scattered.yaml"
    spec.write_text("name: scattered\ninput: [1, 8]\nlayers:\n" + "\n".join(lines) + "\n")
    done, seconds = child("from convcalc.lint import LintConfig, lint_paths\n"
                          f"print(sorted({{f.rule for f in lint_paths([{str(spec)!r}], LintConfig()).findings}}))\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['CC204']" and seconds < SECONDS


def test_window_chains_of_12000_convs_take_little_memory(tmp_path):
    spec = tmp_path / "chain.yaml"
    spec.write_text("name: chain\ninput: [1, 64]\nblocks:\n  Pair:\n    layers:\n"
                    "      - {name: a, type: Conv1d, out_channels: 1, kernel_size: 3, padding: 1}\n"
                    "      - {name: b, type: Conv1d, out_channels: 1, kernel_size: 3, padding: 1}\n"
                    "layers:\n  - {name: p, type: Pair, repeat: 6000}\n")
    done, seconds = child("import resource\nfrom convcalc.lint import LintConfig, lint_paths\n"
                          f"report = lint_paths([{str(spec)!r}], LintConfig())\n"
                          "print(len(report.findings), int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024)\n")
    assert done.returncode == 0, done.stderr[-2000:]
    findings, megabytes = map(int, done.stdout.split())
    assert findings == 0 and megabytes < 400, done.stdout       # chains copied into their successors: ~700 MB
    assert seconds < SECONDS + 5


def test_tap_counts_match_a_count_per_phase_and_ignore_the_stride():
    for kernel, stride, dilation in itertools.product(range(1, 10), range(1, 10), range(1, 7)):
        counts = [0] * stride
        for m in range(kernel):
            counts[m * dilation % stride] += 1
        assert tap_counts(ScatterAxis(kernel, stride, dilation)) == set(counts), (kernel, stride, dilation)
    started = time.perf_counter()
    assert tap_counts(ScatterAxis(3, 10**9, 1)) == {1, 0}
    assert tap_counts(ScatterAxis(10**9, 2, 1)) == {5 * 10**8}
    assert time.perf_counter() - started < 1


def test_dead_layers_feeding_several_dead_ends_are_counted_once(tmp_path):
    ends = "\n".join(f"  - {{name: end{i}, type: Conv1d, out_channels: 1, kernel_size: 1, from: d3}}" for i in range(3))
    spec = tmp_path / "dead.yaml"
    spec.write_text("name: dead\ninput: [1, 8]\nlayers:\n"
                    "  - {name: live, type: Conv1d, out_channels: 1, kernel_size: 1}\n"
                    "  - {name: d1, type: Conv1d, out_channels: 1, kernel_size: 1, from: input}\n"
                    "  - {name: d2, type: Conv1d, out_channels: 1, kernel_size: 1}\n"
                    "  - {name: d3, type: Conv1d, out_channels: 1, kernel_size: 1}\n"
                    f"{ends}\n"
                    "  - {name: out, type: ReLU, from: live}\n")
    messages = [f.message for f in lint_paths([spec], LintConfig()).findings if f.rule == "CC207"]
    assert messages == [
        "layer 'end0' (Conv1d) does not reach the output 'out', nor do the 3 layers feeding only it (8 parameters"
        " unused)",
        "layer 'end1' (Conv1d) does not reach the output 'out' (2 parameters unused)",
        "layer 'end2' (Conv1d) does not reach the output 'out' (2 parameters unused)"]
