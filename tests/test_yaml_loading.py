"""The one-pass YAML builder (`marked_yaml._load_plain`, what `load_marked` tries first) against PyYAML's own
composer and constructors with the spec schema (`_make_loader`): the same values, keys, marks and errors, or it
leaves the document to them."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import yaml

from convcalc.errors import SpecError
from convcalc.spec import marked_yaml
from convcalc.spec.marked_yaml import MarkedDict, MarkedList, load_marked

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(marked_yaml._CSafeLoader is None, reason="the one-pass builder reads libyaml's events")

FRAGMENTS = [
    "a: 1\n", "b: &x {k: 1, j: [1, 2]}\n", "c: *x\n", "<<: *x\n", "d: !!str 5\n", "e: '5'\n", 'f: "x\\ty"\n',
    "g: 0x1F\n", "h: 99999999999999999999999\n", "i: 1e5\n", "j: .inf\n", "k: -.NaN\n", "l: True\n", "m: on\n",
    "n: ~\n", "o:\n", "1: x\n", "1.5: y\n", "null: z\n", "true: w\n", "a: 2\n", "p: [*x, *x]\n", "q: &y 3\n",
    "r: *y\n", "*y : 4\n", "s: !!int '7'\n", "t: ! 5\n", "u: 0o17\n", "v: +12\n", "w: 1_000\n", "y: [a, {b: c}, [d]]\n",
    "z: |\n  text\n", "? [1]\n: 2\n", "aa: 2001-12-14\n", "bb: =\n", "cc: <<\n", "---\n", "dd: &z [*z]\n",
    "ee: !!binary aGVsbG8=\n", "ff: {<<: [*x], k: 2}\n", "gg: 12:30\n", "hh: '  '\n", "ii: !foo bar\n",
    "jj: [1, 2,\n", "kk: 0b101\n", "ll: -0x10\n", "mm: 1e400\n", "nn: &w {a: 1}\n", "oo: *w\n", "- 1\n",
    "pp: {? a, b: }\n", "qq: 9223372036854775807\n", "rr: [&v 1, *v]\n", "&u ss: 1\n", "tt: [*u]\n",
]


def _pyyaml(text: str, filename: str):
    marked_yaml.measure(text, filename)
    return yaml.load(text, Loader=marked_yaml._make_loader(filename, fast=True))  # noqa: S506 - a safe loader


def _same(a, b, path: str = "$") -> None:
    assert type(a) is type(b), path
    if isinstance(a, MarkedDict):
        assert list(a) == list(b), path
        assert (a.loc, a.key_locs, a.value_locs, a.merged) == (b.loc, b.key_locs, b.value_locs, b.merged), path
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, MarkedList):
        assert (len(a), a.loc, a.item_locs) == (len(b), b.loc, b.item_locs), path
        for index, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{index}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


def _check(text: str) -> bool:
    """Whether the builder took the document; when it did, it equals what PyYAML builds (or both refuse it)."""
    try:
        expected = ("ok", _pyyaml(text, "f.yaml"))
    except (SpecError, yaml.YAMLError, ValueError, RecursionError) as exc:
        expected = ("error", type(exc))
    try:
        built = marked_yaml._load_plain(text, "f.yaml")
    except marked_yaml._Unusual:
        return False
    except SpecError:               # a budget, refused where the measure refuses it
        assert expected[0] == "error", text
        return True
    except yaml.YAMLError:          # a syntax error: load_marked describes it as before
        assert expected[0] == "error", text
        return True
    assert expected[0] == "ok", text
    _same(built, expected[1])
    return True


def test_the_shipped_specs_build_alike():
    files = sorted(ROOT.glob("specs/**/*.yaml"))
    assert files
    for path in files:
        assert _check(path.read_text(encoding="utf-8")), path       # plain YAML: never left to PyYAML


def test_generated_documents_build_alike_or_are_left_to_pyyaml():
    rng = random.Random(16)
    taken = 0
    for _ in range(400):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 8)))
        taken += _check(text)
    assert 50 < taken < 400          # both kinds occur


def test_load_marked_reports_what_the_builder_leaves():
    with pytest.raises(SpecError, match="duplicate key 'a'.*line 1") as caught:
        load_marked("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert (caught.value.location.line, caught.value.location.column) == (3, 1)
    with pytest.raises(SpecError, match="too large") as caught:
        load_marked("x: [1, 99999999999999999999]\n", "f.yaml")
    assert (caught.value.location.line, caught.value.location.column) == (1, 8)
    merged = load_marked("base: &b {k: 1, j: 2}\nuse: {<<: *b, k: 3}\n", "f.yaml")
    assert dict(merged["use"]) == {"k": 3, "j": 2}
