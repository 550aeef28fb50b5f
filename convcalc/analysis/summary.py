"""The analyzer: a generic walk over the graph that asks each layer unit for its rules.

It never tests a layer's type. Results are frozen data (plain ints, exact Fractions); rendering
is `convcalc.report.summary`'s business.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Optional, Sequence

from ..errors import LayerArgError, ShapeError
from .causes import merge_cause
from .channels import Runs, step
from ..spec.build import build_graph
from ..spec.graph import INPUT, Graph, layer_error
from ..layers.base import Part, Shape
from ..algebra import Field
from ..algebra.field import PathLink
from ..algebra.shapes import prod
from ..spec.load import Spec

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


@dataclass(frozen=True)
class LayerResult:
    """What one layer does, at batch 1."""

    name: str
    type: str
    inputs: tuple[str, ...]
    output_shape: Shape
    params: int
    trainable_params: int
    buffers: int
    macs: int
    rf: Field
    weights: Mapping[str, Shape] = field(default_factory=dict)
    buffer_shapes: Mapping[str, Shape] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()       # a composite layer's primitive parts (Inferred.parts)
    baseline: Part | None = None       # the standard layer a composite replaces (Inferred.baseline)
    tied_to: str | None = None         # 'tie:': the layer whose parameters it uses (its own params, keys: none)
    # where the output's channels do not share one field (after a Concat of unequal branches): consecutive channel
    # ranges with their own field (`convcalc.analysis.channels`); ``rf`` is the hull over them. None: one field.
    channel_fields: Optional[Runs] = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, type: str, inputs: tuple[str, ...], output_shape: Shape, params: int,
           trainable_params: int, buffers: int, macs: int, rf: Field, weights: Mapping[str, Shape],
           buffer_shapes: Mapping[str, Shape], groups: tuple[str, ...], parts: tuple[Part, ...],
           baseline: Part | None, tied_to: str | None, channel_fields: Optional[Runs]) -> "LayerResult":
        """``LayerResult(...)`` with every field given, without the frozen dataclass's ``__init__`` (one
        ``object.__setattr__`` per field: most of the cost of a row, made once per layer of every analysis)."""
        row = object.__new__(cls)
        fields = row.__dict__
        fields["name"] = name
        fields["type"] = type
        fields["inputs"] = inputs
        fields["output_shape"] = output_shape
        fields["params"] = params
        fields["trainable_params"] = trainable_params
        fields["buffers"] = buffers
        fields["macs"] = macs
        fields["rf"] = rf
        fields["weights"] = weights
        fields["buffer_shapes"] = buffer_shapes
        fields["groups"] = groups
        fields["parts"] = parts
        fields["baseline"] = baseline
        fields["tied_to"] = tied_to
        fields["channel_fields"] = channel_fields
        return row

    @property
    def flops(self) -> int:
        """2 per multiply-accumulate (torch.utils.flop_counter's convention)."""
        return 2 * self.macs

    @property
    def activations(self) -> int:
        """Elements in this layer's output."""
        return prod(self.output_shape)

    @property
    def max_path_prev(self) -> Optional[str]:
        """The layer before this one on the path with the largest field (None: the path starts at the network
        input). That layer's own ``max_path`` continued by this layer is this layer's: the paths are linked
        lists whose every link is the layer's own (see `Field.named`), so following these names rebuilds a
        path in O(its length)."""
        return previous_on_path(self.rf.max_link)

    @property
    def min_path_prev(self) -> Optional[str]:
        """The layer before this one on the path with the smallest field (see `max_path_prev`)."""
        return previous_on_path(self.rf.min_link)


def previous_on_path(link: PathLink) -> Optional[str]:
    """The name before the last one on a path link (None: the path has at most one layer)."""
    return link[1][0] if link is not None and link[1] is not None else None


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    buffers: int
    macs: int
    activations: int            # Σ elements of every layer's output
    peak_activations: int       # most elements alive at once when layers run in order and free what no later one needs
    dtype_bytes: int = 4

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        return self.activations * self.dtype_bytes

    @property
    def peak_activation_bytes(self) -> int:
        return self.peak_activations * self.dtype_bytes

    @property
    def param_bytes(self) -> int:
        return (self.params + self.buffers) * self.dtype_bytes


@dataclass(frozen=True)
class Summary:
    name: str
    input_shape: Shape
    output: str
    layers: tuple[LayerResult, ...]
    totals: Totals
    graph: Graph
    dtype: str = "float32"

    @property
    def output_shape(self) -> Shape:
        return self.layer(self.output).output_shape

    def layer(self, name: str) -> LayerResult:
        """The layer named ``name`` (KeyError if none), in O(1): callers ask for every layer."""
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, LayerResult]:
        return {row.name: row for row in self.layers}


