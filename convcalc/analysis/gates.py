"""The receptive field that describes a network's output, squeeze-and-excitation gates left out.

When the output sees the whole input (a classifier: global pooling, Flatten, Linear), the field that matters is
the one of the feature map the classifier gathers. Gates are not that gather: a squeeze-and-excitation block pools
its map globally and multiplies the result back into it (EfficientNet, MobileNetV3, RegNetY), which makes every
later field whole for the analyzer (every unit does depend on the whole input through the gate's scale), but the
spatial detail each unit sees is still its window's. `classifier_fields` folds the fields again with every such
gate left out of its merge: a merge's input whose field is whole and whose spatial extent is 1 on every axis,
broadcast over inputs that are not whole. One rule for `convcalc rf`'s default layer, the zoo's RF column and
lint's CC301.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple, Optional, Sequence

from ..algebra import Field
from ..spec.graph import INPUT, Node
from .channels import Runs, step
from .coverage import coverage
from .summary import Summary

Shape = tuple[int, ...]


class OutputField(NamedTuple):
    """The layer whose field describes the output, the layer gathering it (None: the output itself), its field,
    and the gated merges left out (graph order)."""

    layer: str
    gatherer: Optional[str]
    field: Field
    gated: list[str]


def _shapes(summary: Summary) -> dict[str, Shape]:
    shapes = {INPUT: tuple(summary.input_shape)}
    shapes.update((row.name, tuple(row.output_shape)) for row in summary.layers)
    return shapes


def gate_inputs(node: Node, fields: dict[str, Field], shapes: Sequence[Shape]) -> list[int]:
    """The indices of ``node``'s inputs that are broadcast gates (whole ``fields`` of spatial extent 1 beside
    inputs that are not whole), or [] when it is no gated merge."""
    if len(node.inputs) < 2:
        return []
    gates = [i for i, (name, shape) in enumerate(zip(node.inputs, shapes))
             if fields[name].whole and len(shape) > 1 and all(n == 1 for n in shape[1:])]
    if not gates or any(fields[name].whole for i, name in enumerate(node.inputs) if i not in gates):
        return []
    return gates


def classifier_fields(summary: Summary) -> tuple[dict[str, Field], list[str]]:
    """Every layer's field with the gates left out of their merges (the analyzer's fields where no gate lies
    before), and the gated merges, in graph order."""
    shapes = _shapes(summary)
    analyzed: dict[str, Field] = {INPUT: Field.identity(len(summary.input_shape) - 1)}
    analyzed.update((row.name, row.rf) for row in summary.layers)
    nodes = summary.graph.nodes
    if not any(gate_inputs(node, analyzed, [shapes[n] for n in node.inputs]) for node in nodes):
        return analyzed, []
    fields: dict[str, Field] = {INPUT: analyzed[INPUT]}
    runs: dict[str, Optional[Runs]] = {INPUT: None}
    runs.update((row.name, row.channel_fields) for row in summary.layers)
    changed: set[str] = set()
    gated: list[str] = []
    for node in nodes:
        in_shapes = [shapes[name] for name in node.inputs]
        gates = gate_inputs(node, fields, in_shapes)
        if not gates and not any(name in changed for name in node.inputs):
            fields[node.name] = analyzed[node.name]
            continue
        keep = [i for i in range(len(node.inputs)) if i not in gates]
        try:                       # the analysis's step (`channels.step`), the gates' inputs left out
            field, runs[node.name] = step(node.layer, node.name, [fields[node.inputs[i]].unflagged() for i in keep],
                                          [runs[node.inputs[i]] for i in keep], [in_shapes[i] for i in keep],
                                          shapes[node.name])
        except Exception:          # a layer that cannot take fewer inputs: its field as analyzed
            field = analyzed[node.name]
        if gates:
            gated.append(node.name)
        fields[node.name] = field
        changed.add(node.name)
    return fields, gated


def _width(field: Field, lengths: Sequence[int]) -> tuple[Fraction, Fraction]:
    """The coverage, then (where fields cover the whole input alike) the region's area beyond it."""
    area = Fraction(1)
    for axis in field.axes:
        area *= axis.size
    return coverage(field, lengths), area


def output_field(summary: Summary) -> Optional[OutputField]:
    """The field that describes the output: the output's own, or, when the output sees the whole input (global
    pooling, Flatten, Linear), the widest field that the classifier gathers, squeeze-and-excitation gates left out
    (`classifier_fields`); None when no layer has one."""
    graph = summary.graph
    fields, gated = classifier_fields(summary)
    field_ = fields[graph.output]
    if not field_.whole:
        return OutputField(graph.output, None, field_, gated)
    nodes = {node.name: node for node in graph.nodes}
    lengths = summary.input_shape[1:]
    best: Optional[OutputField] = None
    seen, pending = set(), [graph.output]
    while pending:
        name = pending.pop()
        if name in seen or name == INPUT:
            continue
        seen.add(name)
        for source in nodes[name].inputs:
            candidate = fields[source]
            if candidate.whole:
                pending.append(source)
            elif source != INPUT and len(candidate.axes) == len(lengths) and (
                    best is None or _width(candidate, lengths) > _width(best.field, lengths)):
                best = OutputField(source, name, candidate, gated)
    return best


__all__ = ["OutputField", "classifier_fields", "gate_inputs", "output_field"]
