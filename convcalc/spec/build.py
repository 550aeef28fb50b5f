"""Spec -> Graph: expand blocks, repeats, Sequential groups and ``when``; resolve names and ``from``.

Every node refers only to nodes listed before it, so the node list is in topological order by
construction (a reference to a later or unknown name is an error), and cycles cannot occur. Owns
``build_graph`` and the builder behind it (its scopes, name resolution and expansion); the graph's data types
are `convcalc.spec.graph`.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any, Mapping, Sequence

from ..errors import GraphError, LayerArgError, Location, SpecError, brief, did_you_mean
from . import limits
from .expr import NOT_PLAIN, ExprError, plain_name, substitute
from ..layers import Layer, lookup
from ..layers.registry import is_registered, type_names
from ..layers.suggest import type_hint
from .marked_yaml import MarkedDict, MarkedList
from .load import REQUIRED_ARG, BlockDef, Spec
from .graph import INPUT, RESERVED_KEYS, SEQUENTIAL, Graph, Group, Node, Shadow, layer_error
from .budget import Expansion, check_overrides
from .parts import PartNames
from .idioms import bypass_target, check_name, copy_names, note_arg_shadow
from .shapes import BuildShapes, ScopeNames, resolve_likes
from .layer_keys import preset_of, tie_of
from .scope import Scope


_PLAIN = (int, float, bool, type(None))      # values `Builder.substitute` returns unchanged at once
_RESERVED = frozenset(RESERVED_KEYS)

class _Builder:
    def __init__(self, spec: Spec, input_shape: tuple[int, ...] | None = None):
        self.spec = spec
        self.nodes: list[Node] = []
        self.shapes = BuildShapes(input_shape or spec.input_shape, self.nodes)   # in_shape, shape(), {like: ...}
        self.arg_shadows: list = []                   # block defaults used where a top-level arg has that name
        self.groups: dict[str, Group] = {}
        self.full_names: dict[str, Location | None] = {}
        self.globals: Mapping[str, Any] = {}          # the spec's top-level args, visible in every block
        self.references: dict[str, str] = {}          # full name of every node and group -> the node it means
        self.active_blocks: dict[str, str] = {}       # blocks being expanded (to name a block that uses itself)
        self.shadows: list[Shadow] = []
        self.budget = Expansion(spec)                 # layer entries and nesting, counted before they are expanded
        self.parts = PartNames(self)                  # layers of several outputs (Chunk, Split) and their parts
        self._paths: dict[str | None, tuple[str, ...]] = {}   # group -> `group_path` (until a group is added)

    # ---------------------------------------------------------------- helpers
    def substitute(self, value: Any, scope: Scope, loc: Location | None, what: str) -> Any:
        kind = type(value)
        if kind is str and "$" not in value or kind in _PLAIN:
            return value     # most values: written as they are (the check below, without its calls)
        if not self.budget.refers(value):
            return value     # nothing to substitute: the same value in every copy, walked once (a large list too)
        if isinstance(value, list):
            self.budget.walk(len(value), loc, scope.trace)
            return [self.substitute(v, scope, loc, what) for v in value]
        if isinstance(value, dict):
            self.budget.walk(len(value), loc, scope.trace)
            return {k: self.substitute(v, scope, loc, what) for k, v in value.items()}
        found = plain_name(value, scope.variables) if isinstance(value, str) else NOT_PLAIN
        if found is not NOT_PLAIN:
            return found     # '$name' (most references): its value, without an evaluator or the shape() function
        try:
            return substitute(value, scope.variables, self.shapes.functions(scope.resolve, loc))
        except ExprError as exc:
            raise SpecError(f"in {what}: {exc}", loc, scope.trace) from None

    def claim(self, full: str, loc: Location | None, scope: Scope) -> None:
        if full in self.full_names:
            first = self.full_names[full]
            where = f" (first at line {first.line})" if first else ""
            raise GraphError(f"duplicate layer name '{full}'{where}", loc, scope.trace)
        self.parts.claimed(full, loc, scope.trace)
        self.full_names[full] = loc

    def add_group(self, name: str, label: str, scope: Scope, output: str) -> None:
        if name in self.full_names and name not in self.groups:
            first = self.full_names[name]
            where = f" (first at line {first.line})" if first else ""
            raise GraphError(f"duplicate layer name '{name}'{where}", None, scope.trace)
        self.full_names.setdefault(name, None)
        self._paths.clear()         # (a group's path is its parents': kept until a group is added)
        depth = self.groups[scope.group].depth + 1 if scope.group else 1
        self.groups[name] = Group(name, label, scope.group, output, depth)

    def finish_group(self, name: str, output: str) -> None:
        """Record a group's output node (what its name means in a reference)."""
        group = self.groups[name]
        self.groups[name] = Group(name, group.label, group.parent, output, group.depth)
        self.references[name] = output

    def group_path(self, scope_group: str | None) -> tuple[str, ...]:
        found = self._paths.get(scope_group)
        if found is None:
            found = self._paths[scope_group] = self._group_path(scope_group)
        return found

    def _group_path(self, scope_group: str | None) -> tuple[str, ...]:
        path = []
        while scope_group:
            path.append(scope_group)
            scope_group = self.groups[scope_group].parent
        return tuple(reversed(path))

    # ---------------------------------------------------------------- expansion
    def expand(self, items: MarkedList, scope: Scope) -> str:
        """Expand a list of layer entries (one more level of nesting); return the full name of the list's output."""
        previous = scope.input_ref
        with self.budget.nested(getattr(items, "loc", None), scope.trace):
            for index, item in enumerate(items):
                where = items.where(index)
                self.budget.add(1, where, scope.trace)
                previous = self.expand_item(item, where, previous, scope)
        return previous

    def expand_item(self, item: Any, loc: Location | None, previous: str, scope: Scope) -> str:
        if not isinstance(item, dict):
            raise SpecError(f"a layer must be a mapping with a 'type', got {brief(item)}", loc, scope.trace)
        item_loc = getattr(item, "loc", None) or loc
        if isinstance(item, MarkedDict):
            where, value_locs = item.where, item.value_locs
            value_where = (lambda key: value_locs.get(key, item_loc))
        else:
            where = value_where = (lambda key: item_loc)
            value_locs = {}
        if "type" not in item:
            raise SpecError("this layer has no 'type'", item_loc, scope.trace)
        type_name = item["type"]
        if type(type_name) is not str or "$" in type_name:    # (a plain name: as `substitute` returns it)
            type_name = self.substitute(type_name, scope, value_where("type"), "'type'")
        type_error = None if isinstance(type_name, str) else SpecError(     # unless `when` bypasses the entry
            f"'type' must be a layer type or block name, got {brief(type_name)}", value_where("type"), scope.trace)

        local = item.get("name")
        if local is not None:
            name_loc = value_locs.get("name", item_loc)
            if type(local) is not str or "$" in local:       # (a plain name: as `substitute` returns it)
                local = self.substitute(local, scope, name_loc, "'name'")
            local = check_name(local, name_loc, scope.trace)
            if local in scope.name_locs:
                first = scope.name_locs[local]
                where_first = f" (first at line {first.line})" if first else ""
                raise GraphError(f"duplicate layer name '{local}'{where_first}", value_where("name"), scope.trace)

        # inputs
        if "from" in item:
            from_loc = value_locs.get("from", item_loc)
            refs = self.substitute(item["from"], scope, from_loc, "'from'")
            refs = refs if isinstance(refs, list) else [refs]
            if not refs:
                raise SpecError("'from' is empty", from_loc, scope.trace)
            inputs = tuple([scope.resolve(r, from_loc) for r in refs])
        else:
            inputs = (previous,)

        # when: a false condition bypasses the entry; references to it get its input
        if "when" in item:
            condition = self.substitute(item["when"], scope, value_where("when"), "'when'")
            if not isinstance(condition, bool):
                raise SpecError(f"'when' must be true or false, got {brief(condition)}", value_where("when"),
                                scope.trace)
            if not condition:
                bypass = bypass_target(inputs, previous, where("when"), scope.trace)   # a merge: the entry before
                if local is not None:
                    scope.names[local] = bypass
                    scope.name_locs[local] = value_where("name")
                return bypass
        if type_error is not None:
            raise type_error

        trainable = scope.trainable
        if "trainable" in item:
            trainable_value = self.substitute(item["trainable"], scope, value_where("trainable"), "'trainable'")
            if not isinstance(trainable_value, bool):
                raise SpecError("'trainable' must be true or false", value_where("trainable"), scope.trace)
            trainable = trainable and trainable_value

        repeat = self.substitute(item["repeat"], scope, value_where("repeat"), "'repeat'") if "repeat" in item \
            else None
        if repeat is not None and (isinstance(repeat, bool) or not isinstance(repeat, int) or
                                   not 1 <= repeat <= limits.MAX_REPEAT):
            raise SpecError(f"'repeat' must be an integer from 1 to {limits.MAX_REPEAT:,}, got {brief(repeat)}",
                            value_where("repeat"), scope.trace)
        first = item.get("first") or {}
        if first:
            first = self.substitute(first, scope, value_where("first"), "'first'")
        if not isinstance(first, dict):
            raise SpecError("'first' must be a mapping of arguments for the first repetition", value_where("first"),
                            scope.trace)
        if first and repeat is None:
            raise SpecError("'first' needs 'repeat'", where("first"), scope.trace)

        args = {}
        for k, v in item.items():
            if k not in _RESERVED:              # (a plain value as `substitute` returns it, without the call)
                kind = type(v)
                args[k] = v if kind is str and "$" not in v or kind in _PLAIN else \
                    self.substitute(v, scope, value_locs.get(k, item_loc), f"'{k}'")
        args = resolve_likes(args, self.shapes, scope.resolve, value_where)
        if first:
            first = resolve_likes(first, self.shapes, scope.resolve, value_where)
        kind = type_name.lower()
        block = self.spec.blocks.get(kind)
        if kind == SEQUENTIAL or block is not None:
            if len(inputs) != 1:
                raise SpecError(f"'{type_name}' takes one input, got {len(inputs)}", where("from"), scope.trace)
            for key in ("init", "tie"):
                if key in item:
                    raise SpecError(f"'{key}' is about a layer's parameters; put it on the layers inside"
                                    f" '{type_name}'", where(key), scope.trace)
        inline = item.get("inline", False)
        if not isinstance(inline, bool):
            raise SpecError(f"'inline' must be true or false, got {brief(inline)}", value_where("inline"),
                            scope.trace)
        named = copy_names(item, local, repeat, inline, scope, self.substitute, value_where) \
            if kind != SEQUENTIAL and "layers" not in item and (
                "names" in item or repeat is not None and local is None and scope.sequential and not inline) \
            else None      # (None without the call: no 'names', and no Sequential's repeat to number)
        if named is not None:     # copies named one by one ('names:', or a Sequential's positions), not grouped
            copies = [scope.prefix + name for name in named]
            if block is not None:
                return self.expand_block(None, block, args, first, repeat, inputs[0], item_loc, scope, trainable,
                                         where, copies)
            return self.expand_primitive(copies, None, type_name, args, first, inputs, item, item_loc, scope,
                                         trainable)
        if inline:
            if kind == SEQUENTIAL:
                raise SpecError("a Sequential cannot be inline; list its layers where it stands", where("inline"),
                                scope.trace)
            if block is not None:
                output = self.expand_block(None, block, args, first, repeat, inputs[0], item_loc, scope,
                                           trainable, where)
            else:
                if local is not None and (repeat or 1) > 1:
                    raise SpecError("an inline repeat names its copies itself; drop 'name'", where("name"),
                                    scope.trace)
                copies = [scope.prefix + (local if local is not None else
                                          self.generated_name(type_name, scope.take_position(), scope))
                          for _ in range(repeat or 1)]
                output = self.expand_primitive(copies, None, type_name, args, first, inputs, item, item_loc,
                                               scope, trainable)
            if local is not None:
                scope.names[local] = output
                scope.name_locs[local] = value_where("name")
            return output

        position = scope.take_position()
        if local is None:
            local = self.generated_name(type_name, position, scope)
        full = scope.prefix + local
        if kind == SEQUENTIAL:
            if repeat is not None or first:
                raise SpecError("a Sequential cannot repeat; put 'repeat' on its layers or use a block",
                                where("repeat" if repeat is not None else "first"), scope.trace)
            if args:
                extra = next(iter(args))
                raise SpecError(f"unknown key '{extra}' for Sequential; it takes 'layers'", where(extra), scope.trace)
            body = item.get("layers")
            if not isinstance(body, list) or not body:
                raise SpecError("a Sequential needs a non-empty 'layers' list", where("layers"), scope.trace)
            output = self.expand_group(full, "Sequential", body, inputs[0], scope, trainable, sequential=True,
                                       variables=scope.variables, trace=scope.trace)
        elif block is not None:
            if "layers" in item:
                raise SpecError(f"block '{block.name}' brings its own layers", where("layers"), scope.trace)
            output = self.expand_block(full, block, args, first, repeat, inputs[0], item_loc, scope, trainable,
                                       where)
        else:
            if "layers" in item:
                raise SpecError(f"'layers' belongs to Sequential or a block, not to {type_name}", where("layers"),
                                scope.trace)
            copies = [f"{full}.{index}" for index in range(repeat)] if repeat is not None else [full]
            output = self.expand_primitive(copies, full if repeat is not None else None, type_name, args, first,
                                           inputs, item, item_loc, scope, trainable)
        scope.names[local] = output
        scope.name_locs[local] = value_where("name") if "name" in item else item_loc
        return output

    def generated_name(self, type_name: str, position: int, scope: Scope) -> str:
        """Sequential: the position (as torch.nn.Sequential); elsewhere '<type>_<n>' counted per type."""
        if scope.sequential:
            return str(position)
        key = type_name.lower()
        while True:
            scope.counters[key] = scope.counters.get(key, 0) + 1
            name = f"{key}_{scope.counters[key]}"
            if name not in scope.name_locs:
                return name

    def expand_group(self, full: str, label: str, body: MarkedList, input_ref: str, scope: Scope,
                     trainable: bool, *, sequential: bool, variables: Mapping[str, Any], trace: tuple[str, ...],
                     output_name: str | None = None, output_loc: Location | None = None) -> str:
        """Expand ``body`` as the group ``full``; return the full name of its output node."""
        self.add_group(full, label, scope, output="")
        inner = Scope(prefix=full + ".", input_ref=input_ref, variables=variables, sequential=sequential,
                       trace=trace, group=full, trainable=trainable, known_nodes=self.references, shadows=self.shadows)
        output = self.expand(body, inner)
        if output_name is not None:
            output = inner.resolve(output_name, output_loc, "'output'")
        self.finish_group(full, output)
        return output

    def expand_block(self, full: str | None, block: BlockDef, args: dict, first: dict, repeat: int | None,
                     input_ref: str, loc: Location | None, scope: Scope, trainable: bool, where,
                     instances: list[str] | None = None) -> str:
        """Expand a block use as the group ``full`` (``full`` None: inline, its layers join ``scope``; ``instances``:
        the full names of the copies of a repeat named one by one, each a group)."""
        for name in (*args, *first):
            if name not in block.args:
                valid = did_you_mean(name, block.args) if block.args else "it takes none"
                raise SpecError(f"unknown argument '{name}' for block '{block.name}'; {valid}", where(name),
                                scope.trace)
        missing = [name for name in block.required if name not in args and name not in first]
        if missing:
            raise SpecError(f"block '{block.name}' needs argument '{missing[0]}'", loc, scope.trace)
        trace = (f"in block '{block.name}' used at {loc}", *scope.trace) if loc else scope.trace
        count = repeat or 1
        self.budget.check_repeat(count, block.layers, where("repeat") if repeat is not None else loc, scope.trace)
        previous = input_ref
        grouped_repeat = repeat is not None and full is not None
        if grouped_repeat:
            self.add_group(full, f"{block.name} ×{repeat}", scope, output="")
            outer = Scope(prefix=full + ".", input_ref=input_ref, variables={}, sequential=True, trace=scope.trace,
                           group=full, trainable=trainable, known_nodes=self.references, shadows=self.shadows)
        if block.name.lower() in self.active_blocks:
            chain = " -> ".join([*self.active_blocks.values(), block.name])
            raise SpecError(f"block '{block.name}' uses itself ({chain})", loc, scope.trace)
        self.active_blocks[block.name.lower()] = block.name
        for index in range(count):
            given = {**args, **(first if index == 0 else {})}
            variables = {**self.globals, "index": index, "repeat": count}
            names = ScopeNames(variables, self.shapes, previous, frozenset(self.globals) - set(block.args))
            for name, default in block.args.items():   # defaults may use globals and earlier arguments
                if name in given:
                    variables[name] = given[name]
                elif default == REQUIRED_ARG:
                    raise SpecError(f"block '{block.name}' needs argument '{name}' in every repetition", loc,
                                    scope.trace)
                else:
                    at_use = Scope(scope.prefix, previous, names, False, scope.trace, None, True, names=scope.names,
                                    known_nodes=self.references)
                    variables[name] = self.substitute(default, at_use, block.source.where("args"),
                                                      f"the default of '{name}'")
                    if name in self.globals and (index == 0 or index == 1 and name in first):
                        note_arg_shadow(self.arg_shadows, block, name, variables[name], self.globals[name], loc)
            if full is None and not instances:
                inner = Scope(prefix=scope.prefix, input_ref=previous, variables=names,
                               sequential=scope.sequential, trace=trace, group=scope.group, trainable=trainable,
                               counters=scope.counters, positions=scope.positions, known_nodes=self.references, shadows=self.shadows)
                previous = self.expand(block.layers, inner)
                if block.output is not None:
                    previous = inner.resolve(block.output, block.source.where("output"), "'output'")
                continue
            instance = instances[index] if instances else f"{full}.{index}" if repeat is not None else full
            parent = outer if grouped_repeat else scope
            previous = self.expand_group(instance, block.name, block.layers, previous, parent, trainable,
                                         sequential=False, variables=names, trace=trace,
                                         output_name=block.output, output_loc=block.source.where("output"))
        del self.active_blocks[block.name.lower()]
        if grouped_repeat:
            self.finish_group(full, previous)
        return previous

    def bind_references(self, layer: Layer, args: Mapping[str, Any], name: str, scope: Scope,
                        arg_locations: Mapping[str, Location], loc: Location | None) -> tuple[str, ...]:
        """Resolve the layer's reference arguments (names of earlier layers, e.g. MaxUnpool's 'pool'), hand it the
        named layers' units, and return the inputs of those layers, which become extra inputs of this one."""
        extra: list[str] = []
        for argument in type(layer).references:
            if args.get(argument) is None:
                continue
            where = arg_locations.get(argument, loc)
            target = scope.resolve(args[argument], where, f"'{argument}'")
            node = next((n for n in reversed(self.nodes) if n.name == target), None)
            if node is None:
                raise SpecError(f"layer '{name}' ({layer.type_name}): '{argument}' must name a layer, not the input",
                                where, scope.trace)
            try:
                layer.bind(argument, node.layer)
            except LayerArgError as exc:
                raise layer_error(name, layer.type_name, exc, where, scope.trace) from None
            extra.extend(node.inputs)
        return tuple(extra)

    def expand_primitive(self, names: list[str], group: str | None, type_name: str, args: dict, first: dict,
                         inputs: tuple[str, ...], item: dict, loc: Location | None, scope: Scope,
                         trainable: bool) -> str:
        """Chain one node per name (several for 'repeat'); ``group`` names the repeat group, if any."""
        arg_locations = dict(item.key_locs) if isinstance(item, MarkedDict) else {}
        if not is_registered(type_name):
            blocks = [b.name for b in self.spec.blocks.values()]
            listing = f"`convcalc layers` lists all {len(type_names())} layer types" + (
                f"; this spec's blocks: {', '.join(blocks)}" if blocks else "")
            choices = [*type_names(), "Sequential", *blocks]
            dims = len(self.spec.input_shape) - 1          # BatchNorm: BatchNorm2d in a 2-D spec
            raise SpecError(f"unknown layer type '{type_name}'; {type_hint(type_name, choices, listing, dims)}",
                            arg_locations.get("type", loc), scope.trace)
        cls = lookup(type_name)
        self.budget.add(len(names) - 1, arg_locations.get("repeat", loc), scope.trace)   # the copies of a repeat
        preset, preset_locations = preset_of(item, scope, loc, self.substitute)
        tie = tie_of(item, preset, scope, loc, self.substitute, self.nodes)
        if group is not None:
            self.add_group(group, f"{cls.type_name} ×{len(names)}", scope, output="")
        group_path = self.group_path(group if group is not None else scope.group)
        previous = inputs
        for index, name in enumerate(names):
            layer_args = {**args, **(first if index == 0 else {})}
            try:
                layer = cls.from_args(layer_args)
            except LayerArgError as exc:
                raise layer_error(name, cls.type_name, exc, arg_locations.get(exc.arg, loc), scope.trace) from None
            node_inputs = (*previous, *self.bind_references(layer, layer_args, name, scope, arg_locations, loc))
            count_in = len(node_inputs)
            if count_in < cls.min_inputs or (cls.max_inputs is not None and count_in > cls.max_inputs):
                try:
                    layer.check_inputs([()] * count_in)
                except LayerArgError as exc:
                    raise layer_error(name, cls.type_name, exc, arg_locations.get("from", loc), scope.trace) \
                        from None
            self.claim(name, loc, scope)
            previous = (self.parts.add(layer, name, node_inputs, group_path, loc, arg_locations, scope, trainable,
                                       len(names)),)
            if previous[0] is not None:    # several outputs: no node; later layers name its parts NAME.K
                continue
            self.nodes.append(Node.of(name, cls.type_name, layer, node_inputs, group_path, loc, arg_locations,
                                      scope.trace, trainable, preset, preset_locations, tie))
            self.references[name] = name
            previous = (name,)
        if group is not None:
            self.finish_group(group, previous[0])
        return previous[0]


