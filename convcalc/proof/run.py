"""`convcalc.run`: execute a network on real input and check every prediction of the analysis.

What `convcalc run` does between parsing its options and printing, as one library call::

    import convcalc
    checked = convcalc.run("specs/resnet18.yaml", "cat.png", normalize="imagenet")
    checked.ok                       # every shape, MAC count and receptive field confirmed, no NaN/Inf
    checked.output                   # [N, 1000], PyTorch's layout
    [(layer.name, layer.shape_ok, layer.macs_ok) for layer in checked.layers]

The network is analysed once: the executor, the weights check and the receptive-field proof share that summary.
Before anything large is read, drawn or allocated, the input's and the weights file's headers are checked against
the spec and the run's memory estimate against its budget (``max_memory``, `convcalc.execution.memory`).
Nothing here prints, and nothing switches the process's BLAS kernels (`convcalc.kernels.blas.use_kernels` is
the caller's choice: it is process-wide).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..analysis.sizes import size_text, sizes_hint, working_sizes
from ..analysis.summary import Summary, analyze
from ..errors import ConvcalcError, ShapeError
from ..algebra.shapes import prod
from ..execution.headers import InputError
from ..execution.inputs import declare_inputs, prepare_inputs
from ..execution.memory import (Estimate, MemoryBudgetError, check_memory, forward_memory, input_preparing, mask_memory, memory_budget,
                                picture_memory)
from ..execution.network import DTYPES, LayerRun, Network, RunResult
from ..execution.tune import forget_choices
from ..execution.init_schemes import Scheme, scheme_from_text
from ..execution.weights import check_state_shapes, load_npz, npz_arrays, state_from_dict, state_key
from ..spec.graph import Graph
from ..spec.load import Spec
from ..spec.source import graph_of
from .verify import BUDGET, FieldCheck, verify_fields


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


def analyze_input(graph: Graph, shape: Sequence[int], source: Any, resize: tuple[int, int] | None,
                  option: str = "--resize", dtype: str = "float32") -> Summary:
    """The analysis at the input's shape; where the spec takes its own size but not this one, an `InputError` that
    says so: the input's size, the sizes that work nearest it (`analysis.sizes`) and the ``option`` that sets
    another (--resize for images, rf's --input-size). ``source`` None with ``option`` --input-size: the size is
    the option's (analyze, rf), and the message keeps the spec's line where the analysis fails."""
    try:
        return analyze(graph, shape, dtype=dtype)
    except ShapeError as exc:
        if tuple(shape) == tuple(graph.input_shape):
            raise
        found = working_sizes(graph, shape)
        if not found.nearest and found.smallest is None and not _takes_its_own(graph):
            raise                  # the spec fails at its own size too: not the input's fault
        own = f"{size_text(shape)}" if source is None else f"{size_text(shape)} ({_source_name(source)})"
        images = len(shape) == 3 and not isinstance(source, np.ndarray) and (
            source is None or not os.fspath(source).lower().endswith(".npy"))
        closest = min(found.nearest, default=None,          # the first (below) where two are as near
                      key=lambda size: sum(abs(a - b) for a, b in zip(size, shape[1:])))
        if option == "--input-size" and closest:
            hint = f"; pass --input-size {shape[0]}x{size_text(closest)} (or any size that works)"
        elif images and closest:
            hint = (f"; pass --resize {size_text(closest)} (or any size that works) to resize"
                    f" {'the image' if source is not None else 'the built-in image'}")
        elif closest:
            hint = "; give an array of one of those sizes"
        elif images:
            hint = f"; --resize HxW resizes {'the image' if source is not None else 'the built-in image'}"
        else:
            hint = ""
        what = "resized input" if resize is not None else "input"
        lead, where = f"the {what} is {own},", ""
        if source is None and option == "--input-size":
            lead, where = f"{option} {size_text(shape)} is", f"{exc.location}: " if exc.location else ""
        raise InputError(f"{lead} a size the network cannot take: {where}{exc.message}; "
                         f"{sizes_hint(found)}{hint}") from None


def _takes_its_own(graph: Graph) -> bool:
    """Whether the spec analyses at its own input size."""
    try:
        analyze(graph)
        return True
    except ConvcalcError:
        return False


def _source_name(source: Any) -> str:
    return "an array" if isinstance(source, np.ndarray) else os.fspath(source)


READ_STAGE, RUN_STAGE, PROOF_STAGE = "reading inputs", "running", "receptive-field proof"


def _stage(on_progress: Callable[[str, int, int], None] | None, stage: str) -> Callable[[int, int], None] | None:
    """A ``(done, total)`` callback reporting ``stage`` to ``on_progress(stage, done, total)``."""
    if on_progress is None:
        return None
    return lambda done, total: on_progress(stage, done, total)


def _layers_done(on_layer: Callable[[LayerRun], None] | None, on_progress: Callable[[str, int, int], None] | None,
                 layers: int) -> Callable[[LayerRun], None] | None:
    """The executor's per-layer callback: ``on_layer(record)``, then the 'running' stage's progress."""
    if on_progress is None:
        return on_layer
    done = 0

    def after(record: LayerRun) -> None:
        nonlocal done
        done += 1
        if on_layer is not None:
            on_layer(record)
        on_progress(RUN_STAGE, done, layers)

    return after


def run(spec: str | os.PathLike | Spec | Graph, input: str | os.PathLike | np.ndarray | None = None, *,
        weights: str | os.PathLike | Mapping[str, np.ndarray] | None = None, seed: int = 0, dtype: str = "float32",
        init: str | Scheme | None = None,
        batch: int | None = None, resize: tuple[int, int] | None = None, normalize: str | None = None,
        mean: Sequence[float] | None = None, std: Sequence[float] | None = None, keep_maps: bool = False,
        rf_check: bool = True, topk: int | None = None, overrides: Mapping[str, Any] | None = None,
        allow_include_outside: bool = False, on_layer: Callable[[LayerRun], None] | None = None,
        max_memory: int | str | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
        choose: Callable[[Summary, int], None] | None = None) -> CheckedRun:
    """Run ``spec`` (a path, a loaded Spec or a built Graph) on ``input`` and check every prediction.

    ``input``: None (the built-in test image), an image, .npy file, directory or glob, or an array [C, *S] or
    [N, C, *S]; ``resize``, ``normalize`` ('imagenet'), ``mean``/``std`` and ``batch`` prepare it as
    `convcalc.execution.inputs.prepare_inputs` says. ``weights``: a .npz path or a flat state dict keyed as
    PyTorch's (``<layer>.weight``); default: PyTorch's initialisation seeded ``seed``, or the scheme ``init`` (a
    `Scheme` or its text, as ``convcalc run --init``) for the weights of 2+ dimensions. ``keep_maps``: keep every
    layer's output in ``result.maps``. ``rf_check``: prove every layer's receptive field by exact dependency
    propagation. ``topk``: refuse early unless the output is a classifier's. ``on_layer`` is called after each layer.
    ``max_memory``: the memory budget (bytes or a size such as '8G'; 0 or 'none': no limit; default: a share of
    the available memory, `convcalc.execution.memory.memory_budget`); a run whose estimate exceeds it is refused
    (`MemoryBudgetError`) before anything large is allocated. ``on_progress(stage, done, total)``: called as the
    input files are read ('reading inputs'), the layers run ('running') and their fields are proved
    ('receptive-field proof'). ``choose(summary, batch)``: called with the analysis at the input's shape once the
    memory estimate fits the budget, to choose each conv's algorithm (`convcalc run`'s tuner,
    `convcalc.execution.tune`); where its choices would not fit, the cost model's are kept.
    """
    graph = graph_of(spec, overrides, allow_include_outside)
    if weights is not None and init is not None:
        raise ConvcalcError("--init draws the weights and --weights loads them: give one of them")
    if dtype not in DTYPES:
        raise ConvcalcError(f"unknown dtype '{dtype}'; valid: {', '.join(DTYPES)}")
    budget = memory_budget(max_memory)
    declared = declare_inputs(input, graph.input_shape, resize=resize, batch=batch)
    summary = analyze_input(graph, declared.shape[1:], input, resize)
    if topk is not None:
        check_classifier(summary.output_shape)
    arrays = None
    state_bytes = None
    if isinstance(weights, (str, os.PathLike)):     # the file's headers, checked before anything is inflated
        arrays = npz_arrays(weights)
        check_state_shapes({key: header.shape for key, header in arrays.items()}, summary)
        state_bytes = {row.name: sum(arrays[state_key(row.name, name)].nbytes for name in {**row.weights,
                                                                                           **row.buffer_shapes}
                                     if state_key(row.name, name) in arrays) for row in summary.layers}
    elif weights is not None:
        state_bytes = {}                               # the caller's arrays: already in memory
    estimate = lambda: run_estimate(summary, declared.shape[0], dtype, declared.largest_file,  # noqa: E731
                                    state_bytes, keep_maps, rf_check)
    check_memory(estimate(), budget)
    if choose is not None:        # the tuner: after the check (it runs each conv), and checked again with its choices
        choose(summary, declared.shape[0])
        try:
            check_memory(estimate(), budget)
        except MemoryBudgetError:
            forget_choices(summary)          # what the budget holds: the cost model's choices

    x, source = prepare_inputs(input, graph.input_shape, resize=resize, normalize=normalize, mean=mean, std=std,
                               batch=batch, on_progress=_stage(on_progress, READ_STAGE))
    if tuple(x.shape[1:]) != tuple(summary.input_shape):     # the headers promised another size: analyse again
        summary = analyze_input(graph, x.shape[1:], input, resize)
    state = None
    if weights is not None:   # checked against this input's shapes (an empty dict is 'no weights' to Network)
        flat = load_npz(weights, arrays) if arrays is not None else weights
        state = state_from_dict(flat, summary)
    scheme = scheme_from_text(init) if isinstance(init, str) else init
    network = Network(summary, state=state, seed=seed, dtype=dtype, init=scheme)
    result = network.run(x, keep=keep_maps, on_layer=_layers_done(on_layer, on_progress, len(summary.layers)))
    rf_checks = verify_fields(network, on_progress=_stage(on_progress, PROOF_STAGE)) if rf_check else None
    return CheckedRun(result, source, rf_checks, topk)


def run_estimate(summary: Summary, batch: int, dtype: str = "float32", largest_file: int = 0,
                 state_bytes: Mapping[str, int] | None = None, keep_maps: bool = False,
                 rf_check: bool = True) -> Estimate:
    """An upper bound on the memory `run` needs (`execution.memory.forward_memory`), the receptive-field proof
    (`execution.memory.mask_memory`) and the feature-map pictures `convcalc run --save-maps` draws included."""
    shape = summary.input_shape
    after = []
    if rf_check:
        after.append({"receptive-field proof": mask_memory(summary, BUDGET)})
    if keep_maps:
        after.append({"pictures": max((picture_memory(row.output_shape[1:]) for row in summary.layers), default=0)})
    return forward_memory(summary, batch, dtype, state_bytes=state_bytes, keep_maps=keep_maps,
                          input_prepare=input_preparing(batch * prod(shape), len(shape) - 1, shape[0], largest_file),
                          after=after)


__all__ = ["CheckedRun", "check_classifier", "run", "run_estimate"]
