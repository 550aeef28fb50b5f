"""The layer unit contract: the `Layer` base class, `Elementwise`, and the records units return.

A layer type is one subclass of `Layer`. It declares its arguments (PyTorch's names and defaults, parsed by
`convcalc.layers.args`) in ``arguments`` and owns, in one place:

* ``validate()``            checks that need no input shape (groups divide out_channels, ...)
* ``infer(in_shapes)``      output shape, parameter and buffer shapes, MACs; raises where PyTorch would
* ``receptive_field(...)``  how it transforms the receptive field
* ``channel_reads(...)``    which input channels each output channel reads (default: all; `convcalc.layers.channels`)
* ``init_params(...)``      PyTorch's default initialisation of its parameters and buffers
* ``prepare(...)``          the parameters laid out for execution, once, at load time
* ``forward(...)``          its NumPy execution on channels-last arrays ``(N, *spatial, C)``

Shapes are channels first without the batch: ``(C, H, W)``. Errors are `LayerArgError`, which the
caller turns into a located `ShapeError`/`SpecError` naming the layer. Also owns the records (`Inferred`, `Part`,
`WindowAxis`, `ScatterAxis`), the shape and storage helpers and `fan_in_uniform`; the registry is
`convcalc.layers.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

from .._numpy import np

from ..errors import LayerArgError, did_you_mean
from ..algebra import Field, merge, pointwise
from ..kernels import MacCounter
from ..algebra.shapes import prod
from .args import REQUIRED, Arg
from .suggest import argument_hint, tuple_argument
from .factors import Factors, same
from .channels import SAME, ChannelReads

Shape = tuple[int, ...]
LAYOUTS = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Inferred:
    """What a layer does to shapes and what it costs, for one input shape."""

    out_shape: Shape
    params: Mapping[str, Shape] = field(default_factory=dict)
    buffers: Mapping[str, Shape] = field(default_factory=dict)
    macs: int = 0
    parts: tuple["Part", ...] = ()          # a composite's primitive parts (their params/MACs sum to the above)
    baseline: "Part | None" = None          # the standard layer a composite replaces, for comparison

    @property
    def param_count(self) -> int:
        return sum(prod(s) for s in self.params.values())

    @property
    def buffer_count(self) -> int:
        return sum(prod(s) for s in self.buffers.values())


@dataclass(frozen=True)
class Part:
    """One primitive unit inside a composite layer (see `convcalc.layers.composite`).

    Its parameters appear in the composite's as ``<part name>.<param>`` (so state_dict keys read
    ``<layer>.<part>.<param>``, as for a torch module with the part as a child). ``inputs`` name earlier
    parts, or ``input`` for the composite's input.
    """

    name: str
    type: str
    layer: "Layer"
    inputs: tuple[str, ...]
    inferred: Inferred


@dataclass(frozen=True)
class WindowAxis:
    """One spatial axis of a sliding-window layer (conv, pool): output unit u reads the input positions
    u*stride - pad_lo + m*dilation for m < kernel (pad_hi is the padding after the input). ``padding_rule`` names
    the word that chose the pads ('same', 'tf_same', ...), None when they were given as numbers."""

    kernel: int
    stride: int
    dilation: int
    pad_lo: int
    pad_hi: int
    padding_rule: str | None = None

    @property
    def k_eff(self) -> int:
        """Dilated extent: d*(k-1) + 1."""
        return self.dilation * (self.kernel - 1) + 1

    @property
    def trivial(self) -> bool:
        """A 1-wide window of stride 1 without padding: the axis passes through unchanged."""
        return self.k_eff == 1 and self.stride == 1 and self.pad_lo == 0 and self.pad_hi == 0


@dataclass(frozen=True)
class ScatterAxis:
    """One spatial axis of an upsampling layer that scatters each input unit j through a kernel (transposed
    convolution, unpooling): into output positions j*stride - padding + m*dilation, m < kernel."""

    kernel: int
    stride: int
    dilation: int = 1
    padding: int = 0


def shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


# --------------------------------------------------------------------------- the unit contract

_SCALARS = (int, float, str, type(None))


def _frozen(value: Any) -> bool:
    """Whether ``value`` is immutable all the way down (a scalar, or a tuple of such): a parsed default that every
    layer of a type may share."""
    kind = type(value)
    return kind in _SCALARS or kind is bool or kind is tuple and all(_frozen(v) for v in value)


class Layer:
    """Base of every layer type. Subclasses set the class attributes and override the rules."""

    type_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    dims: ClassVar[int | None] = None          # spatial dims fixed by the type (Conv2d: 2), else None
    arguments: ClassVar[dict[str, Arg]] = {}
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    # arguments that name an earlier layer (MaxUnpool's 'pool'): the graph resolves each name, hands that
    # layer's unit to `bind`, and appends that layer's inputs to this layer's inputs (so that this unit can
    # recompute from them what the named layer computed: the pool's argmax indices)
    references: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""

    def __init__(self, **args: Any):
        self.args = dict(args)
        for name, value in args.items():
            setattr(self, name, value)
        self.validate()

    @classmethod
    def from_args(cls, raw: Mapping[str, Any]) -> "Layer":
        """Parse and validate the spec's arguments (PyTorch names; defaults filled in)."""
        unknown = [name for name in raw if name not in cls.arguments]
        if unknown:
            name = unknown[0]
            broken = tuple_argument(name, raw)
            if broken is not None:          # {kernel_size: (3, 3)}: YAML's keys 'kernel_size: (3' and '3)'
                pair = f"{raw[broken].strip()[1:].strip()}, {str(name).strip()[:-1].strip()}"
                raise LayerArgError(f"{broken}: ({pair}) is not a list in YAML (inside {{...}} its comma even splits"
                                    f" it in two): write {broken}: [{pair}]", broken)
            hint = argument_hint(name, raw, cls.arguments)
            valid = did_you_mean(str(name), cls.arguments) if cls.arguments else "it takes no arguments"
            if hint is not None and hint.startswith("did you mean"):
                valid = f"{hint} valid: {', '.join(sorted(cls.arguments, key=str.lower))}"
            elif hint is not None:
                valid = f"{hint}; valid: {', '.join(sorted(cls.arguments, key=str.lower))}"
            raise LayerArgError(f"unknown argument '{name}' for {cls.type_name}; {valid}", name)
        parsed: dict[str, Any] = {}
        dims = cls.dims or 1
        defaults = cls.__dict__.get("_parsed_defaults")
        if defaults is None:                # per class (not inherited): name -> (its Arg, dims, the parsed default)
            defaults = {}
            type.__setattr__(cls, "_parsed_defaults", defaults)
        for name, spec in cls.arguments.items():
            if name in raw:
                parsed[name] = spec.parse(raw[name], dims, name)
            elif spec.default is REQUIRED:
                raise LayerArgError(f"{cls.type_name} needs '{name}'", None)
            else:
                known = defaults.get(name)
                if known is not None and known[0] is spec and known[1] == dims:
                    parsed[name] = known[2]
                else:
                    value = parsed[name] = spec.parse(spec.default, dims, name)
                    if _frozen(value):      # (a list or a dict would be shared by every layer: parsed each time)
                        defaults[name] = (spec, dims, value)
        return cls(**parsed)

    def validate(self) -> None:
        """Checks that need no input shape. Raise `LayerArgError`."""

    def bind(self, argument: str, layer: "Layer") -> None:
        """Receive the unit of the earlier layer that reference ``argument`` names; raise `LayerArgError` if it
        does not fit (see ``references``)."""
        raise NotImplementedError(f"{self.type_name} takes no layer references")

    def check_inputs(self, in_shapes: Sequence[Shape]) -> None:
        count = len(in_shapes)
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            if self.max_inputs == 1:
                wanted = "exactly one input"
            elif self.max_inputs is None:
                wanted = f"at least {self.min_inputs} inputs"
            else:
                wanted = f"{self.min_inputs} to {self.max_inputs} inputs"
            raise LayerArgError(f"{self.type_name} takes {wanted}, got {count}", "from")

    def expect_rank(self, shape: Shape, ranks: Sequence[int], layout: str) -> None:
        """Raise unless ``shape`` has one of ``ranks`` dimensions (batch excluded)."""
        if len(shape) not in ranks:
            raise LayerArgError(f"{self.type_name} expects a {layout} input, got {shape_text(shape)}", None)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        raise NotImplementedError

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Default: elementwise (one input) or a merge (several: per unit the union of what the inputs see)."""
        return fields[0] if len(fields) == 1 else merge(fields, out_shape[1:])

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Which input channels each output channel reads (`convcalc.layers.channels`), so that the receptive
        fields stay exact per channel segment (after a Concat of unequal branches, a slice of it sees its branch's
        field only). Default None: every output channel reads every channel of every input (a dense conv, a
        Linear, a norm over the channels): the output's channels share one field."""
        return None

    # a rule that reads `Field.layout` itself (Permute): it is given fields in any order of the dims
    layout_aware: ClassVar[bool] = False

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        """The batchless dims along which an output unit reads other input positions than its own (or whose length
        changes); along the others each unit reads its own position. None (the default): not declared, the
        receptive-field rule assumes the standard [C, *spatial] order."""
        return None

    def field_of(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """The receptive field of the output: `receptive_field` on fields in the standard [C, *spatial] order; on
        inputs in another order (after a Permute) the rule is not applied (it assumes channels first): along
        dims not mixed (`mixed_dims`) the field is kept, else only what the units reach together is claimed
        (`convcalc.algebra.field.pointwise`). The generic walks (analysis, composites) call this."""
        if self.layout_aware or (fields[0].layout is None if len(fields) == 1 else
                                 all(f.layout is None for f in fields)):
            return self.receptive_field(fields, in_shapes, out_shape)
        return pointwise(fields, in_shapes, out_shape, self.mixed_dims(in_shapes, out_shape))

    # ---- geometry capabilities (read by `convcalc lint`; the defaults say "none of this applies")
    def window_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[WindowAxis, ...] | None:
        """Per spatial axis, the sliding window this layer applies (conv, pool), or None if it is not one."""
        return None

    def upsampling_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[ScatterAxis, ...] | None:
        """Per spatial axis, how each input unit is scattered through a kernel (transposed conv, unpooling), or
        None. Resampling by interpolation is not a scatter (None)."""
        return None

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        """Why this layer, with these arguments, returns its input unchanged (a short phrase), else None."""
        return None

    # a layer that is a no-op by design (Identity, a placeholder): lint flags it only in a chain of no-ops
    noop_by_design: ClassVar[bool] = False

    # ---- execution. Arrays are channels-last: a [C, *S] tensor is stored (N, *S, C); a [F] one (N, F).
    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """PyTorch's default initialisation of the parameters and buffers (float64)."""
        if inferred.params or inferred.buffers:
            raise NotImplementedError(f"{self.type_name} does not say how to initialise its parameters")
        return {}

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> Any:
        """The parameters laid out for `forward` (done once, when the network is loaded)."""
        return {name: np.asarray(value, dtype=dtype) for name, value in params.items()}

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        raise NotImplementedError(f"{self.type_name} cannot be executed yet")

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Vector-Jacobian product: given grad = dL/d(output) (channels-last, same shape as output), return
        dL/d(input) for each input, channels-last, same shapes as `inputs`. `prepared` is what `prepare` returned."""
        raise NotImplementedError(f"{self.type_name} has no backward")

    # ---- dependency (which input positions each output unit can be influenced by; `convcalc.proof.dependency`)
    # A layer whose rule treats every channel alike with no per-channel parameters (pools, padding, resampling,
    # activations, merges) sets this: a mask that is the same on every channel is then propagated on one channel.
    channelwise_support: ClassVar[bool] = False

    def structural_params(self, inferred: Inferred) -> dict[str, np.ndarray]:
        """The structural instance's parameters and buffers, by name: biases and means 0 (and step counters),
        everything else 1 (weights, BatchNorm's variance: an identity normalisation). All-ones weights let
        nothing cancel, so the backward pass reaches exactly the inputs an output can depend on."""
        values = {}
        for name, shape in {**inferred.params, **inferred.buffers}.items():
            last = name.rsplit(".", 1)[-1]
            zero = last == "bias" or last.endswith("mean") or last == "num_batches_tracked"
            values[name] = (np.zeros if zero else np.ones)(shape)
        return values

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Dependency propagation: given a 0/1 ``mask`` over the output (channels-last), per input the 0/1 mask
        of the positions some marked output can be influenced by. The walk calls it on the structural instance:
        ``inputs`` all ones, ``output`` their forward, ``prepared`` from `structural_params`. Default: the
        backward pass there, thresholded (nothing cancels: every weight and input is positive). Override where a
        VJP drops a real dependency (a max routes to its argmax, a saturating activation has slope 0)."""
        return [(grad != 0).astype(mask.dtype) for grad in self.backward(inputs, output, mask, prepared)]

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """The dependency rule as a product of per-dim relations, per input (`convcalc.layers.factors`): what
        `support_backward` computes, stated per dim (the channels, then each spatial axis), so that the proof's walk
        steps small per-dim sets instead of whole masks. None: the rule is no such product (a reshape, a layer
        whose taps depend on the position along another dim); the walk then runs `support_backward`."""
        return None

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """The fast path of `support_backward` for a mask that is the same on every channel, given with one
        channel (its last axis 1): per input a mask, with one channel when it is again the same on every channel
        (else the input's). None: no fast path (the walk then spreads the mask over the channels). Default: for a
        ``channelwise_support`` layer on [C, *spatial] shapes, `support_backward` run on one channel, with
        ``output`` and ``prepared`` None."""
        if not self.channelwise_support or any(len(s) < 2 for s in (*in_shapes, out_shape)):
            return None
        inputs = [np.broadcast_to(np.ones((), dtype=mask.dtype), (mask.shape[0], *s[1:], 1)) for s in in_shapes]
        return self.support_backward(inputs, None, mask, None)


class Elementwise(Layer):
    """A layer that keeps the shape and touches each element independently of its neighbours."""

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        return ()

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        return Inferred(tuple(in_shapes[0]))

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return self.apply(inputs[0], prepared)

    def apply(self, x: np.ndarray, prepared: Any) -> np.ndarray:
        """The elementwise function itself."""
        raise NotImplementedError(f"{self.type_name} cannot be executed yet")

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        return [self.apply_backward(inputs[0], output, grad, prepared)]

    def apply_backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray, prepared: Any) -> np.ndarray:
        """dL/dx from grad = dL/dy, element by element (y = apply(x)), as PyTorch's derivative formula for the
        function (its kinks and masks included)."""
        raise NotImplementedError(f"{self.type_name} has no backward")

    channelwise_support = True

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Each element reads the same element of its input."""
        return [same(len(in_shapes[0]))]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Each element depends on the same element of the input, whatever the slope there (ReLU6 and Hardtanh
        saturate, a ReLU's slope is 0 below 0: the VJP would drop a real dependency)."""
        return [mask.copy()]

    def forward_inplace(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        """`forward`, allowed to overwrite its input (the executor calls it when nothing else needs it)."""
        inplace = getattr(self, "apply_inplace", None)
        if inplace is None:
            return self.forward(inputs, prepared, counter)
        return inplace(inputs[0], prepared)


def storage_axis(axis: int, rank: int) -> int:
    """Index into a stored (channels-last, batch-first) array of batchless axis ``axis`` of a rank-``rank`` tensor."""
    return rank if axis == 0 else axis


def storage_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """The stored (channels-last) shape of a batchless PyTorch shape: (C, *S) -> (*S, C); (F,) stays."""
    return (*shape[1:], shape[0]) if len(shape) > 1 else tuple(shape)


def fan_in_uniform(rng: np.random.Generator, shapes: Mapping[str, Shape], fan_in: int) -> dict[str, np.ndarray]:
    """torch.nn.Conv*/Linear defaults: kaiming_uniform(a=sqrt(5)) and the bias rule both give U(±1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    return {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}


__all__ = [
    "LAYOUTS", "Elementwise", "Inferred", "Layer", "Part", "ScatterAxis", "Shape", "WindowAxis", "fan_in_uniform",
    "shape_text", "storage_axis", "storage_shape",
]
