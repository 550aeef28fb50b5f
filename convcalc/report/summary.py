"""Summary -> JSON data, Markdown or CSV text, and the rows every format shows; the Rich table is
`summary_table`'s (which imports Rich: JSON needs none), its names also found here. Nothing here prints."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

from ..analysis.summary import LayerResult, Summary, previous_on_path
from ..algebra import Field
from ..algebra.numbers import fraction_text, json_number

# 2: each layer's rf names only the layer before it on its max/min path (max_path_prev, min_path_prev) instead of
# listing the whole paths (max_path, min_path), which made the JSON quadratic in the depth
# 3: rf.misaligned (and aligned) mark only the merge whose own inputs differ, no longer every layer after it
SCHEMA_VERSION = 3


# --------------------------------------------------------------------------- numbers

# `json_number` (imported above, and from here by the other reports) and `fraction_text`: the one way each format
# writes an exact number (README "Conventions")


def rf_json(field: Field, input_shape: Sequence[int]) -> dict[str, Any]:
    """The receptive field as data: per axis the largest and smallest region over the units (``size``,
    ``size_min``), stride and padding; the largest and smallest field along one path (``path_size_max``,
    ``path_size_min``) and the layer before this one on those paths (``max_path_prev``, ``min_path_prev``; None:
    the path starts at the input), whose own ``*_path_prev`` continue them, so the JSON stays linear in the depth;
    ``misaligned`` (= not ``aligned``)."""
    paths = {"max_path_prev": previous_on_path(field.max_link), "min_path_prev": previous_on_path(field.min_link)}
    if field.whole:
        full = [[0, n - 1] for n in input_shape[1:]]
        reach = [list(r) for r in field.reach] if field.reach is not None else full
        extent = [b - a + 1 for a, b in reach]
        return {"whole_input": True, "reshaped": field.reshaped, "reach": reach, "covers_input": not field.partial,
                "size": extent, "size_min": extent,
                "stride": None, "padding": None, "aligned": True, "misaligned": False, "path_size_max": extent,
                "path_size_min": extent, **paths}
    return {
        "whole_input": False,
        "size": [json_number(a.size) for a in field.axes],
        "size_min": [json_number(a.size_min) for a in field.axes],
        "stride": [json_number(a.stride) for a in field.axes],
        "padding": [json_number(a.padding) for a in field.axes],
        "aligned": not field.misaligned,
        "misaligned": field.misaligned,
        "path_size_max": [json_number(a.path_size_max) for a in field.axes],
        "path_size_min": [json_number(a.path_size_min) for a in field.axes],
        **paths,
    }


def human(count: int | float, unit: str = "") -> str:
    """1234567 -> '1.23 M'."""
    for threshold, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= threshold:
            return f"{count / threshold:.2f} {suffix}{unit}"
    return f"{count:g} {unit}".rstrip() if unit else f"{count:g}"


def human_bytes(count: int) -> str:
    for threshold, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if count >= threshold:
            return f"{count / threshold:.2f} {suffix}"
    return f"{count} B"


def _axes(values: Sequence[Fraction | str]) -> str:
    texts = [v if isinstance(v, str) else fraction_text(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def _reach_text(field: Field) -> str:
    """A partial whole field's reach, e.g. '[0, 218]²' or '[0, 218]×[0, 30]'."""
    parts = [f"[{a}, {b}]" for a, b in field.reach]
    return parts[0] + {2: "²", 3: "³"}.get(len(parts), "") if len(set(parts)) == 1 and len(parts) > 1 else "×".join(parts)


def rf_texts(field: Field) -> tuple[str, str, str]:
    """(size, stride, padding) for a table cell; size shows 'min..max' per axis where the units' regions differ
    in size (uneven windows, e.g. after a transposed conv: '188..204'), and ⚠ at a misaligned merge
    (the merge itself, not the layers after it)."""
    if field.partial:
        return f"{_reach_text(field)} only", "–", "–"
    if field.whole:
        return ("reshaped" if field.reshaped else "whole input"), "–", "–"
    if not field.axes:
        return "1", "1", "0"
    size = _axes([f"{low}..{high}" if low != high else high
                  for low, high in ((a.size_min, a.size) for a in field.axes)])
    if field.misaligned:
        size += " ⚠"
    return size, _axes([a.stride for a in field.axes]), _axes([a.padding for a in field.axes])


def shape_cell(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape)


# --------------------------------------------------------------------------- rows at a depth

@dataclass(frozen=True)
class Row:
    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    rf: Field
    depth: int
    layers: int = 1
    part: bool = False          # a composite layer's part (or the standard layer it replaces): not in the totals


