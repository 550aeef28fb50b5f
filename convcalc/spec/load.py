"""Read and validate a spec file: top-level keys, input shape, blocks and includes.

The result is a `Spec`: still the spec's own words (layers as marked YAML), checked for form.
`convcalc.spec.build.build_graph` turns it into named nodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConvcalcError, Location, SpecError, brief, did_you_mean
from ..layers import is_registered
from . import limits
from .zoo import PREFIX as ZOO_PREFIX, spec_location, zoo_include
from .budget import value_problem
from .files import read_spec_stream, read_text_file, resolved, shown_path, size_text
from .marked_yaml import MarkedDict, MarkedList, load_marked

TOP_LEVEL_KEYS = ("name", "description", "input", "layers", "blocks", "include", "output", "args", "expect")
INCLUDED_KEYS = ("name", "description", "blocks", "include", "args")   # an included file brings blocks (and args)
BLOCK_KEYS = ("description", "args", "layers", "output")
REQUIRED_ARG = "required"  # a block argument whose default is the word 'required' must be given


@dataclass(frozen=True)
class BlockDef:
    """A reusable, parameterised list of layers with one input (``input``) and one output."""

    name: str
    args: Mapping[str, Any]
    required: frozenset[str]
    layers: MarkedList
    output: str | None
    location: Location | None
    source: MarkedDict


@dataclass(frozen=True)
class Spec:
    """A validated spec document."""

    name: str
    input_shape: tuple[int, ...]
    layers: MarkedList
    blocks: Mapping[str, BlockDef] = field(default_factory=dict)   # keyed by lower-cased name
    output: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    file: str = "<spec>"
    description: str = ""
    document: MarkedDict | None = None
    # what the spec declares about itself (`expect:`; `parse_expect`), checked by `convcalc lint`, ignored by analyze
    expect: Mapping[str, Any] = field(default_factory=dict)
    expect_locations: Mapping[str, Location] = field(default_factory=dict)


def _check_keys(mapping: MarkedDict, allowed: tuple[str, ...], what: str) -> None:
    for key in mapping:
        if key not in allowed:
            slipped = ""
            if what == "the spec" and _is_layer_argument(key):    # '- type: Conv2d' then 'out_channels:' at column 1
                slipped = (f" ('{key}' is a layer's argument: if it belongs to the layer above, indent it to line up"
                           " under that layer's 'type')")
            raise SpecError(f"unknown key '{key}' in {what}{slipped}; {did_you_mean(str(key), allowed)}",
                            mapping.where(key))


def _is_layer_argument(key: Any) -> bool:
    from ..layers import layer_types

    return isinstance(key, str) and any(key in cls.arguments for cls in layer_types())


_KIND_NAMES = {dict: "a mapping", list: "a list", str: "a string"}


def _expect(value: Any, kind: type, what: str, loc: Location | None) -> Any:
    """Return ``value`` if it is a ``kind`` (dict, list or str), else raise a located SpecError."""
    if not isinstance(value, kind):
        shown = "nothing" if value is None else brief(value)
        raise SpecError(f"{what} must be {_KIND_NAMES[kind]}, got {shown}", loc)
    return value


def parse_input_shape(value: Any, loc: Location | None, what: str = "input") -> tuple[int, ...]:
    """``[C, L]``, ``[C, H, W]`` or ``[C, D, H, W]`` (``[F]`` for a plain vector): positive integers."""
    if not isinstance(value, list) or not 1 <= len(value) <= 4 or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise SpecError(f"{what} must be a list of 1 to 4 positive integers, channels first and without the batch"
                        f" ([C, L], [C, H, W] or [C, D, H, W]), got {brief(value)}", loc)
    return tuple(value)


def parse_shape_text(text: str) -> tuple[int, ...]:
    """'3x224x224' or '3,224,224' (as --input-size takes it)."""
    parts = text.replace(",", "x").replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if not values or len(values) > 4 or any(v < 1 for v in values):
        raise ConvcalcError(f"input size '{text}' must be 1 to 4 positive integers such as 3x224x224")
    return tuple(values)


EXPECT_KEYS = ("output_shape", "params", "params_max", "macs", "macs_max", "gmacs", "rf_min", "rf_at")


def _count(value: Any, what: str, loc: Location | None, exact: bool) -> int | float:
    """A non-negative count (``30e6`` allowed); an exact one must be a whole number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0 \
            or value == float("inf"):
        raise SpecError(f"{what} must be a non-negative number, got {brief(value)}", loc)
    if exact:
        if value != int(value):
            raise SpecError(f"{what} must be a whole number, got {brief(value)}", loc)
        return int(value)
    return value


