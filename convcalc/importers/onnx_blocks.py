"""Blocks in an imported spec: where the graph repeats an identical residual unit consecutively (a run of layers
that reads only the layer before it and ends in a merge with that input, its layers alike in type, arguments,
wiring and weight shapes), the units become one block used with ``repeat``. When the units' names are PyTorch's
(``layer1.1.conv1``, ``layer1.2.conv1``, ...), the copies are named by ``names: "layer1.${index + 1}"``, so every
name and state_dict key stays as it was; otherwise the group is named ``blockN`` with copies ``blockN.0``,
``blockN.1``, ..., their layers named by type (``conv2d_1``, ``batchnorm2d_1``), and the weights' keys follow."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np

from .onnx_translate import Layer, PoolIndices

MERGES = {"Add", "Concat", "Multiply"}
MAX_UNIT = 64          # layers in one unit, at most


def _reads(layer: Layer) -> list[int | str]:
    """The layers (ids) and 'input' that ``layer`` reads, including a MaxUnpool's pool."""
    found: list[int | str] = []
    for ref in layer.inputs:
        found.append("input" if ref == "input" else int(ref[1:].split(".")[0]))
    found += [v.layer for v in layer.args.values() if isinstance(v, PoolIndices)]
    return found


def _signature(layers: list[Layer], start: int, end: int, before: int | str) -> tuple | None:
    """What makes units equal: per layer its type, arguments, weight shapes and wiring relative to the unit (the
    unit's input as 'U'); None when a layer reads from outside the unit other than its input."""
    ids = {layers[i].id: i - start for i in range(start, end)}
    items = []
    for layer in layers[start:end]:
        inputs = []
        for ref in layer.inputs:
            number, _, part = ref.partition(".") if ref != "input" else ("input", "", "")
            key: Any = "input" if ref == "input" else int(number[1:])
            if key == before:
                inputs.append(("U", part))
            elif key in ids:
                inputs.append((ids[key], part))
            else:
                return None
        args = []
        for name, value in layer.args.items():
            if isinstance(value, PoolIndices):
                if value.layer not in ids:
                    return None
                value = ("pool", ids[value.layer])
            args.append((name, repr(value)))
        shapes = tuple(sorted((k, v.shape) for k, v in layer.weights.items()))
        items.append((layer.type, tuple(args), tuple(inputs), shapes))
    return tuple(items)


def find_runs(layers: list[Layer], output_id: int | None) -> list[tuple[int, int, int]]:
    """(start, unit length, copies) of each run of identical residual units, in order, not overlapping. A unit
    [s, e) reads only the layer before it and its own layers, nothing after it reads its layers but the last (nor
    is the model's output inside it), and one of its merges reads the unit's input."""
    position = {layer.id: i for i, layer in enumerate(layers)}
    last_reader = [-1] * len(layers)
    reads = [_reads(layer) for layer in layers]
    for i, found in enumerate(reads):
        for r in found:
            if r != "input":
                last_reader[position[r]] = max(last_reader[position[r]], i)
    if output_id is not None:
        last_reader[position[output_id]] = len(layers)

    def closed(start: int, end: int) -> bool:
        return end - start < 2 or max(last_reader[start:end - 1]) < end

    runs = []
    s = 0
    while s < len(layers):
        best = None
        before: int | str = layers[s - 1].id if s else "input"
        reach, residual = -1, False          # the furthest reader of layers s..end-2; a merge reading `before`
        for end in range(s + 1, min(s + MAX_UNIT, len(layers)) + 1):
            residual = residual or (layers[end - 1].type in MERGES and before in reads[end - 1])
            if end - s >= 2:
                reach = max(reach, last_reader[end - 2])
            if end - s < 2 or reach >= end or not residual:
                continue
            if 2 * end - s > len(layers):
                break
            signature = _signature(layers, s, end, before)
            if signature is None:
                continue
            length, copies = end - s, 1
            while True:
                nxt = s + copies * length
                if nxt + length > len(layers) or not closed(nxt, nxt + length) or \
                        _signature(layers, nxt, nxt + length, layers[nxt - 1].id) != signature:
                    break
                copies += 1
            if copies >= 2:
                best = (s, length, copies)
                break
        if best:
            runs.append(best)
            s += best[1] * best[2]
        else:
            s += 1
    return runs


