"""Issue 16, the spec stage: hostile or unusual spec text, files and values are refused early and in one line.

Every budget of `convcalc.spec.limits` is checked before the work it bounds (expanded layers, nesting of blocks and
Sequentials, YAML depth and alias expansion, expression text, depth, steps and result sizes, file sizes); files are
read only when they are regular files; messages speak the spec's language. A case that used to hang runs under a
timer (`within`) or in a subprocess with a timeout and a memory limit, so the test fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import convcalc
from convcalc.cli import app
from convcalc.errors import ConvcalcError, GraphError, SpecError, brief
from convcalc.spec import limits
from convcalc.spec.expr import ExprError, evaluate, substitute
from convcalc.spec.files import read_spec_stream
from convcalc.spec.marked_yaml import load_marked

ROOT = Path(__file__).resolve().parent.parent
RELU = "input: [3, 8]\nlayers: [{type: ReLU}]\n"


class Hang(BaseException):
    """Raised by `within` when the code under test runs past its time (a BaseException: nothing catches it)."""


@contextlib.contextmanager
def within(seconds: float):
    """Fail (instead of hanging) when the block runs longer than ``seconds``."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(*_):
        raise Hang(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def error_of(text: str, kind: type = ConvcalcError, filename: str = "net.yaml", seconds: float = 20) -> str:
    """The one-line message of building ``text`` (dedented), which must fail with ``kind``."""
    with within(seconds), pytest.raises(kind) as info:
        convcalc.build_graph(convcalc.parse_spec(textwrap.dedent(text).lstrip("\n"), filename))
    message = str(info.value)
    assert "\n" not in message
    return message


def invoke(*args: str, input: bytes | str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def bounded_run(*args: str, cwd: Path | None = None, memory: int = 2 ** 30) -> subprocess.CompletedProcess:
    """``python -m convcalc ARGS`` with a timeout and an address-space limit: a hang or a blown memory fails."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "convcalc", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd or ROOT, preexec_fn=limit, env=environment)


def python_internals(message: str) -> bool:
    return any(word in message for word in ("Error", "unhashable", "recursion", "NoneType", "<class", "object at",
                                            "MarkedDict", "MarkedList", "datetime", "Traceback"))


# =========================================================================== counts: expansion

def test_nested_repeats_of_bypassed_entries_are_refused_before_expanding():
    """Five lines of nested repeats whose only layer is bypassed made no node, so the 100,000-layer limit never
    fired: 10^12 entries expanded one by one. Every entry counts now, and a repeat is checked before it expands."""
    started = time.perf_counter()
    message = error_of("""
        input: [3, 8]
        blocks:
          A: {layers: [{type: ReLU, when: false}]}
          B: {layers: [{type: A, repeat: 10000}]}
          C: {layers: [{type: B, repeat: 10000}]}
        layers:
          - {type: C, repeat: 10000}
        """, GraphError)
    assert message == ("net.yaml:7:15: the spec expands to more than 100,000 layers (nested repeats multiply):"
                       " 10,000 repetitions of at least 100,002 layers here; no real network comes near")
    assert time.perf_counter() - started < 5


def test_a_repeat_is_checked_against_what_is_left_of_the_budget(monkeypatch):
    monkeypatch.setattr(limits, "MAX_LAYERS", 50)
    message = error_of("""
        input: [3, 8]
        blocks:
          Pair: {layers: [{type: ReLU}, {type: ReLU, repeat: 3}]}
        layers:
          - {type: ReLU, repeat: 40}
          - {type: Pair, repeat: 3}
        """, GraphError)
    assert message == ("net.yaml:6:18: the spec expands to more than 50 layers (nested repeats multiply): 3"
                       " repetitions of at least 4 layers here; no real network comes near")


def test_bypassed_entries_count_towards_the_layer_budget(monkeypatch):
    monkeypatch.setattr(limits, "MAX_LAYERS", 10)
    message = error_of("""
        input: [3, 8]
        args: {n: 11}
        blocks:
          Off: {layers: [{type: ReLU, when: false}]}
        layers:
          - {type: Off, repeat: $n}
        """, GraphError)
    assert message == ("net.yaml:6:17: the spec expands to more than 10 layers (nested repeats multiply): 11"
                       " repetitions of at least 1 layer here; no real network comes near")


@pytest.mark.parametrize("depth, message", [
    (99, None),
    (101, "net.yaml:203:403: blocks and Sequentials nest more than 100 deep here"),
])
def test_nested_sequentials_have_a_depth_limit(depth, message):
    lines = ["input: [3, 8]", "layers:"]
    indent = "  "
    for _ in range(depth):
        lines += [indent + "- type: Sequential", indent + "  layers:"]
        indent += "    "
    lines.append(indent + "- {type: ReLU}")
    text = "\n".join(lines) + "\n"
    if message is None:
        assert len(convcalc.build_graph(convcalc.parse_spec(text, "net.yaml")).nodes) == 1
    else:
        assert error_of(text, GraphError) == message


def test_a_chain_of_blocks_has_the_same_depth_limit():
    lines = ["input: [3, 8]", "blocks:"]
    lines += [f"  B{i}: {{layers: [{{type: B{i + 1}}}]}}" for i in range(150)]
    lines += ["  B150: {layers: [{type: ReLU}]}", "layers: [{type: B0}]"]
    message = error_of("\n".join(lines) + "\n", GraphError)
    assert message == ("net.yaml:102:17: blocks and Sequentials nest more than 100 deep here (in block 'B99' used"
                       " at net.yaml:101:18) (in block 'B98' used at net.yaml:100:18) (in block 'B97' used at"
                       " net.yaml:99:18)")


def test_300_nested_sequentials_name_the_yaml_depth_limit_and_where():
    lines = ["input: [3, 8]", "layers:"]
    indent = "  "
    for _ in range(300):
        lines += [indent + "- type: Sequential", indent + "  layers:"]
        indent += "    "
    lines.append(indent + "- {type: ReLU}")
    assert error_of("\n".join(lines) + "\n", SpecError) == \
        "net.yaml:251:501: the YAML nests mappings and lists more than 250 deep here"


def test_a_large_value_without_references_is_not_copied_per_repeat():
    """A 50,000-number list in a block repeated 1,000 times was walked and copied for every copy (5·10^7 values)."""
    numbers = ", ".join(["1"] * 50_000)
    text = f"""
        input: [3, 8]
        blocks:
          B:
            layers:
              - {{type: Identity}}
              - {{type: Conv1d, out_channels: 3, kernel_size: 1, init: {{bias: [{numbers}]}}}}
        layers:
          - {{type: B, repeat: 1000}}
        """
    with within(8):
        graph = convcalc.build_graph(convcalc.parse_spec(textwrap.dedent(text).lstrip("\n"), "net.yaml"))
    assert len(graph.nodes) == 2000 and len(graph.nodes[1].preset["bias"]) == 50_000


def test_substituting_references_is_budgeted(monkeypatch):
    monkeypatch.setattr(limits, "MAX_SUBSTITUTED", 1000)
    numbers = ", ".join(["'$x'"] * 100)
    message = error_of(f"""
        input: [3, 8]
        blocks:
          B:
            args: {{x: 1}}
            layers:
              - {{type: Conv1d, out_channels: 3, kernel_size: 1, init: {{bias: [{numbers}]}}}}
        layers:
          - {{type: B, repeat: 20}}
        """, GraphError)
    assert message == ("net.yaml:6:63: substituting $references walks more than 1,000 values (a large value that"
                       " holds references, copied by blocks and repeats) (in block 'B' used at net.yaml:8:5)")


# =========================================================================== counts: YAML

def laughs(levels: int) -> str:
    lines = ["input: [3, 8]", "args:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines + ["layers: [{type: ReLU}]"]) + "\n"


def test_billion_laughs_in_args_are_refused_at_the_alias_that_explodes():
    assert error_of(laughs(9), SpecError, seconds=10) == (
        "net.yaml:8:47: the alias *a4 stands for 111,111 values, which takes the document past 1,000,000 values"
        " with aliases expanded")


def test_aliases_within_the_budget_still_work():
    spec = convcalc.parse_spec(laughs(3), "net.yaml")
    assert len(spec.args["a2"]) == 10 and convcalc.build_graph(spec).nodes[0].type_name == "ReLU"


def test_a_document_with_too_many_values_is_refused(monkeypatch):
    monkeypatch.setattr(limits, "MAX_YAML_NODES", 100)
    text = "input: [3, 8]\nlayers:\n" + "".join(f"  - {{type: ReLU, name: r{i}}}\n" for i in range(30))
    assert error_of(text, SpecError) == "net.yaml:21:18: the document holds more than 100 values"


def test_deep_flow_nesting_is_refused_without_recursion(tmp_path):
    """100,000 nested brackets: a RecursionError, or a crash of libyaml's composer (run apart for that reason)."""
    (tmp_path / "net.yaml").write_text("input: [3, 8]\nlayers: [{type: ReLU, x: " + "[" * 100_000 + "]" * 100_000 + "}]\n")
    done = bounded_run("analyze", "net.yaml", cwd=tmp_path)
    assert (done.returncode, done.stderr) == \
        (2, "error: net.yaml:2:273: the YAML nests mappings and lists more than 250 deep here\n")


@pytest.mark.parametrize("value, message", [
    ("!!binary aGVsbG8=", "net.yaml:2:32: the YAML tag !!binary is not supported in a spec (only strings, numbers,"
                          " true/false, null, lists and mappings are)"),
    ("!!set {a}", "net.yaml:2:32: the YAML tag !!set is not supported in a spec (only strings, numbers, true/false,"
                  " null, lists and mappings are)"),
    ("!!int abc", "net.yaml:2:32: 'abc' is not an integer"),
    ("!!float abc", "net.yaml:2:32: 'abc' is not a number"),
    ("!!bool maybe", "net.yaml:2:32: 'maybe' is not true or false"),
    ("!!map [1]", "net.yaml:2:32: the tag !!map needs a mapping, not a sequence"),
    ("2001-13-45", "net.yaml:2:23: layer 'relu_1' (ReLU): inplace must be true or false, got the string"
                   " '2001-13-45'"),
    ("&a [*a]", "net.yaml:2:32: invalid YAML: an alias stands inside the value it names"),
])
def test_yaml_values_outside_the_core_schema_are_refused_where_they_stand(value, message):
    assert error_of(f"input: [3, 8]\nlayers: [{{type: ReLU, inplace: {value}}}]\n") == message


def test_dates_and_equals_signs_are_plain_text():
    document = load_marked("a: 2001-12-14\nb: =\n", "f.yaml")
    assert document == {"a": "2001-12-14", "b": "="}


def test_a_syntax_error_far_into_a_large_file_is_described_by_libyaml(monkeypatch):
    """The pure-Python parser describes a syntax error again only when the text before it is short: a 10 MiB spec
    with an error at its end is not parsed a second time, ten times slower."""
    pytest.importorskip("yaml", minversion="5.1")
    import yaml
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("needs libyaml")
    from convcalc.spec import marked_yaml
    monkeypatch.setattr(marked_yaml, "REPARSE_CHARS", 1000)
    text = "input: [3, 8]\nlayers:\n" + "  - {type: ReLU}\n" * 200 + "  - {type: ReLU\n"
    never_closed = ("invalid YAML: the '{' opened here is never closed: the file ends where a ',' or '}' should be"
                    " (a list is written [3, 3], a mapping {type: ReLU})")     # the same words from either parser
    assert error_of(text) == f"net.yaml:203:5: {never_closed}"
    short = "input: [3, 8]\nlayers:\n  - {type: ReLU\n"
    assert error_of(short) == f"net.yaml:3:5: {never_closed}"


# =========================================================================== expressions

@pytest.mark.parametrize("source, expected", [
    ("0 or 5", 5),
    ("3 and 0", 0),
    ("'' or 'x'", "x"),
    ("x != 0 and 10 // x > 1", False),
    ("x == 0 or 10 // x", True),
    ("[] or [1]", [1]),
    ("not x and 7", 7),
    ("'%d-%d' % (2, 3)", "2-3"),
    ("'%s' % [1, 2]", "[1, 2]"),
    ("2 ** 62", 2 ** 62),
    ("9 / 3", 3),
])
def test_and_or_follow_python(source, expected):
    result = evaluate(source, {"x": 0})
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("source, message", [
    ("'%02500000000d' % 1", "the % format asks for 2500000000 characters (at most 10,000)"),
    ("'%0200000d' % 1", "the % format asks for 200000 characters (at most 10,000)"),
    ("'%.9999f' % 1e300", "the result would hold 10,038 items (at most 10,000)"),
    ("'%*d' % (9, 1)", "a '*' width or precision is not supported in a % format"),
    ("[[[1]*10000]*10000]*10000", "the result would hold 100,000,000 items (at most 10,000)"),
    ("[[1]*100]*100", [[1] * 100] * 100),
    ("[[[1]*100]*100]*100", "the result would hold 1,000,000 items (at most 10,000)"),
    ("'x' * 10**9", "the result would hold 1,000,000,000 items (at most 10,000)"),
    ("'a' * 6000 + 'b' * 6000", "the result would hold 12,000 items (at most 10,000)"),
    ("[s, s]", "the result would hold 12,000 items (at most 10,000)"),
    ("10**10**10", "the result of 10 ** 10000000000 is too large (the limit is 9,223,372,036,854,775,807)"),
    ("2 ** 63", "the result 9223372036854775808... is too large (the limit is 9,223,372,036,854,775,807)"),
    ("99999999999999999999", "the integer 99999999999999999999... is too large (the limit is"
                             " 9,223,372,036,854,775,807)"),
    ("10.0 ** 400", "the result is too large"),
    ("(-8) ** 0.5", "-8 ** 0.5 has no real value"),
    ("0 ** -1", "zero cannot be raised to a negative power"),
    ("1 // 0", "division by zero"),
    ("-" * 100_000 + "1", "the expression is 100,001 characters long (at most 1,000)"),
    ("None + 1", "'+' cannot combine null with a number"),
    ("'a' - 1", "'-' cannot combine a string with a number"),
    ("[1] < 'a'", "'<' cannot compare a list with a string"),
    ("-'a'", "'-' needs a number, got a string"),
    ("'a' * 1.5", "'*' repeats a string a whole number of times, got a number (1.5)"),
    ("'%d' % 'a'", "the % format '%d' does not fit a string"),
])
def test_expression_budgets_and_messages(source, message):
    if not isinstance(message, str):     # within the budget: the value itself
        assert evaluate(source, {}) == message
        return
    with within(10), pytest.raises(ExprError) as info:
        evaluate(source, {"x": 0, "s": "a" * 6000})
    assert str(info.value) == message
    assert not python_internals(str(info.value))


def test_deep_expressions_are_refused_before_they_are_evaluated():
    with pytest.raises(ExprError) as info:
        evaluate("-" * 999 + "1", {})
    assert str(info.value) == f"'{'-' * 77}...' nests too deeply (at most 100 levels)"
    with pytest.raises(ExprError) as info:
        evaluate("not " * 150 + "1", {})
    assert str(info.value).endswith("nests too deeply (at most 100 levels)")


def test_evaluation_steps_are_budgeted(monkeypatch):
    monkeypatch.setattr(limits, "MAX_EXPRESSION_STEPS", 10)
    with pytest.raises(ExprError) as info:
        evaluate(" + ".join(["1"] * 8), {})
    assert str(info.value) == "the expression takes more than 10 steps"


def test_interpolated_text_is_bounded():
    assert substitute("conv${i}", {"i": 3}) == "conv3"
    with pytest.raises(ExprError) as info:
        substitute("${'a' * 9000}" * 3, {})
    assert str(info.value) == "the text would grow past 10,039 characters"
    with pytest.raises(ExprError) as info:
        substitute("a$x", {"x": list(range(20_000))})
    assert str(info.value) == "the value put into the text would hold more than 10,000 items (at most 10,000)"


def test_an_expression_error_in_a_spec_is_located():
    assert error_of("""
        input: [3, 8]
        args: {x: 0}
        layers:
          - {type: Conv1d, out_channels: '${x or 4}', kernel_size: 1}
          - {type: ReLU, when: '${x != 0 and 10 // x > 1}'}
          - {type: Conv1d, out_channels: '${None + 1}', kernel_size: 1}
        """) == "net.yaml:6:34: in 'out_channels': '+' cannot combine null with a number"


# =========================================================================== files and paths

def test_a_symlink_loop_as_the_spec(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    result = invoke("analyze", str(tmp_path / "a.yaml"))
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot read spec file {tmp_path / 'a.yaml'}: symbolic links loop\n"


def test_a_symlink_loop_as_an_include(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    (tmp_path / "net.yaml").write_text("input: [3, 8]\ninclude: a.yaml\nlayers: [{type: ReLU}]\n")
    result = invoke("analyze", str(tmp_path / "net.yaml"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path / 'net.yaml'}:2:10: cannot read included file {tmp_path / 'a.yaml'}:"
                             " symbolic links loop\n")


def test_a_nul_byte_in_an_include(tmp_path):
    (tmp_path / "net.yaml").write_text('input: [3, 8]\ninclude: "a\\0b.yaml"\nlayers: [{type: ReLU}]\n')
    result = invoke("analyze", str(tmp_path / "net.yaml"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path / 'net.yaml'}:2:10: include 'a\\x00b.yaml' must name a file (it"
                             " contains a NUL character)\n")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_an_include_naming_a_fifo_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "blocks.yaml")
    (tmp_path / "net.yaml").write_text("input: [3, 8]\ninclude: blocks.yaml\nlayers: [{type: ReLU}]\n")
    with within(20):
        result = invoke("analyze", str(tmp_path / "net.yaml"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path / 'net.yaml'}:2:10: {tmp_path / 'blocks.yaml'} is a FIFO, not an"
                             " included file (only regular files are read)\n")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_the_spec_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "net.yaml")
    with within(20):
        result = invoke("analyze", str(tmp_path / "net.yaml"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path / 'net.yaml'} is a FIFO, not a spec file (only regular files are read;"
                             " - reads standard input)\n")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_as_the_spec_is_refused_unread():
    done = bounded_run("analyze", "/dev/zero")
    assert done.returncode == 2
    assert done.stderr == "error: /dev/zero is a device, not a spec file (only regular files are read)\n"


def test_a_directory_as_the_spec(tmp_path):
    result = invoke("analyze", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path} is a directory, not a spec file\n"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_spec(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(RELU)
    path.chmod(0)
    result = invoke("analyze", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot read spec file {path}: permission denied\n"


def test_a_5000_character_path_is_shortened_in_the_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = "a" * 4995 + ".yaml"
    result = invoke("analyze", name)
    assert result.exit_code == 2
    shown = f"{'a' * 510}...{'a' * 505}.yaml (5,000 characters)"
    assert result.stderr == f"error: cannot read spec file {shown}: the path is too long\n"


def test_a_spec_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_SPEC_BYTES", 1000)
    path = tmp_path / "net.yaml"
    path.write_text(RELU + "# " + "x" * 2000 + "\n")
    result = invoke("analyze", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"error: spec file {path} is 2,040 bytes, larger than 1,000 bytes (the limit for one file)\n"


def test_includes_share_the_size_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_SPEC_BYTES", 1000)
    (tmp_path / "blocks.yaml").write_text("blocks:\n  B: {layers: [{type: ReLU}]}\n# " + "x" * 900 + "\n")
    (tmp_path / "net.yaml").write_text("input: [3, 8]\ninclude: blocks.yaml\nlayers: [{type: B}]\n# " + "y" * 100 + "\n")
    with pytest.raises(ConvcalcError) as info:
        convcalc.load_spec(tmp_path / "net.yaml")
    assert str(info.value) == (f"{tmp_path / 'net.yaml'}:2:10: included file {tmp_path / 'blocks.yaml'} is 941 bytes,"
                               f" larger than 842 bytes (what is left of the 1,000 bytes a spec and its includes may"
                               f" hold)")


def test_includes_are_counted_and_their_chains_bounded(tmp_path, monkeypatch):
    for index in range(4):
        following = f"include: b{index + 1}.yaml\n" if index < 3 else ""
        (tmp_path / f"b{index}.yaml").write_text(f"{following}blocks:\n  B{index}: {{layers: [{{type: ReLU}}]}}\n")
    (tmp_path / "net.yaml").write_text("input: [3, 8]\ninclude: b0.yaml\nlayers: [{type: B3}]\n")
    assert len(convcalc.build_graph(convcalc.load_spec(tmp_path / "net.yaml")).nodes) == 1
    monkeypatch.setattr(limits, "MAX_NESTING", 2)
    with pytest.raises(SpecError) as info:
        convcalc.load_spec(tmp_path / "net.yaml")
    assert str(info.value) == f"{tmp_path / 'b1.yaml'}:1:10: includes nest more than 2 deep here"
    monkeypatch.setattr(limits, "MAX_NESTING", 100)
    monkeypatch.setattr(limits, "MAX_INCLUDES", 2)
    with pytest.raises(SpecError) as info:
        convcalc.load_spec(tmp_path / "net.yaml")
    assert str(info.value) == f"{tmp_path / 'b1.yaml'}:1:10: the spec includes more than 2 files"


def test_a_spec_that_is_not_utf8(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_bytes(b"input: [3, 8]\nlayers: [{type: ReLU}]\nname: '\xff'\n")
    result = invoke("analyze", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}:3:8: the file is not UTF-8 text\n"


def test_standard_input_that_is_not_utf8():
    result = invoke("analyze", "-", input=b"input: [3, 8]\nlayers: [{type: ReLU}]\nname: '\xff'\n")
    assert result.exit_code == 2
    assert result.stderr == "error: <stdin>:3:8: the file is not UTF-8 text\n"


def test_standard_input_is_read_with_a_size_limit(monkeypatch):
    monkeypatch.setattr(limits, "MAX_SPEC_BYTES", 100)
    result = invoke("analyze", "-", input=RELU + "#" * 200 + "\n")
    assert result.exit_code == 2
    assert result.stderr == "error: <stdin> holds more than 100 bytes (the limit for one spec)\n"
    assert invoke("analyze", "-", input=RELU).exit_code == 0


def test_read_spec_stream_reads_at_most_one_byte_past_the_limit():
    class Endless(io.RawIOBase):
        requested = 0

        def readable(self):
            return True

        def read(self, size=-1):
            assert size >= 0, "an unbounded read of an endless stream"
            Endless.requested += size
            return b"#" * size

    with pytest.raises(ConvcalcError) as info:
        read_spec_stream(Endless(), limit=4096)
    assert str(info.value) == "<stdin> holds more than 4,096 bytes (the limit for one spec)"
    assert Endless.requested == 4097


@pytest.mark.parametrize("name, content", [
    ("pyproject.toml", b"[tool.convcalc.lint]\nselect = ['\xff']\n"),
    (".convcalc.yaml", b"lint:\n  select: ['\xff']\n"),
])
def test_a_config_file_that_is_not_utf8_beside_the_spec(tmp_path, name, content):
    (tmp_path / "net.yaml").write_text(RELU)
    (tmp_path / name).write_bytes(content)
    result = invoke("lint", str(tmp_path / "net.yaml"))
    assert result.exit_code == 2
    line, column = (2, 12) if name.endswith(".toml") else (2, 13)
    assert result.stderr == f"error: {tmp_path / name}:{line}:{column}: the file is not UTF-8 text\n"


def test_billion_laughs_in_the_lint_config(tmp_path):
    (tmp_path / "net.yaml").write_text(RELU)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    (tmp_path / ".convcalc.yaml").write_text("\n".join(lines + ["lint: *a8"]) + "\n")
    with within(20):
        result = invoke("lint", str(tmp_path / "net.yaml"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path / '.convcalc.yaml'}:6:45: the alias *a4 stands for 111,111 values, which"
                             " takes the document past 1,000,000 values with aliases expanded\n")


def test_a_config_file_over_its_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 100)
    (tmp_path / "net.yaml").write_text(RELU)
    (tmp_path / "pyproject.toml").write_text("[tool.convcalc.lint]\n" + "#" * 200 + "\n")
    result = invoke("lint", str(tmp_path / "net.yaml"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: config file {tmp_path / 'pyproject.toml'} is 222 bytes, larger than 100 bytes"
                             " (the limit for one file)\n")


def test_lint_of_a_deeply_nested_file_is_one_finding_and_quick(tmp_path):
    """lint's check that a YAML file is a spec at all, and its reading of suppressions, parse within the YAML
    budgets too: 100,000 brackets crashed libyaml's composer (a segmentation fault) and took minutes to scan."""
    (tmp_path / "deep.yaml").write_text("[" * 100_000 + "\n")
    started = time.perf_counter()
    done = bounded_run("lint", "deep.yaml", "--no-config", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "1:251   error   CC101  the YAML nests mappings and lists more than 250 deep here" in done.stdout
    assert time.perf_counter() - started < 60


# =========================================================================== values from outside the spec

@pytest.mark.parametrize("value, message", [
    ("2001-13-01", "error: --set x: the value '2001-13-01' is not valid YAML\n"),
    ("2001-01-01", "error: --set x: '2001-01-01' is not a value a spec can hold (null, true/false, a number, a"
                   " string, a list or a mapping; quote it to pass text)\n"),
    ("99999999999999999999999", "error: --set x: the integer 99999999999999999999999 is too large (the limit is"
                                " 9,223,372,036,854,775,807)\n"),
    ("[" * 1000, "error: --set x:1:251: the YAML nests mappings and lists more than 250 deep here\n"),
])
def test_set_values_are_what_a_spec_could_hold(tmp_path, value, message):
    (tmp_path / "net.yaml").write_text("input: [3, 8]\nargs: {x: 1}\nlayers: [{type: ReLU}]\n")
    with within(20):
        result = invoke("analyze", str(tmp_path / "net.yaml"), "--set", f"x={value}")
    assert result.exit_code == 2
    assert result.stderr == message


def test_spec_from_dict_refuses_a_value_that_refers_to_itself():
    loop: list = []
    loop.append(loop)
    with pytest.raises(SpecError) as info:
        convcalc.spec_from_dict({"input": [3, 8], "layers": [{"type": "ReLU"}], "args": {"x": loop}})
    assert str(info.value) == "<dict>: the value nests more than 250 deep"


# =========================================================================== messages in the spec's words

def test_a_location_on_line_100_is_not_an_emoji(tmp_path):
    """Rich read ':100:' in 'net.yaml:100:5' as the emoji code for 💯."""
    path = tmp_path / "net.yaml"
    path.write_text("input: [3, 8]\nlayers:\n" + "  - {type: ReLU}\n" * 97 + "  - {type: Nope}\n")
    result = invoke("analyze", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:100:6: unknown layer type 'Nope'; ")


def test_values_in_messages_are_shown_briefly_in_yaml_words():
    nested: list = [1]
    for _ in range(30):
        nested = [nested] * 10        # 10^30 values if written out
    assert brief(nested).endswith("...") and len(brief(nested)) <= 83
    assert brief([None, True, float("inf"), "a", {"k": 1.5}]) == "[null, true, .inf, 'a', {'k': 1.5}]"
    assert brief(10 ** 5000) == "an integer of about 5,000 digits"


def test_a_huge_value_in_from_gives_a_short_message():
    names = ", ".join(["[a, b]"] * 5000)
    message = error_of(f"input: [3, 8]\nlayers: [{{type: ReLU, from: [[{names}]]}}]\n")
    assert message.startswith("net.yaml:2:29: 'from' must name an earlier layer, got [['a', 'b'], ['a', 'b'],")
    assert len(message) < 200


@pytest.mark.parametrize("entry", [
    "{type: ReLU, from: {a: 1}}", "{type: {a: 1}}", "{type: ReLU, name: [1]}", "{type: ReLU, repeat: [1]}",
    "{type: ReLU, when: {}}", "{type: ReLU, 1: 2}", "{type: ReLU, null: 2}", "{type: ReLU, inplace: null}",
    "[1, 2]", "{type: Conv1d, out_channels: '${[1] < 1}', kernel_size: 1}", "{type: ReLU, name: '${x.y}'}",
    "{type: ReLU, from: 1e400}", "{type: ReLU, first: [1]}", "{type: ReLU, inline: [1]}",
])
def test_wrong_kinds_of_values_never_show_python_internals(entry):
    message = error_of(f"input: [3, 8]\nlayers:\n  - {{type: ReLU}}\n  - {entry}\n")
    assert message.startswith("net.yaml:") and not python_internals(message), message
