"""What every command shares: the Typer app, exit codes, the one place library errors become a message, consoles,
and the parsing of options common to several commands (``SPEC`` with ``-``, ``--set``, sizes, number lists)."""

from __future__ import annotations

import contextlib
import os
from enum import Enum
from pathlib import Path
from typing import Iterator

import typer
from typer.core import TyperGroup

from .._version import __version__
from ..errors import ConvcalcError
from ..spec.load import parse_shape_text
from ..spec.zoo import ZooHint
from . import quick_params
from .plain import (MIN_WIDTH, PIPED_WIDTH, _IMPORTED, imported_onnx, is_onnx, load_graph,  # noqa: F401
                    missing_channels, overrides, shape_option, stderr, stdout, table_console)

EXIT_CHECK_FAILED = 1
EXIT_INPUT_ERROR = 2

_UsageError = typer.BadParameter.__base__        # Typer's (vendored click's) UsageError
_NoArgsIsHelp = next((c for c in _UsageError.__subclasses__() if c.__name__ == "NoArgsIsHelpError"), ())


class _Commands(TyperGroup):
    """The app's group, where what every command shares about its command line lives:

    * before a command parses its options, a single-valued option given twice is refused (``rf --unit 0,0 --unit
      1,1`` would silently keep the last); repeatable ones (``--set``) are lists, flags may repeat;
    * help reads as plain text at any width (click's formatter: paragraphs reflowed, nothing taken for Rich markup)
      with click's placeholders: ``SPEC``, ``[PATH]...``, ``--format [table|json]``, ``--depth N``, no type for a
      flag (Typer 0.29 shows ``{SPEC}``, ``<list[str]>``, ``<bool>``);
    * a usage error (a bad choice, a missing argument, an unknown option) is one line, as every error is."""

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            _plain_placeholders(command)
        return command

    def format_help(self, ctx, formatter):
        _plain_placeholders(self)
        return super().format_help(ctx, formatter)

    def parse_args(self, ctx, args):
        quick_params.install(self)                      # --version and the completion options: no Pydantic
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not ctx.resilient_parsing:
            ctx.meta["convcalc.command"] = name         # for an error raised without its context (a missing value)
            _refuse_repeated_options(command, name, rest, ctx)
        return name, command, rest

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _NoArgsIsHelp as exc:                    # `convcalc calc` alone: its help, and exit 2 as bare convcalc
            typer.echo(exc.ctx.get_help())
            raise typer.Exit(EXIT_INPUT_ERROR) from None
        except _UsageError as exc:
            named = ctx.meta.get("convcalc.command")
            if exc.ctx is not None:
                where = exc.ctx.command_path
            else:
                where = f"{ctx.command_path} {named}" if named else ctx.command_path
            listed = "commands" if (exc.ctx is None and not named) or (exc.ctx is not None and exc.ctx.command is self) else "options"
            message = exc.format_message().replace("Value error, ", "").rstrip(".")
            fail(f"{message} ('{where} -h' lists the {listed})")


_TYPE_WORDS = {"int": "N", "float": "X", "str": "TEXT", "path": "PATH"}


def _placeholder(param, ctx) -> str | None:
    """The help text's placeholder for a parameter's value, as click writes it."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.param_type_name == "argument" or param.metavar is not None:     # an argument's name is its placeholder
        return None if param.param_type_name == "argument" else param.metavar
    described = param.type_descriptor
    if described.is_choice and described.choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices) + "]"
    kind = type(param).display_type(param, ctx).strip("<>").split()[0]
    return _TYPE_WORDS.get(kind, kind.upper())


def _plain_placeholders(command) -> None:
    """Give each parameter of ``command`` click's placeholders (once; see `_Commands`)."""
    if getattr(command, "_convcalc_plain", False):
        return
    command._convcalc_plain = True
    command.rich_markup_mode = None
    quick_params.install(command)                       # its values converted without Pydantic where certain
    for child in getattr(command, "commands", {}).values():     # a group of commands (calc)
        _plain_placeholders(child)
    for param in command.params:
        param.display_type_rich = (lambda ctx, param=param: _placeholder(param, ctx))
        if param.param_type_name == "argument":
            name = param.display_name_raw
            usage = (name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else "")
            param._usage_display_name = (lambda usage=usage: usage)


def _refuse_repeated_options(command, name: str | None, args: list[str], parent) -> None:
    """Exit 2 with 'error: --unit given twice ...' when an option that takes one value is given more than once."""
    probe = command.context_class(command, info_name=name, parent=parent, resilient_parsing=True)
    try:
        _, rest, order = command.make_parser(probe).parse_args(args=list(args))
    except Exception:           # noqa: BLE001 - the command's own parse reports a malformed command line
        return
    subcommands = getattr(command, "commands", None)
    if subcommands and rest and rest[0] in subcommands:      # a group of commands (calc): its command's options
        _refuse_repeated_options(subcommands[rest[0]], rest[0], rest[1:], probe)
    counts: dict[str, int] = {}
    for param in order:
        if getattr(param, "param_type_name", "") != "option" or param.multiple or param.count or param.is_flag:
            continue
        counts[param.name] = counts.get(param.name, 0) + 1
        if counts[param.name] == 2:
            shown = max(param.opts, key=len)
            fail(f"{shown} given twice; it takes one value (give it once)")