def part_rows(layer: LayerResult, depth: int) -> list[Row]:
    """Rows for a composite layer's parts, then one for the standard layer it replaces (``--parts``)."""
    result = [Row(f"{layer.name}.{p.name}", p.type, p.inferred.out_shape, p.inferred.param_count, p.inferred.macs,
                  layer.rf, depth, part=True) for p in layer.parts]
    if layer.baseline is not None:
        ratios = cost_ratios(layer)
        base = layer.baseline
        result.append(Row(f"{layer.name} ≙ standard", f"{base.type}: ×{float(ratios['macs']):.4g} MACs,"
                          f" ×{float(ratios['params']):.4g} params", base.inferred.out_shape,
                          base.inferred.param_count, base.inferred.macs, layer.rf, depth, part=True))
    return result


def cost_ratios(layer: LayerResult) -> dict[str, Fraction]:
    """The composite's params and MACs over those of the standard layer it replaces (exact)."""
    base = layer.baseline.inferred
    return {"params": Fraction(layer.params, base.param_count) if base.param_count else Fraction(0),
            "macs": Fraction(layer.macs, base.macs) if base.macs else Fraction(0)}


def rows(summary: Summary, depth: int | None = None, parts: bool = False) -> list[Row]:
    """One row per layer, or per group at ``depth`` (groups deeper than it are folded into one row);
    with ``parts``, a composite layer's parts follow it as indented rows."""
    result: list[Row] = []
    index_of: dict[str, int] = {}
    groups = summary.graph.groups
    by_name = {layer.name: layer for layer in summary.layers}
    for layer in summary.layers:
        if depth is None or len(layer.groups) < depth:
            kind = layer.type if layer.tied_to is None else f"{layer.type} (tied: {layer.tied_to})"
            result.append(Row(layer.name, kind, layer.output_shape, layer.params, layer.macs, layer.rf,
                              len(layer.groups)))
            if parts:
                result.extend(part_rows(layer, len(layer.groups) + 1))
            continue
        group = groups[layer.groups[depth - 1]]
        if group.name in index_of:
            row = result[index_of[group.name]]
            result[index_of[group.name]] = Row(row.name, row.type, row.output_shape, row.params + layer.params,
                                               row.macs + layer.macs, row.rf, row.depth, row.layers + 1)
        else:
            out = by_name.get(group.output)   # None: the group passes its input through (all bypassed)
            shape = out.output_shape if out else summary.input_shape
            field = out.rf if out else Field.identity(len(summary.input_shape) - 1)
            index_of[group.name] = len(result)
            result.append(Row(group.name, group.label, shape, layer.params, layer.macs, field, depth - 1))
    return result


# --------------------------------------------------------------------------- formats

def to_json(summary: Summary) -> dict[str, Any]:
    """The stable JSON contract (schema_version 3): fields may be added, never renamed (a change bumps the version).
    Linear in the number of layers: a layer's paths are named by their previous layer, a group's sums are one pass."""
    totals = summary.totals
    group_sums = {name: [0, 0] for name in summary.graph.groups}
    for row in summary.layers:
        for name in dict.fromkeys(row.groups):
            sums = group_sums.setdefault(name, [0, 0])
            sums[0] += row.params
            sums[1] += row.macs
    return {
        "schema_version": SCHEMA_VERSION,
        "name": summary.name,
        "input_shape": list(summary.input_shape),
        "output_shape": list(summary.output_shape),
        "output": summary.output,
        "dtype": summary.dtype,
        "layers": [_layer_json(layer, summary) for layer in summary.layers],
        "groups": [
            {"name": g.name, "type": g.label, "parent": g.parent, "output": g.output, "depth": g.depth,
             "params": group_sums[g.name][0], "macs": group_sums[g.name][1]}
            for g in summary.graph.groups.values()
        ],
        "totals": {
            "params": totals.params,
            "trainable_params": totals.trainable_params,
            "buffers": totals.buffers,
            "macs": totals.macs,
            "flops": totals.flops,
            "activations": totals.activations,
            "activation_bytes": totals.activation_bytes,
            "peak_activation_bytes": totals.peak_activation_bytes,
            "param_bytes": totals.param_bytes,
        },
    }


def _layer_json(layer: LayerResult, summary: Summary) -> dict[str, Any]:
    return {
        "name": layer.name,
        "type": layer.type,
        "inputs": list(layer.inputs),
        "output_shape": list(layer.output_shape),
        "params": layer.params,
        "trainable_params": layer.trainable_params,
        "buffers": layer.buffers,
        "macs": layer.macs,
        "flops": layer.flops,
        "activations": layer.activations,
        "weights": {k: list(v) for k, v in layer.weights.items()},
        "tied_to": layer.tied_to,      # 'tie:': the layer whose parameters it uses (its own weights: none)
        "rf": rf_json(layer.rf, summary.input_shape),
        "groups": list(layer.groups),
        "parts": [_part_json(layer, part) for part in layer.parts],
        "baseline": _baseline_json(layer),
    }


