"""`convcalc layers [TYPE]` and `convcalc schema`: what a spec may say, for people and for editors."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from ..layers.suggest import type_hint
from ..layers import layer_types
from .common import TableOrJson, app, fail, table_console, wide_option, width_option


@app.command(name="layers")
def layers_command(type_name: Optional[str] = typer.Argument(None, metavar="TYPE", help="Show one type's arguments.",
                                                             show_default=False),
                   long: bool = typer.Option(False, "--long", "-l",
                                             help="One line per type, saying what it does (a longer list)."),
                   format: TableOrJson = typer.Option(TableOrJson.table, "--format", "-f",
                                                      help="Output format (json: schema_version 1, every type with "
                                                           "its family, summary, aliases and arguments)."),
                   width: Optional[int] = width_option(), wide: bool = wide_option()) -> None:
    """List the layer types a spec may use, grouped by family, or one type's arguments and defaults.

    \b
    Examples:
      convcalc layers              # every type, by family
      convcalc layers --long       # ... with what each does
      convcalc layers Conv2d       # its arguments, defaults and meanings
    """
    from ..report.layers import arguments_table, layer_families_table, layer_types_json, layer_types_table

    console, fit_width = table_console(width, wide)
    types = layer_types()
    if type_name:
        matches = [t for t in types if type_name.lower() in (t.type_name.lower(), *(a.lower() for a in t.aliases))]
        if not matches:
            hint = type_hint(type_name, [t.type_name for t in types], "`convcalc layers` lists them all")
            fail(f"unknown layer type '{type_name}'; {hint}")
        types = matches[:1]
    if format is TableOrJson.json:
        data = layer_types_json(types)
        sys.stdout.write(json.dumps(data["types"][0] if type_name else data, indent=2, ensure_ascii=False) + "\n")
        return
    if type_name:
        console.print(arguments_table(types[0], fit_width, console.width), crop=False)
    elif long:
        console.print(layer_types_table(types, fit_width, console.width), crop=False)
    else:
        console.print(layer_families_table(types, fit_width, console.width), crop=False)


@app.command(name="schema")
def schema_command() -> None:
    """Print the JSON Schema (draft-07) of the spec format, generated from the layer registry.

    With it, editors that use yaml-language-server (VS Code's YAML extension and others) complete layer types
    and arguments, show defaults and docs, and flag unknown keys.

    \b
    Examples:
      convcalc schema > convcalc.schema.json
      # then, as a spec's first line:
      # yaml-language-server: $schema=./convcalc.schema.json
    """
    from ..spec.schema import spec_schema

    sys.stdout.write(json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n")
