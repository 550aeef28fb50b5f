"""Reading an ONNX model for the importer: the lazy ``onnx`` import, attributes as plain values, the input's static
shape, every tensor's shape (ONNX's own shape inference at the model's batch size, 1 where it is symbolic) and
constant folding (initializers, Constant nodes and every node whose inputs are all constants, ``Shape`` of a tensor
whose shape is known included: the shape subgraphs Shape/Gather/Concat/ConstantOfShape/Unsqueeze/Cast that feed a
Reshape become plain constants)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ConvcalcError

NEEDS_ONNX = "convcalc import needs the onnx package: pip install 'convcalc[onnx]'"
_FOLD_ROUNDS = 8
SAME_SHAPE = {"BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LRN",
              "Relu", "LeakyRelu", "PRelu", "Elu", "Celu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
              "Softplus", "Mish", "Gelu", "Softmax", "LogSoftmax", "Dropout", "Identity", "Clip", "Abs", "Sqrt",
              "Erf", "Cast", "ThresholdedRelu"}
_NOT_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
               "If", "Loop", "Scan"}


class OnnxImportError(ConvcalcError):
    """An ONNX model convcalc cannot express (the node, its op and attribute, and what convcalc lacks)."""


def require_onnx():
    """The ``onnx`` module, or the one-line error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ConvcalcError(NEEDS_ONNX) from None
    return onnx


def load_model(model: Any):
    """A ModelProto from a path, bytes or a ModelProto (external data next to a path is loaded too)."""
    onnx = require_onnx()
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as exc:    # noqa: BLE001 - protobuf's DecodeError and friends
            raise ConvcalcError(f"the bytes given are not an ONNX model ({type(exc).__name__})") from None
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise ConvcalcError(f"{path}: no such ONNX file")
        try:
            return onnx.load(path)
        except Exception as exc:    # noqa: BLE001
            raise ConvcalcError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    raise ConvcalcError(f"import_onnx takes a path, bytes or an onnx.ModelProto, not {type(model).__name__}")


