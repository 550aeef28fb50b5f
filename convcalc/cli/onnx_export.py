"""`convcalc export SPEC -o MODEL.onnx [--weights W.npz] [--seed N] [--opset N] [--input-size CxHxW]`: the network as
an ONNX model that ONNX Runtime runs to `convcalc run`'s numbers (`convcalc.importers.onnx_export.export_onnx`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConvcalcError
from .common import (INCLUDE_HELP, SET_HELP, SPEC_HELP, app, errors_to_exit, load_graph, onnx_weights, shape_option,
                     stderr)


@app.command(name="export")
def export_command(
    spec: Path = typer.Argument(..., metavar="SPEC", help=SPEC_HELP, show_default=False),
    output: Path = typer.Option(..., "--output", "-o", metavar="MODEL.onnx", help="Write the ONNX model here.",
                                show_default=False),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", metavar="W.npz",
                                           help="Parameters keyed like a PyTorch state_dict (as run --weights);"
                                                " default: the seeded initialisation run --seed uses (an .onnx"
                                                " SPEC: its own initializers)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the default initialisation (without --weights)."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset version, 13 to 22."),
    input_size: Optional[str] = typer.Option(None, "--input-size", metavar="CxHxW",
                                             help="Export for this input size instead of the spec's (the batch"
                                                  " stays dynamic)."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=SET_HELP),
    allow_include_outside: bool = typer.Option(False, "--allow-include-outside", help=INCLUDE_HELP),
) -> None:
    """Export the network to ONNX: every layer as the ONNX ops that compute it exactly (composite layers as their
    parts), the parameters as initializers named by their state_dict keys, a dynamic batch. A layer ONNX cannot
    express is a one-line error naming it. Needs the onnx package: pip install 'convcalc[onnx]'.

    \b
    Examples:
      convcalc export resnet18 -o resnet18.onnx --weights resnet18.npz
      convcalc export unet -o unet.onnx --input-size 1x188x188 --opset 17
      convcalc export mobilenet_v2 -o m.onnx --seed 3   (run --seed 3's weights)
    """
    from ..execution.weights import load_npz
    from ..importers.onnx_export import export_onnx

    with errors_to_exit():
        graph = load_graph(spec, set_, allow_include_outside)
        shape = shape_option(input_size, graph)
        state = load_npz(weights) if weights is not None else onnx_weights(spec, None, None)   # an .onnx: its own
        data = export_onnx(graph, state, input_shape=shape, opset=opset, seed=seed)
        try:
            output.write_bytes(data)
        except OSError as exc:
            raise ConvcalcError(f"cannot write {output}: {exc.strerror or exc}") from None
    source = (f"weights from {weights}" if weights is not None else "the model's own weights" if state is not None
              else f"seeded weights (--seed {seed})")
    stderr().print(f"wrote {output}: {len(graph.nodes)} layers, opset {opset}, {source}, {len(data):,} bytes",
                   markup=False, highlight=False)
