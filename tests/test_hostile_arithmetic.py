"""Issue 16, "arithmetic that should be cheap but is not": the receptive-field algebra and the layer rules cost the runs
of distinct phases that really occur, never tensor sizes, strides or the digits of a float.

Before the fix each spec here hung `analyze`, `rf` and `lint` or blew their memory: a scale factor whose decimal has
a period of 10^16 (``0.3333333333333333``, ONNX's float32 ``0.6000000238418579``, ``1.5000001``) became the field's
period; a stride of 10^9 was a table of 10^9 residues; ``Upsample scale_factor: 1e9`` and ``AdaptiveAvgPool1d
output_size: 1e9`` built per-position tables; a whole-input layer after a long axis worked out every unit's extent;
a MaxUnpool listed every window's taps; ``rf`` listed a unit's padding position by position. Each case runs through
the CLI in a subprocess with a memory limit and a timeout; where PyTorch can compute the case, the answer is checked
unit by unit against autograd (tests/test_receptive_exact.py's oracle) and the executor's dependency propagation.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_receptive_exact import check_all_layers  # noqa: E402

import convcalc  # noqa: E402
from convcalc.algebra import Reads, limits  # noqa: E402
from convcalc.analysis.regions import unit_region  # noqa: E402
from convcalc.layers.unpool import window_reach  # noqa: E402
from convcalc.proof.verify import verify_fields  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
G = 10 ** 9

# analyze, rf and lint in one fresh process (3 GB of address space), each timed
DRIVER = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 * 2 ** 30, 3 * 2 ** 30))
from typer.testing import CliRunner
from convcalc.cli import app
results = []
for args in json.loads(sys.argv[1]):
    start = time.monotonic()
    result = CliRunner().invoke(app, args)
    error = result.exception
    results.append({"code": result.exit_code, "seconds": time.monotonic() - start, "output": result.output,
                    "crash": None if error is None or isinstance(error, SystemExit) else repr(error)})
print(json.dumps(results))
"""


def cli(commands: list[list[str]], timeout: float = 30) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def spec_file(tmp_path: Path, shape: list[int], layers: list[dict]) -> str:
    """A spec whose first layer is at line 4, column 3."""
    path = tmp_path / "hostile.yaml"
    path.write_text(f"name: hostile\ninput: {json.dumps(shape)}\nlayers:\n"
                    + "".join(f"  - {json.dumps(layer)}\n" for layer in layers))
    return str(path)


def analyze(shape, layers) -> convcalc.Summary:
    return convcalc.analyze(convcalc.spec_from_dict({"name": "t", "input": list(shape), "layers": list(layers)}))