app = typer.Typer(
    name="convcalc",
    cls=_Commands,
    help="Shapes, parameters, MACs and receptive fields of convolutional networks, exactly as PyTorch has them.",
    add_completion=True,            # --install-completion, --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=False,          # a bare `convcalc` is handled in `_main`: help, and exit 2 whatever click does
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

class TableOrJson(str, Enum):
    """--format of the commands that print one table (or several) or one JSON object."""

    table = "table"
    json = "json"


SPEC_HELP = "The network spec (YAML; - reads standard input)."
SET_HELP = "Override one of the spec's top-level args (repeatable)."
INCLUDE_HELP = "Let includes reach outside the spec's directory."


@app.callback(invoke_without_command=True)
def _main(ctx: typer.Context,
          version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(f"convcalc {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:     # no command: a script that ran `convcalc` alone must not pass
        help_text = ctx.get_help()                 # (Typer's rich help prints itself and returns "")
        if help_text:
            typer.echo(help_text)
        raise typer.Exit(EXIT_INPUT_ERROR)


WIDTH_HELP = ("Fit tables in N columns, leaving out the least important columns whole (default: the terminal's"
              " width, else COLUMNS; piped without COLUMNS: every column).")
WIDE_HELP = "Never leave a column out: tables keep their full width, and the terminal wraps or scrolls them."


def width_option():
    return typer.Option(None, "--width", min=MIN_WIDTH, metavar="N", help=WIDTH_HELP)


def wide_option():
    return typer.Option(False, "--wide", help=WIDE_HELP)


def fail(message: str, excerpt: tuple[str, ...] = ()) -> None:
    """One red line on stderr and exit code 2 (for the few errors found by the CLI itself). ``excerpt``: lines
    after it that show the spot (a YAML syntax error's source line and caret); the first line is the whole message."""
    console = stderr()
    console.print("[bold red]error:[/] ", end="")
    console.print(message, markup=False, highlight=False, emoji=False)   # 'net.yaml:100:5' has no emoji in it
    for line in excerpt:
        console.print("  " + line, markup=False, highlight=False, emoji=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT_ERROR)


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Translate the library's errors into one red line on stderr and exit code 2 (a path named like a zoo model
    says how to name the model with this command: ``convcalc rf vgg16``)."""
    try:
        yield
    except ZooHint as exc:
        from typer._click.globals import get_current_context
        context = get_current_context(silent=True)
        fail(exc.for_command(f"convcalc {context.info_name}") if context and context.info_name else str(exc))
    except ConvcalcError as exc:
        fail(str(exc), exc.excerpt)
    except RecursionError:
        fail("the spec nests blocks too deeply (a block that uses itself?)")


def onnx_weights(spec: str | os.PathLike, weights, init):
    """``run``'s weights: the ``--weights`` given, else an ONNX model's own initializers (unless ``--init``)."""
    if weights is not None or init is not None or not is_onnx(spec):
        return weights
    return imported_onnx(spec).weights


@contextlib.contextmanager
def onnx_as_specs(paths: list[str]) -> Iterator[tuple[list[str], dict[str, str]]]:
    """``lint``'s paths with each ONNX model imported into a temporary spec (``MODEL.onnx.yaml``); the map from
    those specs back to the models, for `restore_onnx_paths`."""
    import tempfile

    if not any(is_onnx(p) for p in paths):
        yield paths, {}
        return
    with tempfile.TemporaryDirectory(prefix="convcalc-onnx-") as directory:
        swapped, back = [], {}
        for index, path in enumerate(paths):
            if not is_onnx(path):
                swapped.append(path)
                continue
            spec = Path(directory) / str(index) / (Path(path).name + ".yaml")
            spec.parent.mkdir()
            spec.write_text(imported_onnx(path).spec_text, encoding="utf-8")
            swapped.append(str(spec))
            back[str(spec)] = str(path)
        yield swapped, back


def restore_onnx_paths(report, back: dict[str, str]):
    """A lint report with the temporary specs of `onnx_as_specs` named as the models they came from."""
    if not back:
        return report
    import dataclasses

    def named(path):
        return back.get(str(path), path)

    findings = tuple(dataclasses.replace(f, path=named(f.path), spec=named(f.spec)) for f in report.findings)
    return dataclasses.replace(report, findings=findings, files=tuple(named(f) for f in report.files))


def floats(text: str | None, option: str) -> list[float] | None:
    """A comma-separated list of numbers (``--mean 0.5,0.5,0.5``)."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConvcalcError(f"{option} '{text}' must be numbers separated by commas, e.g. 0.5,0.5,0.5") from None


def size(text: str | None) -> tuple[int, int] | None:
    """``--resize HxW``."""
    if text is None:
        return None
    try:
        shape = parse_shape_text(text)
    except ConvcalcError:
        shape = ()
    if len(shape) != 2:
        raise ConvcalcError(f"--resize '{text}' must be HxW (two positive integers), e.g. 224x224")
    return shape[0], shape[1]
