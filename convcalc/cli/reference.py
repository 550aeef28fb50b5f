"""`convcalc layers [TYPE]` and `convcalc schema`: what a spec may say, for people and for editors."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import nearest_of_many
from ..layers import REQUIRED, layer_types
from .common import app, fail, stdout


@app.command(name="layers")
def layers_command(type_name: Optional[str] = typer.Argument(None, help="Show one type's arguments.")) -> None:
    """List the layer types a spec may use, or one type's arguments and defaults."""
    console = stdout(120)
    types = layer_types()
    if type_name:
        matches = [t for t in types if type_name.lower() in (t.type_name.lower(), *(a.lower() for a in t.aliases))]
        if not matches:
            hint = nearest_of_many(type_name, [t.type_name for t in types], "`convcalc layers` lists them all")
            fail(f"unknown layer type '{type_name}'; {hint}")
        cls = matches[0]
        table = Table(title=escape(f"{cls.type_name}: {cls.summary}"), title_justify="left")
        for column in ("argument", "default", "meaning"):
            table.add_column(column)
        for name, arg in cls.arguments.items():
            default = "required" if arg.default is REQUIRED else json.dumps(arg.default)
            table.add_row(escape(name), escape(default), escape(arg.doc))
        console.print(table)
        return
    table = Table(title="layer types (case-insensitive in specs)", title_justify="left")
    table.add_column("type")
    table.add_column("what it does")
    for cls in types:
        aliases = f" (also {', '.join(cls.aliases)})" if cls.aliases else ""
        table.add_row(escape(cls.type_name + aliases), escape(cls.summary))
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
