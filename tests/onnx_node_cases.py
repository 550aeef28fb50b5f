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

    def first_output(self) -> "NodeCase":
        """The same node with only its first output (ONNX's optional extra outputs, Mean/InvStdDev, argmax Indices,
        dropped): what a model that uses only the main result holds."""
        node = copy.deepcopy(self.node)
        del node.output[1:]
        return NodeCase(self.name, node, self.inputs, self.outputs[:1], self.kwargs)

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
    "test_maxpool_with_argmax_2d_precomputed_pads":
        "a second graph output, MaxPool's argmax Indices: a convcalc spec has one output (the first alone passes)",
    "test_maxpool_with_argmax_2d_precomputed_strides":
        "a second graph output, MaxPool's argmax Indices: a convcalc spec has one output (the first alone passes)",
    "test_maxunpool_export_without_output_shape":
        "the indices are a constant tensor, not a MaxPool's Indices output: convcalc's MaxUnpool scatters to a named "
        "MaxPool's argmax positions",
    "test_maxunpool_export_with_output_shape":
        "the indices are a constant tensor, not a MaxPool's Indices output: convcalc's MaxUnpool scatters to a named "
        "MaxPool's argmax positions",
    "test_resize_upsample_sizes_nearest":
        "nearest_mode round_prefer_floor (ONNX's default) with half_pixel, ties at these sizes: convcalc has nearest "
        "(asymmetric, floor) and nearest-exact (half_pixel, round_prefer_ceil)",
    "test_resize_downsample_sizes_nearest":
        "nearest_mode round_prefer_floor (ONNX's default) with half_pixel, ties at these sizes: convcalc has nearest "
        "(asymmetric, floor) and nearest-exact (half_pixel, round_prefer_ceil)",
    "test_resize_downsample_scales_linear_align_corners":
        "align_corners with scales whose length times scale is fractional: ONNX maps to that fractional length, "
        "torch's align_corners to the whole output length",
    "test_resize_downsample_scales_cubic_align_corners":
        "align_corners with scales whose length times scale is fractional: ONNX maps to that fractional length, "
        "torch's align_corners to the whole output length",
    "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside":
        "cubic_coeff_a -0.5 (and exclude_outside): convcalc's bicubic is torch's, A = -0.75",
    "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside":
        "cubic_coeff_a -0.5 (and exclude_outside): convcalc's bicubic is torch's, A = -0.75",
    "test_resize_upsample_scales_cubic_asymmetric":
        "cubic with coordinate_transformation_mode asymmetric: convcalc interpolates with half_pixel or align_corners",
    "test_resize_tf_crop_and_resize":
        "coordinate_transformation_mode tf_crop_and_resize (a roi): convcalc has no crop-and-resize layer",
    "test_resize_tf_crop_and_resize_extrapolation_value":
        "coordinate_transformation_mode tf_crop_and_resize (a roi): convcalc has no crop-and-resize layer",
    "test_resize_downsample_sizes_linear_pytorch_half_pixel":
        "pytorch_half_pixel to an output length 1: ONNX samples position 0, torch's half-pixel rule the middle",
    "test_resize_upsample_sizes_nearest_floor_align_corners":
        "nearest_mode floor with align_corners: convcalc has nearest (asymmetric, floor) and nearest-exact "
        "(half_pixel, round_prefer_ceil)",
    "test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric":
        "nearest_mode round_prefer_ceil with asymmetric: convcalc has nearest (asymmetric, floor) and nearest-exact "
        "(half_pixel, round_prefer_ceil)",
    "test_resize_upsample_sizes_nearest_ceil_half_pixel":
        "nearest_mode ceil with half_pixel: convcalc has nearest (asymmetric, floor) and nearest-exact (half_pixel, "
        "round_prefer_ceil)",
    "test_resize_downsample_scales_linear_antialias":
        "antialias 1 when downsampling: convcalc's Upsample has no antialiasing filter",
    "test_resize_downsample_sizes_linear_antialias":
        "antialias 1 when downsampling: convcalc's Upsample has no antialiasing filter",
    "test_resize_downsample_scales_cubic_antialias":
        "antialias 1 when downsampling: convcalc's Upsample has no antialiasing filter",
    "test_resize_downsample_sizes_cubic_antialias":
        "antialias 1 when downsampling: convcalc's Upsample has no antialiasing filter",
    "test_resize_upsample_sizes_nearest_axes_2_3":
        "nearest_mode round_prefer_floor (ONNX's default) with half_pixel, ties at these sizes: convcalc has nearest "
        "(asymmetric, floor) and nearest-exact (half_pixel, round_prefer_ceil)",
    "test_resize_upsample_sizes_nearest_axes_3_2":
        "nearest_mode round_prefer_floor (ONNX's default) with half_pixel, ties at these sizes: convcalc has nearest "
        "(asymmetric, floor) and nearest-exact (half_pixel, round_prefer_ceil)",
    "test_resize_tf_crop_and_resize_axes_2_3":
        "coordinate_transformation_mode tf_crop_and_resize (a roi): convcalc has no crop-and-resize layer",
    "test_resize_tf_crop_and_resize_axes_3_2":
        "coordinate_transformation_mode tf_crop_and_resize (a roi): convcalc has no crop-and-resize layer",
    "test_resize_upsample_sizes_nearest_not_larger":
        "keep_aspect_ratio_policy not_larger: convcalc's Upsample stretches to the sizes given",
    "test_resize_upsample_sizes_nearest_not_smaller":
        "keep_aspect_ratio_policy not_smaller: convcalc's Upsample stretches to the sizes given",
    "test_resize_downsample_sizes_nearest_not_larger":
        "keep_aspect_ratio_policy not_larger: convcalc's Upsample stretches to the sizes given",
    "test_resize_downsample_sizes_nearest_not_smaller":
        "keep_aspect_ratio_policy not_smaller: convcalc's Upsample stretches to the sizes given",
    "test_resize_downsample_scales_linear_half_pixel_symmetric":
        "coordinate_transformation_mode half_pixel_symmetric: convcalc interpolates with half_pixel or align_corners",
    "test_resize_upsample_scales_linear_half_pixel_symmetric":
        "coordinate_transformation_mode half_pixel_symmetric: convcalc interpolates with half_pixel or align_corners",
    "test_batchnorm_example_training_mode":
        "training_mode 1 (batch statistics, the updated running mean and variance as outputs): convcalc imports "
        "inference graphs",
    "test_batchnorm_epsilon_training_mode":
        "training_mode 1 (batch statistics, the updated running mean and variance as outputs): convcalc imports "
        "inference graphs",
    "test_layer_normalization_4d_axis0":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output; this axis is the batch's",
    "test_layer_normalization_4d_axis_negative_4":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output; this axis is the batch's",
    "test_layer_normalization_4d_axis1":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_4d_axis_negative_3":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_4d_axis2":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_4d_axis_negative_2":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_4d_axis3":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_4d_axis_negative_1":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_default_axis":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_2d_axis0":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output; this axis is the batch's",
    "test_layer_normalization_2d_axis_negative_2":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output; this axis is the batch's",
    "test_layer_normalization_2d_axis1":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_2d_axis_negative_1":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_3d_axis0_epsilon":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output; this axis is the batch's",
    "test_layer_normalization_3d_axis_negative_3_epsilon":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output; this axis is the batch's",
    "test_layer_normalization_3d_axis1_epsilon":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_3d_axis_negative_2_epsilon":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_3d_axis2_epsilon":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_layer_normalization_3d_axis_negative_1_epsilon":
        "ONNX's optional Mean and InvStdDev outputs as graph outputs: a spec has one output (Y alone passes)",
    "test_leakyrelu_example":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_prelu_example":
        "a slope of shape [3, 4, 5] (one per element): convcalc's PReLU has one slope or one per channel",
    "test_prelu_broadcast":
        "a slope of shape [5] (along the last axis): convcalc's PReLU has one slope or one per channel",
    "test_elu_example":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_selu_example":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_selu":
        "alpha 2, gamma 3: convcalc's SELU has the fixed constants 1.673263 and 1.050701",
    "test_sigmoid_example":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_hardsigmoid_example":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_hardsigmoid":
        "alpha 0.5, beta 0.6: convcalc's Hardsigmoid is relu6(x + 3)/6 (alpha 1/6, beta 1/2)",
    "test_hardsigmoid_default":
        "ONNX's default alpha 0.2, beta 0.5: convcalc's Hardsigmoid is relu6(x + 3)/6 (alpha 1/6, beta 1/2)",
    "test_tanh_example":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_softplus_example":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_mish":
        "a 1-D input of shape [10000]: convcalc needs [N, C, ...]",
    "test_gelu_tanh_1":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_gelu_default_1":
        "a 1-D input of shape [3]: convcalc needs [N, C, ...]",
    "test_softmax_axis_0":
        "axis 0 is the batch: convcalc's Softmax normalises within a sample",
    "test_logsoftmax_axis_0":
        "axis 0 is the batch: convcalc's LogSoftmax normalises within a sample",
}

