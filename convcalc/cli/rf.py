"""`convcalc rf SPEC`: receptive-field growth, a unit's exact region, the ERF, overlays, the measured proof
(`convcalc.study_fields`)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..report.json_text import dumps as json_text
from .completion import complete_spec
from .common import (EXIT_CHECK_FAILED, INCLUDE_HELP, SET_HELP, SPEC_HELP, TableOrJson, app, errors_to_exit,
                     load_graph, shape_option, table_console, wide_option, width_option)
from .progress import QUIET_HELP, progress_bars
from .run import MEMORY_HELP


class ErfScale(str, Enum):
    log = "log"
    linear = "linear"


@app.command(name="rf")
def rf_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help=SPEC_HELP, show_default=False,
                                autocompletion=complete_spec),
    layer: Optional[str] = typer.Option(None, "--layer", "-l", metavar="NAME",
                                        help="The layer whose units to study. Default: the spec's output, or, when the"
                                             " output sees the whole input, the map the classifier gathers"
                                             " (squeeze-and-excitation gates left out, as lint's CC301; with"
                                             " --unit, --erf, --overlay: the last layer with spatial regions)."),
    unit: Optional[str] = typer.Option(None, "--unit", "-u", metavar="I[,J[,K]]",
                                       help="A unit of the layer, one index per spatial axis (negative: from the end)."
                                            " Prints its exact region."),
    format: TableOrJson = typer.Option(TableOrJson.table, "--format", "-f", help="Output format."),
    input_size: Optional[str] = typer.Option(None, "--input-size", metavar="CxHxW",
                                             help="Analyse at this input shape, e.g. 3x225x225 (regions depend on it:"
                                                  " SAME padding, borders)."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=SET_HELP),
    verify: bool = typer.Option(False, "--verify",
                                help="Check the fields (of every layer, or of --layer and the layers it reads)"
                                     " against exact dependency masks; exit 1 on a failed check."),
    erf: Optional[Path] = typer.Option(None, "--erf", metavar="PNG",
                                       help="Compute the effective receptive field of the unit (default: the centre)"
                                            " and write its heatmap here."),
    input: Optional[str] = typer.Option(None, "--input", metavar="IMG",
                                        help="An image (or .npy [C,...]) for --overlay and --erf; sets the input size"
                                             " unless --input-size is given. Default: random inputs (--erf), the"
                                             " built-in test image (--overlay)."),
    samples: int = typer.Option(16, "--samples", min=1, help="ERF: random networks and inputs to average over."),
    seed: int = typer.Option(0, "--seed", min=0, help="ERF: seed of the first sample (sample i uses seed + i)."),
    channel: Optional[int] = typer.Option(None, "--channel", min=0,
                                          help="ERF: the output channel to seed (default: all, i.e. their sum)."),
    overlay: Optional[Path] = typer.Option(None, "--overlay", metavar="PNG",
                                           help="Draw the regions of --unit (default: the centre and the first unit)"
                                                " on the input image and write it here."),
    erf_scale: ErfScale = typer.Option(ErfScale.log, "--erf-scale",
                                       help="ERF heatmap colours: log (four decades below the peak: the whole"
                                            " extent shows) or linear (from 0 to the peak)."),
    growth_png: Optional[Path] = typer.Option(None, "--growth-png", metavar="PNG",
                                              help="Also draw the growth chart (one bar per layer) as a PNG here."),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside", help=INCLUDE_HELP),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", metavar="SIZE", help=MEMORY_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    width: Optional[int] = width_option(),
    wide: bool = wide_option(),
) -> None:
    """Receptive fields: growth per layer, a unit's exact region, the effective receptive field, overlays.

    Without --unit, --erf, --overlay or --verify: a chart of how the field grows, layer by layer (size and
    effective stride per axis, share of the input covered). Regions are exact at the analysed input size,
    borders and padding (TensorFlow SAME, reflect, circular, ...) included.

    \b
    Examples:
      convcalc rf vgg16
      convcalc rf resnet18 --layer layer2.1.add_1 --unit 3,5
      convcalc rf tfslim/resnet_v1_50 -u 0,-1 --input-size 3x225x225
      convcalc rf tiny --erf erf.png --samples 32
      convcalc rf vgg16 --growth-png growth.png
      convcalc rf unet --overlay rf.png --input photo.png --input-size 1x572x572
      convcalc rf resnet50 --verify
    """
    from rich.text import Text

    from ..analysis.regions import growth
    from ..proof.study import study_fields
    from ..report.drawing import save_png
    from ..report.rf import study_output
    from ..report.rf_pictures import erf_heatmap, growth_chart, overlay as draw_overlay

    console, fit_width = table_console(width, wide)
    with errors_to_exit():
        graph = load_graph(spec, set_, allow_include_outside)
        with progress_bars(quiet) as bars:
            study = study_fields(graph, layer=layer, unit=unit, input_size=shape_option(input_size, graph),
                                 image=input, erf=erf is not None, samples=samples, seed=seed, channel=channel,
                                 overlay=overlay is not None, verify=verify, max_memory=max_memory,
                                 on_progress=None if bars is None else bars.update)
        regions = ()
        if study.erf is not None:
            save_png(erf_heatmap(study.erf, erf_scale.value), erf)
        if study.overlay_units is not None:
            picture, regions = draw_overlay(study.summary, study.layer, study.overlay_units, study.image)
            save_png(picture, overlay)
        if growth_png is not None:
            rows = study.growth if study.growth is not None else growth(study.summary, study.layer)
            save_png(growth_chart(rows, f"receptive-field growth of '{study.summary.name}' up to '{study.layer}'",
                                  study.summary.input_shape), growth_png)
        shown, data = study_output(study, erf_picture=None if erf is None else str(erf),
                                   overlay_picture=None if overlay is None else str(overlay),
                                   overlay_regions=regions, notes=(), width=fit_width, prose=console.width)
        if growth_png is not None:
            data["growth_picture"] = str(growth_png)
            shown.append(Text(f"growth chart written to {growth_png}"))
    if format is TableOrJson.json:
        sys.stdout.write(json_text(data))
    else:
        for item in shown:
            console.print(item, crop=False)
    if study.checks is not None and not all(check.ok for check in study.checks):
        raise typer.Exit(EXIT_CHECK_FAILED)
