"""Why a merge fails: the inputs by name and shape, and the layers upstream that dropped pixels (lint's CC201).

A U-Net whose pooling drops the last row of an odd-sized map fails only later, at the Concat that joins the
upsampled map to the skip connection. The merge's own words ("needs the other axes equal") point at the symptom;
`merge_cause` names the cause: the sliding-window layers, among the merge's ancestors, whose last input positions
never reach the output. `dropped_positions` is the one formula both this and lint's CC201 use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..errors import LayerArgError
from ..layers.base import Shape, WindowAxis, shape_text
from ..spec.graph import Graph, Node

AXIS_UNITS = {1: (("position", "positions"),), 2: (("row", "rows"), ("column", "columns")),
              3: (("plane", "planes"), ("row", "rows"), ("column", "columns"))}


def dropped_positions(i: int, o: int, window: WindowAxis) -> int:
    """Input positions after the last window: lo + i - ((o-1)*s + k_eff), i.e. (i + lo + hi - k_eff) mod s - hi."""
    return max(0, window.pad_lo + i - ((o - 1) * window.stride + window.k_eff))


@dataclass(frozen=True)
class Dropped:
    """A sliding-window layer whose last input positions never reach its output (per axis: the count lost)."""

    node: Node
    in_shape: Shape
    lost: tuple[tuple[int, int, str], ...]       # (axis, count, "(i + lo + hi - k) mod s = r")

    def lost_text(self) -> str:
        """'the last row and the last column of its 65x65 input'."""
        units = AXIS_UNITS.get(len(self.in_shape) - 1)
        parts = [f"the last {count} {units[axis][count != 1] if units else 'positions'}".replace("the last 1 ",
                                                                                                   "the last ")
                 for axis, count, _ in self.lost]
        return f"{' and '.join(parts)} of its {'x'.join(map(str, self.in_shape[1:]))} input"

    def formulas(self) -> str:
        """'(65 + 0 + 0 - 2) mod 2 = 1' (one per distinct axis)."""
        return "; ".join(dict.fromkeys(formula for _, _, formula in self.lost))

    def phrase(self) -> str:
        """'the last row and the last column of its 65x65 input ((65 + 0 + 0 - 2) mod 2 = 1)'."""
        return f"{self.lost_text()} ({self.formulas()})"


def dropped_by(node: Node, in_shapes: Sequence[Shape], out_shape: Shape) -> Dropped | None:
    """The positions a sliding-window layer drops at the end of each axis, as lint's CC201 counts them (a window
    narrower than its stride subsamples by design and is not counted)."""
    try:
        geometry = node.layer.window_geometry(in_shapes, out_shape)
    except (LayerArgError, ValueError, TypeError):
        return None
    if not geometry or not in_shapes or len(in_shapes[0]) != len(geometry) + 1 or len(out_shape) != len(geometry) + 1:
        return None
    lost = []
    for axis, window in enumerate(geometry):
        i, o = in_shapes[0][axis + 1], out_shape[axis + 1]
        if window.k_eff < window.stride:
            continue
        count = dropped_positions(i, o, window)
        if count:
            lo, hi, k, s = window.pad_lo, window.pad_hi, window.k_eff, window.stride
            lost.append((axis, count, f"({i} + {lo} + {hi} - {k}) mod {s} = {(i + lo + hi - k) % s}"))
    return Dropped(node, tuple(in_shapes[0]), tuple(lost)) if lost else None


def _ancestors(graph: Graph, names: Sequence[str]) -> list[Node]:
    """The layers the named ones read, directly or not, in topological order."""
    by_name = {node.name: node for node in graph.nodes}
    seen: set[str] = set()
    stack = [name for name in names if name in by_name]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(n for n in by_name[name].inputs if n in by_name)
    return [node for node in graph.nodes if node.name in seen]


def merge_cause(graph: Graph, node: Node, shapes: Mapping[str, Shape], exc: LayerArgError) -> tuple[str, list[Dropped]]:
    """A merge's error message with each input named (``'enc' [8, 65, 65], 'up' [8, 64, 64]``), followed by the
    layers upstream that dropped pixels, if any; and those layers. Other errors are returned as they are."""
    message = exc.message
    if len(node.inputs) < 2 or exc.arg != "from" or any(name not in shapes for name in node.inputs):
        return message, []
    listed = ", ".join(shape_text(shapes[name]) for name in node.inputs)
    named = ", ".join(f"'{name}' {shape_text(shapes[name])}" for name in node.inputs)
    message = message.replace(listed, named) if listed in message else f"{message} (inputs: {named})"
    dropped = []
    for upstream in _ancestors(graph, node.inputs):
        if all(name in shapes for name in (*upstream.inputs, upstream.name)):
            found = dropped_by(upstream, [shapes[name] for name in upstream.inputs], shapes[upstream.name])
            if found is not None:
                dropped.append(found)
    if dropped:
        causes = "; ".join(f"layer '{d.node.name}' ({d.node.type_name}) dropped {d.phrase()}" for d in dropped)
        message += f"; the cause: {causes} (lint rule CC201)"
    return message, dropped


__all__ = ["AXIS_UNITS", "Dropped", "dropped_by", "dropped_positions", "merge_cause"]
