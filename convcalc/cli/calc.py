"""`convcalc calc ...`: one-off questions without writing a spec: one layer's shape, params, MACs, receptive field and
formula; the padding that gives a size; the receptive fields of a one-line stack; the cost of cheaper variants."""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import typer

from ..analysis.calculator import LAYER_TYPES, cost, family_of, one_layer
from ..errors import ConvcalcError
from ..report.json_text import dumps as json_text
from .common import TableOrJson, app, errors_to_exit, table_console, wide_option, width_option

calc_app = typer.Typer(
    name="calc", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "token_normalize_func": str.lower},  # Conv2d = conv2d
    help="""One-off questions, without writing a spec: a layer's output size, params, MACs and receptive field
    with the formula filled in; the padding that keeps (or gives) a size; the receptive fields of a stack written in
    one line; what the cheaper variants of a conv cost. Every value comes from the same layer units as `analyze`.

    \b
    Examples:
      convcalc calc conv2d --in 3x224x224 -k 7 -s 2 -p 3 --out-channels 64
      convcalc calc maxpool2d --in 112 -k 3 -s 2 -p 1 --ceil-mode
      convcalc calc convtranspose2d --in 64x16x16 -k 4 -s 2 -p 1 --out-channels 32
      convcalc calc padding -k 5 -d 2 -s 1 --in 64 --same
      convcalc calc rf "conv3 s1, conv3 d2, pool2 s2, conv3"
      convcalc calc cost --in 128x56x56 --out-channels 256 -k 3
    """)
app.add_typer(calc_app, name="calc")

FORMAT = typer.Option(TableOrJson.table, "--format", "-f", help="Output format (json: schema_version 1).")
IN_HELP = ("The input: CxHxW (channels first, as PyTorch without the batch), or just the spatial size (224x224, or"
           " 224 for every axis) where channels do not matter.")


WIDTH, WIDE = width_option(), wide_option()


def _show(format: TableOrJson, data: dict[str, Any], render: Callable[[Optional[int], int], Any],
          width: Optional[int], wide: bool) -> None:
    """The JSON, or what ``render(fit_width, console_width)`` draws, fitted as every table (`report.fit`)."""
    if format is TableOrJson.json:
        sys.stdout.write(json_text(data))
    else:
        console, fit_width = table_console(width, wide)
        console.print(render(fit_width, console.width), crop=False)


def _layer_command(type_name: str) -> None:
    family = family_of(type_name)
    name = type_name.lower()
    example = {"conv": f"--in 3x{'x'.join(['224'] * int(type_name[-2]))} -k 7 -s 2 -p 3 --out-channels 64",
               "transposed": f"--in 64x{'x'.join(['16'] * int(type_name[-2]))} -k 4 -s 2 -p 1 -o 32",
               "pool": f"--in {'x'.join(['112'] * int(type_name[-2]))} -k 3 -s 2 -p 1 --ceil-mode"}[family]

    def command(
        in_: str = typer.Option(..., "--in", "-i", metavar={1: "CxL", 2: "CxHxW", 3: "CxDxHxW"}[int(type_name[-2])],
                                help=IN_HELP, show_default=False),
        kernel_size: Optional[str] = typer.Option(None, "--kernel-size", "-k", metavar="K", show_default=False,
                                                  help="kernel_size: 3, or one per axis (1x7)."),
        stride: Optional[str] = typer.Option(None, "--stride", "-s", metavar="S", show_default=False,
                                             help="stride (default 1; a pool's: its kernel)."),
        padding: Optional[str] = typer.Option(None, "--padding", "-p", metavar="P", show_default=False,
                                              help="padding: 1, one per axis (1x2), same, valid; also tf_same, full."),
        dilation: Optional[str] = typer.Option(None, "--dilation", "-d", metavar="D", show_default=False,
                                               help="dilation (default 1)."),
        groups: Optional[int] = typer.Option(None, "--groups", "-g", show_default=False, help="groups (convs)."),
        output_padding: Optional[str] = typer.Option(None, "--output-padding", metavar="OP", show_default=False,
                                                     help="output_padding (transposed convs)."),
        ceil_mode: bool = typer.Option(False, "--ceil-mode", help="ceil_mode (pools)."),
        out_channels: Optional[int] = typer.Option(None, "--out-channels", "-o", show_default=False,
                                                   help="out_channels (convs; default: the input's channels)."),
        in_channels: Optional[int] = typer.Option(None, "--in-channels", show_default=False,
                                                  help="in_channels, when --in gives only the spatial size."),
        bias: bool = typer.Option(True, "--bias/--no-bias", help="bias (convs)."),
        format: TableOrJson = FORMAT,
        width: Optional[int] = WIDTH,
        wide: bool = WIDE,
    ) -> None:
        from ..report.calc import dropped_warnings, layer_json, layer_output   # (each command imports its own)

        with errors_to_exit():
            answer = one_layer(name, in_, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                               groups=groups, output_padding=output_padding, ceil_mode=ceil_mode,
                               out_channels=out_channels, in_channels=in_channels, bias=bias)
            warnings = dropped_warnings(answer.spec, answer.summary)
        _show(format, layer_json(answer, warnings), lambda *_: layer_output(answer, warnings), width, wide)

    command.__doc__ = (f"torch.nn.{type_name}: output shape, params, MACs, receptive field and PyTorch's shape formula"
                       f" per axis, with the numbers filled in; warns when input pixels are never read (lint CC201)."
                       f"\n\n\b\nExample:\n  convcalc calc {name} {example}")
    calc_app.command(name=name, short_help=f"nn.{type_name}: shape, params, MACs, RF, formula.")(command)


