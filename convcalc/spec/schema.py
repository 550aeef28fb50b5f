"""The JSON Schema of the spec format, generated from the layer registry (``convcalc schema``).

Draft-07, the newest draft yaml-language-server (VS Code's YAML extension, and the editors built on it)
validates and completes fully. What it encodes:

* the top-level keys of ``convcalc.spec.load`` (an included file, one without ``input``/``layers``, may carry only
  the keys an included file may), blocks (``BLOCK_KEYS``), ``expect`` (``EXPECT_KEYS``);
* a layer entry: the graph's reserved keys (``type``, ``name``, ``from``, ``when``, ``repeat``, ...) and, for each
  registered type, one ``if type is X then ...`` branch listing exactly that unit's ``arguments`` (names, PyTorch
  defaults, one-line docs, and value types where the argument's parser declares ``json_schema``), so an editor
  completes argument names per type and flags unknown ones. Type names match case-insensitively, as convcalc
  reads them; the completion list offers the canonical names and aliases;
* a value may always be a block-argument reference (``$name``, ``${expr}``), which is resolved later.

A ``type`` that names no registered layer (a block defined in the spec) is not constrained further: the schema
cannot see the document's own block names.
"""

from __future__ import annotations

from typing import Any

from .._version import __version__
from .graph import MAX_REPEAT, RESERVED_KEYS, SEQUENTIAL
from ..layers.args import REQUIRED
from ..layers.base import Layer
from ..layers.registry import layer_types
from .load import BLOCK_KEYS, INCLUDED_KEYS, TOP_LEVEL_KEYS
from . import load as spec_module

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
EXPRESSION = {"$ref": "#/definitions/expression"}
LIKE = {"$ref": "#/definitions/like"}


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of a convcalc spec file, as a plain dict."""
    types = layer_types()
    type_names = sorted({name for cls in types for name in (cls.type_name, *cls.aliases)}, key=str.lower)
    definitions: dict[str, Any] = {
        "expression": {"type": "string", "pattern": r"\$",
                       "description": "a block-argument reference ($name or ${expression}), resolved when the"
                                      " spec is expanded"},
        "like": {"type": "object", "properties": {"like": {"type": ["string", "integer"]}}, "required": ["like"],
                 "additionalProperties": False,
                 "description": "{like: NAME}: the spatial size of NAME's output (an earlier layer, or 'input')"},
        "layerList": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/layer"}},
        "block": _block_schema(),
        "layer": _layer_schema(types, type_names),
        "arguments": {cls.type_name: _arguments_schema(cls) for cls in types},
    }
    top = _top_level_properties()
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "convcalc spec",
        "description": f"A network described for convcalc {__version__}: input shape, layers, blocks.",
        "type": "object",
        "properties": {key: top.get(key, {}) for key in TOP_LEVEL_KEYS},
        "additionalProperties": False,
        # a spec has input and layers; a file that has neither is an included file (blocks and args only)
        "if": {"anyOf": [{"required": ["input"]}, {"required": ["layers"]}]},
        "then": {"required": ["input", "layers"]},
        "else": {"propertyNames": {"enum": list(INCLUDED_KEYS)}},
        "definitions": definitions,
    }


# --------------------------------------------------------------------------- top level and blocks

def _top_level_properties() -> dict[str, Any]:
    return {
        "name": {"type": "string", "description": "the network's name (default: the file name)"},
        "description": {"type": "string", "description": "free text"},
        "input": {"type": "array", "minItems": 1, "maxItems": 4, "items": {"type": "integer", "minimum": 1},
                  "description": "input shape without the batch, channels first: [C, L], [C, H, W] or [C, D, H, W]"
                                 " ([F] for a plain vector)"},
        "layers": {"$ref": "#/definitions/layerList", "description": "the layers, in order"},
        "blocks": {"type": "object", "description": "reusable, parameterised lists of layers, used as a type",
                   "propertyNames": {"pattern": "^[A-Za-z0-9_-]+$"},
                   "additionalProperties": {"$ref": "#/definitions/block"}},
        "include": {"description": "file(s) whose blocks (and args) this spec uses, relative to it",
                    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "output": {"type": "string", "description": "the layer whose output is the network's (default: the last)"},
        "args": {"type": "object", "description": "spec-wide arguments, visible in every block as $name;"
                                                  " `--set name=value` overrides them"},
        "expect": _expect_schema(),
    }


_EXPECT_VALUES = {
    "output_shape": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1},
                     "description": "the output shape, channels first, without the batch"},
    "params": {"type": "integer", "minimum": 0, "description": "the exact parameter count"},
    "params_max": {"type": "number", "minimum": 0, "description": "an upper bound on the parameter count"},
    "macs": {"type": "integer", "minimum": 0, "description": "the exact multiply-accumulate count"},
    "macs_max": {"type": "number", "minimum": 0, "description": "an upper bound on the MAC count"},
    "gmacs": {"type": "number", "minimum": 0,
              "description": "billions of MACs as published, to the decimals given (0.714: round(MACs / 1e9, 3))"},
    "rf_at": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1},
              "description": "the exact receptive field size of named layers, as published: {pool5: 212}"},
    "rf_min": {"description": "the smallest receptive field at the output: an integer or one per spatial axis",
               "anyOf": [{"type": "integer", "minimum": 1},
                         {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}}]},
}


def _expect_schema() -> dict[str, Any]:
    keys = getattr(spec_module, "EXPECT_KEYS", tuple(_EXPECT_VALUES))
    return {"type": "object", "description": "what the spec promises about itself; `convcalc lint` checks it",
            "properties": {key: _EXPECT_VALUES.get(key, {}) for key in keys}, "additionalProperties": False}


def _block_schema() -> dict[str, Any]:
    known = {
        "description": {"type": "string"},
        "args": {"type": "object", "description": "the block's arguments and their defaults ('required': must be"
                                                  " given); used inside as $name",
                 "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "not": {"enum": ["index", "repeat"]}}},
        "layers": {"$ref": "#/definitions/layerList"},
        "output": {"type": "string", "description": "the layer whose output is the block's (default: the last)"},
    }
    return {"type": "object", "properties": {key: known.get(key, {}) for key in BLOCK_KEYS},
            "required": ["layers"], "additionalProperties": False}


# --------------------------------------------------------------------------- layer entries

def _reserved_properties(type_names: list[str]) -> dict[str, Any]:
    reference = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    known = {
        "type": {"description": "a layer type (case-insensitive), Sequential, or a block defined in this spec",
                 "anyOf": [{"enum": [*type_names, "Sequential"]}, {"type": "string"}]},
        "name": {"description": "the layer's name (default: <type>_<n>, or its position inside a Sequential)",
                 **reference},
        "from": {"description": "the input(s): 'input', or names of earlier layers (default: the previous layer)",
                 "anyOf": [*reference["anyOf"], {"type": "array", "minItems": 1, "items": reference}]},
        "when": {"description": "false: the entry is bypassed (its name then means its input)",
                 "anyOf": [{"type": "boolean"}, EXPRESSION]},
        "repeat": {"description": "chain this many copies (named <name>.0, <name>.1, ...)",
                   "anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_REPEAT}, EXPRESSION]},
        "first": {"type": "object", "description": "arguments that differ in the first repetition"},
        "names": {"description": "with 'repeat': each copy's name, a pattern such as \"layer${index + 1}\"",
                  "anyOf": [{"type": "string"}, {"type": "integer"}]},
        "trainable": {"description": "false: the parameters are frozen", "anyOf": [{"type": "boolean"}, EXPRESSION]},
        "layers": {"$ref": "#/definitions/layerList", "description": "the layers of a Sequential"},
        "inline": {"type": "boolean", "description": "expand a block's layers (or a repeat) into the enclosing list,"
                                                     " without a group"},
        "init": {"description": "hand-set parameters: parameter name (weight, bias, ...) -> values (numbers, lists,"
                                " filter names, schemes); or one number or scheme for the whole layer",
                 "anyOf": [{"type": "object", "minProperties": 1}, {"type": ["number", "string"]}]},
        "tie": {"description": "an earlier layer whose parameters this layer uses (counted once, under it)",
                **reference},
    }
    return {key: known.get(key, {}) for key in RESERVED_KEYS}


def _layer_schema(types: list[type[Layer]], type_names: list[str]) -> dict[str, Any]:
    branches = [_type_branch(cls) for cls in types]
    branches.append({"if": _type_is([SEQUENTIAL]),
                     "then": {"required": ["layers"], "properties": {key: {} for key in RESERVED_KEYS},
                              "additionalProperties": False}})
    return {"type": "object", "required": ["type"], "properties": _reserved_properties(type_names),
            "allOf": branches}


def _type_is(names: list[str]) -> dict[str, Any]:
    """Matches an entry whose ``type`` is one of ``names``, in any letter case (as convcalc reads it)."""
    alternatives = "|".join("".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else _escape(c) for c in name)
                            for name in names)
    return {"properties": {"type": {"type": "string", "pattern": f"^(?:{alternatives})$"}}, "required": ["type"]}


def _escape(character: str) -> str:
    return character if character.isalnum() or character == "_" else "\\" + character


def _type_branch(cls: type[Layer]) -> dict[str, Any]:
    """``if type is cls then`` the entry takes exactly the reserved keys and cls's arguments."""
    arguments = _argument_names(cls)
    pointer = f"#/definitions/arguments/{cls.type_name}"
    properties: dict[str, Any] = {key: {} for key in RESERVED_KEYS}
    properties["first"] = {"$ref": pointer}
    properties.update({name: {"$ref": f"{pointer}/properties/{name}"} for name in arguments})
    then: dict[str, Any] = {"properties": properties, "additionalProperties": False}
    required = [name for name in arguments if cls.arguments[name].default is REQUIRED]
    if required:   # with 'repeat', a required argument may come in 'first' instead (for a single copy)
        then["anyOf"] = [{"required": required}, {"required": ["first"]}]
    return {"if": _type_is([cls.type_name, *cls.aliases]), "then": then}


