"""CC301 (and CC103's rf_min): the receptive field that describes the network's output, and its coverage.

When the output sees the whole input (a classifier: global pooling, Flatten, Linear), the field that matters is
the one of the feature map the classifier gathers. Gates are not that gather: a squeeze-and-excitation block pools
its map globally and multiplies the result back into it (EfficientNet, MobileNetV3, RegNetY), which makes every
later field whole for the analyzer (every unit does depend on the whole input through the gate's scale), but the
spatial detail each unit sees is still its window's. `classifier_fields` folds the fields again with every such
gate left out of its merge: a merge's input whose field is whole and whose spatial extent is 1 on every axis,
broadcast over inputs that are not whole.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterator, Optional

from ..algebra import Field
from ..analysis.coverage import coverage
from ..algebra.numbers import percent_text
from ..spec.graph import INPUT, Node
from .context import Context
from .model import Finding


MEASURE = {1: "length", 2: "area", 3: "volume"}     # what the coverage is a share of


def _gates(ctx: Context, node: Node, fields: dict[str, Field]) -> list[int]:
    """The indices of ``node``'s inputs that are broadcast gates (whole ``fields`` of spatial extent 1 beside
    inputs that are not whole), or [] when it is no gated merge."""
    if len(node.inputs) < 2:
        return []
    shapes = ctx.in_shapes(node)
    gates = [i for i, (name, shape) in enumerate(zip(node.inputs, shapes))
             if fields[name].whole and len(shape) > 1 and all(n == 1 for n in shape[1:])]
    if not gates or any(fields[name].whole for i, name in enumerate(node.inputs) if i not in gates):
        return []
    return gates


def classifier_fields(ctx: Context) -> tuple[dict[str, Field], list[str]]:
    """Every layer's field with the gates left out of their merges (the analyzer's fields where no gate lies
    before), and the gated merges, in graph order."""
    if not any(_gates(ctx, node, ctx.fields) for node in ctx.summary.graph.nodes):
        return ctx.fields, []
    fields: dict[str, Field] = {INPUT: ctx.fields[INPUT]}
    changed: set[str] = set()
    gated: list[str] = []
    for node in ctx.summary.graph.nodes:
        gates = _gates(ctx, node, fields)
        if not gates and not any(name in changed for name in node.inputs):
            fields[node.name] = ctx.fields[node.name]
            continue
        keep = [i for i in range(len(node.inputs)) if i not in gates]
        shapes = ctx.in_shapes(node)
        try:
            field = node.layer.field_of([fields[node.inputs[i]].unflagged() for i in keep], [shapes[i] for i in keep],
                                        ctx.shapes[node.name]).named(node.name)
        except Exception:          # a layer that cannot take fewer inputs: its field as analyzed
            field = ctx.fields[node.name]
        if gates:
            gated.append(node.name)
        fields[node.name] = field
        changed.add(node.name)
    return fields, gated


def output_field(ctx: Context) -> tuple[str, Optional[str], Field, list[str]] | None:
    """(layer, gathering layer or None, field, gated merges left out) whose receptive field describes the output:
    the output's own, or, when the output sees the whole input (global pooling, Flatten, Linear), the widest field
    that the classifier gathers, squeeze-and-excitation gates left out (`classifier_fields`)."""
    graph = ctx.summary.graph
    fields, gated = classifier_fields(ctx)
    field_ = fields[graph.output]
    if not field_.whole:
        return graph.output, None, field_, gated
    lengths = ctx.summary.input_shape[1:]
    best: tuple[str, Optional[str], Field, list[str]] | None = None
    seen, pending = set(), [graph.output]
    while pending:
        name = pending.pop()
        if name in seen or name == INPUT:
            continue
        seen.add(name)
        for source in ctx.nodes[name].inputs:
            candidate = fields[source]
            if candidate.whole:
                pending.append(source)
            elif source != INPUT and len(candidate.axes) == len(lengths) and (
                    best is None or coverage(candidate, lengths) > coverage(best[2], lengths)):
                best = (source, name, candidate, gated)
    return best


def check_rf_coverage(ctx: Context) -> Iterator[Finding]:
    found = output_field(ctx)
    spatial = ctx.summary.input_shape[1:]
    if found is None or len(found[2].axes) != len(spatial) or not spatial:
        return
    name, gatherer, field_, gated = found
    share = coverage(field_, spatial)
    if share >= Fraction(ctx.rf_min_coverage).limit_denominator(10 ** 6):
        return
    sizes = "x".join(str(axis.size) for axis in field_.axes)
    where = f"'{name}'" + (f" (gathered by '{gatherer}')" if gatherer else " (the output)")
    gates = ""
    if gated and gatherer:
        gates = (f"; the global pools multiplied back into the map by {len(gated)} gate"
                 f"{'s' if len(gated) > 1 else ''} (squeeze-and-excitation, first '{gated[0]}') are not the"
                 " classifier's and are left out")
    yield ctx.finding("CC301", f"the receptive field of {where} is {sizes}, covering {percent_text(share)} of the"
                      f" {'x'.join(map(str, spatial))} input's {MEASURE.get(len(spatial), 'size')}{gates}",
                      ctx.nodes[name])


__all__ = ["check_rf_coverage", "classifier_fields", "output_field"]
