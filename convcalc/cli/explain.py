"""`convcalc explain conv2d --in 1x4x4 -k 3`: a small convolution as its sparse, doubly block-Toeplitz matrix C,
computed from the layer units (`convcalc.proof.toeplitz`), with the checks that C·x is the conv, Cᵀ the transposed
conv and the input gradient, and the relation of true convolution to cross-correlation."""

from __future__ import annotations

import math
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from ..errors import ConvcalcError
from ..spec.load import parse_shape_text
from .common import EXIT_CHECK_FAILED, app, errors_to_exit, table_console, wide_option, width_option

PROSE_WIDTH = 100           # prose's line length where no width is given
MAX_PRINT_WIDTH = 240       # characters of a matrix row that still print (wider: --png or --format json)
MAX_PRINT_ROWS = 256
PADDING_WORDS = ("valid", "same", "full", "tf_same")


class Kind(str, Enum):
    conv1d = "conv1d"
    conv2d = "conv2d"
    conv3d = "conv3d"
    convtranspose1d = "convtranspose1d"
    convtranspose2d = "convtranspose2d"
    convtranspose3d = "convtranspose3d"


class ExplainFormat(str, Enum):
    text = "text"
    json = "json"


def per_axis(text: Optional[str], option: str, words: tuple[str, ...] = ()) -> Any:
    """'3' -> 3, '1x3' or '1,3' -> [1, 3]; one of ``words`` as it is."""
    if text is None:
        return None
    if text.strip() in words:
        return text.strip()
    parts = text.replace("×", "x").replace(",", "x").replace(" ", "").split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        allowed = "".join(f" or '{word}'" for word in words)
        raise ConvcalcError(f"{option} '{text}' must be an integer or one per spatial axis (3, 1x3){allowed}") from None
    return values[0] if len(values) == 1 else values


def _nested(text: str, separators: str, option: str) -> Any:
    if not separators:
        try:
            value = float(text.strip())
        except ValueError:
            raise ConvcalcError(f"{option}: '{text.strip()}' is not a number") from None
        if not math.isfinite(value):
            raise ConvcalcError(f"{option}: '{text.strip()}' is not a finite number")
        return value
    return [_nested(part, separators[1:], option) for part in text.split(separators[0])]


def _shape(value: Any) -> tuple[int, ...] | None:
    """The shape of a nested list, None when ragged."""
    if not isinstance(value, list):
        return ()
    shapes = {_shape(item) for item in value}
    return None if len(shapes) != 1 or None in shapes else (len(value), *shapes.pop())


def kernel_values(text: Optional[str], dims: int) -> Optional[np.ndarray]:
    """``--kernel``: '1,2;3,4' (',' between values, ';' between rows, '/' between 3-D slices, '|' between
    kernels, in PyTorch's weight order) as an array (kernels, *k)."""
    if text is None:
        return None
    separators = {1: ",", 2: ";,", 3: "/;,"}[dims]
    kernels = [_nested(part, separators, "--kernel") for part in text.split("|")]
    if _shape(kernels) is None:
        raise ConvcalcError(f"--kernel '{text}': its kernels, slices or rows have different lengths")
    return np.asarray(kernels, dtype=np.float64)


