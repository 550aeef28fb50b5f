"""Cross-check strategies and torch reference modules for convcalc/layers/learnable.py: `LearnableTensor` (x * T or
x + T with a learned T) and `StochasticDepth` (torchvision.ops). Imported by `test_torch_crosscheck` (which adds them
to its STRATEGIES and REFERENCE_MODULES) and so by `test_executor_torch` and `test_backward_torch` too; not a test
module itself.

* `LearnableTensorReference` is what torch models write: an ``nn.Parameter`` of the given shape (ones for a scale,
  zeros for an addend: torchvision's ``torch.ones(dim, 1, 1) * layer_scale``) and ``x * T`` / ``x + T`` with torch's
  own broadcasting. Its parameter is named as convcalc names it relative to the layer: ``param`` ('' for the layer's
  own name, as the attribute ``features.1.0.layer_scale`` is to its block), which is what its ``named_parameters``
  and ``state_dict`` report.
* `StochasticDepthReference` is torchvision.ops.StochasticDepth transcribed from torchvision/ops/stochastic_depth.py
  (torchvision cannot be installed beside torch 2.13 here): its checks of p and mode run on every call, at inference
  too, and then it returns its input.

The strategies draw shapes that broadcast and shapes that do not, T shorter than the sample (torch aligns from the
last axis: a [C] tensor meets W), T with the batch axis ([1, *sample]), a sample broadcast up by T ([C, 1, 1] input,
[C, H, W] tensor), invalid shapes (0, negative, empty) and invalid op/param values. They never draw a T that would
change the batch axis (a first axis other than 1 on the batch axis, or more axes than batch and sample): torch runs
those at batch 1 and returns another batch size, which convcalc refuses; test_learnable_tied_init pins that.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from test_torch_crosscheck import Case, Strategy, any_shape, rarely  # noqa: E402


class LearnableTensorReference(nn.Module):
    """x * T or x + T for an nn.Parameter T of ``shape`` (ones / zeros), torch's broadcasting."""

    def __init__(self, shape, op: str = "multiply", param: str = "") -> None:
        super().__init__()
        if op not in ("multiply", "add"):
            raise ValueError(f"op {op!r}")
        if not isinstance(param, str) or (param and not param.isidentifier()):
            raise ValueError(f"param {param!r}")
        shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        if not shape or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in shape):
            raise ValueError(f"shape {shape!r}")   # torch.ones takes 0 (an empty tensor): convcalc has none
        self.op, self.param = op, param
        self.tensor = nn.Parameter(torch.ones(shape) if op == "multiply" else torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.tensor if self.op == "multiply" else x + self.tensor

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield prefix + self.param, self.tensor

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return {self.param: self.tensor.detach()}


def stochastic_depth(input: torch.Tensor, p: float, mode: str, training: bool = True) -> torch.Tensor:
    """torchvision.ops.stochastic_depth."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
    if mode not in ["batch", "row"]:
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    if mode == "row":
        size = [input.shape[0]] + [1] * (input.ndim - 1)
    else:
        size = [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device)
    noise = noise.bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


class StochasticDepthReference(nn.Module):
    """torchvision.ops.StochasticDepth(p, mode)."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)


@st.composite
def learnable_cases(draw, cls) -> Case:
    sample = draw(any_shape(4, 4))
    kind = draw(st.sampled_from(["same", "ones", "shorter", "batch", "broadcast up", "other", "bad"]))
    if kind == "same":
        shape: Any = list(sample)
    elif kind == "ones":        # per-channel [C, 1, 1] and other axes of 1
        mask = draw(st.lists(st.booleans(), min_size=len(sample), max_size=len(sample)))
        shape = [1 if ones else size for ones, size in zip(mask, sample)]
    elif kind == "shorter":     # aligned from the last axis
        shape = list(sample[draw(st.integers(1, len(sample) - 1)):]) if len(sample) > 1 else [sample[-1]]
    elif kind == "batch":       # [1, *sample]: the batch axis, of size 1
        shape = [1, *sample]
    elif kind == "broadcast up":   # the sample has 1 where T does not: the output takes T's size
        axis = draw(st.integers(0, len(sample) - 1))
        sample = (*sample[:axis], 1, *sample[axis + 1:])
        shape = [*sample[:axis], draw(st.integers(2, 4)), *sample[axis + 1:]]
    elif kind == "other":       # sizes that may not broadcast
        shape = list(draw(any_shape(len(sample), 4)))
    else:
        shape = draw(st.sampled_from([[], [0], [-1, 2], [2.5], "3", [True]]))
    if draw(st.integers(0, 9)) == 0 and isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]        # an integer alone: a 1-D tensor
    args: dict[str, Any] = {"shape": shape}
    if draw(st.booleans()):
        args["op"] = draw(rarely(st.sampled_from(["multiply", "add"]), st.sampled_from(["mul", "sub", 1]), 0.1))
    if draw(st.booleans()):
        args["param"] = draw(rarely(st.sampled_from(["", "gamma", "layer_scale"]), st.sampled_from(["a.b", "1x", 2]),
                                    0.1))
    return Case(args, [tuple(sample)])


@st.composite
def stochastic_depth_cases(draw, cls) -> Case:
    args: dict[str, Any] = {}
    if draw(rarely(st.just(True), st.just(False), 0.05)):
        args["p"] = draw(rarely(st.floats(0, 1), st.sampled_from([-0.25, 1.25, -1e-9, 0.0, 1.0]), 0.2))
    if draw(rarely(st.just(True), st.just(False), 0.05)):
        args["mode"] = draw(rarely(st.sampled_from(["row", "batch"]), st.sampled_from(["rows", "Batch", 1]), 0.1))
    return Case(args, [draw(any_shape(5, 3))])


LEARNABLE_STRATEGIES = {
    "LearnableTensor": Strategy(learnable_cases, 150),
    "StochasticDepth": Strategy(stochastic_depth_cases, 40),
}
LEARNABLE_MODULES = {
    "LearnableTensor": LearnableTensorReference,
    "StochasticDepth": StochasticDepthReference,
}
