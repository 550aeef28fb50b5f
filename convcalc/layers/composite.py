"""Composite convolutions, built from the primitive units (never re-derived): each is a small graph of parts.

* DepthwiseSeparableConv1d/2d: depthwise k×k (channel multiplier M) [-> norm] [-> activation] -> pointwise 1×1
  (Sifre 2014; MobileNet, Howard et al. 2017, arXiv:1704.04861 §3.1; Xception, Chollet 2017).
* SpatiallySeparableConv2d: k_h×1 [-> norm] [-> activation] -> 1×k_w (Inception-v3 "asymmetric convolutions",
  Szegedy et al. 2016, arXiv:1512.00567 §3.2; semantics §6.5).
* FlattenedConv2d: lateral 1×1 -> vertical k_h×1 depthwise -> horizontal 1×k_w depthwise (Jin, Dundar &
  Culurciello 2014, arXiv:1412.5474; semantics §6.6).
* GatedConv2d: O = φ(W_f∗I) ⊙ σ(W_g∗I) (Yu et al. 2019, arXiv:1806.03589 §3.2; semantics §6.2).

A part's parameters appear as ``<part>.<param>`` (state_dict keys ``<layer>.depthwise.weight``, ...), its
MACs are counted by its own unit, and the composite's params/MACs/receptive field are the fold over its
parts. `Inferred.parts` exposes the parts (the table's ``--parts`` rows, the JSON's ``parts``) and
`Inferred.baseline` the standard convolution the composite replaces, for the cost comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .._numpy import np
from ..errors import LayerArgError
from ..kernels import MacCounter
from ..algebra import Field
from .args import Arg, _spelled, _type_name, boolean, choice, integer, optional
from .base import LAYOUTS, Inferred, Layer, Part, Shape, WindowAxis, shape_text
from .registry import lookup, register
from .support import support_step
from .factors import Factors, walked
from .conv import GEOMETRY_ARGUMENTS, PADDING_MODES

# the convs' own padding spellings: PyTorch's, plus convcalc's [[before, after], ...], 'full' and 'tf_same' where the
# conv unit has them; every part is a conv that takes the value as it is

INPUT = "input"


# --------------------------------------------------------------------------- a part given in the spec

@dataclass(frozen=True)
class PartSpec:
    """A part named in the spec: ``ReLU``, or ``{type: LeakyReLU, negative_slope: 0.2}``."""

    type_name: str
    args: tuple[tuple[str, Any], ...] = ()


def part_spec(value: Any, dims: int, name: str) -> PartSpec | None:
    """Parse a part argument (``norm``, ``activation``): a layer type name, a mapping with 'type', or null."""
    if value is None:
        return None
    if isinstance(value, PartSpec):
        return value
    if isinstance(value, str):
        type_name, args = value, {}
    elif isinstance(value, Mapping):
        if "type" not in value or not isinstance(value["type"], str):
            raise LayerArgError(f"{name} must name its layer type, e.g. {{type: LeakyReLU, negative_slope: 0.2}},"
                                f" got {_type_name(dict(value))}", name)
        type_name, args = value["type"], {k: v for k, v in value.items() if k != "type"}
    else:
        raise LayerArgError(f"{name} must be a layer type (e.g. ReLU), a mapping with 'type', or null,"
                            f" got {_type_name(value)}", name)
    try:
        cls = lookup(type_name)
        if cls.min_inputs > 1 or issubclass(cls, Composite):
            raise LayerArgError(f"{cls.type_name} cannot be a part here: it must take one input", None)
        cls.from_args(args)                                   # its own argument checks, now
    except LayerArgError as exc:
        raise LayerArgError(f"{name}: {exc.message}", name) from None
    return PartSpec(cls.type_name, tuple(args.items()))


part_spec.json_schema = lambda dims: {"anyOf": [{"type": "null"}, {"type": "string"}, {
    "type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}]}


# --------------------------------------------------------------------------- the composite machinery

class Composite(Layer):
    """A layer that is a small graph of primitive units (its parts).

    Subclasses implement `build(channels)`: the parts for an input with ``channels`` channels, as
    (name, layer, inputs) in order, the last one the output; and optionally `build_baseline(channels)`.
    """

    dims = 2
    neutral_channels_arg: str | None = None     # an argument whose value is a valid channel count (e.g. groups)

    # ---- building
    def validate(self) -> None:
        # build once now (with the given in_channels, or a count any argument set accepts), so that errors that
        # need no input shape are reported at parse time, where the spec's location is known
        if getattr(self, "padding", None) == "valid":
            self.padding = (0,) * self.dims
        self._walks: dict[Shape, tuple[Part, ...]] = {}
        self._template = self.build(self.in_channels or self._neutral_channels())

    def _neutral_channels(self) -> int:
        return getattr(self, self.neutral_channels_arg) if self.neutral_channels_arg else 1

    def build(self, channels: int) -> list[tuple[str, Layer, tuple[str, ...]]]:
        raise NotImplementedError

    def build_baseline(self, channels: int) -> Layer | None:
        """The standard layer this one replaces (same output shape), for the cost comparison."""
        return None

    def part(self, name: str, type_name: str, owner: str | None = None, **args: Any) -> Layer:
        """A primitive unit from spec-form arguments; its errors name the part (and ``owner``, the argument
        of this layer that configured it, if any)."""
        try:
            return lookup(type_name).from_args({k: _spelled(v) for k, v in args.items()})
        except LayerArgError as exc:
            raise self._part_error(name, type_name, exc, owner) from None

    def spec_part(self, name: str, spec: PartSpec) -> Layer:
        return self.part(name, spec.type_name, name, **dict(spec.args))

    def _part_error(self, name: str, type_name: str, exc: LayerArgError, owner: str | None = None) -> LayerArgError:
        arg = owner if owner is not None else (exc.arg if exc.arg in self.arguments else None)
        return LayerArgError(f"{name} ({type_name}): {exc.message}", arg)

    # ---- the walk over the parts, once per input shape
    def walk(self, in_shape: Shape) -> tuple[Part, ...]:
        if in_shape in self._walks:
            return self._walks[in_shape]
        self.expect_rank(in_shape, (self.dims + 1,), LAYOUTS[self.dims])
        channels = in_shape[0]
        if self.in_channels is not None and self.in_channels != channels:
            raise LayerArgError(f"in_channels is {self.in_channels} but the input has {channels} channels",
                                "in_channels")
        shapes: dict[str, Shape] = {INPUT: tuple(in_shape)}
        parts = []
        for name, layer, inputs in self.build(channels):
            try:
                inferred = layer.infer([shapes[i] for i in inputs])
            except LayerArgError as exc:
                raise self._part_error(name, layer.type_name, exc) from None
            if name in self.arguments and inferred.out_shape != shapes[inputs[0]]:   # norm, activation
                raise LayerArgError(f"{name} ({layer.type_name}) must keep the shape, but turns"
                                    f" {shape_text(shapes[inputs[0]])} into {shape_text(inferred.out_shape)}", name)
            shapes[name] = inferred.out_shape
            parts.append(Part(name, layer.type_name, layer, tuple(inputs), inferred))
        self._walks[in_shape] = tuple(parts)
        return self._walks[in_shape]

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        parts = self.walk(tuple(in_shapes[0]))
        params = {f"{p.name}.{k}": v for p in parts for k, v in p.inferred.params.items()}
        buffers = {f"{p.name}.{k}": v for p in parts for k, v in p.inferred.buffers.items()}
        baseline = None
        try:
            standard = self.build_baseline(in_shapes[0][0])
            if standard is not None:
                baseline = Part("standard", standard.type_name, standard, (INPUT,), standard.infer([in_shapes[0]]))
        except LayerArgError:
            baseline = None                          # no standard layer of this shape: nothing to compare with
        return Inferred(parts[-1].inferred.out_shape, params, buffers, sum(p.inferred.macs for p in parts),
                        parts, baseline)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        parts = self.walk(tuple(in_shapes[0]))
        shapes = {INPUT: tuple(in_shapes[0]), **{p.name: p.inferred.out_shape for p in parts}}
        known = {INPUT: fields[0]}
        for p in parts:
            known[p.name] = p.layer.field_of([known[i] for i in p.inputs], [shapes[i] for i in p.inputs],
                                             p.inferred.out_shape)
        return known[parts[-1].name]

    def window_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[WindowAxis, ...] | None:
        """The parts' sliding windows, axis by axis: on each axis at most one distinct non-trivial window (parallel
        parts with equal windows, as a gated conv's, count once; a spatially separable conv has one per axis);
        None when two different windows act on one axis."""
        parts = self.walk(tuple(in_shapes[0]))
        shapes = {INPUT: tuple(in_shapes[0]), **{p.name: p.inferred.out_shape for p in parts}}
        chosen: list[WindowAxis | None] = [None] * (len(in_shapes[0]) - 1)
        for p in parts:
            geometry = p.layer.window_geometry([shapes[i] for i in p.inputs], p.inferred.out_shape)
            for axis, window in enumerate(geometry or ()):
                if window.trivial or chosen[axis] == window:
                    continue
                if chosen[axis] is not None:
                    return None
                chosen[axis] = window
        return tuple(window or WindowAxis(1, 1, 1, 0, 0) for window in chosen)

    # ---- execution
    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        values = {}
        for p in inferred.parts:
            values.update({f"{p.name}.{k}": v for k, v in p.layer.init_params(p.inferred, rng).items()})
        return values

    @staticmethod
    def _split(params: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
        prefix = name + "."
        return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        """Each part prepared; a part that is an affine map at inference (a BatchNorm) folded into the part before
        it when that one can absorb it and nothing else reads it, as the executor does between layers."""
        parts = self.walk(tuple(in_shapes[0]))
        shapes = {INPUT: tuple(in_shapes[0]), **{p.name: p.inferred.out_shape for p in parts}}
        own = {p.name: self._split(params, p.name) for p in parts}
        readers: dict[str, int] = {}
        for p in parts:
            for i in p.inputs:
                readers[i] = readers.get(i, 0) + 1
        by_name = {p.name: p for p in parts}
        source = {INPUT: INPUT}                     # part -> the part whose array it is (folded parts share)
        for p in parts:
            source[p.name] = p.name
            producer = by_name.get(p.inputs[0])
            if (len(p.inputs) == 1 and producer is not None and hasattr(p.layer, "affine_of")
                    and hasattr(producer.layer, "absorb_affine") and readers.get(producer.name) == 1
                    and source[producer.name] == producer.name
                    and getattr(producer.layer, "can_absorb_affine", lambda shape: True)(producer.inferred.out_shape)):
                affine = p.layer.affine_of(own[p.name])
                if affine is not None:
                    own[producer.name] = producer.layer.absorb_affine(own[producer.name], *affine)
                    source[p.name] = producer.name
        steps = []
        for p in parts:
            inputs = tuple(source[i] for i in p.inputs)
            prepared = None if source[p.name] != p.name else p.layer.prepare(
                own[p.name], [shapes[i] for i in p.inputs], p.inferred.out_shape, dtype)
            steps.append((p, inputs, prepared))
        last_read = {}
        for index, (p, inputs, prepared) in enumerate(steps):
            if prepared is not None:
                for i in inputs:
                    last_read[i] = index
        return {"steps": steps, "last_read": last_read, "output": source[parts[-1].name]}

    def forward(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter) -> np.ndarray:
        values = {INPUT: inputs[0]}
        for index, (p, sources, prepared) in enumerate(plan["steps"]):
            if prepared is None:                    # folded into the part it reads
                continue
            forward = p.layer.forward
            inplace = getattr(p.layer, "forward_inplace", None)
            choose = getattr(p.layer, "inplace_input", None)       # the input it overwrites (a merge: any one)
            target = sources[choose([values[s].shape for s in sources]) if choose else 0]
            if inplace is not None and target != INPUT and plan["last_read"].get(target) == index:
                forward = inplace                    # an intermediate array nothing reads later
            values[p.name] = forward([values[s] for s in sources], prepared, counter)
        return values[plan["output"]]

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 plan: dict[str, Any]) -> list[np.ndarray]:
        """The chain rule over the parts: their forwards again (keeping every value, nothing in place), then
        each part's backward in reverse order, summing the gradients of a value read twice (Gated's input).
        A folded part shares its producer's array and prepared weights, so it is skipped in both passes."""
        values = {INPUT: inputs[0]}
        steps = [(p, sources, prepared) for p, sources, prepared in plan["steps"] if prepared is not None]
        for p, sources, prepared in steps:
            values[p.name] = p.layer.forward([values[s] for s in sources], prepared, MacCounter())
        grads: dict[str, np.ndarray] = {plan["output"]: grad}
        for p, sources, prepared in reversed(steps):
            g = grads.pop(p.name, None)
            if g is None:                           # nothing downstream reads it
                continue
            for source, part_grad in zip(sources, p.layer.backward([values[s] for s in sources], values[p.name],
                                                                    g, prepared)):
                grads[source] = part_grad if source not in grads else grads[source] + part_grad
        return [grads[INPUT] if INPUT in grads else np.zeros_like(inputs[0])]

    # ---- dependency: the parts' own rules, walked in reverse
    def _support(self, mask: np.ndarray, in_shape: Shape) -> np.ndarray:
        parts = self.walk(tuple(in_shape))
        shapes = {INPUT: tuple(in_shape), **{p.name: p.inferred.out_shape for p in parts}}
        masks = {parts[-1].name: mask}
        cache = self.__dict__.setdefault("_support_cache", {})
        for p in reversed(parts):
            found = masks.pop(p.name, None)
            if found is None:
                continue
            for source, got in zip(p.inputs, support_step(p.layer, found, [shapes[i] for i in p.inputs],
                                                          p.inferred.out_shape, cache)):
                masks[source] = got if source not in masks else np.maximum(masks[source], got)
        if INPUT in masks:
            return masks[INPUT]
        return np.zeros((mask.shape[0], *in_shape[1:], 1), dtype=mask.dtype)

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """The parts' factors chained along the walk, merged where parts meet (`layers.factors.walked`)."""
        return walked(self.walk(tuple(in_shapes[0])), tuple(in_shapes[0]), INPUT)

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Each part's own dependency rule (a gate's saturating sigmoid or an activation must not drop one)."""
        x = inputs[0]
        found = self._support(mask, (x.shape[-1], *x.shape[1:-1]))
        return [np.broadcast_to(found, x.shape).copy()]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        return [self._support(mask, tuple(in_shapes[0]))]

    # ---- a following BatchNorm folds into the output part, if that one can take it
    def _output_layer(self) -> Layer:
        return self._template[-1][1]

    def can_absorb_affine(self, out_shape: Shape) -> bool:
        layer = self._output_layer()
        check = getattr(layer, "can_absorb_affine", lambda shape: True)
        return hasattr(layer, "absorb_affine") and check(out_shape)

    def absorb_affine(self, params: Mapping[str, np.ndarray], scale: np.ndarray,
                      shift: np.ndarray) -> dict[str, np.ndarray]:
        name, layer = self._template[-1][0], self._output_layer()
        rest = {k: v for k, v in params.items() if not k.startswith(name + ".")}
        absorbed = layer.absorb_affine(self._split(params, name), scale, shift)
        return {**rest, **{f"{name}.{k}": v for k, v in absorbed.items()}}


def _conv_type(dims: int) -> str:
    return f"Conv{dims}d"


_COMMON = GEOMETRY_ARGUMENTS
_NORM = Arg(part_spec, None, "a layer between the parts, e.g. BatchNorm2d or {type: BatchNorm2d, eps: 0.001}")
_ACTIVATION = Arg(part_spec, None, "an activation between the parts, e.g. ReLU or {type: LeakyReLU, negative_slope: 0.2}")


def _between(layer: Composite, previous: str) -> tuple[list[tuple[str, Layer, tuple[str, ...]]], str]:
    """The optional norm and activation parts after ``previous``."""
    parts = []
    for name in ("norm", "activation"):
        spec = getattr(layer, name)
        if spec is not None:
            parts.append((name, layer.spec_part(name, spec), (previous,)))
            previous = name
    return parts, previous


# --------------------------------------------------------------------------- depthwise-separable

class DepthwiseSeparableConvNd(Composite):
    """depthwise (groups = C, C·M outputs) [-> norm] [-> activation] -> pointwise 1×1."""

    summary = "depthwise k×k (multiplier M) [→ norm → activation] → pointwise 1×1 (MobileNet, Xception)"
    arguments = {
        **_COMMON,
        "depth_multiplier": Arg(integer(1), 1, "depthwise outputs per input channel (M)"),
        "bias": Arg(boolean, True, "the pointwise conv's bias (Keras SeparableConv's single bias)"),
        "depthwise_bias": Arg(boolean, False, "a bias on the depthwise conv too"),
        "padding_mode": Arg(choice(*PADDING_MODES), "zeros", "the depthwise conv's padding mode"),
        "norm": _NORM,
        "activation": _ACTIVATION,
    }

    def build(self, channels: int) -> list[tuple[str, Layer, tuple[str, ...]]]:
        conv = _conv_type(self.dims)
        mid = channels * self.depth_multiplier
        parts = [("depthwise", self.part("depthwise", conv, in_channels=channels, out_channels=mid,
                                         kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                                         dilation=self.dilation, groups=channels, bias=self.depthwise_bias,
                                         padding_mode=self.padding_mode), (INPUT,))]
        between, previous = _between(self, "depthwise")
        parts += between
        parts.append(("pointwise", self.part("pointwise", conv, in_channels=mid, out_channels=self.out_channels,
                                             kernel_size=1, bias=self.bias), (previous,)))
        return parts

    def build_baseline(self, channels: int) -> Layer | None:
        return self.part("standard", _conv_type(self.dims), in_channels=channels, out_channels=self.out_channels,
                         kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                         dilation=self.dilation, bias=self.bias, padding_mode=self.padding_mode)


for _dims in (1, 2):
    register(type(f"DepthwiseSeparableConv{_dims}d", (DepthwiseSeparableConvNd,),
                  {"type_name": f"DepthwiseSeparableConv{_dims}d", "dims": _dims,
                   "aliases": (f"SeparableConv{_dims}d",)}))


# --------------------------------------------------------------------------- spatially separable / flattened

def _axis_args(layer: Composite, axis: int) -> dict[str, Any]:
    """kernel/stride/padding/dilation of the 1-D stage along ``axis`` (0: k_h×1, 1: 1×k_w); 1 (0) elsewhere."""
    def only(values: tuple[int, ...], rest: Any) -> list[Any]:
        return [v if a == axis else rest for a, v in enumerate(values)]
    if isinstance(layer.padding, str):          # 'same', 'full', 'tf_same': per stage, the 1-wide axis gets none
        padding = layer.padding
    elif isinstance(layer.padding[0], tuple):   # explicit [[before, after], ...]
        padding = only(layer.padding, (0, 0))
    else:
        padding = only(layer.padding, 0)
    return {"kernel_size": only(layer.kernel_size, 1), "stride": only(layer.stride, 1), "padding": padding,
            "dilation": only(layer.dilation, 1)}


@register
class SpatiallySeparableConv2d(Composite):
    """vertical k_h×1 (C -> C_m) [-> norm] [-> activation] -> horizontal 1×k_w (C_m -> C_out)."""

    type_name = "SpatiallySeparableConv2d"
    summary = "k_h×1 then 1×k_w conv (Inception-v3's asymmetric convolutions), beside the k_h×k_w it replaces"
    neutral_channels_arg = "groups"
    arguments = {
        **_COMMON,
        "mid_channels": Arg(optional(integer(1)), None, "channels between the two convs; default out_channels"),
        "groups": Arg(integer(1), 1),
        "bias": Arg(boolean, True, "a bias on both convs"),
        "padding_mode": Arg(choice(*PADDING_MODES), "zeros"),
        "norm": _NORM,
        "activation": _ACTIVATION,
    }

    def build(self, channels: int) -> list[tuple[str, Layer, tuple[str, ...]]]:
        mid = self.mid_channels or self.out_channels
        shared = {"groups": self.groups, "bias": self.bias, "padding_mode": self.padding_mode}
        parts = [("vertical", self.part("vertical", "Conv2d", in_channels=channels, out_channels=mid,
                                        **_axis_args(self, 0), **shared), (INPUT,))]
        between, previous = _between(self, "vertical")
        parts += between
        parts.append(("horizontal", self.part("horizontal", "Conv2d", in_channels=mid, out_channels=self.out_channels,
                                              **_axis_args(self, 1), **shared), (previous,)))
        return parts

    def build_baseline(self, channels: int) -> Layer | None:
        return self.part("standard", "Conv2d", in_channels=channels, out_channels=self.out_channels,
                         kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                         dilation=self.dilation, groups=self.groups, bias=self.bias, padding_mode=self.padding_mode)


@register
class FlattenedConv2d(Composite):
    """lateral 1×1 (C -> F) -> vertical k_h×1 depthwise -> horizontal 1×k_w depthwise; a bias after each."""

    type_name = "FlattenedConv2d"
    summary = "lateral 1×1 → vertical k×1 → horizontal 1×k depthwise (Jin et al. 2014), no nonlinearity inside"
    arguments = {
        **_COMMON,
        "bias": Arg(boolean, True, "a bias after each 1-D conv, as the paper"),
        "padding_mode": Arg(choice(*PADDING_MODES), "zeros"),
    }

    def build(self, channels: int) -> list[tuple[str, Layer, tuple[str, ...]]]:
        filters = self.out_channels
        depthwise = {"in_channels": filters, "out_channels": filters, "groups": filters, "bias": self.bias,
                     "padding_mode": self.padding_mode}
        return [
            ("lateral", self.part("lateral", "Conv2d", in_channels=channels, out_channels=filters, kernel_size=1,
                                  bias=self.bias), (INPUT,)),
            ("vertical", self.part("vertical", "Conv2d", **_axis_args(self, 0), **depthwise), ("lateral",)),
            ("horizontal", self.part("horizontal", "Conv2d", **_axis_args(self, 1), **depthwise), ("vertical",)),
        ]

    def build_baseline(self, channels: int) -> Layer | None:
        return self.part("standard", "Conv2d", in_channels=channels, out_channels=self.out_channels,
                         kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                         dilation=self.dilation, bias=self.bias, padding_mode=self.padding_mode)


# --------------------------------------------------------------------------- gated

class GatedConvNd(Composite):
    """feature conv -> φ, gate conv -> sigmoid, their product (1-D with φ = tanh: WaveNet's gated unit)."""

    summary = "φ(W_f∗I) ⊙ σ(W_g∗I): two convs, one gating the other (Yu et al. 2019, free-form inpainting)"
    neutral_channels_arg = "groups"
    arguments = {
        **_COMMON,
        "groups": Arg(integer(1), 1),
        "bias": Arg(boolean, True),
        "padding_mode": Arg(choice(*PADDING_MODES), "zeros"),
        "activation": Arg(part_spec, "ELU", "φ on the features (the official code's default ELU); null: none"),
    }

    def _conv_args(self, channels: int) -> dict[str, Any]:
        return {"in_channels": channels, "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups,
                "bias": self.bias, "padding_mode": self.padding_mode}

    def build(self, channels: int) -> list[tuple[str, Layer, tuple[str, ...]]]:
        conv = _conv_type(self.dims)
        parts = [("feature", self.part("feature", conv, **self._conv_args(channels)), (INPUT,)),
                 ("gate", self.part("gate", conv, **self._conv_args(channels)), (INPUT,))]
        features = "feature"
        if self.activation is not None:
            parts.append(("activation", self.spec_part("activation", self.activation), ("feature",)))
            features = "activation"
        parts.append(("sigmoid", self.part("sigmoid", "Sigmoid"), ("gate",)))
        parts.append(("product", self.part("product", "Multiply"), (features, "sigmoid")))
        return parts

    def build_baseline(self, channels: int) -> Layer | None:
        return self.part("standard", _conv_type(self.dims), **self._conv_args(channels))


for _dims in (1, 2):
    register(type(f"GatedConv{_dims}d", (GatedConvNd,), {"type_name": f"GatedConv{_dims}d", "dims": _dims}))
