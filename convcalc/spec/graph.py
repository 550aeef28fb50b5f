"""The graph a spec builds: named primitive layers in topological order, and the groups they sit in.

Owns `Graph` (its nodes, output, groups and where references resolved past a same-named layer, ``Shadow``),
`Node` (one primitive layer, fully named, with its resolved inputs), `Group` (a block instance, repeat group or
Sequential), `layer_error` (a unit's `LayerArgError` as a located error naming the layer) and the constants of the
format (``INPUT``, ``RESERVED_KEYS``, ``SEQUENTIAL``, ``MAX_REPEAT``, ``MAX_LAYERS``). Every node refers only to
nodes listed before it, so the node list is in topological order by construction. The builder that makes a Graph
from a Spec is `convcalc.spec.build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..errors import LayerArgError, Location, SpecError
from ..layers import Layer
from . import limits

INPUT = "input"
RESERVED_KEYS = ("type", "name", "from", "when", "repeat", "first", "trainable", "layers", "inline", "init", "tie",
                 "names")
SEQUENTIAL = "sequential"
MAX_REPEAT = limits.MAX_REPEAT    # the defaults; the builder reads `convcalc.spec.limits` when it checks
MAX_LAYERS = limits.MAX_LAYERS    # after expansion: nested repeats multiply, and a spec must not hang CI


@dataclass(frozen=True)
class Node:
    """One primitive layer, fully named, with its resolved inputs."""

    name: str
    type_name: str
    layer: Layer
    inputs: tuple[str, ...]
    groups: tuple[str, ...] = ()           # enclosing groups, outermost first
    location: Location | None = None
    arg_locations: Mapping[str, Location] = field(default_factory=dict)
    trace: tuple[str, ...] = ()            # "in block 'X' used at file:line:col", innermost first
    trainable: bool = True
    preset: Mapping[str, Any] = field(default_factory=dict)            # hand-set parameters ('init:')
    preset_locations: Mapping[str, Location] = field(default_factory=dict)
    tie: str | None = None                 # 'tie:': the layer whose parameters and buffers this one uses (its owner)

    def where(self, arg: str | None) -> Location | None:
        return self.arg_locations.get(arg, self.location) if arg else self.location

    @classmethod
    def of(cls, name: str, type_name: str, layer: Layer, inputs: tuple[str, ...], groups: tuple[str, ...],
           location: Location | None, arg_locations: Mapping[str, Location], trace: tuple[str, ...],
           trainable: bool, preset: Mapping[str, Any], preset_locations: Mapping[str, Location],
           tie: str | None) -> "Node":
        """``Node(...)`` with every field given, without the frozen dataclass's ``__init__`` (one
        ``object.__setattr__`` per field: a third of the cost of a node, made once per layer of every spec)."""
        node = object.__new__(cls)
        fields = node.__dict__
        fields["name"] = name
        fields["type_name"] = type_name
        fields["layer"] = layer
        fields["inputs"] = inputs
        fields["groups"] = groups
        fields["location"] = location
        fields["arg_locations"] = arg_locations
        fields["trace"] = trace
        fields["trainable"] = trainable
        fields["preset"] = preset
        fields["preset_locations"] = preset_locations
        fields["tie"] = tie
        return node


@dataclass(frozen=True)
class Group:
    """A block instance, a repeat group or a Sequential: the unit that ``--depth`` collapses."""

    name: str
    label: str
    parent: str | None
    output: str
    depth: int


@dataclass(frozen=True)
class Graph:
    name: str
    input_shape: tuple[int, ...]
    nodes: tuple[Node, ...]
    output: str
    groups: Mapping[str, Group] = field(default_factory=dict)
    file: str = "<spec>"
    shadows: tuple["Shadow", ...] = ()     # references that resolve past a same-named top-level layer
    arg_shadows: tuple["ArgShadow", ...] = ()   # block defaults used where a top-level arg has the same name
    # sizes read from shapes while building (`convcalc.spec.shapes`): builds the graph again for another input shape
    rebuild: Callable[[tuple[int, ...]], "Graph"] | None = field(default=None, compare=False, repr=False)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def at_input(self, input_shape: Sequence[int]) -> "Graph":
        """This graph for ``input_shape``: itself, unless its sizes were read from its input's shape; then built
        again for ``input_shape`` (a part of a graph, as `convcalc.proof.erf` cuts one, stays that part)."""
        shape = tuple(input_shape)
        if self.rebuild is None or shape == tuple(self.input_shape):
            return self
        graph = self.rebuild(shape)
        if graph.output == self.output and len(graph.nodes) == len(self.nodes):
            return graph
        names = {node.name for node in self.nodes}
        return replace(graph, nodes=tuple(node for node in graph.nodes if node.name in names), output=self.output,
                       groups={name: group for name, group in graph.groups.items() if name in self.groups})

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def ancestors(self, layer: str) -> list[str]:
        """``layer`` and every layer it reads, directly or not, in graph order (``input`` excluded)."""
        inputs = {node.name: node.inputs for node in self.nodes}
        found: set[str] = set()
        pending = [layer]
        while pending:
            name = pending.pop()
            if name == INPUT or name in found:
                continue
            found.add(name)
            pending.extend(inputs[name])
        return [node.name for node in self.nodes if node.name in found]


def layer_error(node_name: str, type_name: str, exc: LayerArgError, where: Location | None,
                trace: tuple[str, ...], kind: type = SpecError):
    """A located error naming the layer, from a unit's `LayerArgError`."""
    return kind(f"layer '{node_name}' ({type_name}): {exc.message}", where, trace)


@dataclass(frozen=True)
class Shadow:
    """A reference in a block that resolves to the block's own layer while a top-level layer has that name."""

    reference: str
    chosen: str          # full name of the layer it means
    other: str           # full name of the top-level layer of the same name
    where: Location | None
    what: str            # "'from'", "'output'", ...


@dataclass(frozen=True)
class ArgShadow:
    """A block argument that took the block's own default where a top-level arg of the same name has another value
    (the block's default wins: `convcalc lint` rule CC209)."""

    block: str
    argument: str
    default: Any         # the value the block used
    top_level: Any       # the top-level arg's value it shadowed
    where: Location | None        # the block's use
    defined: Location | None      # the default, in the block's args


__all__ = [
    "ArgShadow", "INPUT", "MAX_LAYERS", "MAX_REPEAT", "RESERVED_KEYS", "SEQUENTIAL", "Graph", "Group", "Node", "Shadow",
    "layer_error",
]
