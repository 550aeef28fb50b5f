"""The graph builder's fast paths (`convcalc.spec.build`) against the slow path they skip.

`expand_item` takes a plain ``type``/``name`` (no ``$``) as written, an absent ``repeat`` as None and skips
`copy_names` where it has nothing to name, without calling `_Builder.substitute`. The oracle is the same spec with
every such value written as an expression (``type: ${'Conv2d'}``, ``repeat: ${2}``), which can only go the slow
way: both must build the same graph, node for node (names, types, inputs, groups, parsed arguments, locations of
the arguments), and fail with the same message where one fails.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convcalc.errors import ConvcalcError
from convcalc.spec.build import build_graph
from convcalc.spec.idioms import copy_names
from convcalc.spec.load import parse_spec
from convcalc.spec.scope import Scope

_LAYERS = {               # type -> arguments written (kept shape-neutral so any chain builds)
    "ReLU": {},
    "Identity": {},
    "Conv2d": {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 1},
    "BatchNorm2d": {"num_features": 4},
    "MaxPool2d": {"kernel_size": 3, "stride": 1, "padding": 1},
}
_NAMES = st.sampled_from(["a", "b", "conv", "x1", "input", "a.0", "7", "bad name"])


@st.composite
def _entries(draw, depth: int = 0) -> list[dict]:
    entries = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.integers(0, 5)) == 0:
            entries.append({"type": "Sequential", "layers": draw(_entries(depth + 1)),
                            **({"name": draw(_NAMES)} if draw(st.booleans()) else {})})
            continue
        kind = draw(st.sampled_from(sorted(_LAYERS)))
        entry: dict = {"type": kind, **_LAYERS[kind]}
        if draw(st.booleans()):
            entry["name"] = draw(_NAMES)
        if draw(st.booleans()):
            entry["repeat"] = draw(st.integers(1, 3))
        if draw(st.integers(0, 5)) == 0:
            entry["inline"] = True
        entries.append(entry)
    return entries


def _as_expressions(entries: list[dict]) -> list[dict]:
    """The same entries with type, name and repeat written as expressions (the slow path's only way)."""
    slow = []
    for entry in entries:
        entry = dict(entry)
        entry["type"] = "${%s}" % json.dumps(entry["type"])
        if "name" in entry:
            entry["name"] = "${%s}" % json.dumps(entry["name"])
        if "repeat" in entry:
            entry["repeat"] = "${%d}" % entry["repeat"]
        if "layers" in entry:
            entry["layers"] = _as_expressions(entry["layers"])
        slow.append(entry)
    return slow


def _text(entries: list[dict]) -> str:
    return json.dumps({"input": [4, 8, 8], "layers": entries}, indent=1)    # JSON is YAML, one key a line


def _built(text: str):
    try:
        graph = build_graph(parse_spec(text, "spec.yaml"))
    except ConvcalcError as exc:
        return ("error", exc.message)
    return [(n.name, n.type_name, n.inputs, n.groups, sorted(n.layer.args.items()), n.trainable,
             sorted((k, (v.line, v.column)) for k, v in n.arg_locations.items())) for n in graph.nodes], \
        graph.output, sorted(graph.groups)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_entries())
def test_plain_values_build_as_their_expressions_do(entries):
    fast, slow = _built(_text(entries)), _built(_text(_as_expressions(entries)))
    assert fast == slow


def test_the_oracle_goes_the_slow_way():
    """The expression form is substituted (a wrong expression fails there), so the comparison can fail."""
    assert _built(_text([{"type": "${'ReLU'}"}]))[0][0][1] == "ReLU"
    assert _built(_text([{"type": "${'NoSuchLayer'}"}]))[0] == "error"
    assert _built(_text([{"type": "ReLU", "name": "${'a' + 'b'}"}]))[0][0][0] == "ab"


@settings(max_examples=200, deadline=None)
@given(names=st.none() | st.just("layer${index}"), local=st.none() | st.just("a"),
       repeat=st.none() | st.integers(1, 4), inline=st.booleans(), sequential=st.booleans())
def test_copy_names_has_nothing_to_name_where_the_builder_skips_it(names, local, repeat, inline, sequential):
    """`expand_item` skips `copy_names` unless 'names' is given or a Sequential's unnamed repeat is numbered: there
    `copy_names` itself answers None."""
    item = {"type": "ReLU", **({"names": names} if names is not None else {})}
    called = "names" in item or repeat is not None and local is None and sequential and not inline
    scope = Scope("", "input", {}, sequential, (), None, True)
    try:
        found = copy_names(item, local, repeat, inline, scope, lambda v, *_: v, lambda key: None)
    except ConvcalcError:
        assert called          # only where the builder calls it does it refuse anything
        return
    if not called:
        assert found is None


def test_lint_refolds_the_gated_fields_once_for_cc301_and_rf_min(tmp_path, monkeypatch):
    """CC301 and CC103's rf_min share one `gates.output_field` per spec (the memo on the lint Context), with the
    findings of the unshared path, where each rule folds the fields again."""
    from convcalc.analysis import gates
    from convcalc.lint import LintConfig, lint_paths
    from convcalc.lint import coverage

    import shutil
    shutil.copytree(Path(__file__).resolve().parent.parent / "specs", tmp_path / "specs")   # (with its includes)
    spec = tmp_path / "specs" / "efficientnet_b0.yaml"
    text = spec.read_text()
    assert "\nexpect: {output_shape:" in text
    spec.write_text(text.replace("\nexpect: {output_shape:", "\nexpect: {rf_min: 100000, output_shape:", 1))
    config = LintConfig(rf_min_coverage=1.0)
    calls = []
    original = gates.output_field
    monkeypatch.setattr(gates, "output_field", lambda summary: calls.append(1) or original(summary))
    shared = lint_paths([str(spec)], config).findings
    assert len(calls) == 1
    assert any(f.rule == "CC103" and "rf_min" in f.message for f in shared)

    def unshared(ctx):
        found = original(ctx.summary)
        return None if found is None else tuple(found)
    monkeypatch.setattr(coverage, "output_field", unshared)
    import convcalc.lint.checks as checks
    monkeypatch.setattr(checks, "output_field", unshared)
    assert lint_paths([str(spec)], config).findings == shared
