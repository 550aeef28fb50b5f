"""torchvision 0.28's own models as oracles for the shipped specs (test extra: torchvision==0.28.0).

torchvision's compiled ops fail to register against the CPU torch build, but its model definitions are plain
torch.nn: they import once ``torchvision._meta_registrations`` is kept from loading (a stub module). A spec that
models a torchvision network is checked against the model itself:

* `assert_same_network`: every state_dict key and shape, the parameter count per module and in total, buffers,
  the output shape of every leaf module called once, and FLOPs (``FlopCounterMode`` = 2 x MACs, per layer and in
  total) at the spec's input size;
* `assert_same_outputs`: the model's weights (seeded random values, running statistics included) loaded into
  ``convcalc.run`` by their state_dict keys, one float64 forward on a random input, the outputs within ``rtol``;
* `published`: torchvision's published ``num_params`` and GMACs (``_ops``) for a weights enum.
"""

from __future__ import annotations

import sys
import types
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import convcalc
from convcalc.execution.weights import state_key

SPECS = Path(__file__).resolve().parent.parent / "specs"


def torchvision_models() -> types.ModuleType:
    """``torchvision.models``, imported without the compiled-op registrations the CPU torch build refuses."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import torchvision.models
    return torchvision.models


def published(weights_enum: str) -> tuple[int, float]:
    """(num_params, GMACs) as torchvision publishes them for e.g. ``'ConvNeXt_Tiny_Weights'``: the first entry's
    metadata, the ``_ops`` column counting multiply-accumulates in billions."""
    models = torchvision_models()
    enum = getattr(models, weights_enum, None) or getattr(models.segmentation, weights_enum)   # DeepLabV3_*, LRASPP_*
    meta = next(iter(enum)).meta
    return meta["num_params"], meta["_ops"]


def summary_of(spec: str | Path, input_size: tuple[int, ...] | None = None) -> convcalc.Summary:
    path = Path(spec) if Path(spec).suffix else SPECS / f"{spec}.yaml"
    return convcalc.analyze(convcalc.build_graph(convcalc.load_spec(path)), input_size)


def build(factory: Callable[[], nn.Module]) -> nn.Module:
    """The model with uninitialised weights (random initialisation of millions of weights plays no part in what
    is compared): built on the meta device, then given CPU storage."""
    with torch.device("meta"):
        model = factory()
    return model.to_empty(device="cpu").eval()


def assert_same_network(summary: convcalc.Summary, model: nn.Module) -> None:
    """Keys, shapes, counts, every leaf's output shape and FLOPs of ``model`` (eval mode) equal the summary's."""
    in_shape = summary.input_shape
    convcalc_params = {state_key(row.name, key): tuple(shape) for row in summary.layers
                       for key, shape in row.weights.items()}
    torch_params = {key: tuple(p.shape) for key, p in model.named_parameters()}
    assert convcalc_params == torch_params
    convcalc_buffers = {state_key(row.name, key): tuple(shape) for row in summary.layers
                        for key, shape in row.buffer_shapes.items()}
    assert convcalc_buffers == {key: tuple(b.shape) for key, b in model.named_buffers()}

    per_module: dict[str, int] = defaultdict(int)
    tensor_layers = {row.name for row in summary.layers if "" in row.weights}   # a parameter that is the layer
    for key, p in model.named_parameters():
        per_module[key if key in tensor_layers else key.rsplit(".", 1)[0]] += p.numel()
    assert {row.name: row.params for row in summary.layers if row.params} == dict(per_module)
    assert summary.totals.params == sum(p.numel() for p in model.parameters())
    assert summary.totals.buffers == sum(b.numel() for b in model.buffers())

    leaves = {n: m for n, m in model.named_modules() if n and not any(m.children())}
    calls: Counter[str] = Counter()
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(module_name: str) -> Callable[..., None]:
        def record(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            calls[module_name] += 1
            shapes[module_name] = tuple(output.shape[1:])
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves.items()]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(torch.zeros(1, *in_shape))
    for handle in handles:
        handle.remove()
    out = out["out"] if isinstance(out, dict) else out

    assert tuple(out.shape[1:]) == tuple(summary.output_shape)
    layer_names = {row.name for row in summary.layers}
    compared = {n: shapes[n] for n in leaves if calls[n] == 1 and n in layer_names}
    assert compared == {n: tuple(summary.layer(n).output_shape) for n in compared}
    assert set(per_module) <= set(compared) | tensor_layers | {n for n in per_module if calls[n] != 1}
    assert counter.get_total_flops() == 2 * summary.totals.macs
    root = type(model).__name__ + "."
    torch_flops = {key[len(root):]: sum(ops.values()) for key, ops in counter.get_flop_counts().items()
                   if key.startswith(root) and key[len(root):] in leaves and calls[key[len(root):]] == 1}
    assert torch_flops == {row.name: row.flops for row in summary.layers if row.macs and calls[row.name] <= 1}


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded random float64 weights and running statistics (variances positive), so every parameter matters."""
    generator = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + values)
            else:
                tensor.copy_((values - 0.5) * (2.0 / max(1, tensor[0].numel()) ** 0.5 if tensor.dim() > 1 else 1.0))
    return model


def assert_same_outputs(spec: str | Path, model: nn.Module, input_size: tuple[int, ...], rtol: float = 1e-9,
                        seed: int = 0) -> None:
    """One float64 forward of ``model`` (randomized) and of convcalc with its state_dict: equal within ``rtol`` of
    the output's largest magnitude."""
    model = randomize(model, seed)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, *input_size)))
    with torch.no_grad():
        expected = model(x)
    expected = (expected["out"] if isinstance(expected, dict) else expected).numpy()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    path = Path(spec) if Path(spec).suffix else SPECS / f"{spec}.yaml"
    checked = convcalc.run(path, x.numpy(), weights=state, dtype="float64", rf_check=False,
                           overrides=None)
    got = checked.output
    assert got.shape == expected.shape
    scale = float(np.abs(expected).max())
    assert float(np.abs(got - expected).max()) <= rtol * scale, float(np.abs(got - expected).max()) / scale
