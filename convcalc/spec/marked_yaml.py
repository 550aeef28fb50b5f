"""YAML loading that remembers where every key and value stands (safe loader only).

Mappings load as `MarkedDict`, sequences as `MarkedList`; both carry the location of their own
start and of each key/item, so an error about ``kernel_size`` can point at its line and column.
Duplicate keys, which PyYAML silently accepts (the last one wins), are rejected; an explicit key may
override one brought in by a ``<<`` merge, as YAML intends.

Plain scalars follow YAML 1.2's core schema, not PyYAML's YAML 1.1 defaults: only true/false are
booleans (``on``, ``no``, ``y`` stay text), ``1e-5`` and ``30e6`` are numbers, and ``1:20`` is not
the sexagesimal 80, and nothing is a date. Keys keep the text they were written with. Only the core schema's tags
are read (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!seq``, ``!!map``, and ``<<`` merges);
``!!binary``, ``!!set``, ``!!timestamp`` and the rest are refused where they stand.

Every document is measured before it is built (`limits.MAX_YAML_DEPTH`, `limits.MAX_YAML_NODES`, counted with
every alias expanded, so a "billion laughs" document is refused at the alias that would blow it up), and parsed
with libyaml when it is installed; a syntax error is described with PyYAML's own messages where the text before
it is short enough to parse again in pure Python (`REPARSE_CHARS`), else with libyaml's. A document of plain YAML
(no explicit tags, merges or other rarities: `_Unusual`) is measured and built in one pass over libyaml's events
(`_load_plain`); the rest by PyYAML's composer and the constructors here, which also word every error.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Iterator

import yaml

from ..errors import Location, SpecError
from . import limits
from .yaml_hints import describe


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


MAX_INTEGER = limits.MAX_INTEGER   # PyTorch's sizes are int64; larger integers are refused where they are written
REPARSE_CHARS = 64 * 1024          # a syntax error this far into a file is described by libyaml, not parsed again

_CORE_SCHEMA = [  # YAML 1.2 core schema (tag, pattern, first characters)
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]
_MERGE = "tag:yaml.org,2002:merge"
_TAG_PREFIX = "tag:yaml.org,2002:"


class _CoreLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (and ``<<`` merges; no dates, no ``=``)."""

    yaml_implicit_resolvers: dict = {}


for _key, _resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
    _CoreLoader.yaml_implicit_resolvers[_key] = [(tag, regexp) for tag, regexp in _resolvers if tag == _MERGE]
for _tag, _pattern, _first in _CORE_SCHEMA:
    _CoreLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _shown_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG_PREFIX):] if tag.startswith(_TAG_PREFIX) else tag


def _fail(loader: yaml.SafeLoader, node: yaml.Node, message: str) -> SpecError:
    return SpecError(message, getattr(loader, "_convcalc_location")(node.start_mark))


