"""YAML loading that remembers where every key and value stands (safe loader only).

Mappings load as `MarkedDict`, sequences as `MarkedList`; both carry the location of their own
start and of each key/item, so an error about ``kernel_size`` can point at its line and column.
Duplicate keys, which PyYAML silently accepts (the last one wins), are rejected; an explicit key may
override one brought in by a ``<<`` merge, as YAML intends.

Plain scalars follow YAML 1.2's core schema, not PyYAML's YAML 1.1 defaults: only true/false are
booleans (``on``, ``no``, ``y`` stay text), ``1e-5`` and ``30e6`` are numbers, and ``1:20`` is not
the sexagesimal 80. Keys keep the text they were written with.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import Location, SpecError


class MarkedDict(dict):
    """A dict that knows where it, each of its keys and each of its values stand in the file."""

    loc: Location | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.key_locs: dict[Any, Location] = {}
        self.value_locs: dict[Any, Location] = {}
        self.merged: dict[Any, bool] = {}

    def where(self, key: Any) -> Location | None:
        """The location of ``key`` (falling back to the mapping itself)."""
        return self.key_locs.get(key, self.loc)


class MarkedList(list):
    """A list that knows where it and each of its items stand in the file."""

    loc: Location | None = None

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.item_locs: list[Location | None] = []

    def where(self, index: int) -> Location | None:
        if 0 <= index < len(self.item_locs) and self.item_locs[index] is not None:
            return self.item_locs[index]
        return self.loc


def _location(mark: yaml.Mark, filename: str) -> Location:
    return Location(filename, mark.line + 1, mark.column + 1)


MAX_INTEGER = 2 ** 63 - 1   # PyTorch's sizes are int64; larger integers are refused where they are written

_CORE_SCHEMA = [  # YAML 1.2 core schema (tag, pattern, first characters)
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]


class _CoreLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars."""

    yaml_implicit_resolvers: dict = {}


for _key, _resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
    _CoreLoader.yaml_implicit_resolvers[_key] = [
        (tag, regexp) for tag, regexp in _resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                       "tag:yaml.org,2002:null")]
for _tag, _pattern, _first in _CORE_SCHEMA:
    _CoreLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = node.value
    if len(text.lstrip("+-")) > 19:
        raise SpecError(f"the integer {text[:20]}... is too large (the limit is {MAX_INTEGER:,})",
                        getattr(loader, "_convcalc_location")(node.start_mark))
    value = int(text, 0) if text.startswith(("0x", "0o")) else int(text)
    if abs(value) > MAX_INTEGER:
        raise SpecError(f"the integer {text} is too large (the limit is {MAX_INTEGER:,})",
                        getattr(loader, "_convcalc_location")(node.start_mark))
    return value


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = node.value.lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text.endswith(".nan"):
        return float("nan")
    return float(text)


_CSafeLoader = getattr(yaml, "CSafeLoader", None)
if _CSafeLoader is not None:
    class _CoreCLoader(_CSafeLoader):
        """The same schema on libyaml's parser (about ten times faster; used for documents it accepts)."""

        yaml_implicit_resolvers = _CoreLoader.yaml_implicit_resolvers


def _make_loader(filename: str, fast: bool = False) -> type[yaml.SafeLoader]:
    class Loader(_CoreCLoader if fast else _CoreLoader):  # type: ignore[misc,valid-type]
        _convcalc_location = staticmethod(lambda mark: _location(mark, filename))

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> MarkedDict:
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
        loader.flatten_mapping(node)
        merged_count = len(node.value) - explicit   # flatten_mapping puts merged pairs first
        result = MarkedDict()
        result.loc = _location(node.start_mark, filename)
        for index, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key_node, yaml.ScalarNode) and not isinstance(key, (str, int)) or isinstance(key, bool):
                key = key_node.value   # a key is a name: keep the text written ('on', 'null', '1.0')
            try:
                hash(key)
            except TypeError:
                raise SpecError("a mapping key must be a plain value", _location(key_node.start_mark, filename)) from None
            if key in result:
                if index < merged_count:
                    continue   # several merges: the first one to bring a key wins
                if result.merged.get(key):
                    result.merged[key] = False   # an explicit key overrides a merged one
                else:
                    first = result.key_locs[key]
                    raise SpecError(
                        f"duplicate key '{key}' (first given at line {first.line})",
                        _location(key_node.start_mark, filename),
                    )
            elif index < merged_count:
                result.merged[key] = True
            result[key] = loader.construct_object(value_node, deep=True)
            result.key_locs[key] = _location(key_node.start_mark, filename)
            result.value_locs[key] = _location(value_node.start_mark, filename)
        return result

    def construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> MarkedList:
        result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
        result.loc = _location(node.start_mark, filename)
        result.item_locs = [_location(child.start_mark, filename) for child in node.value]
        return result

    Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)
    return Loader


def load_marked(text: str, filename: str) -> Any:
    """Parse one YAML document into Marked containers; syntax errors become a located SpecError."""
    try:
        if _CSafeLoader is not None:
            try:
                return yaml.load(text, Loader=_make_loader(filename, fast=True))  # noqa: S506 - safe loader
            except (yaml.YAMLError, SpecError, ValueError, RecursionError):
                pass   # errors are reported by the pure-Python parser below, with its messages and positions
        return yaml.load(text, Loader=_make_loader(filename))  # noqa: S506 - a SafeLoader subclass
    except SpecError:
        raise
    except yaml.reader.ReaderError as exc:   # a control character, NUL, ...
        position = min(max(exc.position, 0), len(text))
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise SpecError(f"invalid YAML: the character {character!r} is not allowed in a YAML file",
                        Location(filename, line, column)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _location(mark, filename) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        if "another document" in problem:
            problem = "a spec holds one YAML document, but a second one starts here"
        raise SpecError(f"invalid YAML: {problem}", loc) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Location(filename, 1, 1)) from None
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"invalid YAML: {exc}", Location(filename, 1, 1)) from None
