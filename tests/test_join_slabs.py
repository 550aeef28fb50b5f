"""Joins written into one buffer (`convcalc.execution.slabs`): a chain of Concats, each extending the one before (a
DenseNet block), fills one buffer in place. Checked against PyTorch (float64) and, bit for bit, against the same
network's layer-by-layer values (`Network.values`: np.concatenate, nothing in place); and `channel_affine`, the
BatchNorm kernel that reads a join's strided slice, against NumPy's own expression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import convcalc
from convcalc.execution.network import Network
from convcalc.kernels import channel_affine, parallel


def dense_spec(layers: int = 3, extra: list | None = None) -> dict:
    """A dense block: each layer BN-ReLU-3x3 conv of 'growth' 3 joined to its input."""
    spec = [{"type": "Conv2d", "name": "stem", "out_channels": 4, "kernel_size": 3, "padding": 1}]
    previous = "stem"
    for index in range(layers):
        spec += [{"type": "BatchNorm2d", "name": f"bn{index}", "from": previous},
                 {"type": "ReLU", "name": f"relu{index}"},
                 {"type": "Conv2d", "name": f"conv{index}", "out_channels": 3, "kernel_size": 3, "padding": 1},
                 {"type": "Concat", "name": f"cat{index}", "from": [previous, f"conv{index}"]}]
        previous = f"cat{index}"
    return {"input": [2, 7, 6], "layers": spec + (extra or [])}


def torch_state(network: Network, seed: int = 0) -> tuple[dict, dict[str, torch.nn.Module]]:
    """Torch modules for every Conv2d and BatchNorm2d of the network (random weights and running statistics) and
    the state dict convcalc takes."""
    torch.manual_seed(seed)
    modules: dict[str, torch.nn.Module] = {}
    for node, row in zip(network.graph.nodes, network.summary.layers):
        channels = network._shape(node.inputs[0])[0]
        if node.type_name == "Conv2d":
            modules[node.name] = torch.nn.Conv2d(channels, row.output_shape[0], node.layer.kernel_size,
                                                 padding=node.layer.padding).double()
        elif node.type_name == "BatchNorm2d":
            module = torch.nn.BatchNorm2d(channels).double().eval()
            with torch.no_grad():
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(-2, 2)
                module.bias.uniform_(-1, 1)
            modules[node.name] = module
    state = {f"{name}.{key}": value.detach().numpy() for name, module in modules.items()
             for key, value in module.state_dict().items()}
    return state, modules


def torch_forward(graph, modules: dict[str, torch.nn.Module], x: np.ndarray) -> dict[str, np.ndarray]:
    values = {"input": torch.from_numpy(x)}
    with torch.no_grad():
        for node in graph.nodes:
            inputs = [values[name] for name in node.inputs]
            if node.type_name == "Concat":
                values[node.name] = torch.cat(inputs, dim=1)
            elif node.type_name == "ReLU":
                values[node.name] = torch.relu(inputs[0])
            elif node.type_name == "Add":
                values[node.name] = inputs[0] + inputs[1]
            else:
                values[node.name] = modules[node.name](inputs[0])
    return {name: value.numpy() for name, value in values.items()}


def build(spec: dict, seed: int = 0) -> tuple[Network, dict[str, torch.nn.Module]]:
    graph = convcalc.build_graph(convcalc.spec_from_dict(spec))
    probe = Network(graph, tuple(spec["input"]), dtype="float64", prepare=False)
    state, modules = torch_state(probe, seed)
    return Network(graph, tuple(spec["input"]), state=state, dtype="float64"), modules


def test_a_dense_block_fills_one_buffer_and_matches_torch():
    network, modules = build(dense_spec(4))
    assert {name: slab.root for name, slab in network.slabs.items()} == {f"cat{i}": "cat3" for i in range(4)}
    assert [network.slabs[f"cat{i}"].start for i in range(4)] == [0, 7, 10, 13]     # 4 + 3 per layer
    x = np.random.default_rng(1).standard_normal((3, 2, 7, 6))
    expected = torch_forward(network.graph, modules, x)
    result = network.run(x, keep=[f"cat{i}" for i in range(3)])
    assert result.ok
    assert np.abs(result.output - expected["cat3"]).max() < 1e-12
    for i in range(3):                     # each kept join is its own values, not the later joins' buffer
        assert np.abs(result.maps[f"cat{i}"] - expected[f"cat{i}"]).max() < 1e-12
    values = network.values(x)             # np.concatenate, layer by layer: the same bytes
    assert np.array_equal(np.ascontiguousarray(convcalc.kernels.to_logical(values["cat3"])), result.output)


def test_the_joins_are_views_of_one_buffer():
    network, _ = build(dense_spec(3))
    seen: list[np.ndarray] = []
    original = network._join

    def spy(slab, inputs, chains):
        seen.append(original(slab, inputs, chains))
        return seen[-1]

    network._join = spy
    network.run(np.random.default_rng(2).standard_normal((2, 2, 7, 6)))
    assert len(seen) == 3
    assert all(np.shares_memory(view, seen[-1]) for view in seen)
    assert [view.shape[-1] for view in seen] == [7, 10, 13]


def test_a_join_read_after_the_chain_grew_is_never_overwritten_in_place():
    """cat0 is read by an in-place ReLU after cat2 (a view of the same buffer, read later) exists: the ReLU must
    not write into the buffer; and the graph's output is a join read by nothing."""
    extra = [{"type": "ReLU", "name": "late", "from": "cat0"},
             {"type": "Conv2d", "name": "head", "out_channels": 7, "kernel_size": 1, "from": "cat2"},
             {"type": "Conv2d", "name": "side", "out_channels": 7, "kernel_size": 1, "from": "late"},
             {"type": "Add", "name": "sum", "from": ["head", "side"]}]
    network, modules = build(dense_spec(3, extra))
    x = np.random.default_rng(3).standard_normal((2, 2, 7, 6))
    expected = torch_forward(network.graph, modules, x)
    for keep in ((), ("cat1",), True):
        result = network.run(x, keep=keep)
        assert result.ok
        assert np.abs(result.output - expected["sum"]).max() < 1e-12, keep


