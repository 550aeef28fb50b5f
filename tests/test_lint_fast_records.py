"""The cheap constructors lint's hot path uses, against the slow path they replace.

`Node.of` and `LayerResult.of` fill a frozen dataclass's ``__dict__`` without its ``__init__``; the oracle is the
dataclass's own constructor with the same values (equal, field for field, also the fields left out of ``==``), and
the dataclass's field list (a field added to the class and not to ``of`` fails here). `Layer.from_args` parses each
default argument once per class; the oracle is the argument's parser run on the default, for every registered type,
and a layer type whose ``arguments`` are replaced must not be served the old default.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.analysis.summary import LayerResult, analyze
from convcalc.errors import LayerArgError
from convcalc.layers.args import REQUIRED, Arg, integer
from convcalc.layers.base import Layer
from convcalc.layers.registry import layer_types
from convcalc.spec.graph import Node
from convcalc.spec.load import parse_spec

_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4),
                    st.tuples(st.integers(0, 9), st.integers(0, 9)),
                    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2))


def _parameters(function) -> list[str]:
    return [name for name in inspect.signature(function).parameters]


@pytest.mark.parametrize("cls", [Node, LayerResult])
def test_of_names_every_field_in_order(cls):
    assert _parameters(cls.of) == [f.name for f in dataclasses.fields(cls)]


@settings(max_examples=60, deadline=None)
@given(st.data())
@pytest.mark.parametrize("cls", [Node, LayerResult])
def test_of_equals_the_constructor(cls, data):
    values = [data.draw(_VALUES) for _ in dataclasses.fields(cls)]
    fast, slow = cls.of(*values), cls(*values)
    assert type(fast) is cls and fast == slow
    assert fast.__dict__ == slow.__dict__          # compare=False fields too (channel_fields)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(fast, dataclasses.fields(cls)[0].name, "changed")


def test_analyze_rows_equal_rows_made_by_the_constructor():
    spec = parse_spec("input: [6, 12, 12]\nlayers:\n"
                      "  - {name: a, type: Conv2d, out_channels: 4, kernel_size: 1}\n"
                      "  - {name: b, type: Conv2d, out_channels: 2, kernel_size: 5, padding: 2, from: input}\n"
                      "  - {name: cat, type: Concat, from: [a, b]}\n"
                      "  - {name: bn, type: BatchNorm2d, num_features: 6}\n"
                      "  - {name: tied, type: BatchNorm2d, tie: bn}\n"
                      "  - {name: part, type: Narrow, dim: 1, start: 0, length: 4}\n", "<test>")
    summary = analyze(spec)
    assert any(row.channel_fields is not None for row in summary.layers)
    for row in summary.layers:
        again = LayerResult(**{f.name: getattr(row, f.name) for f in dataclasses.fields(LayerResult)})
        assert row == again and row.__dict__ == again.__dict__


def test_parsed_defaults_are_the_parsers_answer():
    checked = 0
    for cls in layer_types():
        dims = cls.dims or 1
        for _ in range(2):                          # the second time from the class's parsed defaults
            try:
                layer = cls.from_args({})
            except LayerArgError:
                break                               # a required argument, or defaults that do not validate
            expected = {name: arg.parse(arg.default, dims, name) for name, arg in cls.arguments.items()}
            assert layer.args == expected, cls.type_name
            assert {k: type(v) for k, v in layer.args.items()} == {k: type(v) for k, v in expected.items()}
            checked += 1
    assert checked > 20


def test_mutable_defaults_are_not_shared():
    class Listy(Layer):
        type_name = "ListyTest"
        arguments = {"sizes": Arg(lambda value, dims, name: list(value), default=(1, 2))}

    first, second = Listy.from_args({}), Listy.from_args({})
    assert first.sizes == second.sizes == [1, 2] and first.sizes is not second.sizes


def test_replaced_arguments_are_parsed_again():
    class Counted(Layer):
        type_name = "CountedTest"
        arguments = {"size": Arg(integer(), default=3)}

    assert Counted.from_args({}).size == 3
    Counted.arguments = {"size": Arg(integer(), default=5)}       # a new Arg: the cached 3 must not answer
    assert Counted.from_args({}).size == 5
    Counted.arguments = {"size": Arg(integer(), default=REQUIRED)}
    with pytest.raises(LayerArgError):
        Counted.from_args({})
