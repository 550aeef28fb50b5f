"""Export a convcalc network to ONNX: `export_onnx(graph, weights) -> bytes`, a model ONNX Runtime runs to the
numbers `convcalc run` computes.

Each layer becomes the ONNX ops that compute it exactly (`onnx_export_ops`, `onnx_export_conv`): one op where ONNX
has it (Conv, MaxPool, BatchNormalization, Resize, ...), a few where it does not (a channel shuffle is
Reshape-Transpose-Reshape, a locally connected layer an unfold by identity kernels and an Einsum, a partial conv
its mask's window sums); composite layers (depthwise-separable, spatially separable, flattened, gated) as their
parts. A layer with no exact form is refused with one line naming it, its type and why. The model's initializers
are exactly the network's state_dict (``<layer>.weight``, ``<layer>.running_mean``, ...; the training counter
``num_batches_tracked`` left out), from ``weights`` or convcalc's seeded default initialisation (the very arrays
``convcalc run --seed N`` uses); the input is ``input`` ``[N, *input_shape]`` with a symbolic batch, nodes and
output tensors carry the layers' names. Layers whose form is such a composition are tagged for the importer
(metadata_props ``convcalc.layers``: name -> type, args, tensors, weights, node names and ops; `TAGGED`), which
rebuilds each whole where its nodes are exactly those. ``onnx`` is imported here, lazily (the optional extra
``convcalc[onnx]``).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np

from .._version import __version__
from ..analysis.summary import analyze
from ..execution.weights import OPTIONAL_BUFFERS, initial_state, state_from_dict, state_key
from ..layers.composite import Composite
from ..spec.graph import INPUT, Graph
from .onnx_build import OPSET_DEFAULT, OPSET_MAX, OPSET_MIN, Builder, ExportError, Refused, Site
from .onnx_export_ops import emitter_for

INSTALL_HINT = "convcalc export needs the onnx package: pip install 'convcalc[onnx]'"


def import_onnx_module() -> Any:
    """The ``onnx`` package, or an `ExportError` saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ExportError(INSTALL_HINT) from None
    return onnx


def export_onnx(graph: Graph, weights: Mapping[str, np.ndarray] | None = None, *,
                input_shape: Sequence[int] | None = None, opset: int = OPSET_DEFAULT, seed: int = 0) -> bytes:
    """The network as a serialized ONNX ModelProto. ``weights``: a flat state dict (as `convcalc run --weights`
    loads; checked key by key); without it, the seeded default initialisation of ``convcalc run --seed``.
    ``input_shape``: batchless (default the spec's). ``opset``: 13 to 22. Raises `ExportError` for a layer ONNX
    cannot express (naming it) and for a model the ONNX checker or its shape inference rejects."""
    onnx = import_onnx_module()
    if not OPSET_MIN <= opset <= OPSET_MAX:
        raise ExportError(f"opset {opset} is not supported: choose {OPSET_MIN} to {OPSET_MAX}")
    summary = analyze(graph, tuple(input_shape) if input_shape is not None else None)
    graph = summary.graph
    if 4 * (summary.totals.params + summary.totals.buffers) > PROTOBUF_LIMIT:    # checked before drawing them
        raise _too_large()
    state = (initial_state(graph, summary, seed) if weights is None
             else state_from_dict(dict(weights), summary))
    builder = Builder(onnx, opset)
    builder.tensor_names.add(INPUT)
    initializers, keys = _initializers(onnx, graph, summary, state, builder)
    tensors = {INPUT: INPUT}
    taken = {INPUT, *keys}              # tensors an emitter may return that no node of its own made
    shapes = {INPUT: tuple(summary.input_shape)}
    tags: dict[str, dict[str, Any]] = {}
    for node, row in zip(graph.nodes, summary.layers):
        owner = node.tie or node.name
        names = {**row.weights, **row.buffer_shapes} if node.tie is None else \
            {**summary.layer(owner).weights, **summary.layer(owner).buffer_shapes}
        params = {name: keys[state_key(owner, name)] for name in names if state_key(owner, name) in keys}
        site = Site(node.name, node.layer, [tensors[i] for i in node.inputs], [shapes[i] for i in node.inputs],
                    tuple(row.output_shape), params)
        first = len(builder.nodes)
        try:
            out = emit(builder, site)
        except Refused as reason:
            raise ExportError(f"layer '{node.name}' ({node.type_name}) cannot be exported to ONNX: {reason}",
                              node.location, node.trace) from None
        tensors[node.name] = _name_output(builder, out, node.name, taken)
        if node.tie is None and node.type_name.startswith(TAGGED):
            tags[node.name] = _tag(node, site, tensors[node.name], builder.nodes[first:])
        taken.add(tensors[node.name])
        shapes[node.name] = tuple(row.output_shape)
    helper = onnx.helper
    output = tensors[graph.output]
    model_graph = helper.make_graph(
        builder.nodes, _graph_name(graph.name),
        [helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, ["N", *summary.input_shape])],
        [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT,
                                       ["N", *summary.layer(graph.output).output_shape])],
        initializers)
    model = helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="convcalc", producer_version=__version__)
    model.ir_version = min(model.ir_version, _IR_FOR_OPSET.get(opset, model.ir_version))
    model.doc_string = f"{graph.name}: exported by convcalc {__version__} from {graph.file}"
    if tags:
        helper.set_model_props(model, {TAG_KEY: json.dumps(tags, separators=(",", ":"))})
    data = model.SerializeToString()
    try:
        onnx.checker.check_model(data, full_check=True)          # the checker and strict shape inference
    except Exception as exc:           # noqa: BLE001  (onnx raises its own ValidationError / InferenceError)
        raise ExportError(f"the exported model fails ONNX's checker: {str(exc).splitlines()[0][:300]}") from None
    return data


