"""Coverage: the one definition `convcalc rf` (the growth chart's "covers" column) and lint CC301 share.

The coverage of a layer's receptive field is the share of the input's area (length in 1-D, volume in 3-D) that the
largest region one of its units sees spans: the product over the spatial axes of ``min(r, I) / I``, where ``r`` is
the field's size (the largest region over the units, `AxisField.size`) and ``I`` the input's length on that axis.
A field of 2/3 of the input on both axes of a 2-D input covers 4/9 = 44.4 %. A whole-input field (after Flatten,
Linear, global pooling) covers the share its units reach together (`Field.reach`: all of it unless some input rows
reach no unit). README: "Conventions" and "Lint" (CC301).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

from ..algebra import Field


def axis_coverage(field: Field, input_lengths: Sequence[int]) -> tuple[Fraction, ...]:
    """Per spatial axis ``min(r, I) / I``: the share of the input's length the field's largest region spans."""
    if field.whole:
        if field.reach is None or len(field.reach) != len(input_lengths):
            return tuple(Fraction(1) for _ in input_lengths)
        return tuple(Fraction(min(b - a + 1, n), n) for (a, b), n in zip(field.reach, input_lengths))
    return tuple(Fraction(min(int(axis.size), n), n) for axis, n in zip(field.axes, input_lengths))


def area_share(shares: Sequence[Fraction]) -> Fraction:
    """The product of per-axis shares: the share of the input's area (volume) they span together."""
    total = Fraction(1)
    for share in shares:
        total *= share
    return total


def coverage(field: Field, input_lengths: Sequence[int]) -> Fraction:
    """The share of the input's area the field's largest region spans (the definition above)."""
    return area_share(axis_coverage(field, input_lengths))


__all__ = ["area_share", "axis_coverage", "coverage"]