@contextmanager
def within(seconds: float):
    """Fail (instead of hanging) when the block takes longer than ``seconds``."""
    def late(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")
    before = signal.signal(signal.SIGALRM, late)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def conv(k=3, **args) -> dict:
    return {"type": "Conv1d", "out_channels": 1, "kernel_size": k, **args}


# --------------------------------------------------------------------------- every command answers, in seconds

ANSWERED = {
    "scale 0.333... (period 10^16)": ([1, 30, 30], [{"type": "Upsample", "scale_factor": 0.3333333333333333}]),
    "bilinear 0.333...": ([1, 30, 30], [{"type": "Upsample", "scale_factor": 0.3333333333333333,
                                         "mode": "bilinear"}]),
    "ONNX float32 0.6": ([1, 30, 30], [{"type": "Upsample", "scale_factor": 0.6000000238418579},
                                       {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1}]),
    "1.5000001 linear": ([1, 30], [{"type": "Upsample", "scale_factor": 1.5000001, "mode": "linear"}]),
    "stride 10^9": ([1, 30], [{"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 3, "stride": G,
                               "padding": 1}, conv(padding=1), {"type": "AdaptiveAvgPool1d", "output_size": 1}]),
    "x10^9 nearest": ([1, 30], [{"type": "Upsample", "scale_factor": 1e9}, conv(padding=1), {"type": "Flatten"}]),
    "x10^9 linear": ([1, 30], [{"type": "Upsample", "scale_factor": 1e9, "mode": "linear"}, conv(padding=1)]),
    "adaptive to 10^9": ([1, 30], [{"type": "AdaptiveAvgPool1d", "output_size": G}, conv(),
                                   {"type": "AdaptiveMaxPool1d", "output_size": 1}]),
    "Flatten after 10^9": ([1, G], [conv(), {"type": "Flatten"}, {"type": "Linear", "out_features": 2}]),
    "softmax along 10^9": ([1, G], [conv(padding=1), {"type": "Softmax", "dim": 2}, {"type": "GlobalAvgPool"}]),
    "padding 10^9": ([1, 30], [{"type": "ConstantPad1d", "padding": [G, G], "value": 0}, conv(5),
                               {"type": "GlobalMaxPool"}]),
    "kernel 10^9 padding 10^9": ([1, 30], [conv(G, padding=G), conv(3, dilation=G // 3, padding=G // 3)]),
    "x4000 of 100,000 pixels": ([1, 100000], [{"type": "Upsample", "scale_factor": 4000}]),   # 100,000 runs
    # channel segments of unequal fields through 200 windows along 65,536 channels (followed per channel, it hung)
    "200 channel windows over 65,536 channels": ([3, 8, 8], [
        {"type": "Conv2d", "out_channels": 32768, "kernel_size": 1, "name": "a", "from": "input"},
        {"type": "Conv2d", "out_channels": 32768, "kernel_size": 3, "padding": 1, "name": "b", "from": "input"},
        {"type": "Concat", "from": ["a", "b"]}, {"type": "LocalResponseNorm", "size": 5, "repeat": 200}]),
    "200 channel windows over 512 channels": ([3, 8, 8], [
        {"type": "Conv2d", "out_channels": 256, "kernel_size": 1, "name": "a", "from": "input"},
        {"type": "Conv2d", "out_channels": 256, "kernel_size": 3, "padding": 1, "name": "b", "from": "input"},
        {"type": "Concat", "from": ["a", "b"]}, {"type": "LocalResponseNorm", "size": 5, "repeat": 200}]),
}


@pytest.mark.parametrize("case", ANSWERED)
def test_every_command_answers_in_seconds(tmp_path, case):
    path = spec_file(tmp_path, *ANSWERED[case])
    for command, result in zip(("analyze", "rf", "lint"), cli([["analyze", path], ["rf", path], ["lint", path]])):
        assert result["crash"] is None, (command, result)
        assert result["code"] in ((0, 1) if command == "lint" else (0,)), (command, result["output"][-500:])
        assert "error:" not in result["output"] and "Traceback" not in result["output"], (command, result["output"])
        assert result["seconds"] < 10, (command, result["seconds"])


# --------------------------------------------------------------------------- refused in one line, in seconds

def _phases(detail: str) -> str:
    return (f"its receptive field along one axis would need more than 262,144 distinct phases ({detail}), the limit"
            f" (convcalc.algebra.limits.MAX_PHASES)")


REFUSED = {
    "concat along 10^9": (
        [1, G], [conv(name="a"), conv(name="b", **{"from": "input"}), {"type": "Concat", "dim": 2, "from": ["a", "b"]}],
        "6:5: layer 'concat_1' (Concat): " + _phases("a concatenation along it")),
    "adaptive 10^9 into 999,999,937": (
        [1, G], [{"type": "AdaptiveAvgPool1d", "output_size": 999999937}],
        "4:5: layer 'adaptiveavgpool1d_1' (AdaptiveAvgPool1d): "
        + _phases("adaptive bins of 1,000,000,000 into 999,999,937 repeat every 999,999,937 units")),
    "dilation 10^8 on 10^9": (
        [1, G], [conv(dilation=10 ** 8, padding=10 ** 8), {"type": "AdaptiveAvgPool1d", "output_size": 1}],
        "4:5: layer 'conv1d_1' (Conv1d): its receptive field along one axis would need 600,000,000 tap lookups (the"
        " exact extents near the borders), more than the limit of 4,194,304 (convcalc.algebra.limits.MAX_TAP_WORK)"),
    "transposed kernel 10^9 dilation 3": (
        [1, 3], [{"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": G, "stride": G + 7, "dilation": 3}],
        "4:5: layer 'convtranspose1d_1' (ConvTranspose1d): "
        + _phases("a transposed conv of kernel_size 1,000,000,000, stride 1,000,000,007 and dilation 3")),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_in_one_line_naming_the_layer_the_number_and_the_limit(tmp_path, case):
    shape, layers, message = REFUSED[case]
    path = spec_file(tmp_path, shape, layers)
    for command, result in zip(("analyze", "rf"), cli([["analyze", path], ["rf", path]])):
        assert result["crash"] is None and result["code"] == 2, (command, result)
        assert result["output"] == f"error: {path}:{message}\n", (command, result["output"])
        assert result["seconds"] < 10, (command, result["seconds"])


def test_a_budget_is_a_module_attribute(monkeypatch):
    layers = [conv(name="a"), conv(name="b", **{"from": "input"}), {"type": "Concat", "dim": 2, "from": ["a", "b"]}]
    assert analyze([1, 100], layers).layers[-1].rf.axes[0].period == 196
    monkeypatch.setattr(limits, "MAX_PHASES", 100)
    with pytest.raises(convcalc.ShapeError, match=r"more than 100 distinct phases \(a concatenation along it\)"):
        analyze([1, 100], layers)


# --------------------------------------------------------------------------- exact, against autograd

@pytest.mark.parametrize("layers, shape", [
    ([{"type": "Upsample", "scale_factor": 0.3333333333333333}], (1, 30, 30)),
    ([{"type": "Upsample", "scale_factor": 0.3333333333333333, "mode": "bilinear"}], (1, 30, 30)),
    ([{"type": "Upsample", "scale_factor": 0.3333333333333333, "mode": "nearest-exact"}], (1, 30, 30)),
    ([{"type": "Upsample", "scale_factor": 0.6000000238418579},
      {"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1}], (1, 30, 30)),
    ([{"type": "Upsample", "scale_factor": 0.6000000238418579, "mode": "bilinear"}], (1, 30, 30)),
    ([{"type": "Upsample", "scale_factor": 1.5000001, "mode": "linear"}, conv(padding=1)], (1, 30)),
    ([{"type": "Upsample", "scale_factor": 1.5000001}, conv(2)], (1, 30)),
    ([{"type": "Upsample", "scale_factor": 1.438247799873352, "mode": "nearest-exact"}, conv(2)], (1, 23)),
    ([{"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 3, "stride": 50, "padding": 1}, conv(padding=1)],
     (1, 4)),
    ([{"type": "AdaptiveAvgPool1d", "output_size": 200}, conv(padding=1)], (1, 5)),
])
def test_hostile_scales_match_autograd_unit_by_unit(layers, shape):
    with within(60):                                     # the decimal's period made these hang
        summary, counts = check_all_layers(shape, layers)
    assert counts["units"] > 0
    assert all(check.ok for check in verify_fields(summary)), [c.detail for c in verify_fields(summary) if not c.ok]


def test_a_period_is_what_the_index_map_really_has():
    """PyTorch's float32 scale for 0.3333333333333333 is exactly 3: period 1, stride 3 (not 10^16/3333333333333333);
    bilinear samples x = 3u + 1, on a pixel: one tap each."""
    for mode in ("nearest", "bilinear"):
        with within(5):
            axes = analyze([1, 30, 30], [{"type": "Upsample", "scale_factor": 0.3333333333333333,
                                          "mode": mode}]).layers[0].rf.axes
        assert [(a.period, a.stride, a.size, a.size_min) for a in axes] == [(1, 3, 1, 1)] * 2, mode
    with within(5):
        (axis,) = analyze([1, 30], [{"type": "Upsample", "scale_factor": 1.5000001, "mode": "linear"}]).layers[0].rf.axes
    assert (axis.period, axis.stride) == (3, Fraction(2, 3))


# --------------------------------------------------------------------------- cost in runs, exact on huge axes

def test_reads_cost_their_runs():
    with within(5):
        sparse = Reads.transposed(1, G, 0)
        wide = Reads.transposed(G, G + 7, 3)
        bins = Reads.bins(30, G)
    assert (sparse.period, sparse.taps.count, sparse.taps[0], sparse.taps[G - 1]) == (G, 2, (0, 1, 1), None)
    # residue rho is hit by the tap m = (rho + 3) mod (G + 7) when that is below G: input (rho + 3 - m)/(G + 7)
    assert wide.taps.count <= 4
    assert [wide.taps[rho] for rho in (0, G - 4, G - 3, G + 3, G + 4)] == [(0, 1, 1), (0, 1, 1), None, None, (1, 1, 1)]
    assert (bins.period, bins.advance) == (10 ** 8, 3) and bins.taps.count <= 12
    assert [bins.taps[rho] for rho in (0, 33333333, 33333334)] == [(0, 1, 1), (0, 1, 2), (1, 1, 1)]


def test_stride_of_a_billion_regions_and_extents():
    """ConvTranspose1d(k=3, s=10^9, p=1) then a 3-tap conv: output o reads input j = (o + 1 - m)/10^9, so units
    j*10^9 - 1, j*10^9 and j*10^9 + 1 read input j; the conv's unit v reads v - 1 .. v + 1."""
    with within(10):
        summary = analyze([1, 30], [{"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 3, "stride": G,
                                     "padding": 1}, conv(padding=1), {"type": "AdaptiveAvgPool1d", "output_size": 1}])
    up, after = (row.rf.axes[0] for row in summary.layers[:2])
    assert (up.period, up.stride, up.table.count) == (G, Fraction(1, G), 3)
    assert [up.extent(u) for u in (0, 1, 2, G - 2, G - 1, G, 29 * G - 1, 29 * G)] == \
        [(0, 0), (0, 0), None, None, (1, 1), (1, 1), (29, 29), (29, 29)]
    assert [after.extent(u) for u in (2, 3, G - 3, G - 2, 29 * G)] == [(0, 0), None, None, (1, 1), (29, 29)]
    assert summary.layers[2].rf.reach == ((0, 29),)


def test_upsample_by_a_billion_reads_what_aten_reads():
    """Each real unit reads ATen's float32 nearest index (the executor's rule), checked at run boundaries."""
    with within(10):
        summary = analyze([1, 30], [{"type": "Upsample", "scale_factor": 1e9}, conv(padding=1)])
    axis = summary.layers[0].rf.axes[0]
    scale = np.float32(1.0 / 1e9)
    for u in (0, 1, 999_999_999, 1_000_000_000, 17_000_000_033, 29_999_999_999):
        index = min(int(np.floor(np.float32(u) * scale)), 29)
        assert axis.extent(u) == (index, index), u
    assert summary.layers[1].rf.axes[0].table.count < 200


@pytest.mark.parametrize("mode, i, factor", [("nearest", 700, 37.0), ("nearest-exact", 300, 1 / 0.0123),
                                             ("linear", 500, 29.5), ("bicubic", 90, 71.25), ("nearest", 40, None)])
def test_the_index_map_of_a_long_axis_in_runs_is_the_map(monkeypatch, mode, i, factor):
    """`real_runs` past `DENSE` units (here made small, so the map also fits in memory whole) against the map
    evaluated at every unit: each run holds one key, and neighbouring runs differ. Before the fix each run cost
    a bisection of NumPy calls of one unit (a x4000 upsampling of 100,000 pixels: tens of seconds)."""
    from convcalc.layers import resample_reads
    from convcalc.layers.resample_axis import ResampleAxis

    dims = 2 if mode == "bicubic" else 1
    o = 20011 if factor is None else int(i * factor)
    axis = ResampleAxis(mode, i, o, factor, False, dims)
    dense = resample_reads._keys(axis)(np.arange(o, dtype=np.int64)).tolist()
    monkeypatch.setattr(resample_reads, "DENSE", 1000)
    runs = resample_reads.real_runs(axis)
    assert runs[0][0] == 0 and runs[-1][1] == o
    assert all(b == c for (_, b, _), (c, _, _) in zip(runs, runs[1:]))
    assert all(k != k2 for (_, _, k), (_, _, k2) in zip(runs, runs[1:]))
    assert [key for a, b, key in runs for _ in range(b - a)] == dense


def test_whole_input_layers_after_a_long_axis_reach_exactly():
    """A k=2 s=2 conv over 10^9 + 1 inputs never reads the last one: the Linear's reach says so, at once."""
    with within(10):
        summary = analyze([1, G + 1], [conv(2, stride=2), {"type": "Flatten"}, {"type": "Linear", "out_features": 2}])
    assert summary.layers[1].rf.reach == ((0, G - 1),) and summary.layers[1].rf.partial
    with within(10):
        summary = analyze([1, G], [conv(padding=1), {"type": "Softmax", "dim": 2}])
    softmax = summary.layers[1].rf.axes[0]
    assert [softmax.extent(u) for u in (0, G // 2, G - 1)] == [(0, G - 1)] * 3


def test_a_padding_of_a_billion_is_one_run(tmp_path):
    with within(10):
        summary = analyze([1, 30], [conv(G + 1, padding=G)])
        region = unit_region(summary, summary.output, (0,))
    (axis,) = region.axes
    assert (axis.first, axis.last, axis.extent) == (-G, 0, (0, 0))
    assert [(r.first, r.last, r.fill) for r in axis.padding] == [(-G, -1, "zeros")]
    path = spec_file(tmp_path, [1, 30], [conv(G + 1, padding=G)])
    (result,) = cli([["rf", path, "--unit", "0", "--format", "json"]])
    assert result["code"] == 0 and result["seconds"] < 10, result
    runs = json.loads(result["output"])["region"]["axes"][0]["padding_runs"]
    assert runs == [{"first": -G, "last": -1, "fill": ["zeros"]}]


def test_max_unpool_windows_are_not_listed():
    """The pool's windows whose taps all lie in the input are not looked at one by one: the same answer as listing
    every window's taps (small pools), at once for a pool of 10^6 over 10^9."""
    rng = np.random.default_rng(3)
    for _ in range(2000):
        n, k, s, d = (int(v) for v in (rng.integers(1, 30), rng.integers(1, 8), rng.integers(1, 5), rng.integers(1, 4)))
        p = int(rng.integers(0, k // 2 + 1))
        o = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if o < 1:
            continue
        taps = [[t for t in range(w * s - p, w * s - p + d * (k - 1) + 1, d) if 0 <= t < n] for w in range(o)]
        starts = [w * s - p + max(0, -(-(p - w * s) // d)) * d for w in range(o)]
        inside = [t for window in taps for t in window]
        tapless = [a for a, window in zip(starts, taps) if not window]
        assert window_reach(n, o, k, s, d, p) == (min(inside, default=0), max(inside, default=0), max(starts),
                                                  max(tapless) if tapless else None), (n, k, s, d, p)
    with within(5):
        assert window_reach(G, G - 10 ** 6 + 1, 10 ** 6, 1, 1, 0) == (0, G - 1, G - 10 ** 6, None)


@pytest.mark.parametrize("layer", [
    {"type": "MaxPool2d", "kernel_size": 2, "stride": 1000000, "ceil_mode": True},
    {"type": "AvgPool2d", "kernel_size": 3, "stride": [1, 100000], "padding": 1, "ceil_mode": True},
    {"type": "MaxPool1d", "kernel_size": 3, "stride": 7, "dilation": 2},
])
def test_pools_with_strides_far_past_the_window_run_in_small_memory(layer):
    """The executor's polyphase copy held every phase of the stride: 3.6 TiB for stride 10^6 on a 64x64 input
    (a MemoryError found by benchmarks/fuzz.py); strided views of the padded input serve there, equal to torch."""
    import numpy as np
    import torch

    dims = 1 if layer["type"].endswith("1d") else 2
    shape = (2, 40) if dims == 1 else (2, 64, 64)
    x = np.random.default_rng(0).standard_normal((1, *shape))
    checked = convcalc.run(convcalc.spec_from_dict({"name": "p", "input": list(shape), "layers": [layer]}), x,
                           dtype="float64")
    arguments = {k: v for k, v in layer.items() if k != "type"}
    expected = getattr(torch.nn, layer["type"])(**arguments)(torch.from_numpy(x)).numpy()
    assert checked.ok and np.allclose(checked.output, expected, rtol=0, atol=1e-12)