def _torch_names(layers: list[Layer], start: int, length: int, copies: int) -> tuple[str, int, list[str]] | None:
    """(prefix, first index, local names) when unit k's names are '<prefix>.<first + k>.<local>' throughout."""
    match = re.match(r"^(.*)\.(\d+)\.", layers[start].name)
    if not match:
        return None
    prefix, first = match.group(1), int(match.group(2))
    local = []
    for k in range(copies):
        head = f"{prefix}.{first + k}."
        names = [layer.name for layer in layers[start + k * length:start + (k + 1) * length]]
        if not all(n.startswith(head) for n in names):
            return None
        rest = [n[len(head):] for n in names]
        if k == 0:
            local = rest
        elif rest != local:
            return None
    return prefix, first, local


def fold_repeats(layers: list[Layer], names: dict[int, str], weights: dict[str, np.ndarray],
                 output_id: int | None = None) -> tuple[list[str], list[str], dict[str, np.ndarray], dict[int, str]]:
    """(the ``blocks:`` lines, the ``layers:`` lines, the weights by their final keys, how each layer is named
    from the top level)."""
    from .onnx_emit import layer_line, state_key, yaml_value

    runs = find_runs(layers, output_id)
    if not runs:
        return [], [layer_line(layer, names, layers[i - 1] if i else None) for i, layer in
                    enumerate(layers)], weights, names
    blocks: list[str] = ["blocks:"]
    body: list[str] = []
    weights = dict(weights)
    shown = dict(names)              # how a layer is referred to from outside its unit
    i, previous, count = 0, None, 0
    defined: dict[tuple[str, ...], str] = {}      # a block's layer lines -> its name
    for start, length, copies in runs:
        while i < start:
            body.append(layer_line(layers[i], shown, previous))
            previous = layers[i]
            i += 1
        count += 1
        block = f"Unit{len(defined) + 1}"
        torch_names = _torch_names(layers, start, length, copies)
        unit = layers[start:start + length]
        if torch_names is not None:
            prefix, first, local = torch_names
            entry = {"type": block, "repeat": copies, "names": f"{prefix}.${{index + {first}}}" if first else
                     f"{prefix}.${{index}}"}
            last_name = f"{prefix}.{first + copies - 1}"
        else:                      # the units' own names differ: names by type within the unit, a group 'blockN'
            local, seen = [], {}
            for layer in unit:
                seen[layer.type] = seen.get(layer.type, 0) + 1
                local.append(f"{layer.type.lower()}_{seen[layer.type]}")
            group = f"block{count}"
            while group in names.values():
                group += "_"
            entry = {"name": group, "type": block, "repeat": copies}
            last_name = f"{group}.{copies - 1}"
            for k in range(copies):
                for j, layer in enumerate(layers[start + k * length:start + (k + 1) * length]):
                    for param in layer.weights:
                        weights[state_key(f"{group}.{k}.{local[j]}", param)] = weights.pop(
                            state_key(layer.name, param))
        inner = {layer.id: local[j] for j, layer in enumerate(unit)}
        before = layers[start - 1].id if start else None
        definition = []
        for j, layer in enumerate(unit):
            inputs = [("input" if ref == "input" or int(ref[1:].split(".")[0]) == before else ref)
                      for ref in layer.inputs]
            local_layer = replace(layer, name=local[j], inputs=inputs)
            definition.append(layer_line(local_layer, {**shown, **inner}, unit[j - 1] if j else None,
                                         indent="      "))
        if tuple(definition) in defined:              # the same unit again (another stage of equal width)
            entry["type"] = defined[tuple(definition)]
        else:
            defined[tuple(definition)] = block
            blocks += [f"  {block}:", "    layers:", *definition]
        line = f"  - {yaml_value(entry)}"
        if not ((before is None and previous is None) or (previous is not None and previous.id == before)):
            line = line[:-1] + f", from: {yaml_value(shown[before] if before is not None else 'input')}}}"
        body.append(line)
        end_layer = layers[start + length * copies - 1]
        shown[end_layer.id] = last_name
        previous = end_layer
        i = start + length * copies
    while i < len(layers):
        body.append(layer_line(layers[i], shown, previous))
        previous = layers[i]
        i += 1
    return blocks, body, weights, shown
