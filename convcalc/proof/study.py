"""`convcalc.study_fields`: what `convcalc rf` computes, as one library call.

    study = convcalc.study_fields("specs/vgg16.yaml", layer="features.16", unit=(3, 5), verify=True)
    study.region.axes[0].first, study.region.axes[0].last     # the unit's exact rows
    all(check.ok for check in study.checks)                   # every field measured and confirmed

Per call: the analysed summary (once), the layer studied, and whichever of these were asked for: a unit's exact
region, the effective receptive field (Luo et al., averaged over seeded random networks), the units and image an
overlay picture draws, the measured proof of the fields, and (when nothing else was asked) the growth table.
Nothing here draws, prints or switches BLAS kernels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..analysis.regions import (GrowthRow, UnitRegion, ancestors, centre_unit, check_layer, growth, parse_units,
                                spatial_layer, unit_region)
from ..analysis.summary import Summary, analyze
from ..errors import ConvcalcError
from ..execution.inputs import default_input, load_inputs
from ..spec.graph import Graph
from ..spec.load import Spec
from ..spec.source import graph_of
from .erf import Erf, effective_field
from . import verify as verification
from .verify import FieldCheck


@dataclass(frozen=True)
class FieldStudy:
    summary: Summary
    layer: str
    units: Optional[tuple[int, ...]] = None                   # the unit asked for (``unit``)
    region: Optional[UnitRegion] = None                        # its exact region
    erf: Optional[Erf] = None
    overlay_units: Optional[tuple[tuple[int, ...], ...]] = None   # the units an overlay outlines, in palette order
    image: Optional[np.ndarray] = None                         # the input the overlay draws on, [C, *S]
    checks: Optional[tuple[FieldCheck, ...]] = None            # the measured proof (``verify``)
    growth: Optional[tuple[GrowthRow, ...]] = None             # when nothing else was asked for


def default_overlay_units(summary: Summary, layer: str) -> tuple[tuple[int, ...], ...]:
    """The centre unit and the first (corner) unit of ``layer``."""
    lengths = summary.layer(layer).output_shape[1:]
    centre, corner = tuple(n // 2 for n in lengths), tuple(0 for _ in lengths)
    return (centre,) if centre == corner else (centre, corner)


def _image(path: str | os.PathLike | np.ndarray, shape: Optional[tuple[int, ...]], graph: Graph) -> np.ndarray:
    """The study's input image [C, *S]: a file (resized to ``shape``'s HxW when given) or an array."""
    if isinstance(path, np.ndarray):
        image = np.asarray(path, dtype=np.float64)
    else:
        resize = (shape[1], shape[2]) if shape is not None and len(shape) == 3 else None
        image = load_inputs(os.fspath(path), shape or graph.input_shape, resize)[0]
    if shape is not None and tuple(image.shape) != tuple(shape):
        raise ConvcalcError(f"--input {path if not isinstance(path, np.ndarray) else 'array'} has shape"
                            f" {list(image.shape)}, but --input-size is {list(shape)}")
    return image


def study_fields(spec: str | os.PathLike | Spec | Graph, *, layer: Optional[str] = None,
                 unit: str | Sequence[int] | None = None, input_size: Optional[Sequence[int]] = None,
                 image: str | os.PathLike | np.ndarray | None = None, erf: bool = False, samples: int = 16,
                 seed: int = 0, channel: Optional[int] = None, overlay: bool = False, verify: bool = False,
                 overrides: Mapping[str, Any] | None = None, allow_include_outside: bool = False) -> FieldStudy:
    """Study the receptive fields of ``layer`` (default: the spec's output, or the last layer with spatial axes
    when the output sees the whole input) at ``input_size`` (default: the image's, else the spec's).

    ``unit``: one index per spatial axis (negative from the end; or the text 'I,J'). ``erf``: the effective field
    of ``unit`` (default the centre) over ``samples`` networks seeded ``seed``, ``seed + 1``, ... (``channel``: seed
    one output channel). ``overlay``: choose the units to draw (``unit``, else the centre and the corner) and the
    image (``image``, else the built-in test image). ``verify``: measure the fields of every layer, or of ``layer``
    and the layers it reads when ``layer`` is given. With none of these and no ``unit``: the growth table."""
    graph = graph_of(spec, overrides, allow_include_outside)
    shape = tuple(input_size) if input_size is not None else None
    picture_input = _image(image, shape, graph) if image is not None else None
    if picture_input is not None:
        shape = tuple(picture_input.shape)
    summary = analyze(graph, shape)
    chosen = check_layer(summary, layer)
    units = None
    if unit is not None:
        units = parse_units(unit, summary, chosen) if isinstance(unit, str) else \
            parse_units(",".join(map(str, unit)), summary, chosen)
    found: dict[str, Any] = {}
    if units is not None:
        found["region"] = unit_region(summary, chosen, units)
    if erf:
        spatial_layer(summary, chosen)
        found["erf"] = effective_field(graph, summary.input_shape, chosen, units or centre_unit(summary, chosen),
                                       samples=samples, seed=seed, channel=channel, image=picture_input)
    if overlay:
        spatial_layer(summary, chosen)
        found["overlay_units"] = (units,) if units is not None else default_overlay_units(summary, chosen)
        found["image"] = picture_input if picture_input is not None else default_input(summary.input_shape)
    if verify:
        found["checks"] = verification.verify_fields(summary, None if layer is None else ancestors(summary, chosen))
    if not found:
        found["growth"] = growth(summary, chosen)
    return FieldStudy(summary, chosen, units, **found)


__all__ = ["FieldStudy", "default_overlay_units", "study_fields"]
