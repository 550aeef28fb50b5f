"""The calculator's one-off questions (``convcalc calc``): one conv, pool or transposed conv from PyTorch's arguments,
and the cost of a convolution's cheaper variants side by side.

Nothing here re-derives a rule: each question becomes a small spec (the one layer, or each variant's layers) that
`analyze` runs through the layer units, so the answers are the ones ``convcalc analyze`` gives. Also owns the
parsing of the calculator's per-axis options (``7``, ``1x7``, ``1,7``) and of ``--in`` (``3x224x224``, ``224x224``,
``224``). The padding solver is `convcalc.analysis.padding_solver`, the one-line RF stacks
`convcalc.analysis.rf_stack`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod
from typing import Any, Optional, Sequence, Union

from ..algebra import Field
from ..errors import ConvcalcError, did_you_mean
from ..spec.load import Spec, spec_from_dict
from .causes import dropped_by
from .summary import Summary, analyze

PerAxis = Union[int, list[int]]
FAMILIES = {"Conv": "conv", "ConvTranspose": "transposed", "MaxPool": "pool", "AvgPool": "pool"}
LAYER_TYPES = tuple(f"{family}{dims}d" for family in FAMILIES for dims in (1, 2, 3))
PADDING_WORDS = ("same", "valid", "tf_same", "full")


# --------------------------------------------------------------------------- parsing the options

def numbers(text: str, option: str) -> list[int]:
    """'7', '1x7', '1,7', '1×7', '1X7', '(1, 7)' -> [7] / [1, 7] (non-negative integers)."""
    written = str(text).strip()
    if written[:1] + written[-1:] in ("()", "[]"):          # a Python tuple or list, as printed
        written = written[1:-1]
    parts = written.replace("×", "x").replace("X", "x").replace(",", "x").replace(" ", "").split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        if option == "--in":
            raise ConvcalcError(f"--in '{text}' is not a size: --in takes CxHxW (channels first), e.g. 3x224x224"
                                " (or the spatial size alone where channels do not matter: 224x224, 224)") from None
        raise ConvcalcError(f"{option} '{text}' must be an integer or one per spatial axis, e.g. 3 or 1x7") from None
    if any(v < 0 for v in values):
        raise ConvcalcError(f"{option} '{text}' must not be negative")
    return values


def per_axis(text: Optional[str], option: str, dims: int) -> Optional[PerAxis]:
    """An option as the spec takes it: one integer, or a list with one value per spatial axis."""
    if text is None:
        return None
    values = numbers(text, option)
    if len(values) == 1:
        return values[0]
    if len(values) != dims:
        raise ConvcalcError(f"{option} '{text}' has {len(values)} values; give one, or {dims} (one per spatial axis)")
    return values


def padding_value(text: Optional[str], dims: int) -> Optional[Any]:
    """-p: an integer, one per axis, or PyTorch's 'same'/'valid' (and convcalc's 'tf_same', 'full')."""
    if text is None:
        return None
    word = str(text).strip().lower().replace("-", "_")
    if word in PADDING_WORDS:
        return word
    if word == "tfsame":
        return "tf_same"
    if not word[:1].isdigit():
        raise ConvcalcError(f"--padding '{text}' must be an integer, one per spatial axis (1x2), or one of"
                            f" {', '.join(PADDING_WORDS)}")
    return per_axis(text, "--padding", dims)


def input_shape(text: str, dims: int, channels: Optional[int] = None,
                need_channels: bool = False) -> tuple[tuple[int, ...], bool]:
    """--in as (C, *spatial) and whether the channels were given: 'CxHxW', or just the spatial 'HxW' (or one 'N' for
    every axis) where channels do not matter (they are then ``channels`` or 1)."""
    values = numbers(text, "--in")
    if any(v < 1 for v in values):
        raise ConvcalcError(f"--in '{text}' must be positive integers")
    if len(values) == dims + 1:
        channels_last(text, values)
        if channels is not None and channels != values[0]:
            raise ConvcalcError(f"--in '{text}' has {values[0]} channels but --in-channels is {channels}")
        return tuple(values), True
    if need_channels:
        example = "x".join(["128"] + ["56"] * dims)
        raise ConvcalcError(f"--in '{text}' must give the channels and the spatial size, e.g. {example}")
    if len(values) == dims:
        return (channels or 1, *values), channels is not None
    if len(values) == 1:
        return (channels or 1, *values * dims), channels is not None
    spatial = "x".join(["224"] * dims)
    every = " or one size for every axis (224)" if dims > 1 else ""
    raise ConvcalcError(f"--in '{text}' has {len(values)} sizes; a {dims}-D layer takes C×spatial ({dims + 1} numbers,"
                        f" e.g. 3x{spatial}) or the spatial size ({spatial}){every}")


def channels_last(text: str, values: Sequence[int]) -> None:
    """A ConvcalcError for an input written channels last (224x224x3: NumPy's and TensorFlow's HxWxC): the last
    number a usual channel count (1, 3, 4), the spatial-looking ones before it at least 16 and within 2x of each
    other. Taken as written it would be 224 channels of 224x3."""
    spatial, last = values[:-1], values[-1]
    if len(values) >= 3 and last in (1, 3, 4) and min(spatial) >= 16 and max(spatial) <= 2 * min(spatial):
        meant = "x".join(map(str, (last, *spatial)))
        raise ConvcalcError(f"--in '{text}' looks channels last (HxWxC): it would be {values[0]} channels of"
                            f" {'x'.join(map(str, values[1:]))}; --in takes CxHxW, channels first: did you mean"
                            f" {meant}?")


def layer_type(name: str) -> tuple[str, int]:
    """'conv2d' -> ('Conv2d', 2); any of `LAYER_TYPES`, case-insensitive."""
    for type_name in LAYER_TYPES:
        if type_name.lower() == name.lower().replace("_", ""):
            return type_name, int(type_name[-2])
    raise ConvcalcError(f"unknown layer '{name}'; {did_you_mean(name, [t.lower() for t in LAYER_TYPES])}")


def family_of(type_name: str) -> str:
    """'conv', 'transposed' or 'pool'."""
    return FAMILIES[type_name[:-2]]


def run_spec(data: dict[str, Any]) -> tuple[Spec, Summary]:
    """A calculator spec analysed; errors without the made-up spec's file and line (the user wrote none)."""
    try:
        spec = spec_from_dict(data, "calc")
        return spec, analyze(spec)
    except ConvcalcError as exc:
        message = exc.message.removeprefix("calc: ")
        raise ConvcalcError(message, notes=exc.notes) from None


