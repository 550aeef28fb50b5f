"""`convcalc schema`: the generated JSON Schema is valid, accepts every shipped spec, and rejects what convcalc rejects
(unknown arguments, misspelled keys); the oracle for "unknown" is convcalc's own reading of a spec."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.errors import ConvcalcError, LayerArgError
from convcalc.spec.build import build_graph
from convcalc.spec.graph import RESERVED_KEYS
from convcalc.layers.args import REQUIRED
from convcalc.layers.registry import layer_types, lookup
from convcalc.spec.marked_yaml import load_marked
from convcalc.spec.schema import spec_schema
from convcalc.spec.load import parse_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").rglob("*") if p.suffix in (".yaml", ".yml"))
SCHEMA = spec_schema()
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)

TINY = {"input": [3, 32, 32], "layers": [
    {"type": "Conv2d", "name": "c1", "out_channels": 8, "kernel_size": 3, "padding": 1},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel_size": 2},
]}


def errors(document) -> list[jsonschema.ValidationError]:
    return list(VALIDATOR.iter_errors(document))


def convcalc_accepts(document) -> bool:
    try:
        build_graph(parse_spec(yaml.safe_dump(document, sort_keys=False)))
        return True
    except ConvcalcError:
        return False


def test_schema_is_a_valid_draft7_schema():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_cli_prints_the_schema():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == SCHEMA


@pytest.mark.parametrize("path", SPECS, ids=[str(p.relative_to(ROOT / "specs")) for p in SPECS])
def test_every_shipped_spec_validates(path):
    # read as convcalc reads it (YAML 1.2 scalars, as yaml-language-server does too)
    document = load_marked(path.read_text(encoding="utf-8"), str(path))
    assert [e.message for e in errors(document)] == []


def test_shipped_specs_were_found():
    assert len(SPECS) >= 18


def test_valid_tiny_spec_is_accepted_by_both():
    assert errors(TINY) == [] and convcalc_accepts(TINY)


def _with(layer_index: int, **changes):
    document = copy.deepcopy(TINY)
    document["layers"][layer_index].update(changes)
    return document


def test_unknown_argument_is_rejected():
    document = _with(0, kernal_size=3)
    found = errors(document)
    assert found and not convcalc_accepts(document)
    assert any(list(e.absolute_path) == ["layers", 0] and "'kernal_size' was unexpected" in e.message for e in found)


def test_misspelled_top_level_key_is_rejected():
    document = copy.deepcopy(TINY)
    document["layer"] = document.pop("layers")
    found = errors(document)
    assert found and not convcalc_accepts(document)
    assert any("'layer' was unexpected" in e.message for e in found)


def test_type_names_match_case_insensitively_and_aliases_too():
    assert errors(_with(0, type="conv2D")) == [] and convcalc_accepts(_with(0, type="conv2D"))
    assert errors(_with(0, type="CONV2D", strides=2))           # still Conv2d's arguments
    cat = {"input": [3, 8, 8], "layers": [{"type": "ReLU", "name": "a"},
                                          {"type": "cat", "from": ["input", "a"], "dim": 1}]}
    assert errors(cat) == [] and convcalc_accepts(cat)
    cat["layers"][1]["dims"] = 1
    assert errors(cat) and not convcalc_accepts(cat)


def test_value_types_and_references():
    assert errors(_with(0, kernel_size="3")) and not convcalc_accepts(_with(0, kernel_size="3"))
    assert errors(_with(0, kernel_size=[3, 3, 3]))                # Conv2d: one per spatial axis, two
    assert errors(_with(0, padding_mode="mirror"))
    assert errors(_with(0, bias="yes-please"))
    templated = {"input": [3, 8, 8], "args": {"k": 3},
                 "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": "$k", "stride": ["${k - 2}", 1]}]}
    assert errors(templated) == [] and convcalc_accepts(templated)
    up = {"input": [4, 8, 8], "args": {"h": 16},      # optional(per_axis): null, an int, or a list with references
          "layers": [{"type": "ConvTranspose2d", "out_channels": 2, "kernel_size": 2, "stride": 2,
                      "output_size": ["$h", 16]}]}
    assert errors(up) == [] and convcalc_accepts(up)
    up["layers"][0]["output_size"] = [16.5, 16]
    assert errors(up) and not convcalc_accepts(up)


def test_first_takes_only_the_type_arguments():
    document = _with(0, repeat=2, first={"stride": 2})
    assert errors(document) == []
    document = _with(0, repeat=2, first={"strides": 2})
    assert errors(document) and not convcalc_accepts(document)


def test_missing_required_argument_is_rejected():
    document = copy.deepcopy(TINY)
    del document["layers"][0]["out_channels"]
    assert errors(document) and not convcalc_accepts(document)


def test_blocks_sequential_and_included_files():
    spec = {"input": [3, 8, 8],
            "blocks": {"unit": {"args": {"ch": "required"}, "layers": [{"type": "Conv2d", "out_channels": "$ch",
                                                                       "kernel_size": 1}]}},
            "layers": [{"type": "unit", "ch": 4, "anything_the_block_takes": 1},
                       {"type": "Sequential", "layers": [{"type": "ReLU"}]}]}
    assert errors(spec) == []
    spec["layers"][1]["kernel_size"] = 3                          # a Sequential takes only 'layers'
    assert errors(spec)
    spec["blocks"]["unit"]["layer"] = []                         # misspelled block key
    assert errors(spec)
    included = {"blocks": {"unit": {"layers": [{"type": "ReLU"}]}}, "args": {"x": 1}}
    assert errors(included) == []
    assert errors({**included, "input": [3, 8, 8]})               # has input: then it is a spec and needs layers
    assert errors({**included, "output": "x"})                    # not allowed in an included file


def test_every_type_accepts_its_own_defaults():
    """Each unit's PyTorch defaults pass the value schema its parsers declare (schema and parsers agree)."""
    for cls in layer_types():
        defaults = {name: arg.default for name, arg in cls.arguments.items()
                    if arg.default is not REQUIRED and name not in RESERVED_KEYS}
        plain = json.loads(json.dumps(defaults))
        schema = {**SCHEMA, "$ref": f"#/definitions/arguments/{cls.type_name}"}
        assert list(jsonschema.Draft7Validator(schema).iter_errors(plain)) == [], cls.type_name


