"""`convcalc import MODEL.onnx -o SPEC.yaml [--weights W.npz] [--partial]`: an ONNX model as a spec and weights."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConvcalcError
from .common import app, errors_to_exit, stderr


@app.command(name="import")
def import_command(
    model: Path = typer.Argument(..., metavar="MODEL", help="The ONNX model (.onnx).", show_default=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="SPEC",
                                          help="Write the spec here (default: standard output)."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", metavar="W.npz",
                                           help="Write the model's initializers here, keyed by the spec's"
                                                " state_dict keys (for convcalc run --weights)."),
    partial: bool = typer.Option(False, "--partial",
                                 help="Import up to the first node convcalc cannot express, and say what was"
                                      " left."),
) -> None:
    """Translate an ONNX model into a convcalc spec (and its weights).

    Layer names come from the ONNX node names (PyTorch's module paths), the header names the source, opset and
    producer; a node convcalc cannot express is a one-line error naming it (--partial: stop there). Needs the onnx
    package: pip install 'convcalc[onnx]'.

    \b
    Examples:
      convcalc import resnet18.onnx -o resnet18.yaml --weights resnet18.npz
      convcalc import model.onnx --partial > model.yaml
      convcalc analyze model.onnx     (analyze, run, rf, lint: an .onnx directly)
    """
    import numpy as np

    from ..importers.onnx_import import import_onnx

    with errors_to_exit():
        imported = import_onnx(model, partial=partial)
        notes = []
        if output is not None:
            try:
                output.write_text(imported.spec_text, encoding="utf-8")
            except OSError as exc:
                raise ConvcalcError(f"cannot write {output}: {exc.strerror or exc}") from None
            notes.append(f"spec written to {output}")
        if weights is not None:
            target = weights if weights.suffix == ".npz" else weights.with_name(weights.name + ".npz")
            try:
                np.savez(target, **imported.weights)
            except OSError as exc:
                raise ConvcalcError(f"cannot write {target}: {exc.strerror or exc}") from None
            notes.append(f"{len(imported.weights)} weight arrays written to {target}")
    if output is None:
        sys.stdout.write(imported.spec_text)
    console = stderr()
    for note in notes:
        console.print(note, markup=False)
    if imported.skipped:
        left = len(imported.skipped)
        console.print(f"--partial: {left} node{'s' if left > 1 else ''} not imported; it stopped at"
                      f" {imported.skipped[0]}", markup=False)
