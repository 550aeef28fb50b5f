"""The importer's translation of ONNX nodes into convcalc layers: the `Translator` walks the graph in order and asks
each op's rule (`onnx_ops`, `onnx_ops_tensor`) for layers; tensors become references to layers (``#id``, ``#id.K``
for a part of a Split), constants stay arrays, and final names are given when the spec is written (`onnx_emit`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .onnx_graph import OnnxImportError, OnnxModel, attributes, node_label

RULES: dict[str, Callable] = {}


def rule(*ops: str):
    """Register a translation rule ``f(t: Translator, node, a: dict)`` for the ONNX ops ``ops``."""
    def register(function):
        for op in ops:
            RULES[op] = function
        return function
    return register


@dataclass
class Layer:
    """One layer of the spec being built; ``inputs`` are references (``input``, ``#3``, ``#3.1``)."""

    id: int
    type: str
    args: dict[str, Any]
    inputs: list[str]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    node_name: str = ""
    op: str = ""
    prefer: str | None = None      # a name from the weights' initializer ('layer1.0.conv1' of 'layer1.0.conv1.weight')
    name: str = ""                 # given by onnx_emit


@dataclass(frozen=True)
class PoolIndices:
    """The Indices output of a MaxPool layer (only a MaxUnpool may read it)."""

    layer: int


class Translator:
    """ONNX nodes → convcalc layers, in the graph's order."""

    def __init__(self, model: OnnxModel, partial: bool = False):
        self.model = model
        self.partial = partial
        self.layers: list[Layer] = []
        self.refs: dict[str, Any] = {model.input_name: "input"}
        self.done: set[int] = set()          # nodes consumed by a pattern (their outputs already bound)
        self.skipped: list[str] = []
        self.node = None
        self.tags = _read_tags(model)       # layer name -> the exporter's tag (convcalc's own composite forms)
        self.tagged = {n: layer for layer, tag in self.tags.items() for n in tag["nodes"]}

    # ---------------------------------------------------------------- the walk

    def run(self) -> None:
        from . import onnx_ops, onnx_ops_norm, onnx_ops_resize, onnx_ops_tensor  # noqa: F401  (they register rules)

        nodes = list(self.model.graph.node)
        for index, node in enumerate(nodes):
            if id(node) in self.done or id(node) not in self.model.needed or \
                    all(not o or o in self.model.consts for o in node.output):
                continue
            self.node = node
            if node.name in self.tagged and self._rebuild(self.tagged[node.name], nodes):
                continue
            try:
                handler = RULES.get(node.op_type)
                if handler is None:
                    raise OnnxImportError(f"{node_label(node)}: convcalc has no layer for the ONNX op {node.op_type}")
                handler(self, node, attributes(node))
            except OnnxImportError as exc:
                if not self.partial:
                    raise
                left = [n for n in nodes[index:] if id(n) not in self.done and id(n) in self.model.needed
                        and not all(not o or o in self.model.consts for o in n.output)]
                self.skipped = [str(exc)] + [node_label(n) for n in left[1:]]    # the first: why it stopped
                return
        output = self.model.output_name
        if output not in self.refs:
            raise OnnxImportError(f"the model's output '{output}' is not computed by any node convcalc imported")
        self.output_ref = self.refs[output]

    def _rebuild(self, layer_name: str, nodes: list) -> bool:
        """One layer of convcalc's own export, tagged by it (`onnx_export.TAG_KEY`), rebuilt whole: only where its
        nodes are exactly the tagged ones (names and ops in order, all of them not yet consumed), they read nothing
        but the tagged inputs, their own tensors and constants, nothing outside reads their tensors but the
        output, the tagged weights are the model's initializers, and the exporter emits exactly these nodes for the
        tagged layer (`_emits_the_same`). False (the node-by-node rules then) otherwise."""
        tag = self.tags.pop(layer_name, None)        # tried once: at its first node still to translate
        if tag is None:
            return False
        try:
            by_name = {n.name: n for n in nodes}
            group = [by_name[name] for name in tag["nodes"]]
            if [n.op_type for n in group] != list(tag["ops"]) or any(id(n) in self.done for n in group) or \
                    [n.name for n in nodes if n.name in set(tag["nodes"])] != list(tag["nodes"]):
                return False
            made = {o for n in group for o in n.output if o}
            inputs, output = list(tag["inputs"]), tag["output"]
            if output not in made or any(i not in self.refs or i in made for i in inputs):
                return False
            if any(i and i not in made and i not in inputs and i not in self.model.consts
                   for n in group for i in n.input):
                return False
            members = {id(n) for n in group}
            for name in made - {output}:
                if any(id(reader) not in members for reader in self.consumers(name)) or \
                        name == self.model.output_name:
                    return False
            initializers = {i.name for i in self.model.graph.initializer}
            if any(key not in initializers for key in tag["weights"].values()):
                return False
            if not self._emits_the_same(tag, group):
                return False
            weights = {param: self.model.consts[key] for param, key in tag["weights"].items()}
            refs = [self.refs[i] for i in inputs]
            if any(not isinstance(r, str) for r in refs):
                return False
            ref = self.emit(group[-1], str(tag["type"]), dict(tag["args"]), refs, weights)
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        self.layers[-1].prefer = layer_name
        self.done.update(id(n) for n in group)
        self.bind(output, ref)
        return True

    def _emits_the_same(self, tag: dict[str, Any], group: list) -> bool:
        """The exporter, given the tagged layer (its type and args) at these input shapes, emits exactly ``group``:
        the same ops with the same attributes (Constant nodes' values included) wired the same way."""
        from ..layers.registry import lookup
        from .onnx_build import Builder, Refused, Site
        from .onnx_export import emit

        inputs, output = list(tag["inputs"]), tag["output"]
        shapes = [self.model.shape(name) for name in inputs]
        out_shape = self.model.shape(output)
        if out_shape is None or any(shape is None for shape in shapes):
            return False
        layer = lookup(str(tag["type"])).from_args(dict(tag["args"]))
        builder = Builder(self.model.onnx, self.model.opset)
        builder.tensor_names.update(inputs, tag["weights"].values())
        site = Site(str(tag.get("name", output)), layer, inputs, [tuple(shape[1:]) for shape in shapes],
                    tuple(out_shape[1:]), dict(tag["weights"]))
        try:
            result = emit(builder, site)
        except Refused:
            return False
        if len(builder.nodes) != len(group):
            return False
        same = {name: name for name in (*inputs, *tag["weights"].values(), "")}
        for ours, theirs in zip(builder.nodes, group):
            if ours.op_type != theirs.op_type or len(ours.input) != len(theirs.input) or \
                    len(ours.output) != len(theirs.output):
                return False
            if sorted(a.SerializeToString() for a in ours.attribute) != \
                    sorted(a.SerializeToString() for a in theirs.attribute):
                return False
            if any(same.get(a) != b for a, b in zip(ours.input, theirs.input)):
                return False
            same.update(zip(ours.output, theirs.output))
        return same.get(result) == output

    # ---------------------------------------------------------------- what rules use

    def fail(self, what: str) -> OnnxImportError:
        """The error of the current node: ``node 'n' (Op): what``."""
        return OnnxImportError(f"{node_label(self.node)}: {what}")

    def x(self, node, index: int = 0) -> str:
        """The reference of the tensor input ``index`` (an error for a constant: convcalc needs a layer there)."""
        name = node.input[index] if index < len(node.input) else ""
        if name in self.refs:
            value = self.refs[name]
            if isinstance(value, PoolIndices):
                raise self.fail(f"input {index} is a MaxPool's indices, which only a MaxUnpool reads")
            return value
        if name in self.model.consts:
            raise self.fail(f"input {index} ('{name}') is a constant where convcalc needs a layer's output")
        raise self.fail(f"input {index} ('{name}') is not computed by any node convcalc imported")

    def const(self, node, index: int, what: str | None = None) -> np.ndarray | None:
        """The constant input ``index`` (None when absent; with ``what``, an error when it is computed)."""
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            return None
        if name in self.model.consts:
            return self.model.consts[name]
        if what is None:
            return None
        raise self.fail(f"its {what} (input {index}, '{name}') is computed at run time; convcalc needs it as a"
                        " constant (an initializer)")

    def is_const(self, node, index: int) -> bool:
        return index < len(node.input) and node.input[index] in self.model.consts

    def shape(self, node, index: int = 0) -> tuple[int, ...]:
        """The static shape (batched) of input ``index``."""
        shape = self.model.shape(node.input[index])
        if shape is None:
            raise self.fail(f"the shape of input {index} ('{node.input[index]}') is not known (ONNX's shape"
                            " inference could not say it)")
        return shape

    def out_shape(self, node, index: int = 0) -> tuple[int, ...] | None:
        return self.model.shape(node.output[index])

    def emit(self, node, type: str, args: dict[str, Any], inputs: list[str],
             weights: dict[str, np.ndarray] | None = None, prefer_from: int | None = None) -> str:
        """Append a layer made from ``node``; its reference. ``prefer_from``: the input whose initializer's name
        (``X.weight``) names the layer ``X``."""
        prefer = None
        if prefer_from is not None and prefer_from < len(node.input):
            source = node.input[prefer_from]
            for suffix in (".weight", ".bias"):
                if source.endswith(suffix) and len(source) > len(suffix):
                    prefer = source[:-len(suffix)]
        layer = Layer(len(self.layers), type, args, list(inputs),
                      {k: np.asarray(v) for k, v in (weights or {}).items()}, node.name, node.op_type, prefer)
        self.layers.append(layer)
        return f"#{layer.id}"

    def bind(self, name: str, ref: Any) -> None:
        if name:
            self.refs[name] = ref

    def consumers(self, name: str) -> list:
        return self.model.consumers.get(name, [])

    def sole_consumer(self, name: str):
        """The one node reading ``name`` (None: several, none, or the graph's output)."""
        readers = self.consumers(name)
        return readers[0] if len(readers) == 1 else None


def _read_tags(model: OnnxModel) -> dict[str, dict[str, Any]]:
    """The exporter's tags of its composite layers (metadata_props 'convcalc.layers', JSON); {} when absent or
    unreadable (a model from elsewhere)."""
    import json

    for prop in getattr(model.model, "metadata_props", ()):
        if prop.key == "convcalc.layers":
            try:
                tags = json.loads(prop.value)
            except ValueError:
                return {}
            if isinstance(tags, dict) and all(isinstance(t, dict) and isinstance(t.get("nodes"), list)
                                              for t in tags.values()):
                return tags
    return {}


def f32(value) -> float:
    """An ONNX float attribute (float32) as the shortest decimal that reads back as the same float32 (0.1, not
    0.10000000149011612)."""
    return float(str(np.float32(value)))


def spatial_rank(t: Translator, node, shape: tuple[int, ...]) -> int:
    """The number of spatial axes of an [N, C, *S] tensor, checked to be 1-3."""
    n = len(shape) - 2
    if not 1 <= n <= 3:
        raise t.fail(f"an input of rank {len(shape)}: convcalc's layers take [N, C] and 1-3 spatial axes")
    return n


def per_axis(values) -> Any:
    """An int when every axis has the same value, else the list."""
    values = [int(v) for v in values]
    return values[0] if values and all(v == values[0] for v in values) else values


def padding_arg(pairs: list[tuple[int, int]]) -> Any:
    """convcalc's padding: an int or per-axis list when symmetric, else [[before, after], ...]."""
    if all(lo == hi for lo, hi in pairs):
        return per_axis([lo for lo, _ in pairs])
    return [[int(lo), int(hi)] for lo, hi in pairs]
