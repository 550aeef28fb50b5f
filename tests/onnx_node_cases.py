"""ONNX's own conformance node tests for the conv family (issue 19), generated with the `onnx` package's generators.

The onnx wheel does not ship the node tests' data, but it ships their generators: each module of
``onnx/backend/test/case/node/`` (``conv.py``, ``maxpool.py``, ``resize.py``, ...) defines ``Base`` subclasses whose
``export*`` static methods build a node, compute its expected outputs with NumPy (or ONNX's reference ops) and hand
them to ``expect(node, inputs, outputs, name, **kwargs)``. The ``Base`` metaclass runs every ``export*`` method when
the class is created, after ``np.random.seed(0)`` (``onnx/backend/test/case/base.py``); ``expect`` then wraps the
node into a one-node model (opset: the ``opset_imports`` kwarg, else the op's latest ``since_version``) and a
``TestCase`` with ``rtol=1e-3, atol=1e-7`` (``onnx/backend/test/case/node/__init__.py``), the tolerance the backend
runner passes to ``np.testing.assert_allclose`` (``onnx/backend/test/runner/__init__.py``,
``assert_similar_outputs``).

`capture` does the same with ``expect`` replaced by a recorder, module by module (only the modules of `OPS`, not
all 190 of them): a module not yet imported is imported with the package's ``expect`` swapped, so its class
creation records; a module already imported has its ``export*`` methods called again, in definition order, each
after ``np.random.seed(0)``, with the module's ``expect`` swapped. Either way the cases are exactly ONNX's. The
function-expanded variants ONNX also derives (``*_expanded``: the op rewritten as a graph of other primitives) are
not node tests of these ops and are not generated.

`NodeCase.model` is the node as a model convcalc can import: its first input (the data) stays a graph input, every
other present input (weights, biases, pads, scales, sizes, indices, ...) becomes an initializer.

`NOT_EXPRESSIBLE` is the table of the captured cases convcalc cannot express, with the reason; the conformance test
asserts that the set of cases whose import raises convcalc's "not expressible" error equals this table exactly, and
README's "ONNX: import and export" coverage table is `coverage_markdown()` (a test compares them).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# op type -> the module of onnx/backend/test/case/node that generates its tests
OPS: dict[str, str] = {
    "Conv": "conv", "ConvTranspose": "convtranspose",
    "MaxPool": "maxpool", "AveragePool": "averagepool", "LpPool": "lppool",
    "GlobalAveragePool": "globalaveragepool", "GlobalMaxPool": "globalmaxpool", "MaxUnpool": "maxunpool",
    "Pad": "pad", "Resize": "resize", "Upsample": "upsample",
    "DepthToSpace": "depthtospace", "SpaceToDepth": "spacetodepth",
    "BatchNormalization": "batch_normalization", "LRN": "lrn", "InstanceNormalization": "instance_normalization",
    "LayerNormalization": "layernormalization", "GroupNormalization": "groupnormalization",
    "Relu": "relu", "LeakyRelu": "leakyrelu", "PRelu": "prelu", "Elu": "elu", "Selu": "selu",
    "Sigmoid": "sigmoid", "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish", "Tanh": "tanh",
    "Softplus": "softplus", "Mish": "mish", "Gelu": "gelu", "Softmax": "softmax", "LogSoftmax": "logsoftmax",
}

# ONNX's node-test tolerance (TestCase rtol/atol in onnx/backend/test/case/node/__init__.py's expect)
RTOL = 1e-3
ATOL = 1e-7


@dataclass
class NodeCase:
    """One captured ``expect(node, inputs, outputs, name, **kwargs)`` call."""

    name: str
    node: Any                                  # onnx.NodeProto
    inputs: list[np.ndarray]                   # the present inputs, in node.input order (empty names skipped)
    outputs: list[np.ndarray]                  # the present outputs
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def data(self) -> np.ndarray:
        return self.inputs[0]

    @property
    def dtype(self) -> str:
        """The precision convcalc runs the case in: float64 where ONNX's data is float64, else float32."""
        return "float64" if self.data.dtype == np.float64 else "float32"

    @property
    def opset(self) -> int:
        for opset in self.kwargs.get("opset_imports", ()):
            if opset.domain in ("", "ai.onnx"):
                return int(opset.version)
        import onnx
        return int(onnx.defs.get_schema(self.op_type, domain=self.node.domain).since_version)

    def model(self):
        """The node as a model: the data a graph input, every other present input an initializer."""
        import onnx
        from onnx import helper, numpy_helper

        names = [name for name in self.node.input if name]
        data_name = names[0]
        initializers = [numpy_helper.from_array(np.asarray(value), name)
                        for name, value in zip(names[1:], self.inputs[1:])]
        data = helper.make_tensor_value_info(data_name, helper.np_dtype_to_tensor_dtype(self.data.dtype),
                                             self.data.shape)
        outputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
                   for name, value in zip([n for n in self.node.output if n], self.outputs)]
        graph = helper.make_graph([self.node], self.name, [data], outputs, initializer=initializers)
        model = helper.make_model_gen_version(
            graph, producer_name="backend-test",
            opset_imports=[helper.make_operatorsetid("", self.opset)])
        onnx.checker.check_model(model)
        return model


