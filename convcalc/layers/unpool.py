"""MaxUnpool1d/2d/3d: the partial inverse of a MaxPool, which the spec names (``pool: <layer name>``).

PyTorch's ``MaxUnpoolNd(x, indices, output_size)`` scatters each value of ``x`` to ``out_plane.flat[index]``
with the indices of ``MaxPoolNd(return_indices=True)``: per (n, c) plane, the row-major flat index of each
window's maximum in the POOL's input plane, read in the row-major layout of the UNPOOL's output plane
(semantics §3.6). Positions no index names are 0.

How convcalc wires it: ``pool`` is a reference argument (``Layer.references``). The graph hands this unit the
pool's unit (`bind`) and appends the pool's input to this layer's inputs, so the layer reads
``(x, pool input)``; its forward asks the pool for its argmax indices of that input (``argmax_indices``,
exactly ATen's, ties and NaN included) and scatters ``x`` with them. The executor knows nothing of this.

Shape rules (``_unpool_output_size`` in torch/nn/functional.py):

* ``x`` has the pool's output shape (torch: the indices' shape);
* default size ``(i-1)*s - 2p + k`` per axis from this layer's kernel_size/stride/padding; without a
  kernel_size they are the pool's (convcalc's convenience; with one, torch's defaults stride = kernel_size,
  padding = 0 apply);
* ``output_size`` (an int or one per axis) must lie strictly between ``default - s`` and ``default + s``;
* every index the pool can produce must fit the output plane: torch fails at run time ("Found an invalid max
  index") when one does not, depending on the data; convcalc refuses such shapes whatever the data (the
  largest index is that of the last in-bounds tap of the last windows, reached by increasing data);
* convcalc's convention: where the output plane's layout would put a pool's index at another position than
  the one it came from (an output width other than the pool's input width, for instance), PyTorch scatters the
  values to those other positions without a word; convcalc refuses, naming the output_size that fits.

Receptive field: a position may receive the value of each pool window that contains it, and which one it gets
depends on the pool's input too: the field is that of a transposed window (the k/s windows covering a position
on average, stride 1/s, centred; their hull for a dilated pool), through both ``x`` and the pool's input, merged. For a pool with k = s it is
one window: the field of nearest upsampling ("unpooling by copying", which is Upsample with mode 'nearest').
"""

from __future__ import annotations

from typing import Any, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter, pad_spatial
from ..algebra import Field, Reads, merge
from ..algebra.shapes import prod
from .args import REQUIRED, Arg, layer_name, optional, per_axis
from .base import Inferred, Layer, ScatterAxis, Shape, shape_text
from .channels import SAME, ChannelReads
from .registry import register
from .conv import axis_label, is_explicit


def unpool_size_arg(value: Any, dims: int, name: str) -> tuple[int, ...]:
    """``output_size``: an int (every spatial axis) or one int per spatial axis."""
    return per_axis()(value, dims, name)


unpool_size_arg.json_schema = per_axis().json_schema


BORDER_WINDOWS = 2 ** 26      # windows of one axis reaching past the pool's input, checked (in chunks) one by one
CHUNK = 2 ** 20


