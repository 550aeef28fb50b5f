"""Writing the imported layers as a readable spec: names from the ONNX node names (PyTorch's scopes
``/layer1/layer1.0/conv1/Conv`` give ``layer1.0.conv1``; the initializer ``layer1.0.conv1.weight`` wins), ``from:``
only where the graph branches, a header comment with the source, opset and producer, and consecutive identical
residual units folded into a block with ``repeat`` (`onnx_blocks`)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from .onnx_translate import Layer, PoolIndices, Translator

_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "none", "y", "n", "~"}   # not strings to YAML 1.1
_RESERVED = _YAML_WORDS | {"input"}                                                     # never a layer's name


def _sanitise(text: str) -> str:
    name = _UNSAFE.sub("_", text).strip("._")
    name = re.sub(r"\.{2,}", ".", name)
    return name


def module_path(node_name: str) -> tuple[str, str] | None:
    """(module path, op segment) of a PyTorch-scoped node name: '/layer1/layer1.0/conv1/Conv' → ('layer1.0.conv1',
    'Conv'); None when the name has no scope."""
    if "/" not in node_name:
        return None
    segments = [s for s in node_name.split("/") if s]
    if not segments:
        return None
    if len(segments) == 1:
        return "", segments[0]
    parts: list[str] = []
    for segment in segments[:-1]:
        pieces = segment.split(".")
        overlap = next((n for n in range(min(len(parts), len(pieces) - 1), 0, -1) if parts[-n:] == pieces[:n]), 0)
        parts += pieces[overlap:]          # torch's scopes repeat the parent: /layer1/layer1.0, /ds/ds.0
    return ".".join(parts), segments[-1]


def assign_names(layers: list[Layer]) -> None:
    """Give every layer a unique, sanitised name (see the module docstring)."""
    paths = {layer.id: module_path(layer.node_name) for layer in layers}
    per_path: dict[str, int] = {}
    for layer in layers:
        if paths[layer.id] is not None:
            per_path[paths[layer.id][0]] = per_path.get(paths[layer.id][0], 0) + 1
    parents = {path.rsplit(".", 1)[0] for path in per_path if "." in path}
    parents |= {p[:i] for p in per_path for i in range(len(p)) if p[i] == "."}
    taken: set[str] = set()
    counters: dict[str, int] = {}

    def unique(name: str, fallback: str) -> str:
        name = _sanitise(name) or fallback
        if name.lower() in _RESERVED:
            name = f"{name}_"
        if name not in taken:
            taken.add(name)
            return name
        n = 2
        while f"{name}_{n}" in taken:
            n += 1
        taken.add(f"{name}_{n}")
        return f"{name}_{n}"

    for layer in layers:
        fallback = layer.type.lower()
        if layer.prefer and _sanitise(layer.prefer) not in taken:
            layer.name = unique(layer.prefer, fallback)
            continue
        scoped = paths[layer.id]
        if scoped is not None:
            path, op = scoped
            if not path:
                layer.name = unique(op.lower(), fallback)
            elif per_path[path] == 1 and path not in parents and _sanitise(path) not in taken:
                layer.name = unique(path, fallback)
            else:
                layer.name = unique(f"{path}.{op.lower()}", fallback)
        elif layer.node_name:
            layer.name = unique(layer.node_name, fallback)
        else:
            counters[fallback] = counters.get(fallback, 0) + 1
            layer.name = unique(f"{fallback}_{counters[fallback]}", fallback)


def resolve(ref: str, names: dict[int, str]) -> str:
    """A reference ('input', '#3', '#3.1') as the spec writes it."""
    if not ref.startswith("#"):
        return ref
    number, _, part = ref[1:].partition(".")
    return names[int(number)] + (f".{part}" if part else "")


def yaml_value(value: Any) -> str:
    """One value in YAML flow style, read back exactly (floats keep a '.' and a signed exponent: YAML 1.1)."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isinf(number):
            return ".inf" if number > 0 else "-.inf"
        if math.isnan(number):
            return ".nan"
        text = repr(number)
        mantissa, e, exponent = text.partition("e")
        if e:
            if "." not in mantissa:
                mantissa += ".0"
            if exponent[0] not in "+-":
                exponent = "+" + exponent
            text = f"{mantissa}e{exponent}"
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return text if _PLAIN.match(text) and text.lower() not in _YAML_WORDS else json.dumps(text)


def layer_line(layer: Layer, names: dict[int, str], previous: Layer | None, indent: str = "  ") -> str:
    """``- {name: ..., type: ..., args..., from: ...}``; ``from`` only where the input is not the previous layer."""
    inputs = [resolve(ref, names) for ref in layer.inputs]
    implicit = (len(layer.inputs) == 1 and (
        (previous is None and layer.inputs[0] == "input")
        or (previous is not None and layer.inputs[0] == f"#{previous.id}")))
    items: dict[str, Any] = {"name": layer.name, "type": layer.type}
    for key, value in layer.args.items():
        items[key] = names[value.layer] if isinstance(value, PoolIndices) else value
    if not implicit:
        items["from"] = inputs[0] if len(inputs) == 1 else inputs
    return f"{indent}- {yaml_value(items)}"


def state_key(layer_name: str, param: str) -> str:
    return f"{layer_name}.{param}" if param else layer_name


def header(model, source: str) -> list[str]:
    proto = model.model
    producer = " ".join(p for p in (proto.producer_name, proto.producer_version) if p) or "unknown producer"
    return [f"# imported from {source} by convcalc import (ONNX opset {model.opset}, ir {proto.ir_version},"
            f" produced by {producer})"]


def spec_text(translator: Translator, source: str) -> tuple[str, dict[str, np.ndarray]]:
    """The YAML spec of the translated layers, and their weights by state_dict key."""
    from .onnx_blocks import fold_repeats

    layers = translator.layers
    assign_names(layers)
    names = {layer.id: layer.name for layer in layers}
    weights = {state_key(layer.name, param): array for layer in layers for param, array in layer.weights.items()}
    model = translator.model
    stem = source.rsplit(".", 1)[0] if source.lower().endswith(".onnx") else ""
    graph_name = _sanitise(stem) or _sanitise(model.graph.name) or "imported"
    lines = header(model, source)
    if translator.skipped:
        lines.append(f"# --partial: {len(translator.skipped)} node(s) not imported; it stopped at"
                     f" {translator.skipped[0]}")
    lines += [f"name: {yaml_value(graph_name)}", f"input: {yaml_value(list(model.input_shape[1:]))}"]
    output = getattr(translator, "output_ref", None) if not translator.skipped else None
    output_id = int(output[1:].split(".")[0]) if output and output.startswith("#") else None
    blocks, body, weights, shown = fold_repeats(layers, names, weights, output_id)
    if output is not None and output != f"#{layers[-1].id}":
        lines.append(f"output: {yaml_value(resolve(output, shown))}")
    lines += blocks
    lines.append("layers:")
    lines += body
    return "\n".join(lines) + "\n", weights
