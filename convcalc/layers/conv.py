"""Conv1d / Conv2d / Conv3d: PyTorch's cross-correlation with stride, padding, dilation and groups.

PyTorch's arguments keep PyTorch's rules (int / per-axis / 'valid' / 'same' padding, padding_mode). convcalc adds:

* ``padding: [[before, after], ...] | 'full' | 'tf_same'`` (`conv_padding_arg`): pads through F.pad(padding_mode),
  then a padding-0 conv. 'tf_same' is TensorFlow's SAME (stride-aware, depends on the input size, extra at the
  end); PyTorch's 'same' is stride-1 only and pads d(k-1) in total.
* ``flip_kernel: true``: a true convolution (the kernel flipped in every spatial axis, as scipy.signal.convolve),
  instead of the cross-correlation every DL framework computes; shapes, parameters and MACs are unchanged.
* ``algorithm: auto | direct | fft | winograd`` (the executor only): the FFT path (`kernels.conv_fft`) and
  Winograd's F(2, 3) (`kernels.conv_winograd`; 3-tap kernels, stride 1, dilation 1, groups 1) compute the same
  numbers up to rounding; 'auto' takes the algorithm measured fastest on this machine where the tuner
  (`convcalc.execution.tune`) chose one, else the cost model's (`conv_choice`: the FFT where `conv_costs` estimates
  it cheaper, Winograd where `winograd_pays`, then the GEMM algorithms by their rules). MACs stay the conv's (direct-equivalent)
  count in every path; the products a transform domain really ran are reported apart
  (`MacCounter.transform_macs`, `LayerRun.transform_macs`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import (MacCounter, add_bias, bias_rows, blas, conv_depthwise, conv_fft, conv_flat, conv_im2col,
                       conv_im2col_blocked, conv_im2col_t, conv_input_grad, conv_kn2row, conv_rows, conv_weight_columns,
                       conv_winograd, conv_winograd_split, fast_fft_length, fft_kernel_spectrum, kn2row_weights, pad_spatial,
                       pad_spatial_transpose, tap_block_columns, tap_blocks, windows, windows_transpose,
                       winograd_weights, with_ones_column)
from ..algebra import Field
from ..algebra.shapes import Pads, conv_length, dilated, full_pads, prod, same_pads, tf_same_pads
from .args import Arg, _as_int, _short, boolean, choice, integer, optional, per_axis
from .base import LAYOUTS, Inferred, Layer, Shape, WindowAxis, fan_in_uniform
from .channels import ChannelReads, grouped
from .registry import register
from .factors import Factors, groups_relation, window_relation
from .padding import pad_problem
from .conv_choice import (BIAS_IN_GEMM_MIN_EXPANSION, ROWS_MIN_POSITIONS, TRANSPOSED_PATCHES_MAX_RUN,  # noqa: F401
                          TRANSPOSED_PATCHES_MAX_RUN_STRIDED, ConvAlgorithms)
from .memory import conv_memory

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
ALGORITHMS = ("auto", "direct", "fft", "winograd")
def padding_arg(value: Any, dims: int, name: str) -> tuple[int, ...] | str:
    """``padding``: an int, one int per spatial axis, 'valid' or 'same' (PyTorch's spellings)."""
    if isinstance(value, str):
        if value in ("valid", "same"):
            return value
        raise LayerArgError(f"{name} must be an integer, a list of {dims} integers, 'valid' or 'same',"
                            f" got the string '{value}'", name)
    return per_axis()(value, dims, name)  # negative values: see ConvNd.validate


padding_arg.json_schema = lambda dims: {"anyOf": [per_axis().json_schema(dims), {"enum": ["valid", "same"]}]}

PADDING_WORDS = ("valid", "same", "full", "tf_same")


def conv_padding_arg(value: Any, dims: int, name: str) -> tuple[int, ...] | tuple[tuple[int, int], ...] | str:
    """Conv ``padding``: PyTorch's spellings (`padding_arg`), plus convcalc's own:

    * ``[[before, after], ...]``: explicit pads, one pair per spatial axis (negative values crop);
    * ``'full'``: d*(k-1) on each side (every partial overlap, any stride);
    * ``'tf_same'``: TensorFlow/Keras SAME, stride-aware and input-size dependent (semantics §4.1), NOT
      PyTorch's 'same' (which is stride-1 only and pads d*(k-1) in total).

    Each of these pads through F.pad(padding_mode) and then convolves with padding 0.
    """
    if isinstance(value, str):
        if value in PADDING_WORDS:
            return value
        keras = "; TensorFlow/Keras SAME is tf_same" if value.lower() == "same" else ""
        cased = f" (lower case: '{value.lower()}'{keras})" if value.lower() in PADDING_WORDS else ""
        raise LayerArgError(f"{name} must be an integer, a list of {dims} integers, a list of {dims} [before, after]"
                            f" pairs, 'valid', 'same', 'full' or 'tf_same', got the string '{_short(value)}'{cased}",
                            name)
    if isinstance(value, list) and any(isinstance(v, list) for v in value):
        if len(value) != dims or not all(isinstance(v, list) and len(v) == 2 for v in value):
            raise LayerArgError(f"{name} as explicit pads must be a list of {dims} [before, after] pair"
                                f"{'s' if dims > 1 else ''} (one per spatial axis), got {_short(str(value))}", name)
        return tuple((_as_int(lo, name), _as_int(hi, name)) for lo, hi in value)
    return padding_arg(value, dims, name)


conv_padding_arg.json_schema = lambda dims: {"anyOf": [
    per_axis().json_schema(dims), {"enum": list(PADDING_WORDS)},
    {"type": "array", "minItems": dims, "maxItems": dims,
     "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}}}]}


def is_explicit(padding: Any) -> bool:
    """True for explicit [[before, after], ...] pads (as parsed: a tuple of pairs)."""
    return isinstance(padding, tuple) and bool(padding) and isinstance(padding[0], tuple)


def axis_names(dims: int) -> tuple[str, ...]:
    return {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}[dims]


def axis_label(dims: int, axis: int) -> str:
    """'' in 1-D, else ' along the width' etc., for messages."""
    return "" if dims == 1 else f" along the {axis_names(dims)[axis]}"


class ConvNd(ConvAlgorithms, Layer):
    """Shared rules of Conv1d/2d/3d."""

    summary = "cross-correlation with stride, padding, dilation and groups (torch.nn.ConvNd)"
    memory_use = conv_memory     # the bytes the executor spends on it (`layers.memory`, by algorithm)
    arguments = {
        "in_channels": Arg(optional(integer(1)), None, "input channels; inferred from the graph"),
        "out_channels": Arg(integer(1), doc="output channels"),
        "kernel_size": Arg(per_axis(1), doc="kernel extent per spatial axis"),
        "stride": Arg(per_axis(1), 1),
        "padding": Arg(conv_padding_arg, 0, "int, per-axis list, 'valid', 'same' (stride 1 only); convcalc's own:"
                       " a (before, after) pair per axis, 'full' (d(k-1) each side), 'tf_same' (TensorFlow's SAME)"),
        "dilation": Arg(per_axis(1), 1),
        "groups": Arg(integer(1), 1),
        "bias": Arg(boolean, True),
        "padding_mode": Arg(choice(*PADDING_MODES), "zeros"),
        "flip_kernel": Arg(boolean, False, "convcalc: true convolution (kernel flipped in every spatial axis),"
                           " not PyTorch's cross-correlation"),
        "algorithm": Arg(choice(*ALGORITHMS), "auto", "convcalc's executor: 'direct' (GEMM), 'fft' (numpy.fft),"
                         " 'winograd' (F(2,3): 3-tap kernels, stride 1, dilation 1, groups 1) or 'auto' (the"
                         " cheapest by estimate)"),
    }

    def validate(self) -> None:
        if self.padding == "valid":
            self.padding = (0,) * self.dims
        if (isinstance(self.padding, tuple) and not is_explicit(self.padding)
                and any(p < 0 for p in self.padding)):
            # F.conv refuses a negative padding; the other modes pad through F.pad first, which
            # crops by a negative amount (the conv then sees i + 2p, checked in out_spatial).
            if self.padding_mode == "zeros":
                raise LayerArgError(f"padding must be at least 0 with padding_mode 'zeros', got"
                                    f" {min(self.padding)} (a negative padding crops, and PyTorch allows it"
                                    f" only with padding_mode 'reflect', 'replicate' or 'circular')", "padding")
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise LayerArgError("padding='same' is not supported for strided convolutions"
                                f" (stride {list(self.stride)}); PyTorch allows it with stride 1 only (TensorFlow/Keras"
                                f" SAME, which takes a stride, is padding: tf_same)", "padding")
        if self.out_channels % self.groups:
            raise LayerArgError(f"out_channels {self.out_channels} is not divisible by groups {self.groups}", "groups")
        if self.in_channels is not None and self.in_channels % self.groups:
            raise LayerArgError(f"in_channels {self.in_channels} is not divisible by groups {self.groups}", "groups")
        if self.algorithm == "winograd" and not self.winograd_able():
            raise LayerArgError("algorithm 'winograd' (F(2, 3)) needs kernel_size 3 on every axis, stride 1,"
                                f" dilation 1 and groups 1; got kernel_size {list(self.kernel_size)}, stride"
                                f" {list(self.stride)}, dilation {list(self.dilation)}, groups {self.groups}",
                                "algorithm")

    # ---- shape-dependent rules
    def pads(self, spatial: Sequence[int]) -> Pads:
        """Explicit (before, after) padding per axis."""
        if self.padding == "same":
            return tuple(same_pads(k, d) for k, d in zip(self.kernel_size, self.dilation))
        if self.padding == "full":
            return tuple(full_pads(k, d) for k, d in zip(self.kernel_size, self.dilation))
        if self.padding == "tf_same":
            return tuple(tf_same_pads(i, k, s, d)
                         for i, k, s, d in zip(spatial, self.kernel_size, self.stride, self.dilation))
        if is_explicit(self.padding):
            return self.padding
        return tuple((p, p) for p in self.padding)

    def in_channels_of(self, in_shape: Shape) -> int:
        self.expect_rank(in_shape, (self.dims + 1,), LAYOUTS[self.dims])
        channels = in_shape[0]
        if self.in_channels is not None and self.in_channels != channels:
            raise LayerArgError(f"in_channels is {self.in_channels} but the input has {channels} channels",
                                "in_channels")
        if channels % self.groups:
            raise LayerArgError(f"the input's {channels} channels are not divisible by groups {self.groups}",
                                "groups")
        return channels

    def check_padding_mode(self, spatial: Sequence[int], pads: Pads) -> None:
        """F.pad's limits (reflect < size, circular <= size, crops within the input), `padding.pad_problem`."""
        for axis, (size, (lo, hi)) in enumerate(zip(spatial, pads)):
            problem = pad_problem(self.padding_mode, size, lo, hi, axis_label(self.dims, axis))
            if problem:
                raise LayerArgError(problem, "padding")

    def out_spatial(self, spatial: Sequence[int], pads: Pads) -> tuple[int, ...]:
        sizes = []
        for axis, (size, k, s, d, (lo, hi)) in enumerate(
                zip(spatial, self.kernel_size, self.stride, self.dilation, pads)):
            span, padded = dilated(k, d), size + lo + hi
            if padded < span:
                dilation_text = f" with dilation {d}" if d > 1 else ""
                raise LayerArgError(
                    f"kernel_size {k}{dilation_text} spans {span}, but the padded input is {padded} wide"
                    f"{axis_label(self.dims, axis)}", "kernel_size")
            sizes.append(conv_length(size, k, s, d, lo, hi))
        return tuple(sizes)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        in_shape = in_shapes[0]
        channels = self.in_channels_of(in_shape)
        spatial = in_shape[1:]
        pads = self.pads(spatial)
        self.check_padding_mode(spatial, pads)
        out_shape = (self.out_channels, *self.out_spatial(spatial, pads))
        params = {"weight": (self.out_channels, channels // self.groups, *self.kernel_size)}
        if self.bias:
            params["bias"] = (self.out_channels,)
        macs = prod(out_shape) * (channels // self.groups) * prod(self.kernel_size)
        return Inferred(out_shape, params, {}, macs)

    def channel_reads(self, in_shapes: Sequence[Shape], out_shape: Shape) -> ChannelReads:
        """Each output channel reads the input channels of its group (every one for groups 1)."""
        return grouped(self.out_channels, in_shapes[0][0], self.groups)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        pads = self.pads(in_shapes[0][1:])
        return fields[0].through_window(self.kernel_size, self.stride, [lo for lo, _ in pads], out_shape[1:],
                                        self.dilation, self.padding_mode)

    def window_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[WindowAxis, ...]:
        rule = self.padding if isinstance(self.padding, str) else None
        return tuple(WindowAxis(k, s, d, lo, hi, rule) for k, s, d, (lo, hi) in
                     zip(self.kernel_size, self.stride, self.dilation, self.pads(in_shapes[0][1:])))

    # ---- execution
    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        weight = inferred.params["weight"]
        return fan_in_uniform(rng, inferred.params, prod(weight[1:]))

    def absorb_affine(self, params: Mapping[str, np.ndarray], scale: np.ndarray,
                      shift: np.ndarray) -> dict[str, np.ndarray]:
        """Fold a following per-channel affine map y*scale + shift (an inference BatchNorm) into the weights."""
        weight = np.asarray(params["weight"], dtype=np.float64)
        bias = np.asarray(params["bias"], dtype=np.float64) if "bias" in params else np.zeros(weight.shape[0])
        return {"weight": weight * scale.reshape(-1, *[1] * (weight.ndim - 1)), "bias": bias * scale + shift}

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype, choice: str | None = None) -> dict[str, Any]:
        """Choose the algorithm for this conv's shapes (`choice_for`; ``choice``: one of `algorithm_choices`,
        as the tuner times it) and lay the weights out for it."""
        channels, spatial = in_shapes[0][0], in_shapes[0][1:]
        exact = np.asarray(params["weight"], dtype=np.float64)     # the FFT's spectrum is computed from these
        if self.flip_kernel:   # a true convolution is the cross-correlation with the flipped kernel
            exact = exact[(slice(None), slice(None), *(slice(None, None, -1),) * self.dims)]
        weight = exact.astype(dtype)   # the layouts below only move values: cast first (6x faster on VGG's fc6)
        out = tuple(out_shape[1:])
        pads = self.pads(spatial)
        bias = np.asarray(params["bias"], dtype=dtype) if "bias" in params else None
        plan: dict[str, Any] = {"pads": pads, "out": out, "bias": bias, "bias_in_gemm": False,
                                "bias_rows": None if bias is None else bias_rows(bias, prod(out))}
        fft_shape = tuple(fast_fft_length(size + lo + hi) for size, (lo, hi) in zip(spatial, pads))
        out_key = tuple(out)
        chosen_by = "timed"
        if choice is None:
            choice, chosen_by = self.choice_for(channels, spatial, out_key, dtype, bias is not None)
        method, bias_in_gemm = choice.partition("+")[0], choice.endswith("+bias") and bias is not None
        plan.update(algorithm=choice, chosen_by=chosen_by)
        if method == "fft":
            plan.update(method="fft", weights=None, fft_shape=fft_shape,
                        spectrum=fft_kernel_spectrum(exact, self.groups, self.dilation, fft_shape, dtype))
        elif method in ("winograd", "winograd_b", "winograd_p"):
            plan.update(method=method, weights=winograd_weights(exact, dtype))
        elif method == "im2col_t":
            blocks = tap_blocks(self.kernel_size, self.stride, self.dilation)
            plan.update(method="im2col_t", blocks=blocks, weights=tap_block_columns(weight, blocks))
        elif method == "depthwise":
            taps = weight.reshape(channels, self.out_channels // channels, -1).transpose(2, 0, 1)   # (prod(k), C, M)
            plan.update(method="depthwise", weights=np.ascontiguousarray(taps, dtype=dtype))
        elif method in ("pointwise", "pointwise_p", "pointwise_c"):   # '_p', '_c': its rows, its columns cut
                                                                       # between threads (`blas.split_matmul`)
            columns = weight.reshape(self.out_channels, channels).T       # (C, O)
            in_gemm = bias_in_gemm
            plan.update(method=method, bias_in_gemm=in_gemm,
                        weights=np.ascontiguousarray(np.vstack([columns, bias[None]]) if in_gemm else columns,
                                                     dtype=dtype))
        elif method in ("kn2row", "kn2row_p"):
            plan.update(method=method, weights=kn2row_weights(weight))                   # (C, prod(k) * O)
        elif method == "rows":
            first = self.kernel_size[0]
            rows = np.moveaxis(weight, 1, -1)                              # (O, k0, *k[1:], C)
            rows = np.moveaxis(rows, 1, 0).reshape(first, self.out_channels, -1).transpose(0, 2, 1)
            taps = np.moveaxis(weight, 1, -1).reshape(self.out_channels, -1, channels)   # (O, prod(k), C)
            plan.update(method="rows", weights=np.ascontiguousarray(rows, dtype=dtype),   # (k0, prod(k[1:])*C, O)
                        taps=np.ascontiguousarray(taps.transpose(1, 2, 0), dtype=dtype))  # (prod(k), C, O)
        else:      # im2col, whole or in blocks ('im2col_b', 'im2col_p' on threads of its own: ungrouped only)
            columns = conv_weight_columns(weight, self.groups).astype(dtype)
            in_gemm = bias_in_gemm and self.groups == 1
            plan.update(method=method if method in ("im2col_b", "im2col_p", "im2col_c") else "im2col",
                        bias_in_gemm=in_gemm,
                        weights=np.concatenate([columns, bias[None, None]], axis=1) if in_gemm else columns)
        # the backward pass (every algorithm) needs the weights as im2col's columns, (g, prod(k) * C/g, O/g):
        # laid out on its first call (`backward_columns`), so forward-only runs keep one copy of the weights
        plan["columns"] = None
        if plan["method"] in ("fft", "depthwise", "winograd", "winograd_b", "winograd_p", "im2col_t", "kn2row",
                              "kn2row_p"):   # not the columns
            plan["weight"] = weight
        return plan

    def backward_columns(self, plan: dict[str, Any]) -> np.ndarray:
        """The weights as (g, prod(k) * C/g, O/g) columns for `backward`: im2col's own layout, a view of the
        pointwise (C, O) and rows-taps (prod(k), C, O) layouts (rows ordered (*kernel, channel) alike), or made
        once from the weights."""
        if plan["columns"] is None:
            method = plan["method"]
            weights = plan["weights"][..., :-1, :] if plan["bias_in_gemm"] else plan["weights"]   # its bias row
            if method in ("im2col", "im2col_b", "im2col_p", "im2col_c"):
                plan["columns"] = weights
            elif method in ("pointwise", "pointwise_p", "pointwise_c"):
                plan["columns"] = weights[None]
            elif method == "rows":
                taps = plan["taps"]
                plan["columns"] = taps.reshape(1, -1, taps.shape[-1])
            else:
                plan["columns"] = conv_weight_columns(plan["weight"], self.groups)
        return plan["columns"]

    def forward(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter) -> np.ndarray:
        out, weights, method = plan["out"], plan["weights"], plan["method"]
        if method in ("winograd_b", "winograd_p"):       # in pieces (sample by sample, bands; on threads: '_p')
            zeros = self.padding_mode == "zeros"            # zero padding written by its polyphase copy
            x = inputs[0] if zeros else pad_spatial(inputs[0], plan["pads"], self.padding_mode)
            return conv_winograd_split(x, weights, out, counter, plan["bias"], plan["pads"] if zeros else None,
                                       workers=blas.threads() if method == "winograd_p" else 1)
        if method == "winograd" and self.padding_mode == "zeros":   # zero padding written by its polyphase copy
            return conv_winograd(inputs[0], weights, out, counter, plan["bias"], plan["pads"])
        zero_padded = method == "im2col_t" and self.padding_mode == "zeros"   # also written by a polyphase copy
        x = inputs[0] if zero_padded else pad_spatial(inputs[0], plan["pads"], self.padding_mode)
        args = (self.kernel_size, self.stride, self.dilation, out, counter)
        if method == "winograd":
            return conv_winograd(x, weights, out, counter, plan["bias"])
        if method in ("kn2row", "kn2row_p"):                                # the bias starts its output grid
            return conv_kn2row(x, weights, self.kernel_size, self.dilation, out, counter, plan["bias"],
                               workers=blas.threads() if method == "kn2row_p" else 1)
        if method == "im2col_t":
            pads = plan["pads"] if zero_padded else [(0, 0)] * self.dims
            y = conv_im2col_t(x, weights, plan["blocks"], pads, *args)
        elif method == "fft":
            y = conv_fft(x, plan["spectrum"], self.kernel_size, self.stride, plan["fft_shape"], out, counter)
        elif self.one_gemm(plan):                                           # 1x1, ungrouped im2col
            matrix, columns = self.gemm_operands(x, plan)
            if method in ("pointwise_p", "pointwise_c", "im2col_c"):
                y = blas.split_matmul(matrix, columns, np.empty((matrix.shape[0], columns.shape[-1]), dtype=x.dtype),
                                      blas.threads(), columns=method != "pointwise_p")
                counter.add(y.size * (matrix.shape[-1] - plan["bias_in_gemm"]))
            else:
                y = counter.matmul(matrix, columns, ones_column=plan["bias_in_gemm"])
            y = y.reshape(x.shape[0], *out, columns.shape[-1])
        elif method in ("im2col_b", "im2col_p"):
            y = conv_im2col_blocked(x, weights[0], *args, ones_column=plan["bias_in_gemm"],
                                    workers=blas.threads() if method == "im2col_p" else 1)
        elif method == "depthwise":
            y = conv_depthwise(x, weights, *args)
        elif method == "rows" and x.shape[0] >= 4:
            y = conv_flat(x, plan["taps"], self.kernel_size, self.dilation, out, counter)   # batches: no copies
        elif method == "rows":
            y = conv_rows(x, weights, *args)
        else:
            y = conv_im2col(x, weights, *args)                               # grouped: one GEMM per group
        if plan["bias"] is not None and not plan["bias_in_gemm"]:
            add_bias(y, plan["bias_rows"])
        return y

    @staticmethod
    def one_gemm(plan: dict[str, Any]) -> bool:
        """A 1x1 conv or an ungrouped im2col one: a single GEMM of `gemm_operands`."""
        return plan["method"] in ("pointwise", "pointwise_p", "pointwise_c", "im2col_c") or (
            plan["method"] == "im2col" and plan["weights"].shape[0] == 1)

    def gemm_operands(self, x: np.ndarray, plan: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """For `one_gemm` plans, the GEMM's operands from the padded input: the (N * out, prod(k) * C [+ 1])
        matrix of the positions (a 1x1 conv's every stride-th input, im2col's patches; with the ones column
        when the weights carry the bias, `with_ones_column`) and the (prod(k) * C [+ 1], O) weights."""
        out = plan["out"]
        if plan["method"] in ("pointwise", "pointwise_p", "pointwise_c"):
            values = x[(slice(None), *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, self.stride)))]
            columns = plan["weights"]                                               # (C [+1], O)
        else:
            values = windows(x, self.kernel_size, self.stride, self.dilation, out)   # (N, *out, *k, C)
            columns = plan["weights"][0]                                            # (prod(k) * C [+1], O)
        if plan["bias_in_gemm"]:
            return with_ones_column(values, 1 + self.dims), columns
        return values.reshape(x.shape[0] * prod(out), prod(values.shape[1 + self.dims:])), columns

    def forward_into(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter,
                     into: np.ndarray) -> np.ndarray:
        """`forward`, added into ``into`` (channels-last, the output's shape, its values needed by nothing else):
        the sum a residual Add takes, written by the GEMM itself for `one_gemm` convs and blocked im2col
        (`MacCounter.matmul_into`, BLAS's beta = 1); the other algorithms add their output to it."""
        blocked = plan["method"] in ("im2col_b", "im2col_p")
        if not (self.one_gemm(plan) or blocked) or not into.flags.c_contiguous:
            return np.add(into, self.forward(inputs, plan, counter), out=into)
        x = pad_spatial(inputs[0], plan["pads"], self.padding_mode)
        if blocked:
            conv_im2col_blocked(x, plan["weights"][0], self.kernel_size, self.stride, self.dilation, plan["out"],
                                counter, ones_column=plan["bias_in_gemm"], into=into,
                                workers=blas.threads() if plan["method"] == "im2col_p" else 1)
        else:
            matrix, columns = self.gemm_operands(x, plan)
            if plan["method"] in ("pointwise_p", "pointwise_c", "im2col_c"):
                blas.split_matmul(matrix, columns, into.reshape(-1, into.shape[-1]), blas.threads(), accumulate=True,
                                  columns=plan["method"] != "pointwise_p")
                counter.add(into.size * (matrix.shape[-1] - plan["bias_in_gemm"]))
            else:
                counter.matmul_into(matrix, columns, into.reshape(-1, into.shape[-1]),
                                    ones_column=plan["bias_in_gemm"])
        if plan["bias"] is not None and not plan["bias_in_gemm"]:
            add_bias(into, plan["bias_rows"])
        return into

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 plan: dict[str, Any]) -> list[np.ndarray]:
        """dL/dx: a transposed convolution of ``grad`` onto the padded input (`conv_input_grad`, whatever
        algorithm the forward took), then the padding's own VJP (reflect/replicate/circular pads scatter back)."""
        x = inputs[0]
        pads = plan["pads"]
        padded = tuple(size + lo + hi for size, (lo, hi) in zip(x.shape[1:-1], pads))
        grad_padded = conv_input_grad(grad, self.backward_columns(plan), padded, self.kernel_size, self.stride, self.dilation)
        return [pad_spatial_transpose(grad_padded, x.shape[1:-1], pads, self.padding_mode)]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """Without groups every input channel feeds every output channel through an all-ones kernel (the structural
        instance), so a mask that differs per output channel reaches the input as their union on one channel does
        (`support_uniform` of the channels' maximum, one channel kept: the same on every input channel). With
        groups: the structural backward pass."""
        if self.groups == 1 and mask.ndim >= 3:
            shapes = [(x.shape[-1], *x.shape[1:-1]) for x in inputs]
            found = self.support_uniform(mask.max(axis=-1, keepdims=True), shapes, (mask.shape[-1], *mask.shape[1:-1]))
            if found is not None:
                return found
        return super().support_backward(inputs, output, mask, prepared)

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """The channels of a group read those of their group (all of them without groups); per spatial axis a
        window, its pads read in this conv's padding_mode (a reflected, replicated or wrapped tap reads its
        source)."""
        spatial = tuple(in_shapes[0][1:])
        axes = tuple(window_relation(n, o, k, s, d, lo, hi, self.padding_mode) for n, o, k, s, d, (lo, hi) in
                     zip(spatial, out_shape[1:], self.kernel_size, self.stride, self.dilation, self.pads(spatial)))
        return [Factors((groups_relation(out_shape[0], in_shapes[0][0], self.groups), *axes))]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """A mark the same on every output channel reaches every input channel alike, whatever the groups: the
        backward pass of one channel with an all-ones kernel, i.e. each output's mark added to every tap of its
        window (col2im, `windows_transpose`, which `conv_input_grad` computes for such a kernel), then the
        padding's VJP in this conv's padding_mode (reflected, replicated, wrapped taps go back to their source)."""
        spatial = tuple(in_shapes[0][1:])
        pads = self.pads(spatial)
        dims = len(spatial)
        taps = np.broadcast_to(mask[(slice(None),) * (1 + dims) + (None,) * dims],
                               (*mask.shape[:-1], *self.kernel_size, 1))                  # (N, *out, *k, 1)
        padded = windows_transpose(taps, [i + lo + hi for i, (lo, hi) in zip(spatial, pads)], self.kernel_size,
                                   self.stride, self.dilation)
        found = pad_spatial_transpose(padded, spatial, pads, self.padding_mode)      # counts >= 0, a new array
        return [np.minimum(found, 1, out=found)]


for _dims in (1, 2, 3):
    register(type(f"Conv{_dims}d", (ConvNd,), {"type_name": f"Conv{_dims}d", "dims": _dims}))


# The geometry arguments of every conv-shaped unit (composites, locally connected, tiled): one definition.
GEOMETRY_ARGUMENTS = {
    "in_channels": Arg(optional(integer(1)), None, "input channels; inferred from the graph"),
    "out_channels": Arg(integer(1), doc="output channels"),
    "kernel_size": Arg(per_axis(1), doc="kernel extent per spatial axis"),
    "stride": Arg(per_axis(1), 1),
    "padding": Arg(conv_padding_arg, 0, "as the conv's: int, per-axis list, 'valid', 'same' (stride 1 only), ..."),
    "dilation": Arg(per_axis(1), 1),
}
