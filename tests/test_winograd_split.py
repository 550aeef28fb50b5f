"""Winograd in pieces (`kernels.conv_winograd_split`, the tuner's 'winograd_b' and 'winograd_p'): whole samples, or
bands of tile rows, each run as `conv_winograd` on the input rows its tiles read, on 1-3 threads of the kernels' own.

The oracle is PyTorch's ConvNd in float64 (zero, reflect and circular padding; odd and even extents; 1-3 spatial
axes); the same pieces give the same bytes run after run, and from as many samples as threads on the pieces do not
depend on the thread count at all. MACs are counted as the whole `conv_winograd` counts them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.kernels import (MacCounter, blas, conv_winograd, conv_winograd_split, to_logical, to_storage,
                              winograd_parts, winograd_weights)
from convcalc.layers import lookup


@settings(max_examples=60, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 31 - 1))
def test_winograd_in_pieces_is_torch_conv_on_any_thread_count(data, seed):
    dims = data.draw(st.integers(1, 3))
    spatial = [data.draw(st.integers(1, 9 if dims < 3 else 5)) for _ in range(dims)]
    pads = [data.draw(st.integers(0, 3)) for _ in range(dims)]
    spatial = [max(size, 3 - 2 * pad) for size, pad in zip(spatial, pads)]
    batch, channels, out_channels = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, *spatial))
    weight, bias = rng.standard_normal((out_channels, channels, *[3] * dims)), rng.standard_normal(out_channels)
    conv = getattr(F, f"conv{dims}d")
    want = conv(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias), padding=pads).numpy()
    out = want.shape[2:]
    transformed = winograd_weights(weight, np.float64)
    whole = MacCounter()
    conv_winograd(to_storage(x), transformed, out, whole, bias, [(p, p) for p in pads])
    runs = {}
    for workers in (1, 2, 3):
        counter = MacCounter()
        got = conv_winograd_split(to_storage(x), transformed, out, counter, bias, [(p, p) for p in pads],
                                  workers=workers)
        np.testing.assert_allclose(to_logical(got), want, rtol=1e-9, atol=1e-9)
        again = conv_winograd_split(to_storage(x), transformed, out, MacCounter(), bias, [(p, p) for p in pads],
                                    workers=workers)
        assert got.tobytes() == again.tobytes()
        assert (counter.total, counter.transform_macs, counter.transform) == \
            (whole.total, whole.transform_macs, "winograd")
        runs[workers] = got.tobytes()
    for workers in (2, 3):          # the same pieces (whole samples) whatever the thread count
        if batch >= workers:
            assert runs[workers] == runs[1]


def test_pieces_cover_every_tile_row_of_every_sample_once():
    for batch in range(1, 5):
        for rows in range(1, 7):
            for workers in range(1, 5):
                parts = winograd_parts(batch, rows, workers)
                cells = sorted((n, r) for first, last, top, bottom in parts for n in range(first, last)
                               for r in range(top, bottom))
                assert cells == [(n, r) for n in range(batch) for r in range(rows)]
                assert len(parts) >= min(workers, batch * rows)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize("batch", [1, 3])
def test_layer_runs_winograd_in_pieces_as_torch_conv(mode, batch):
    """The conv layer's 'winograd_b' and 'winograd_p' plans (any padding mode: a non-zero one padded first), as
    `forward` and as `forward_into`, against PyTorch's Conv2d; the same bytes run after run."""
    layer = lookup("Conv2d").from_args({"out_channels": 5, "kernel_size": 3, "padding": 1, "padding_mode": mode})
    shape = (4, 7, 6)
    out_shape = layer.infer([shape]).out_shape
    rng = np.random.default_rng(batch)
    weight, bias = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)
    x, other = rng.standard_normal((batch, *shape)), rng.standard_normal((batch, *out_shape))
    padded = F.pad(torch.from_numpy(x), (1, 1, 1, 1), mode="constant" if mode == "zeros" else mode)
    want = F.conv2d(padded, torch.from_numpy(weight), torch.from_numpy(bias)).numpy()
    for choice in ("winograd_b", "winograd_p"):
        plan = layer.prepare({"weight": weight, "bias": bias}, [shape], out_shape, np.dtype(np.float64), choice=choice)
        assert plan["method"] == choice
        counter = MacCounter()
        got = layer.forward([to_storage(x)], plan, counter)
        np.testing.assert_allclose(to_logical(got), want, rtol=1e-9, atol=1e-9, err_msg=choice)
        assert counter.total == want.size * 4 * 9
        assert got.tobytes() == layer.forward([to_storage(x)], plan, MacCounter()).tobytes()
        into = np.array(to_storage(other), order="C")
        summed = layer.forward_into([to_storage(x)], plan, MacCounter(), into)
        np.testing.assert_allclose(to_logical(summed), want + other, rtol=1e-9, atol=1e-9, err_msg=choice)


def test_offered_where_winograd_is_and_threaded_only_with_threads(monkeypatch):
    layer = lookup("Conv2d").from_args({"out_channels": 64, "kernel_size": 3, "padding": 1})
    monkeypatch.setattr(blas, "can_set_threads", lambda: True)
    for threads in (1, 2):
        monkeypatch.setattr(blas, "threads", lambda threads=threads: threads)
        offered = layer.algorithm_choices(64, (56, 56), (56, 56), np.float32, prune=False)
        assert "winograd" in offered
        assert ("winograd_p" in offered) == (threads > 1) != ("winograd_b" in offered)
    strided = lookup("Conv2d").from_args({"out_channels": 64, "kernel_size": 3, "stride": 2, "padding": 1})
    assert not {"winograd_b", "winograd_p"} & set(strided.algorithm_choices(64, (56, 56), (28, 28), np.float32,
                                                                               prune=False))


@pytest.mark.parametrize("choice", ["winograd_b", "winograd_p"])
@pytest.mark.parametrize("batch", [1, 4])
def test_memory_estimate_bounds_winograd_in_pieces(choice, batch):
    """`convcalc run`'s estimate bounds what the run allocates (tracemalloc, as test_hostile_run's algorithms)."""
    import convcalc
    from convcalc.analysis.summary import analyze
    from convcalc.proof.run import run_estimate
    from test_hostile_run import format_bytes, measured_run

    if (choice == "winograd_p") != (blas.threads() > 1 and blas.can_set_threads()):
        pytest.skip("'winograd_p' is offered where BLAS runs several threads, 'winograd_b' where it runs one")
    spec = convcalc.parse_spec("name: c\ninput: [16, 96, 96]\nlayers:\n  - {type: ReLU}\n"
                               "  - {type: Conv2d, out_channels: 32, kernel_size: 3, padding: 1}\n"
                               "  - {type: BatchNorm2d}\n  - {type: ReLU}\n", "c.yaml")
    graph = convcalc.build_graph(spec)
    summary = analyze(graph)
    conv = next(node for node in graph.nodes if node.type_name == "Conv2d")
    conv.layer.use_choice(16, (96, 96), (96, 96), np.dtype("float32"), choice)
    assert conv.layer.algorithm_for(16, (96, 96), (96, 96), np.dtype("float32")) == choice
    x = np.random.default_rng(0).random((batch, 16, 96, 96))
    measured = measured_run(graph, x, rf_check=False)
    estimate = run_estimate(summary, batch, rf_check=False).total
    assert measured <= estimate <= 3 * measured + 40 * 2 ** 20, (format_bytes(measured), format_bytes(estimate))