def _argument_names(cls: type[Layer]) -> list[str]:
    """The arguments a spec can give (a reserved key such as 'init' is the graph's, never the unit's)."""
    return [name for name in cls.arguments if name not in RESERVED_KEYS]


def _arguments_schema(cls: type[Layer]) -> dict[str, Any]:
    """The arguments of one layer type (also what ``first`` may hold)."""
    dims = cls.dims or 1
    properties = {}
    for name in _argument_names(cls):
        argument = cls.arguments[name]
        describe = getattr(argument.parse, "json_schema", None)
        value = {"anyOf": [*_with_expressions(describe(dims))["anyOf"], LIKE]} if describe is not None else {}
        if argument.doc:
            value["description"] = argument.doc
        if argument.default is not REQUIRED:
            value["default"] = _plain(argument.default)
        properties[name] = value
    summary = cls.summary or cls.type_name
    return {"type": "object", "description": summary, "properties": properties, "additionalProperties": False}


def _with_expressions(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or a block-argument reference, also for the items of a list (of lists)."""
    widened = []
    for branch in _alternatives(schema):
        if branch.get("type") == "array" and "items" in branch:
            branch = {**branch, "items": _with_expressions(branch["items"])}
        widened.append(branch)
    return {"anyOf": [*widened, EXPRESSION]}


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The branches of a (possibly nested) pure ``anyOf``, flattened; else the schema itself."""
    if set(schema) == {"anyOf"}:
        return [branch for alternative in schema["anyOf"] for branch in _alternatives(alternative)]
    return [schema]


def _plain(value: Any) -> Any:
    """A default as JSON: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


__all__ = ["spec_schema", "SCHEMA_DIALECT"]