def _exports(module) -> list:
    """The ``export*`` static methods of the module's ``Base`` subclasses, in the order the metaclass runs them."""
    from onnx.backend.test.case.base import Base

    found = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if issubclass(cls, Base) and cls is not Base and cls.__module__ == module.__name__:
            found.append(cls)
    found.sort(key=lambda cls: inspect.getsourcelines(cls)[1])
    return [getattr(cls, key) for cls in found for key in vars(cls) if key.startswith("export")]


def _capture_module(module_name: str, sink: list[NodeCase]) -> None:
    import onnx.backend.test.case.node as node_pkg

    def record(node, inputs, outputs, name, **kwargs):
        sink.append(NodeCase(name, copy.deepcopy(node),
                             [np.asarray(x) for x in inputs], [np.asarray(y) for y in outputs], dict(kwargs)))

    full = f"{node_pkg.__name__}.{module_name}"
    if full not in sys.modules:                      # class creation runs the exports: record them
        original = node_pkg.expect
        node_pkg.expect = record
        try:
            module = importlib.import_module(full)
        finally:
            node_pkg.expect = original
        module.expect = original
        return
    module = sys.modules[full]
    original = module.expect
    module.expect = record
    try:
        for export in _exports(module):
            np.random.seed(seed=0)
            export()
    finally:
        module.expect = original


@functools.lru_cache(maxsize=None)
def capture() -> tuple[NodeCase, ...]:
    """Every node test ONNX generates for the ops of `OPS`, in the generators' order (names unique)."""
    import warnings

    sink: list[NodeCase] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = np.random.get_state()
        try:
            for module_name in dict.fromkeys(OPS.values()):
                _capture_module(module_name, sink)
        finally:
            np.random.set_state(state)
    cases = tuple(case for case in sink if case.op_type in OPS)
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "duplicate node-test names"
    return cases


def fingerprint(node, arrays) -> str:
    """A digest of a node and its data (the conformance test compares the capture with onnx's collector)."""
    import hashlib

    digest = hashlib.sha256(node.SerializeToString(deterministic=True))
    for array in arrays:
        array = np.asarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def by_name() -> dict[str, NodeCase]:
    return {case.name: case for case in capture()}


# ============================================================================ what convcalc cannot express

# case name -> why convcalc cannot express it (the importer raises its one-line "not expressible" error).
# Kept exact by test_onnx_conformance.test_not_expressible_table_is_exact: a case may leave it only by passing.
NOT_EXPRESSIBLE: dict[str, str] = {
}


def coverage_markdown() -> str:
    """README's coverage table: per op, the conformance cases captured and passing, and each case convcalc cannot
    express with its reason."""
    cases = capture()
    lines = ["| ONNX op | conformance cases | pass | not expressible (case: reason) |", "|---|---|---|---|"]
    for op in OPS:
        own = [case.name for case in cases if case.op_type == op]
        refused = [name for name in own if name in NOT_EXPRESSIBLE]
        why = "; ".join(f"`{name[len('test_'):]}`: {NOT_EXPRESSIBLE[name]}" for name in refused) or ""
        lines.append(f"| {op} | {len(own)} | {len(own) - len(refused)} | {why} |")
    total = len(cases)
    lines.append(f"| **all** | **{total}** | **{total - len(NOT_EXPRESSIBLE)}** | **{len(NOT_EXPRESSIBLE)}** |")
    return "\n".join(lines)