def attributes(node) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded, tensors as arrays)."""
    onnx = require_onnx()
    out = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, onnx.TensorProto):
            value = onnx.numpy_helper.to_array(value)
        elif isinstance(value, list):
            value = [v.decode() if isinstance(v, bytes) else v for v in value]
        out[attribute.name] = value
    return out


def node_label(node) -> str:
    return f"node '{node.name}' ({node.op_type})" if node.name else f"a {node.op_type} node (output '{node.output[0]}')"


class OnnxModel:
    """The model's graph with its constants folded and its tensors' shapes (batched: the input's own batch size
    where it is fixed, else 1)."""

    def __init__(self, model):
        onnx = require_onnx()
        self.onnx = onnx
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise OnnxImportError(f"{node_label(node)}: op domain '{node.domain}' is not ONNX's own; convcalc"
                                      " imports only standard ONNX ops")
        self.consts: dict[str, np.ndarray] = {i.name: onnx.numpy_helper.to_array(i) for i in self.graph.initializer}
        self.initializers = set(self.consts)
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs) or "none"
            raise OnnxImportError(f"the model has {len(inputs)} inputs ({names}); a convcalc spec has exactly one")
        self.input_name = inputs[0].name
        self.input_shape = self._static_input(inputs[0])
        outputs = list(self.graph.output)
        if len(outputs) != 1:
            raise OnnxImportError(f"the model has {len(outputs)} outputs ({', '.join(o.name for o in outputs)}); a"
                                  " convcalc spec has exactly one")
        self.output_name = outputs[0].name
        self.consumers: dict[str, list] = {}
        self.producers = {name: node for node in self.graph.node for name in node.output if name}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.consumers.setdefault(self.output_name, []).append(None)
        self.needed = self._ancestors(self.output_name)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._infer()
        for _ in range(_FOLD_ROUNDS):     # a Shape folds once its input's shape is known, which may need a fold
            known = len(self.consts)
            self._fold()
            if len(self.consts) == known:
                break
            self._infer()

    def _ancestors(self, name: str) -> set[int]:
        """The ids of the nodes that the tensor ``name`` depends on (a node feeding nothing the output reads is
        left out of the spec)."""
        found: set[int] = set()
        stack = [name]
        while stack:
            node = self.producers.get(stack.pop())
            if node is not None and id(node) not in found:
                found.add(id(node))
                stack.extend(n for n in node.input if n)
        return found

    def _static_input(self, value) -> tuple[int, ...]:
        dims = value.type.tensor_type.shape.dim
        if not value.type.tensor_type.HasField("shape") or len(dims) < 2:
            raise OnnxImportError(f"the input '{value.name}' has no static shape [N, C, ...]; convcalc needs the"
                                  " model's input size")
        shape = []
        for axis, dim in enumerate(dims):
            if axis == 0:                # the batch: the model's own size (its Reshapes may name it), else 1
                shape.append(dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else 1)
            elif dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(dim.dim_value)
            else:
                raise OnnxImportError(f"the input '{value.name}' has a symbolic size on axis {axis}"
                                      f" ('{dim.dim_param}'); convcalc needs the model's input size (export the model"
                                      " with a fixed input size)")
        return tuple(shape)

    def _skeleton(self):
        """The graph for ONNX's shape inference: the nodes not folded yet, the input with its batch, and each constant
        they read as an input of its shape (small integer ones as values, for the data propagation of Reshape's
        shapes): no copy of the weights."""
        from onnx import helper

        nodes = [n for n in self.graph.node if not all(not o or o in self.consts for o in n.output)]
        read = {name for n in nodes for name in n.input if name in self.consts}
        inputs = [helper.make_tensor_value_info(self.input_name, self._elem_type(), self.input_shape)]
        values = []
        for name in sorted(read):
            array = np.asarray(self.consts[name])
            if array.dtype.kind in "iub" and array.size <= 4096:
                values.append(self.onnx.numpy_helper.from_array(array, name))
            elif array.dtype != object:
                inputs.append(helper.make_tensor_value_info(
                    name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape))
        graph = helper.make_graph(nodes, "skeleton", inputs, list(self.graph.output), values)
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        model.ir_version = self.model.ir_version
        return model

    def _elem_type(self) -> int:
        value = next(v for v in self.graph.input if v.name == self.input_name)
        return value.type.tensor_type.elem_type or 1

    def _infer(self) -> None:
        try:
            inferred = self.onnx.shape_inference.infer_shapes(self._skeleton(), data_prop=True)
        except Exception:    # noqa: BLE001 - inference is a help; what it cannot say the translation asks for
            return
        self.shapes[self.input_name] = self.input_shape
        for value in (*inferred.graph.value_info, *inferred.graph.output):
            tensor = value.type.tensor_type
            if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
                self.shapes.setdefault(value.name, tuple(d.dim_value for d in tensor.shape.dim))

    def _fold(self) -> None:
        for node in self.graph.node:
            if all(not name or name in self.consts for name in node.output):
                continue
            if node.op_type == "Constant":
                self.consts[node.output[0]] = self._constant(node)
            elif node.op_type == "Shape" and node.input[0] in self.shapes:
                a = attributes(node)
                shape = self.shapes[node.input[0]]
                self.consts[node.output[0]] = np.array(shape[a.get("start", 0):a.get("end", len(shape))], np.int64)
            elif node.op_type == "Size" and node.input[0] in self.shapes:
                self.consts[node.output[0]] = np.array(int(np.prod(self.shapes[node.input[0]])), np.int64)
            elif (node.op_type not in _NOT_FOLDED and node.input
                  and all(not name or name in self.consts for name in node.input)):
                for name, value in zip(node.output, self._evaluate(node)):
                    if name:
                        self.consts[name] = value

    def _constant(self, node) -> np.ndarray:
        a = attributes(node)
        for key, kind in (("value_float", np.float32), ("value_int", np.int64)):
            if key in a:
                return np.array(a[key], kind)
        for key, kind in (("value_floats", np.float32), ("value_ints", np.int64)):
            if key in a:
                return np.array(a[key], kind)
        if "value" in a:
            return np.asarray(a["value"])
        raise OnnxImportError(f"{node_label(node)}: a Constant with {', '.join(a)} is not supported")

    def _evaluate(self, node) -> list[np.ndarray]:
        """The outputs of a node whose inputs are all constants, by ONNX's reference evaluator at the model's opset."""
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        names = [name for name in node.input if name]
        inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(self.consts[name].dtype),
                                                self.consts[name].shape) for name in names]
        outputs = [helper.make_tensor_value_info(name, 0, None) for name in node.output if name]
        graph = helper.make_graph([node], "fold", inputs, outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        try:
            results = ReferenceEvaluator(model).run(None, {name: self.consts[name] for name in names})
        except Exception as exc:   # noqa: BLE001
            raise OnnxImportError(f"{node_label(node)}: its inputs are constants, but folding it failed"
                                  f" ({type(exc).__name__}: {exc})".splitlines()[0]) from None
        results = iter(results)
        return [np.asarray(next(results)) if name else None for name in node.output]

    def shape(self, name: str) -> tuple[int, ...] | None:
        """The tensor's static shape (batched), or None where it is not known (an op that keeps its
        input's shape, where ONNX's inference stopped, keeps it here)."""
        if name in self.consts:
            return tuple(self.consts[name].shape)
        if name not in self.shapes and name in self.producers and self.producers[name].op_type in SAME_SHAPE:
            shape = self.shape(self.producers[name].input[0])
            if shape is not None:
                self.shapes[name] = shape
        return self.shapes.get(name)