def _scalar(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(loader, node, f"the tag {_shown_tag(node.tag)} needs a single value, not a {node.id}")
    return node.value


def _int_of(text: str, fail) -> int:
    """The integer a core-schema int scalar's text stands for; ``fail(message)`` makes the error to raise."""
    if len(text.lstrip("+-").replace("_", "")) > 19:
        raise fail(f"the integer {text[:20]}... is too large (the limit is {MAX_INTEGER:,})")
    try:
        value = int(text, 0) if text.lower().startswith(("0x", "0o", "+0x", "-0x", "+0o", "-0o")) else int(text)
    except ValueError:
        raise fail(f"'{text[:40]}' is not an integer") from None
    if abs(value) > MAX_INTEGER:
        raise fail(f"the integer {text} is too large (the limit is {MAX_INTEGER:,})")
    return value


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    return _int_of(_scalar(loader, node).strip(), lambda message: _fail(loader, node, message))


def _float_of(text: str, fail) -> float:
    text = text.strip().lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text.endswith(".nan"):
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise fail(f"'{text[:40]}' is not a number") from None


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    return _float_of(_scalar(loader, node), lambda message: _fail(loader, node, message))


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    text = _scalar(loader, node).strip().lower()
    if text not in ("true", "false"):
        raise _fail(loader, node, f"'{text[:40]}' is not true or false")
    return text == "true"


def _construct_null(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> None:
    _scalar(loader, node)
    return None


def _construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return _scalar(loader, node)


def _unsupported(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise _fail(loader, node, f"the YAML tag {_shown_tag(node.tag)} is not supported in a spec (only strings,"
                              " numbers, true/false, null, lists and mappings are)")


_CSafeLoader = getattr(yaml, "CSafeLoader", None)
if _CSafeLoader is not None:
    class _CoreCLoader(_CSafeLoader):
        """The same schema on libyaml's parser (about ten times faster; used for documents it accepts)."""

        yaml_implicit_resolvers = _CoreLoader.yaml_implicit_resolvers


def _make_loader(filename: str, fast: bool = False) -> type[yaml.SafeLoader]:
    class Loader(_CoreCLoader if fast else _CoreLoader):  # type: ignore[misc,valid-type]
        _convcalc_location = staticmethod(lambda mark: _location(mark, filename))
        yaml_constructors: dict = {}          # only the constructors below: no dates, bytes, sets, pairs
        yaml_multi_constructors: dict = {}

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> MarkedDict:
        if not isinstance(node, yaml.MappingNode):
            raise _fail(loader, node, f"the tag {_shown_tag(node.tag)} needs a mapping, not a {node.id}")
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE)
        loader.flatten_mapping(node)
        merged_count = len(node.value) - explicit   # flatten_mapping puts merged pairs first
        result = MarkedDict()
        result.loc = _location(node.start_mark, filename)
        for index, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key_node, yaml.ScalarNode) and not isinstance(key, (str, int)) or isinstance(key, bool):
                key = key_node.value   # a key is a name: keep the text written ('on', 'null', '1.0')
            if not isinstance(key, (str, int)):
                raise SpecError("a mapping key must be a plain value", _location(key_node.start_mark, filename))
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
        if not isinstance(node, yaml.SequenceNode):
            raise _fail(loader, node, f"the tag {_shown_tag(node.tag)} needs a list, not a {node.id}")
        result = MarkedList([loader.construct_object(child, deep=True) for child in node.value])
        result.loc = _location(node.start_mark, filename)
        result.item_locs = [_location(child.start_mark, filename) for child in node.value]
        return result

    for tag, constructor in (("int", _construct_int), ("float", _construct_float), ("bool", _construct_bool),
                             ("null", _construct_null), ("str", _construct_str), ("map", construct_mapping),
                             ("seq", construct_sequence)):
        Loader.add_constructor(_TAG_PREFIX + tag, constructor)
    Loader.add_constructor(None, _unsupported)
    return Loader


# --------------------------------------------------------------------------- budgets, measured before building

def _events(text: str) -> Iterator[yaml.Event]:
    return yaml.parse(text, Loader=_CSafeLoader or yaml.SafeLoader)


def measure(text: str, filename: str) -> None:
    """Refuse a document that nests deeper than ``limits.MAX_YAML_DEPTH`` or holds more than
    ``limits.MAX_YAML_NODES`` values once its aliases are expanded, at the place it crosses the line. Reads the
    parser's events only, and stops there: a deep or exploding document costs no more than the budget. A syntax
    error stops the measure; the loader reports it."""
    try:
        for _ in _measured(_events(text), filename):
            pass
    except yaml.YAMLError:
        return


def _measured(events: Iterator[yaml.Event], filename: str) -> Iterator[yaml.Event]:
    """The parser's ``events``, each passed on once the budgets `measure` checks allow it."""
    max_depth, max_nodes = limits.MAX_YAML_DEPTH, limits.MAX_YAML_NODES
    open_collections: list[tuple[str | None, int]] = []     # (anchor, values counted before it opened)
    sizes: dict[str, int] = {}                               # anchor -> values its node stands for
    count = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_collections) >= max_depth:
                raise SpecError(f"the YAML nests mappings and lists more than {max_depth} deep here",
                                _location(event.start_mark, filename))
            open_collections.append((event.anchor, count))
            count += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_collections.pop()
            if anchor is not None:
                sizes[anchor] = count - before
            yield event
            continue
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            brought = sizes.get(event.anchor, 1)
            count += brought
            if count > max_nodes and brought > 1:
                raise SpecError(f"the alias *{event.anchor} stands for {brought:,} values, which takes the"
                                f" document past {max_nodes:,} values with aliases expanded",
                                _location(event.start_mark, filename))
        else:
            yield event
            continue
        if count > max_nodes:
            raise SpecError(f"the document holds more than {max_nodes:,} values", _location(event.start_mark,
                                                                                              filename))
        yield event


