"""Max/average pooling (1d/2d/3d) with PyTorch's ceil_mode rule, and adaptive pooling.

convcalc adds ``padding: 'tf_same'`` to MaxPool/AvgPool: TensorFlow's SAME pooling (``tf.nn.max_pool`` /
``avg_pool`` with padding='SAME'): output ceil(i/s), total pad max((o-1)*s + k - i, 0) with the odd one at the
end (`shapes.tf_same_pads`, as for convs), and the padded cells are ignored: max pads with -inf, and the average
divides by the number of input cells in each window (``count_include_pad`` defaults to false there; true counts
the pads as zeros in a divisor of the full kernel size).

ONNX's pooling arguments that torch lacks (MaxPool/AveragePool/LpPool, opset 22; for an ONNX importer):

* ``padding: [[before, after], ...]``: explicit pads per axis (ONNX ``pads``), each from 0 to kernel_size - 1
  (onnxruntime's limit: "Pad should be smaller than kernel"), so beyond torch's kernel_size // 2. Max pads with -inf;
  the average counts them in its divisor with ``count_include_pad`` (never ceil_mode's overhang past the after pad,
  as torch); ceil_mode's last window must start before the after pad (torch's and ONNX's rule). Symmetric pairs
  within torch's limit give torch's int padding (AvgPool3d's torch-only input-size check is not made for pairs).
* ``dilation`` on AvgPool (ONNX AveragePool ``dilations``, opset 19+): dilated taps; the divisor counts the taps in
  the input (or in the padded input with count_include_pad). A window none of whose taps is in the input has no
  average without count_include_pad (ONNX's reference gives NaN, onnxruntime 0): refused.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels.pooling import window_counts
from ..kernels import (MacCounter, adaptive_argmax, adaptive_mean_transpose, adaptive_reduce, avg_divisor, pad_spatial,
                       pad_spatial_transpose, pool_pads_for_ceil, reduce_windows, scatter_add_planes, window_argmax,
                       windows_transpose)
from ..algebra import Field, Reads
from ..algebra.shapes import Pads, dilated, pool_length, prod, tf_same_pads
from .args import Arg, _as_int, _short, boolean, integer, optional, per_axis
from .base import LAYOUTS, Inferred, Layer, Shape, WindowAxis
from .channels import SAME, ChannelReads
from .registry import register
from .factors import Factors, bins_relation, window_relation
from .conv import axis_label, is_explicit


def explicit_pool_pads(value: list, dims: int, name: str) -> tuple[tuple[int, int], ...]:
    """``[[before, after], ...]``: one pair of pads >= 0 per spatial axis (ONNX's ``pads``)."""
    if len(value) != dims or not all(isinstance(v, list) and len(v) == 2 for v in value):
        raise LayerArgError(f"{name} as explicit pads must be a list of {dims} [before, after] pair"
                            f"{'s' if dims > 1 else ''} (one per spatial axis), got {_short(str(value))}", name)
    pairs = tuple((_as_int(lo, name), _as_int(hi, name)) for lo, hi in value)
    for pair in pairs:
        if min(pair) < 0:
            raise LayerArgError(f"{name} of a pool must be at least 0, got the pair {list(pair)}", name)
    return pairs


def pool_padding_arg(value: Any, dims: int, name: str) -> tuple[int, ...] | tuple[tuple[int, int], ...] | str:
    """Pooling ``padding``: an int or one int per spatial axis (PyTorch's), ``[[before, after], ...]`` (ONNX's
    pads), or 'tf_same' (TensorFlow's SAME)."""
    if isinstance(value, str):
        if value == "tf_same":
            return value
        # (wording pinned by tests/test_pool_tf_same.py; the [[before, after], ...] pairs are named in the doc)
        raise LayerArgError(f"{name} must be an integer, a list of {dims} integers or 'tf_same', got the string"
                            f" '{_short(value)}'", name)
    if isinstance(value, list) and any(isinstance(v, list) for v in value):
        return explicit_pool_pads(value, dims, name)
    return per_axis(0)(value, dims, name)


pool_padding_arg.json_schema = lambda dims: {"anyOf": [
    per_axis(0).json_schema(dims), {"enum": ["tf_same"]},
    {"type": "array", "minItems": dims, "maxItems": dims,
     "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 0}}}]}

POOL_PADDING = Arg(pool_padding_arg, 0, "int or per-axis list, at most half the kernel size (PyTorch's);"
                   " [[before, after], ...], each pad below kernel_size (ONNX's pads); or 'tf_same' (TensorFlow's"
                   " SAME: pads ignored by max and by the average's divisor)")


class PoolNd(Layer):
    """Shared rules of sliding-window pooling: stride defaults to the kernel size."""

    channelwise_support = True

    def validate(self) -> None:
        if self.stride is None:
            self.stride = self.kernel_size
        dilation = getattr(self, "dilation", (1,) * self.dims)
        self.dilation = dilation
        if self.padding == "tf_same":
            if self.ceil_mode:
                raise LayerArgError("ceil_mode does not apply with padding 'tf_same' (TensorFlow's SAME output is"
                                    " already ceil(input / stride))", "ceil_mode")
            return
        if is_explicit(self.padding):
            for axis, (k, pair) in enumerate(zip(self.kernel_size, self.padding)):
                if max(pair) >= k:
                    raise LayerArgError(
                        f"padding {list(pair)}{axis_label(self.dims, axis)}: explicit pads must be smaller than the"
                        f" kernel size {k} (ONNX runtimes' limit)", "padding")
            return
        for axis, (k, p) in enumerate(zip(self.kernel_size, self.padding)):
            if p > k // 2:
                raise LayerArgError(
                    f"padding {p}{axis_label(self.dims, axis)} is more than half the kernel size {k}"
                    f" (PyTorch allows at most {k // 2})", "padding")

    def pads(self, spatial: Sequence[int]) -> Pads:
        """(before, after) padding per axis: (p, p), or TensorFlow's SAME pads for this input size."""
        if self.padding == "tf_same":
            return tuple(tf_same_pads(i, k, s, d)
                         for i, k, s, d in zip(spatial, self.kernel_size, self.stride, self.dilation))
        if is_explicit(self.padding):
            return self.padding
        return tuple((p, p) for p in self.padding)

    def torch_form(self) -> bool:
        """Whether these are PyTorch's own arguments (int padding, no dilated average): its extra checks apply."""
        return (isinstance(self.padding, tuple) and not is_explicit(self.padding)
                and all(d == 1 for d in self.dilation))

    def window_pads(self, spatial: Sequence[int], out: Sequence[int]) -> list[tuple[int, int]]:
        """The (before, after) pads the executor applies so that every output window exists (ceil_mode's
        overhang past PyTorch's right pad included; TF SAME's pads already cover every window)."""
        if self.padding == "tf_same":
            return list(self.pads(spatial))
        return pool_pads_for_ceil(spatial, self.kernel_size, self.stride, self.dilation, self.pads(spatial), out)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        self.expect_rank(in_shape, (self.dims + 1,), LAYOUTS[self.dims])
        sizes = []
        for axis, (i, k, s, d, (lo, hi)) in enumerate(
                zip(in_shape[1:], self.kernel_size, self.stride, self.dilation, self.pads(in_shape[1:]))):
            o = pool_length(i, k, s, d, lo, hi, self.ceil_mode)
            if o < 1:
                dilation_text = f" with dilation {d}" if d > 1 else ""
                raise LayerArgError(
                    f"kernel_size {k}{dilation_text} spans {dilated(k, d)}, but the padded input is"
                    f" {i + lo + hi} wide{axis_label(self.dims, axis)}: the output would be empty", "kernel_size")
            sizes.append(o)
        return Inferred((in_shape[0], *sizes))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel pooled on its own."""
        return SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        return fields[0].through_window(self.kernel_size, self.stride, [lo for lo, _ in self.pads(in_shapes[0][1:])],
                                        out_shape[1:], self.dilation)

    def window_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[WindowAxis, ...]:
        rule = self.padding if isinstance(self.padding, str) else None
        return tuple(WindowAxis(k, s, d, lo, hi, rule) for k, s, d, (lo, hi) in
                     zip(self.kernel_size, self.stride, self.dilation, self.pads(in_shapes[0][1:])))

    def is_noop(self, in_shapes: Sequence[Shape], out_shape: Shape) -> str | None:
        geometry = self.window_geometry(in_shapes, out_shape)
        if all(axis.trivial for axis in geometry) and getattr(self, "divisor_override", None) in (None, 1):
            return "a 1-wide window with stride 1 and no padding returns its input"
        return None


    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Per channel; per spatial axis its window (the pads, ceil_mode's overhang included, read nothing)."""
        spatial, out = tuple(in_shapes[0][1:]), tuple(out_shape[1:])
        pads = self.window_pads(spatial, out)
        return [Factors((None, *(window_relation(n, o, k, s, d, lo, hi) for n, o, k, s, d, (lo, hi) in
                                 zip(spatial, out, self.kernel_size, self.stride, self.dilation, pads))))]


class MaxPoolNd(PoolNd):
    summary = "max over sliding windows; padding counts as -inf (torch.nn.MaxPoolNd; ONNX's [before, after] pads)"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        spatial = x.shape[1:-1]
        out = self.infer([(x.shape[-1], *spatial)]).out_shape[1:]
        pads = self.window_pads(spatial, out)
        return reduce_windows(x, pads, self.kernel_size, self.stride, self.dilation, out, np.maximum, -np.inf)

    def argmax_indices(self, x: np.ndarray) -> np.ndarray:
        """PyTorch's return_indices (per-plane flat index of each window's max), for a MaxUnpool naming this pool."""
        out = self.infer([(x.shape[-1], *x.shape[1:-1])]).out_shape[1:]
        before = [lo for lo, _ in self.pads(x.shape[1:-1])]
        return window_argmax(x, self.kernel_size, self.stride, self.dilation, before, out)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Each window's gradient goes to its argmax (PyTorch's: the first maximum in window order, the last NaN);
        overlapping windows with one argmax add up."""
        x = inputs[0]
        spatial = x.shape[1:-1]
        before = [lo for lo, _ in self.pads(spatial)]
        indices = window_argmax(x, self.kernel_size, self.stride, self.dilation, before, grad.shape[1:-1])
        return [scatter_add_planes(grad, indices, spatial)]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Any tap of a window can hold its maximum (which one depends on the data): each window's mark goes to
        every tap it reads, as a sum pool's gradient (col2im), the pads (which read nothing) then dropped."""
        spatial, out = inputs[0].shape[1:-1], mask.shape[1:-1]
        dims = len(spatial)
        pads = self.window_pads(spatial, out)
        taps = np.broadcast_to(mask[(slice(None),) * (1 + dims) + (None,) * dims],
                               (*mask.shape[:-1], *self.kernel_size, mask.shape[-1]))   # (N, *out, *k, C)
        padded = windows_transpose(taps, [i + lo + hi for i, (lo, hi) in zip(spatial, pads)], self.kernel_size,
                                   self.stride, self.dilation)
        found = pad_spatial_transpose(padded, spatial, pads)                         # counts >= 0, a new array
        return [np.minimum(found, 1, out=found)]
    arguments = {
        "kernel_size": Arg(per_axis(1)),
        "stride": Arg(optional(per_axis(1)), None, "defaults to kernel_size"),
        "padding": POOL_PADDING,
        "dilation": Arg(per_axis(1), 1),
        "return_indices": Arg(boolean, False),
        "ceil_mode": Arg(boolean, False),
    }


class AvgPoolNd(PoolNd):
    summary = "mean over sliding windows (torch.nn.AvgPoolNd; ONNX's [before, after] pads and dilation)"
    arguments = {
        "kernel_size": Arg(per_axis(1)),
        "stride": Arg(optional(per_axis(1)), None, "defaults to kernel_size"),
        "padding": POOL_PADDING,
        "ceil_mode": Arg(boolean, False),
        "count_include_pad": Arg(boolean, True, "count the pads in the divisor; with padding 'tf_same' the default"
                                 " is false (TensorFlow's average over the input cells)"),
        "divisor_override": Arg(optional(integer(1)), None, "divide by this instead of the window size"),
        "dilation": Arg(per_axis(1), 1, "convcalc's (ONNX AveragePool's dilations): spacing of the taps; the"
                        " divisor counts the taps"),
    }

    @classmethod
    def from_args(cls, raw: Mapping[str, Any]) -> "Layer":
        """PyTorch's default count_include_pad (true), except that 'tf_same' padding defaults to TensorFlow's false."""
        if raw.get("padding") == "tf_same" and "count_include_pad" not in raw:
            raw = {**raw, "count_include_pad": False}
        return super().from_args(raw)

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        spatial = x.shape[1:-1]
        out = self.infer([(x.shape[-1], *spatial)]).out_shape[1:]
        pads = self.window_pads(spatial, out)
        total = reduce_windows(x, pads, self.kernel_size, self.stride, self.dilation, out, np.add)
        return total / self.divisor(spatial, out, pads)[..., None].astype(x.dtype)

    def divisor(self, spatial: Sequence[int], out: Sequence[int], pads: Sequence[tuple[int, int]]) -> np.ndarray:
        """What each output position's window sum is divided by, (*out) float64: divisor_override, or PyTorch's
        count (semantics §3.4), or TF SAME's."""
        override = getattr(self, "divisor_override", None)
        if override:
            return np.full(tuple(out), float(override))
        if self.padding == "tf_same" and self.count_include_pad:
            # every TF SAME window lies inside the padded input (total pad = (o-1)*s + k - i): k cells each
            return np.full(tuple(out), prod(self.kernel_size), dtype=np.float64)
        return avg_divisor(spatial, self.kernel_size, self.stride, self.dilation, self.pads(spatial), out,
                           self.count_include_pad)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Each window's gradient / divisor added to every tap of the window (col2im), the pads then dropped."""
        x = inputs[0]
        spatial, out = x.shape[1:-1], grad.shape[1:-1]
        dims = len(spatial)
        pads = self.window_pads(spatial, out)
        share = grad / self.divisor(spatial, out, pads)[..., None].astype(grad.dtype)        # (N, *out, C)
        taps = np.broadcast_to(share[(slice(None),) * (1 + dims) + (None,) * dims],
                               (*share.shape[:-1], *self.kernel_size, share.shape[-1]))   # (N, *out, *k, C)
        padded = windows_transpose(taps, [i + lo + hi for i, (lo, hi) in zip(spatial, pads)], self.kernel_size,
                                   self.stride, self.dilation)
        return [pad_spatial_transpose(padded, spatial, pads)]

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        if self.dims == 3 and len(in_shape) == 4 and self.torch_form():
            # avg_pool3d alone (pool3d_shape_check with check_input_size) wants the UNpadded input
            # at least as large as the kernel on every axis, whatever the padding or ceil_mode
            # (TensorFlow's SAME pooling has no such rule).
            for axis, (i, k) in enumerate(zip(in_shape[1:], self.kernel_size)):
                if i < k:
                    raise LayerArgError(
                        f"AvgPool3d needs the input at least as large as kernel_size {k}"
                        f"{axis_label(self.dims, axis)}, got {i} (PyTorch checks this before padding)",
                        "kernel_size")
        inferred = super().infer(in_shapes)
        if not self.count_include_pad and not getattr(self, "divisor_override", None):
            self.check_windows_read_input(in_shape[1:], inferred.out_shape[1:])
        return inferred

    def check_windows_read_input(self, spatial: Sequence[int], out: Sequence[int]) -> None:
        """Without count_include_pad a window's divisor is its number of input taps: refuse a window with none
        (only dilated taps can all miss the input: ONNX's reference gives NaN there, onnxruntime 0)."""
        for axis, (i, k, s, d, (lo, hi), o) in enumerate(zip(spatial, self.kernel_size, self.stride, self.dilation,
                                                              self.pads(spatial), out)):
            counts = window_counts(i, k, s, d, lo, hi, o, False)
            if not counts.all():
                j = int(np.argmin(counts))
                raise LayerArgError(
                    f"output position {j}{axis_label(self.dims, axis)} averages no input cell: its taps"
                    f" {[j * s - lo + m * d for m in range(k)]} all fall in the padding (input 0..{i - 1}); the"
                    f" average of nothing is undefined without count_include_pad", "dilation")


def output_size_arg(value: Any, dims: int, name: str) -> tuple[int | None, ...]:
    """Adaptive ``output_size``: an int, or one int-or-null per spatial axis (null keeps the input size).

    PyTorch takes null entries only in 2-D and 3-D (``_list_with_default``); the 1-D pools pass
    ``output_size`` straight to ATen, which wants ints, and a bare null is refused in every dimension.
    """
    if value is None:
        raise LayerArgError(f"{name} must be an integer or a list of {dims} values, got null"
                            + (" (to keep an axis, give null as its entry in the list, e.g. [null, 7])"
                               if dims > 1 else ""),
                            name)
    values = value if isinstance(value, list) else [value] * dims
    if dims == 1 and None in values:
        raise LayerArgError(f"{name} of a 1-D adaptive pool must be an integer, got null"
                            " (null entries, which keep an axis, are accepted in 2-D and 3-D only)", name)
    if len(values) != dims:
        raise LayerArgError(f"{name} must be an integer or a list of {dims} values, got {len(values)} values", name)
    return tuple(None if v is None else integer(1)(v, dims, name) for v in values)


output_size_arg.json_schema = lambda dims: {"anyOf": [{"type": "integer", "minimum": 1}, {
    "type": "array", "minItems": dims, "maxItems": dims,
    "items": {"type": "integer", "minimum": 1} if dims == 1 else {"type": ["integer", "null"], "minimum": 1}}]}


class AdaptivePoolNd(Layer):
    """Pooling to a fixed output size; bin j covers [floor(j*I/O), ceil((j+1)*I/O))."""

    channelwise_support = True

    def targets(self, spatial: Sequence[int]) -> tuple[int, ...]:
        return tuple(i if o is None else o for i, o in zip(spatial, self.output_size))

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Per channel; per spatial axis the bins."""
        spatial = tuple(in_shapes[0][1:])
        return [Factors((None, *(bins_relation(n, o) for n, o in zip(spatial, self.targets(spatial)))))]

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        self.expect_rank(in_shape, (self.dims + 1,), LAYOUTS[self.dims])
        return Inferred((in_shape[0], *self.targets(in_shape[1:])))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel pooled on its own."""
        return SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        field = fields[0]
        spatial = in_shapes[0][1:]
        targets = self.targets(spatial)
        if field.whole or all(o == 1 for o in targets):
            return field.gathered()
        return field.through([Reads.bins(i, o) for i, o in zip(spatial, targets)], targets)


class AdaptiveAvgPoolNd(AdaptivePoolNd):
    summary = "mean over adaptive bins (torch.nn.AdaptiveAvgPoolNd)"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return adaptive_reduce(inputs[0], self.targets(inputs[0].shape[1:-1]), np.mean)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        result = adaptive_mean_transpose(grad, inputs[0].shape[1:-1])
        return [result.copy() if result is grad else result]
    arguments = {"output_size": Arg(output_size_arg, doc="int or per-axis list; in 2-D/3-D null keeps that axis")}


class AdaptiveMaxPoolNd(AdaptivePoolNd):
    summary = "max over adaptive bins (torch.nn.AdaptiveMaxPoolNd)"

    def forward(self, inputs: Sequence[np.ndarray], prepared: Any, counter: MacCounter) -> np.ndarray:
        return adaptive_reduce(inputs[0], self.targets(inputs[0].shape[1:-1]), np.max)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 prepared: Any) -> list[np.ndarray]:
        """Each bin's gradient goes to its argmax (ATen's: first maximum in row-major order, the last NaN)."""
        x = inputs[0]
        return [scatter_add_planes(grad, adaptive_argmax(x, grad.shape[1:-1]), x.shape[1:-1])]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Any tap of a bin can hold its maximum: each bin's mark goes to all its taps (as the mean's gradient)."""
        return [(adaptive_mean_transpose(mask, inputs[0].shape[1:-1]) != 0).astype(mask.dtype)]
    arguments = {
        "output_size": Arg(output_size_arg, doc="int or per-axis list; in 2-D/3-D null keeps that axis"),
        "return_indices": Arg(boolean, False),
    }


for _dims in (1, 2, 3):
    register(type(f"MaxPool{_dims}d", (MaxPoolNd,), {"type_name": f"MaxPool{_dims}d", "dims": _dims}))
    avg_arguments = dict(AvgPoolNd.arguments)
    if _dims == 1:
        del avg_arguments["divisor_override"]  # AvgPool1d has none in PyTorch
    register(type(f"AvgPool{_dims}d", (AvgPoolNd,),
                  {"type_name": f"AvgPool{_dims}d", "dims": _dims, "arguments": avg_arguments}))
    register(type(f"AdaptiveAvgPool{_dims}d", (AdaptiveAvgPoolNd,),
                  {"type_name": f"AdaptiveAvgPool{_dims}d", "dims": _dims}))
    register(type(f"AdaptiveMaxPool{_dims}d", (AdaptiveMaxPoolNd,),
                  {"type_name": f"AdaptiveMaxPool{_dims}d", "dims": _dims}))
