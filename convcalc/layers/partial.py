"""Partial convolution (Liu et al. 2018, "Image Inpainting for Irregular Holes Using Partial Convolutions",
arXiv:1804.07723 §3.1): PartialConv2d, and PartialConvMask2d, the updated mask it passes on.

Semantics are those of NVIDIA's reference implementation (github.com/NVIDIA/partialconv, models/partialconv2d.py),
per output position, with X the image window, M the mask window and W, b the conv's weight and bias:

    count  = Σ M                       (a window sum over all the mask's channels: NVIDIA's conv of M with ones)
    update = clamp(count, 0, 1)        (1 where any valid input is under the window, for a 0/1 mask)
    ratio  = winsize / (count + eps) · update          winsize = (C_in if multi_channel else 1) · kh · kw
    out    = (Wᵀ(X ⊙ M) · ratio + b) · update          (without a bias: Wᵀ(X ⊙ M) · ratio · update)

so for a 0/1 mask ``out = Wᵀ(X ⊙ M)·sum(1)/sum(M) + b`` where sum(M) > 0, else 0 (eps = 1e-8 is the reference's;
eps 0 gives the paper's formula exactly, 0 where nothing is valid). Zero padding pads the image and the mask alike,
so padded taps count as holes. ``multi_channel`` (NVIDIA's option): false, the mask has 1 channel and winsize is
kh·kw; true, the mask has the image's C_in channels, is summed over all of them (whatever the groups) and winsize
is C_in·kh·kw; the updated mask then has C_out (identical) channels, to be the next layer's C_in-channel mask.

How the mask arrives (convcalc's convention, documented in the README):

* ``from: [image, mask]``: the mask is a second input, any earlier layer's output ([1, H, W], or [C_in, H, W]
  with ``multi_channel``), as NVIDIA's ``forward(input, mask)``;
* ``from: image`` alone: ``derive_mask`` says where it comes from: ``ones`` (the default; NVIDIA's forward
  without a mask: every input position valid, only the zero padding counts as holes; Liu et al.'s partial-
  convolution-based padding) or ``nonzero`` (holes are the image's zeros: M = X ≠ 0, per channel with
  multi_channel, else where any channel is nonzero).

The updated mask is a layer of its own, PartialConvMask2d, given the same kernel_size/stride/padding/dilation
(and multi_channel, out_channels) and the same mask input (or the image, with ``derive_mask: nonzero``): its
output is ``update`` above, shape [1, OH, OW] or [out_channels, OH, OW]. The next PartialConv2d takes it as its
mask. Both layers' shapes, pads and receptive fields are those of a Conv2d of the same geometry (a `ConvNd` unit
they hold, never re-derived); PartialConv2d's parameters (state_dict ``weight``, ``bias``), initialisation and
MACs are that conv's; the window sums and the renormalisation are additions and per-element products (0 MACs, as
pooling and BatchNorm count none).

Gradients: as the reference, which computes count, update and ratio under ``torch.no_grad``: they are constants,
so d/dX = M ⊙ (the conv's input gradient of ``grad · ratio · update``) and d/dM = X ⊙ that (summed over the
image's channels for a one-channel mask); PartialConvMask2d has zero gradient. Dependencies (receptive fields,
`rf --verify`) are those of the conv window on each input: every output does depend on the mask values in its
window, through count.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._numpy import np

from ..errors import LayerArgError
from ..kernels import MacCounter, pad_spatial, windows
from ..algebra import Field, merge
from ..algebra.shapes import prod
from .args import Arg, boolean, choice, integer, optional, real
from .base import LAYOUTS, Inferred, Layer, Shape, WindowAxis, shape_text
from .registry import lookup, register
from .args import _spelled
from .conv import GEOMETRY_ARGUMENTS
from .memory import MemoryUse, conv_memory
from .factors import EVERY, Factors

DERIVED = ("ones", "nonzero")


class PartialWindow(Layer):
    """Shared: the Conv2d unit of the same geometry, the mask's window sums."""

    dims = 2

    def geometry_conv(self, out_channels: int, groups: int = 1, in_channels: int | None = None) -> Layer:
        args = {name: _spelled(getattr(self, name)) for name in ("kernel_size", "stride", "padding", "dilation")}
        return lookup("Conv2d").from_args({**args, "out_channels": out_channels, "groups": groups,
                                           "in_channels": in_channels, "bias": False})

    def window_geometry(self, in_shapes: Sequence[Shape], out_shape: Shape) -> tuple[WindowAxis, ...] | None:
        return self.conv.window_geometry(in_shapes[:1], out_shape)

    def mask_of(self, inputs: Sequence[np.ndarray], derive: str | None) -> np.ndarray | None:
        """The mask (channels-last): the last input (a PartialConv2d's second, a PartialConvMask2d's only one),
        ``x != 0`` (per channel with multi_channel, else where any channel is nonzero), or None for ``ones``."""
        if derive is None:
            return inputs[-1]
        if derive == "ones":
            return None
        nonzero = inputs[0] != 0
        if not self.multi_channel:
            nonzero = nonzero.any(axis=-1, keepdims=True)
        return nonzero.astype(inputs[0].dtype)

    def counts(self, mask: np.ndarray | None, x: np.ndarray, plan: dict[str, Any]) -> np.ndarray:
        """Σ of the mask over each window and all its channels, (N or 1, OH, OW, 1): NVIDIA's conv of the mask with
        a kernel of ones, zero padded."""
        if mask is None:                                    # all ones: C_in (multi_channel) or 1 per position
            ones = np.ones((1, *x.shape[1:-1], 1), dtype=x.dtype)
            summed = ones * (x.shape[-1] if self.multi_channel else 1)
        else:
            summed = mask.sum(axis=-1, keepdims=True) if mask.shape[-1] > 1 else mask
        padded = pad_spatial(summed, plan["pads"])
        view = windows(padded, self.kernel_size, self.stride, self.dilation, plan["out"])   # (N, *out, *k, 1)
        return view.sum(axis=tuple(range(1 + self.dims, 1 + 2 * self.dims)))

    def support_factors(self, in_shapes: Sequence[Shape], out_shape: Shape) -> list[Factors] | None:
        """Every channel of each input (the mask's sum runs over all of them) through the conv's window; None with
        groups (the image's channels then follow its groups)."""
        if getattr(self, "groups", 1) != 1:
            return None
        found = []
        for shape in in_shapes:
            window = self.conv.support_factors([tuple(shape)], (out_shape[0], *out_shape[1:]))[0]
            found.append(Factors((EVERY, *window.relations[1:])))
        return found

    def mask_support(self, mask: np.ndarray, in_shape: Shape, out_shape: Shape) -> np.ndarray:
        """The input positions (one channel) the marked outputs' windows read: the conv's window rule."""
        thin = mask if mask.shape[-1] == 1 else mask.max(axis=-1, keepdims=True)
        return self.conv.support_uniform(thin, [in_shape], out_shape)[0]