def build_graph(spec: Spec, overrides: Mapping[str, Any] | None = None,
                input_shape: Sequence[int] | None = None) -> Graph:
    """Expand ``spec`` into a `Graph`. ``overrides`` replace values of the spec's top-level ``args``; ``input_shape``
    (default: the spec's ``input``) is the shape that ``in_shape``, ``shape()`` and ``{like: ...}`` read from (a graph
    that reads one can be built again for another: `Graph.at_input`).

    Bounded before the work: at most ``limits.MAX_LAYERS`` layer entries after expansion (a repeat is checked
    against it before it is expanded) and ``limits.MAX_NESTING`` levels of blocks and Sequentials."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20 * limits.MAX_NESTING + 2_000))   # a few frames per level of nesting
    try:
        return _build(spec, overrides, tuple(input_shape) if input_shape is not None else spec.input_shape)
    except RecursionError:
        raise GraphError(f"the spec nests blocks and Sequentials more deeply than convcalc can follow (at most"
                         f" {limits.MAX_NESTING} levels)") from None
    finally:
        sys.setrecursionlimit(limit)


def _build(spec: Spec, overrides: Mapping[str, Any] | None, input_shape: tuple[int, ...]) -> Graph:
    raw = dict(spec.args)
    check_overrides(overrides or {})
    for key, value in (overrides or {}).items():
        if key not in raw:
            raise SpecError(f"--set {key}: the spec has no argument '{key}'; "
                            f"{did_you_mean(key, raw) if raw else 'it declares no args'}")
        raw[key] = value
    builder = _Builder(spec, input_shape)
    try:
        return _built(builder, spec, raw, overrides, input_shape)
    finally:
        builder.parts.builder = None    # (they refer to each other: freed now, not left to the cycle collector)


def _built(builder: _Builder, spec: Spec, raw: dict, overrides: Mapping[str, Any] | None,
           input_shape: tuple[int, ...]) -> Graph:
    variables: dict[str, Any] = {}
    names = ScopeNames(variables, builder.shapes, INPUT)        # and in_shape, in_channels: the network's input
    args_loc = spec.document.where("args") if spec.document is not None else None
    for key, value in raw.items():   # in order: a value may use the ones before it
        variables[key] = builder.substitute(value, Scope("", INPUT, names, False, (), None, True), args_loc,
                                            f"args '{key}'")
    builder.globals = variables
    scope = Scope(prefix="", input_ref=INPUT, variables=names, sequential=False, trace=(), group=None,
                   trainable=True, known_nodes=builder.references,
                   shadows=builder.shadows)
    output = builder.expand(spec.layers, scope)
    if spec.output is not None:
        loc = spec.document.where("output") if spec.document is not None else None
        output = scope.resolve(spec.output, loc, "'output'")
    if builder.parts.single(output) == INPUT:      # the last layer is not one of several outputs (spec.parts)
        raise GraphError("the spec has no layers after bypassing (every layer's 'when' is false)")
    rebuild = partial(build_graph, spec, overrides) if builder.shapes.used else None   # sizes read from shapes
    return Graph(spec.name, input_shape, tuple(builder.nodes), output, builder.groups, spec.file,
                 tuple(builder.shadows), arg_shadows=tuple(builder.arg_shadows), rebuild=rebuild)


__all__ = ["build_graph"]
