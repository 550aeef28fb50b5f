"""Shapes read while the graph is built: a block's input shape, another layer's size, ``{like: NAME}``.

The graph builder knows the network's input shape, so it can infer the shape of every node it has built so far,
on demand (`BuildShapes`). Expressions read them through names and one function:

* ``in_shape`` (``[C, H, W]``, channels first, no batch) and ``in_channels`` (``in_shape[0]``): the shape of the
  block's input (at the top level and in top-level ``args``: the network's input). A block argument, or a top-level
  arg, of the same name wins (`ScopeNames`).
* ``shape('NAME')``: the output shape of any earlier layer, named as ``from`` names it (``shape('input')`` too).
* ``{like: NAME}`` as the value of a layer's or block's argument: NAME's spatial size (its shape without the
  channels), e.g. Upsample's ``size: {like: input}`` (`resolve_likes`).

A graph whose structure or arguments read a shape depends on the input size: `convcalc.spec.build.build_graph`
then gives it a ``rebuild``, and `Graph.at_input` builds it again for another input size (``--input-size``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from ..errors import GraphError, LayerArgError, Location, ShapeError, SpecError, brief
from .graph import INPUT, Node, layer_error

Resolver = Callable[[Any, "Location | None", str], str]     # a scope's resolve(ref, loc, what) -> full name
SHAPE_NAMES = ("in_shape", "in_channels")
LIKE = "like"


class BuildShapes:
    """The output shapes of the nodes built so far (``nodes``, the builder's list), inferred when first asked."""

    def __init__(self, input_shape: tuple[int, ...], nodes: list[Node]):
        self.input_shape = tuple(input_shape)
        self.nodes = nodes
        self.known: dict[str, tuple[int, ...]] = {INPUT: self.input_shape}
        self.done = 0           # nodes[:done] have their shapes in `known`
        self.used = False       # whether the graph read a shape (it then depends on the input size)

    def of(self, full_name: str) -> tuple[int, ...]:
        """The output shape of the built node ``full_name`` (or of ``input``)."""
        self.used = True
        while full_name not in self.known and self.done < len(self.nodes):
            node = self.nodes[self.done]
            try:
                inferred = node.layer.infer([self.known[name] for name in node.inputs])
            except LayerArgError as exc:
                raise layer_error(node.name, node.type_name, exc, node.where(exc.arg), node.trace, ShapeError) \
                    from None
            self.known[node.name] = tuple(inferred.out_shape)
            self.done += 1
        if full_name not in self.known:
            raise SpecError(f"the shape of '{full_name}' is not known while the spec is built")
        return self.known[full_name]

    def functions(self, resolve: Resolver, loc: Location | None) -> dict[str, Callable[[list, dict], Any]]:
        """The expression functions that read shapes, resolving names as ``resolve`` (a scope's) does."""
        def shape(args: list, keywords: dict) -> list[int]:
            from .expr_values import ExprError
            if len(args) != 1 or keywords or not isinstance(args[0], (str, int)) or isinstance(args[0], bool):
                raise ExprError("shape() takes one layer name, e.g. shape('input') or shape('layer1.0.conv1')")
            try:
                return list(self.of(resolve(args[0], loc, "shape()")))
            except (SpecError, GraphError) as exc:    # an unknown name: the reference's message, without location
                raise ExprError(exc.message) from None
        return {"shape": shape}


class ScopeNames(Mapping[str, Any]):
    """A scope's variables, with ``in_shape``/``in_channels`` of its input (``input_ref``) read when first used.

    ``variables`` is kept as it is (not copied), so block defaults added to it later are seen. A variable of the same
    name wins, unless it is one of ``outer`` (the top-level args a block sees): a block's input is nearer."""

    def __init__(self, variables: dict[str, Any], shapes: BuildShapes, input_ref: str,
                 outer: frozenset[str] = frozenset()):
        self.variables = variables
        self.shapes = shapes
        self.input_ref = input_ref
        self.outer = outer

    def __contains__(self, name: object) -> bool:
        return name in self.variables or (name in SHAPE_NAMES and bool(self.input_ref))

    def __getitem__(self, name: str) -> Any:
        if name in SHAPE_NAMES and self.input_ref and (name not in self.variables or name in self.outer):
            shape = list(self.shapes.of(self.input_ref))
            return shape if name == "in_shape" else shape[0]
        if name in self.variables:
            return self.variables[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:      # the spec's own names (an unknown name's message lists these)
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)


def is_like(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and LIKE in value


def resolve_likes(args: dict, shapes: BuildShapes, resolve: Resolver,
                  where: Callable[[str], Location | None]) -> dict:
    """``args`` with every ``{like: NAME}`` value replaced by NAME's spatial size (its output shape without the
    channels, as a list)."""
    for value in args.values():                 # (most layers: no mapping among their values, nothing to do)
        if isinstance(value, dict) and len(value) == 1 and LIKE in value:
            break
    else:
        return args
    resolved = dict(args)
    for key, value in args.items():
        if is_like(value):
            target = resolve(value[LIKE], where(key), f"'{key}: {{like: ...}}'")
            shape = shapes.of(target)
            if len(shape) < 2:
                raise SpecError(f"'{key}: {{like: {value[LIKE]}}}': '{value[LIKE]}' has no spatial size"
                                f" (its shape is {list(shape)})", where(key))
            resolved[key] = list(shape[1:])
    return resolved


__all__ = ["BuildShapes", "LIKE", "SHAPE_NAMES", "ScopeNames", "is_like", "resolve_likes"]
