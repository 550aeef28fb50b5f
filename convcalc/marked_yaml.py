"""YAML loading that remembers where every key and value stands (safe loader only).

Mappings load as `MarkedDict`, sequences as `MarkedList`; both carry the location of their own
start and of each key/item, so an error about ``kernel_size`` can point at its line and column.
Duplicate keys, which PyYAML silently accepts (the last one wins), are rejected.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import Location, SpecError


class MarkedDict(dict):
    """A dict that knows where it, each of its keys and each of its values stand in the file."""

    loc: Location | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.key_locs: dict[Any, Location] = {}
        self.value_locs: dict[Any, Location] = {}

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


def _make_loader(filename: str) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> MarkedDict:
        loader.flatten_mapping(node)
        result = MarkedDict()
        result.loc = _location(node.start_mark, filename)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise SpecError("a mapping key must be a plain value", _location(key_node.start_mark, filename)) from None
            if key in result:
                first = result.key_locs[key]
                raise SpecError(
                    f"duplicate key '{key}' (first given at line {first.line})",
                    _location(key_node.start_mark, filename),
                )
            result[key] = loader.construct_object(value_node, deep=True)
            result.key_locs[key] = _location(key_node.start_mark, filename)
            result.value_locs[key] = _location(value_node.start_mark, filename)
        return result

    def construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> MarkedList:
        result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
        result.loc = _location(node.start_mark, filename)
        result.item_locs = [_location(child.start_mark, filename) for child in node.value]
        return result

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)
    return Loader


def load_marked(text: str, filename: str) -> Any:
    """Parse one YAML document into Marked containers; syntax errors become a located SpecError."""
    try:
        return yaml.load(text, Loader=_make_loader(filename))  # noqa: S506 - a SafeLoader subclass
    except SpecError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _location(mark, filename) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", loc) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Location(filename, 1, 1)) from None
