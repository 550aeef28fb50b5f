"""Cross-check strategies and torch reference modules for the normalisation layers of convcalc/layers/norm.py:
LayerNorm, LayerNorm2d, GroupNorm, InstanceNorm1d/2d/3d, LocalResponseNorm. Imported by `test_torch_crosscheck`
(which adds them to its STRATEGIES and REFERENCE_MODULES, and so to `test_executor_torch`'s and
`test_backward_torch`'s); not a test module itself.

torchvision is not installed here, so LayerNorm2d's reference is torchvision 0.28's class copied verbatim
(torchvision/models/convnext.py): nn.LayerNorm's constructor, a forward that permutes to channels-last, runs
F.layer_norm and permutes back.

The strategies draw valid and invalid arguments and shapes alike, except the two inputs where a batch-1 torch run
normalises over the batch axis and convcalc refuses by convention (it analyses one sample): a ``normalized_shape``
longer than the sample's rank, and an InstanceNorm input one rank short (torch reads it as an unbatched sample whose
channels are the batch). tests/test_norm_layers.py pins both refusals against what torch does with them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from test_torch_crosscheck import Case, Strategy, rarely


class LayerNorm2dReference(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d (torchvision 0.28), verbatim."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 3, 1, 2)
        return x


def sizes(rank: int, top: int = 4) -> st.SearchStrategy:
    return st.lists(st.integers(1, top), min_size=rank, max_size=rank).map(tuple)


EPS = rarely(st.sampled_from([1e-5, 1e-6, 1e-3, 0.5]), st.sampled_from([0.0, -1e-7]), 0.08)


def shape_value(draw, trailing: tuple[int, ...]) -> Any:
    """A normalized_shape for these axes: the last m of them (an int or a list), now and then a wrong one (never
    longer than the axes: that would reach the batch)."""
    kind = draw(rarely(st.just("right"), st.sampled_from(["wrong", "empty", "nonpositive"]), 0.15))
    if kind == "right":
        count = draw(st.integers(1, len(trailing)))
        value = list(trailing[len(trailing) - count:])
        return value[0] if count == 1 and draw(st.booleans()) else value
    if kind == "empty":
        return []
    if kind == "nonpositive":
        return draw(st.sampled_from([0, -1, [0], [2, -1]]))
    return draw(st.lists(st.integers(1, 4), min_size=1, max_size=len(trailing)))


def affine_flags(draw, args: dict[str, Any], affine: str) -> None:
    for flag in (affine, "bias"):
        if draw(st.booleans()):
            args[flag] = draw(st.booleans())
    if draw(st.booleans()):
        args["eps"] = draw(EPS)


@st.composite
def layernorm_cases(draw, cls) -> Case:
    shape = draw(st.integers(1, 4).flatmap(sizes))
    args: dict[str, Any] = {"normalized_shape": shape_value(draw, shape)}
    affine_flags(draw, args, "elementwise_affine")
    return Case(args, [shape])


@st.composite
def layernorm2d_cases(draw, cls) -> Case:
    rank = draw(rarely(st.just(3), st.sampled_from([1, 2, 4]), 0.1))     # torchvision permutes a 4-D tensor only
    shape = draw(sizes(rank))
    args: dict[str, Any] = {}
    if rank == 3 and draw(st.booleans()):
        args["normalized_shape"] = shape_value(draw, (*shape[1:], shape[0]))
    elif draw(rarely(st.just(False), st.just(True), 0.1)):
        args["normalized_shape"] = draw(st.integers(1, 4))
    affine_flags(draw, args, "elementwise_affine")
    return Case(args, [shape], channel_arg="normalized_shape")


@st.composite
def groupnorm_cases(draw, cls) -> Case:
    channels = draw(st.integers(1, 6))
    divisors = [g for g in range(1, channels + 1) if channels % g == 0]
    args: dict[str, Any] = {"num_groups": draw(rarely(st.sampled_from(divisors), st.integers(-2, 7), 0.15))}
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.15))
    if which == "same":
        args["num_channels"] = channels
    elif which == "wrong":
        args["num_channels"] = draw(st.integers(-4, 8))
    affine_flags(draw, args, "affine")
    shape = (channels, *draw(rarely(st.integers(1, 3), st.just(0), 0.15).flatmap(sizes)))
    return Case(args, [shape], channel_arg="num_channels")


@st.composite
def instancenorm_cases(draw, cls) -> Case:
    dims = int(cls.type_name[-2])
    rank = draw(rarely(st.just(dims + 1), st.sampled_from([r for r in range(1, 6) if r not in (dims, dims + 1)]),
                       0.1))
    shape = draw(sizes(rank))
    args: dict[str, Any] = {}
    which = draw(rarely(st.sampled_from(["absent", "same"]), st.just("wrong"), 0.15))
    if which == "same":
        args["num_features"] = shape[0]
    elif which == "wrong":
        args["num_features"] = draw(st.integers(-2, 6))
    for flag in ("affine", "track_running_stats"):
        if draw(st.booleans()):
            args[flag] = draw(st.booleans())
    affine_flags(draw, args, "affine")
    if draw(st.booleans()):
        args["momentum"] = draw(st.one_of(st.none(), st.floats(0, 1)))
    return Case(args, [shape], channel_arg="num_features")


@st.composite
def lrn_cases(draw, cls) -> Case:
    shape = draw(rarely(st.integers(2, 5), st.just(1), 0.05).flatmap(lambda rank: sizes(rank, 5 if rank < 4 else 3)))
    args: dict[str, Any] = {"size": draw(rarely(st.integers(1, 7), st.integers(-1, 0), 0.05))}
    if draw(st.booleans()):
        args["alpha"] = draw(st.sampled_from([1e-4, 1e-2, 0.5, 2.0, 0.0]))
    if draw(st.booleans()):
        args["beta"] = draw(st.sampled_from([0.75, 0.5, 1.0, 2.0, 0.0, -0.5]))
    if draw(st.booleans()):
        args["k"] = draw(st.sampled_from([1.0, 2.0, 0.5, 10.0]))
    return Case(args, [shape])


NORM_STRATEGIES: dict[str, Strategy] = {
    "LayerNorm": Strategy(layernorm_cases, 120),
    "LayerNorm2d": Strategy(layernorm2d_cases, 80),
    "GroupNorm": Strategy(groupnorm_cases, 120),
    **{f"InstanceNorm{d}d": Strategy(instancenorm_cases, 80) for d in (1, 2, 3)},
    "LocalResponseNorm": Strategy(lrn_cases, 60),
}
NORM_MODULES: dict[str, type] = {"LayerNorm2d": LayerNorm2dReference}
