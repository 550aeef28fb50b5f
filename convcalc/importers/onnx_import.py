"""Import an ONNX model as a convcalc spec and its weights: ``import_onnx(model, partial=False) -> ImportedModel``.

    imported = import_onnx("resnet18.onnx")          # a path, the model's bytes or an onnx.ModelProto
    imported.spec_text                               # the YAML spec (header: source, opset, producer)
    imported.weights                                 # {"layer1.0.conv1.weight": array, ...}: the spec's state_dict
    imported.input_shape                             # (3, 224, 224): without the batch
    imported.graph()                                 # the convcalc Graph, as the spec loader builds it

Ops and attributes covered (ONNX's semantics, which differ from PyTorch's in places, are kept exactly; checked
against onnxruntime in tests/test_onnx_import.py, and against ONNX's own node tests of the conv family):

* Conv (1-3-D; pads as [before, after] pairs, dilations, group, auto_pad: SAME_UPPER as ``padding: tf_same``,
  SAME_LOWER and VALID as the exact pads at the model's input size); ConvTranspose (pads, asymmetric ones by a
  crop after it, output_padding, output_shape, dilations, group, auto_pad SAME_UPPER/SAME_LOWER);
* MaxPool (dilations, ceil_mode, asymmetric pads and pads beyond kernel/2, auto_pad; its Indices output only into
  a MaxUnpool, row-major), AveragePool (count_include_pad default 0, dilations, ceil_mode), LpPool (|x|^p: ``abs:
  true``, p, pads, dilations); pool strides default 1; GlobalAveragePool, GlobalMaxPool, GlobalLpPool; MaxUnpool
  (output_shape); ReduceMean/ReduceMax over every spatial axis (keepdims 0 or 1) as global pooling;
* Pad (constant, reflect, edge, wrap; spatial axes only; opset 18's axes); Resize (scales or sizes, axes) and
  Upsample: nearest with asymmetric + floor (torch's 'nearest'), half_pixel/pytorch_half_pixel + round_prefer_ceil
  (torch's 'nearest-exact'; round_prefer_floor too where the model's sizes make no tie); linear and cubic (A =
  -0.75, exclude_outside 0) with half_pixel, pytorch_half_pixel or align_corners (with scales: where the output
  length in × scale is whole); DepthToSpace (DCR as ChannelShuffle + PixelShuffle, CRD as PixelShuffle),
  SpaceToDepth (PixelUnshuffle, + ChannelShuffle for DCR);
* BatchNormalization (inference), InstanceNormalization, LayerNormalization (any axis but the batch; Mean and
  InvStdDev unused), GroupNormalization (per-group scale of opset 18 or per-channel of opset 21), LRN (odd size);
* Relu, LeakyRelu, PRelu (one slope or one per channel), Elu, Celu, Selu (ONNX's default alpha/gamma), Sigmoid,
  HardSigmoid (alpha 1/6, beta 1/2), HardSwish, Tanh, Softplus, Mish, Gelu (none/tanh), Swish (alpha 1),
  ThresholdedRelu, Abs, Sqrt, Softmax/LogSoftmax (a channel or spatial axis; before opset 13 the axes after it
  must have length 1), Clip (ReLU, ReLU6, Hardtanh, Threshold), Dropout, Identity, Cast/CastLike to a float type
  (dropped); exporters' multi-node forms: x·sigmoid(x) → SiLU, x·tanh(softplus(x)) → Mish, x·(1 + erf(x/√2))·0.5
  → GELU, and GELU's tanh form;
* Gemm (transB, alpha and beta folded into the weights, no transA) and MatMul by a constant matrix (+ a constant
  Add folded as the bias) as Linear; Flatten (axis 1), Reshape and Squeeze/Unsqueeze off the batch axis (Flatten or
  Reshape), Transpose keeping the batch first (Permute); a chain of Reshape/Transpose/Unsqueeze/Squeeze that
  moves the values as one ChannelShuffle, PixelShuffle or PixelUnshuffle does (ShuffleNet's Reshape → Transpose →
  Reshape, torch's six-node PixelUnshuffle) becomes that layer, and one that moves nothing none;
* Concat, Add/Sum/Mul of tensors (equal ranks, broadcasting), Add/Sub/Mul/Div by a constant as LearnableTensor
  (Sub and Div by negating or inverting the constant; constant − x as ×(−1) then +c; a per-channel Mul then Add
  stays two LearnableTensors, exact); Split (split input/attribute or num_outputs), Slice (step 1) and Gather of
  consecutive constant indices off the batch axis as Split and Narrow (a scalar index also drops the axis);
* convcalc's own exports: a layer the exporter tagged (metadata_props ``convcalc.layers``: partial, tiled and
  locally connected convs, Maxout, LRN of any size, LPPool, adaptive pools) is rebuilt whole from its tag and its
  initializers where its nodes are exactly the tagged ones (names and ops in order, reading only the tagged inputs
  and constants, read outside only at its output) and exactly what the exporter emits for that layer (ops,
  attributes, Constant values, wiring); otherwise (an edited model) node by node, as any model;
* constants: initializers and Constant nodes become weights; every node whose inputs are all constants is folded
  (Shape and Size of a tensor of known shape included), so shape subgraphs (Shape/Gather/Concat/Unsqueeze/
  ConstantOfShape/Cast) feeding a Reshape, ConstantOfShape-built weights and weight transforms vanish.

Not expressible (a one-line error naming the node, its op and attribute, and what convcalc lacks): ops outside the
list (Einsum, Exp, RNNs, control flow, ...), Gather of scattered indices, the batch axis moved, reshaped, padded or
sliced, Sub/Div of two computed tensors, a product of two computed tensors, asymmetric-mode linear/cubic resizes,
half_pixel_symmetric, other cubic_coeff_a, exclude_outside 1, antialiased downsampling, tf_crop_and_resize,
keep_aspect_ratio_policy, LRN of an even size (but convcalc's tagged one), HardSigmoid's other constants, a model
with more than one input or output or a symbolic input size. With ``partial=True`` the import stops before the first
such node: ``skipped`` lists that node's error and then the nodes left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec.build import build_graph
from ..spec.graph import Graph
from ..spec.load import parse_spec
from .onnx_emit import spec_text
from .onnx_graph import NEEDS_ONNX, OnnxImportError, OnnxModel, load_model, require_onnx
from .onnx_translate import Translator

__all__ = ["ImportedModel", "NEEDS_ONNX", "OnnxImportError", "import_onnx"]


@dataclass(frozen=True)
class ImportedModel:
    """An ONNX model as a convcalc spec: its YAML text, its weights keyed by the spec's state_dict keys, the
    input shape (without the batch) and, with ``partial``, the nodes that were not imported."""

    spec_text: str
    weights: dict[str, np.ndarray]
    input_shape: tuple[int, ...]
    skipped: list[str] = field(default_factory=list)
    source: str = "<onnx>"

    def graph(self) -> Graph:
        """The convcalc Graph of ``spec_text``, built as convcalc's own spec loader builds it."""
        return build_graph(parse_spec(self.spec_text, f"{self.source} (as imported)"))


def _source_name(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.path.basename(os.fspath(model))
    return "<onnx>"


def import_onnx(model: Any, *, partial: bool = False) -> ImportedModel:
    """Translate ``model`` (a path, bytes or an ``onnx.ModelProto``) into a spec and its weights.

    Raises `OnnxImportError` (a `ConvcalcError`) naming the first node convcalc cannot express, unless
    ``partial``: then the layers before it are kept and ``skipped`` names the nodes left out. Without the onnx
    package: a `ConvcalcError` saying how to install it."""
    require_onnx()
    proto = load_model(model)
    source = _source_name(model)
    onnx_model = OnnxModel(proto)
    translator = Translator(onnx_model, partial=partial)
    translator.run()
    if not translator.layers:
        first = translator.skipped[0] if translator.skipped else "the model"
        raise OnnxImportError(f"nothing to import: {first}")
    text, weights = spec_text(translator, source)
    return ImportedModel(text, weights, tuple(onnx_model.input_shape[1:]), list(translator.skipped), source)