def gmacs_hold(macs: int, gmacs: float) -> bool:
    """Whether ``macs`` rounds to the published billions ``gmacs`` at the decimals it is written with (0.714:
    round(macs / 1e9, 3); 15.47: two decimals), halves rounded up, in exact decimals."""
    from decimal import ROUND_HALF_UP, Decimal
    published = Decimal(repr(float(gmacs))).normalize()
    step = Decimal(1).scaleb(min(0, published.as_tuple().exponent))
    return (Decimal(macs) / Decimal(10) ** 9).quantize(step, rounding=ROUND_HALF_UP) == published


def parse_expect(value: Any, loc: Location | None) -> tuple[dict[str, Any], dict[str, Location]]:
    """``expect:`` — what the spec promises about itself, checked by ``convcalc lint`` (rule CC103):
    ``output_shape`` (list of positive integers), ``params``/``macs`` (exact counts), ``params_max``/``macs_max``
    (upper bounds), ``gmacs`` (billions of MACs as a paper or torchvision publishes them, to the decimals given:
    0.714), ``rf_min`` (smallest receptive field at the output: an integer or one per spatial axis), ``rf_at``
    (exact receptive field sizes of named layers, as published: ``{pool5: 212}``)."""
    mapping = _expect(value, dict, "'expect'", loc)
    _check_keys(mapping, EXPECT_KEYS, "'expect'")
    result: dict[str, Any] = {}
    locations: dict[str, Location] = {}
    for key, item in mapping.items():
        where = mapping.value_locs.get(key, mapping.where(key)) if isinstance(mapping, MarkedDict) else loc
        locations[key] = mapping.where(key) if isinstance(mapping, MarkedDict) else loc
        if key == "output_shape":
            if not isinstance(item, list) or not item or any(
                    isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in item):
                raise SpecError(f"expect output_shape must be a list of positive integers (channels first, no"
                                f" batch), got {brief(item)}", where)
            result[key] = tuple(item)
        elif key == "rf_min":
            values = item if isinstance(item, list) else [item]
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise SpecError(f"expect rf_min must be a positive integer or one per spatial axis, got {brief(item)}",
                                where)
            result[key] = tuple(values) if isinstance(item, list) else item
        elif key == "rf_at":
            if not isinstance(item, dict) or not item or any(
                    not isinstance(name, str) or isinstance(v, bool) or not isinstance(v, int) or v < 1
                    for name, v in item.items()):
                raise SpecError(f"expect rf_at must map layer names to receptive field sizes (positive integers),"
                                f" got {brief(item)}", where)
            result[key] = dict(item)
        else:
            result[key] = _count(item, f"expect {key}", where, exact=key in ("params", "macs"))
    return result, locations


def _parse_block(name: Any, body: Any, loc: Location | None) -> BlockDef:
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise SpecError(f"block name {brief(name)} must be a word (letters, digits, _ and -)", loc)
    if is_registered(name) or name.lower() == "sequential":
        raise SpecError(f"block '{name}' has the name of a layer type; choose another name", loc)
    _expect(body, dict, f"block '{name}'", loc)
    _check_keys(body, BLOCK_KEYS, f"block '{name}'")
    if "layers" not in body:
        raise SpecError(f"block '{name}' needs 'layers'", body.loc)
    layers = _expect(body["layers"], list, f"'layers' of block '{name}'", body.where("layers"))
    if not layers:
        raise SpecError(f"block '{name}' has no layers", body.where("layers"))
    args = body.get("args") or MarkedDict()
    _expect(args, dict, f"'args' of block '{name}'", body.where("args"))
    for arg in args:
        if not isinstance(arg, str) or not arg.isidentifier() or arg in ("index", "repeat"):
            raise SpecError(f"block argument {brief(arg)} must be an identifier other than 'index' and 'repeat'",
                            args.where(arg))
    required = frozenset(a for a, v in args.items() if v == REQUIRED_ARG)
    output = body.get("output")
    if output is not None:
        _expect(output, str, f"'output' of block '{name}'", body.where("output"))
    return BlockDef(name, dict(args), required, layers, output, loc, body)