for _type in LAYER_TYPES:
    _layer_command(_type)


@calc_app.command(name="padding", short_help="The padding that keeps or gives a size.")
def padding_command(
    in_: str = typer.Option(..., "--in", "-i", metavar="N", show_default=False,
                            help="The input's spatial size: 64, or one per axis (64x48)."),
    kernel_size: str = typer.Option(..., "--kernel-size", "-k", metavar="K", show_default=False,
                                    help="kernel_size: 5, or one per axis."),
    stride: Optional[str] = typer.Option(None, "--stride", "-s", metavar="S", help="stride (default 1)."),
    dilation: Optional[str] = typer.Option(None, "--dilation", "-d", metavar="D", help="dilation (default 1)."),
    out: Optional[str] = typer.Option(None, "--out", metavar="N", show_default=False,
                                      help="The output size wanted (default: --same)."),
    same: bool = typer.Option(False, "--same",
                              help="Keep the size: out = ⌈in/stride⌉ (a transposed conv: in·stride)."),
    transposed: bool = typer.Option(False, "--transposed", "-t",
                                    help="Solve a transposed conv: the (padding, output_padding) pairs."),
    format: TableOrJson = FORMAT,
    width: Optional[int] = WIDTH,
    wide: bool = WIDE,
) -> None:
    """The padding that keeps the size (--same) or gives --out N: PyTorch's symmetric padding=p and TensorFlow
    SAME's (before, after) pads; for a transposed conv (--transposed) every (padding, output_padding) pair. Says
    why when there is none. Each answer is checked by building the layer.

    \b
    Examples:
      convcalc calc padding -k 5 -d 2 -s 1 --in 64 --same
      convcalc calc padding -k 3 -s 2 --in 224 --out 112
      convcalc calc padding --transposed -k 4 -s 2 --in 16 --out 32
    """
    from ..analysis.padding_solver import solve_padding
    from ..report.calc import padding_json, padding_output

    with errors_to_exit():
        if same and out is not None:
            raise ConvcalcError("give --same or --out N, not both")
        answer = solve_padding(in_, kernel_size, stride=stride, dilation=dilation, out=out, transposed=transposed)
    _show(format, padding_json(answer), lambda *fitting: padding_output(answer, *fitting), width, wide)