JUNK = ("kernal_size", "strides", "foo", "out_chanels", "paddings")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_schema_flags_exactly_the_arguments_convcalc_does_not_know(data):
    cls = data.draw(st.sampled_from(layer_types()))
    spelling = data.draw(st.sampled_from([cls.type_name, *cls.aliases]))
    spelling = "".join(c.upper() if data.draw(st.booleans()) else c.lower() for c in spelling)
    names = [n for n in cls.arguments if n not in RESERVED_KEYS]
    keys = data.draw(st.lists(st.sampled_from(names + list(JUNK)), unique=True, max_size=4))
    entry = {"type": spelling, **{k: 1 for k in keys}}
    try:
        lookup(spelling).from_args({k: 1 for k in keys})
        convcalc_unknown = False
    except LayerArgError as exc:
        convcalc_unknown = exc.message.startswith("unknown argument")
    found = errors({"input": [3, 8, 8], "layers": [entry]})
    schema_unknown = any(e.validator == "additionalProperties" for e in _all(found))
    assert schema_unknown == convcalc_unknown


def _all(found):
    for error in found:
        yield error
        yield from _all(error.context or [])


def test_padding_words_and_explicit_pairs_are_typed():
    """A misspelled padding word is flagged in the editor; explicit [before, after] pairs (with block-argument
    references inside) and every word the conv and pool parsers accept are not."""
    validator = jsonschema.Draft7Validator(spec_schema())

    def valid(layer: dict) -> bool:
        return not list(validator.iter_errors({"name": "t", "input": [3, 8, 8], "layers": [layer]}))

    conv = {"type": "Conv2d", "out_channels": 4, "kernel_size": 3}
    for padding in ["same", "valid", "full", "tf_same", 1, [1, 2], [[1, 2], [0, 1]], [["$a", 1], [0, "${b}"]], "$p"]:
        assert valid({**conv, "padding": padding}), padding
    for padding in ["sam", "SAME", [[1, 2, 3], [0, 1]], [1, 2, 3], 1.5]:
        assert not valid({**conv, "padding": padding}), padding
    assert valid({"type": "MaxPool2d", "kernel_size": 3, "padding": "tf_same"})
    assert not valid({"type": "MaxPool2d", "kernel_size": 3, "padding": "same"})


