"""Layers of several outputs (Chunk, Split) and the references ``NAME.K`` that name their parts.

A unit whose ``splits`` is true (`convcalc.layers.layout.Parts` without ``part``) makes no node: the builder keeps
it as a `Splitter`, its full name, in the references. A later reference ``NAME.K`` to it (``from: split.1``, and
``output:``) makes the node ``NAME.K`` (once; the same layer with ``part: K``, reading the splitter's input), placed
in the node list where it is first named, so the list stays in topological order; parts nothing names are never
made. Naming the splitter itself, or reading it implicitly (the next layer without ``from``), is an error that lists
its parts, and so is a part past the number it can have (``split.5`` of a 2-way split), a ``repeat`` on it (its
copies would be named ``NAME.0``, ``NAME.1``, ... as its parts are), and another layer named like one of its parts.
The analyzer and the executor see only ordinary one-output nodes. Owns `Splitter` and `PartNames` (the builder's
book of splitters); `convcalc.spec.build` calls them.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import GraphError, LayerArgError, Location, SpecError, did_you_mean
from ..layers import Layer
from .graph import INPUT, Node


class Splitter(str):
    """The full name of a layer of several outputs, as the builder's references hold it (a ``str``, so that every
    mapping of names keeps working), with what makes the node of one of its parts."""

    layer: Layer
    node: dict

    def __new__(cls, name: str, layer: Layer, node: dict) -> "Splitter":
        made = super().__new__(cls, name)
        made.layer, made.node = layer, node
        return made

    def listing(self) -> str:
        """'split.0 to split.1' (or 'split.0, split.1, ...' when the count depends on the input's shape)."""
        bound = self.layer.known_parts()
        if bound is None:
            return f"{self}.0, {self}.1, ..."
        return f"{self}.0" if bound == 1 else f"{self}.0 to {self}.{bound - 1}"


def _splitter(known: Mapping[str, Any], name: Any) -> Splitter | None:
    found = known.get(name) if isinstance(name, str) else None
    return found if isinstance(found, Splitter) else None


def several_outputs(splitter: Splitter, said: str, loc: Location | None, trace: tuple[str, ...]) -> GraphError:
    """``said`` (e.g. "'from' refers to 'split'"), then what the splitter is and its parts."""
    return GraphError(f"{said}, a {splitter.layer.type_name} with several outputs; name one of its parts:"
                      f" {splitter.listing()}", loc, trace)


def whole_output(scope: Any, ref: str, chosen: str, loc: Location | None, what: str) -> str:
    """``chosen`` (what ``ref`` resolved to), unless it is a splitter, whose parts must be named."""
    splitter = _splitter(scope.known_nodes, chosen)
    if splitter is not None:
        raise several_outputs(splitter, f"{what} refers to '{ref}'", loc, scope.trace)
    return chosen


def part_reference(scope: Any, ref: str, loc: Location | None, what: str) -> str:
    """A reference the scope does not know: ``NAME.K``, part K of the splitter NAME (its node made if need be);
    anything else is an error naming the layers the scope knows."""
    head, _, tail = ref.rpartition(".")
    found = None
    if head and tail.isdigit():
        for candidate in (head in scope.names and scope.names[head], scope.prefix + head, head):
            if candidate and candidate in scope.known_nodes:
                found = scope.known_nodes[candidate]
                break
    splitter = _splitter(scope.known_nodes, found)
    if splitter is not None:
        return splitter.node["book"].make(splitter, int(tail), ref, loc, scope.trace, what)
    where = f"in this {'block' if scope.prefix else 'spec'}"
    if found is not None:
        raise GraphError(f"{what} refers to '{ref}', which is not a layer defined before this one {where}: '{head}' is"
                         f" not a Chunk or Split (whose parts are named NAME.K) and has no copy or child '{tail}'",
                         loc, scope.trace)
    raise GraphError(f"{what} refers to '{ref}', which is not a layer defined before this one {where};"
                     f" {did_you_mean(ref, [INPUT, *scope.names])}", loc, scope.trace)


class PartNames:
    """The builder's book of splitters and of the names ``X.K`` claimed, to keep the two apart."""

    def __init__(self, builder: Any):
        self.builder = builder
        self.dotted: set[str] = set()          # X for every full name X.K claimed (repeat copies, explicit names)

    def claimed(self, full: str, loc: Location | None, trace: tuple[str, ...]) -> None:
        """Refuse a layer named like a part of an earlier splitter; note X of a name X.K."""
        head, _, tail = full.rpartition(".")
        if head and tail.isdigit():
            splitter = _splitter(self.builder.references, head)
            if splitter is not None:
                raise GraphError(f"the name '{full}' is taken: it names part {tail} of '{head}'"
                                 f" ({splitter.layer.type_name})", loc, trace)
            self.dotted.add(head)

    def add(self, layer: Layer, name: str, inputs: Sequence[str], groups: tuple[str, ...], loc: Location | None,
            arg_locations: Mapping[str, Location], scope: Any, trainable: bool, copies: int) -> Splitter | None:
        """Check a new layer's inputs (no splitter read whole); a splitter is booked (returned), else None."""
        for source in inputs:
            splitter = _splitter(self.builder.references, source)
            if splitter is not None:
                raise several_outputs(splitter, f"layer '{name}' ({layer.type_name}) reads '{splitter}'",
                                      loc, scope.trace)
        if not getattr(layer, "splits", False):
            return None
        if copies > 1:
            raise SpecError(f"layer '{name}' ({layer.type_name}) cannot repeat: its parts are named {name}.0,"
                            f" {name}.1, ... as repeat copies would be", arg_locations.get("repeat", loc),
                            scope.trace)
        if name in self.dotted:
            raise GraphError(f"layer '{name}' ({layer.type_name}): its parts would be named {name}.0, {name}.1, ...,"
                             f" but a layer named {name}.K exists", loc, scope.trace)
        splitter = Splitter(name, layer, {"inputs": tuple(inputs), "groups": groups, "location": loc,
                                          "arg_locations": arg_locations, "trace": scope.trace,
                                          "trainable": trainable, "book": self})
        self.builder.references[name] = splitter
        return splitter

    def make(self, splitter: Splitter, index: int, ref: str, loc: Location | None, trace: tuple[str, ...],
             what: str) -> str:
        """The node of part ``index`` of ``splitter`` (made the first time it is named)."""
        name = f"{splitter}.{index}"
        if name in self.builder.references:
            return name
        try:
            layer = splitter.layer.with_part(index)
        except LayerArgError as exc:
            raise GraphError(f"{what} refers to '{ref}': layer '{splitter}' ({splitter.layer.type_name}):"
                             f" {exc.message}", loc, trace) from None
        node = splitter.node
        self.builder.full_names[name] = node["location"]
        self.builder.nodes.append(Node(name, splitter.layer.type_name, layer, node["inputs"], node["groups"],
                                       node["location"], node["arg_locations"], node["trace"], node["trainable"]))
        self.builder.references[name] = name
        return name

    def single(self, output: str) -> str:
        """``output`` (the spec's last layer, its output), unless it is a splitter."""
        splitter = _splitter(self.builder.references, output)
        if splitter is not None:
            raise several_outputs(splitter, f"the spec's output is its last layer, '{splitter}'",
                                  splitter.node["location"], ())
        return output


__all__ = ["PartNames", "Splitter", "part_reference", "whole_output"]
