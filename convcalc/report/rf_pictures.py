"""Pictures of receptive fields: the ERF heatmap of an `Erf`, and chosen units' regions over the input image.

Boxes are the units' regions clipped to the input (`AxisRegion.clipped`); see `convcalc.report.drawing` for the pixel
geometry. 3-D inputs show the depth slice through the (first) unit's centre.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..analysis.summary import Summary
from .drawing import erf_picture, overlay_picture
from ..proof.erf import Erf
from ..analysis.regions import UnitRegion, unit_region


def box_of(region: UnitRegion) -> Optional[tuple[tuple[int, int], ...]]:
    """The region clipped to the input, per axis, or None when it lies outside the input on some axis."""
    if region.empty or any(a.clipped is None for a in region.axes):
        return None
    return tuple(a.clipped for a in region.axes)


def _depth(region: UnitRegion) -> int:
    """For 3-D inputs: the depth slice through the middle of the region's part inside the input (else 0)."""
    if len(region.axes) != 3 or region.axes[0].clipped is None:
        return 0
    first, last = region.axes[0].clipped
    return (first + last) // 2


def erf_heatmap(erf: Erf) -> np.ndarray:
    """The ERF's mass as a heatmap with the theoretical region outlined (3-D: the slice through its centre)."""
    return erf_picture(erf.mass, box_of(erf.region), _depth(erf.region))


def overlay(summary: Summary, layer: str, units: Sequence[Sequence[int]], image: np.ndarray
            ) -> tuple[np.ndarray, tuple[UnitRegion, ...]]:
    """``image`` ([C, *S], the analysed input's shape) with unit ``i``'s clipped region outlined in
    ``convcalc.report.drawing.PALETTE[i]`` (none when it lies outside the input), and the units' regions."""
    regions = tuple(unit_region(summary, layer, u) for u in units)
    boxes = [box_of(r) for r in regions]
    first = next((r for r, b in zip(regions, boxes) if b is not None), regions[0])
    return overlay_picture(image, boxes, _depth(first)), regions


__all__ = ["box_of", "erf_heatmap", "overlay"]
