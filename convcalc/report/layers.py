"""``convcalc layers [TYPE]``: the layer types a spec may use, or one type's arguments, as fitted tables."""

from __future__ import annotations

import json
from typing import Sequence

from .fit import Column, FittedTable, fit
from ..layers import REQUIRED


def layer_types_table(types: Sequence[type], width: int | None = None, prose: int | None = None) -> FittedTable:
    """Every layer type and what it does (with its aliases); the descriptions wrap into ``width`` columns."""
    rows = [[cls.type_name, cls.summary + (f" (also {', '.join(cls.aliases)})" if cls.aliases else "")]
            for cls in types]
    return fit([Column("type"), Column("what it does", kind="text")], rows, width,
               prose=prose).table("layer types (case-insensitive in specs)", header_style="table.header")


def arguments_table(cls: type, width: int | None = None, prose: int | None = None) -> FittedTable:
    """One type's arguments, their defaults (JSON, or 'required') and meanings; the meanings wrap."""
    rows = [[name, "required" if arg.default is REQUIRED else json.dumps(arg.default), arg.doc]
            for name, arg in cls.arguments.items()]
    return fit([Column("argument"), Column("default"), Column("meaning", kind="text")], rows, width, ("meaning",),
               prose=prose).table(f"{cls.type_name}: {cls.summary}", header_style="table.header")
