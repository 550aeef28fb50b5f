"""The data of `convcalc report`'s page: the library's own results, gathered into one JSON-able dict.

Nothing here computes a number the library does not: the ``analysis`` is exactly ``analyze --format json``
(`report.summary.to_json`), ``lint`` exactly ``lint --format json`` (`report.lint_text.to_json`), ``run`` exactly
``run --format json`` (`report.run.run_json`); ``growth`` is `analysis.regions.growth` (``rf``'s chart), and
``regions`` lists, per spatial axis of each layer, every unit's exact region ``[first, last]`` (`Field.region`, the
unclipped extension ``rf --unit`` prints) and what it really reads (`Field.extent`), tables shared between layers
whose fields agree. Pictures (the input image, the ERF heatmap, feature-map thumbnails) are PNG data URLs.
"""

from __future__ import annotations

import base64
import io
import os
from fractions import Fraction
from typing import Any, Optional, Sequence

import numpy as np

from ...algebra.numbers import fraction_text, json_number
from ...analysis.regions import GrowthRow, growth
from ...analysis.summary import Summary
from ...spec.graph import Graph
from ..canvas import Picture, save_picture
from ..drawing import _rgb
from ..summary import to_json

PAYLOAD_VERSION = 1
MAX_REGION_UNITS = 1 << 16      # a layer axis longer than this gets no region table (the page says so)


