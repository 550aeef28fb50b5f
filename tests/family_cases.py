"""Cross-check strategies for ChannelShuffle, the composite convolutions (depthwise-separable, spatially
separable, flattened, gated) and the unshared ones (locally connected, tiled), and the registry of their torch
reference modules (family_references.py). Imported by `test_torch_crosscheck` only (which adds them to its
STRATEGIES, and so to `test_executor_torch`'s); not a test module itself.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from torch import nn

from family_references import (ChannelAvgPoolReference, ChannelMaxPoolReference, DepthwiseSeparableReference,
                               FlattenedReference, GatedReference, LocallyConnectedReference, MaxoutReference,
                               PartialConv2dReference, PartialConvMask2dReference, SpatiallySeparableReference,
                               TiledReference)
from test_torch_crosscheck import Case, Strategy, any_shape, per_axis, rarely, spatial


# ============================================================================ ChannelShuffle

@st.composite
def shuffle_cases(draw, cls) -> Case:
    channels = draw(st.integers(1, 8))
    divisors = [g for g in range(1, channels + 1) if channels % g == 0]
    groups = draw(rarely(st.sampled_from(divisors), st.integers(-1, 9), 0.15))
    rank = draw(rarely(st.integers(2, 4), st.just(1), 0.1))       # [C] alone: torch refuses
    shape = (channels, *draw(st.lists(st.integers(1, 4), min_size=rank - 1, max_size=rank - 1)))
    return Case({"groups": groups}, [shape])


# ============================================================================ composites: strategies

def part_values(dims: int, kind: str) -> st.SearchStrategy:
    norm = f"BatchNorm{dims}d"
    if kind == "norm":
        good = st.sampled_from([None, None, norm, {"type": norm, "eps": 1e-3}])
        bad = st.sampled_from([{"type": norm, "epsilon": 1e-3}, "ReLU"])   # a typo; ReLU is fine (shape kept)
    else:
        good = st.sampled_from([None, "ReLU", "ReLU6", "ELU", "Hardswish", {"type": "LeakyReLU", "negative_slope": 0.2},
                                "PReLU"])
        bad = st.sampled_from([{"type": "LeakyReLU", "slope": 0.2}, "Rleu"])
    return rarely(good, bad, 0.05)


@st.composite
def composite_cases(draw, cls) -> Case:
    """Arguments of a composite convolution: the conv-like ones as `conv_cases` draws them, plus its own."""
    dims = cls.dims
    channels = draw(st.integers(1, 5))
    args: dict[str, Any] = {
        "out_channels": draw(rarely(st.integers(1, 5), st.just(0), 0.03)),
        "kernel_size": draw(per_axis(dims, rarely(st.integers(1, 4), st.integers(-1, 0), 0.02))),
    }
    if "groups" in cls.arguments:
        groups = draw(rarely(st.sampled_from([1, 1, channels]), st.integers(1, 4), 0.1))
        if groups != 1 or draw(st.booleans()):
            args["groups"] = groups
        args["out_channels"] = groups * draw(st.integers(1, 3)) if draw(st.integers(0, 9)) else args["out_channels"]
    if draw(st.booleans()):
        args["stride"] = draw(per_axis(dims, st.integers(1, 3)))
    if draw(st.booleans()):
        args["dilation"] = draw(per_axis(dims, st.integers(1, 3)))
    padding = draw(st.sampled_from(["int", "int", "same", "valid", "none"]))
    if padding == "int":
        args["padding"] = draw(per_axis(dims, rarely(st.integers(0, 3), st.integers(-2, -1), 0.03)))
    elif padding != "none":
        args["padding"] = padding
    for flag in ("bias", "depthwise_bias"):
        if flag in cls.arguments and draw(st.booleans()):
            args[flag] = draw(st.booleans())
    if draw(rarely(st.just(False), st.just(True), 0.25)):
        args["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if "depth_multiplier" in cls.arguments and draw(st.booleans()):
        args["depth_multiplier"] = draw(st.integers(1, 3))
    if "mid_channels" in cls.arguments and draw(st.booleans()):
        args["mid_channels"] = draw(st.integers(1, 4))
    for kind in ("norm", "activation"):
        if kind in cls.arguments and draw(st.booleans()):
            args[kind] = draw(part_values(dims, kind))
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.1))
    if which == "same":
        args["in_channels"] = channels
    elif which == "wrong":
        args["in_channels"] = draw(st.integers(1, 6))
    shape = (channels, *draw(spatial(dims)))
    if draw(rarely(st.just(False), st.just(True), 0.03)):
        shape = (channels, 2, *shape[1:])
    return Case(args, [shape], channel_arg="in_channels")


# ============================================================================ unshared: strategies

@st.composite
def unshared_cases(draw, cls) -> Case:
    """Locally connected / tiled: a conv's geometry (valid or not, as `conv_cases`), with groups now and then
    (dividing both channel counts, or not)."""
    dims = cls.dims
    channels = draw(st.integers(1, 4))
    args: dict[str, Any] = {
        "out_channels": draw(rarely(st.integers(1, 4), st.just(0), 0.03)),
        "kernel_size": draw(per_axis(dims, rarely(st.integers(1, 4), st.integers(-1, 0), 0.02))),
    }
    if draw(st.booleans()):
        groups = draw(rarely(st.sampled_from([1, channels, *(g for g in (2, 3) if channels % g == 0)]),
                             st.integers(0, 5), 0.15))
        args["groups"] = groups
        if groups >= 1 and draw(rarely(st.just(True), st.just(False), 0.15)):
            args["out_channels"] = groups * draw(st.integers(1, 2))
    if "tile_size" in cls.arguments:
        args["tile_size"] = draw(per_axis(dims, rarely(st.integers(1, 4), st.integers(-1, 0), 0.03)))
    if draw(st.booleans()):
        args["stride"] = draw(per_axis(dims, rarely(st.integers(1, 3), st.just(0), 0.02)))
    if draw(st.booleans()):
        args["dilation"] = draw(per_axis(dims, st.integers(1, 3)))
    padding = draw(st.sampled_from(["int", "int", "same", "valid", "none"]))
    if padding == "int":
        args["padding"] = draw(per_axis(dims, rarely(st.integers(0, 3), st.just(-1), 0.03)))
    elif padding != "none":
        args["padding"] = padding
    if draw(st.booleans()):
        args["bias"] = draw(st.booleans())
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.1))
    if which == "same":
        args["in_channels"] = channels
    elif which == "wrong":
        args["in_channels"] = draw(st.integers(1, 5))
    shape = (channels, *draw(spatial(dims)))
    if draw(rarely(st.just(False), st.just(True), 0.03)):
        shape = (channels, 2, *shape[1:])
    return Case(args, [shape], channel_arg="in_channels")


# ============================================================================ channel pooling: strategies

@st.composite
def channel_pool_cases(draw, cls) -> Case:
    """Maxout / ChannelMaxPool / ChannelAvgPool over the channel axis of a [C, ...] input of any rank (1 to 4):
    pool sizes dividing C mostly (Maxout), windows up to C wide; now and then too wide, 0 or a stride of 0."""
    shape = draw(any_shape(4, 4))
    channels = draw(st.integers(1, 8))
    shape = (channels, *shape[1:])
    if cls.type_name == "Maxout":
        divisors = [k for k in range(1, channels + 1) if channels % k == 0]
        return Case({"pool_size": draw(rarely(st.sampled_from(divisors), st.integers(0, 9), 0.15))}, [shape])
    args = {"kernel_size": draw(rarely(st.integers(1, channels), st.integers(-1, 10), 0.1))}
    if draw(st.booleans()):
        args["stride"] = draw(rarely(st.one_of(st.none(), st.integers(1, 4)), st.integers(-1, 0), 0.1))
    return Case(args, [shape])


# ============================================================================ partial convolution: strategies

@st.composite
def partial_geometry(draw) -> dict[str, Any]:
    """kernel_size/stride/dilation/padding of a partial conv or its mask: int, 'same', 'valid', [[before, after]]
    pairs; now and then invalid (negative padding, 'same' with a stride, a kernel wider than the input)."""
    args: dict[str, Any] = {"kernel_size": draw(per_axis(2, rarely(st.integers(1, 4), st.integers(-1, 0), 0.02)))}
    if draw(st.booleans()):
        args["stride"] = draw(per_axis(2, st.integers(1, 3)))
    if draw(st.booleans()):
        args["dilation"] = draw(per_axis(2, st.integers(1, 2)))
    padding = draw(st.sampled_from(["int", "int", "same", "valid", "explicit", "none"]))
    if padding == "int":
        args["padding"] = draw(per_axis(2, rarely(st.integers(0, 3), st.just(-1), 0.03)))
    elif padding == "explicit":
        args["padding"] = draw(st.lists(st.lists(st.integers(-1, 3), min_size=2, max_size=2), min_size=2, max_size=2))
    elif padding != "none":
        args["padding"] = padding
    return args


@st.composite
def partial_cases(draw, cls) -> Case:
    """PartialConv2d: an image [C, H, W] and a mask input [1 or C, H, W] (now and then of the wrong channels or
    size), or the image alone with derive_mask; PartialConvMask2d: the mask (or the image, derive_mask 'nonzero')."""
    channels = draw(st.integers(1, 4))
    size = tuple(draw(spatial(2)))
    args = draw(partial_geometry())
    multi = draw(st.booleans())
    if draw(st.booleans()):
        args["multi_channel"] = multi
    else:
        multi = False
    if cls.type_name == "PartialConvMask2d":
        derive = draw(rarely(st.sampled_from([None, None, "nonzero"]), st.just("ones"), 0.05))
        if derive is not None:
            args["derive_mask"] = derive
        if multi or draw(rarely(st.just(False), st.just(True), 0.05)):
            args["out_channels"] = draw(rarely(st.integers(1, 4), st.none(), 0.1))
        mask_channels = channels if multi or derive else draw(rarely(st.just(1), st.integers(2, 3), 0.1))
        return Case(args, [(mask_channels, *size)])
    groups = draw(rarely(st.sampled_from([1, 1, channels]), st.integers(1, 4), 0.1))
    if groups != 1 or draw(st.booleans()):
        args["groups"] = groups
    args["out_channels"] = groups * draw(st.integers(1, 3)) if draw(st.integers(0, 9)) else draw(st.integers(0, 5))
    if draw(st.booleans()):
        args["bias"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        args["eps"] = draw(st.sampled_from([1e-8, 1e-6, 1e-3]))
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.1))
    if which == "same":
        args["in_channels"] = channels
    elif which == "wrong":
        args["in_channels"] = draw(st.integers(1, 5))
    shapes = [(channels, *size)]
    if draw(st.booleans()):                                    # the mask as a second input
        mask_channels = channels if multi else 1
        form = draw(rarely(st.just("ok"), st.sampled_from(["channels", "size", "derive"]), 0.1))
        if form == "channels":
            mask_channels = draw(st.integers(1, 5))
        elif form == "derive":
            args["derive_mask"] = draw(st.sampled_from(["ones", "nonzero"]))
        mask_size = size if form != "size" else tuple(draw(spatial(2)))
        shapes.append((mask_channels, *mask_size))
    elif draw(st.booleans()):
        args["derive_mask"] = draw(st.sampled_from(["ones", "nonzero"]))
    return Case(args, shapes, channel_arg="in_channels")


# ============================================================================ the registry of this file

COMPOSITE = Strategy(composite_cases, 80)

FAMILY_STRATEGIES: dict[str, Strategy] = {
    "ChannelShuffle": Strategy(shuffle_cases, 80),
    "DepthwiseSeparableConv1d": COMPOSITE,
    "DepthwiseSeparableConv2d": COMPOSITE,
    "SpatiallySeparableConv2d": COMPOSITE,
    "FlattenedConv2d": COMPOSITE,
    "GatedConv1d": COMPOSITE,
    "GatedConv2d": COMPOSITE,
    "LocallyConnected1d": Strategy(unshared_cases, 60),
    "LocallyConnected2d": Strategy(unshared_cases, 60),
    "TiledConv2d": Strategy(unshared_cases, 60),
    "Maxout": Strategy(channel_pool_cases, 80),
    "ChannelMaxPool": Strategy(channel_pool_cases, 80),
    "ChannelAvgPool": Strategy(channel_pool_cases, 80),
    "PartialConv2d": Strategy(partial_cases, 150),
    "PartialConvMask2d": Strategy(partial_cases, 100),
}

# type name -> reference module class (constructor takes convcalc's argument names)
REFERENCE_MODULES: dict[str, type[nn.Module]] = {
    "DepthwiseSeparableConv1d": type("DepthwiseSeparableConv1dReference", (DepthwiseSeparableReference,), {"dims": 1}),
    "DepthwiseSeparableConv2d": DepthwiseSeparableReference,
    "SpatiallySeparableConv2d": SpatiallySeparableReference,
    "FlattenedConv2d": FlattenedReference,
    "GatedConv1d": type("GatedConv1dReference", (GatedReference,), {"dims": 1}),
    "GatedConv2d": GatedReference,
    "LocallyConnected1d": type("LocallyConnected1dReference", (LocallyConnectedReference,), {"dims": 1}),
    "LocallyConnected2d": LocallyConnectedReference,
    "TiledConv2d": TiledReference,
    "Maxout": MaxoutReference,
    "ChannelMaxPool": ChannelMaxPoolReference,
    "ChannelAvgPool": ChannelAvgPoolReference,
    "PartialConv2d": PartialConv2dReference,
    "PartialConvMask2d": PartialConvMask2dReference,
}

# types whose MACs are checked against FlopCounterMode (the others must count 0)
MAC_FAMILY: set[str] = {"DepthwiseSeparableConv1d", "DepthwiseSeparableConv2d", "SpatiallySeparableConv2d",
                        "FlattenedConv2d", "GatedConv1d", "GatedConv2d", "LocallyConnected1d", "LocallyConnected2d", "TiledConv2d",
                        "PartialConv2d"}

# the executor's cross-check draws positive inputs for these (resample_cases.POSITIVE_INPUTS): a random-normal
# mask would put window sums near 0, where winsize/(count + eps) is ill-conditioned and float32 cannot match
POSITIVE_TYPES: set[str] = {"PartialConv2d", "PartialConvMask2d"}