# Layers whose ONNX form is a composition the importer's node-by-node rules do not read back (a partial or tiled
# conv's window sums by ReduceSum, Maxout's ReduceMax over a reshaped axis, an even-sized LRN or an LPPool by Pow,
# an uneven adaptive pool's MatMul, a locally connected layer's Einsum; their single-node forms are tagged alike):
# the model's metadata_props[TAG_KEY] maps each such layer's name to its type, args (None ones left out), input and
# output tensors, weights and the names and ops of its nodes; the importer rebuilds the layer from that where the
# nodes are exactly those (`onnx_translate.Translator._rebuild`).
TAG_KEY = "convcalc.layers"
TAGGED = ("PartialConv", "TiledConv", "Maxout", "LocalResponseNorm", "LPPool", "AdaptiveAvgPool", "AdaptiveMaxPool",
          "LocallyConnected")


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _int_if_even(value: Any) -> Any:
    """(3, 3) as 3, as a spec writes it (LPPool1d takes only an int kernel_size)."""
    if isinstance(value, tuple) and value and all(type(v) is int and v == value[0] for v in value):
        return value[0]
    return value


def _tag(node: Any, site: Site, output: str, nodes: Sequence[Any]) -> dict[str, Any]:
    args = {key: _int_if_even(value) for key, value in node.layer.args.items() if value is not None}
    return {"type": node.type_name, "args": _plain(args), "inputs": list(site.inputs),
            "output": output, "weights": dict(site.params), "nodes": [n.name for n in nodes],
            "ops": [n.op_type for n in nodes]}


PROTOBUF_LIMIT = 2**31 - 2**26       # 2 GiB less room for the graph itself


def _too_large() -> ExportError:
    return ExportError(f"the parameters take more than {PROTOBUF_LIMIT / 2**30:.0f} GiB, the most one ONNX file"
                       " holds (protobuf's limit); export at a smaller size (--input-size) or with fewer parameters")

# ONNX Runtime reads models up to a given IR version; the opset's own IR version keeps old runtimes able to load it
_IR_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10}


def _graph_name(name: str) -> str:
    return name or "convcalc"


def _initializers(onnx: Any, graph: Graph, summary: Any, state: Mapping[str, Mapping[str, np.ndarray]],
                  builder: Builder) -> tuple[list[Any], dict[str, str]]:
    """The state_dict as float32 initializers named by its keys (tied layers have none of their own); and
    key -> tensor name (the same)."""
    tensors, keys, total = [], {}, 0
    for node, row in zip(graph.nodes, summary.layers):
        if node.tie is not None:
            continue
        for name in {**row.weights, **row.buffer_shapes}:
            if name.rsplit(".", 1)[-1] in OPTIONAL_BUFFERS:
                continue
            key = state_key(node.name, name)
            value = np.asarray(state[node.name][name], dtype=np.float32)
            total += value.nbytes
            if total > PROTOBUF_LIMIT:
                raise _too_large()
            tensors.append(onnx.numpy_helper.from_array(value, key))
            builder.tensor_names.add(key)
            keys[key] = key
    return tensors, keys


def _name_output(builder: Builder, tensor: str, layer: str, taken: set[str]) -> str:
    """Give the layer's output tensor (and the node making it) the layer's name where that name is free; a layer
    whose output is an existing tensor (the input, an initializer, another layer's) gets an Identity node."""
    made_here = None if tensor in taken else next(
        (node for node in reversed(builder.nodes) if tensor in node.output), None)
    target = layer if layer not in builder.tensor_names else builder.fresh(layer)
    builder.tensor_names.add(target)
    if made_here is None:
        builder.nodes.append(builder.helper.make_node("Identity", [tensor], [target],
                                                      name=builder._node_name(layer)))
        return target
    made_here.output[list(made_here.output).index(tensor)] = target
    if layer not in builder.node_names:
        builder.node_names.discard(made_here.name)
        builder.node_names.add(layer)
        made_here.name = layer
    return target


def emit(builder: Builder, site: Site) -> str:
    """The ONNX nodes of one layer (a composite: of its parts, each named ``<layer>.<part>``); its output tensor."""
    if isinstance(site.layer, Composite):
        return _emit_composite(builder, site)
    return emitter_for(site.layer)(builder, site)


def _emit_composite(builder: Builder, site: Site) -> str:
    parts = site.layer.walk(tuple(site.in_shapes[0]))
    tensors = {"input": site.inputs[0]}
    shapes = {"input": tuple(site.in_shapes[0])}
    for part in parts:
        prefix = part.name + "."
        params = {k[len(prefix):]: v for k, v in site.params.items() if k.startswith(prefix)}
        sub = Site(f"{site.name}.{part.name}", part.layer, [tensors[i] for i in part.inputs],
                   [shapes[i] for i in part.inputs], tuple(part.inferred.out_shape), params)
        try:
            tensors[part.name] = emit(builder, sub)
        except Refused as reason:
            raise Refused(f"its part '{part.name}' ({part.type}): {reason}") from None
        shapes[part.name] = tuple(part.inferred.out_shape)
    return tensors[parts[-1].name]


__all__ = ["ExportError", "INSTALL_HINT", "export_onnx"]
