"""Cross-check strategy and torch reference modules for ConvTranspose1d/2d/3d. Imported by
`test_torch_crosscheck` (which adds them to its STRATEGIES, MAC_TYPES and REFERENCE_MODULES) and so by
`test_executor_torch` too; not a test module itself.

The reference module is torch.nn.ConvTransposeNd itself with one more constructor argument, ``output_size``,
which it hands to torch's ``forward(input, output_size)``: convcalc takes it as a layer argument. Its
constructor signature is torch's plus ``output_size`` (pinned by `test_transposed.py`), so the
argument/default check of the cross-check still compares with torch. convcalc's convention: an int
``output_size`` means that size on every spatial axis (torch's forward wants a sequence).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from torch import nn

from test_torch_crosscheck import Case, Strategy, conv_core, per_axis, rarely, spatial  # noqa: E402  (see the docstring)


def _reference(dims: int) -> type[nn.Module]:
    base = getattr(nn, f"ConvTranspose{dims}d")

    class Reference(base):  # type: ignore[misc, valid-type]
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                     groups=1, bias=True, dilation=1, padding_mode="zeros", output_size=None, device=None,
                     dtype=None):
            super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                             dilation, padding_mode, device, dtype)
            if isinstance(output_size, int):
                output_size = (output_size,) * dims
            self.output_size = output_size

        def forward(self, input):  # noqa: A002  (torch's name)
            return super().forward(input, self.output_size)

    Reference.__name__ = Reference.__qualname__ = f"ConvTranspose{dims}dWithOutputSize"
    return Reference


def _length(i: int, k: int, s: int, d: int, p: int) -> int:
    """Torch's smallest output length (output_padding 0), written out here independently of convcalc."""
    return (i - 1) * s - 2 * p + d * (k - 1) + 1


def _axis_values(value: Any, dims: int) -> list[Any] | None:
    if isinstance(value, list):
        return value if len(value) == dims else None
    return [value] * dims


@st.composite
def transposed_cases(draw, cls) -> Case:
    """Valid and invalid arguments: output_padding at and past max(stride, dilation), outputs of length 0 or
    less (padding eating the full output), output_size at both ends of its range and one past each end,
    'same' padding, other padding modes, negative paddings, groups that do not divide, wrong channels."""
    dims = cls.dims
    channels, groups, args = draw(conv_core(dims))
    if draw(st.integers(0, 3)):
        args["stride"] = draw(per_axis(dims, rarely(st.integers(1, 3), st.integers(-1, 0), 0.02)))
    if draw(st.booleans()):
        args["dilation"] = draw(per_axis(dims, rarely(st.integers(1, 3), st.integers(-1, 0), 0.02)))
    padding = draw(rarely(st.just("int"), st.sampled_from(["same", "valid"]), 0.04))
    if padding == "int" and draw(st.integers(0, 3)):
        args["padding"] = draw(per_axis(dims, rarely(st.integers(0, 1), st.integers(-1, 3), 0.2)))
    elif padding != "int":
        args["padding"] = padding
    if groups != 1 or draw(st.booleans()):
        args["groups"] = groups
    if draw(st.booleans()):
        args["bias"] = draw(st.booleans())
    if draw(rarely(st.just(False), st.just(True), 0.05)):
        args["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.1))
    if which == "same":
        args["in_channels"] = channels
    elif which == "wrong":
        args["in_channels"] = draw(st.integers(1, 7))
    sizes = draw(spatial(dims))
    shape = (channels, *sizes)

    strides = _axis_values(args.get("stride", 1), dims)
    dilations = _axis_values(args.get("dilation", 1), dims)
    if draw(st.integers(0, 3)) == 0:        # output_size instead of output_padding
        kernels = _axis_values(args["kernel_size"], dims)
        paddings = _axis_values(args.get("padding", 0), dims)
        known = all(v is not None and all(isinstance(x, int) for x in v)
                    for v in (kernels, paddings, strides, dilations))
        if known:
            # the range is [smallest, smallest + s - 1]: draw its ends, its inside and one past each end
            wanted = [_length(i, k, s, d, p) + draw(st.sampled_from([-1, 0, 0, 0, s - 1, s - 1, s - 1, s, s // 2]))
                      for i, k, s, d, p in zip(sizes, kernels, strides, dilations, paddings)]
            wanted = [draw(rarely(st.just(w), st.integers(-1, 0), 0.05)) if w >= 1 else draw(st.integers(-1, 2))
                      for w in wanted]
        else:
            wanted = draw(st.lists(st.integers(1, 12), min_size=dims, max_size=dims))
        if len(set(wanted)) == 1 and draw(st.booleans()):
            args["output_size"] = wanted[0]
        else:
            args["output_size"] = wanted
        if draw(st.integers(0, 4)) == 0:
            args["output_padding"] = 0
    elif draw(st.booleans()):
        # around the limit: output_padding < stride or < dilation
        if strides is not None and dilations is not None and draw(st.integers(0, 3)):
            limits = [max(s, d) if isinstance(s, int) and isinstance(d, int) else 1
                      for s, d in zip(strides, dilations)]
            values = [max(0, draw(st.sampled_from([0, limit - 1, limit - 1, limit]))) for limit in limits]
            args["output_padding"] = values[0] if len(set(values)) == 1 and draw(st.booleans()) else values
        else:
            args["output_padding"] = draw(per_axis(dims, rarely(st.integers(0, 3), st.just(-1), 0.05)))
    if draw(rarely(st.just(False), st.just(True), 0.05)):    # one axis too many
        shape = (channels, 2, *shape[1:])
    return Case(args, [shape], channel_arg="in_channels")


TRANSPOSED_STRATEGIES: dict[str, Strategy] = {
    f"ConvTranspose{d}d": Strategy(transposed_cases, 200) for d in (1, 2, 3)}
TRANSPOSED_MODULES: dict[str, type[nn.Module]] = {f"ConvTranspose{d}d": _reference(d) for d in (1, 2, 3)}
