"""`convcalc report`'s one library call: analyse, lint, (optionally) run and study the ERF, and write the page.

    html = report_page(graph, lint_paths=["specs/resnet50.yaml"])      # the page's text, one self-contained file

Each number comes from the library's own call (`analyze`, `lint_paths`, `convcalc.run`, `study_fields`), gathered
by `payload.build_payload` and inlined by `page.render_page`. Nothing here prints or writes files.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...analysis.regions import check_layer
from ...analysis.summary import Summary, analyze
from ...execution.inputs import default_input
from ...spec.graph import Graph
from ..lint_text import to_json as lint_json
from ..maps import map_grid
from ..rf_pictures import erf_heatmap
from ..run import run_json
from .page import render_page
from .payload import build_payload, png_url

THUMBNAIL_CHANNELS = 4
THUMBNAIL_TILE = 40
THUMBNAIL_SIDE = 64                 # a thumbnail's map keeps every k-th position along an axis, at most this many


def thumbnail_maps(values: np.ndarray) -> np.ndarray:
    """One sample's maps [C, *S], its first THUMBNAIL_CHANNELS channels, every k-th position of each axis (the
    last two of a 3-D map, whose middle depth slice is drawn) so that at most THUMBNAIL_SIDE (1-D: 4x that) are
    left: a picture, not the numbers."""
    maps = values[:THUMBNAIL_CHANNELS]
    spatial = maps.ndim - 1
    limit = THUMBNAIL_SIDE * 4 if spatial == 1 else THUMBNAIL_SIDE
    steps = [slice(None)] + [slice(None, None, max(1, -(-n // limit))) if axis >= spatial - 2 else slice(None)
                             for axis, n in enumerate(maps.shape[1:])]
    return maps[tuple(steps)]


def _thumbnails(maps: dict[str, np.ndarray]) -> dict[str, str]:
    """Per layer, its first sample's feature maps (`thumbnail_maps`, drawn by `report.maps.map_grid`) as a PNG."""
    return {name: png_url(map_grid(thumbnail_maps(np.asarray(values[0])), THUMBNAIL_CHANNELS, THUMBNAIL_TILE))
            for name, values in maps.items()}


def _first_layer(summary: Summary, layer: Optional[str]) -> Optional[str]:
    """The layer the RF view starts with: ``layer`` (checked), else the last with spatial regions (as ``convcalc rf
    --unit``'s default), None when no layer has any (a network of vectors)."""
    if layer is not None:
        return check_layer(summary, layer)
    if all(row.rf.whole for row in summary.layers):
        return None
    return check_layer(summary, None, regions=True)


def report_payload(graph: Graph, *, source: str = "", lint_paths: Sequence[str | os.PathLike] = (),
                   lint_note: Optional[str] = None, lint_report: Any = None,
                   input: Optional[str | os.PathLike] = None, input_size: Optional[Sequence[int]] = None,
                   layer: Optional[str] = None, erf: bool = False, samples: int = 16, seed: int = 0,
                   run: bool = False, max_memory: int | str | None = None,
                   on_progress: Optional[Callable[[str, int, int], None]] = None) -> dict[str, Any]:
    """The page's data for ``graph``. ``lint_paths``: the spec file(s) to lint (a ``lint_report`` already made
    replaces them; neither: ``lint_note`` says why there is no lint); ``input``: the image (or .npy) regions are
    drawn on and the network runs on (default: the built-in test image at the spec's size, or ``input_size``);
    ``layer``: the layer whose units the RF view starts with (default: as ``convcalc rf --unit``: the last with
    spatial regions); ``erf``: compute its effective receptive field (``samples``, ``seed``); ``run``: execute the
    network and keep its per-layer checks and feature-map thumbnails."""
    from ...proof.study import study_fields
    from ...proof.run import run as run_network

    if input is not None or input_size is not None:       # the size of the image, or the one asked for
        summary = study_fields(graph, image=input, input_size=input_size, max_memory=max_memory).summary
    else:
        summary = analyze(graph)
    chosen = _first_layer(summary, layer)
    image = default_input(summary.input_shape)
    if input is not None and chosen is not None:        # read only when there are regions to draw on it
        image = study_fields(graph, image=input, input_size=input_size, layer=chosen, overlay=True,
                             max_memory=max_memory).image
    erf_data = None
    if erf:
        study = study_fields(graph, layer=chosen, erf=True, samples=samples, seed=seed, image=input,
                             input_size=None if input is not None else input_size, max_memory=max_memory,
                             on_progress=on_progress)
        erf_data = {"layer": study.erf.layer, "units": list(study.erf.units), "samples": study.erf.samples,
                    "png": png_url(erf_heatmap(study.erf))}
    run_data = thumbnails = None
    if run:
        given = None if input is None and input_size is None else image     # the picture the regions are drawn on
        checked = run_network(graph, given, keep_maps=True, seed=seed, max_memory=max_memory,
                              on_progress=on_progress)
        run_data = run_json(checked.result, checked.source, None, checked.rf_checks)
        thumbnails = _thumbnails(checked.result.maps)
    if lint_report is None and lint_paths:
        from ...lint import lint_paths as lint_files
        lint_report = lint_files(list(lint_paths))
    lint_data = lint_json(lint_report) if lint_report is not None else None
    image_source = str(input) if input is not None else "the built-in test image"
    return build_payload(summary, source=source or summary.name, image=image, image_source=image_source,
                         rf_layer=chosen, lint=lint_data, lint_note=lint_note if lint_data is None else None,
                         erf=erf_data, run=run_data, thumbnails=thumbnails)


def report_page(graph: Graph, **options: Any) -> str:
    """The self-contained HTML page of ``graph`` (`report_payload`'s options)."""
    return render_page(report_payload(graph, **options))


__all__ = ["report_page", "report_payload"]