@app.command(name="explain")
def explain_command(
    layer: Kind = typer.Argument(..., case_sensitive=False, metavar="LAYER", help="The layer to explain."),
    in_: str = typer.Option(..., "--in", "-i", metavar="CxHxW",
                            help="Input shape, channels first (HxW: one channel; 4: 4x4)."),
    kernel_size: str = typer.Option(..., "--kernel-size", "-k", metavar="K", help="Kernel size: 3, or one per axis: 1x3."),
    stride: str = typer.Option("1", "--stride", "-s", metavar="S", help="Stride (per axis: 2x1)."),
    padding: str = typer.Option("0", "--padding", "-p", metavar="P", help="Padding: 1, 1x0, or valid, same, full, tf_same."),
    dilation: str = typer.Option("1", "--dilation", "-d", metavar="D", help="Dilation (per axis: 2x1)."),
    groups: int = typer.Option(1, "--groups", "-g", metavar="G", help="Groups."),
    out_channels: int = typer.Option(1, "--out-channels", "-o", metavar="N", help="Output channels."),
    output_padding: Optional[str] = typer.Option(None, "--output-padding", metavar="OP",
                                                  help="Transposed convs: output_padding."),
    kernel: Optional[str] = typer.Option(None, "--kernel", metavar="VALUES",
                                         help="The kernel's values: '1,2;3,4' (';' between rows, '/' between 3-D"
                                              " slices, '|' between kernels); default: seeded integers 1..9."),
    seed: int = typer.Option(0, "--seed", min=0, metavar="N", help="Seed of the random kernel and vectors."),
    numbers: bool = typer.Option(False, "--numbers", help="Show C's entries as numbers, not weight symbols."),
    png: Optional[Path] = typer.Option(None, "--png", metavar="FILE", help="Draw C's sparsity pattern as a PNG."),
    transpose: bool = typer.Option(False, "--transpose", help="With --png: draw Cᵀ beside C."),
    format: ExplainFormat = typer.Option(ExplainFormat.text, "--format", "-f", help="Output format."),
    width: Optional[int] = width_option(),
    wide: bool = wide_option(),
) -> None:
    """Explain a small convolution as a matrix: C with conv(x) = C·x, built column by column from the conv's own
    forward on one-hot inputs; checks that Cᵀ is the transposed conv and the conv's input gradient; true
    convolution (flipped kernel) against the cross-correlation convs compute. Exit 1 if a check fails. Prose
    wraps to the width, and C prints in blocks of columns that fit it; a matrix too large to print is left out
    with a note (--png draws it, --format json lists it).

    \b
    Examples:
      convcalc explain conv2d --in 1x4x4 -k 3
      convcalc explain conv2d --in 4x4 -k 2 --kernel "1,2;3,4" --numbers
      convcalc explain conv1d --in 8 -k 3 -s 2 -p 1
      convcalc explain convtranspose2d --in 2x2 -k 3 -s 2 --output-padding 1
      convcalc explain conv2d --in 2x8x8 -k 3 -p 1 --png c.png --transpose
    """
    from ..proof.toeplitz import KINDS, explain_conv, matrix_shape
    from ..report.drawing import save_png
    from ..report.explain import explain_json, explain_text, matrix_picture, matrix_text_width
    from ..report.json_text import dumps as json_text

    dims = KINDS[layer.value][1]
    with errors_to_exit():
        arguments = dict(kernel_size=per_axis(kernel_size, "--kernel-size"), stride=per_axis(stride, "--stride"),
                         padding=per_axis(padding, "--padding", PADDING_WORDS), dilation=per_axis(dilation, "--dilation"),
                         groups=groups, out_channels=out_channels,
                         output_padding=per_axis(output_padding, "--output-padding"))
        shape = parse_shape_text(in_)
        rows, columns = matrix_shape(layer.value, shape, **arguments)
        text = format is ExplainFormat.text
        fits = rows <= MAX_PRINT_ROWS and 2 * columns <= MAX_PRINT_WIDTH
        study = explain_conv(layer.value, shape, weight=kernel_values(kernel, dims), seed=seed, **arguments)
        printable = text and fits and matrix_text_width(study, numbers) <= MAX_PRINT_WIDTH
        if png is not None:
            save_png(matrix_picture(study, transpose), png)
    if format is ExplainFormat.json:
        sys.stdout.write(json_text(explain_json(study)))
    else:
        console, fit_width = table_console(width, wide)
        # prose without a width to fit (--wide, or piped without COLUMNS) wraps at 100 columns, a line one reads
        console.print(explain_text(study, numbers, show_matrix=printable, width=fit_width,
                                   prose=min(console.width, PROSE_WIDTH)), crop=False)
        if png is not None:
            console.print(f"the matrix's sparsity pattern written to {png}", markup=False, crop=False)
    if not study.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)
