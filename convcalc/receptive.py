"""Receptive-field algebra in the convention of Araujo, Norris & Sim (Distill 2019).

Per spatial axis a field is (size r, effective stride S, effective padding P): output index u
sees input indices [u*S - P, u*S - P + r - 1]. Values are exact `Fraction`s so that later
upsampling layers (stride 1/s) need no rounding. ``size_min`` differs from ``size`` where
paths of different reach merge or windows vary in size (adaptive pooling).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Sequence


@dataclass(frozen=True)
class AxisField:
    """The receptive field along one spatial axis."""

    size: Fraction
    size_min: Fraction
    stride: Fraction
    padding: Fraction

    def through_window(self, k_eff: int, stride: int | Fraction, pad_lo: int | Fraction,
                       k_eff_min: int | None = None) -> "AxisField":
        """Sliding-window rule: r += (k_eff-1)*S; P += pad_lo*S; S *= stride."""
        k_min = k_eff if k_eff_min is None else k_eff_min
        return AxisField(
            size=self.size + (k_eff - 1) * self.stride,
            size_min=self.size_min + (k_min - 1) * self.stride,
            stride=self.stride * stride,
            padding=self.padding + pad_lo * self.stride,
        )


@dataclass(frozen=True)
class Field:
    """The receptive field of one layer's output units with respect to the network input.

    ``whole`` means every output unit sees the whole input (after Linear, Flatten, global pooling):
    the per-axis numbers then no longer describe a sliding window and are not reported.
    ``misaligned`` marks a merge whose inputs have different effective strides or centres.
    """

    axes: tuple[AxisField, ...]
    whole: bool = False
    misaligned: bool = False

    @staticmethod
    def identity(spatial_dims: int) -> "Field":
        one, zero = Fraction(1), Fraction(0)
        return Field(tuple(AxisField(one, one, one, zero) for _ in range(spatial_dims)))

    @staticmethod
    def whole_input() -> "Field":
        return Field((), whole=True)

    def through_window(self, k_eff: Sequence[int], stride: Sequence[int], pad_lo: Sequence[int]) -> "Field":
        """Apply a sliding window (conv or pool) with per-axis effective kernel, stride and left pad."""
        if self.whole:
            return self
        if len(k_eff) != len(self.axes):
            return Field.whole_input()
        return replace(self, axes=tuple(
            axis.through_window(k, s, p) for axis, k, s, p in zip(self.axes, k_eff, stride, pad_lo)))

    def center(self, axis: int) -> Fraction:
        """Centre offset of unit 0 on ``axis``: (r-1)/2 - P."""
        a = self.axes[axis]
        return (a.size - 1) / 2 - a.padding


def merge(fields: Sequence[Field]) -> Field:
    """Fields meeting at a merge: their union (the hull of the inputs' windows), the smallest size_min.

    Unit u of the merge sees the union of [u*S - P_i, u*S - P_i + r_i - 1] over its inputs. With one
    stride S that is again a window: P = max P_i, r = max(r_i - 1 - P_i) + P + 1 (the largest field when
    the inputs are centred alike). With different strides no single window describes every unit: the field
    is marked misaligned and stride and padding are those of the input with the largest field.
    """
    if any(f.whole for f in fields) or len({len(f.axes) for f in fields}) != 1:
        return Field.whole_input()
    axes = []
    misaligned = any(f.misaligned for f in fields)
    for index in range(len(fields[0].axes)):
        column = [f.axes[index] for f in fields]
        size_min = min(a.size_min for a in column)
        if len({f.center(index) for f in fields}) > 1:
            misaligned = True
        if len({a.stride for a in column}) > 1:
            misaligned = True
            widest = max(column, key=lambda a: a.size)
            axes.append(AxisField(size=widest.size, size_min=size_min, stride=widest.stride,
                                  padding=widest.padding))
            continue
        padding = max(a.padding for a in column)
        end = max(a.size - 1 - a.padding for a in column)
        axes.append(AxisField(size=end + padding + 1, size_min=size_min, stride=column[0].stride,
                              padding=padding))
    return Field(tuple(axes), misaligned=misaligned)
