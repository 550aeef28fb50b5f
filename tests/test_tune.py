"""The tuner (`convcalc.execution.tune`) and its cache (`tune_cache`): where the cache lives, what its keys hold, what
a broken cache does, that `--no-tune` leaves it alone, that the budget bounds the work, that every algorithm it can
pick computes what PyTorch computes (the same bytes for the same choice), and `convcalc tune` then `convcalc run`.

Nothing here asserts a time: the budget is checked by counting the candidates timed against a fake clock. Every test
uses a temporary XDG_CACHE_HOME (and conftest.py gives the whole session one), never the user's home.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import convcalc
from convcalc.analysis.summary import analyze
from convcalc.cli import app
from convcalc.execution import tune as tuner
from convcalc.execution.tune_cache import TuneCache, cache_dir, cache_path
from convcalc.kernels import (MacCounter, blas, conv_im2col_blocked, conv_kn2row, im2col, to_logical,
                              to_storage)
from convcalc.layers import lookup

# two convs with choices (at least MIN_MACS: 4.7 M and 1.6 M MACs) and one without (no bias, strided: im2col only)
SPEC = """name: tunable
input: [16, 32, 32]
layers:
  - {name: a, type: Conv2d, out_channels: 32, kernel_size: 3, padding: 1}
  - {type: BatchNorm2d}
  - {type: ReLU}
  - {name: b, type: Conv2d, out_channels: 32, kernel_size: 3, padding: 1, stride: 2, bias: false}
  - {name: c, type: Conv2d, out_channels: 192, kernel_size: 1}
