"""A scope of the graph builder: one block instance, Sequential or the top level, with its names and variables.

`Scope.resolve` turns a reference (``input``, a local name, a hierarchical name relative to the scope or from the
top, a part of a split) into the full name of the node it means; the builder (`convcalc.spec.build`) makes one
scope per block instance it expands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import Location, SpecError, brief
from .graph import INPUT, Shadow
from .parts import part_reference, whole_output


@dataclass
class Scope:
    prefix: str                              # "layer1.0." or ""
    input_ref: str                           # full node name (or INPUT) feeding this scope
    variables: Mapping[str, Any]
    sequential: bool
    trace: tuple[str, ...]
    group: str | None
    trainable: bool
    names: dict[str, str] = field(default_factory=dict)      # local name -> full node name it resolves to
    name_locs: dict[str, Location | None] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    positions: list[int] = field(default_factory=lambda: [0])  # next Sequential index; shared with inline blocks
    known_nodes: Mapping[str, Any] = field(default_factory=dict)   # every node built so far (by full name)
    shadows: list[Shadow] | None = None     # where references resolve past a same-named outer layer (lint)

    def take_position(self) -> int:
        position = self.positions[0]
        self.positions[0] += 1
        return position

    def resolve(self, ref: Any, loc: Location | None, what: str = "'from'") -> str:
        """A reference: 'input', a name in this block, or the hierarchical name of any earlier layer, relative to
        this block (``down3.conv2``) or from the top (``layer2.0.conv1``)."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            ref = str(ref)   # Sequential children are named 0, 1, ...
        if not isinstance(ref, str):
            raise SpecError(f"{what} must name an earlier layer, got {brief(ref)}", loc, self.trace)
        if ref == INPUT:
            return self.input_ref
        if ref in self.names:
            return self._noting(ref, self.names[ref], loc, what)
        for candidate in (self.prefix + ref, ref):
            if candidate in self.known_nodes:
                return self._noting(ref, self.known_nodes[candidate], loc, what)
        return part_reference(self, ref, loc, what)     # NAME.K: a part of a Chunk or Split (spec.parts), else an error


    def _noting(self, ref: str, chosen: str, loc: Location | None, what: str) -> str:
        """``chosen``, the layer ``ref`` resolves to; noted when a top-level layer of that very name is another."""
        other = self.known_nodes.get(ref)
        if self.shadows is not None and self.prefix and other is not None and other != chosen:
            self.shadows.append(Shadow(ref, chosen, other, loc, what))
        return whole_output(self, ref, chosen, loc, what)         # not a layer of several outputs (spec.parts)


__all__ = ["Scope"]
