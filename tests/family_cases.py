"""Cross-check strategies for ChannelShuffle, the composite convolutions (depthwise-separable, spatially
separable, flattened, gated) and the unshared ones (locally connected, tiled), and the registry of their torch
reference modules (family_references.py). Imported by `test_torch_crosscheck` only (which adds them to its
STRATEGIES, and so to `test_executor_torch`'s); not a test module itself.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from torch import nn

from family_references import (DepthwiseSeparableReference, FlattenedReference, GatedReference,
                               LocallyConnectedReference, SpatiallySeparableReference, TiledReference)
from test_torch_crosscheck import Case, Strategy, per_axis, rarely, spatial


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
    """Locally connected / tiled: a conv's geometry (valid or not, as `conv_cases`), no groups."""
    dims = cls.dims
    channels = draw(st.integers(1, 4))
    args: dict[str, Any] = {
        "out_channels": draw(rarely(st.integers(1, 4), st.just(0), 0.03)),
        "kernel_size": draw(per_axis(dims, rarely(st.integers(1, 4), st.integers(-1, 0), 0.02))),
    }
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
}

# types whose MACs are checked against FlopCounterMode (the others must count 0)
MAC_FAMILY: set[str] = {"DepthwiseSeparableConv1d", "DepthwiseSeparableConv2d", "SpatiallySeparableConv2d",
                        "FlattenedConv2d", "GatedConv1d", "GatedConv2d", "LocallyConnected1d", "LocallyConnected2d", "TiledConv2d"}