@calc_app.command(name="rf", short_help="Receptive fields of a stack written in one line.")
def rf_command(
    stack: str = typer.Argument(..., metavar="STACK", show_default=False,
                                help="Layers separated by commas, e.g. \"conv3 s1, conv3 d2, pool2 s2, conv3\"."),
    in_: Optional[str] = typer.Option(None, "--in", "-i", metavar="N", show_default=False,
                                      help="The input's spatial size (224, 224x224: the stack's rank). Default: 1-D,"
                                           " long enough for the fields of interior units."),
    format: TableOrJson = FORMAT,
    width: Optional[int] = WIDTH,
    wide: bool = WIDE,
) -> None:
    """Receptive field size, jump and start of each layer of a stack written in one line, by the same analysis as
    `convcalc rf` (a real spec is built from the stack).

    \b
    A layer is a name with its kernel (or factor), then options:
      conv3   pool2 (max)   avgpool3   tconv4 (transposed)   up2 (upsample)
      sN stride   pN padding   dN dilation   opN output_padding
      same   valid   tf_same   ceil   xN (repeat)   up's mode: bilinear, ...
      per-axis values: conv3x1, s2x1
      PyTorch's defaults: stride 1 (a pool's: its kernel), padding 0
    \b
    Examples:
      convcalc calc rf "conv3 s1, conv3 d2, pool2 s2, conv3"
      convcalc calc rf "conv7 s2 p3, pool3 s2 p1, conv3 p1 x4" --in 224x224
      convcalc calc rf "conv4 s2 p1, conv4 s2 p1, tconv4 s2 p1, up2 bilinear"
      convcalc calc rf "conv3-s1, conv3-d2, pool2-s2"
    """
    from ..analysis.rf_stack import stack_fields
    from ..report.calc import stack_json, stack_output, stack_warnings

    with errors_to_exit():
        answer = stack_fields(stack, in_)
        warnings = stack_warnings(answer)
    _show(format, stack_json(answer, warnings), lambda *fitting: stack_output(answer, warnings, *fitting), width,
          wide)


@calc_app.command(name="cost", short_help="Params and MACs of a conv's cheaper variants side by side.")
def cost_command(
    in_: str = typer.Option(..., "--in", "-i", metavar="CxHxW", show_default=False,
                            help="The input, channels first: 128x56x56 (1-D: 128x100, 3-D: 64x8x28x28)."),
    out_channels: int = typer.Option(..., "--out-channels", "-o", min=1, show_default=False, help="out_channels."),
    kernel_size: str = typer.Option(..., "--kernel-size", "-k", metavar="K", show_default=False,
                                    help="kernel_size: 3, or one per axis."),
    stride: Optional[str] = typer.Option(None, "--stride", "-s", metavar="S", help="stride (default 1)."),
    padding: Optional[str] = typer.Option(None, "--padding", "-p", metavar="P",
                                          help="padding (default: d·(k−1)//2, the size-keeping one at stride 1)."),
    dilation: Optional[str] = typer.Option(None, "--dilation", "-d", metavar="D", help="dilation (default 1)."),
    groups: Optional[int] = typer.Option(None, "--groups", "-g", min=1, show_default=False,
                                         help="Groups of the grouped variants (default 4, else 2: what divides the"
                                              " channels)."),
    mid_channels: Optional[int] = typer.Option(None, "--mid-channels", min=1, show_default=False,
                                               help="The ShuffleNet unit's bottleneck (default out/4)."),
    separable_mid: Optional[int] = typer.Option(None, "--separable-mid", metavar="M", min=1, show_default=False,
                                                help="The spatially separable conv's middle width (default: the"
                                                     " cheaper textbook form, C → C → N or C → N → N)."),
    bias: bool = typer.Option(True, "--bias/--no-bias", help="A bias on the layer making the output."),
    format: TableOrJson = FORMAT,
    width: Optional[int] = WIDTH,
    wide: bool = WIDE,
) -> None:
    """Params and MACs of a conv and of its cheaper variants side by side, with the ratio to the standard one:
    grouped, depthwise-separable, depthwise + grouped pointwise + shuffle, a ShuffleNet unit, spatially separable
    (k×1 then 1×k, through the cheaper of C and N channels). Each is built from the layer units `analyze` uses.

    \b
    Examples:
      convcalc calc cost --in 128x56x56 --out-channels 256 -k 3
      convcalc calc cost --in 240x28x28 -o 240 -k 3 --groups 3 --no-bias
    """
    from ..report.calc import cost_json, cost_output

    with errors_to_exit():
        answer = cost(in_, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, mid_channels=mid_channels, bias=bias, separable_mid=separable_mid)
    _show(format, cost_json(answer), lambda *fitting: cost_output(answer, *fitting), width, wide)
