"""`convcalc analyze` without Typer for the command lines it is mostly given (start-up time, not behaviour).

Typer (with click and its command objects) was about a fifth of ``convcalc analyze resnet50``'s start-up. `main` hands
this module ``analyze SPEC`` with the common options, each in its plain form (``--format json``, ``-f json``,
``--depth 1``, ``--parts``, ...), each at most once; `run_analyze` answers those with the same functions the Typer
command calls (`summary_of`, `write_summary`), and declines (returns False, having written nothing) every other
command line, and every spec that raises an error: the Typer command then runs it and says what is wrong, as
always. tests/test_direct.py checks the two agree.
"""

from __future__ import annotations

import gc
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..analysis.summary import DTYPE_BYTES, Summary, analyze
from ..errors import ConvcalcError
from .plain import MIN_WIDTH, load_graph, shape_option, table_console

FORMATS = ("table", "json", "markdown", "csv")
_FLAGS = {"--parts": "parts", "--wide": "wide", "--allow-include-outside": "allow_include_outside"}
_VALUED = {"--format": "format", "-f": "format", "--depth": "depth", "-d": "depth", "--dtype": "dtype",
           "--input-size": "input_size", "-i": "input_size", "--width": "width"}
_NUMBER = re.compile(r"[1-9][0-9]{0,8}")


def summary_of(spec: Path, set_: Sequence[str], allow_include_outside: bool, input_size: Optional[str],
               dtype: str) -> Summary:
    """The analysis ``convcalc analyze`` prints (``input_size``: the ``--input-size`` option's text)."""
    graph = load_graph(spec, list(set_), allow_include_outside)
    shape = shape_option(input_size, graph)
    if shape is None:
        return analyze(graph, dtype=dtype)
    from ..proof.run import analyze_input      # a size the spec cannot take: say so, and which sizes work

    return analyze_input(graph, shape, None, None, option="--input-size", dtype=dtype)


def write_summary(summary: Summary, format: str, depth: Optional[int], parts: bool, width: Optional[int],
                  wide: bool) -> None:
    """``summary`` on standard output in ``format`` (one of `FORMATS`)."""
    if format == "json":
        from ..report.json_text import dumps
        from ..report.summary import to_json

        sys.stdout.write(dumps(to_json(summary)))
    elif format == "markdown":
        from ..report.summary import to_markdown

        sys.stdout.write(to_markdown(summary, depth, parts))
    elif format == "csv":
        from ..report.summary import to_csv

        sys.stdout.write(to_csv(summary, depth, parts))
    else:
        from ..report.summary_table import to_table

        console, fit_width = table_console(width, wide)
        console.print(to_table(summary, depth, parts, fit_width or console.width, wide=fit_width is None), crop=False)


def _options(argv: Sequence[str]) -> Optional[dict]:
    """The options of ``analyze``'s command line when each is certain (else None: Typer parses it)."""
    found: dict = {}
    spec = None
    words = list(argv)
    while words:
        word = words.pop(0)
        if word in _FLAGS and _FLAGS[word] not in found:
            found[_FLAGS[word]] = True
        elif word in _VALUED and _VALUED[word] not in found and words and not words[0].startswith("-"):
            found[_VALUED[word]] = words.pop(0)
        elif spec is None and word and not word.startswith("-") and "\0" not in word:
            spec = word
        else:
            return None
    if spec is None or found.get("format", "table") not in FORMATS or found.get("dtype", "float32") not in DTYPE_BYTES:
        return None
    for name, least in (("depth", 1), ("width", MIN_WIDTH)):
        if name in found:
            if not _NUMBER.fullmatch(found[name]) or int(found[name]) < least:
                return None
            found[name] = int(found[name])
    found["spec"] = Path(spec)
    return found


def run_analyze(argv: Sequence[str]) -> bool:
    """Run ``convcalc analyze`` with ``argv`` (its arguments) when the command line is one `_options` reads and the
    spec analyses without error; whether it ran (if not, nothing was written)."""
    options = _options(argv)
    if options is None:
        return False
    gc.disable()        # as the Typer command: one spec, then exit
    try:
        summary = summary_of(options["spec"], [], options.get("allow_include_outside", False),
                             options.get("input_size"), options.get("dtype", "float32"))
    except (ConvcalcError, RecursionError):
        gc.enable()
        return False
    write_summary(summary, options.get("format", "table"), options.get("depth"), options.get("parts", False),
                  options.get("width"), options.get("wide", False))
    return True


__all__ = ["FORMATS", "run_analyze", "summary_of", "write_summary"]