class _Unusual(Exception):
    """What `_load_plain` leaves to PyYAML's composer and the constructors above (they build it, or describe what is
    wrong): an explicit tag, a merge, an alias used as a key or before its anchor ends, a duplicate key or anchor, a
    value a constructor refuses, several documents."""


def _unusual(message: str = "") -> _Unusual:
    return _Unusual(message)


_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG_PREFIX + name for name in ("str", "int", "float", "bool", "null"))


def _load_plain(text: str, filename: str) -> Any:
    """The document built straight from libyaml's events in one pass, measured as it goes (`_measured`): what
    `yaml.load` with the loader of `_make_loader` builds, in a third of the time (a 10,000-layer spec is 90,000
    values), for documents of plain YAML; anything else raises `_Unusual` (see there)."""
    resolvers: dict[str, list] = {}
    table = _CoreLoader.yaml_implicit_resolvers
    wildcard = table.get(None, [])
    anchors: dict[str, tuple[Any, yaml.Mark]] = {}
    building: set[str] = set()
    stack: list[list] = []          # open collections: [container, is_mapping, key (mapping), key mark, anchor]
    root: Any = None
    documents = 0
    no_key = stack                  # a marker: the mapping waits for a key
    for event in _measured(_events(text), filename):
        kind = type(event)
        if kind is yaml.ScalarEvent:
            tag = event.tag
            if tag is not None and tag != "!":
                raise _unusual()
            value = event.value
            if event.implicit[0]:
                first = value[:1]
                candidates = resolvers.get(first)
                if candidates is None:
                    candidates = resolvers[first] = table.get(first, []) + wildcard
                tag = _STR
                for candidate, pattern in candidates:
                    if pattern.match(value):
                        tag = candidate
                        break
            else:
                tag = _STR
            key_text = value
            if tag == _STR:
                pass
            elif tag == _INT:
                value = _int_of(value.strip(), _unusual)
            elif tag == _FLOAT:
                value = _float_of(value, _unusual)
            elif tag == _BOOL:
                value = value.strip().lower() == "true"
            elif tag == _NULL:
                value = None
            else:
                raise _unusual()
            mark = event.start_mark
            if event.anchor is not None:
                if event.anchor in anchors or event.anchor in building:
                    raise _unusual()
                anchors[event.anchor] = (value, mark)
            if stack and stack[-1][1] and stack[-1][2] is no_key:     # a key: the text written unless an int
                frame = stack[-1]
                key = value if isinstance(value, (str, int)) and not isinstance(value, bool) else key_text
                if key in frame[0]:
                    raise _unusual()
                frame[2], frame[3] = key, mark
                continue
        elif kind is yaml.AliasEvent:
            if event.anchor not in anchors:
                raise _unusual()
            value, mark = anchors[event.anchor]
            if stack and stack[-1][1] and stack[-1][2] is no_key:
                raise _unusual()
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if event.tag is not None and event.tag != "!" or stack and stack[-1][1] and stack[-1][2] is no_key:
                raise _unusual()
            container = MarkedDict() if kind is yaml.MappingStartEvent else MarkedList()
            container.loc = _location(event.start_mark, filename)
            if event.anchor is not None:
                if event.anchor in anchors or event.anchor in building:
                    raise _unusual()
                building.add(event.anchor)
            stack.append([container, kind is yaml.MappingStartEvent, no_key, None, event.anchor, event.start_mark])
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            value, _, _, _, anchor, mark = stack.pop()
            if anchor is not None:
                building.discard(anchor)
                anchors[anchor] = (value, mark)
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _unusual()
            continue
        else:
            continue
        if not stack:
            root = value
            continue
        frame = stack[-1]
        if frame[1]:
            key, container = frame[2], frame[0]
            container[key] = value
            container.key_locs[key] = _location(frame[3], filename)
            container.value_locs[key] = _location(mark, filename)
            frame[2] = no_key
        else:
            frame[0].append(value)
            frame[0].item_locs.append(_location(mark, filename))
    return root


