"""`convcalc tune`'s output: each conv's algorithm, who chose it, and the candidates' measured times."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Group as RichGroup
from rich.text import Text

from ..analysis.summary import Summary
from ..execution.tune import Tuning
from .fit import Column, fit
from .summary import shape_cell

SCHEMA_VERSION = 1


def tuning_note(tuning: Tuning) -> str:
    """How many convs run a measured algorithm (and how many candidates were timed now), the kernels, the cache; and
    whether the budget ran out or the machine was busy while timing."""
    kernels = ""
    if tuning.kernels:
        how = {"timed": "measured now", "cached": "measured before",
               "pinned": "OPENBLAS_CORETYPE sets them: no other set timed"}.get(tuning.kernels_by, "OpenBLAS's own pick")
        if tuning.kernels_timed:
            how += f", {tuning.kernels_timed} kernel sets timed"
        kernels = f"; OpenBLAS's {tuning.kernels} kernels ({how})"
    fixed = f" ({tuning.fixed} with one candidate worth timing or too few MACs)" if tuning.fixed else ""
    note = (f"algorithms: {tuning.tuned} of {len(tuning.layers)} convs measured ({tuning.tuned - tuning.cached} now,"
            f" {tuning.timed} candidates timed), {tuning.model} by the cost model or the spec{fixed}{kernels};"
            f" cache {tuning.path}")
    if tuning.out_of_budget:
        note += ". Out of time budget: the rest keep the cost model's choice until tuned"
    cpus = os.cpu_count() or 1
    if tuning.load is not None and tuning.load > cpus:
        note += (f". Timed while the load average was {tuning.load:g} on {cpus} CPUs: noisy; tune again on a quiet"
                 " machine (convcalc tune SPEC --again)")
    return note


def tune_json(summary: Summary, batch: int, dtype: str, tuning: Tuning) -> dict[str, Any]:
    rows = {row.name: row for row in summary.layers}
    return {
        "schema_version": SCHEMA_VERSION, "name": summary.name, "batch": batch, "dtype": dtype,
        "input_shape": list(summary.input_shape), "cache": tuning.path, "kernels": tuning.kernels,
        "kernels_chosen_by": tuning.kernels_by or None, "timed": tuning.timed, "kernel_sets_timed": tuning.kernels_timed,
        "fixed": tuning.fixed, "out_of_budget": tuning.out_of_budget, "load_average": tuning.load,
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