# --------------------------------------------------------------------------- one layer

@dataclass(frozen=True)
class AxisAnswer:
    """One spatial axis of the layer: its input and output length and the geometry the unit used."""

    length: int
    output: int
    kernel: int
    stride: int
    dilation: int
    pad_lo: int
    pad_hi: int
    output_padding: int = 0          # transposed convs
    padding_rule: Optional[str] = None

    @property
    def k_eff(self) -> int:
        """d*(k-1) + 1."""
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class LayerAnswer:
    """One layer analysed by its unit: shapes, params, MACs, receptive field and per-axis geometry."""

    type: str
    family: str                      # conv | transposed | pool
    args: dict[str, Any]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int
    rf: Field
    axes: tuple[AxisAnswer, ...]
    channels_given: bool
    ceil_mode: bool
    dropped: tuple[int, ...]         # per axis: the last input positions no window reads (lint's CC201)
    spec: Spec
    summary: Summary


def one_layer(type_name: str, in_text: str, *, kernel_size: Optional[str], stride: Optional[str] = None,
              padding: Optional[str] = None, dilation: Optional[str] = None, groups: Optional[int] = None,
              output_padding: Optional[str] = None, ceil_mode: bool = False, out_channels: Optional[int] = None,
              in_channels: Optional[int] = None, bias: bool = True) -> LayerAnswer:
    """The layer ``type_name`` (``conv2d``, ``maxpool3d``, ``convtranspose1d``, ...) with PyTorch's arguments as the
    calculator's options give them, on the input ``in_text``, through its unit. Arguments left out keep PyTorch's
    defaults (a pool's stride is its kernel)."""
    type_name, dims = layer_type(type_name)
    family = family_of(type_name)
    shape, given = input_shape(in_text, dims, in_channels)
    if kernel_size is None:
        raise ConvcalcError(f"{type_name} needs a kernel size: -k 3 (or one per axis, -k 1x7)")
    args: dict[str, Any] = {"kernel_size": per_axis(kernel_size, "--kernel-size", dims)}
    wrong = {"--groups": groups is not None and family == "pool", "--output-padding": output_padding is not None
             and family != "transposed", "--ceil-mode": ceil_mode and family != "pool",
             "--out-channels": out_channels is not None and family == "pool"}
    for option, bad in wrong.items():
        if bad:
            raise ConvcalcError(f"{option} does not apply to {type_name}")
    for key, value in (("stride", per_axis(stride, "--stride", dims)), ("dilation", per_axis(dilation, "--dilation",
                                                                                              dims))):
        if value is not None:
            args[key] = value
    pad = padding_value(padding, dims)
    if pad is not None:
        if family == "transposed" and isinstance(pad, str):
            raise ConvcalcError(f"{type_name} takes no '{pad}' padding (PyTorch: an integer or one per axis)")
        args["padding"] = pad
    if family != "pool":
        args.update(out_channels=out_channels or shape[0], bias=bias)
        if groups is not None:
            args["groups"] = groups
    if family == "transposed" and output_padding is not None:
        args["output_padding"] = per_axis(output_padding, "--output-padding", dims)
    if ceil_mode:
        args["ceil_mode"] = True
    name = type_name.lower()
    spec, summary = run_spec({"name": f"calc {name}", "input": list(shape),
                              "layers": [{"name": name, "type": type_name, **args}]})
    row, node = summary.layer(name), summary.graph.nodes[0]
    lost = dropped_by(node, [shape], row.output_shape) if family != "transposed" else None
    counts = {axis: count for axis, count, _ in lost.lost} if lost else {}
    return LayerAnswer(type_name, family, args, shape, row.output_shape, row.params, row.macs, row.rf,
                       _axes(node.layer, shape, row.output_shape), given, ceil_mode,
                       tuple(counts.get(axis, 0) for axis in range(dims)), spec, summary)


