"""Pooling across channels: Maxout, ChannelMaxPool, ChannelAvgPool.

* Maxout (Goodfellow et al. 2013, "Maxout Networks", arXiv:1302.4389 §2): the C channels split into C/k groups
  of k consecutive channels, each output channel the max of its group: ``out[j] = max_{m<k} in[j·k + m]``.
  C must be divisible by k (``pool_size``). Over the channels of a conv map it is the "maxout convolutional"
  unit; over the features of a [F] vector (after a Linear) the fully connected one.
* ChannelMaxPool / ChannelAvgPool: a 1-D pooling window sliding along the channel axis, ``kernel_size`` channels
  wide, ``stride`` channels apart (default: kernel_size): ``C_out = (C − k)//s + 1`` (the last channels that no
  whole window covers are dropped, as a pool drops the last positions). Maxout(k) is ChannelMaxPool(k, k) on a
  C divisible by k. Pooling over the outputs of separately parametrised convolutions (the seed's learned
  invariances) is Concat of the convs followed by Maxout (README, "Layer types").

The channel axis is dim 1 in torch (dim 0 without the batch); any rank >= 1 is accepted ([F], [C, L], [C, H, W],
...). Stored channels-last, the channel axis is always the last storage axis. Spatially each output reads only
its own position: the receptive field passes through unchanged. No parameters, 0 MACs (comparisons and sums).
Ties and NaN in the max: the first maximal channel of the window (a NaN counts as maximal) gets the gradient,
as torch's ``max(dim)`` and max pooling route it.
"""

from __future__ import annotations

from typing import Any, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter
from .args import REQUIRED, Arg, integer, optional
from .base import Inferred, Layer, Shape, shape_text
from .channels import ChannelReads, windows
from .factors import Factors, Taps
from .registry import register


def sliding_window_view(*args, **kwargs):
    """NumPy's ``stride_tricks.sliding_window_view``, looked up when called (NumPy is imported on first use)."""
    return np.lib.stride_tricks.sliding_window_view(*args, **kwargs)


class ChannelPool(Layer):
    """Shared rules: windows of ``window()`` = (k, s) channels along the channel axis (the last storage axis)."""

    reduce: str = "max"

    def window(self) -> tuple[int, int]:
        raise NotImplementedError

    def out_channels(self, channels: int) -> int:
        k, s = self.window()
        return (channels - k) // s + 1

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        if len(shape) < 1:
            raise LayerArgError(f"{self.type_name} expects an input with a channel axis, got {shape_text(shape)}",
                                None)
        self.check_channels(shape[0])
        return Inferred((self.out_channels(shape[0]), *shape[1:]))

    def check_channels(self, channels: int) -> None:
        k, _ = self.window()
        if k > channels:
            raise LayerArgError(f"kernel_size {k} is wider than the input's {channels} channels", "kernel_size")

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        return "a window of one channel with stride 1" if self.window() == (1, 1) else None

    # ---- execution: the windows as a strided view (N, *S, C_out, k)
    def _windows(self, x: np.ndarray) -> np.ndarray:
        k, s = self.window()
        count = self.out_channels(x.shape[-1])
        return sliding_window_view(x, k, axis=-1)[..., :(count - 1) * s + 1:s, :]

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        views = self._windows(inputs[0])
        if self.reduce == "max":
            return np.ascontiguousarray(views.max(axis=-1))
        return np.ascontiguousarray(views.sum(axis=-1) / self.window()[0])

    def _scatter(self, shape: tuple[int, ...], parts: Any, combine: Any, dtype: Any = "float64") -> np.ndarray:
        """An input-shaped array that takes, for each tap m of every window j, ``parts(m)`` at channel j·s + m."""
        k, s = self.window()
        result = np.zeros(shape, dtype=dtype)
        count = self.out_channels(shape[-1])
        for m in range(k):
            target = result[..., m:m + (count - 1) * s + 1:s]
            combine(target, parts(m), out=target)
        return result

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Max: each window's gradient to its first maximal channel (NaN counts as maximal); average: 1/k to each
        channel of the window. Overlapping windows add."""
        x = inputs[0]
        k = self.window()[0]
        if self.reduce == "max":
            chosen = np.argmax(self._windows(x), axis=-1)        # first maximum; np.argmax takes a NaN as maximal
            parts = lambda m: np.where(chosen == m, grad, 0)     # noqa: E731
        else:
            parts = lambda m: grad / k                           # noqa: E731
        return [self._scatter(x.shape, parts, np.add, grad.dtype)]

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Output channel c reads its window of channels."""
        kernel, stride = self.window()
        return windows(out_shape[0], in_shapes[0][0], kernel, stride)

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Output channel j reads the channels j*s .. j*s + k - 1; every position its own."""
        k, s = self.window()
        shape = tuple(in_shapes[0])
        taps = np.arange(out_shape[0])[:, None] * s + np.arange(k)[None, :]
        return [Factors((Taps(taps, shape[0]), *(None,) * (len(shape) - 1)))]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Every channel of a window a marked output reads (a max's VJP would keep only its argmax)."""
        shape = (*mask.shape[:-1], inputs[0].shape[-1])
        return [self._scatter(shape, lambda m: mask, np.maximum, mask.dtype)]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """A mark the same on every output channel reaches every channel some window covers: all of them (one
        channel kept) unless the stride skips channels or the last ones fit no window."""
        channels = in_shapes[0][0]
        covered = self._scatter((channels,), lambda m: 1.0, np.maximum)
        if covered.all():
            return [mask.copy()]
        return [mask * covered.astype(mask.dtype)]


@register
class Maxout(ChannelPool):
    type_name = "Maxout"
    summary = "max over groups of pool_size consecutive channels: C -> C/k (Goodfellow et al. 2013)"
    arguments = {"pool_size": Arg(integer(1), REQUIRED, "k: channels per group; the channels must be a multiple")}

    def window(self) -> tuple[int, int]:
        return self.pool_size, self.pool_size

    def check_channels(self, channels: int) -> None:
        if channels % self.pool_size:
            raise LayerArgError(f"Maxout with pool_size {self.pool_size} needs a channel count divisible by"
                                f" {self.pool_size}, but the input has {channels} channels", "pool_size")

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        return "pool_size 1" if self.pool_size == 1 else None


class ChannelWindowPool(ChannelPool):
    arguments = {
        "kernel_size": Arg(integer(1), REQUIRED, "the window's width in channels"),
        "stride": Arg(optional(integer(1)), None, "channels between windows; default kernel_size"),
    }

    def window(self) -> tuple[int, int]:
        return self.kernel_size, self.stride if self.stride is not None else self.kernel_size


@register
class ChannelMaxPool(ChannelWindowPool):
    type_name = "ChannelMaxPool"
    summary = "max over windows of kernel_size channels, stride apart: C -> (C − k)//s + 1"


@register
class ChannelAvgPool(ChannelWindowPool):
    type_name = "ChannelAvgPool"
    summary = "mean over windows of kernel_size channels, stride apart: C -> (C − k)//s + 1"
    reduce = "mean"