class _Loader:
    """Loads a spec and the files it includes, confined to the spec's directory tree."""

    def __init__(self, root: Path | None, allow_outside: bool):
        self.root = root
        self.allow_outside = allow_outside
        self.blocks: dict[str, BlockDef] = {}
        self.args: dict[str, Any] = {}        # args of included files (the including spec's own win)
        self.loading: list[Path] = []
        self.included: set[Path] = set()
        self.read_bytes = 0                   # the spec and its includes together (limits.MAX_SPEC_BYTES)
        self.include_count = 0                # files included, directly or not (limits.MAX_INCLUDES)

    def read(self, path: Path, loc: Location | None, included: bool = False) -> MarkedDict:
        note = (f"what is left of the {size_text(limits.MAX_SPEC_BYTES)} a spec and its includes may hold"
                if included else "the limit for one file")
        text = read_text_file(path, what="included file" if included else "spec file", loc=loc,
                              limit=limits.MAX_SPEC_BYTES - self.read_bytes if included else None, limit_note=note)
        self.read_bytes += len(text)
        return self.parse_document(text, shown_path(path), included)

    @staticmethod
    def parse_document(text: str, filename: str, included: bool = False) -> MarkedDict:
        document = load_marked(text, filename)
        if not isinstance(document, dict):
            what = ("an included file must be a mapping with 'blocks'" if included
                    else "a spec must be a mapping with at least 'input' and 'layers'")
            raise SpecError(what, Location(filename, 1, 1))
        return document

    def add_blocks(self, document: MarkedDict) -> None:
        blocks = document.get("blocks")
        if blocks is None:
            return
        _expect(blocks, dict, "'blocks'", document.where("blocks"))
        for name, body in blocks.items():
            block = _parse_block(name, body, blocks.where(name))
            key = name.lower()
            if key in self.blocks:
                first = self.blocks[key].location
                raise SpecError(f"block '{name}' is defined twice (first at {first})", blocks.where(name))
            self.blocks[key] = block

    def include(self, document: MarkedDict, directory: Path) -> None:
        if "include" not in document:
            return
        entries = document["include"]
        entries_loc = document.where("include")
        if isinstance(entries, str):
            entries = MarkedList([entries])
            entries.item_locs = [document.value_locs.get("include")]
        if not isinstance(entries, list):
            raise SpecError(f"'include' must be a file name or a list of file names, got {brief(entries)}",
                            entries_loc)
        for index, entry in enumerate(entries):
            loc = entries.where(index) if isinstance(entries, MarkedList) else entries_loc
            _expect(entry, str, "an 'include' entry", loc)
            if not entry.strip() or "\0" in entry:
                raise SpecError(f"include {brief(entry)} must name a file"
                                + (" (it contains a NUL character)" if "\0" in entry else ""), loc)
            from_zoo = entry.startswith(ZOO_PREFIX)       # zoo:blocks/mobilenet_v3: the zoo's, from anywhere
            shown = zoo_include(entry, loc) if from_zoo else directory / entry
            path = resolved(shown, loc, "included file")
            if not (self.allow_outside or from_zoo) and self.root is not None and not _is_within(path, self.root):
                raise SpecError(f"include '{entry}' points outside the spec's directory {self.root}"
                                " (pass --allow-include-outside to permit it)", loc)
            if path in self.loading:
                chain = " -> ".join(p.name for p in [*self.loading, path])
                raise SpecError(f"include cycle: {chain}", loc)
            if path in self.included:
                continue   # included twice (or a diamond): its blocks are here already
            if len(self.loading) > limits.MAX_NESTING:
                raise SpecError(f"includes nest more than {limits.MAX_NESTING} deep here", loc)
            if self.include_count >= limits.MAX_INCLUDES:
                raise SpecError(f"the spec includes more than {limits.MAX_INCLUDES:,} files", loc)
            self.include_count += 1
            self.loading.append(path)
            included = self.read(_display_path(shown), loc, included=True)
            for key in included:
                if key not in INCLUDED_KEYS:
                    raise SpecError(f"'{key}' is not allowed in an included file, which brings blocks (and args);"
                                    f" valid: {', '.join(INCLUDED_KEYS)}", included.where(key))
            self.include(included, path.parent)
            self.add_blocks(included)
            args = included.get("args") or {}
            _expect(args, dict, "'args'", included.where("args"))
            for name, value in args.items():
                self.args.setdefault(name, value)
            self.loading.pop()
            self.included.add(path)