# Values an argument might be given in a spec. Left out, as JSON Schema cannot tell them apart from what convcalc
# accepts: floats with no fraction (2.0 is an "integer" to JSON Schema, a float convcalc refuses where it wants an
# int), and strings with '$' (block-argument references, resolved before any parser sees them).
SCALARS = st.one_of(
    st.integers(-3, 12), st.sampled_from([0.5, 2.5, -1.5, 1e-3]), st.booleans(), st.none(),
    st.sampled_from(["abc", "same", "valid", "full", "tf_same", "zeros", "reflect", "nearest", "bilinear", "ReLU",
                     "2", "0.5", "-1", "1e-3", " 3 ", "inf", "-inf", "Infinity", "nan", "1e", ""]))
VALUES = st.one_of(
    SCALARS,
    st.lists(st.integers(-2, 9), max_size=7),                               # per-axis and F.pad lists
    st.lists(st.one_of(st.integers(0, 9), st.none()), max_size=4),         # adaptive output sizes
    st.lists(st.sampled_from([0.5, 2, 1.5, "2", "x", True]), max_size=4),   # scale factors
    st.lists(st.lists(st.integers(-1, 3), max_size=3), max_size=4),         # [before, after] pairs
    st.recursive(SCALARS, lambda inner: st.one_of(
        st.lists(inner, max_size=7), st.fixed_dictionaries({"type": st.sampled_from(["ReLU", "Nope", 3])})),
        max_leaves=8))
NUMERIC_WORDS = {"2", "0.5", "-1", "1e-3", " 3 ", "inf", "-inf", "Infinity", "nan"}


def _leaves(value):
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        yield from _leaves(list(value.values()))
    else:
        yield value


def _argument_cases():
    for cls in layer_types():
        for name, argument in cls.arguments.items():
            if name not in RESERVED_KEYS:
                schema = {**SCHEMA, "$ref": f"#/definitions/arguments/{cls.type_name}/properties/{name}"}
                yield cls, name, argument, jsonschema.Draft7Validator(schema)


ARGUMENT_CASES = list(_argument_cases())


@settings(max_examples=150, deadline=None)
@given(value=VALUES, data=st.data())
def test_an_argument_schema_accepts_exactly_what_its_parser_accepts(value, data):
    """Per argument of every type: the value schema `convcalc schema` writes and the parser convcalc runs agree on
    a value, both ways. Two limits of JSON Schema make one way only: a numeric string ('1e-3', which YAML 1.1 loads
    as text) is a string to the schema, so its bounds cannot be checked there (the schema accepts every numeric
    string its parser converts, and may accept one out of bounds); and a part (``norm: ReLU``) names a type the
    schema does not look up."""
    numeric_text = any(isinstance(leaf, str) and leaf in NUMERIC_WORDS for leaf in _leaves(value))
    for cls, name, argument, validator in ARGUMENT_CASES:
        given_value = value
        options = argument.parse.json_schema(cls.dims or 1) if hasattr(argument.parse, "json_schema") else {}
        if "enum" in options and data.draw(st.booleans()):
            given_value = data.draw(st.sampled_from(options["enum"]))
        try:
            argument.parse(given_value, cls.dims or 1, name)
            parser_accepts = True
        except LayerArgError:
            parser_accepts = False
        schema_accepts = validator.is_valid(given_value)
        if numeric_text or getattr(argument.parse, "__name__", "") == "part_spec":
            assert schema_accepts or not parser_accepts, (cls.type_name, name, given_value)
        else:
            assert schema_accepts == parser_accepts, (cls.type_name, name, given_value, parser_accepts)


def test_every_argument_declares_its_value_schema():
    """An argument without one would be accepted with any value in an editor."""
    assert [f"{cls.type_name}.{name}" for cls, name, argument, _ in ARGUMENT_CASES
            if not hasattr(argument.parse, "json_schema")] == []
