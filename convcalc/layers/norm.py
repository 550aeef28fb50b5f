"""Normalisation layers that standardise each sample on its own: LayerNorm, torchvision's channels-first
LayerNorm2d, GroupNorm, InstanceNorm1d/2d/3d, and LocalResponseNorm (BatchNorm is in ``elementwise``).

Each follows torch 2.13 (torch.nn's classes; torchvision.models.convnext.LayerNorm2d): its argument names and
defaults, its parameter and buffer names and shapes, what it refuses, and its numbers. Shapes are channels first
without the batch; a rule that would normalise over the batch axis (which a batch-1 torch run does where a
``normalized_shape`` covers it, or where InstanceNorm reads a sample one rank short as unbatched) is refused:
convcalc analyses one sample. None counts MACs (FlopCounterMode counts none for these ops; convcalc counts the MACs
of convolutions and linear layers only).

Receptive fields say what a unit reads as BatchNorm with batch statistics and Softmax say it: a rule that reads
every position of every spatial axis (GroupNorm, InstanceNorm without running statistics, a LayerNorm over all of
them) is whole (`Field.gathered`); one that reads every position of some spatial axes only (a LayerNorm over the
last ones) reads those whole (`Reads.everything`) and keeps the others' windows; LocalResponseNorm reads a window
of channels at one position: spatially elementwise.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._numpy import np

from ..algebra import Field, Reads
from ..algebra.shapes import prod
from ..errors import LayerArgError
from ..kernels import MacCounter
from ..kernels.normalization import (channel_window_sums, local_response_norm, local_response_norm_backward,
                                     standardize, standardize_backward)
from .args import REQUIRED, Arg, _as_int, _integer_schema, _type_name, boolean, integer, optional, real
from .base import Inferred, Layer, Shape, shape_text, storage_axis
from .channels import SAME, ChannelReads, grouped, windows
from .registry import register
from .factors import EVERY, Factors, band_relation, groups_relation


def shape_argument(value: Any, dims: int, name: str) -> tuple[int, ...]:
    """A positive integer or a non-empty list of them (torch.nn.LayerNorm's ``normalized_shape``)."""
    if isinstance(value, list):
        if not value:
            raise LayerArgError(f"{name} must name at least one axis, got an empty list"
                                " (PyTorch: 'Expected normalized_shape to be at least 1-dimensional')", name)
        sizes = tuple(_as_int(v, name) for v in value)
    elif isinstance(value, int) and not isinstance(value, bool):
        sizes = (_as_int(value, name),)
    else:
        raise LayerArgError(f"{name} must be an integer or a list of integers, got {_type_name(value)}", name)
    for size in sizes:
        if size < 1:
            raise LayerArgError(f"{name} sizes must be positive, got {size}", name)
    return sizes


shape_argument.json_schema = lambda dims: {"anyOf": [_integer_schema(1), {
    "type": "array", "items": _integer_schema(1), "minItems": 1}]}


def _spread(mask: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """A 0/1 mask marked along ``axes`` wherever some position there is marked."""
    if not axes:
        return mask.copy()
    return np.broadcast_to(mask.max(axis=tuple(axes), keepdims=True), mask.shape).copy()


def _affine_params(shape: Shape, affine: bool, bias: bool) -> dict[str, Shape]:
    return ({"weight": shape, **({"bias": shape} if bias else {})}) if affine else {}


def _norm_init(inferred: Inferred) -> dict[str, np.ndarray]:
    """torch's reset_parameters: weight 1, bias 0; running mean 0, variance 1, no batch tracked."""
    values = {name: (np.ones if name == "weight" else np.zeros)(shape) for name, shape in inferred.params.items()}
    for name, shape in inferred.buffers.items():
        values[name] = (np.zeros(shape, dtype=np.int64) if name == "num_batches_tracked"
                        else (np.ones if name == "running_var" else np.zeros)(shape))
    return values


class Standardizing(Layer):
    """A layer that standardises each sample over some storage axes, then scales and shifts by its affine
    parameters (stored in the broadcasting layout `to_storage_param` gives). Subclasses say which axes
    (`storage_axes`) and which spatial axes that reads whole (`whole_axes`)."""

    channelwise_support = True

    def storage_axes(self, shape: Shape) -> tuple[int, ...]:
        """The axes of the stored array (batch first, channels last) the statistics run over."""
        raise NotImplementedError

    def whole_axes(self, shape: Shape) -> tuple[int, ...]:
        """The spatial axes (0-based, after the channels) every unit reads entirely."""
        raise NotImplementedError

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Every position of the dims the statistics run over (stored axis a is dim a, the last one dim 0), its
        own position along the others."""
        shape = tuple(in_shapes[0])
        rank = len(shape)
        spread = {0 if axis == rank else axis for axis in self.storage_axes(shape)}
        return [Factors(tuple(EVERY if d in spread else None for d in range(rank)))]

    def to_storage_param(self, value: np.ndarray, shape: Shape) -> np.ndarray:
        """A parameter in the layout that broadcasts against the stored array (batch axis left out)."""
        raise NotImplementedError

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        """The channels (counted whether read or not: a group or a position's channels) and the dims read whole."""
        return (0, *(axis + 1 for axis in self.whole_axes(tuple(in_shapes[0]))))

    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return _norm_init(inferred)

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        shape = tuple(in_shapes[0])
        return {name: self.to_storage_param(np.asarray(params[name], dtype=np.float64), shape).astype(dtype)
                for name in ("weight", "bias") if name in params}

    def grouped(self, x: np.ndarray, shape: Shape) -> np.ndarray:
        """The stored array as the statistics see it (GroupNorm splits the channels into groups)."""
        return x

    def forward(self, inputs: Sequence[np.ndarray], prepared: Mapping[str, Any], counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        shape = self.logical_shape(x)
        normalized, _ = standardize(self.grouped(x, shape), self.storage_axes(shape), self.eps)
        y = normalized.reshape(x.shape)
        if "weight" in prepared:
            y *= prepared["weight"]
        if "bias" in prepared:
            y += prepared["bias"]
        return y

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Mapping[str, Any]) -> list[np.ndarray]:
        """The weight scales the gradient, then the standardisation's VJP (`standardize_backward`)."""
        x = inputs[0]
        shape = self.logical_shape(x)
        axes = self.storage_axes(shape)
        normalized, inverse_std = standardize(self.grouped(x, shape), axes, self.eps)
        scaled = grad * prepared["weight"] if "weight" in prepared else grad
        return [standardize_backward(normalized, inverse_std, self.grouped(scaled, shape), axes).reshape(x.shape)]

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Every spatial axis read whole: whole (as BatchNorm with batch statistics). Some: those axes read
        entirely (a whole axis, stride 0, as Softmax along an axis), the others elementwise. None: elementwise."""
        field, shape = fields[0], tuple(in_shapes[0])
        whole = self.whole_axes(shape)
        spatial = shape[1:]
        if not whole or field.whole:
            return field
        if len(whole) == len(spatial) or len(field.axes) != len(spatial):
            return field.gathered()
        reads = [Reads.everything(n) if axis in whole else Reads.identity() for axis, n in enumerate(spatial)]
        return field.through(reads, spatial)

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Every position the statistics run over enters the mean and variance of each (the VJP cancels on the
        structural instance's constant input): a mark spreads over those axes. Called with one channel by the
        uniform fast path (a uniform mask stays uniform)."""
        shape = self.logical_shape(mask)
        grouped = self.grouped(mask, shape)
        return [_spread(grouped, self.storage_axes(shape)).reshape(mask.shape)]

    @staticmethod
    def logical_shape(stored: np.ndarray) -> Shape:
        """The batchless (channels-first) shape of a stored array."""
        return (stored.shape[-1], *stored.shape[1:-1]) if stored.ndim > 2 else tuple(stored.shape[1:])


@register
class LayerNorm(Standardizing):
    type_name = "LayerNorm"
    summary = "standardise over the last len(normalized_shape) axes, then weight and bias of that shape"
    arguments = {
        "normalized_shape": Arg(shape_argument, REQUIRED, "the trailing axes' sizes (an int: the last axis)"),
        "eps": Arg(real(), 1e-5),
        "elementwise_affine": Arg(boolean, True, "learn a weight (and bias) of normalized_shape"),
        "bias": Arg(boolean, True, "with elementwise_affine: learn the bias too"),
    }
    torch_layout = "input"      # the axes normalized_shape names, in the order of the (channels-first) input

    def trailing(self, shape: Shape) -> Shape:
        return tuple(shape)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        self.check_rank(shape)
        axes = self.trailing(shape)
        count = len(self.normalized_shape)
        if count > len(axes):
            raise LayerArgError(
                f"normalized_shape {shape_text(self.normalized_shape)} names {count} axes but the {self.torch_layout}"
                f" {shape_text(axes)} has {len(axes)} without the batch: it would normalise over the batch, and"
                " convcalc analyses one sample", "normalized_shape")
        if axes[len(axes) - count:] != self.normalized_shape:
            raise LayerArgError(
                f"normalized_shape {shape_text(self.normalized_shape)} must equal the last {count} ax"
                f"{'is' if count == 1 else 'es'} of the {self.torch_layout} {shape_text(axes)}", "normalized_shape")
        return Inferred(shape, _affine_params(self.normalized_shape, self.elementwise_affine, self.bias))

    def check_rank(self, shape: Shape) -> None:
        """Any rank."""

    def storage_axes(self, shape: Shape) -> tuple[int, ...]:
        rank = len(shape)
        return tuple(sorted(storage_axis(axis, rank) for axis in range(rank - len(self.normalized_shape), rank)))

    def whole_axes(self, shape: Shape) -> tuple[int, ...]:
        return tuple(axis - 1 for axis in range(max(1, len(shape) - len(self.normalized_shape)), len(shape)))

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        """The trailing dims normalized_shape names (ConvNeXt's channels after a Permute to [H, W, C])."""
        rank = len(in_shapes[0])
        return tuple(range(rank - len(self.normalized_shape), rank))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Over the channels (normalized_shape reaches dim 0): every channel reads them all; else each its own."""
        return None if 0 in self.mixed_dims(in_shapes, out_shape) else SAME

    def to_storage_param(self, value: np.ndarray, shape: Shape) -> np.ndarray:
        """(*normalized_shape) -> the input's trailing axes with 1 elsewhere, channels moved last."""
        full = value.reshape((1,) * (len(shape) - value.ndim) + value.shape)
        return np.moveaxis(full, 0, -1) if len(shape) > 1 else full


@register
class LayerNorm2d(LayerNorm):
    type_name = "LayerNorm2d"
    summary = ("torchvision's channels-first LayerNorm (ConvNeXt): per position over the channels of a [C, H, W]"
               " input (permute to [H, W, C], F.layer_norm, permute back)")
    arguments = {
        **LayerNorm.arguments,
        "normalized_shape": Arg(optional(shape_argument), None,
                                "the channels, inferred; a list names trailing axes of the permuted [H, W, C]"),
    }
    torch_layout = "permuted input [H, W, C]"

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        if self.normalized_shape is None:
            self.check_rank(tuple(in_shapes[0]))
            return Inferred(tuple(in_shapes[0]), _affine_params((in_shapes[0][0],), self.elementwise_affine,
                                                               self.bias))
        return super().infer(in_shapes)

    def check_rank(self, shape: Shape) -> None:
        # torchvision's forward permutes (0, 2, 3, 1): a 4-D tensor, [C, H, W] with the batch, and nothing else
        self.expect_rank(shape, (3,), "[C, H, W]")

    def count(self) -> int:
        return 1 if self.normalized_shape is None else len(self.normalized_shape)

    def mixed_dims(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[int, ...] | None:
        return Standardizing.mixed_dims(self, in_shapes, out_shape)

    def trailing(self, shape: Shape) -> Shape:
        return (*shape[1:], shape[0])

    def storage_axes(self, shape: Shape) -> tuple[int, ...]:
        return tuple(range(4 - self.count(), 4))          # the stored (N, H, W, C) is the permuted input

    def whole_axes(self, shape: Shape) -> tuple[int, ...]:
        return tuple(axis - 1 for axis in self.storage_axes(shape) if axis < 3)

    def to_storage_param(self, value: np.ndarray, shape: Shape) -> np.ndarray:
        return value


@register
class GroupNorm(Standardizing):
    type_name = "GroupNorm"
    summary = "standardise each group of C/num_groups channels over it and every position; per-channel affine"
    arguments = {
        "num_groups": Arg(integer(), REQUIRED, "groups the channels are split into (the channels divisible)"),
        "num_channels": Arg(optional(integer()), None, "channels; inferred from the graph"),
        "eps": Arg(real(), 1e-5),
        "affine": Arg(boolean, True),
        "bias": Arg(boolean, True, "with affine: learn the bias too (torch 2.13 keyword)"),
    }

    def validate(self) -> None:
        # torch.nn.GroupNorm's constructor, then F.group_norm's first check
        if self.num_groups == 0:
            raise LayerArgError("num_groups must be positive, got 0 (PyTorch: 'integer modulo by zero')", "num_groups")
        if self.num_channels is not None and self.num_channels % self.num_groups:
            raise LayerArgError(f"num_channels ({self.num_channels}) must be divisible by num_groups"
                                f" ({self.num_groups})", "num_channels")
        if self.num_channels is not None and self.affine and self.num_channels < 0:
            raise LayerArgError(f"num_channels must not be negative with affine weights, got {self.num_channels}",
                                "num_channels")
        if self.num_groups < 0:
            raise LayerArgError(f"num_groups must be positive, got {self.num_groups}", "num_groups")

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        channels = shape[0]
        if channels % self.num_groups:
            raise LayerArgError(f"the input's {channels} channels are not divisible by num_groups {self.num_groups};"
                                f" input {shape_text(shape)}", "num_groups")
        # Without affine weights, torch never uses num_channels past its constructor.
        if self.affine and self.num_channels is not None and self.num_channels != channels:
            raise LayerArgError(f"num_channels is {self.num_channels} but the input has {channels} channels;"
                                f" input {shape_text(shape)}", "num_channels")
        if channels // self.num_groups * prod(shape[1:]) == 1:
            raise LayerArgError(f"each group holds 1 value (input {shape_text(shape)}, {self.num_groups} groups):"
                                " PyTorch refuses that at batch 1 ('Expected more than 1 value per channel"
                                " when training'), and convcalc analyses one sample", "num_groups")
        return Inferred(shape, _affine_params((channels,), self.affine, self.bias))

    def grouped(self, x: np.ndarray, shape: Shape) -> np.ndarray:
        return x.reshape(*x.shape[:-1], self.num_groups, x.shape[-1] // self.num_groups)

    def storage_axes(self, shape: Shape) -> tuple[int, ...]:
        return (*range(1, len(shape)), len(shape) + 1)      # in the grouped view (N, *S, G, C/G)

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """The channels of a group read those of their group, every position."""
        shape = tuple(in_shapes[0])
        channels = groups_relation(shape[0], shape[0], self.num_groups)
        return [Factors((channels, *(EVERY,) * (len(shape) - 1)))]

    def whole_axes(self, shape: Shape) -> tuple[int, ...]:
        return tuple(range(len(shape) - 1))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel reads the channels of its group."""
        channels = in_shapes[0][0]
        return grouped(channels, channels, self.num_groups)

    def to_storage_param(self, value: np.ndarray, shape: Shape) -> np.ndarray:
        return value                                         # per channel: the last stored axis

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """A mask the same on every channel: spread over the positions; it stays the same on every channel."""
        if len(in_shapes[0]) < 2:
            return None
        return [_spread(mask, tuple(range(1, mask.ndim - 1)))]


class InstanceNormNd(Standardizing):
    summary = ("standardise each channel of each sample over its positions (running statistics at inference when"
               " track_running_stats); per-channel affine")
    arguments = {
        "num_features": Arg(optional(integer()), None, "channels; inferred from the graph"),
        "eps": Arg(real(), 1e-5),
        "momentum": Arg(optional(real()), 0.1, "training only"),
        "affine": Arg(boolean, False),
        "track_running_stats": Arg(boolean, False, "keep running statistics (buffers) and use them at inference"),
        "bias": Arg(boolean, True, "with affine: learn the bias too (torch 2.13 keyword)"),
    }
    rank = 0
    layout = ""


    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel standardised on its own."""
        return SAME

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        if len(shape) == self.rank - 1:
            raise LayerArgError(
                f"{self.type_name} expects a {self.layout} input, got {shape_text(shape)}; PyTorch would read it with"
                " the batch as one unbatched sample whose channels are the batch, and convcalc analyses one sample",
                None)
        self.expect_rank(shape, (self.rank,), self.layout)
        channels = shape[0]
        # Without affine weights or running statistics torch only warns that num_features does not match.
        if (self.affine or self.track_running_stats) and self.num_features is not None \
                and self.num_features != channels:
            raise LayerArgError(f"num_features is {self.num_features} but the input has {channels} channels;"
                                f" input {shape_text(shape)}", "num_features")
        if not self.track_running_stats and prod(shape[1:]) == 1:
            raise LayerArgError(f"instance statistics of 1 value per channel (input {shape_text(shape)}): PyTorch"
                                " refuses them ('Expected more than 1 spatial element when training')", None)
        buffers = ({"running_mean": (channels,), "running_var": (channels,), "num_batches_tracked": ()}
                   if self.track_running_stats else {})
        return Inferred(shape, _affine_params((channels,), self.affine, self.bias), buffers)

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        """With running statistics (used at inference, as torch's eval mode): y = x·scale + shift per channel."""
        if not self.track_running_stats:
            return super().prepare(params, in_shapes, out_shape, dtype)
        scale = 1.0 / np.sqrt(np.asarray(params["running_var"], dtype=np.float64) + self.eps)
        shift = -np.asarray(params["running_mean"], dtype=np.float64) * scale
        if "weight" in params:
            weight = np.asarray(params["weight"], dtype=np.float64)
            scale, shift = scale * weight, shift * weight
        if "bias" in params:
            shift = shift + np.asarray(params["bias"], dtype=np.float64)
        return {"scale": scale.astype(dtype), "shift": shift.astype(dtype)}

    def forward(self, inputs: Sequence[np.ndarray], prepared: Mapping[str, Any], counter: MacCounter) -> np.ndarray:
        if "scale" in prepared:
            return inputs[0] * prepared["scale"] + prepared["shift"]
        return super().forward(inputs, prepared, counter)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Mapping[str, Any]) -> list[np.ndarray]:
        if "scale" in prepared:
            return [grad * prepared["scale"]]
        return super().backward(inputs, output, grad, prepared)

    def storage_axes(self, shape: Shape) -> tuple[int, ...]:
        return () if self.track_running_stats else tuple(range(1, len(shape)))

    def whole_axes(self, shape: Shape) -> tuple[int, ...]:
        return () if self.track_running_stats else tuple(range(len(shape) - 1))

    def to_storage_param(self, value: np.ndarray, shape: Shape) -> np.ndarray:
        return value


for _dims, _layout in ((1, "[C, L]"), (2, "[C, H, W]"), (3, "[C, D, H, W]")):
    register(type(f"InstanceNorm{_dims}d", (InstanceNormNd,),
                  {"type_name": f"InstanceNorm{_dims}d", "rank": _dims + 1, "layout": _layout}))


@register
class LocalResponseNorm(Layer):
    type_name = "LocalResponseNorm"
    summary = "x / (k + alpha/size · Σ x² over size neighbouring channels, zero-padded)^beta (AlexNet)"
    arguments = {
        "size": Arg(integer(1), REQUIRED, "channels in the window: c − size//2 .. c + (size−1)//2"),
        "alpha": Arg(real(), 1e-4, "the scale of the sum of squares (divided by size)"),
        "beta": Arg(real(), 0.75, "the exponent of the divisor"),
        "k": Arg(real(), 1.0, "the additive constant of the divisor"),
    }
    channelwise_support = True

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        if len(shape) < 2:      # F.local_response_norm: 3-D or more with the batch
            raise LayerArgError(f"LocalResponseNorm expects a [C, *spatial] input (at least [C, L]), got"
                                f" {shape_text(shape)}", None)
        return Inferred(shape)

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return local_response_norm(inputs[0], self.size, self.alpha, self.beta, self.k)[0]

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        x = inputs[0]
        _, base, divisor = local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        return [local_response_norm_backward(x, grad, self.size, self.alpha, self.beta, base, divisor)]

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Output channel c reads channels c - size//2 .. c + (size-1)//2 (those that exist)."""
        channels = in_shapes[0][0]
        return windows(channels, channels, self.size, 1, self.size // 2)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """A window of channels at one position: spatially elementwise."""
        return fields[0]

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Output channel c reads channels c − size//2 .. c + (size−1)//2; every position its own."""
        shape = tuple(in_shapes[0])
        return [Factors((band_relation(shape[0], self.size // 2, (self.size - 1) // 2), *(None,) * (len(shape) - 1)))]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Output channel c reads channels c − size//2 .. c + (size−1)//2 (whatever alpha and beta: structural), so
        input channel j reaches outputs j − (size−1)//2 .. j + size//2. A uniform mask stays uniform."""
        reached = channel_window_sums(np.asarray(mask), (self.size - 1) // 2, self.size // 2)
        return [(reached != 0).astype(mask.dtype)]


__all__ = ["GroupNorm", "InstanceNormNd", "LayerNorm", "LayerNorm2d", "LocalResponseNorm", "Standardizing",
           "shape_argument"]