"""


def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tunable.yaml"
    path.write_text(SPEC)
    return path


def summary_of(text: str = SPEC):
    return analyze(convcalc.build_graph(convcalc.parse_spec(text, "tunable.yaml")))


def ticking_clock(step: float = 1.0):
    """A clock that advances ``step`` seconds each time it is read: a budget then counts clock reads, not time."""
    counter = itertools.count()
    return lambda: next(counter) * step


# --------------------------------------------------------------------------- where the cache lives

def test_cache_location_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg" / "convcalc"
    home_cache = Path(os.path.expanduser("~")) / ".cache" / "convcalc"
    assert home_cache == tmp_path / "home" / ".cache" / "convcalc"
    # the XDG base-directory spec: unset, empty or relative values are ignored
    for environment in ({}, {"XDG_CACHE_HOME": ""}, {"XDG_CACHE_HOME": "relative/cache"}):
        assert cache_dir(environment) == home_cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "env"))
    assert cache_path() == tmp_path / "env" / "convcalc" / "tuning.json"
    tuning = tuner.tune(summary_of(), 1, budget=0, kernels=False)
    assert tuning.path == str(tmp_path / "env" / "convcalc" / "tuning.json")


def test_cache_keys_name_the_cpu_model_and_the_blas(tmp_path):
    """Every entry's key holds the CPU's model name (read here from /proc/cpuinfo) and NumPy's BLAS (its name and
    version as NumPy reports them); a CPU of another name finds none of them."""
    cache = TuneCache(tmp_path / "tuning.json")
    tuning = tuner.tune(summary_of(), 1, budget=600, cache=cache, kernels=False)
    assert tuning.tuned >= 1
    keys = list(json.loads((tmp_path / "tuning.json").read_text())["entries"])
    assert keys
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    try:
        with open("/proc/cpuinfo") as info:
            model = re.search(r"^model name\s*:\s*(.*)$", info.read(), re.M)
    except OSError:
        model = None
    for key in keys:
        parts = json.loads(key)
        if model is not None:
            assert model.group(1).strip() in parts[1]
        if blas.get("name") == "scipy-openblas":
            assert f"OpenBLAS {blas['version']}" in parts[1]
    elsewhere = TuneCache(tmp_path / "tuning.json")
    original = tuner.machine
    try:
        tuner.machine = lambda: original().replace(model.group(1).strip() if model else "?", "Another CPU")
        again = tuner.tune(summary_of(), 1, budget=0, cache=elsewhere, kernels=False)
    finally:
        tuner.machine = original
    assert again.cached == 0 and again.tuned == 0


def test_a_second_tune_reads_the_cache_and_times_nothing(tmp_path):
    cache = tmp_path / "tuning.json"
    first = tuner.tune(summary_of(), 1, budget=600, cache=TuneCache(cache), kernels=False)
    second_summary = summary_of()
    second = tuner.tune(second_summary, 1, budget=600, cache=TuneCache(cache), kernels=False)
    assert first.timed > 0 and second.timed == 0
    assert second.cached == second.tuned == first.tuned
    assert [(c.name, c.algorithm) for c in second.layers] == [(c.name, c.algorithm) for c in first.layers]
    # and the network runs what was chosen, marked as measured
    result = convcalc.execution.network.Network(second_summary).run(np.ones((1, 16, 32, 32)))
    chosen = {layer.name: (layer.algorithm, layer.chosen_by) for layer in result.layers if layer.algorithm}
    assert chosen == {c.name: (c.algorithm, c.chosen_by) for c in second.layers}
    # another batch size is another entry
    assert tuner.tune(summary_of(), 2, budget=0, cache=TuneCache(cache), kernels=False).cached == 0


# --------------------------------------------------------------------------- a broken cache

@pytest.mark.parametrize("content, reason", [
    (b"{not json", "is not JSON"),
    (b'{"schema_version": 99, "entries": {}}', "has schema_version 99, not 1"),
    (b'["a list"]', "is not a tuning cache"),
    (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
])
def test_a_corrupt_cache_is_a_warning_and_the_cost_model(tmp_path, content, reason):
    path = tmp_path / "tuning.json"
    path.write_bytes(content)
    cache = TuneCache(path)
    assert cache.warnings == [f"warning: the tuning cache {path} {reason}: ignored (the cost model chooses; it is"
                              " rewritten when something is tuned)"]
    tuning = tuner.tune(summary_of(), 1, budget=0, cache=cache, kernels=False)
    assert tuning.tuned == 0 and {c.chosen_by for c in tuning.layers} == {"model"}


def test_run_with_a_corrupt_cache_warns_in_one_line_and_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "convcalc").mkdir()
    (tmp_path / "convcalc" / "tuning.json").write_text("{not json")
    result = CliRunner().invoke(app, ["run", str(spec_file(tmp_path)), "--rf-check", "none", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"warning: the tuning cache {tmp_path / 'convcalc' / 'tuning.json'} is not JSON: ignored"
                             " (the cost model chooses; it is rewritten when something is tuned)\n")
    assert json.loads(result.stdout)["ok"] is True


def test_an_unwritable_cache_folder_is_a_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = TuneCache(blocker / "convcalc" / "tuning.json")
    tuning = tuner.tune(summary_of(), 1, budget=600, cache=cache, kernels=False)
    assert tuning.tuned >= 1
    assert len(cache.warnings) == 1 and cache.warnings[0].startswith(f"warning: the tuning cache {blocker}")


def test_no_tune_neither_reads_nor_writes_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh"))
    spec = spec_file(tmp_path)
    result = CliRunner().invoke(app, ["run", str(spec), "--no-tune", "--rf-check", "none", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "fresh").exists()                       # nothing written
    assert {layer["chosen_by"] for layer in json.loads(result.stdout)["layers"] if layer["algorithm"]} == {"model"}
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "broken"))
    (tmp_path / "broken" / "convcalc").mkdir(parents=True)
    (tmp_path / "broken" / "convcalc" / "tuning.json").write_text("{not json")
    result = CliRunner().invoke(app, ["run", str(spec), "--no-tune", "--rf-check", "none"])
    assert result.exit_code == 0 and result.stderr == ""           # nothing read: no warning
    assert (tmp_path / "broken" / "convcalc" / "tuning.json").read_text() == "{not json"


# --------------------------------------------------------------------------- the budget

def test_the_budget_bounds_the_candidates_timed(tmp_path):
    """With a clock that ticks once per reading, the candidates timed grow with the budget, none at 0, all of them
    (and nothing left out) with a budget that does not run out; layers left untimed keep the model's choice and
    are not cached."""
    counts = []
    for budget in (0, 8, 40, 10 ** 9):
        cache = TuneCache(tmp_path / f"tuning-{budget}.json")
        tuning = tuner.tune(summary_of(), 1, budget=budget, cache=cache, kernels=False, clock=ticking_clock())
        counts.append(tuning.timed)
        assert tuning.timed <= budget
        saved = json.loads(cache.path.read_text())["entries"] if cache.path.exists() else {}
        assert len(saved) == tuning.tuned
        assert tuning.tuned + tuning.model == len(tuning.layers) == 3
        assert tuning.out_of_budget == (budget != 10 ** 9)
    assert counts[0] == 0 and counts == sorted(counts) and counts[1] < counts[-1]


# --------------------------------------------------------------------------- every choice is PyTorch's conv

CONVS = [   # (input [C, H, W], the conv's arguments)
    ((8, 12, 12), {"out_channels": 6, "kernel_size": 3, "padding": 1}),
    ((3, 14, 13), {"out_channels": 5, "kernel_size": 5, "padding": 2, "stride": 2}),
    ((6, 9, 9), {"out_channels": 8, "kernel_size": 1}),
    ((6, 9, 9), {"out_channels": 8, "kernel_size": 1, "stride": 2}),
    ((8, 10, 10), {"out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 8}),
    ((8, 10, 10), {"out_channels": 4, "kernel_size": 3, "padding": 2, "dilation": 2, "groups": 2}),
    ((4, 11, 11), {"out_channels": 4, "kernel_size": 7, "padding": 3, "padding_mode": "reflect"}),
    ((4, 16, 16), {"out_channels": 6, "kernel_size": 3, "padding": 1, "padding_mode": "circular", "bias": False}),
]


@pytest.mark.parametrize("shape, args", CONVS)
@pytest.mark.parametrize("batch", [1, 4])
def test_every_algorithm_the_tuner_may_pick_is_torch_conv2d(shape, args, batch):
    """Each choice (`algorithm_choices`, unpruned, with a bias: everything `use_choice` accepts) as `forward` and as
    `forward_into` (a residual sum written by the GEMM), against F.conv2d in float64; and one choice run twice
    gives the same bytes."""
    layer = lookup("Conv2d").from_args(args)
    channels, spatial = shape[0], shape[1:]
    out_shape = layer.infer([shape]).out_shape
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((args["out_channels"], channels // layer.groups, *layer.kernel_size))
    bias = rng.standard_normal(args["out_channels"])
    x = rng.standard_normal((batch, *shape))
    other = rng.standard_normal((batch, *out_shape))
    mode = args.get("padding_mode", "zeros")
    padded = torch.from_numpy(x)
    if mode != "zeros":
        pad = [p for p in layer.pads(spatial)[::-1] for p in p]
        padded = F.pad(padded, pad, mode=mode)
    want = F.conv2d(padded, torch.from_numpy(weight), torch.from_numpy(bias), layer.stride,
                    0 if mode != "zeros" else [lo for lo, _ in layer.pads(spatial)], layer.dilation,
                    layer.groups).numpy()
    choices = layer.algorithm_choices(channels, spatial, out_shape[1:], np.float64, prune=False, bias=True)
    assert len(choices) >= 2
    for choice in choices:
        plan = layer.prepare({"weight": weight, "bias": bias}, [shape], out_shape, np.dtype(np.float64), choice=choice)
        got = to_logical(layer.forward([to_storage(x)], plan, MacCounter()))
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=choice)
        again = to_logical(layer.forward([to_storage(x)], plan, MacCounter()))
        assert got.tobytes() == again.tobytes(), choice
        into = np.ascontiguousarray(to_storage(other))
        summed = to_logical(layer.forward_into([to_storage(x)], plan, MacCounter(), into))
        np.testing.assert_allclose(summed, want + other, rtol=1e-9, atol=1e-9, err_msg=choice)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 31 - 1))
def test_blocked_gemm_convs_are_torch_conv_in_blocks_of_any_size(data, seed):
    """'im2col_b' and 'im2col_p' (`kernels.conv_im2col_blocked`, the second on threads of its own) and, stride 1,
    'kn2row' (`kernels.conv_kn2row`) with blocks cut as small as one output line or input row (the cache size and
    the minimum rows patched down), in 1-3 dimensions, against
    PyTorch's ConvNd in float64, as `forward` and as `forward_into`, with and without the bias in the GEMM; MACs
    counted as the conv has them; the blocks shared by 1, 2 or 3 threads give the same bytes."""
    dims = data.draw(st.integers(1, 3))
    kernel = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims).filter(lambda k: max(k) > 1))
    stride = data.draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    dilation = data.draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    padding = data.draw(st.lists(st.integers(0, 2), min_size=dims, max_size=dims))
    channels, out_channels = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    batch = data.draw(st.integers(1, 3))
    spatial = [data.draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 8)) for k, d in zip(kernel, dilation)]
    rows = data.draw(st.integers(1, 64))                      # the block's rows (at least one output line)
    args = {"out_channels": out_channels, "kernel_size": kernel, "stride": stride, "dilation": dilation,
            "padding": padding}
    layer = lookup(f"Conv{dims}d").from_args(args)
    shape = (channels, *spatial)
    out_shape = layer.infer([shape]).out_shape
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((out_channels, channels, *kernel))
    bias = rng.standard_normal(out_channels)
    x = rng.standard_normal((batch, *shape))
    other = rng.standard_normal((batch, *out_shape))
    conv = getattr(F, f"conv{dims}d")
    want = conv(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias), stride, padding,
                dilation).numpy()
    choices = ("im2col_b", "im2col_b+bias", "im2col_p", "im2col_p+bias")
    choices += ("kn2row", "kn2row_p") if max(stride) == 1 else ()
    for choice in choices:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(im2col, "BLOCK_MIN_ROWS", rows)
            patch.setattr(im2col, "l2_bytes", lambda: 0)
            plan = layer.prepare({"weight": weight, "bias": bias}, [shape], out_shape, np.dtype(np.float64),
                                 choice=choice)
            counter = MacCounter()
            got = to_logical(layer.forward([to_storage(x)], plan, counter))
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=choice)
            assert counter.total == want.size * channels * int(np.prod(kernel))
            into = np.array(to_storage(other), order="C")       # a copy: `other` stays as drawn
            summed = to_logical(layer.forward_into([to_storage(x)], plan, MacCounter(), into))
            np.testing.assert_allclose(summed, want + other, rtol=1e-9, atol=1e-9, err_msg=choice)
            if choice == "im2col_p":     # the blocks shared by 1-3 threads: the same bytes
                padded = to_storage(np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding]))
                runs = []
                for workers in (1, 2, 3):
                    with blas.single_threaded():
                        runs.append(conv_im2col_blocked(padded, plan["weights"][0], layer.kernel_size, stride,
                                                        dilation, out_shape[1:], MacCounter(), workers=workers))
                assert runs[0].tobytes() == runs[1].tobytes() == runs[2].tobytes()
                np.testing.assert_allclose(to_logical(runs[2]) + bias.reshape(-1, *[1] * dims), want, rtol=1e-9,
                                           atol=1e-9)
            if choice == "kn2row_p":     # the samples or grid rows cut between 2-3 threads: each cut repeats
                padded = to_storage(np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding]))
                for workers in (2, 3):
                    runs = [conv_kn2row(padded, plan["weights"], layer.kernel_size, dilation, out_shape[1:],
                                        MacCounter(), plan["bias"], workers=workers) for _ in range(2)]
                    assert runs[0].tobytes() == runs[1].tobytes()
                    np.testing.assert_allclose(to_logical(runs[0]), want, rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 31 - 1))
def test_pointwise_gemm_cut_between_threads_is_torch_conv(data, seed):
    """'pointwise_p' (a 1x1 conv's GEMM cut by rows between threads, `blas.split_matmul`), strided or not, with the
    bias in the GEMM or after it, against PyTorch's Conv2d in float64, as `forward` and as `forward_into`; rows cut
    between 1-3 threads give the same bytes run after run."""
    stride = data.draw(st.integers(1, 2))
    channels, out_channels = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    batch = data.draw(st.integers(1, 3))
    shape = (channels, data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9)))
    layer = lookup("Conv2d").from_args({"out_channels": out_channels, "kernel_size": 1, "stride": stride})
    out_shape = layer.infer([shape]).out_shape
    rng = np.random.default_rng(seed)
    weight, bias = rng.standard_normal((out_channels, channels, 1, 1)), rng.standard_normal(out_channels)
    x, other = rng.standard_normal((batch, *shape)), rng.standard_normal((batch, *out_shape))
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias), stride).numpy()
    for choice in ("pointwise_p", "pointwise_p+bias", "pointwise_c", "pointwise_c+bias"):
        plan = layer.prepare({"weight": weight, "bias": bias}, [shape], out_shape, np.dtype(np.float64), choice=choice)
        counter = MacCounter()
        np.testing.assert_allclose(to_logical(layer.forward([to_storage(x)], plan, counter)), want, rtol=1e-9,
                                   atol=1e-9, err_msg=choice)
        assert counter.total == want.size * channels
        into = np.array(to_storage(other), order="C")
        summed = to_logical(layer.forward_into([to_storage(x)], plan, MacCounter(), into))
        np.testing.assert_allclose(summed, want + other, rtol=1e-9, atol=1e-9, err_msg=choice)
    a = np.ascontiguousarray(to_storage(x)[:, ::stride, ::stride].reshape(-1, channels))
    b = np.ascontiguousarray(weight.reshape(out_channels, channels).T)
    # a given cut gives the same bytes run after run; another cut may not (BLAS's small-matrix kernels can sum a
    # shorter part in another order), which is why the cut depends on the shapes and the thread count only
    for workers in (1, 2, 3):
        runs = [blas.split_matmul(a, b, np.empty((a.shape[0], out_channels)), workers) for _ in range(2)]
        assert runs[0].tobytes() == runs[1].tobytes()
        np.testing.assert_allclose(runs[0], a @ b, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 31 - 1))
def test_gemm_cut_by_output_channels_is_torch_conv(data, seed):
    """'im2col_c' (an ungrouped conv's one im2col GEMM cut by output channels between threads, `blas.split_matmul`
    with ``columns``), strided, dilated and padded, with the bias in the GEMM or after it, against PyTorch's Conv2d
    in float64, as `forward` and `forward_into`; columns cut between 1-3 threads (at cache-line multiples) give the
    same bytes run after run, and cover every column once."""
    kernel, stride, dilation = data.draw(st.integers(2, 3)), data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    channels, out_channels, batch = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 40)), data.draw(st.integers(1, 2))
    padding = data.draw(st.integers(0, 2))
    span = dilation * (kernel - 1) + 1
    shape = (channels, data.draw(st.integers(max(span - 2 * padding, 1), 9)), data.draw(st.integers(max(span - 2 * padding, 1), 9)))
    layer = lookup("Conv2d").from_args({"out_channels": out_channels, "kernel_size": kernel, "stride": stride,
                                        "dilation": dilation, "padding": padding})
    out_shape = layer.infer([shape]).out_shape
    rng = np.random.default_rng(seed)
    weight, bias = rng.standard_normal((out_channels, channels, kernel, kernel)), rng.standard_normal(out_channels)
    x, other = rng.standard_normal((batch, *shape)), rng.standard_normal((batch, *out_shape))
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias), stride, padding,
                    dilation).numpy()
    for choice in ("im2col_c", "im2col_c+bias"):
        plan = layer.prepare({"weight": weight, "bias": bias}, [shape], out_shape, np.dtype(np.float64), choice=choice)
        counter = MacCounter()
        np.testing.assert_allclose(to_logical(layer.forward([to_storage(x)], plan, counter)), want, rtol=1e-9,
                                   atol=1e-9, err_msg=choice)
        assert counter.total == want.size * channels * kernel * kernel
        into = np.array(to_storage(other), order="C")
        summed = to_logical(layer.forward_into([to_storage(x)], plan, MacCounter(), into))
        np.testing.assert_allclose(summed, want + other, rtol=1e-9, atol=1e-9, err_msg=choice)
    a = rng.standard_normal((data.draw(st.integers(1, 60)), channels * 9))
    b = rng.standard_normal((channels * 9, out_channels))
    for workers in (1, 2, 3):
        for accumulate in (False, True):
            start = rng.standard_normal((a.shape[0], out_channels))
            runs = [blas.split_matmul(a, b, start.copy(), workers, accumulate=accumulate, columns=True)
                    for _ in range(2)]
            assert runs[0].tobytes() == runs[1].tobytes()
            np.testing.assert_allclose(runs[0], a @ b + (start if accumulate else 0), rtol=1e-12, atol=1e-12)


def test_candidates_are_timed_in_cpu_time_at_one_blas_thread(monkeypatch):
    """At one BLAS thread every candidate runs on the calling thread: its CPU time, which load elsewhere does not
    inflate; with more, the wall clock (the threads' work side by side)."""
    import time

    monkeypatch.setattr(tuner.blas, "threads", lambda: 1)
    assert tuner.candidate_timer() is time.thread_time
    monkeypatch.setattr(tuner.blas, "threads", lambda: 2)
    assert tuner.candidate_timer() is time.perf_counter


def test_use_choice_refuses_what_the_conv_cannot_run():
    layer = lookup("Conv2d").from_args({"out_channels": 4, "kernel_size": 3, "stride": 2})
    with pytest.raises(ValueError, match="'winograd' is not an algorithm"):
        layer.use_choice(4, (9, 9), (4, 4), np.float32, "winograd")


def test_a_specs_algorithm_is_kept():
    """algorithm: winograd / fft leave nothing to choose; 'direct' chooses among the GEMM algorithms only."""
    for algorithm in ("winograd", "fft"):
        layer = lookup("Conv2d").from_args({"out_channels": 64, "kernel_size": 3, "padding": 1,
                                            "algorithm": algorithm})
        assert layer.algorithm_choices(64, (56, 56), (56, 56), np.float32, prune=False) == (algorithm,)
    direct = lookup("Conv2d").from_args({"out_channels": 64, "kernel_size": 3, "padding": 1, "algorithm": "direct"})
    assert not {"fft", "winograd"} & set(direct.algorithm_choices(64, (56, 56), (56, 56), np.float32, prune=False))


# --------------------------------------------------------------------------- the commands

def test_convcalc_tune_writes_the_cache_and_run_reports_tuned(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = spec_file(tmp_path)
    result = CliRunner().invoke(app, ["tune", str(spec), "--budget", "600", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cache"] == str(tmp_path / "cache" / "convcalc" / "tuning.json")
    assert (tmp_path / "cache" / "convcalc" / "tuning.json").exists()
    tuned = {layer["name"] for layer in data["layers"] if layer["chosen_by"] == "tuned"}
    assert "a" in tuned
    result = CliRunner().invoke(app, ["run", str(spec), "--rf-check", "none", "--format", "json"])
    assert result.exit_code == 0, result.output
    layers = {layer["name"]: layer for layer in json.loads(result.stdout)["layers"]}
    assert {name for name in layers if layers[name]["chosen_by"] == "tuned"} == tuned
    assert {name: layers[name]["algorithm"] for name in tuned} == \
        {layer["name"]: layer["algorithm"] for layer in data["layers"] if layer["name"] in tuned}
    text = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["run", str(spec), "--rf-check", "none"]).stdout
    assert re.search(r"│ a +│ Conv2d \([a-z_0-9+]+, tuned\)", text), text
    assert f"algorithms: {len(tuned)} of 3 convs measured (0 now, 0 candidates timed)" in text


def test_convcalc_tune_table_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = spec_file(tmp_path)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["tune", str(spec), "--budget", "600", "--wide"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("tunable: batch 1 × 16×32×32")
    assert "candidates (fastest run, ms)" in result.stdout
    assert re.search(r"cache\s+" + re.escape(str(tmp_path / "cache" / "convcalc" / "tuning.json")), result.stdout)
    for budget in ("-1", "nan"):
        result = CliRunner().invoke(app, ["tune", str(spec), "--budget", budget])
        assert result.exit_code == 2 and result.stderr.startswith("error: --budget") and \
            result.stderr.count("\n") == 1, result.output


def test_convcalc_tune_refuses_a_network_over_the_memory_budget_before_timing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["tune", str(spec_file(tmp_path)), "--max-memory", "1K"])
    assert result.exit_code == 2 and result.stderr.startswith("error: tuning would need about ")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "cache").exists()


def test_the_note_counts_conv_candidates_kernel_sets_and_fixed_convs_apart(tmp_path):
    """`timed` counts the convs' candidates only (each tuned conv's own table of seconds), kernel sets are counted
    apart, and with a budget that cannot run out every conv left to the cost model is one that had no rival worth
    timing."""
    from convcalc.kernels import blas
    from convcalc.report.tune import tuning_note

    tuning = tuner.tune(summary_of(), 1, cache=TuneCache(tmp_path / "tuning.json"), budget=600)
    measured = [conv for conv in tuning.layers if conv.chosen_by == "tuned"]
    assert tuning.timed == sum(len(conv.seconds) for conv in measured) > 0
    sets = len(blas.kernel_choices())      # the kernel sets OpenBLAS accepts on this CPU are timed, once each
    assert (0 < tuning.kernels_timed <= sets) if sets > 1 else tuning.kernels_timed == 0
    untimed = [conv for conv in tuning.layers if conv.chosen_by != "tuned"]
    assert tuning.fixed == len(untimed) and not tuning.out_of_budget
    note = tuning_note(tuning)
    assert f"{tuning.timed} candidates timed)" in note
    assert (f"({len(untimed)} with one candidate worth timing or too few MACs)" in note) == bool(untimed)
    if tuning.kernels_timed:
        assert f"{tuning.kernels_timed} kernel sets timed" in note


def test_a_kernel_set_named_in_openblas_coretype_is_kept_and_said(tmp_path, monkeypatch):
    """OPENBLAS_CORETYPE is the user's choice: no other kernel set is timed or switched to, and the note says why
    (it used to call the pinned set "OpenBLAS's own pick")."""
    from convcalc.kernels import blas
    from convcalc.report.tune import tuning_note

    running = blas.kernels()
    if running is None or blas._dispatch() is None:
        pytest.skip("NumPy's BLAS is not the bundled DYNAMIC_ARCH OpenBLAS")
    monkeypatch.setenv("OPENBLAS_CORETYPE", running)          # what runs now: nothing to switch either way
    tuning = tuner.tune(summary_of(), 1, cache=TuneCache(tmp_path / "tuning.json"), budget=600)
    assert tuning.kernels_by == "pinned" and tuning.kernels_timed == 0 and blas.kernels() == running
    note = tuning_note(tuning)
    assert f"OpenBLAS's {running} kernels (OPENBLAS_CORETYPE sets them: no other set timed)" in note
    assert "own pick" not in note
