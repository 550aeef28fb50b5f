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
from typing import Iterator, Optional, Sequence

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.table import Table

from .._version import __version__
from ..analysis.summary import DTYPE_BYTES, analyze
from ..errors import ConvcalcError, did_you_mean, nearest_of_many
from ..spec.graph import build_graph
from ..layers import layer_types
from ..layers.base import REQUIRED
from ..report.summary import to_csv, to_json, to_markdown, to_table
from ..spec.load import load_spec, parse_shape_text, parse_spec

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
    try:
        shape = parse_shape_text(text)
    except ConvcalcError:
        shape = ()
    if len(shape) != 2:
        raise ConvcalcError(f"--resize '{text}' must be HxW (two positive integers), e.g. 224x224")
    return shape[0], shape[1]


class RunFormat(str, Enum):
    table = "table"
    json = "json"


class RfCheck(str, Enum):
    all = "all"
    none = "none"


@app.command(name="run")
def run_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help="The network spec (YAML; - reads standard input).",
                                show_default=False),
    input: Optional[str] = typer.Option(None, "--input", "-i", metavar="PATH",
                                        help="Image, .npy ([C,...] or [N,C,...]), directory or quoted glob."
                                             " Default: a built-in test image at the spec's input size."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w",
                                           help="A .npz state dict keyed <layer>.<param> (PyTorch's names)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the default (PyTorch-distributed) initialisation."),
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
    rf_check: RfCheck = typer.Option(RfCheck.all, "--rf-check",
                                     help="Prove every layer's receptive field by exact dependency propagation"
                                          " (all), or skip it (none)."),
) -> None:
    """Run the network with NumPy on real input and check every prediction of the analyzer.

    Per layer it compares the predicted output shape with the actual one and the predicted MACs with the
    multiply-accumulates the executor really performed, flags the first NaN/Inf, and (--rf-check all)
    measures the receptive field of a few output units of every layer by exact dependency propagation
    (which input positions can influence them) and compares it with the analysis. Exit code 1 if any
    check fails.

    \b
    Examples:
      convcalc run specs/edges.yaml --input photo.png --save-maps maps/
      convcalc run specs/resnet50.yaml --input cat.jpg --normalize imagenet --topk 5
      convcalc run specs/resnet18.yaml --input x.npy --weights resnet18.npz --output y.npy --dtype float64
      convcalc run specs/vgg16.yaml
    """
    from ..execution.network import Network
    from ..execution.inputs import IMAGENET_MEAN, IMAGENET_STD, default_input, expand_paths, load_inputs
    from ..execution.inputs import normalize as normalise
    from ..execution.inputs import save_maps as write_maps
    from ..report.run import run_json, run_table
    from ..execution.weights import load_npz, state_from_dict

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
        if not np.isfinite(x).all():     # the run flags the first layer that makes NaN/Inf: the input must have none
            raise ConvcalcError(f"the input holds {np.size(x) - np.count_nonzero(np.isfinite(x)):,} NaN/Inf values;"
                                " the run checks that no layer produces them, so it needs a finite input")
        if topk is not None:
            _check_classifier(analyze(graph, x.shape[1:]).output_shape)
        # checked here, against the input's shape: Network would take an empty dict for 'no weights given'
        state = state_from_dict(load_npz(weights), analyze(graph, x.shape[1:])) if weights is not None else None
        notes = _faster_blas()
        network = Network(graph, x.shape[1:], state=state, seed=seed, dtype=dtype)
        result = _run_with_progress(network, x, keep=save_maps is not None)
        if output is not None:
            saved = output if output.suffix == ".npy" else output.with_name(output.name + ".npy")   # as np.save does
            _save_npy(saved, result.output)
            notes.append(f"output {list(result.output.shape)} saved to {saved}")
        if save_maps is not None:
            written = write_maps(result.maps, save_maps, [layer.name for layer in result.layers])
            notes.append(f"{len(written)} feature-map pictures written to {save_maps}/")
        rf_checks = None
        if rf_check is RfCheck.all:
            from ..proof.verify import verify_fields
            rf_checks = verify_fields(network)
    if format is RunFormat.json:
        sys.stdout.write(json.dumps(run_json(result, source, topk, rf_checks), indent=2) + "\n")
    else:
        _stdout().print(run_table(result, source, topk, notes, rf_checks))
    if not result.ok or not all(check.ok for check in rf_checks or ()):
        raise typer.Exit(EXIT_CHECK_FAILED)