# the first output alone (`NodeCase.first_output`) of the multi-output cases above, where convcalc still cannot
# express it; every other such variant must pass
FIRST_OUTPUT_NOT_EXPRESSIBLE: dict[str, str] = {
    "test_batchnorm_example_training_mode": "training_mode 1: batch statistics",
    "test_batchnorm_epsilon_training_mode": "training_mode 1: batch statistics",
    "test_layer_normalization_4d_axis0": "axis 0 normalises over the batch",
    "test_layer_normalization_4d_axis_negative_4": "axis -4 normalises over the batch",
    "test_layer_normalization_2d_axis0": "axis 0 normalises over the batch",
    "test_layer_normalization_2d_axis_negative_2": "axis -2 normalises over the batch",
    "test_layer_normalization_3d_axis0_epsilon": "axis 0 normalises over the batch",
    "test_layer_normalization_3d_axis_negative_3_epsilon": "axis -3 normalises over the batch",
}


def coverage_markdown() -> str:
    """README's coverage tables: per op, the conformance cases captured, those convcalc expresses (each must pass)
    and those it cannot; then each case it cannot express, grouped by op and reason."""
    cases = capture()
    lines = ["| ONNX op | conformance cases | expressible: pass | not expressible |", "|---|--:|--:|--:|"]
    for op in OPS:
        own = [case.name for case in cases if case.op_type == op]
        refused = [name for name in own if name in NOT_EXPRESSIBLE]
        lines.append(f"| {op} | {len(own)} | {len(own) - len(refused)} | {len(refused) or ''} |")
    total = len(cases)
    lines.append(f"| **all** | **{total}** | **{total - len(NOT_EXPRESSIBLE)}** | **{len(NOT_EXPRESSIBLE)}** |")
    groups: dict[tuple[str, str], list[str]] = {}
    for case in cases:
        if case.name in NOT_EXPRESSIBLE:
            groups.setdefault((case.op_type, NOT_EXPRESSIBLE[case.name]), []).append(case.name[len("test_"):])
    lines += ["", "| ONNX op | not expressible: why | conformance cases (`test_` left off) |", "|---|---|---|"]
    for (op, reason), names in groups.items():
        lines.append(f"| {op} | {reason} | " + ", ".join(f"`{name}`" for name in names) + " |")
    return "\n".join(lines)


def importer_ops() -> list[str]:
    """The ONNX ops the importer has a translation rule for (its registry, every rule module loaded)."""
    from convcalc.importers import onnx_translate
    for module in ("onnx_ops", "onnx_ops_norm", "onnx_ops_resize", "onnx_ops_tensor"):
        importlib.import_module(f"convcalc.importers.{module}")
    return sorted(onnx_translate.RULES)


def supported_ops_markdown() -> str:
    """README's line of the ops the importer translates."""
    ops = importer_ops()
    return f"Ops translated ({len(ops)}): " + ", ".join(f"`{op}`" for op in ops) + "."


def regenerate_readme(path=None) -> None:
    """Rewrite README's generated parts of "ONNX: import and export" (the ops line and the coverage tables) from
    this module and the importer: ``python tests/onnx_node_cases.py``."""
    import re
    from pathlib import Path

    path = Path(path or Path(__file__).resolve().parent.parent / "README.md")
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^Ops translated \(\d+\): .*$", lambda _: supported_ops_markdown(), text, count=1, flags=re.M)
    start = text.index("| ONNX op | conformance cases |")
    end = text.index("\n\n", text.index("| ONNX op | not expressible: why |"))
    path.write_text(text[:start] + coverage_markdown() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    regenerate_readme()
