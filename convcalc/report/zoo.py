"""The model zoo as a table or JSON: one row per shipped spec, with what it promises (`expect:`) checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from rich.markup import escape
from rich.table import Table

from ..analysis.summary import Summary
from ..algebra import Field
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
    """The deepest layer whose units see windows of the input (a classifier's last feature map, not its logits)."""
    for layer in reversed(summary.layers):
        if not layer.rf.whole and layer.rf.axes:
            return layer.name, layer.rf
    return None


def _promise(entry: ZooEntry) -> tuple[str, Optional[bool]]:
    """The spec's published figures (its ``expect:`` params and MACs) and whether the analysis meets them."""
    expect, totals = entry.expect, entry.summary.totals if entry.summary else None
    parts, ok = [], None
    for key, value in (("params", totals and totals.params), ("macs", totals and totals.macs)):
        if isinstance(expect.get(key), int) and value is not None:
            parts.append(f"{human(expect[key])}{' MACs' if key == 'macs' else ''}")
            ok = (ok is not False) and expect[key] == value
    return ", ".join(parts), ok


def zoo_json(entries: list[ZooEntry]) -> dict[str, Any]:
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
    return {"schema_version": 1, "models": models}


def zoo_table(entries: list[ZooEntry], width: int = 200) -> Table:
    """The zoo's rows; narrower than 110 columns the published figures are left out, narrower than 80 the
    receptive fields too (the caption says so); numbers and shapes are never wrapped."""
    shown = 6 if width >= 110 else 5 if width >= 80 else 4
    left_out = ["published figures", "receptive fields"][:6 - shown]
    table = Table(title="the model zoo (convcalc analyze NAME; convcalc zoo NAME prints a spec to copy)",
                  title_justify="left",
                  caption=f"left out to fit {width} columns: {', '.join(left_out)} (--format json has them)"
                  if left_out else None, caption_justify="left")
    for column, justify, whole in (("model", "left", False), ("input", "left", True), ("params", "right", True),
                                   ("GMACs", "right", True), ("RF (deepest windowed layer)", "left", False),
                                   ("published", "left", False))[:shown]:
        table.add_column(column, justify=justify, overflow="fold", no_wrap=whole)  # type: ignore[arg-type]
    for entry in entries:
        summary = entry.summary
        if summary is None:
            table.add_row(escape(entry.name), *[""] * (shown - 2), f"[red]{escape(entry.error)}[/red]")
            continue
        deepest = _last_windowed(summary)
        rf = f"{rf_texts(deepest[1])[0]} ({escape(deepest[0])})" if deepest else "–"
        promised, ok = _promise(entry)
        mark = "" if ok is None else (" [green]✓[/green]" if ok else " [red]✗[/red]")
        table.add_row(*(escape(entry.name), shape_cell(summary.input_shape), f"{summary.totals.params:,}",
                        f"{summary.totals.macs / 1e9:.3f}", rf, escape(promised) + mark)[:shown])
    return table