def png_url(picture: Picture | np.ndarray) -> str:
    """A picture as a ``data:image/png;base64,...`` URL (its text chunks kept)."""
    buffer = io.BytesIO()
    save_picture(picture, buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plain(value: Any) -> Any:
    """A layer argument as JSON: tuples as lists, exact fractions as text ('7/2'), anything else its text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    if isinstance(value, Fraction):
        return fraction_text(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def layer_notes(graph: Graph) -> dict[str, dict[str, Any]]:
    """Per layer what the analysis JSON leaves out: its arguments (normalised, as the layer unit holds them) and
    where the spec defines it (the file's name and the line: a page shared with others names no directory)."""
    notes = {}
    for node in graph.nodes:
        where = node.location
        notes[node.name] = {"args": plain(dict(getattr(node.layer, "args", {}) or {})),
                            "where": f"{os.path.basename(str(where.file))}:{where.line}" if where is not None else None,
                            "trace": list(node.trace)}
    return notes


def growth_json(rows: Sequence[GrowthRow]) -> list[dict[str, Any]]:
    """`analysis.regions.growth` as data (the rows ``convcalc rf`` charts)."""
    return [{"name": r.name, "type": r.type, "whole": r.whole, "size": list(r.size), "size_min": list(r.size_min),
             "stride": [json_number(s) for s in r.stride], "coverage": [float(c) for c in r.coverage],
             "misaligned": r.misaligned, "merge": r.merge, "max_input": r.max_input, "gate": r.gate}
            for r in rows]


def progressions(pairs: Sequence[Optional[tuple[int, int]]]) -> list[list[Optional[int]]]:
    """Per-unit ``(first, last)`` pairs (None: the unit reads nothing) as runs of arithmetic progressions
    ``[count, first, last, step_first, step_last]``: unit ``u`` of a run starting at unit ``u0`` has ``first +
    (u - u0) * step_first`` etc.; a None run is ``[count, None, None, 0, 0]``. An even field is one run per axis
    (a stride), its borders a few more; the page expands a run when a unit is asked for."""
    runs: list[list[Optional[int]]] = []
    for pair in pairs:
        if runs:
            run = runs[-1]
            if pair is None or run[1] is None:
                if pair is None and run[1] is None:
                    run[0] += 1
                    continue
            elif run[0] == 1:
                run[3], run[4] = pair[0] - run[1], pair[1] - run[2]
                run[0] = 2
                continue
            elif (pair[0], pair[1]) == (run[1] + run[0] * run[3], run[2] + run[0] * run[4]):
                run[0] += 1
                continue
        runs.append([1, None, None, 0, 0] if pair is None else [1, int(pair[0]), int(pair[1]), 0, 0])
    return runs


def region_tables(summary: Summary) -> dict[str, Any]:
    """Every unit's exact region, per layer and spatial axis: ``tables`` (`progressions` of the units' ``[first,
    last]``), ``layers[name] = {"region": [table per axis], "extent": [...]}`` (`Field.region`: the unclipped
    extension ``rf --unit`` prints; `Field.extent`: what the unit really reads), equal tables stored once. Layers
    whose field is a union of boxes (``terms``, none in the zoo) or whose axis is longer than MAX_REGION_UNITS are
    listed in ``skipped`` with the reason."""
    tables: list[list[list[Optional[int]]]] = []
    index: dict[str, int] = {}
    layers: dict[str, Any] = {}
    skipped: dict[str, str] = {}

    def table_id(pairs: list[Optional[tuple[int, int]]]) -> int:
        runs = progressions(pairs)
        key = repr(runs)
        if key not in index:
            index[key] = len(tables)
            tables.append(runs)
        return index[key]

    for row in summary.layers:
        field = row.rf
        lengths = row.output_shape[1:]
        if field.whole or not lengths or len(lengths) != len(field.axes):
            continue
        if field.terms:
            skipped[row.name] = "its field is a union of boxes: convcalc rf --unit shows a unit's region"
            continue
        if max(lengths) > MAX_REGION_UNITS:
            skipped[row.name] = f"more than {MAX_REGION_UNITS} units along an axis: convcalc rf --unit shows one"
            continue
        regions, extents = [], []
        for axis, length in zip(field.axes, lengths):
            found = [axis.region(unit) for unit in range(length)]
            reads = [axis.extent(unit) for unit in range(length)] if axis.finite is not None else found
            regions.append(table_id(found))
            extents.append(table_id(reads))
        layers[row.name] = {"region": regions, "extent": extents}
    return {"tables": tables, "layers": layers, "skipped": skipped}


PICTURE_SIDE = 1024         # the input picture keeps every k-th position so that at most this many are left (1-D: 8x)


def input_picture(image: np.ndarray) -> Optional[dict[str, Any]]:
    """The input the regions are drawn on: [C, H, W] as an RGB PNG; [C, D, H, W]: its middle depth slice; [C, L]:
    a strip of the signal (grey levels, 24 pixels high); None for a vector (no spatial axes, no regions). A large
    input keeps every ``step``-th position (``lengths`` are the input's own, in which regions are given)."""
    spatial = image.shape[1:]
    if not spatial:
        return None
    step = max(1, -(-max(spatial[-2:]) // (PICTURE_SIDE * (8 if len(spatial) == 1 else 1))))
    if len(spatial) == 1:
        strip = np.repeat(image[:, None, ::step], 24, axis=1)
        return {"png": png_url(_rgb(strip)), "axes": ["position"], "depth": None, "lengths": list(spatial),
                "step": step}
    depth = None
    if len(spatial) == 3:
        depth = spatial[0] // 2
        image = image[:, depth]
    return {"png": png_url(_rgb(image[:, ::step, ::step])), "axes": ["depth", "row", "column"][-len(spatial):],
            "depth": depth, "lengths": list(spatial), "step": step}


def build_payload(summary: Summary, *, source: str, image: np.ndarray, image_source: str,
                  rf_layer: str, lint: Optional[dict[str, Any]] = None, lint_note: Optional[str] = None,
                  erf: Optional[dict[str, Any]] = None, run: Optional[dict[str, Any]] = None,
                  thumbnails: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The page's data. ``summary``: the analysis; ``image``: the input [C, *S] regions are drawn on;
    ``rf_layer``: the layer chosen first for them; ``lint``: `lint_text.to_json` of the spec's lint (None with
    ``lint_note`` saying why not); ``erf``: ``{"layer", "units", "png", "samples"}``; ``run``: `run_json`;
    ``thumbnails``: per layer a PNG data URL of its feature maps."""
    picture = input_picture(image)
    return {
        "payload_version": PAYLOAD_VERSION,
        "source": source,
        "analysis": to_json(summary),
        "layers": layer_notes(summary.graph),
        "growth": growth_json(growth(summary)),
        "regions": region_tables(summary),
        "rf_layer": rf_layer,
        "image": None if picture is None else {**picture, "source": image_source},
        "lint": lint,
        "lint_note": lint_note,
        "erf": erf,
        "run": run,
        "thumbnails": thumbnails or {},
    }


__all__ = ["PAYLOAD_VERSION", "PICTURE_SIDE", "build_payload", "growth_json", "input_picture", "layer_notes", "plain", "png_url",
           "progressions", "region_tables"]
