"""`convcalc.run`: execute a network on real input and check every prediction of the analysis.

What `convcalc run` does between parsing its options and printing, as one library call::

    import convcalc
    checked = convcalc.run("specs/resnet18.yaml", "cat.png", normalize="imagenet")
    checked.ok                       # every shape, MAC count and receptive field confirmed, no NaN/Inf
    checked.output                   # [N, 1000], PyTorch's layout
    [(layer.name, layer.shape_ok, layer.macs_ok) for layer in checked.layers]

The network is analysed once: the executor, the weights check and the receptive-field proof share that summary.
Nothing here prints, and nothing switches the process's BLAS kernels (`convcalc.kernels.blas.prefer_kernels` is
the caller's choice: it is process-wide).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..analysis.summary import Summary, analyze
from ..errors import ConvcalcError
from ..execution.inputs import prepare_inputs
from ..execution.network import LayerRun, Network, RunResult
from ..execution.weights import load_npz, state_from_dict
from ..spec.graph import Graph
from ..spec.load import Spec
from ..spec.source import graph_of
from .verify import FieldCheck, verify_fields


@dataclass(frozen=True)
class CheckedRun:
    """A run and its checks: the executor's result, where the input came from, the receptive-field proof (None
    when skipped) and ``topk`` (the number of classes to show, None when not asked for)."""

    result: RunResult
    source: str
    rf_checks: tuple[FieldCheck, ...] | None
    topk: int | None = None

    @property
    def summary(self) -> Summary:
        return self.result.summary

    @property
    def output(self) -> np.ndarray:
        return self.result.output

    @property
    def layers(self) -> tuple[LayerRun, ...]:
        return self.result.layers

    @property
    def ok(self) -> bool:
        """Every predicted shape and MAC count confirmed, every output finite, every checked field proved."""
        return self.result.ok and all(check.ok for check in self.rf_checks or ())


def check_classifier(shape: Sequence[int]) -> None:
    """``topk`` ranks classes: the output must be [K] (or [K, 1, ...], a fully convolutional head)."""
    if any(size != 1 for size in shape[1:]):
        raise ConvcalcError(f"--topk ranks the classes of a classifier output [K] (or [K, 1, 1]); this network's"
                            f" output is {list(shape)}")


def run(spec: str | os.PathLike | Spec | Graph, input: str | os.PathLike | np.ndarray | None = None, *,
        weights: str | os.PathLike | Mapping[str, np.ndarray] | None = None, seed: int = 0, dtype: str = "float32",
        batch: int | None = None, resize: tuple[int, int] | None = None, normalize: str | None = None,
        mean: Sequence[float] | None = None, std: Sequence[float] | None = None, keep_maps: bool = False,
        rf_check: bool = True, topk: int | None = None, overrides: Mapping[str, Any] | None = None,
        allow_include_outside: bool = False, on_layer: Callable[[LayerRun], None] | None = None) -> CheckedRun:
    """Run ``spec`` (a path, a loaded Spec or a built Graph) on ``input`` and check every prediction.

    ``input``: None (the built-in test image), an image, .npy file, directory or glob, or an array [C, *S] or
    [N, C, *S]; ``resize``, ``normalize`` ('imagenet'), ``mean``/``std`` and ``batch`` prepare it as
    `convcalc.execution.inputs.prepare_inputs` says. ``weights``: a .npz path or a flat state dict keyed as
    PyTorch's (``<layer>.weight``); default: PyTorch's initialisation seeded ``seed``. ``keep_maps``: keep every
    layer's output in ``result.maps``. ``rf_check``: prove every layer's receptive field by exact dependency
    propagation. ``topk``: refuse early unless the output is a classifier's. ``on_layer`` is called after each layer.
    """
    graph = graph_of(spec, overrides, allow_include_outside)
    x, source = prepare_inputs(input, graph.input_shape, resize=resize, normalize=normalize, mean=mean, std=std,
                               batch=batch)
    summary = analyze(graph, x.shape[1:])
    if topk is not None:
        check_classifier(summary.output_shape)
    state = None
    if weights is not None:   # checked against this input's shapes (an empty dict is 'no weights' to Network)
        flat = load_npz(weights) if isinstance(weights, (str, os.PathLike)) else weights
        state = state_from_dict(flat, summary)
    network = Network(summary, state=state, seed=seed, dtype=dtype)
    result = network.run(x, keep=keep_maps, on_layer=on_layer)
    rf_checks = verify_fields(network) if rf_check else None
    return CheckedRun(result, source, rf_checks, topk)


__all__ = ["CheckedRun", "check_classifier", "run"]
