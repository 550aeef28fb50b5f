"""ConvTranspose1d / ConvTranspose2d / ConvTranspose3d: PyTorch's transposed convolution (semantics.md §3.3).

Per spatial axis, with input length ``i``, kernel ``k``, stride ``s``, padding ``p``, dilation ``d`` and
``output_padding`` ``op``: ``o = (i-1)*s - 2p + d*(k-1) + op + 1``. Input unit ``j`` scatters into output
positions ``j*s - p + m*d`` (``m < k``) of the full output (length ``(i-1)*s + d*(k-1) + 1``), which is then
cropped by ``p`` on the left; ``op`` adds positions at the end, and positions past the full output get the
bias only. ``output_size`` (torch's ``forward(input, output_size)``) picks ``op = output_size - min`` in
``[min, min + s - 1]``, ``min`` being the length with ``op = 0``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter, add_bias, bias_rows, conv_im2col, pad_spatial
from ..algebra import Field, Reads
from ..algebra.shapes import dilated, prod, transposed_length
from .args import Arg, boolean, choice, integer, optional, per_axis
from .base import Inferred, Layer, ScatterAxis, Shape, fan_in_uniform
from .channels import ChannelReads, grouped
from .registry import register
from .conv import ConvNd, axis_label


def transposed_reach(k: int, s: int, d: int) -> list[int | None]:
    """Per residue r = (o + p) mod s: how far apart (in input units) the first and last input unit feeding an
    output unit are, or None when no tap lands there (the unit gets the bias only).

    Output o receives input j = (o + p - m*d)/s for every tap m < k with s dividing o + p - m*d; the taps
    that do form an arithmetic progression, so the reach is (m_max - m_min)*d/s.
    """
    reach: list[int | None] = []
    for residue in range(s):
        taps = [m for m in range(k) if (residue - m * d) % s == 0]
        reach.append((taps[-1] - taps[0]) * d // s if taps else None)
    return reach


class ConvTransposeNd(Layer):
    """Shared rules of ConvTranspose1d/2d/3d."""

    summary = "transposed convolution (fractionally strided), torch.nn.ConvTransposeNd"
    arguments = {
        "in_channels": Arg(optional(integer(1)), None, "input channels; inferred from the graph"),
        "out_channels": Arg(integer(1), doc="output channels"),
        "kernel_size": Arg(per_axis(1), doc="kernel extent per spatial axis"),
        "stride": Arg(per_axis(1), 1),
        "padding": Arg(per_axis(0), 0, "cropped from both ends of the full output"),
        "output_padding": Arg(per_axis(0), 0, "added at the end; smaller than the stride or the dilation"),
        "groups": Arg(integer(1), 1),
        "bias": Arg(boolean, True),
        "dilation": Arg(per_axis(1), 1),
        "padding_mode": Arg(choice("zeros"), "zeros", "PyTorch supports only 'zeros' for transposed convs"),
        "output_size": Arg(optional(per_axis(1)), None,
                           "spatial output size instead of output_padding (torch's forward(output_size=...))"),
    }

    def validate(self) -> None:
        if self.out_channels % self.groups:
            raise LayerArgError(f"out_channels {self.out_channels} is not divisible by groups {self.groups}", "groups")
        if self.in_channels is not None and self.in_channels % self.groups:
            raise LayerArgError(f"in_channels {self.in_channels} is not divisible by groups {self.groups}", "groups")
        if self.output_size is not None:
            if any(self.output_padding):
                raise LayerArgError("give output_size or output_padding, not both (PyTorch ignores output_padding"
                                    " when output_size is given)", "output_size")
            return
        for axis, (op, s, d) in enumerate(zip(self.output_padding, self.stride, self.dilation)):
            if op >= s and op >= d:
                raise LayerArgError(f"output_padding {op}{axis_label(self.dims, axis)} must be smaller than either"
                                    f" the stride {s} or the dilation {d}", "output_padding")

    # ---- shape-dependent rules
    in_channels_of = ConvNd.in_channels_of   # the same channel and groups checks as the forward conv

    def output_paddings(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """The output_padding in effect: the argument, or output_size minus the smallest output length."""
        if self.output_size is None:
            return tuple(self.output_padding)
        paddings = []
        for axis, (i, k, s, d, p, wanted) in enumerate(
                zip(spatial, self.kernel_size, self.stride, self.dilation, self.padding, self.output_size)):
            smallest = transposed_length(i, k, s, d, p, 0)
            if not smallest <= wanted <= smallest + s - 1:
                raise LayerArgError(
                    f"output_size {wanted}{axis_label(self.dims, axis)} is not reachable: an input of {i} gives"
                    f" {smallest} to {smallest + s - 1} (output_padding 0 to {s - 1})", "output_size")
            paddings.append(wanted - smallest)
        return tuple(paddings)

    def out_spatial(self, spatial: Sequence[int]) -> tuple[int, ...]:
        sizes = []
        for axis, (i, k, s, d, p, op) in enumerate(zip(spatial, self.kernel_size, self.stride, self.dilation,
                                                       self.padding, self.output_paddings(spatial))):
            o = transposed_length(i, k, s, d, p, op)
            if o < 1:
                dilation_text = f"dilation {d} x " if d > 1 else ""
                raise LayerArgError(
                    f"the output would be {o} long{axis_label(self.dims, axis)}: (input {i} - 1) x stride {s}"
                    f" - 2 x padding {p} + {dilation_text}(kernel_size {k} - 1) + output_padding {op} + 1 = {o};"
                    f" it must be at least 1", "padding")
            sizes.append(o)
        return tuple(sizes)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        channels = self.in_channels_of(in_shape)
        spatial = in_shape[1:]
        out_shape = (self.out_channels, *self.out_spatial(spatial))
        per_group_out = self.out_channels // self.groups
        params = {"weight": (channels, per_group_out, *self.kernel_size)}
        if self.bias:
            params["bias"] = (self.out_channels,)
        # every input unit is multiplied by every weight of its group once: walk the INPUT positions
        macs = prod(spatial) * channels * per_group_out * prod(self.kernel_size)
        return Inferred(out_shape, params, {}, macs)

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each output channel reads the input channels of its group (every one for groups 1)."""
        return grouped(self.out_channels, in_shapes[0][0], self.groups)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        field = fields[0]
        if field.whole:
            return field
        if len(field.axes) != self.dims:
            return Field.whole_input()
        # output o reads the inputs (o + p - m*d)/s of the taps m that divide: uneven windows, period s
        return field.through([Reads.transposed(k, s, p, d) for k, s, d, p in
                              zip(self.kernel_size, self.stride, self.dilation, self.padding)], out_shape[1:])

    def upsampling_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[ScatterAxis, ...]:
        return tuple(ScatterAxis(k, s, d, p)
                     for k, s, d, p in zip(self.kernel_size, self.stride, self.dilation, self.padding))

    # ---- execution
    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """torch's reset_parameters: fan_in is computed from weight.size(1) * prod(k) = (C_out/g) * prod(k)."""
        weight = inferred.params["weight"]
        return fan_in_uniform(rng, inferred.params, prod(weight[1:]))

    def absorb_affine(self, params: Mapping[str, np.ndarray], scale: np.ndarray,
                      shift: np.ndarray) -> dict[str, np.ndarray]:
        """Fold a following per-channel map y*scale + shift into the weights: output channel g*(C_out/g) + j is
        weight[g*(C_in/g):(g+1)*(C_in/g), j]."""
        weight = np.asarray(params["weight"], dtype=np.float64)            # (C_in, C_out/g, *k)
        channels, per_group_out, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
        grouped = weight.reshape(self.groups, channels // self.groups, per_group_out, *kernel)
        factors = np.asarray(scale, dtype=np.float64).reshape(self.groups, 1, per_group_out, *[1] * len(kernel))
        out_channels = self.groups * per_group_out
        bias = np.asarray(params["bias"], dtype=np.float64) if "bias" in params else np.zeros(out_channels)
        return {"weight": (grouped * factors).reshape(weight.shape), "bias": bias * scale + shift}

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        """Weights as one (C_in/g, prod(k) * C_out/g) matrix per group, columns ordered (*kernel, channel)."""
        weight = np.asarray(params["weight"], dtype=np.float64)             # (C_in, C_out/g, *k)
        channels, per_group_out = weight.shape[:2]
        grouped = weight.reshape(self.groups, channels // self.groups, per_group_out, -1)   # (g, C/g, O/g, prod(k))
        columns = grouped.transpose(0, 1, 3, 2).reshape(self.groups, channels // self.groups, -1)
        return {"weights": np.ascontiguousarray(columns, dtype=dtype),      # (g, C/g, prod(k) * O/g)
                "out": tuple(out_shape[1:]),
                "bias": None if "bias" not in params else bias_rows(np.asarray(params["bias"], dtype=dtype),
                                                                    prod(out_shape[1:]))}

    def forward(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter) -> np.ndarray:
        """One GEMM per group over the input positions, then a scatter-add of every tap (col2im) and the crop."""
        x = inputs[0]                                                       # (N, *S, C)
        batch, spatial, channels = x.shape[0], x.shape[1:-1], x.shape[-1]
        weights, out = plan["weights"], plan["out"]
        groups, per_group_in = weights.shape[:2]
        taps = prod(self.kernel_size)
        per_group_out = weights.shape[2] // taps
        positions = batch * prod(spatial)
        if groups == 1:
            cols = counter.matmul(x.reshape(positions, channels), weights[0])  # (N*P, prod(k)*O)
        else:
            rows = x.reshape(positions, groups, per_group_in).transpose(1, 0, 2)   # (g, N*P, C/g)
            cols = counter.matmul(rows, weights)                                  # (g, N*P, prod(k)*O/g)
            cols = cols.reshape(groups, positions, taps, per_group_out).transpose(1, 2, 0, 3)  # (N*P, k, g, O/g)
        cols = cols.reshape(batch, *spatial, taps, groups * per_group_out)        # (N, *S, prod(k), O)

        # the full output (length (i-1)*s + k_eff), long enough to hold the cropped one (output_padding > p)
        full = [max((i - 1) * s + dilated(k, d), p + o) for i, k, s, d, p, o in
                zip(spatial, self.kernel_size, self.stride, self.dilation, self.padding, out)]
        y = np.zeros((batch, *full, groups * per_group_out), dtype=x.dtype)      # (N, *full, O)
        for tap, offsets in enumerate(np.ndindex(*self.kernel_size)):
            index = (slice(None), *(slice(m * d, m * d + (i - 1) * s + 1, s)
                                    for m, d, i, s in zip(offsets, self.dilation, spatial, self.stride)))
            y[index] += cols[..., tap, :]                                         # input j -> j*s + m*d
        crop = (slice(None), *(slice(p, p + o) for p, o in zip(self.padding, out)))
        y = np.ascontiguousarray(y[crop])                                        # (N, *out, O)
        if plan["bias"] is not None:
            add_bias(y, plan["bias"])
        return y

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 plan: dict[str, Any]) -> list[np.ndarray]:
        """dL/dx: the forward's crop undone (zeros around ``grad`` up to the full output), then the ordinary
        convolution of that with the same weights (input j reads full positions j*s + m*d): one GEMM per group."""
        x = inputs[0]                                                       # (N, *S, C)
        spatial = x.shape[1:-1]
        weights, out = plan["weights"], plan["out"]                         # (g, C/g, prod(k) * O/g)
        full = [max((i - 1) * s + dilated(k, d), p + o) for i, k, s, d, p, o in
                zip(spatial, self.kernel_size, self.stride, self.dilation, self.padding, out)]
        grad_full = pad_spatial(grad, [(p, f - p - o) for p, f, o in zip(self.padding, full, out)])   # (N, *full, O)
        columns = np.ascontiguousarray(weights.transpose(0, 2, 1))          # (g, prod(k) * O/g, C/g)
        return [conv_im2col(grad_full, columns, self.kernel_size, self.stride, self.dilation, spatial, MacCounter())]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """A mark the same on every output channel reaches every input channel alike, whatever the groups: this
        layer's own backward on one channel with an all-ones kernel."""
        spatial = tuple(in_shapes[0][1:])
        plan = {"weights": np.ones((1, 1, prod(self.kernel_size)), dtype=mask.dtype), "out": tuple(out_shape[1:]),
                "bias": None}
        x = np.broadcast_to(np.ones((), dtype=mask.dtype), (mask.shape[0], *spatial, 1))
        return [(grad != 0).astype(mask.dtype) for grad in self.backward([x], None, mask, plan)]


for _dims in (1, 2, 3):
    register(type(f"ConvTranspose{_dims}d", (ConvTransposeNd,), {"type_name": f"ConvTranspose{_dims}d", "dims": _dims}))