def test_a_join_extended_twice_is_no_chain():
    """Two joins extending the same one would write the same slice: neither shares its buffer."""
    extra = [{"type": "Conv2d", "name": "other", "out_channels": 3, "kernel_size": 1, "from": "cat0"},
             {"type": "Concat", "name": "fork", "from": ["cat0", "other"]},
             {"type": "Add", "name": "sum", "from": ["fork", "cat1"]}]
    network, modules = build(dense_spec(2, extra))
    assert "cat1" not in network.slabs and "fork" not in network.slabs
    x = np.random.default_rng(4).standard_normal((2, 2, 7, 6))
    expected = torch_forward(network.graph, modules, x)
    assert np.abs(network.run(x).output - expected["sum"]).max() < 1e-12


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 56, 56, 64), (4, 14, 14, 200), (3, 10), (5, 9, 13), (0, 4, 4, 8)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_affine_is_numpys_expression_bit_for_bit(shape, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    scale, shift = rng.standard_normal(shape[-1]).astype(dtype), rng.standard_normal(shape[-1]).astype(dtype)
    want = x * scale + shift
    assert np.array_equal(channel_affine(x, scale, shift), want)
    wide = np.concatenate([x, x[..., :1]], axis=-1)[..., :shape[-1]]     # a join's slice: strided rows
    assert np.array_equal(channel_affine(wide, scale, shift), want)
    assert np.array_equal(channel_affine(x[:, ::2] if x.ndim > 2 else x[::2], scale, shift),
                          (x[:, ::2] if x.ndim > 2 else x[::2]) * scale + shift)


def test_channel_affine_is_the_same_on_any_number_of_threads(monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 64, 64, 96)).astype(np.float32)
    scale, shift = rng.standard_normal(96).astype(np.float32), rng.standard_normal(96).astype(np.float32)
    results = []
    for count in (1, 2, 3):
        monkeypatch.setattr(parallel, "threads", lambda count=count: count)
        monkeypatch.setattr(parallel, "MIN_PART_ELEMENTS", 1024)
        results.append(channel_affine(x, scale, shift))
    assert all(np.array_equal(results[0], other) for other in results[1:])


def test_an_unfolded_batchnorm_applies_its_relu_as_it_writes():
    """A BatchNorm no conv absorbed (it reads a join) and the ReLU that alone reads it: the ReLU runs block by
    block inside the BatchNorm's pass (marked fused); the same numbers as torch, fused or not (keep=True: nothing
    fused), and the same bytes as the layer-by-layer values."""
    network, modules = build(dense_spec(3))
    assert network.then == {f"bn{i}": f"relu{i}" for i in range(3)}
    x = np.random.default_rng(7).standard_normal((2, 2, 7, 6))
    expected = torch_forward(network.graph, modules, x)
    fused = network.run(x)
    assert {r.name: r.fused_into for r in fused.layers if r.fused_into} == {f"relu{i}": f"bn{i}" for i in range(3)}
    kept = network.run(x, keep=True)
    assert not any(r.fused_into for r in kept.layers)
    for result in (fused, kept):
        assert result.ok and np.abs(result.output - expected["cat2"]).max() < 1e-12
    assert np.abs(kept.maps["relu1"] - expected["relu1"]).max() < 1e-12
    assert np.abs(kept.maps["bn1"] - expected["bn1"]).max() < 1e-12        # before its ReLU
    assert np.array_equal(fused.output, kept.output)


def test_a_batchnorm_whose_output_is_not_finite_is_blamed_even_when_its_relu_hides_it():
    """A BatchNorm whose shift is -inf gives -inf everywhere, which its ReLU makes 0: fused or not, the BatchNorm is
    the first layer whose output was not finite, and the ReLU's is."""
    network, _ = build(dense_spec(1))
    x = np.random.default_rng(9).standard_normal((1, 2, 7, 6))
    network.prepared["bn0"]["shift"] = network.prepared["bn0"]["shift"] * 0 - np.inf
    fused, plain = network.run(x), network.run(x, keep=True)
    assert [r.name for r in fused.layers if r.fused_into] == ["relu0"]
    assert fused.first_nonfinite == plain.first_nonfinite == "bn0"
    assert fused.layers[[r.name for r in fused.layers].index("relu0")].finite     # the ReLU's zeros