def _part_json(layer: LayerResult, part) -> dict[str, Any]:
    """A composite's part; its parameters are ``<layer>.<part>.<param>`` in a state dict."""
    return {
        "name": f"{layer.name}.{part.name}",
        "type": part.type,
        "inputs": [layer.inputs[0] if name == "input" else f"{layer.name}.{name}" for name in part.inputs],
        "output_shape": list(part.inferred.out_shape),
        "params": part.inferred.param_count,
        "buffers": part.inferred.buffer_count,
        "macs": part.inferred.macs,
        "weights": {k: list(v) for k, v in part.inferred.params.items()},
    }


def _baseline_json(layer: LayerResult) -> dict[str, Any] | None:
    """The standard layer a composite replaces, and the composite's cost relative to it."""
    if layer.baseline is None:
        return None
    base = layer.baseline.inferred
    ratios = cost_ratios(layer)
    return {
        "type": layer.baseline.type,
        "output_shape": list(base.out_shape),
        "params": base.param_count,
        "macs": base.macs,
        "weights": {k: list(v) for k, v in base.params.items()},
        "params_ratio": float(ratios["params"]),
        "macs_ratio": float(ratios["macs"]),
        "params_ratio_exact": str(ratios["params"]),
        "macs_ratio_exact": str(ratios["macs"]),
    }


def totals_lines(summary: Summary) -> list[tuple[str, str]]:
    t = summary.totals
    return [
        ("params", f"{t.params:,}" + (f" (trainable {t.trainable_params:,})" if t.trainable_params != t.params
                                       else " (all trainable)")),
        ("buffers", f"{t.buffers:,} (BatchNorm running statistics; not counted in params)"),
        ("MACs", f"{t.macs:,} ({human(t.macs)})"),
        ("FLOPs", f"{t.flops:,} ({human(t.flops)}; 2 per MAC)"),
        ("activations", f"{human_bytes(t.activation_bytes)} total, {human_bytes(t.peak_activation_bytes)} peak"
                        f" ({summary.dtype}, batch 1)"),
        ("weights", f"{human_bytes(t.param_bytes)} ({summary.dtype}, parameters and buffers)"),
    ]


HEADERS = ("name", "type", "output shape", "params", "MACs", "RF size", "RF stride", "RF padding")


def _cells(row: Row) -> list[str]:
    size, stride, padding = rf_texts(row.rf) if not row.part else ("", "", "")
    return [row.name, row.type, shape_cell(row.output_shape), f"{row.params:,}", f"{row.macs:,}", size, stride,
            padding]


def to_markdown(summary: Summary, depth: int | None = None, parts: bool = False) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"### {escape(summary.name)}", "",
             f"Input `{shape_cell(summary.input_shape)}` → output `{shape_cell(summary.output_shape)}`", "",
             "| " + " | ".join(HEADERS) + " |",
             "|" + "|".join("---:" if h in ("params", "MACs") else "---" for h in HEADERS) + "|"]
    for row in rows(summary, depth, parts):
        cells = _cells(row)
        if row.part:
            cells[0] = "↳ " + cells[0]
        lines.append("| " + " | ".join(escape(c) for c in cells) + " |")
    lines.append("")
    lines.extend(f"- **{label}**: {escape(value)}" for label, value in totals_lines(summary))
    return "\n".join(lines) + "\n"


CSV_HEADERS = ("name", "type", "output_shape", "params", "macs", "flops", "rf_size", "rf_size_min", "rf_stride",
               "rf_padding")


def to_csv(summary: Summary, depth: int | None = None, parts: bool = False) -> str:
    """One row per layer (or group); per-axis values joined with 'x'; a whole-input field is 'whole'.
    With ``parts`` a composite's parts follow it (their receptive-field cells empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADERS)
    for row in rows(summary, depth, parts):
        if row.part:
            rf = ["", "", "", ""]
        elif row.rf.partial:
            rf = ["x".join(str(b - a + 1) for a, b in row.rf.reach)] * 2 + ["", ""]
        elif row.rf.whole:
            rf = ["reshaped" if row.rf.reshaped else "whole"] * 2 + ["", ""]
        else:
            rf = ["x".join(fraction_text(getattr(a, attr)) for a in row.rf.axes)
                  for attr in ("size", "size_min", "stride", "padding")]
        writer.writerow([row.name, row.type, "x".join(map(str, row.output_shape)), row.params, row.macs,
                         2 * row.macs, *rf])
    return buffer.getvalue()


_TABLE_NAMES = ("COLUMNS", "DROP_ORDER", "LayerTable", "to_table")


def __getattr__(name: str):
    """The table's names (`summary_table`), imported when first asked for: JSON, Markdown and CSV need no Rich."""
    if name not in _TABLE_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import summary_table

    return getattr(summary_table, name)

