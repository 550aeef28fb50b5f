"""`convcalc.study_fields`: what `convcalc rf` computes, as one library call.

    study = convcalc.study_fields("specs/vgg16.yaml", layer="features.16", unit=(3, 5), verify=True)
    study.region.axes[0].first, study.region.axes[0].last     # the unit's exact rows
    all(check.ok for check in study.checks)                   # every field measured and confirmed

Per call: the analysed summary (once), the layer studied, and whichever of these were asked for: a unit's exact
region, the effective receptive field (Luo et al., averaged over seeded random networks), the units and image an
overlay picture draws, the measured proof of the fields, and (when nothing else was asked) the growth table.
Nothing here draws, prints or switches BLAS kernels. An input image is read only when the ERF or an overlay uses
its pixels (its header gives the input size), and only once the memory the study needs (`study_estimate`, the
pictures the CLI draws of it included) fits ``max_memory``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..analysis.regions import (GrowthRow, UnitRegion, ancestors, centre_unit, check_layer, growth, parse_units,
                                spatial_layer, unit_region)
from ..analysis.summary import Summary, analyze
from ..errors import ConvcalcError
from ..algebra.shapes import prod
from ..execution.inputs import DeclaredInput, declare_inputs, default_input, expand_paths, load_inputs
from ..execution.memory import (BASE_OVERHEAD, Estimate, check_memory, input_preparing, mask_memory, memory_budget,
                                picture_memory)
from ..spec.graph import Graph
from ..spec.load import Spec
from ..spec.source import graph_of
from .erf import Erf, effective_field, erf_memory, erf_summary
from .run import analyze_input
from . import verify as verification
from .verify import BUDGET, FieldCheck


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


def _resize(path: str | os.PathLike, shape: Optional[tuple[int, ...]]) -> Optional[tuple[int, int]]:
    """Images are resized to ``shape``'s HxW; .npy files keep their own size."""
    if shape is None or len(shape) != 3 or all(p.suffix.lower() == ".npy" for p in expand_paths(os.fspath(path))):
        return None
    return shape[1], shape[2]


def _image_shape(path: str | os.PathLike | np.ndarray, shape: Optional[tuple[int, ...]],
                 graph: Graph) -> tuple[tuple[int, ...], Optional[DeclaredInput]]:
    """The shape [C, *S] of the study's input image (a file, resized to ``shape``'s HxW when given, or an array),
    from the file's header alone, and what the file declares."""
    declared = None
    if isinstance(path, np.ndarray):
        found = tuple(path.shape)
    else:
        declared = declare_inputs(os.fspath(path), shape or graph.input_shape, resize=_resize(path, shape))
        found = tuple(declared.shape[1:])
    if shape is not None and found != tuple(shape):
        raise ConvcalcError(f"--input {path if not isinstance(path, np.ndarray) else 'array'} has shape"
                            f" {list(found)}, but --input-size is {list(shape)}")
    return found, declared


