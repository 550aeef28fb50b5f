"""Stage 10, cli: the command line, the only place that reads argv, prints, or exits.

One small module per command (``analyze``, ``run``, ``rf``, ``lint``, ``reference`` for ``layers`` and ``schema``),
each parsing its options, calling the library, rendering with `convcalc.report` and choosing the exit code;
``common`` holds the Typer app, the error translation and the shared option parsing (``plain``: the part that needs
no Typer); ``direct`` runs the commonest ``analyze`` command lines without Typer. May import every stage.

Exit codes: 0 success; 1 a check failed (``run``: a prediction the executor disproved; ``rf --verify``: a field;
``lint``: a finding at or above --fail-on); 2 bad input (spec, file, options), with one line on stderr.
"""

from __future__ import annotations

import os
import sys

_COMMANDS = ("analyze", "run", "tune", "reference", "lint", "rf", "zoo", "explain", "calc", "onnx_import",
             "onnx_export", "report")
_MODULE_OF = {"analyze": "analyze", "run": "run", "tune": "tune", "layers": "reference", "schema": "reference",
              "lint": "lint", "rf": "rf", "zoo": "zoo", "explain": "explain", "calc": "calc", "import": "onnx_import",
              "export": "onnx_export", "report": "report"}
# (the module that registers each command: tests/test_startup.py checks)
_LAZY = {"EXIT_CHECK_FAILED": "common", "EXIT_INPUT_ERROR": "common", "app": "common", "Format": "analyze"}


def _load_commands() -> None:
    """Import each command's module, which registers its commands on the app (in --help's order). Done on first
    use, not at import: `convcalc --version` needs none of them (nor Typer, Rich or NumPy)."""
    from importlib import import_module

    for name in _COMMANDS:
        import_module(f".{name}", __name__)


def __getattr__(name: str):
    """``app`` (with every command registered), ``Format`` and the exit codes, imported when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _load_commands()
    from importlib import import_module

    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def _only(app, name: str | None, module: str | None = None) -> bool:
    """Build only the command about to run: Typer turns every registered function into a click command before it
    parses anything (~25 ms for convcalc's 20), and a command line names one; ``module``, the one that registers
    it, is the only command module imported. Whether ``name`` was found: if not (options first, an unknown name,
    completion), every command is built, for the messages that list them."""
    if module is not None:
        from importlib import import_module

        import_module(f".{module}", __name__)
    commands = [info for info in app.registered_commands if info.name == name]
    groups = [info for info in app.registered_groups if info.name == name]
    if commands or groups:
        app.registered_commands[:] = commands
        app.registered_groups[:] = groups
    return bool(commands or groups)


def _exit(code: int) -> None:
    # Exit without tearing down what the command built: freeing a 10,000-layer analysis object by object took
    # 0.2-0.3 s after its output was written. Files are closed where they are written; only the standard
    # streams are left to flush.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):      # a closed pipe (convcalc ... | head): nothing more to say
            code = code or 1
    os._exit(code)


def main() -> None:
    if sys.argv[1:] == ["--version"] and "_CONVCALC_COMPLETE" not in os.environ:
        from .._version import __version__      # what the app's --version prints, without building the app

        sys.stdout.write(f"convcalc {__version__}\n")
        _exit(0)
    import gc

    named = sys.argv[1] if len(sys.argv) > 1 and "_CONVCALC_COMPLETE" not in os.environ else None
    if named == "analyze":                      # its common command lines without Typer (`direct`)
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        from .direct import run_analyze

        try:
            if run_analyze(sys.argv[2:]):
                _exit(0)
        except BrokenPipeError:                 # as click: `convcalc analyze ... | head` exits 1, quietly
            _exit(1)
        except KeyboardInterrupt:
            _exit(130)
    from .common import app

    if not (named in _MODULE_OF and _only(app, named, _MODULE_OF[named])):
        _load_commands()
        _only(app, named)
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
        _exit(code)


__all__ = ["EXIT_CHECK_FAILED", "EXIT_INPUT_ERROR", "Format", "app", "main"]