def _display_path(path: Path) -> Path:
    """The path relative to the working directory where it stays below it, else absolute."""
    absolute = resolved(path, None, "included file")
    try:
        return absolute.relative_to(Path.cwd())
    except (ValueError, OSError):
        return absolute


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _build_spec(document: MarkedDict, filename: str, loader: _Loader, directory: Path) -> Spec:
    _check_keys(document, TOP_LEVEL_KEYS, "the spec")
    for key in ("input", "layers"):
        if key not in document:
            raise SpecError(f"the spec needs '{key}'", document.loc or Location(filename, 1, 1))
    input_shape = parse_input_shape(document["input"], document.where("input"))
    layers = _expect(document["layers"], list, "'layers'", document.where("layers"))
    if not layers:
        raise SpecError("'layers' is empty", document.where("layers"))
    loader.include(document, directory)
    loader.add_blocks(document)
    name = document.get("name", Path(filename).stem)
    _expect(name, str, "'name'", document.where("name"))
    output = document.get("output")
    if output is not None:
        _expect(output, str, "'output'", document.where("output"))
    args = document.get("args") or MarkedDict()
    _expect(args, dict, "'args'", document.where("args"))
    description = document.get("description", "")
    expect, expect_locations = parse_expect(document["expect"], document.where("expect")) \
        if "expect" in document else ({}, {})
    return Spec(name=name, input_shape=input_shape, layers=layers, blocks=dict(loader.blocks), output=output,
                args={**loader.args, **args}, file=filename, description=str(description or ""), document=document,
                expect=expect, expect_locations=expect_locations)


def load_spec(path: str | os.PathLike, *, allow_include_outside: bool = False) -> Spec:
    """Read, parse and validate a spec file (and the files it includes); a name of the model zoo (``resnet50``,
    ``zoo:resnet50``) that is not a file in the working directory reads the zoo's spec (`convcalc.spec.zoo`).

    Only a regular file is read, and only up to ``limits.MAX_SPEC_BYTES`` (its includes count towards it): a
    FIFO, a device, a directory, a symbolic link loop or a path that cannot be used is one error naming it."""
    path = spec_location(path)                   # a bare name (resnet50) or zoo:NAME: the zoo's spec
    loader = _Loader(None, allow_include_outside)
    document = loader.read(path, None)
    absolute = resolved(path)
    loader.root = absolute.parent
    loader.loading.append(absolute)
    return _build_spec(document, shown_path(path), loader, absolute.parent)


def parse_spec(text: str, filename: str = "<spec>", *, base_dir: str | os.PathLike | None = None,
               allow_include_outside: bool = False) -> Spec:
    """Parse a spec from a string; includes resolve against ``base_dir`` (default: the working directory)."""
    directory = resolved(Path(base_dir or "."), None, "directory")
    loader = _Loader(directory, allow_include_outside)
    document = loader.parse_document(text, filename)
    return _build_spec(document, filename, loader, directory)


def read_spec(stream: Any, filename: str = "<stdin>", *, base_dir: str | os.PathLike | None = None,
              allow_include_outside: bool = False) -> Spec:
    """Parse a spec read from a binary stream (standard input: ``sys.stdin.buffer``), bounded and decoded by
    `read_spec_stream`; includes resolve against ``base_dir`` (default: the working directory)."""
    return parse_spec(read_spec_stream(stream, filename), filename, base_dir=base_dir,
                      allow_include_outside=allow_include_outside)


def spec_from_dict(data: Mapping[str, Any], filename: str = "<dict>") -> Spec:
    """Build a spec from plain Python data (no line numbers), e.g. in tests or notebooks."""
    import yaml

    problem = value_problem(data)
    if problem:
        raise SpecError(f"{filename}: {problem}")
    return parse_spec(yaml.safe_dump(_plain(data), sort_keys=False), filename)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
