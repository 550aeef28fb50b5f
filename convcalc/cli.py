"""The command line: the only place that reads argv, prints, or exits.

Exit codes: 0 success; 2 bad input (spec, file, options), with one line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from . import __version__
from .analyze import DTYPE_BYTES, analyze
from .errors import ConvcalcError, did_you_mean
from .graph import build_graph
from .layers import layer_types
from .layers.base import REQUIRED
from .render import to_csv, to_json, to_markdown, to_table
from .spec import load_spec, parse_shape_text

EXIT_INPUT_ERROR = 2

CONVENTIONS = """\b
Conventions (as PyTorch): shapes are channels first without the batch;
params = sum(p.numel() for p in module.parameters()) (BatchNorm running
statistics are buffers, reported apart); MACs = multiply-accumulates of
conv and linear layers at batch 1, bias excluded (conv: output elements x
C_in/groups x prod(kernel), torchvision's convention); FLOPs = 2 x MACs;
receptive field per axis as Araujo et al. (Distill 2019): size r, stride
S, padding P, so output u sees input [u*S - P, u*S - P + r - 1]."""

app = typer.Typer(
    name="convcalc",
    help="Shapes, parameters, MACs and receptive fields of convolutional networks, exactly as PyTorch has them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _errors_to_exit() -> Iterator[None]:
    """Translate the library's errors into one red line on stderr and exit code 2."""
    try:
        yield
    except ConvcalcError as exc:
        _stderr().print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    except RecursionError:
        _stderr().print("[bold red]error:[/] the spec nests blocks too deeply (a block that uses itself?)")
        raise typer.Exit(EXIT_INPUT_ERROR) from None


def _overrides(pairs: list[str]) -> dict:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConvcalcError(f"--set '{pair}' must look like NAME=VALUE")
        result[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return result


def _stdout(width: int | None = None) -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=width or 200)
    return console


@app.callback(invoke_without_command=True)
def _main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(f"convcalc {__version__}")
        raise typer.Exit()


@app.command(name="analyze", epilog=CONVENTIONS)
def analyze_command(
    spec: Path = typer.Argument(..., help="The network spec (YAML).", show_default=False),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    input_size: Optional[str] = typer.Option(None, "--input-size", "-i", metavar="CxHxW",
                                             help="Override the spec's input shape, e.g. 3x512x512."),
    depth: Optional[int] = typer.Option(None, "--depth", "-d", min=0,
                                        help="Fold blocks nested deeper than N into one row each (table, markdown,"
                                             " csv)."),
    dtype: str = typer.Option("float32", "--dtype", help=f"Element type for memory: {', '.join(DTYPE_BYTES)}."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE",
                                   help="Override one of the spec's top-level args (repeatable)."),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside",
                                               help="Let includes reach outside the spec's directory."),
) -> None:
    """Per-layer output shapes, parameters, MACs and receptive fields, then totals.

    \b
    Examples:
      convcalc analyze specs/resnet50.yaml
      convcalc analyze specs/resnet50.yaml --format json > resnet50.json
      convcalc analyze specs/vgg16.yaml --input-size 3x512x512 --format markdown
      convcalc analyze specs/resnet50.yaml --depth 1
    """
    with _errors_to_exit():
        loaded = load_spec(spec, allow_include_outside=allow_include_outside)
        graph = build_graph(loaded, _overrides(set_))
        shape = parse_shape_text(input_size) if input_size else None
        summary = analyze(graph, shape, dtype=dtype)
    if format is Format.json:
        sys.stdout.write(json.dumps(to_json(summary), indent=2) + "\n")
    elif format is Format.markdown:
        sys.stdout.write(to_markdown(summary, depth))
    elif format is Format.csv:
        sys.stdout.write(to_csv(summary, depth))
    else:
        _stdout().print(to_table(summary, depth))


@app.command(name="layers")
def layers_command(type_name: Optional[str] = typer.Argument(None, help="Show one type's arguments.")) -> None:
    """List the layer types a spec may use, or one type's arguments and defaults."""
    console = _stdout(120)
    types = layer_types()
    if type_name:
        matches = [t for t in types if type_name.lower() in (t.type_name.lower(), *(a.lower() for a in t.aliases))]
        if not matches:
            _stderr().print(f"[bold red]error:[/] unknown layer type '{type_name}';"
                            f" {did_you_mean(type_name, [t.type_name for t in types])}")
            raise typer.Exit(EXIT_INPUT_ERROR)
        cls = matches[0]
        table = Table(title=f"{cls.type_name}: {cls.summary}", title_justify="left")
        for column in ("argument", "default", "meaning"):
            table.add_column(column)
        for name, arg in cls.arguments.items():
            default = "required" if arg.default is REQUIRED else json.dumps(arg.default)
            table.add_row(name, default, arg.doc)
        console.print(table)
        return
    table = Table(title="layer types (case-insensitive in specs)", title_justify="left")
    table.add_column("type")
    table.add_column("what it does")
    for cls in types:
        aliases = f" (also {', '.join(cls.aliases)})" if cls.aliases else ""
        table.add_row(cls.type_name + aliases, cls.summary)
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
