"""What every rule sees: one analyzed spec (`Context`), and the phrases findings share."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

from ..analysis.summary import LayerResult, Summary
from ..errors import Location
from ..spec.graph import INPUT, Node
from ..layers.base import Shape, WindowAxis
from ..algebra import Field
from ..algebra.numbers import fraction_text
from ..spec.load import Spec
from .model import Finding
from .rules import RULES_BY_ID


@dataclass
class Context:
    """One analyzed spec, with the lookups every check needs."""

    path: str
    spec: Spec
    summary: Summary
    rf_min_coverage: float = 1.0
    nodes: dict[str, Node] = field(default_factory=dict)
    shapes: dict[str, Shape] = field(default_factory=dict)
    fields: dict[str, Field] = field(default_factory=dict)
    consumers: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, LayerResult] = field(default_factory=dict)
    _windows: dict[str, tuple[WindowAxis, ...] | None] = field(default_factory=dict)
    memo: dict[str, object] = field(default_factory=dict)   # what several rules ask for, worked out once (per spec)

    def __post_init__(self) -> None:
        graph = self.summary.graph
        self.nodes = {node.name: node for node in graph.nodes}
        self.shapes = {INPUT: tuple(self.summary.input_shape)}
        self.fields = {INPUT: Field.identity(len(self.summary.input_shape) - 1)}
        for row in self.summary.layers:
            self.shapes[row.name] = tuple(row.output_shape)
            self.fields[row.name] = row.rf
            self.rows[row.name] = row
        self.consumers = {name: [] for name in self.shapes}
        for node in graph.nodes:
            for name in node.inputs:
                self.consumers[name].append(node.name)

    def in_shapes(self, node: Node) -> list[Shape]:
        return [self.shapes[name] for name in node.inputs]

    def window(self, node: Node) -> tuple[WindowAxis, ...] | None:
        """The node's `Layer.window_geometry` (asked once)."""
        if node.name not in self._windows:
            self._windows[node.name] = node.layer.window_geometry(self.in_shapes(node), self.shapes[node.name])
        return self._windows[node.name]

    def finding(self, rule: str, message: str, node: Node | None = None, where: Location | None = None) -> Finding:
        loc = where if where is not None else (node.location if node is not None else None)
        path = loc.file if loc is not None else self.path
        return Finding(path=path, line=loc.line if loc else 0, column=loc.column if loc else 0, rule=rule,
                       severity=RULES_BY_ID[rule].severity, message=message,
                       layer=node.name if node is not None else None)


def layer_label(node: Node) -> str:
    return f"layer '{node.name}' ({node.type_name})"


def number(value: Fraction | int | float) -> str:
    """A value as written: an exact receptive-field number as every table writes it (`fraction_text`: 3, 147/2,
    -1/2), a count with thousands separators (25,557,032), a float from the spec as given (4.2e+09)."""
    if isinstance(value, Fraction):
        return fraction_text(value)
    if isinstance(value, float) and value == int(value):
        return f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
AXIS_UNITS = {1: (("position", "positions"),), 2: (("row", "rows"), ("column", "columns")),
              3: (("plane", "planes"), ("row", "rows"), ("column", "columns"))}


def axis_name(dims: int, axis: int) -> str:
    return AXIS_NAMES.get(dims, tuple(f"axis {a}" for a in range(dims)))[axis]


def grouped(dims: int, items: Sequence[tuple[int, str]]) -> str:
    """'height and width: <text>' for equal texts, else '<axis>: <text>; ...' (one axis: the text alone)."""
    if dims == 1:
        return items[0][1]
    texts: dict[str, list[int]] = {}
    for axis, text in items:
        texts.setdefault(text, []).append(axis)
    parts = []
    for text, axes in texts.items():
        names = [axis_name(dims, a) for a in axes]
        label = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"{label}: {text}")
    return "; ".join(parts)
