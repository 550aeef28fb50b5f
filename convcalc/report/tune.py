"""`convcalc tune`'s output: each conv's algorithm, who chose it, and the candidates' measured times."""

from __future__ import annotations

from typing import Any

from rich.console import Group as RichGroup
from rich.text import Text

from ..analysis.summary import Summary
from ..execution.tune import Tuning
from .fit import Column, fit
from .summary import shape_cell

SCHEMA_VERSION = 1


def tuning_note(tuning: Tuning) -> str:
    """One line: how many convs run a measured algorithm (and how many were timed now), the kernels, the cache."""
    kernels = ""
    if tuning.kernels:
        how = {"timed": "measured now", "cached": "measured before"}.get(tuning.kernels_by, "OpenBLAS's own pick")
        kernels = f"; OpenBLAS's {tuning.kernels} kernels ({how})"
    budget = "; out of time budget: the rest by the cost model" if tuning.out_of_budget else ""
    return (f"algorithms: {tuning.tuned} of {len(tuning.layers)} convs measured ({tuning.tuned - tuning.cached} now,"
            f" {tuning.timed} candidates timed){budget}, {tuning.model} by the cost model or the spec{kernels};"
            f" cache {tuning.path}")


def tune_json(summary: Summary, batch: int, dtype: str, tuning: Tuning) -> dict[str, Any]:
    rows = {row.name: row for row in summary.layers}
    return {
        "schema_version": SCHEMA_VERSION, "name": summary.name, "batch": batch, "dtype": dtype,
        "input_shape": list(summary.input_shape), "cache": tuning.path, "kernels": tuning.kernels,
        "kernels_chosen_by": tuning.kernels_by or None, "timed": tuning.timed, "out_of_budget": tuning.out_of_budget,
        "layers": [{"name": conv.name, "output_shape": list(rows[conv.name].output_shape), "algorithm": conv.algorithm,
                    "chosen_by": conv.chosen_by, "seconds": conv.seconds or None} for conv in tuning.layers],
    }


def tune_table(summary: Summary, batch: int, tuning: Tuning, width: int | None = None,
               prose: int | None = None) -> RichGroup:
    rows = {row.name: row for row in summary.layers}
    columns = [Column("name", kind="name"), Column("output"), Column("algorithm"), Column("by"),
               Column("candidates (fastest run, ms)", kind="text")]
    cells = []
    for conv in tuning.layers:
        times = ", ".join(f"{name} {seconds * 1000:.3g}" for name, seconds in
                          sorted(conv.seconds.items(), key=lambda item: item[1]))
        cells.append([conv.name, shape_cell(rows[conv.name].output_shape), conv.algorithm, conv.chosen_by, times])
    title = f"{summary.name}: batch {batch} × {shape_cell(summary.input_shape)}"
    table = fit(columns, cells, width, ("candidates (fastest run, ms)", "output", "by"), prose=prose).table(title)
    return RichGroup(table, Text(tuning_note(tuning) + "\n"))


__all__ = ["tune_json", "tune_table", "tuning_note"]
