"""The model zoo as a table or JSON: one row per shipped spec, with what it promises (`expect:`) checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from rich.console import Group as RichGroup
from rich.text import Text

from ..analysis.gates import output_field
from ..analysis.summary import Summary
from ..algebra import Field
from .fit import Column, fit, hanging
from ..lint.checks import rf_sizes_at
from ..spec.load import gmacs_hold
from .summary import human, rf_json, rf_texts, shape_cell


@dataclass(frozen=True)
class ZooEntry:
    """A zoo spec and its analysis (None and ``error`` when it could not be analysed)."""

    name: str
    description: str
    summary: Optional[Summary]
    expect: dict[str, Any]
    error: str = ""


def _last_windowed(summary: Summary) -> tuple[str, Field] | None:
    """The layer whose field describes the output (a classifier's last feature map, not its logits), the global
    pools of squeeze-and-excitation gates left out: `gates.output_field`, as `convcalc rf` and lint's CC301."""
    found = output_field(summary)
    return None if found is None or not found.field.axes else (found.layer, found.field)


def _promise(entry: ZooEntry) -> tuple[str, Optional[bool]]:
    """The spec's published figures (its ``expect:`` params, MACs, GMACs as published, receptive fields of named
    layers) and whether the analysis meets them."""
    summary = entry.summary
    if summary is None:
        return "", None
    expect, totals = entry.expect, summary.totals
    parts, met = [], []
    for key, value in (("params", totals.params), ("macs", totals.macs)):
        if isinstance(expect.get(key), int):
            parts.append(f"{human(expect[key])}{' MACs' if key == 'macs' else ''}")
            met.append(expect[key] == value)
    if "gmacs" in expect:
        parts.append(f"{expect['gmacs']:g} G MACs")
        met.append(gmacs_hold(totals.macs, expect["gmacs"]))
    for name, size in expect.get("rf_at", {}).items():
        parts.append(f"RF {size} at {name}")
        sizes = rf_sizes_at(summary, name)
        met.append(bool(sizes) and sizes == [size] * len(sizes))
    return ", ".join(parts), (all(met) if met else None)


def zoo_json(entries: list[ZooEntry], libraries: list[str] = ()) -> dict[str, Any]:
    """The zoo as JSON: ``models`` (one object a spec), ``libraries`` (the block libraries' names)."""
    models = []
    for entry in entries:
        summary = entry.summary
        deepest = _last_windowed(summary) if summary else None
        promised, ok = _promise(entry)
        models.append({
            "name": entry.name, "description": entry.description, "error": entry.error or None,
            "input_shape": list(summary.input_shape) if summary else None,
            "output_shape": list(summary.output_shape) if summary else None,
            "params": summary.totals.params if summary else None,
            "macs": summary.totals.macs if summary else None,
            "rf_layer": deepest[0] if deepest else None,
            "rf": rf_json(deepest[1], summary.input_shape) if deepest and summary else None,
            "expect": entry.expect, "expect_met": ok})
    return {"schema_version": 1, "models": models, "libraries": list(libraries)}


COLUMNS = (Column("model", kind="name"), Column("input"), Column("params", "right"), Column("GMACs", "right"),
           Column("RF", "right"), Column("RF layer", kind="name"), Column("published", kind="text"))
DROP_ORDER = ("published", "RF layer", "RF", "input")     # what a narrow terminal loses first
NAME_ROOM = 20       # a model's name (what `convcalc analyze NAME` takes) is shortened to no fewer characters


LIBRARIES_LINE = "block libraries (include: zoo:NAME): "


def zoo_table(entries: list[ZooEntry], width: int | None = None, prose: int | None = None,
              libraries: list[str] = ()) -> RichGroup:
    """The zoo's rows, fitted into ``width`` columns (`report.fit`: the published figures are left out first, then
    the layers of the receptive fields, the fields, the input shapes, as few as need be; a long name is shortened
    in the middle to keep a column, but to no fewer than NAME_ROOM characters; a line says what; None: every
    column); numbers and shapes are never cut or wrapped. A spec that could not be analysed is listed under the
    table with its error; then a line names the block ``libraries``, wrapped to the width."""
    rows, errors = [], []
    for entry in entries:
        summary = entry.summary
        if summary is None:
            rows.append([entry.name, "", "", "", "", "", Text("not analysed (below)", style="red")])
            errors.append(Text(f"{entry.name}: {entry.error}", style="red"))
            continue
        deepest = _last_windowed(summary)
        rf, at = (rf_texts(deepest[1])[0], deepest[0]) if deepest else ("–", "")
        promised, ok = _promise(entry)
        mark = Text("") if ok is None else Text(" ✓", style="green") if ok else Text(" ✗", style="red")
        rows.append([entry.name, shape_cell(summary.input_shape), f"{summary.totals.params:,}",
                     f"{summary.totals.macs / 1e9:.3f}", rf, at, Text(promised) + mark])
    for dropped in range(1, len(DROP_ORDER) + 1):      # the fewest columns left out that leave names readable
        fitted = fit(COLUMNS, rows, width, DROP_ORDER[:dropped], prose=prose)
        if width is None or (fitted.total <= width and fitted.widths[0] >= NAME_ROOM):
            break
    table = fitted.table(
        "the model zoo (convcalc analyze NAME; convcalc zoo NAME prints a spec to copy)")
    listed = [Text(hanging(LIBRARIES_LINE + ", ".join(libraries), width or prose, 2))] if libraries else []
    return RichGroup(table, *errors, *listed)