def _faster_blas() -> list[str]:
    """Commands that execute the network first switch NumPy's OpenBLAS to its faster kernels for this CPU, if it
    has any (`blas.prefer_kernels`); a note saying so, or none."""
    from ..kernels.blas import prefer_kernels

    switched = prefer_kernels()
    if switched is None:
        return []
    return [f"NumPy's OpenBLAS runs its {switched[1]} kernels, faster on this CPU than the {switched[0]} ones it"
            " picked (set OPENBLAS_CORETYPE to choose)"]


def _check_classifier(shape: Sequence[int]) -> None:
    """--topk ranks classes: the output must be [K] (or [K, 1, ...], a fully convolutional head)."""
    if any(size != 1 for size in shape[1:]):
        raise ConvcalcError(f"--topk ranks the classes of a classifier output [K] (or [K, 1, 1]); this network's"
                            f" output is {list(shape)}")


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
            hint = nearest_of_many(type_name, [t.type_name for t in types], "`convcalc layers` lists them all")
            _stderr().print(f"[bold red]error:[/] unknown layer type '{type_name}'; {hint}")
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


@app.command(name="schema")
def schema_command() -> None:
    """Print the JSON Schema (draft-07) of the spec format, generated from the layer registry.

    With it, editors that use yaml-language-server (VS Code's YAML extension and others) complete layer types
    and arguments, show defaults and docs, and flag unknown keys.

    \b
    Examples:
      convcalc schema > convcalc.schema.json
      # first line of a spec:  # yaml-language-server: $schema=./convcalc.schema.json
    """
    from ..spec.schema import spec_schema

    sys.stdout.write(json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n")


class LintFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"
    junit = "junit"


def _rule_words(values: list[str]) -> list[str]:
    """--select/--ignore values: repeatable, each comma-separated."""
    return [word.strip() for value in values for word in value.split(",") if word.strip()]


@app.command(name="lint")
def lint_command(
    paths: Optional[list[str]] = typer.Argument(None, metavar="PATH...",
                                                help="Spec files, directories (searched for *.yaml/*.yml specs) or"
                                                     " quoted globs.", show_default=False),
    format: LintFormat = typer.Option(LintFormat.text, "--format", "-f", help="Output format."),
    fail_on: Optional[str] = typer.Option(None, "--fail-on", metavar="LEVEL",
                                          help="Exit 1 when a finding is at or above LEVEL: error (default),"
                                               " warning or info."),
    select: list[str] = typer.Option([], "--select", metavar="RULES",
                                     help="Only these rules (IDs, names, ID prefixes such as CC2; comma-separated,"
                                          " repeatable). Replaces the configured selection."),
    ignore: list[str] = typer.Option([], "--ignore", metavar="RULES", help="Skip these rules (adds to the config)."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="FILE",
                                          help="Read settings from FILE (pyproject.toml or YAML with 'lint:')"
                                               " instead of searching upwards."),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore configuration files."),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside",
                                               help="Let specs include files outside their directory tree."),
    explain: Optional[str] = typer.Option(None, "--explain", metavar="RULE",
                                          help="Print a rule's rationale and fix, and exit."),
) -> None:
    """Check specs for errors and likely mistakes; exit 1 on findings at or above --fail-on (default: error).

    Every finding has file:line:col, a rule ID, a severity and the numbers behind it. Settings come from
    [tool.convcalc.lint] in pyproject.toml or 'lint:' in .convcalc.yaml (the nearest one up from the first
    PATH). Silence a finding with '# convcalc: disable=CC201' on its line (or alone on the line before), or a
    whole file with '# convcalc: disable-file=CC301'. Exit codes: 0 clean, 1 findings, 2 usage or I/O error.

    \b
    Examples:
      convcalc lint specs/
      convcalc lint 'models/**/*.yaml' --fail-on warning
      convcalc lint specs/unet.yaml --select CC2 --format json
      convcalc lint --explain CC203
    """
    from ..lint import find_config, find_rule, lint_paths, load_config
    from ..lint.config import LintConfig
    from ..lint.engine import failed
    from ..report.lint_text import explain as explain_rule
    from ..report.lint_text import to_json as lint_json
    from ..report.lint_text import to_text
    from ..lint.rules import RULES

    with _errors_to_exit():
        if explain is not None:
            rule = find_rule(explain)
            if rule is None:
                raise ConvcalcError(f"unknown lint rule '{explain}'; "
                                    + did_you_mean(explain, [r.id for r in RULES] + [r.name for r in RULES]))
            _stdout(100).print(explain_rule(rule))
            return
        if not paths:
            raise ConvcalcError("give at least one PATH to lint (a spec file, a directory or a glob)")
        if no_config:
            settings = LintConfig()
        elif config is not None:
            settings = load_config(config)
        else:
            settings = find_config(paths[0])
        settings = settings.with_options(_rule_words(select), _rule_words(ignore), fail_on, allow_include_outside)
        report = lint_paths(paths, settings)
        if format is LintFormat.json:
            text = json.dumps(lint_json(report), indent=2) + "\n"
        elif format is not LintFormat.text:
            from ..report.lint_formats import render

            text = render(report, format.value)
            text = text if text.endswith("\n") else text + "\n"
        else:
            text = None
    if text is not None:
        sys.stdout.write(text)
    else:
        console = _stdout()
        console.soft_wrap = True
        console.print(to_text(report))
    if failed(report, settings):
        raise typer.Exit(EXIT_CHECK_FAILED)


