"""``convcalc layers [TYPE]``: the layer types a spec may use, or one type's arguments, as fitted tables."""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

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


# the families `convcalc layers` groups the types in, in order: a type goes to the first whose pattern its name
# matches (the last takes the rest: pointwise functions)
FAMILIES = (
    ("convolution", r"Conv|LocallyConnected"),
    ("pooling", r"Pool|Maxout|Unpool"),
    ("normalization", r"Norm"),
    ("dropout", r"Dropout|StochasticDepth"),
    ("padding", r"Pad[123]d$"),
    ("resampling", r"Upsampl|PixelShuffle|PixelUnshuffle"),
    ("merge", r"^(Add|Concat|Multiply)$"),
    ("shape", r"^(Flatten|Reshape|Permute|Chunk|Narrow|Split|Unflatten|ChannelShuffle|Identity)$"),
    ("dense", r"^(Linear|LearnableTensor)$"),
    ("pointwise", r""),
)


def family_of(type_name: str) -> str:
    """The family `convcalc layers` lists ``type_name`` under."""
    return next(family for family, pattern in FAMILIES if re.search(pattern, type_name))


def _joined_dims(names: Sequence[str]) -> list[str]:
    """Type names with their 1-D/2-D/3-D variants written once: 'AvgPool1d/2d/3d', in the order first seen."""
    out: list[str] = []
    stems: dict[str, int] = {}
    for name in names:
        match = re.fullmatch(r"(.*[A-Za-z])([123]d)", name)
        if match and match.group(1) in stems:
            out[stems[match.group(1)]] += "/" + match.group(2)
        else:
            if match:
                stems[match.group(1)] = len(out)
            out.append(name)
    return out


def layer_families_table(types: Sequence[type], width: int | None = None, prose: int | None = None) -> FittedTable:
    """Every layer type, grouped by family, the 1-D/2-D/3-D variants of a type on one entry: a screen, not a page
    (`layer_types_table` says what each does)."""
    grouped: dict[str, list[str]] = {family: [] for family, _ in FAMILIES}
    for cls in sorted(types, key=lambda c: c.type_name.lower()):
        grouped[family_of(cls.type_name)].append(cls.type_name)
    rows = [[family, ", ".join(_joined_dims(names))] for family, names in grouped.items() if names]
    return fit([Column("family"), Column("types", kind="text")], rows, width, prose=prose).table(
        f"{len(types)} layer types (case-insensitive in specs)", header_style="table.header",
        caption="convcalc layers TYPE: a type's arguments and defaults; --long: what each type does")


def layer_types_json(types: Sequence[type]) -> dict[str, Any]:
    """`convcalc layers --format json` (schema_version 1): every type, its family, what it does, its aliases and
    its arguments with their defaults (null where required) and meanings."""
    return {"schema_version": 1, "types": [
        {"type": cls.type_name, "family": family_of(cls.type_name), "summary": cls.summary,
         "aliases": list(cls.aliases),
         "arguments": [{"name": name, "required": arg.default is REQUIRED,
                        "default": None if arg.default is REQUIRED else arg.default, "doc": arg.doc}
                       for name, arg in cls.arguments.items()]}
        for cls in types]}
