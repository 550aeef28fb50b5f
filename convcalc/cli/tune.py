"""`convcalc tune SPEC`: time each conv's algorithms (and OpenBLAS's kernels) on this machine, and cache the winners
(`convcalc.execution.tune`); `run_tuner` is the same for `convcalc run`, within a small budget."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

from ..errors import ConvcalcError
from ..report.json_text import dumps as json_text
from .completion import complete_spec
from .common import (INCLUDE_HELP, SET_HELP, SPEC_HELP, TableOrJson, app, errors_to_exit, load_graph, shape_option,
                     table_console, wide_option, width_option)
from .run import MEMORY_HELP, RunDtype

def run_tuner(dtype: str, found: list) -> Callable:
    """`convcalc run`'s tuner: for the analysis at the input's shape and batch, the cached choices, else timed within
    `RUN_BUDGET` seconds (`execution.tune.tune`); the cache's warnings go to stderr, the `Tuning` into ``found``."""
    def choose(summary, batch: int) -> None:
        from ..execution.tune import RUN_BUDGET, tune

        tuning = tune(summary, batch, dtype, budget=RUN_BUDGET)
        for warning in tuning.warnings:
            typer.echo(warning, err=True)
        found.append(tuning)
    return choose


@app.command(name="tune")
def tune_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help=SPEC_HELP, show_default=False,
                                autocompletion=complete_spec),
    batch: int = typer.Option(1, "--batch", min=1, help="The batch size to tune for (each batch size is its own)."),
    input_size: Optional[str] = typer.Option(None, "--input-size", metavar="CxHxW",
                                             help="Tune for this input size instead of the spec's."),
    dtype: RunDtype = typer.Option(RunDtype.float32, "--dtype", help="Element type of the runs to tune for."),
    budget: float = typer.Option(30.0, "--budget", metavar="SECONDS",
                                 help="Time to spend timing at most (what is left untimed keeps the cost model's"
                                      " choice; a later tune goes on from there)."),
    again: bool = typer.Option(False, "--again", help="Time every conv again, replacing what the cache holds."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", metavar="SIZE", help=MEMORY_HELP),
    format: TableOrJson = typer.Option(TableOrJson.table, "--format", "-f", help="Output format."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=SET_HELP),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside", help=INCLUDE_HELP),
    width: Optional[int] = width_option(),
    wide: bool = wide_option(),
) -> None:
    """Measure which algorithm runs each conv fastest on this machine, and cache it for `convcalc run`.

    For each distinct conv (its arguments and shapes at this batch size and dtype) every algorithm it can run
    (direct GEMMs on rows, patches or transposed patches, the bias inside the GEMM or after, Winograd, FFT; those
    the cost model rules out by a wide margin are skipped) is timed a few times, fastest run kept; OpenBLAS's
    kernel sets that the CPU supports are timed on the network's GEMMs. The winners are cached per CPU model and
    BLAS build in $XDG_CACHE_HOME/convcalc/tuning.json (default ~/.cache/convcalc/); `convcalc run` reads them.

    \b
    Examples:
      convcalc tune resnet50
      convcalc tune resnet50 --batch 8 --budget 120
      convcalc tune unet --input-size 1x188x188 --again
    """
    from ..analysis.summary import analyze
    from ..execution.tune import tune
    from ..execution.memory import check_memory, memory_budget
    from ..execution.tune_cache import TuneCache
    from ..proof.run import run_estimate
    from ..report.tune import tune_json, tune_table

    with errors_to_exit():
        if not math.isfinite(budget) or budget < 0:
            raise ConvcalcError(f"--budget {budget} must be a number of seconds, 0 or more")
        graph = load_graph(spec, set_, allow_include_outside)
        summary = analyze(graph, shape_option(input_size, graph), dtype=dtype.value)
        check_memory(run_estimate(summary, batch, dtype.value, rf_check=False), memory_budget(max_memory), "tuning")
        cache = TuneCache()
        if again:
            cache.entries = {}
        tuning = tune(summary, batch, dtype.value, budget=budget, cache=cache)
    for warning in tuning.warnings:
        typer.echo(warning, err=True)
    if format is TableOrJson.json:
        sys.stdout.write(json_text(tune_json(summary, batch, dtype.value, tuning)))
    else:
        console, fit_width = table_console(width, wide)
        console.print(tune_table(summary, batch, tuning, fit_width, console.width), crop=False)
