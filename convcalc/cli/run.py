"""`convcalc run SPEC`: execute the network with NumPy and check every prediction (`convcalc.run`)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..report.json_text import dumps as json_text
from .completion import complete_spec
from .common import (EXIT_CHECK_FAILED, INCLUDE_HELP, SET_HELP, SPEC_HELP, TableOrJson, app, errors_to_exit,
                     floats, load_graph, onnx_weights, size, table_console, wide_option,
                     width_option)
from .progress import QUIET_HELP, progress_bars

NO_TUNE_HELP = ("Choose each conv's algorithm by the cost model alone and keep OpenBLAS's own kernels: no timing,"
                " the tuning cache neither read nor written.")
MEMORY_HELP = ("Memory budget, e.g. 8G or 500M (0 or none: no limit); default: 75% of the available memory."
               " Work whose estimated memory exceeds it is refused before anything large is allocated.")


class RunDtype(str, Enum):
    float32 = "float32"
    float64 = "float64"


class Normalization(str, Enum):
    imagenet = "imagenet"


class RfCheck(str, Enum):
    all = "all"
    none = "none"


@app.command(name="run")
def run_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help=SPEC_HELP, show_default=False,
                                autocompletion=complete_spec),
    input: Optional[str] = typer.Option(None, "--input", "-i", metavar="PATH",
                                        help="Image, .npy ([C,...] or [N,C,...]), directory or quoted glob."
                                             " Default: a built-in test image at the spec's input size."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w",
                                           help="A .npz state dict keyed <layer>.<param> (PyTorch's names)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the default (PyTorch-distributed) initialisation."),
    init: Optional[str] = typer.Option(None, "--init", metavar="SCHEME",
                                       help="Without --weights: draw every weight of 2+ dimensions (not biases) from"
                                            " a torch.nn.init scheme, e.g. kaiming_normal or '{scheme:"
                                            " kaiming_normal, mode: fan_out, nonlinearity: relu}'."),
    dtype: RunDtype = typer.Option(RunDtype.float32, "--dtype", help="Element type of the run."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Repeat a single input into a batch of N."),
    resize: Optional[str] = typer.Option(None, "--resize", metavar="HxW", help="Resize images to HxW."),
    normalize: Optional[Normalization] = typer.Option(None, "--normalize",
                                                      help="Normalise images with ImageNet's mean and std."),
    mean: Optional[str] = typer.Option(None, "--mean", metavar="M[,M..]", help="Subtract per-channel means."),
    std: Optional[str] = typer.Option(None, "--std", metavar="S[,S..]", help="Divide by per-channel stds."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save the final output [N, ...] as .npy."),
    save_maps: Optional[Path] = typer.Option(None, "--save-maps", metavar="DIR",
                                             help="Write every layer's feature maps as PNG grids into DIR."),
    topk: Optional[int] = typer.Option(None, "--topk", min=1, help="Print the top-k classes (softmax) per sample."),
    format: TableOrJson = typer.Option(TableOrJson.table, "--format", "-f", help="Output format."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=SET_HELP),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside", help=INCLUDE_HELP),
    rf_check: RfCheck = typer.Option(RfCheck.all, "--rf-check",
                                     help="Prove every layer's receptive field by exact dependency propagation"
                                          " (all), or skip it (none)."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", metavar="SIZE", help=MEMORY_HELP),
    no_tune: bool = typer.Option(False, "--no-tune", help=NO_TUNE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    width: Optional[int] = width_option(),
    wide: bool = wide_option(),
) -> None:
    """Run the network with NumPy on real input and check every prediction of the analyzer.

    Per layer it compares the predicted output shape with the actual one and the predicted MACs with the
    multiply-accumulates the executor really performed, flags the first NaN/Inf, and (--rf-check all)
    measures the receptive field of a few output units of every layer by exact dependency propagation
    (which input positions can influence them) and compares it with the analysis. Exit code 1 if any
    check fails. Each conv runs the algorithm measured fastest on this machine (`convcalc tune`; a network shape
    not yet measured is timed first, for a few seconds at most, and cached), or with --no-tune the cost model's.

    \b
    Examples:
      convcalc run edges --input photo.png --save-maps maps/
      convcalc run resnet50 -i cat.jpg --normalize imagenet --topk 5
      convcalc run resnet18 --input x.npy --weights resnet18.npz \\
          --output y.npy --dtype float64
      convcalc run vgg16
    """
    from ..execution.inputs import save_array
    from ..proof.run import run
    from ..report.maps import save_maps as write_maps
    from ..report.run import run_json, run_table
    from ..report.tune import tuning_note
    from .tune import run_tuner

    with errors_to_exit():
        graph = load_graph(spec, set_, allow_include_outside)
        options = dict(input=input, weights=onnx_weights(spec, weights, init), seed=seed, init=init,
                       dtype=dtype.value, batch=batch,
                       resize=size(resize),
                       normalize=normalize.value if normalize is not None else None,
                       mean=floats(mean, "--mean"), std=floats(std, "--std"), topk=topk,
                       keep_maps=save_maps is not None, rf_check=rf_check is RfCheck.all, max_memory=max_memory)
        tunings: list = []
        from ..execution.memory import reuse_freed_memory

        reuse_freed_memory()     # process-wide, so the command's choice: a pass reuses what the last one freed
        with progress_bars(quiet) as bars:
            checked = run(graph, **options, on_progress=None if bars is None else bars.update,
                          choose=None if no_tune else run_tuner(dtype.value, tunings))
        notes = [tuning_note(tunings[-1])] if tunings else []
        if output is not None:
            notes.append(f"output {list(checked.output.shape)} saved to {save_array(output, checked.output)}")
        if save_maps is not None:
            written = write_maps(checked.result.maps, save_maps, [layer.name for layer in checked.layers],
                                 {layer.name: layer.type for layer in checked.layers})
            notes.append(f"{len(written)} feature-map pictures written to {save_maps}/")
    if format is TableOrJson.json:
        sys.stdout.write(json_text(run_json(checked.result, checked.source, topk, checked.rf_checks)))
    else:
        console, fit_width = table_console(width, wide)
        samples = _sample_files(input, len(graph.input_shape), checked.result.batch) if topk else None
        console.print(run_table(checked.result, checked.source, topk, notes, checked.rf_checks, fit_width,
                                console.width, samples), crop=False)
    if not checked.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _sample_files(pattern: Optional[str], axes: int, batch: int) -> Optional[list[str]]:
    """The file each sample of the batch came from ('cat.png', 'batch.npy[3]'), in `load_inputs`' order; None
    when there are no files (the built-in image) or they do not account for the batch."""
    import numpy as np

    from ..execution.inputs import expand_paths

    if pattern is None:
        return None
    names: list[str] = []
    try:
        for path in expand_paths(pattern):
            if path.suffix.lower() == ".npy":
                shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
                count = shape[0] if len(shape) == axes + 1 else 1
                names += [f"{path.name}[{i}]" for i in range(count)] if len(shape) == axes + 1 else [path.name]
            else:
                names.append(path.name)
    except Exception:           # noqa: BLE001 - the run read these files; a name is only a courtesy
        return None
    return names if len(names) == batch else None