def window_reach(n: int, o: int, k: int, s: int, d: int, p: int) -> tuple[int, int, int, int | None]:
    """Over the o windows of a pool (kernel k, stride s, dilation d, padding p) on n inputs: the smallest and the
    largest input tap (0 when none), the largest first tap >= 0 (ATen's start, in range or not) and the largest
    start of a window with no tap in the input (None: every window has one). The windows whose taps all lie in
    the input run in order (their extremes are the first's and the last's); only the others, near the borders,
    are looked at, with NumPy in chunks."""
    first_inside = -(-p // s)                            # base = w*s - p >= 0 from here
    last_inside = (n - 1 - (k - 1) * d + p) // s         # base + (k-1)*d <= n - 1 up to here
    first_inside, last_inside = min(first_inside, o), min(last_inside, o - 1)
    low = high = most = None
    tapless = None
    border = [(0, first_inside), (max(last_inside + 1, first_inside), o)]
    if first_inside <= last_inside:
        low, high = first_inside * s - p, last_inside * s - p + (k - 1) * d
        most = last_inside * s - p
    if sum(b - a for a, b in border) > BORDER_WINDOWS:
        raise LayerArgError(f"the pool's {o:,} windows include more than {BORDER_WINDOWS:,} reaching past its"
                            f" input, too many to check where their maxima can fall", "pool")
    for a, b in border:
        for lo in range(a, b, CHUNK):
            w = np.arange(lo, min(lo + CHUNK, b), dtype=np.int64)
            base = w * s - p
            start = base + np.maximum(0, -(base // d)) * d     # ATen's first tap >= 0
            end = base + np.minimum(k - 1, (n - 1 - base) // d) * d
            taps = start <= end
            most = int(start.max()) if most is None else max(most, int(start.max()))
            if taps.any():
                low = int(start[taps].min()) if low is None else min(low, int(start[taps].min()))
                high = int(end[taps].max()) if high is None else max(high, int(end[taps].max()))
            if not taps.all():
                found = int(start[~taps].max())
                tapless = found if tapless is None else max(tapless, found)
    return low or 0, high or 0, most if most is not None else 0, tapless


class MaxUnpoolNd(Layer):
    summary = "scatter to the argmax positions of a named MaxPool; zeros elsewhere (torch.nn.MaxUnpoolNd)"
    references = ("pool",)
    min_inputs = max_inputs = 2
    arguments = {
        "kernel_size": Arg(optional(per_axis(1)), None, "for the default size; null: the pool's (with stride, padding)"),
        "stride": Arg(optional(per_axis(1)), None, "defaults to kernel_size (to the pool's without a kernel_size)"),
        "padding": Arg(optional(per_axis(0)), None, "defaults to 0 (to the pool's without a kernel_size)"),
        "output_size": Arg(optional(unpool_size_arg), None, "within (default - stride, default + stride)"),
        "pool": Arg(layer_name, REQUIRED, "the MaxPool layer whose argmax indices place the values"),
    }

    def validate(self) -> None:
        self.pool_layer: Layer | None = None

    def bind(self, argument: str, layer: Layer) -> None:
        if not callable(getattr(layer, "argmax_indices", None)) or layer.dims != self.dims:
            raise LayerArgError(f"pool must name a MaxPool{self.dims}d layer, got a {layer.type_name}", "pool")
        if layer.padding == "tf_same" or is_explicit(layer.padding):
            shown = "padding 'tf_same'" if layer.padding == "tf_same" else "[before, after] pads"
            raise LayerArgError(f"pool names a MaxPool with {shown}, which PyTorch's MaxUnpool cannot"
                                " invert (its sizes assume a symmetric integer padding)", "pool")
        self.pool_layer = layer

    def check_inputs(self, in_shapes: Sequence[Shape]) -> None:
        if len(in_shapes) != 2:
            raise LayerArgError(f"{self.type_name} takes one input ('from') besides the pool it names", "from")

    # ---- shape rules
    def windows(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(kernel_size, stride, padding) for the default output size."""
        pool = self.pool_layer
        if self.kernel_size is None:
            kernel = pool.kernel_size
            stride = self.stride if self.stride is not None else pool.stride
            padding = self.padding if self.padding is not None else pool.padding
        else:
            kernel = self.kernel_size
            stride = self.stride if self.stride is not None else kernel
            padding = self.padding if self.padding is not None else (0,) * self.dims
        return kernel, stride, padding

    def reach(self, spatial: Sequence[int], pooled: Sequence[int]) -> tuple[list[int], list[int], int]:
        """Per axis, the smallest and largest input coordinate a window's maximum can have, and the largest flat
        index the pool can produce (phantom indices of windows without an input tap included, as ATen)."""
        pool = self.pool_layer
        steps = [prod(spatial[axis + 1:]) for axis in range(len(spatial))]
        lows, highs, best_full, phantom = [], [], 0, []
        for n, o, k, s, d, p, step in zip(spatial, pooled, pool.kernel_size, pool.stride, pool.dilation,
                                          pool.padding, steps):
            low, high, most, tapless = window_reach(n, o, k, s, d, p)
            lows.append(low)
            highs.append(high)
            best_full += high * step
            phantom.append((tapless, most * step, step))
        largest = best_full
        for axis, (tapless, _, step) in enumerate(phantom):
            if tapless is not None:
                others = sum(free for other, (_, free, _) in enumerate(phantom) if other != axis)
                largest = max(largest, tapless * step + others)
        return lows, highs, largest

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        if self.pool_layer is None:
            raise LayerArgError(f"{self.type_name} has no pool bound (name it with 'pool' in a spec)", "pool")
        x_shape, pool_in = (tuple(s) for s in in_shapes)
        pooled = self.pool_layer.infer([pool_in]).out_shape
        if x_shape != tuple(pooled):
            raise LayerArgError(f"the input {shape_text(x_shape)} must have the shape of the pool's output"
                                f" {shape_text(pooled)} (its indices)", "from")
        kernel, stride, padding = self.windows()
        defaults = [(i - 1) * s - 2 * p + k for i, k, s, p in zip(x_shape[1:], kernel, stride, padding)]
        if self.output_size is None:
            sizes = defaults
        else:
            sizes = list(self.output_size)
            for axis, (o, default, s) in enumerate(zip(sizes, defaults, stride)):
                if not default - s < o < default + s:
                    raise LayerArgError(
                        f"output_size {o}{axis_label(self.dims, axis)} is out of range: PyTorch allows"
                        f" {default - s + 1} to {default + s - 1} (the default {default} ± stride {s}, exclusive)",
                        "output_size")
        for axis, o in enumerate(sizes):
            if o < 1:
                raise LayerArgError(f"the output would be {o} wide{axis_label(self.dims, axis)}"
                                    f" (kernel_size/stride/padding give a default of {defaults[axis]})",
                                    "output_size" if self.output_size is not None else "kernel_size")
        spatial = pool_in[1:]
        lows, highs, largest = self.reach(spatial, pooled[1:])
        plane = prod(sizes)
        fit = f"; output_size {list(spatial)} (the pool's input size) fits" if list(spatial) != sizes else ""
        if largest >= plane:
            raise LayerArgError(
                f"the pool can put a maximum at flat index {largest} of its {shape_text(spatial)} input plane, but"
                f" the output plane {shape_text(sizes)} has {plane} positions (PyTorch fails at run time with"
                f" 'Found an invalid max index' for such data){fit}", "output_size")
        if not self.same_positions(spatial, sizes, lows, highs):
            raise LayerArgError(
                f"the output plane {shape_text(sizes)} is laid out unlike the pool's input plane"
                f" {shape_text(spatial)}: PyTorch would scatter the values to other positions than the ones they"
                f" came from (convcalc refuses){fit}", "output_size")
        return Inferred((x_shape[0], *sizes))

    @staticmethod
    def same_positions(spatial: Sequence[int], sizes: Sequence[int], lows: Sequence[int],
                       highs: Sequence[int]) -> bool:
        """Whether every reachable position's flat index in the input plane names the same position in the
        output plane: coordinates fit, and sum c_j * (A_j - B_j) = 0 over the box of reachable coordinates
        (A, B the row-major steps of the two planes)."""
        if any(high >= size for high, size in zip(highs, sizes)):
            return False
        a = [prod(spatial[axis + 1:]) for axis in range(len(spatial))]
        b = [prod(sizes[axis + 1:]) for axis in range(len(sizes))]
        if any(high > low and x != y for low, high, x, y in zip(lows, highs, a, b)):
            return False
        return sum(low * (x - y) for low, x, y in zip(lows, a, b)) == 0

    # ---- receptive field
    def upsampling_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[ScatterAxis, ...] | None:
        """Each value goes to one position of its pool window (kernel k, stride s): a scatter through the window."""
        if self.pool_layer is None:
            return None
        kernel, stride, padding = self.windows()
        return tuple(ScatterAxis(k, s, 1, p if isinstance(p, int) else 0)
                     for k, s, p in zip(kernel, stride, padding))

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each channel unpooled on its own (its values and its pool's input channel)."""
        return SAME

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        """Position u can get the value of every pool window holding it (which one depends on the data): the
        windows v with u = v*s - pad_lo + m*d, a transposed conv's reads. The pool's input decides where the
        values go, so its field (through the pool) joins the values' field."""
        pool = self.pool_layer
        pooled = pool.infer([in_shapes[1]]).out_shape
        through_pool = pool.receptive_field([fields[1]], [in_shapes[1]], pooled)
        pads = pool.pads(in_shapes[1][1:]) if hasattr(pool, "pads") else [(p, p) for p in pool.padding]
        reads = [Reads.transposed(k, s, lo, d)
                 for k, s, d, (lo, _) in zip(pool.kernel_size, pool.stride, pool.dilation, pads)]
        lengths = out_shape[1:]
        return merge([fields[0].through(reads, lengths), through_pool.through(reads, lengths)], lengths)

    # ---- execution
    def prepare(self, params, in_shapes: Sequence[Shape], out_shape: Shape, dtype: np.dtype) -> tuple[int, ...]:
        return tuple(out_shape[1:])

    def forward(self, inputs: Sequence[np.ndarray], sizes: tuple[int, ...], counter: MacCounter) -> np.ndarray:
        x, pool_input = inputs                                        # (N, *pooled, C), (N, *S_in, C)
        indices = self.pool_layer.argmax_indices(pool_input)          # (N, *pooled, C), flat in the plane
        batch, channels = x.shape[0], x.shape[-1]
        out = np.zeros((batch, prod(sizes), channels), dtype=x.dtype)                 # (N, prod(out), C)
        np.put_along_axis(out, indices.reshape(batch, -1, channels), x.reshape(batch, -1, channels), axis=1)
        return out.reshape(batch, *sizes, channels)

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 sizes: tuple[int, ...]) -> list[np.ndarray]:
        """d/dx: grad gathered at each value's index (as torch's max_unpool backward: also for a value that a
        later one with the same index overwrote). d/d(pool input): 0, since it only chooses the indices."""
        x, pool_input = inputs
        indices = self.pool_layer.argmax_indices(pool_input)          # (N, *pooled, C)
        batch, channels = x.shape[0], x.shape[-1]
        taken = np.take_along_axis(grad.reshape(batch, -1, channels), indices.reshape(batch, -1, channels), axis=1)
        return [taken.reshape(x.shape), np.zeros_like(pool_input)]

    channelwise_support = True

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Which window's maximum lands where depends on the data: a marked position may receive the value of
        every pool window holding it (an in-bounds tap), and every tap of such a window decides whether it does.
        So: x's units whose window holds a mark (the pool's own max over the marks, at the positions of the
        pool's input plane, which infer checked the output plane shares), and the pool's input through those
        windows (the pool's own dependency rule)."""
        x, pool_input = inputs
        spatial = pool_input.shape[1:-1]
        plane = mask[(slice(None), *(slice(0, n) for n in spatial))]
        plane = pad_spatial(plane, [(0, n - m) for n, m in zip(spatial, plane.shape[1:-1])])
        windows = self.pool_layer.forward([plane], None, MacCounter())                  # (N, *pooled, C)
        marked = (windows > 0).astype(mask.dtype)
        through = self.pool_layer.support_backward([np.broadcast_to(np.ones((), mask.dtype), plane.shape)], None,
                                                   marked, None)[0]
        return [marked, through]


for _dims in (1, 2, 3):
    register(type(f"MaxUnpool{_dims}d", (MaxUnpoolNd,), {"type_name": f"MaxUnpool{_dims}d", "dims": _dims}))
