"""`convcalc zoo [NAME]`: the specs shipped with convcalc, or one of them to copy."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..errors import ConvcalcError
from ..report.json_text import dumps as json_text
from ..spec.zoo import zoo_file, zoo_libraries, zoo_names, zoo_path
from .completion import complete_zoo_name
from .common import TableOrJson, app, errors_to_exit, table_console, wide_option, width_option


def _entry(name: str):
    from ..analysis.summary import analyze
    from ..report.zoo import ZooEntry
    from ..spec.build import build_graph
    from ..spec.load import load_spec

    try:
        spec = load_spec(zoo_path(name))
        return ZooEntry(name, spec.description, analyze(build_graph(spec)), dict(spec.expect))
    except ConvcalcError as exc:
        return ZooEntry(name, "", None, {}, error=str(exc))


@app.command(name="zoo")
def zoo_command(
    name: Optional[str] = typer.Argument(None, metavar="NAME", show_default=False,
                                         autocompletion=complete_zoo_name,
                                         help="Print this model's spec (to copy and edit), or a block library's."),
    format: TableOrJson = typer.Option(TableOrJson.table, "--format", "-f", help="Output format."),
    width: Optional[int] = width_option(),
    wide: bool = wide_option(),
) -> None:
    """List the model zoo: every spec shipped with convcalc, with its input, parameters, GMACs, receptive field
    and the published figures its tests check it against, then the block libraries a spec can include ('include:
    zoo:blocks/mobilenet_v3'). Any command takes a zoo name where it takes a spec.

    \b
    Examples:
      convcalc zoo
      convcalc analyze resnet50      # a zoo name works wherever a spec does
      convcalc zoo mobilenet_v2 > my_net.yaml
      convcalc zoo blocks/mobilenet_v3        # a block library
    """
    from ..report.zoo import zoo_json, zoo_table      # (with the rf rules of lint: imported for this command only)

    with errors_to_exit():
        if name is not None:
            sys.stdout.write((zoo_file(name) or zoo_path(name)).read_text(encoding="utf-8"))
            return
        entries = [_entry(model) for model in zoo_names()]
        libraries = zoo_libraries()
    if format is TableOrJson.json:
        sys.stdout.write(json_text(zoo_json(entries, libraries)))
    else:
        console, fit_width = table_console(width, wide)
        console.print(zoo_table(entries, fit_width, console.width, libraries), crop=False)
    if any(entry.error for entry in entries):
        raise typer.Exit(1)