def _axes(layer: Any, shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[AxisAnswer, ...]:
    """The geometry the unit reports: its sliding windows (conv, pool) or its scatter (transposed conv)."""
    windows = layer.window_geometry([shape], out_shape)
    if windows:
        return tuple(AxisAnswer(i, o, w.kernel, w.stride, w.dilation, w.pad_lo, w.pad_hi, 0, w.padding_rule)
                     for i, o, w in zip(shape[1:], out_shape[1:], windows))
    scatters = layer.upsampling_geometry([shape], out_shape)
    extra = layer.output_paddings(shape[1:])
    return tuple(AxisAnswer(i, o, a.kernel, a.stride, a.dilation, a.padding, a.padding, op)
                 for i, o, a, op in zip(shape[1:], out_shape[1:], scatters, extra))


# --------------------------------------------------------------------------- the cost of the cheaper variants

@dataclass(frozen=True)
class Variant:
    """One way to build the layer, analysed: its params, MACs and output shape, and its ratios to the standard."""

    key: str
    label: str
    parts: str                       # what it is made of, e.g. "depthwise 3×3 → pointwise 1×1"
    output_shape: tuple[int, ...]
    params: int
    macs: int
    params_ratio: Fraction
    macs_ratio: Fraction


@dataclass(frozen=True)
class CostAnswer:
    input_shape: tuple[int, ...]
    out_channels: int
    kernel: tuple[int, ...]
    groups: Optional[int]
    mid_channels: Optional[int]
    variants: tuple[Variant, ...]
    skipped: tuple[tuple[str, str], ...]     # (variant, why it is not shown)
    separable_mid: Optional[int] = None      # the spatially separable conv's middle width (2-D only)
    separable_mid_given: bool = False

    @property
    def separable_formula(self) -> Fraction:
        """Howard et al.'s depthwise-separable cost ratio 1/N + 1/∏k (N output channels)."""
        return Fraction(1, self.out_channels) + Fraction(1, prod(self.kernel))


def _conv(dims: int, out: int, kernel: Any, **args: Any) -> dict[str, Any]:
    return {"type": f"Conv{dims}d", "out_channels": out, "kernel_size": kernel, **args}


def _default_groups(*channels: int) -> Optional[int]:
    """The calculator's default --groups: 4, else 2, whichever divides every channel count."""
    return next((g for g in (4, 2) if all(c % g == 0 for c in channels)), None)


def cost(in_text: str, out_channels: int, kernel_size: str, *, stride: Optional[str] = None,
         padding: Optional[str] = None, dilation: Optional[str] = None, groups: Optional[int] = None,
         mid_channels: Optional[int] = None, bias: bool = True,
         separable_mid: Optional[int] = None) -> CostAnswer:
    """Params and MACs of a convolution ``in`` -> ``out_channels`` built as: standard, grouped, depthwise-separable,
    depthwise + grouped pointwise + shuffle, a ShuffleNet unit (1×1 group conv, shuffle, depthwise, 1×1 group conv;
    bottleneck ``mid_channels``, default out/4) and spatially separable (k×1 then 1×k; 2-D; middle width
    ``separable_mid``, default `separable_middle`'s), each by the layer units.
    Padding defaults to d·(k−1)//2 per axis (the size-keeping padding at stride 1). Only the layer that produces
    the output has a bias (``bias``); the inner convs have none, as when a norm follows them."""
    count = len(numbers(in_text, "--in"))
    dims = count - 1
    if dims not in (1, 2, 3):
        raise ConvcalcError(f"--in '{in_text}' must be C×spatial with 1 to 3 spatial axes, e.g. 128x56x56")
    shape, _ = input_shape(in_text, dims, need_channels=True)
    channels, n = shape[0], out_channels
    kernel = numbers(kernel_size, "--kernel-size")
    kernel = tuple(kernel * dims if len(kernel) == 1 else kernel)
    if len(kernel) != dims or min(kernel) < 1:
        raise ConvcalcError(f"--kernel-size '{kernel_size}' must be positive: one, or {dims} (one per spatial axis)")
    dil = per_axis(dilation, "--dilation", dims) or 1
    pad = padding_value(padding, dims)
    if pad is None:
        dils = dil if isinstance(dil, list) else [dil] * dims
        pad = [d * (k - 1) // 2 for d, k in zip(dils, kernel)]
    window = {"stride": per_axis(stride, "--stride", dims) or 1, "padding": pad, "dilation": dil}
    k, one = list(kernel), _k([1] * dims)
    mid = mid_channels or max(1, n // 4)
    g = groups if groups is not None else _default_groups(channels, n, mid)
    variants: list[tuple[str, str, str, list[dict[str, Any]]]] = [
        ("standard", "standard", f"{_k(k)} conv", [_conv(dims, n, k, bias=bias, **window)])]
    skipped: list[tuple[str, str]] = []
    grouped_ok = g is not None and g > 1 and channels % g == 0 and n % g == 0
    if grouped_ok:
        variants.append(("grouped", f"grouped (g={g})", f"{_k(k)} conv, groups {g}",
                         [_conv(dims, n, k, groups=g, bias=bias, **window)]))
    depthwise = _conv(dims, channels, k, groups=channels, bias=False, **window)
    if dims < 3:
        separable = [{"type": f"DepthwiseSeparableConv{dims}d", "out_channels": n, "kernel_size": k, "bias": bias,
                      **window}]
    else:
        separable = [depthwise, _conv(dims, n, 1, bias=bias)]
    variants.append(("depthwise_separable", "depthwise-separable", f"depthwise {_k(k)} → pointwise {one}", separable))
    if grouped_ok:
        variants.append(("depthwise_grouped_pointwise", f"dw + grouped pw (g={g})",
                         f"depthwise {_k(k)} → {one} groups {g} → shuffle",
                         [depthwise, _conv(dims, n, 1, groups=g, bias=bias), {"type": "ChannelShuffle", "groups": g}]))
    shuffle_ok = grouped_ok and mid % g == 0
    if shuffle_ok:
        variants.append(("shufflenet_unit", f"ShuffleNet unit (g={g})",
                         f"{one} groups {g} → {mid} → shuffle → depthwise {_k(k)} → {one} groups {g}",
                         [_conv(dims, mid, 1, groups=g, bias=False), {"type": "ChannelShuffle", "groups": g},
                          _conv(dims, mid, k, groups=mid, bias=False, **window),
                          _conv(dims, n, 1, groups=g, bias=bias)]))
    if g is None or g == 1:
        why = "4 and 2 do not divide every channel count: give --groups G" if g is None else "groups 1 is the standard"
    else:
        why = f"groups {g} must divide the channels ({channels} in, {n} out, {mid} in the ShuffleNet unit)"
    if not grouped_ok:
        skipped += [("grouped", why), ("dw + grouped pw", why)]
    if not shuffle_ok:
        skipped.append(("ShuffleNet unit", why))
    sep_mid = None
    if dims == 2:
        sep_mid = separable_mid or separable_middle(channels, n, k[0], k[1])
        stages = f"{k[0]}×1 → {sep_mid} → 1×{k[1]}"
        variants.append(("spatially_separable", "spatially separable", f"{stages} (both with bias)" if bias else stages,
                         [{"type": "SpatiallySeparableConv2d", "out_channels": n, "kernel_size": k, "bias": bias,
                           "mid_channels": sep_mid, **window}]))
    else:
        skipped.append(("spatially separable", "2-D only (k×1 then 1×k)"))
    results = []
    for key, label, parts, layers in variants:
        _, summary = run_spec({"name": f"calc cost {key}", "input": list(shape), "layers": layers})
        results.append((key, label, parts, summary.output_shape, summary.totals.params, summary.totals.macs))
    base_params, base_macs = results[0][4], results[0][5]
    return CostAnswer(shape, n, kernel, g, mid, tuple(
        Variant(key, label, parts, out, params, macs, Fraction(params, base_params or 1),
                Fraction(macs, base_macs or 1))
        for key, label, parts, out, params, macs in results), tuple(skipped), sep_mid, separable_mid is not None)


def separable_middle(channels: int, out: int, kernel_h: int, kernel_w: int) -> int:
    """The spatially separable conv's middle width of the cheaper textbook form: C -> C -> N (k_h·C·C + k_w·C·N
    per position) or C -> N -> N (k_h·C·N + k_w·N·N); N where they cost the same."""
    through_in = kernel_h * channels * channels + kernel_w * channels * out
    through_out = kernel_h * channels * out + kernel_w * out * out
    return channels if through_in < through_out else out


def _k(kernel: Sequence[int]) -> str:
    return "×".join(map(str, kernel))