def _peak(graph: Graph, sizes: Mapping[str, int]) -> int:
    """Peak elements of layer outputs alive at once when nodes run in order and each output is freed after its
    last use (the network input, which the caller holds, is not counted, as in the total). One pass with a
    running total: each output is added once and removed once (at its last use, or at once if nothing uses it)."""
    last_use: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            last_use[name] = index
    last_use[graph.output] = len(graph.nodes)
    freed_after: dict[int, list[str]] = {}
    for name, index in last_use.items():
        if name != INPUT:
            freed_after.setdefault(index, []).append(name)
    live = peak = 0
    for index, node in enumerate(graph.nodes):
        live += sizes[node.name]
        peak = max(peak, live)
        if node.name not in last_use:
            live -= sizes[node.name]
        for name in freed_after.get(index, ()):
            live -= sizes[name]
    return peak


def _check_tie(node, inferred, owner: LayerResult) -> None:
    """A tied layer's parameters and buffers must be its owner's, name for name and shape for shape."""
    ours, theirs = {**inferred.params, **inferred.buffers}, {**owner.weights, **owner.buffer_shapes}
    if not theirs:
        problem = f"'{owner.name}' has no parameters to share"
    elif ours != theirs:
        text = lambda shapes: ", ".join(f"{k or '(tensor)'} {list(v)}" for k, v in shapes.items()) or "none"  # noqa: E731
        problem = (f"its parameters must be those of '{owner.name}' ({owner.type}), name for name and shape for"
                   f" shape: {text(theirs)} there, {text(ours)} here")
    else:
        return
    raise ShapeError(f"layer '{node.name}' ({node.type_name}): tie: {problem}", node.where("tie"), node.trace)


def analyze(source: Spec | Graph, input_shape: Sequence[int] | None = None, *, dtype: str = "float32") -> Summary:
    """Shapes, parameters, MACs, memory and receptive fields of every layer, as PyTorch would have them.

    The cycle collector is paused meanwhile (as it was): the analysis makes many small objects that all stay
    alive (fields, rows), which it would scan again and again for nothing, 30-45 % of a 10,000-layer spec's time;
    what the analysis allocates is bounded by the budgets (`algebra.limits`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _analyze(source, input_shape, dtype)
    finally:
        if enabled:
            gc.enable()


def _analyze(source: Spec | Graph, input_shape: Sequence[int] | None, dtype: str) -> Summary:
    graph = build_graph(source, input_shape=input_shape) if isinstance(source, Spec) else source
    in_shape = tuple(input_shape) if input_shape is not None else graph.input_shape
    graph = graph.at_input(in_shape)     # sizes read from the input's shape ({like: input}): built again for this one
    if dtype not in DTYPE_BYTES:
        raise ShapeError(f"unknown dtype '{dtype}'; valid: {', '.join(DTYPE_BYTES)}")
    shapes: dict[str, Shape] = {INPUT: in_shape}
    fields: dict[str, Field] = {INPUT: Field.identity(len(in_shape) - 1, in_shape[1:])}
    runs: dict[str, Optional[Runs]] = {INPUT: None}
    rows = []
    for node in graph.nodes:
        in_shapes = [shapes[name] for name in node.inputs]
        try:
            inferred = node.layer.infer(in_shapes)
            rf, own_runs = step(node.layer, node.name, [fields[name].unflagged() for name in node.inputs],
                                [runs[name] for name in node.inputs], in_shapes, inferred.out_shape)
        except LayerArgError as exc:
            message, dropped = merge_cause(graph, node, shapes, exc)    # a merge's inputs named, and what broke it
            error = layer_error(node.name, node.type_name, LayerArgError(message, exc.arg), node.where(exc.arg),
                                node.trace, ShapeError)
            error.dropped, error.merge = dropped, node.name    # lint reports the layers that dropped pixels (CC201)
            raise error from None
        shapes[node.name] = inferred.out_shape
        fields[node.name] = rf
        runs[node.name] = own_runs
        weights, buffers = dict(inferred.params), dict(inferred.buffers)
        if node.tie is not None:       # counted once, under its owner (torch's parameters() of a module used twice)
            _check_tie(node, inferred, next(row for row in rows if row.name == node.tie))
            weights, buffers = {}, {}
        params = sum(prod(shape) for shape in weights.values()) if weights else 0
        rows.append(LayerResult.of(
            node.name, node.type_name, node.inputs, inferred.out_shape, params, params if node.trainable else 0,
            sum(prod(shape) for shape in buffers.values()) if buffers else 0, inferred.macs, rf, weights, buffers,
            node.groups, inferred.parts, inferred.baseline, node.tie, own_runs))
    sizes = {name: prod(shape) for name, shape in shapes.items()}
    totals = Totals(
        params=sum(r.params for r in rows),
        trainable_params=sum(r.trainable_params for r in rows),
        buffers=sum(r.buffers for r in rows),
        macs=sum(r.macs for r in rows),
        activations=sum(r.activations for r in rows),
        peak_activations=_peak(graph, sizes),
        dtype_bytes=DTYPE_BYTES[dtype],
    )
    return Summary(graph.name, in_shape, graph.output, tuple(rows), totals, graph, dtype)
