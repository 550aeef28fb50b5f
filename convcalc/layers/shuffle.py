"""ChannelShuffle (ShuffleNet, Zhang et al. 2017, arXiv:1707.01083 §3.1): torch.nn.ChannelShuffle."""

from __future__ import annotations

from typing import Any, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter
from .args import Arg, integer
from .base import Inferred, Layer, Shape, shape_text
from .registry import register
from .factors import Factors, gather_relation
from .channels import ChannelReads, Gather


@register
class ChannelShuffle(Layer):
    """Reshape the channels to (g, C/g), transpose, flatten: out[j*g + k] = in[k*(C/g) + j] (semantics §6.1)."""

    type_name = "ChannelShuffle"
    summary = "channels (g, C/g) -> (C/g, g): mixes the groups of a grouped conv (torch.nn.ChannelShuffle)"
    arguments = {"groups": Arg(integer(1), doc="the g of the grouped conv before it")}

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Output channel j*g + k reads input channel k*(C/g) + j alone."""
        channels = in_shapes[0][0]
        per_group = channels // self.groups
        return Gather(tuple((c % self.groups) * per_group + c // self.groups for c in range(channels)))

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = in_shapes[0]
        if len(shape) < 2:
            # torch: "channel_shuffle expects input with > 2 dims" (batch included)
            raise LayerArgError(f"ChannelShuffle expects a [C, *spatial] input (at least one spatial axis),"
                                f" got {shape_text(shape)}", None)
        if shape[0] % self.groups:
            raise LayerArgError(f"the input's {shape[0]} channels are not divisible by groups {self.groups}",
                                "groups")
        return Inferred(tuple(shape))

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]                                                   # (N, *S, C)
        channels = x.shape[-1]
        split = x.reshape(*x.shape[:-1], self.groups, channels // self.groups)   # (N, *S, g, C/g)
        return np.ascontiguousarray(np.swapaxes(split, -1, -2)).reshape(x.shape)  # (N, *S, C/g, g) -> (N, *S, C)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """The inverse permutation: grad's channels (C/g, g) -> (g, C/g)."""
        channels = grad.shape[-1]
        split = grad.reshape(*grad.shape[:-1], channels // self.groups, self.groups)   # (N, *S, C/g, g)
        return [np.ascontiguousarray(np.swapaxes(split, -1, -2)).reshape(grad.shape)]  # (N, *S, g, C/g)

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Output channel j*g + k reads input channel k*(C/g) + j alone; every position its own."""
        channels = in_shapes[0][0]
        per_group = channels // self.groups
        source = (np.arange(channels) % self.groups) * per_group + np.arange(channels) // self.groups
        return [Factors((gather_relation(channels, source), *(None,) * (len(in_shapes[0]) - 1)))]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """A permutation of the channels: a mark the same on every channel stays so."""
        return [mask.copy()]
