"""Receptive fields exact per channel segment (convcalc.analysis.channels) against PyTorch autograd.

The oracle: the same network built from torch functions (conv2d with its groups, avg_pool2d, cat, narrow, chunk,
channel_shuffle, +), random weights drawn from [0.5, 1.5] (no zeros), no bias, a strictly positive input, float64.
Nothing can cancel, so the gradient of the sum of some output channels at one position with respect to the input
is non-zero exactly where those channels at that position depend on the input: its per-axis hull must be what the
analysis says: ``Field.extent`` of the layer's field for all its channels together (the hull), and for each channel
alone the field of the channel run holding it (`LayerResult.channel_fields`; none: the layer's field).
The units checked: the corners, the centre and border midpoints.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convcalc.analysis.summary import analyze
from convcalc.spec.load import spec_from_dict

DTYPE = torch.float64


# --------------------------------------------------------------------------- the oracle network

def _weights(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return 0.5 + torch.rand(*shape, generator=generator, dtype=DTYPE)


def oracle_outputs(layers: Sequence[dict], x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every layer's output by torch's functions, by name (``from`` and Split/Chunk parts ``name.K`` resolved)."""
    generator = torch.Generator().manual_seed(seed)
    values: dict[str, torch.Tensor] = {"input": x}
    previous = "input"
    for layer in layers:
        source = layer.get("from", previous)
        names = [source] if isinstance(source, str) else list(source)
        inputs = [_value(values, name) for name in names]
        kind = layer["type"]
        if kind == "Conv2d":
            groups = layer.get("groups", 1)
            k = layer["kernel_size"]
            weight = _weights(generator, layer["out_channels"], inputs[0].shape[1] // groups, k, k)
            out = F.conv2d(inputs[0], weight, None, layer.get("stride", 1), layer.get("padding", 0),
                           layer.get("dilation", 1), groups)
        elif kind == "AvgPool2d":
            out = F.avg_pool2d(inputs[0], layer["kernel_size"], layer.get("stride"), layer.get("padding", 0),
                               count_include_pad=True)
        elif kind == "BatchNorm2d":
            channels = inputs[0].shape[1]
            out = F.batch_norm(inputs[0], torch.zeros(channels, dtype=DTYPE), torch.ones(channels, dtype=DTYPE),
                               _weights(generator, channels), None, training=False)
        elif kind == "Concat":
            out = torch.cat(inputs, dim=layer.get("dim", 1))
        elif kind == "Add":
            out = sum(inputs[1:], inputs[0])
        elif kind == "Narrow":
            out = torch.narrow(inputs[0], layer["dim"], layer["start"], layer["length"])
        elif kind == "GLU":
            out = F.glu(inputs[0], layer["dim"])
        elif kind == "LocalResponseNorm":
            out = F.local_response_norm(inputs[0], layer["size"])
        elif kind == "Linear":
            weight = _weights(generator, layer["out_features"], inputs[0].shape[-1])
            out = F.linear(inputs[0], weight)
        elif kind == "ChannelShuffle":
            out = F.channel_shuffle(inputs[0], layer["groups"])
        elif kind == "Chunk":
            values.update({f"{layer['name']}.{k}": part
                           for k, part in enumerate(torch.chunk(inputs[0], layer["chunks"], dim=layer.get("dim", 1)))})
            continue
        elif kind == "Split":
            values.update({f"{layer['name']}.{k}": part for k, part in
                           enumerate(torch.split(inputs[0], layer["split_size_or_sections"], dim=layer.get("dim", 1)))})
            continue
        else:
            raise AssertionError(kind)
        values[layer["name"]] = out
        previous = layer["name"]
    return values


def _value(values: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    return values[name]


def _hull(grad: torch.Tensor) -> Optional[tuple[tuple[int, int], ...]]:
    """Per spatial axis the first and last input index with a non-zero gradient (None: none)."""
    support = grad[0].abs().sum(dim=0) > 0                       # (H, W)
    if not bool(support.any()):
        return None
    found = []
    for axis in range(support.dim()):
        other = tuple(a for a in range(support.dim()) if a != axis)
        hits = torch.nonzero(support.any(dim=other) if other else support).flatten()
        found.append((int(hits[0]), int(hits[-1])))
    return tuple(found)


def _units(shape: Sequence[int]) -> list[tuple[int, ...]]:
    h, w = shape
    picks = {(0, 0), (h - 1, w - 1), (h // 2, w // 2), (0, w // 2), (h // 2, 0), (h - 1, 0), (0, w - 1)}
    return sorted(picks)


def check(layers: list[dict], input_shape: Sequence[int] = (3, 12, 12), seed: int = 0,
          names: Optional[Sequence[str]] = None) -> int:
    """Every layer's field (and each of its channel runs' fields) against autograd; the number of checks."""
    spec = spec_from_dict({"name": "channels", "input": list(input_shape), "layers": layers})
    summary = analyze(spec)
    x = (0.5 + torch.rand(1, *input_shape, generator=torch.Generator().manual_seed(seed + 1),
                          dtype=DTYPE)).requires_grad_(True)
    values = oracle_outputs(layers, x, seed)
    checked = 0
    for row in summary.layers:
        if names is not None and row.name not in names:
            continue
        y = values[row.name]
        assert tuple(y.shape[1:]) == tuple(row.output_shape), row.name
        runs = row.channel_fields
        if runs is not None:
            assert runs[0][0] == 0 and runs[-1][1] == row.output_shape[0]
            assert all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
        per_channel = [row.rf] * row.output_shape[0] if runs is None else \
            [field for start, stop, field in runs for _ in range(stop - start)]
        for unit in _units(row.output_shape[1:]):
            (grad,) = torch.autograd.grad(y[0, :, unit[0], unit[1]].sum(), x, retain_graph=True)
            assert _hull(grad) == row.rf.extent(unit), (row.name, unit)
            for channel, field in enumerate(per_channel):        # each channel: its own segment's field
                (grad,) = torch.autograd.grad(y[0, channel, unit[0], unit[1]], x, retain_graph=True)
                assert _hull(grad) == field.extent(unit), (row.name, channel, unit)
                checked += 1
    return checked


def conv(name: str, out: int, k: int, source: Any = None, **args: Any) -> dict:
    layer = {"type": "Conv2d", "name": name, "out_channels": out, "kernel_size": k,
             "padding": args.pop("padding", k // 2), "bias": False, **args}
    if source is not None:
        layer["from"] = source
    return layer


# --------------------------------------------------------------------------- the cases

BRANCHES = [conv("a", 2, 1, "input"), conv("b", 2, 5, "input"), {"type": "Concat", "name": "cat", "from": ["a", "b"]}]


def test_narrow_after_concat_of_unequal_branches() -> None:
    """The bug's repro: the Narrow onto the 1×1 channels sees 1×1, the 3×3 conv after it 3×3 (not 5×5 and 7×7)."""
    layers = [conv("a", 2, 1, "input", padding=0), conv("b", 2, 5, "input", padding=2),
              {"type": "Concat", "name": "cat", "from": ["a", "b"]},
              {"type": "Narrow", "name": "narrow", "dim": 1, "start": 0, "length": 2},
              conv("out", 4, 3, padding=0)]
    summary = analyze(spec_from_dict({"name": "narrow", "input": [3, 16, 16], "layers": layers}))
    assert [int(a.size) for a in summary.layer("narrow").rf.axes] == [1, 1]
    assert [int(a.size) for a in summary.layer("out").rf.axes] == [3, 3]
    assert [int(a.size) for a in summary.layer("cat").rf.axes] == [5, 5]          # the hull over its channels
    assert check(layers, (3, 16, 16)) > 0


@pytest.mark.parametrize("layers", [
    pytest.param(BRANCHES + [{"type": "Narrow", "name": "n", "dim": 1, "start": 1, "length": 2}, conv("c", 3, 3)],
                 id="narrow-across-the-seam"),
    pytest.param(BRANCHES + [{"type": "Chunk", "name": "ch", "chunks": 2}, conv("c", 2, 3, "ch.0"),
                             conv("d", 2, 3, "ch.1")], id="chunk"),
    pytest.param(BRANCHES + [{"type": "Split", "name": "sp", "split_size_or_sections": [1, 3]},
                             conv("c", 2, 3, "sp.0"), conv("d", 2, 1, "sp.1")], id="split-sections"),
    pytest.param(BRANCHES + [{"type": "ChannelShuffle", "name": "sh", "groups": 2},
                             {"type": "Narrow", "name": "n", "dim": 1, "start": 2, "length": 1}, conv("c", 2, 3)],
                 id="shuffle-then-slice"),
    pytest.param(BRANCHES + [conv("g", 4, 3, "cat", groups=2)], id="grouped-conv-after-concat"),
    pytest.param(BRANCHES + [conv("dw", 4, 3, "cat", groups=4), {"type": "AvgPool2d", "name": "p", "kernel_size": 3,
                                                                 "stride": 1, "padding": 1},
                             {"type": "BatchNorm2d", "name": "bn"},
                             {"type": "Narrow", "name": "n", "dim": 1, "start": 0, "length": 2}],
                 id="depthwise-pool-bn-carry-segments"),
    pytest.param(BRANCHES + [{"type": "Narrow", "name": "n0", "dim": 1, "start": 0, "length": 2, "from": "cat"},
                             {"type": "Narrow", "name": "n1", "dim": 1, "start": 2, "length": 2, "from": "cat"},
                             {"type": "Add", "name": "sum", "from": ["n0", "n1"]},
                             {"type": "Add", "name": "sum2", "from": ["cat", "cat"]},
                             {"type": "Narrow", "name": "n2", "dim": 1, "start": 0, "length": 1}],
                 id="add-of-slices"),
    pytest.param(BRANCHES + [{"type": "Narrow", "name": "n", "dim": 2, "start": 3, "length": 6},
                             {"type": "Narrow", "name": "m", "dim": 1, "start": 0, "length": 2}],
                 id="narrow-spatial-keeps-segments"),
    pytest.param(BRANCHES + [{"type": "Concat", "name": "ba", "from": ["b", "a"]},     # the gate σ(·) from the 1×1
                             {"type": "GLU", "name": "glu", "dim": 1},                    # branch: not saturated
                             {"type": "LocalResponseNorm", "name": "lrn", "size": 3, "from": "cat"},
                             {"type": "Narrow", "name": "n", "dim": 1, "start": 0, "length": 1}],
                 id="glu-and-lrn-across-the-channels"),
    pytest.param(BRANCHES + [{"type": "Linear", "name": "lin", "out_features": 5, "bias": False},
                             {"type": "Narrow", "name": "n", "dim": 1, "start": 0, "length": 2}],
                 id="linear-over-the-last-axis-keeps-channels"),
    pytest.param(BRANCHES + [conv("dense", 3, 3, "cat"), {"type": "Narrow", "name": "n", "dim": 1, "start": 0,
                                                           "length": 1}],
                 id="dense-conv-merges-segments"),
    pytest.param([conv("a", 2, 1, "input"), conv("b", 2, 3, "input", stride=2, padding=1),
                  conv("a2", 2, 1, "a", stride=2, padding=0), {"type": "Concat", "name": "cat", "from": ["a2", "b"]},
                  {"type": "ChannelShuffle", "name": "sh", "groups": 2},
                  {"type": "Chunk", "name": "ch", "chunks": 2}, conv("c", 2, 3, "ch.1", dilation=2, padding=2)],
                 id="strided-branches-shufflenet-style"),
])
def test_segments_against_autograd(layers: list[dict]) -> None:
    assert check(layers) > 0


def test_slice_of_one_branch_is_that_branch_exactly() -> None:
    """The slice's field is the branch's own; its paths continue the Concat's (every path is its previous layer's
    path, then the layer: what the JSON's max_path_prev rebuilds)."""
    for start, size in ((0, 1), (2, 5)):
        layers = BRANCHES + [{"type": "Narrow", "name": "n", "dim": 1, "start": start, "length": 2}]
        summary = analyze(spec_from_dict({"name": "slice", "input": [3, 12, 12], "layers": layers}))
        assert [int(a.size) for a in summary.layer("n").rf.axes] == [size, size]
        assert summary.layer("n").rf.max_path == summary.layer("cat").rf.max_path + ("n",) == ("b", "cat", "n")
        assert summary.layer("n").rf.min_path == summary.layer("cat").rf.min_path + ("n",) == ("a", "cat", "n")
        assert summary.layer("cat").channel_fields is not None and summary.layer("n").channel_fields is None


# --------------------------------------------------------------------------- randomized graphs

@st.composite
def graphs(draw: Any) -> list[dict]:
    """A few size-keeping layers, each reading earlier tensors: convs (groups, dilation), pools, concats, slices,
    shuffles, adds."""
    tensors: dict[str, int] = {"input": 3}                     # name -> channels
    layers: list[dict] = []
    for index in range(draw(st.integers(3, 7))):
        name = f"l{index}"
        source = draw(st.sampled_from(sorted(tensors)))
        channels = tensors[source]
        kind = draw(st.sampled_from(["conv", "conv", "concat", "concat", "narrow", "shuffle", "group", "pool",
                                     "add", "chunk"]))
        if kind == "conv":
            k = draw(st.sampled_from([1, 3, 5]))
            d = draw(st.sampled_from([1, 1, 2]))
            layers.append(conv(name, draw(st.integers(1, 4)), k, source, dilation=d, padding=d * (k // 2)))
            tensors[name] = layers[-1]["out_channels"]
        elif kind == "concat":
            other = draw(st.sampled_from(sorted(tensors)))
            layers.append({"type": "Concat", "name": name, "from": [source, other]})
            tensors[name] = channels + tensors[other]
        elif kind == "narrow" and channels > 1:
            start = draw(st.integers(0, channels - 1))
            length = draw(st.integers(1, channels - start))
            layers.append({"type": "Narrow", "name": name, "dim": 1, "start": start, "length": length, "from": source})
            tensors[name] = length
        elif kind == "shuffle" and channels % 2 == 0:
            layers.append({"type": "ChannelShuffle", "name": name, "groups": 2, "from": source})
            tensors[name] = channels
        elif kind == "group" and channels % 2 == 0:
            k = draw(st.sampled_from([1, 3]))
            layers.append(conv(name, channels, k, source, groups=draw(st.sampled_from([2, channels]))))
            tensors[name] = channels
        elif kind == "pool":
            layers.append({"type": "AvgPool2d", "name": name, "kernel_size": 3, "stride": 1, "padding": 1,
                           "from": source})
            tensors[name] = channels
        elif kind == "add":
            same = sorted(n for n, c in tensors.items() if c == channels)
            layers.append({"type": "Add", "name": name, "from": [source, draw(st.sampled_from(same))]})
            tensors[name] = channels
        elif kind == "chunk" and channels > 1:
            layers.append({"type": "Chunk", "name": name, "chunks": 2, "from": source})
            part = draw(st.integers(0, 1))
            layers.append(conv(f"{name}c", 2, 3, f"{name}.{part}"))
            tensors[f"{name}c"] = 2
        else:
            layers.append(conv(name, 2, 3, source))
            tensors[name] = 2
    return layers


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs())
def test_random_graphs_against_autograd(layers: list[dict]) -> None:
    check(layers, (3, 10, 10))


def test_past_most_channels_every_channel_shares_the_hull(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensors wider than MOST_CHANNELS are not followed channel by channel: one field for all their channels, the
    hull (sound: it holds every channel's field), so a huge channel count costs no per-channel work."""
    import convcalc.analysis.channels as channels

    layers = BRANCHES + [{"type": "Narrow", "name": "n", "dim": 1, "start": 0, "length": 2}]
    spec = spec_from_dict({"name": "wide", "input": [3, 12, 12], "layers": layers})
    assert [int(a.size) for a in analyze(spec).layer("n").rf.axes] == [1, 1]
    monkeypatch.setattr(channels, "MOST_CHANNELS", 3)
    summary = analyze(spec)
    assert summary.layer("cat").channel_fields is None
    assert [int(a.size) for a in summary.layer("n").rf.axes] == [5, 5]