# --------------------------------------------------------------------------- loading

def load_marked(text: str, filename: str) -> Any:
    """Parse one YAML document into Marked containers; syntax errors and budgets become a located SpecError."""
    if len(text) > limits.MAX_SPEC_BYTES:
        raise SpecError(f"the document is longer than {limits.MAX_SPEC_BYTES:,} characters (the limit for one spec)",
                        Location(filename, 1, 1))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))   # nesting is bounded by the measure; merge chains recurse too
    try:
        if _CSafeLoader is not None:
            try:
                return _load_plain(text, filename)
            except (_Unusual, yaml.YAMLError, ValueError, RecursionError):
                pass                  # built (or described) below, as before
        measure(text, filename)
        if _CSafeLoader is None:
            return _load_python(text, filename)
        try:
            return yaml.load(text, Loader=_make_loader(filename, fast=True))  # noqa: S506 - safe loader
        except SpecError:
            raise
        except (yaml.YAMLError, ValueError, RecursionError) as exc:
            fast_error = exc
        prefix = _prefix_through_error(text, fast_error)
        if prefix is not None:   # described by the pure-Python parser, with its messages and positions
            try:
                _load_python(prefix, filename)
            except SpecError as exc:
                line = _error_line(fast_error)
                if line is None or exc.location is None or exc.location.line <= line + 3:
                    raise
        raise _spec_error(fast_error, text, filename)
    finally:
        sys.setrecursionlimit(limit)


def _error_line(exc: BaseException) -> int | None:
    """The 1-based line of a YAML error's mark, if it has one."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def _prefix_through_error(text: str, exc: BaseException) -> str | None:
    """The text up to two lines past the error libyaml found, when it is short enough to parse again."""
    line = _error_line(exc)
    if line is None:
        return text if len(text) <= REPARSE_CHARS else None
    end = 0
    for _ in range(line + 2):
        end = text.find("\n", end) + 1
        if end == 0:
            end = len(text)
            break
        if end > REPARSE_CHARS:
            return None
    return text[:end] if end <= REPARSE_CHARS else None


def _load_python(text: str, filename: str) -> Any:
    try:
        return yaml.load(text, Loader=_make_loader(filename))  # noqa: S506 - a SafeLoader subclass
    except SpecError:
        raise
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise _spec_error(exc, text, filename) from None


def _spec_error(exc: BaseException, text: str, filename: str) -> SpecError:
    """A parser's exception as a located SpecError in the spec's words."""
    if isinstance(exc, yaml.reader.ReaderError):   # a control character, NUL, ...
        found = yaml.reader.Reader.NON_PRINTABLE.search(text)
        position = found.start() if found else min(max(exc.position, 0), len(text))
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        character = text[position] if found else chr(exc.character) if isinstance(exc.character, int) \
            else exc.character
        return SpecError(f"invalid YAML: the character {character!r} is not allowed in a YAML file",
                         Location(filename, line, column))
    if isinstance(exc, yaml.MarkedYAMLError):
        return describe(exc, text, filename)       # where the mistake is, in the spec's words, with the line
    if isinstance(exc, RecursionError):
        return SpecError("invalid YAML: it nests too deeply", Location(filename, 1, 1))
    return SpecError(f"invalid YAML: {exc}", Location(filename, 1, 1))