class RfFormat(str, Enum):
    table = "table"
    json = "json"


COLOUR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "white")   # drawing.PALETTE's


@app.command(name="rf")
def rf_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help="The network spec (YAML; - reads standard input).",
                                show_default=False),
    layer: Optional[str] = typer.Option(None, "--layer", "-l",
                                        help="The layer whose units to study. Default: the spec's output, or the last"
                                             " layer with spatial axes when the output sees the whole input."),
    unit: Optional[str] = typer.Option(None, "--unit", "-u", metavar="I[,J[,K]]",
                                       help="A unit of the layer, one index per spatial axis (negative: from the end)."
                                            " Prints its exact region."),
    format: RfFormat = typer.Option(RfFormat.table, "--format", "-f", help="Output format."),
    input_size: Optional[str] = typer.Option(None, "--input-size", metavar="CxHxW",
                                             help="Analyse at this input shape, e.g. 3x225x225 (regions depend on it:"
                                                  " SAME padding, borders)."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE",
                                   help="Override one of the spec's top-level args (repeatable)."),
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
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside",
                                               help="Let includes reach outside the spec's directory."),
) -> None:
    """Receptive fields: growth per layer, a unit's exact region, the effective receptive field, overlays.

    Without --unit, --erf, --overlay or --verify: a chart of how the field grows, layer by layer (size and
    effective stride per axis, share of the input covered). Regions are exact at the analysed input size,
    borders and padding (TensorFlow SAME, reflect, circular, ...) included.

    \b
    Examples:
      convcalc rf specs/vgg16.yaml
      convcalc rf specs/resnet18.yaml --layer layer2.1.add_1 --unit 3,5
      convcalc rf specs/tfslim/resnet_v1_50.yaml --unit 0,-1 --input-size 3x225x225
      convcalc rf specs/tiny.yaml --erf erf.png --samples 32
      convcalc rf specs/unet.yaml --overlay rf.png --input photo.png --unit 10,10
      convcalc rf specs/resnet50.yaml --verify
    """
    from ..analysis.regions import check_layer, growth, parse_units, spatial_layer, unit_region
    from ..report import rf as render_rf

    data: dict = {"schema_version": render_rf.SCHEMA_VERSION}
    shown: list = []
    failed = False
    with _errors_to_exit():
        graph = _load_graph(spec, set_, allow_include_outside)
        shape = parse_shape_text(input_size) if input_size is not None else None
        image = None
        if input is not None:
            from ..execution.inputs import load_inputs

            resize = None
            if shape is not None and len(shape) == 3:
                resize = (shape[1], shape[2])
            image = load_inputs(input, shape or graph.input_shape, resize)[0]
            if shape is not None and tuple(image.shape) != tuple(shape):
                raise ConvcalcError(f"--input {input} has shape {list(image.shape)}, but --input-size is"
                                    f" {list(shape)}")
            shape = image.shape
        summary = analyze(graph, shape)
        chosen_layer = layer
        layer = check_layer(summary, layer)
        units = parse_units(unit, summary, layer) if unit is not None else None
        data.update(spec=summary.name, input_shape=list(summary.input_shape), layer=layer)
        if units is not None:
            region = unit_region(summary, layer, units)
            data["region"] = render_rf.region_json(region)
            shown.append(render_rf.region_table(region))
        if erf is not None:
            from ..report.drawing import save_png
            from ..proof.erf import effective_field
            from ..report.rf_pictures import erf_heatmap
            from ..analysis.regions import centre_unit

            spatial_layer(summary, layer)
            notes = _faster_blas()
            result = effective_field(graph, summary.input_shape, layer, units or centre_unit(summary, layer),
                                     samples=samples, seed=seed, channel=channel, image=image)
            save_png(erf_heatmap(result), erf)
            data["erf"] = render_rf.erf_json(result, str(erf))
            shown.append(render_rf.erf_table(result, str(erf)))
            shown.extend(notes)
        if overlay is not None:
            from ..report.drawing import save_png
            from ..execution.inputs import default_input
            from ..report.rf_pictures import default_overlay_units
            from ..report.rf_pictures import overlay as draw_overlay

            spatial_layer(summary, layer)
            chosen = [units] if units is not None else default_overlay_units(summary, layer)
            picture, regions = draw_overlay(summary, layer, chosen,
                                            image if image is not None else default_input(summary.input_shape))
            save_png(picture, overlay)
            data["overlay"] = {"picture": str(overlay), "units": [
                dict(render_rf.region_json(r), colour=COLOUR_NAMES[i % len(COLOUR_NAMES)])
                for i, r in enumerate(regions)]}
            for index, r in enumerate(regions):
                if units is None or index > 0:
                    shown.append(render_rf.region_table(r, f"layer '{layer}', unit ({', '.join(map(str, r.units))}):"
                                                           f" {COLOUR_NAMES[index % len(COLOUR_NAMES)]}"))
            legend = ", ".join(f"{COLOUR_NAMES[i % len(COLOUR_NAMES)]}: unit ({', '.join(map(str, r.units))})"
                               + ("" if r.axes and all(a.clipped for a in r.axes) else " (outside the input)")
                               for i, r in enumerate(regions))
            shown.append(f"overlay written to {overlay} ({legend})")
        if verify:
            from ..report.rf_checks import rf_checks_json, rf_checks_table
            from ..analysis.regions import ancestors
            from ..proof.verify import verify_fields

            checks = verify_fields(summary, None if chosen_layer is None else ancestors(summary, layer))
            failed = any(not check.ok for check in checks)
            data["verify"] = rf_checks_json(checks)
            shown.append(rf_checks_table(checks))
        if not shown:
            rows = growth(summary, layer)
            data["growth"] = render_rf.growth_json(rows)
            shape_text = "×".join(map(str, summary.input_shape))
            shown.append(render_rf.growth_table(rows, f"receptive-field growth of '{summary.name}' up to '{layer}'"
                                                      f" (input {shape_text})"))
    if format is RfFormat.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        console = _stdout()
        for item in shown:
            console.print(item)
    if failed:
        raise typer.Exit(EXIT_CHECK_FAILED)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
