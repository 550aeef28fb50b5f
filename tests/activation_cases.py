"""Cross-check strategies and conventions for the activations of convcalc/layers/activations.py: Mish, Softplus,
SELU, CELU, Hardtanh, Threshold, LogSoftmax, Softmin and GLU. Imported by `test_torch_crosscheck` (which adds them to
its STRATEGIES and DEFAULT_CONVENTIONS) and so by `test_executor_torch` and `test_backward_torch` too; not a test
module itself. torch.nn has every one of these types: the reference is torch.nn's module with the same arguments.

The values drawn reach torch's refusals (CELU alpha 0, Hardtanh max_val <= min_val, Threshold without one of its
required arguments, GLU along an odd-sized dim, dims out of range or naming the batch) and the edges of the
formulas (Softplus beta 0 or negative, a threshold inside the data, CELU with a negative alpha).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from test_torch_crosscheck import Case, Strategy, any_shape, dim_for, rarely, softmax_cases  # noqa: E402

FINITE = {"allow_nan": False, "allow_infinity": False}

# per argument name: the values drawn (None: the argument is left out)
VALUES: dict[str, st.SearchStrategy] = {
    "inplace": st.booleans(),
    # (a beta below float32's range would be 0 in a float32 run, which the executor test compares with float64 torch)
    "beta": rarely(st.floats(-2, 3, **FINITE).filter(lambda b: abs(b) > 1e-3), st.sampled_from([0.0, 1.0, 20.0]), 0.2),
    "threshold": rarely(st.floats(-2, 2, **FINITE), st.sampled_from([20.0, -20.0, 0.0]), 0.2),
    "alpha": rarely(st.floats(-2, 2, **FINITE).filter(lambda a: abs(a) > 1e-3), st.just(0.0), 0.1),
    "min_val": st.floats(-2, 1, **FINITE),
    "max_val": rarely(st.floats(-1, 2, **FINITE), st.just(-1.0), 0.1),
    "value": st.floats(-3, 3, **FINITE),
}
REQUIRED = {"Threshold": ("threshold", "value")}


@st.composite
def activation_cases(draw, cls) -> Case:
    """Each argument given or left to its default (a required one left out now and then)."""
    args: dict[str, Any] = {}
    required = REQUIRED.get(cls.type_name, ())
    for name in cls.arguments:
        give = draw(rarely(st.just(True), st.just(False), 0.05)) if name in required else draw(st.booleans())
        if give:
            args[name] = draw(VALUES[name])
    return Case(args, [draw(any_shape(5, 3))])


@st.composite
def glu_cases(draw, cls) -> Case:
    """A dim (or the default -1, the last axis) whose length is mostly even; out-of-range dims and the batch."""
    rank = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    args: dict[str, Any] = {}
    dim = -1
    if draw(st.booleans()):
        dim = draw(dim_for(rank))
        args["dim"] = dim
    axis = dim % (rank + 1) - 1 if -rank - 1 <= dim <= rank else None
    if axis is not None and axis >= 0 and draw(rarely(st.just(True), st.just(False), 0.15)):
        sizes[axis] *= 2
    return Case(args, [tuple(sizes)])


ELEMENTWISE = Strategy(activation_cases, 40)

ACTIVATION_STRATEGIES: dict[str, Strategy] = {
    **{name: ELEMENTWISE for name in ("Mish", "Softplus", "SELU", "CELU", "Hardtanh", "Threshold")},
    "LogSoftmax": Strategy(softmax_cases, 50),
    "Softmin": Strategy(softmax_cases, 50),
    "GLU": Strategy(glu_cases, 60),
}

# convcalc's defaults that differ from torch's on purpose (dim 1, the channels, as Softmax's: torch's implicit dim
# is the batch axis for a [C, L] input)
ACTIVATION_CONVENTIONS = {("LogSoftmax", "dim"), ("Softmin", "dim")}