def _image(path: str | os.PathLike | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The study's input image [C, *S] (its first sample), at ``shape`` (`_image_shape`)."""
    if isinstance(path, np.ndarray):
        return np.asarray(path, dtype=np.float64)
    return load_inputs(os.fspath(path), shape, _resize(path, shape))[0]


def _zoom(spatial: Sequence[int]) -> int:
    """`report.drawing.zoom_for`'s pixels per input position (320 / the longest axis, 1 to 40)."""
    return max(1, min(40, -(-320 // max(max(spatial, default=1), 1))))


def study_estimate(summary: Summary, *, erf: Optional[Summary] = None, overlay: bool = False,
                   verify: bool = False, image: Optional[DeclaredInput] = None) -> Estimate:
    """An upper bound on the memory `study_fields` needs for these requests (and the CLI's pictures of them): the
    image read for the ERF or an overlay (or the built-in one drawn), the ERF of the truncated network ``erf``
    (`erf.erf_summary`, `erf.erf_memory`), the pictures, the measured proof (`execution.memory.mask_memory`)."""
    estimate = Estimate()
    shape = tuple(summary.input_shape)
    spatial, elements = shape[1:], prod(shape)
    erf_asked = erf is not None
    pixels = 8 * elements if erf_asked or overlay else 0
    estimate.consider(f"the input image {list(shape)} (float64)", pixels)
    if erf_asked or overlay:
        largest = image.largest_file if image is not None else 0
        estimate.phase({"input": input_preparing(elements, len(spatial), shape[0], largest)})
    if erf_asked:
        estimate.phase({"input": pixels, "effective receptive field": erf_memory(erf, estimate)})
    if erf_asked or overlay:
        estimate.phase({"input": pixels, "pictures": 8 * prod(spatial) + picture_memory(spatial, _zoom(spatial))})
    if verify:
        estimate.phase({"receptive-field proof": mask_memory(summary, BUDGET, estimate), "overhead": BASE_OVERHEAD})
    return estimate


ERF_STAGE = "effective receptive field"
PROOF_STAGE = "receptive-field proof"


def _stage(on_progress: Optional[Callable[[str, int, int], None]], stage: str
           ) -> Optional[Callable[[int, int], None]]:
    """A ``(done, total)`` callback reporting ``stage`` to ``on_progress(stage, done, total)``."""
    if on_progress is None:
        return None
    return lambda done, total: on_progress(stage, done, total)


def study_fields(spec: str | os.PathLike | Spec | Graph, *, layer: Optional[str] = None,
                 unit: str | Sequence[int] | None = None, input_size: Optional[Sequence[int]] = None,
                 image: str | os.PathLike | np.ndarray | None = None, erf: bool = False, samples: int = 16,
                 seed: int = 0, channel: Optional[int] = None, overlay: bool = False, verify: bool = False,
                 overrides: Mapping[str, Any] | None = None, allow_include_outside: bool = False,
                 max_memory: int | str | None = None,
                 on_progress: Optional[Callable[[str, int, int], None]] = None) -> FieldStudy:
    """Study the receptive fields of ``layer`` (default: `regions.check_layer`'s: the spec's output, or the map
    the classifier gathers, SE gates left out) at ``input_size`` (default: the image's, else the spec's).

    ``unit``: one index per spatial axis (negative from the end; or the text 'I,J'). ``erf``: the effective field
    of ``unit`` (default the centre) over ``samples`` networks seeded ``seed``, ``seed + 1``, ... (``channel``: seed
    one output channel). ``overlay``: choose the units to draw (``unit``, else the centre and the corner) and the
    image (``image``, else the built-in test image). ``verify``: measure the fields of every layer, or of ``layer``
    and the layers it reads when ``layer`` is given. With none of these and no ``unit``: the growth table.
    ``max_memory``: the memory budget, as `convcalc.run`'s (refused before anything large is read or drawn).
    ``on_progress(stage, done, total)``: called as the ERF's samples ('effective receptive field') and the proof's
    layers ('receptive-field proof') finish."""
    graph = graph_of(spec, overrides, allow_include_outside)
    budget = memory_budget(max_memory)
    shape = tuple(input_size) if input_size is not None else None
    declared = None
    if image is not None:
        shape, declared = _image_shape(image, shape, graph)
    if image is not None and input_size is None:     # the image's size: an error says so, and what works
        summary = analyze_input(graph, shape, image, None, option="--input-size")
    elif input_size is not None:                       # --input-size's: the same, with the spec's line
        summary = analyze_input(graph, shape, None, None, option="--input-size")
    else:
        summary = analyze(graph, shape)
    chosen = check_layer(summary, layer, regions=unit is not None or erf or overlay)
    units = None
    if unit is not None:
        units = parse_units(unit, summary, chosen) if isinstance(unit, str) else \
            parse_units(",".join(map(str, unit)), summary, chosen)
    if erf or overlay:
        spatial_layer(summary, chosen)
    truncated = erf_summary(graph, summary.input_shape, chosen) if erf else None
    check_memory(study_estimate(summary, erf=truncated, overlay=overlay, verify=verify, image=declared), budget,
                 "the study")
    picture_input = _image(image, tuple(summary.input_shape)) if image is not None and (erf or overlay) else None
    found: dict[str, Any] = {}
    if units is not None:
        found["region"] = unit_region(summary, chosen, units)
    if erf:
        spatial_layer(summary, chosen)
        found["erf"] = effective_field(graph, summary.input_shape, chosen, units or centre_unit(summary, chosen),
                                       samples=samples, seed=seed, channel=channel, image=picture_input,
                                       truncated=truncated, on_progress=_stage(on_progress, ERF_STAGE))
    if overlay:
        spatial_layer(summary, chosen)
        found["overlay_units"] = (units,) if units is not None else default_overlay_units(summary, chosen)
        found["image"] = picture_input if picture_input is not None else default_input(summary.input_shape)
    if verify:
        found["checks"] = verification.verify_fields(summary, None if layer is None else ancestors(summary, chosen),
                                                     on_progress=_stage(on_progress, PROOF_STAGE))
    if not found:
        found["growth"] = growth(summary, chosen)
    return FieldStudy(summary, chosen, units, **found)


__all__ = ["FieldStudy", "default_overlay_units", "study_estimate", "study_fields"]