@register
class PartialConv2d(PartialWindow):
    type_name = "PartialConv2d"
    summary = "mask-renormalised conv: Wᵀ(X⊙M)·sum(1)/sum(M) + b where any input is valid, else 0 (Liu et al. 2018)"
    min_inputs, max_inputs = 1, 2
    arguments = {
        **GEOMETRY_ARGUMENTS,
        "groups": Arg(integer(1), 1),
        "bias": Arg(boolean, True),
        "multi_channel": Arg(boolean, False, "a mask of C_in channels (else one); the updated mask has C_out"),
        "derive_mask": Arg(optional(choice(*DERIVED)), None, "without a mask input: 'ones' (the default: only the"
                           " padding is a hole) or 'nonzero' (holes where the image is 0)"),
        "eps": Arg(real(0), 1e-8, "added to the window's mask sum before dividing (NVIDIA's 1e-8; 0: the paper's)"),
    }

    def validate(self) -> None:
        if self.padding == "valid":
            self.padding = (0, 0)
        self.conv = self.geometry_conv(self.out_channels, self.groups, self.in_channels)

    def derive(self, count: int) -> str | None:
        """Where the mask comes from: None (the second input), 'ones' or 'nonzero'."""
        if count == 2:
            return None
        return self.derive_mask or "ones"

    def check_inputs(self, in_shapes: Sequence[Shape]) -> None:
        super().check_inputs(in_shapes)
        if len(in_shapes) == 2 and self.derive_mask is not None:
            raise LayerArgError(f"derive_mask '{self.derive_mask}' is for a PartialConv2d without a mask input,"
                                " but 'from' gives it one (the second input)", "derive_mask")

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        self.check_inputs(in_shapes)
        inferred = self.conv.infer(in_shapes[:1])
        if len(in_shapes) == 2:
            check_mask(tuple(in_shapes[0]), tuple(in_shapes[1]), self.multi_channel)
        params = dict(inferred.params)
        if self.bias:
            params["bias"] = (self.out_channels,)
        return Inferred(inferred.out_shape, params, {}, inferred.macs)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        through = [self.conv.receptive_field([f], [s], out_shape) for f, s in zip(fields, in_shapes)]
        return through[0] if len(through) == 1 else merge(through, out_shape[1:])

    def init_params(self, inferred: Inferred, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """nn.Conv2d's (the reference subclasses it): U(±1/sqrt(C_in/g · kh · kw)) for weight and bias."""
        return self.conv.init_params(inferred, rng)

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        channels = in_shapes[0][0]
        conv_plan = self.conv.prepare({"weight": params["weight"]}, in_shapes[:1], out_shape, dtype)
        bias = params.get("bias")
        return {"conv": conv_plan, "pads": conv_plan["pads"], "out": tuple(out_shape[1:]),
                "derive": self.derive(len(in_shapes)),
                "winsize": (channels if self.multi_channel else 1) * prod(self.kernel_size),
                "bias": None if bias is None else np.asarray(bias, dtype=dtype)}

    def scale(self, mask: np.ndarray | None, x: np.ndarray, plan: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(ratio, update), each (N or 1, OH, OW, 1): winsize/(count + eps)·update and clamp(count, 0, 1); the ratio
        is 0 where update is (also with eps 0, where count + eps may be 0)."""
        count = self.counts(mask, x, plan)
        update = np.clip(count, 0, 1)
        ratio = np.zeros_like(count)
        np.divide(plan["winsize"], count + self.eps, out=ratio, where=update > 0)
        return ratio * update, update

    def forward(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter) -> np.ndarray:
        x = inputs[0]
        mask = self.mask_of(inputs, plan["derive"])
        masked = x * mask if plan["derive"] is None else x            # X ⊙ M (a derived mask leaves X as it is)
        raw = self.conv.forward([masked], plan["conv"], counter)        # Wᵀ(X ⊙ M), no bias: (N, OH, OW, O)
        ratio, update = self.scale(mask, x, plan)
        raw *= ratio
        if plan["bias"] is not None:
            raw += plan["bias"]
        raw *= update
        return raw

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 plan: dict[str, Any]) -> list[np.ndarray]:
        """count, update and ratio are constants (the reference computes them under torch.no_grad): the conv's
        input gradient of grad·ratio·update, times M for X and times X for M."""
        x = inputs[0]
        mask = self.mask_of(inputs, plan["derive"])
        masked = x * mask if plan["derive"] is None else x
        ratio, update = self.scale(mask, x, plan)
        grad_masked = self.conv.backward([masked], None, grad * (ratio * update), plan["conv"])[0]
        if plan["derive"] == "ones":
            return [grad_masked]
        grad_x = grad_masked * mask
        if plan["derive"] == "nonzero":
            return [grad_x]
        grad_mask = grad_masked * x
        if mask.shape[-1] == 1:
            grad_mask = grad_mask.sum(axis=-1, keepdims=True)
        return [grad_x, grad_mask]

    def memory_use(self, in_shapes: Sequence[Shape], out_shape: Shape, dtype: np.dtype, batch: int) -> MemoryUse:
        """The conv's (`conv_memory`), plus X ⊙ M or a derived mask (two image-sized arrays), the mask's padded
        channel sum and the per-position count, update and ratio; backward: three image-sized gradients more."""
        conv = conv_memory(self.conv, in_shapes[:1], out_shape, dtype, batch)
        item = np.dtype(dtype).itemsize
        image = item * batch * prod(in_shapes[0])
        padded = item * batch * prod(size + lo + hi for size, (lo, hi) in
                                     zip(in_shapes[0][1:], self.conv.pads(in_shapes[0][1:])))
        own = 2 * image + 2 * padded + 6 * item * batch * prod(out_shape[1:])
        return conv._replace(workspace=conv.workspace + own, backward=conv.backward + own + 3 * image)

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        """Each input through the conv window (a window with no tap inside the input has count 0 and output 0, and
        reads nothing there either)."""
        return [self.mask_support(mask, tuple(s), out_shape) for s in in_shapes]


def check_mask(image: Shape, mask: Shape, multi_channel: bool) -> None:
    """The mask input of a PartialConv2d: [1, H, W], or [C_in, H, W] with multi_channel, H and W the image's."""
    if len(mask) != 3:
        raise LayerArgError(f"the mask (second input) must be a {LAYOUTS[2]} tensor, got {shape_text(mask)}", "from")
    if mask[1:] != image[1:]:
        raise LayerArgError(f"the mask {shape_text(mask)} must have the image's height and width"
                            f" ({shape_text(image)})", "from")
    wanted = image[0] if multi_channel else 1
    if mask[0] != wanted:
        what = f"the image's {image[0]} channels (multi_channel true)" if multi_channel else \
            "1 channel (multi_channel false; true takes one mask channel per image channel)"
        raise LayerArgError(f"the mask {shape_text(mask)} must have {what}", "multi_channel")


@register
class PartialConvMask2d(PartialWindow):
    type_name = "PartialConvMask2d"
    summary = "the updated mask of a PartialConv2d of this geometry: clamp(window sum of the mask, 0, 1)"
    arguments = {
        "kernel_size": GEOMETRY_ARGUMENTS["kernel_size"],
        "stride": GEOMETRY_ARGUMENTS["stride"],
        "padding": GEOMETRY_ARGUMENTS["padding"],
        "dilation": GEOMETRY_ARGUMENTS["dilation"],
        "multi_channel": Arg(boolean, False, "as the PartialConv2d's: sum all the mask's channels, give out_channels"),
        "out_channels": Arg(optional(integer(1)), None, "with multi_channel: the PartialConv2d's C_out (the mask's"
                            " channels); without: 1, or leave it out"),
        "derive_mask": Arg(optional(choice("nonzero")), None, "'nonzero': the input is the image, the mask its"
                           " nonzero positions (as the PartialConv2d's derive_mask)"),
    }

    def validate(self) -> None:
        if self.padding == "valid":
            self.padding = (0, 0)
        if self.multi_channel and self.out_channels is None:
            raise LayerArgError("multi_channel needs out_channels (the PartialConv2d's C_out: the updated mask has"
                                " that many channels)", "out_channels")
        if not self.multi_channel and self.out_channels not in (None, 1):
            raise LayerArgError(f"out_channels {self.out_channels} needs multi_channel true (a one-channel mask's"
                                " update has 1 channel)", "out_channels")
        self.conv = self.geometry_conv(self.out_channels or 1)

    def infer(self, in_shapes: Sequence[Shape]) -> Inferred:
        shape = tuple(in_shapes[0])
        out = self.conv.infer([shape]).out_shape
        if self.derive_mask is None and not self.multi_channel and shape[0] != 1:
            raise LayerArgError(f"the mask {shape_text(shape)} must have 1 channel (multi_channel false; true takes"
                                " one mask channel per image channel; derive_mask 'nonzero' takes the image)",
                                "multi_channel")
        return Inferred(out)

    def receptive_field(self, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shape: Shape) -> Field:
        return self.conv.receptive_field(fields, in_shapes, out_shape)

    def prepare(self, params: Mapping[str, np.ndarray], in_shapes: Sequence[Shape], out_shape: Shape,
                dtype: np.dtype) -> dict[str, Any]:
        return {"pads": self.conv.pads(in_shapes[0][1:]), "out": tuple(out_shape[1:]), "channels": out_shape[0]}

    def forward(self, inputs: Sequence[np.ndarray], plan: dict[str, Any], counter: MacCounter) -> np.ndarray:
        mask = self.mask_of(inputs, self.derive_mask)
        update = np.clip(self.counts(mask, inputs[0], plan), 0, 1)
        return np.ascontiguousarray(np.broadcast_to(update, (*update.shape[:-1], plan["channels"])))

    def backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, grad: np.ndarray,
                 plan: dict[str, Any]) -> list[np.ndarray]:
        """0: the reference computes the mask update under torch.no_grad."""
        return [np.zeros_like(inputs[0], dtype=grad.dtype)]

    def support_backward(self, inputs: Sequence[np.ndarray], output: np.ndarray, mask: np.ndarray,
                         prepared: Any) -> list[np.ndarray]:
        """The window's mask values (every channel), though the gradient is 0."""
        x = inputs[0]
        found = self.mask_support(mask, (x.shape[-1], *x.shape[1:-1]), (mask.shape[-1], *mask.shape[1:-1]))
        return [np.broadcast_to(found, x.shape).copy()]

    def support_uniform(self, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape) -> list[np.ndarray] | None:
        return [self.mask_support(mask, tuple(in_shapes[0]), out_shape)]
