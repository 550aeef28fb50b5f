"""`convcalc analyze SPEC`: the per-layer table (or JSON, Markdown, CSV) and totals."""

from __future__ import annotations

import gc
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..analysis.summary import DTYPE_BYTES
from .completion import complete_spec
from .common import INCLUDE_HELP, SET_HELP, SPEC_HELP, app, errors_to_exit, wide_option, width_option
from .direct import summary_of, write_summary

CONVENTIONS = """\b
Conventions (as PyTorch): shapes are channels first without the batch;
params = sum(p.numel() for p in module.parameters()) (BatchNorm running
statistics are buffers, reported apart); MACs = multiply-accumulates of
conv and linear layers at batch 1, bias excluded (conv: output elements x
C_in/groups x prod(kernel), torchvision's convention); FLOPs = 2 x MACs;
receptive field per axis as Araujo et al. (Distill 2019): size r, stride
S, padding P, so output u sees input [u*S - P, u*S - P + r - 1]."""


Dtype = Enum("Dtype", {name: name for name in DTYPE_BYTES}, type=str)     # --dtype: the element types


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


@app.command(name="analyze", epilog=CONVENTIONS)
def analyze_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help=SPEC_HELP, show_default=False,
                                autocompletion=complete_spec),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    input_size: Optional[str] = typer.Option(None, "--input-size", "-i", metavar="CxHxW",
                                             help="Override the spec's input shape, e.g. 3x512x512."),
    depth: Optional[int] = typer.Option(None, "--depth", "-d", min=1,
                                        help="Fold blocks nested deeper than N into one row each (table, markdown,"
                                             " csv)."),
    dtype: Dtype = typer.Option("float32", "--dtype", help="Element type for memory."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=SET_HELP),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside", help=INCLUDE_HELP),
    parts: bool = typer.Option(False, "--parts",
                               help="Show a composite layer's parts (and the standard layer it replaces) as"
                                    " indented rows (table, markdown, csv; JSON always has them)."),
    width: Optional[int] = width_option(),
    wide: bool = wide_option(),
) -> None:
    """Per-layer output shapes, parameters, MACs and receptive fields, then totals.

    \b
    Examples:
      convcalc analyze resnet50
      convcalc analyze resnet50 --format json > resnet50.json
      convcalc analyze vgg16 --input-size 3x512x512 --format markdown
      convcalc analyze resnet50 --depth 1
      convcalc analyze mobilenet_v1 --parts
    """
    gc.disable()    # one spec, then exit: what it allocates is bounded by the budgets, and collecting its many
    #                 small live objects cost 15 % of a 10,000-layer analysis (cli.main already runs it rarely)
    with errors_to_exit():        # (`direct` runs the commonest command lines with the same two calls, no Typer)
        summary = summary_of(spec, set_, allow_include_outside, input_size, dtype.value)
    write_summary(summary, format.value, depth, parts, width, wide)
