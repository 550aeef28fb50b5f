"""The command line: the only place that reads argv, prints, or exits.

Exit codes: 0 success; 1 a check failed (``run``: a prediction the executor disproved);
2 bad input (spec, file, options), with one line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
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
from .spec import load_spec, parse_shape_text, parse_spec

EXIT_CHECK_FAILED = 1
EXIT_INPUT_ERROR = 2

CONVENTIONS = """\b
Conventions (as PyTorch): shapes are channels first without the batch;
params = sum(p.numel() for p in module.parameters()) (BatchNorm running
statistics are buffers, reported apart); MACs = multiply-accumulates of
conv and linear layers at batch 1, bias excluded (conv: output elements x
C_in/groups x prod(kernel), torchvision's convention); FLOPs = 2 x MACs;
receptive field per axis as Araujo et al. (Distill 2019): size r, stride
S, padding P, so output u sees input \\[u*S - P, u*S - P + r - 1]."""

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
        console = _stderr()
        console.print("[bold red]error:[/] ", end="")
        console.print(str(exc), markup=False, highlight=False)
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
        try:
            result[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raise ConvcalcError(f"--set {key.strip()}: the value {value!r} is not valid YAML") from None
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
    spec: Path = typer.Argument(..., metavar="SPEC", help="The network spec (YAML; - reads standard input).",
                                show_default=False),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    input_size: Optional[str] = typer.Option(None, "--input-size", "-i", metavar="CxHxW",
                                             help="Override the spec's input shape, e.g. 3x512x512."),
    depth: Optional[int] = typer.Option(None, "--depth", "-d", min=1,
                                        help="Fold blocks nested deeper than N into one row each (table, markdown,"
                                             " csv)."),
    dtype: str = typer.Option("float32", "--dtype", help=f"Element type for memory: {', '.join(DTYPE_BYTES)}."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE",
                                   help="Override one of the spec's top-level args (repeatable)."),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside",
                                               help="Let includes reach outside the spec's directory."),
    parts: bool = typer.Option(False, "--parts",
                               help="Show a composite layer's parts (and the standard layer it replaces) as"
                                    " indented rows (table, markdown, csv; JSON always has them)."),
) -> None:
    """Per-layer output shapes, parameters, MACs and receptive fields, then totals.

    \b
    Examples:
      convcalc analyze specs/resnet50.yaml
      convcalc analyze specs/resnet50.yaml --format json > resnet50.json
      convcalc analyze specs/vgg16.yaml --input-size 3x512x512 --format markdown
      convcalc analyze specs/resnet50.yaml --depth 1
      convcalc analyze specs/mobilenet_v1.yaml --parts
    """
    with _errors_to_exit():
        graph = _load_graph(spec, set_, allow_include_outside)
        shape = parse_shape_text(input_size) if input_size is not None else None
        summary = analyze(graph, shape, dtype=dtype)
    if format is Format.json:
        sys.stdout.write(json.dumps(to_json(summary), indent=2) + "\n")
    elif format is Format.markdown:
        sys.stdout.write(to_markdown(summary, depth, parts))
    elif format is Format.csv:
        sys.stdout.write(to_csv(summary, depth, parts))
    else:
        _stdout().print(to_table(summary, depth, parts))


def _load_graph(spec: Path, set_: list[str], allow_include_outside: bool):
    """The spec file (``-``: standard input) expanded into a graph."""
    if str(spec) == "-":
        loaded = parse_spec(sys.stdin.read(), "<stdin>", allow_include_outside=allow_include_outside)
    else:
        loaded = load_spec(spec, allow_include_outside=allow_include_outside)
    return build_graph(loaded, _overrides(set_))


def _floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConvcalcError(f"{option} '{text}' must be numbers separated by commas, e.g. 0.5,0.5,0.5") from None


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    shape = parse_shape_text(text)
    if len(shape) != 2:
        raise ConvcalcError(f"--resize '{text}' must be HxW, e.g. 224x224")
    return shape[0], shape[1]


class RunFormat(str, Enum):
    table = "table"
    json = "json"


@app.command(name="run")
def run_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help="The network spec (YAML; - reads standard input).",
                                show_default=False),
    input: Optional[str] = typer.Option(None, "--input", "-i", metavar="PATH",
                                        help="Image, .npy ([C,...] or [N,C,...]), directory or quoted glob."
                                             " Default: a built-in test image at the spec's input size."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w",
                                           help="A .npz state dict keyed <layer>.<param> (PyTorch's names)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the default (PyTorch-distributed) initialisation."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float64."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Repeat a single input into a batch of N."),
    resize: Optional[str] = typer.Option(None, "--resize", metavar="HxW", help="Resize images to HxW."),
    normalize: Optional[str] = typer.Option(None, "--normalize", metavar="imagenet",
                                            help="Normalise images with ImageNet's mean and std."),
    mean: Optional[str] = typer.Option(None, "--mean", metavar="M[,M..]", help="Subtract per-channel means."),
    std: Optional[str] = typer.Option(None, "--std", metavar="S[,S..]", help="Divide by per-channel stds."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the final output [N, ...] as .npy."),
    save_maps: Optional[Path] = typer.Option(None, "--save-maps", metavar="DIR",
                                             help="Write every layer's feature maps as PNG grids into DIR."),
    topk: Optional[int] = typer.Option(None, "--topk", min=1, help="Print the top-k classes (softmax) per sample."),
    format: RunFormat = typer.Option(RunFormat.table, "--format", "-f", help="Output format."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE",
                                   help="Override one of the spec's top-level args (repeatable)."),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside",
                                               help="Let includes reach outside the spec's directory."),
) -> None:
    """Run the network with NumPy on real input and check every prediction of the analyzer.

    Per layer it compares the predicted output shape with the actual one and the predicted MACs with the
    multiply-accumulates the executor really performed, and flags the first NaN/Inf. Exit code 1 if any
    check fails.

    \b
    Examples:
      convcalc run specs/edges.yaml --input photo.png --save-maps maps/
      convcalc run specs/resnet50.yaml --input cat.jpg --normalize imagenet --topk 5
      convcalc run specs/resnet18.yaml --input x.npy --weights resnet18.npz --output y.npy --dtype float64
      convcalc run specs/vgg16.yaml
    """
    from .execute import Network
    from .images import IMAGENET_MEAN, IMAGENET_STD, default_input, expand_paths, load_inputs
    from .images import normalize as normalise
    from .images import save_maps as write_maps
    from .render_run import run_json, run_table
    from .weights import load_npz, state_from_dict

    with _errors_to_exit():
        graph = _load_graph(spec, set_, allow_include_outside)
        size = _size(resize)
        if input is None:
            shape = graph.input_shape
            if size is not None:
                if len(shape) != 3:
                    raise ConvcalcError(f"--resize HxW needs a [C, H, W] input; the spec's is {list(shape)}")
                shape = (shape[0], *size)
            x = default_input(shape)[None]
            source = "built-in test image"
        else:
            if size is not None and all(p.suffix.lower() == ".npy" for p in expand_paths(input)):
                raise ConvcalcError("--resize applies to images; a .npy input keeps its own size")
            x = load_inputs(input, graph.input_shape, size)
            source = input
        if normalize is not None:
            if normalize != "imagenet":
                raise ConvcalcError(f"--normalize '{normalize}' is not known; valid: imagenet (or give --mean/--std)")
            if x.shape[1] != 3:
                raise ConvcalcError(f"--normalize imagenet needs 3 input channels (RGB), the spec takes {x.shape[1]};"
                                    " give --mean/--std instead")
            x = normalise(x, IMAGENET_MEAN, IMAGENET_STD)
        if mean is not None or std is not None:
            x = normalise(x, _floats(mean, "--mean") or [0.0], _floats(std, "--std") or [1.0])
        if batch is not None:
            if x.shape[0] != 1:
                raise ConvcalcError(f"--batch repeats one input, but {x.shape[0]} were given")
            x = np.repeat(x, batch, axis=0)
        # checked here, against the input's shape: Network would take an empty dict for 'no weights given'
        state = state_from_dict(load_npz(weights), analyze(graph, x.shape[1:])) if weights is not None else None
        network = Network(graph, x.shape[1:], state=state, seed=seed, dtype=dtype)
        result = _run_with_progress(network, x, keep=save_maps is not None)
        notes = []
        if output is not None:
            saved = output if output.suffix == ".npy" else output.with_name(output.name + ".npy")   # as np.save does
            _save_npy(saved, result.output)
            notes.append(f"output {list(result.output.shape)} saved to {saved}")
        if save_maps is not None:
            written = write_maps(result.maps, save_maps, [layer.name for layer in result.layers])
            notes.append(f"{len(written)} feature-map pictures written to {save_maps}/")
    if format is RunFormat.json:
        sys.stdout.write(json.dumps(run_json(result, source, topk), indent=2) + "\n")
    else:
        _stdout().print(run_table(result, source, topk, notes))
    if not result.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _run_with_progress(network, x, keep: bool):
    """Run, with a transient progress bar on an interactive stderr for runs longer than a moment."""
    console = _stderr()
    if not console.is_terminal:
        return network.run(x, keep=keep)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("running", total=len(network.graph.nodes))
        return network.run(x, keep=keep, on_layer=lambda record: progress.update(
            task, advance=1, description=f"running {record.name}"))


def _save_npy(path: Path, array) -> None:
    try:
        np.save(path, array)
    except OSError as exc:
        raise ConvcalcError(f"cannot write {path}: {exc.strerror or exc}") from None


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
