"""Stage 10, cli: the command line, the only place that reads argv, prints, or exits.

One small module per command (``analyze``, ``run``, ``rf``, ``lint``, ``reference`` for ``layers`` and ``schema``),
each parsing its options, calling the library, rendering with `convcalc.report` and choosing the exit code;
``common`` holds the Typer app, the error translation and the shared option parsing. May import every stage.

Exit codes: 0 success; 1 a check failed (``run``: a prediction the executor disproved; ``rf --verify``: a field;
``lint``: a finding at or above --fail-on); 2 bad input (spec, file, options), with one line on stderr.
"""

from __future__ import annotations

import gc
import os
import sys

from . import analyze, run, tune, reference, lint, rf, zoo, explain, calc, onnx_import, onnx_export  # noqa: F401  (each registers its commands, in --help's order)
from .analyze import Format
from .common import EXIT_CHECK_FAILED, EXIT_INPUT_ERROR, app


def main() -> None:
    # The analyzer builds many small objects that live until the command ends: with Python's default collection
    # thresholds the cycle collector ran ~0.5 s of 2.5 s for a 10,000-layer spec. Everything imported so far is
    # moved out of its view, and it runs 30x less often; memory stays bounded by the budgets, not by collection.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        app()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if done.code is not None and not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
        # Exit without tearing down what the command built: freeing a 10,000-layer analysis object by object took
        # 0.2-0.3 s after its output was written. Files are closed where they are written; only the standard
        # streams are left to flush.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):      # a closed pipe (convcalc ... | head): nothing more to say
                code = code or 1
        os._exit(code)


__all__ = ["EXIT_CHECK_FAILED", "EXIT_INPUT_ERROR", "Format", "app", "main"]
