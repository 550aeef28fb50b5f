"""`convcalc report SPEC`: one self-contained HTML page of the network (`convcalc.report.html`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .completion import complete_spec
from .common import (INCLUDE_HELP, SET_HELP, SPEC_HELP, app, errors_to_exit, fail, load_graph,
                     onnx_as_specs, restore_onnx_paths, shape_option, stdout)
from .progress import QUIET_HELP, progress_bars
from .run import MEMORY_HELP


@app.command(name="report")
def report_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help=SPEC_HELP, show_default=False,
                                autocompletion=complete_spec),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="HTML",
                                          help="Write the page here (default: NAME.html, NAME the spec's name)."),
    input: Optional[str] = typer.Option(None, "--input", "-i", metavar="IMG",
                                        help="An image (or .npy [C,...]) to draw receptive fields on (and to run on,"
                                             " --run); sets the input size. Default: the built-in test image."),
    input_size: Optional[str] = typer.Option(None, "--input-size", metavar="CxHxW",
                                             help="Analyse at this input shape, e.g. 3x512x512."),
    layer: Optional[str] = typer.Option(None, "--layer", "-l", metavar="NAME",
                                        help="The layer the receptive-field view (and --erf) starts with. Default:"
                                             " the last layer with spatial regions."),
    erf: bool = typer.Option(False, "--erf", help="Also compute the effective receptive field of --layer's centre"
                                                  " unit and show its heatmap."),
    samples: int = typer.Option(16, "--samples", min=1, help="ERF: random networks and inputs to average over."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the ERF's samples and of --run's weights."),
    run: bool = typer.Option(False, "--run", help="Also run the network (as convcalc run): per-layer checks, times"
                                                  " and feature-map thumbnails."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=SET_HELP),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside", help=INCLUDE_HELP),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", metavar="SIZE", help=MEMORY_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Write one HTML page of the network: architecture diagram, layer table, totals, cost charts, receptive
    fields on the input, lint findings (and, with --run, the executor's checks). The page is self-contained:
    it opens offline and can be attached to a pull request.

    \b
    Examples:
      convcalc report resnet50                    # writes resnet50.html
      convcalc report specs/unet.yaml -o unet.html --erf
      convcalc report vgg16 --run --input photo.png
    """
    from ..report.html import report_page

    with errors_to_exit():
        graph = load_graph(spec, set_, allow_include_outside)
        size = shape_option(input_size, graph)
        from_stdin = str(spec) == "-"
        with progress_bars(quiet) as bars, onnx_as_specs([] if from_stdin else [str(spec)]) as (specs, models):
            lint = None
            if specs:
                from ..lint import lint_paths, settings_for
                settings = settings_for(specs, allow_include_outside=allow_include_outside)
                lint = restore_onnx_paths(lint_paths(specs, settings), models)
            page = report_page(graph, source=str(spec), lint_report=lint,
                               lint_note="not linted: the spec came from standard input" if from_stdin else None,
                               input=input, input_size=size, layer=layer, erf=erf, samples=samples, seed=seed,
                               run=run, max_memory=max_memory, on_progress=None if bars is None else bars.update)
    target = output if output is not None else Path(f"{graph.name}.html")
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    console = stdout()
    console.print(f"report written to {target} ({len(page.encode('utf-8')) / 1024:,.0f} KiB)", markup=False)
