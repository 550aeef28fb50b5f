"""ONNX's conformance node tests for the conv family through convcalc's importer and executor (issue 19).

`onnx_node_cases.capture` generates the cases with the onnx package's own generators (its wheel ships no node
data). Each case's node becomes a model whose non-data inputs are initializers; ``import_onnx`` turns it into a spec
and weights; ``convcalc.run`` executes it (float64 where ONNX's data is float64, else float32) with every prediction
checked (shapes, MACs, finiteness, receptive fields); the output must equal ONNX's expected output within ONNX's own
tolerance (rtol 1e-3, atol 1e-7: the backend runner's ``assert_similar_outputs``). Integer data (the uint8 MaxPool,
the int32 edge/reflect/wrap Pads) runs in float32 and is compared by value (ONNX's runner also checks the dtype).

Every case convcalc can express must pass; every case it cannot must raise convcalc's one-line "not expressible"
error and be listed, with its reason, in `onnx_node_cases.NOT_EXPRESSIBLE`, which must match the refusals exactly
(so it cannot grow silently), and README's coverage table must be that table.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

import convcalc  # noqa: E402
from convcalc.errors import ConvcalcError  # noqa: E402

import onnx_node_cases  # noqa: E402
from onnx_node_cases import (ATOL, FIRST_OUTPUT_NOT_EXPRESSIBLE, NOT_EXPRESSIBLE, OPS, RTOL, capture,  # noqa: E402
                             coverage_markdown, fingerprint)

ROOT = Path(__file__).resolve().parent.parent
HAS_IMPORTER = importlib.util.find_spec("convcalc.importers.onnx_import") is not None if \
    importlib.util.find_spec("convcalc.importers") is not None else False
needs_importer = pytest.mark.skipif(not HAS_IMPORTER, reason="convcalc.importers.onnx_import is not in the tree yet")

CASES = capture()
NAMES = [case.name for case in CASES]


def import_onnx(model):
    from convcalc.importers.onnx_import import import_onnx as importer
    return importer(model)


def refusal(error: BaseException) -> bool:
    """convcalc's "not expressible" error: the importer's OnnxImportError (a ConvcalcError: the node, its op and
    attribute, and what convcalc lacks), on one line."""
    from convcalc.importers import onnx_import
    kind = getattr(onnx_import, "OnnxImportError", None)
    if kind is None:
        from convcalc.importers.onnx_graph import OnnxImportError as kind
    return isinstance(error, kind) and "\n" not in str(error).strip()


def execute(case):
    """Import the case's model and run it: (ImportedModel, CheckedRun)."""
    imported = import_onnx(case.model())
    graph = imported.graph()
    data = case.data.astype(case.dtype) if case.data.dtype.kind != "f" else case.data
    checked = convcalc.run(graph, data, weights=imported.weights, dtype=case.dtype, rf_check=True)
    return imported, checked


_OUTCOMES: dict[str, object] = {}


def outcome(name: str):
    """`execute`'s result for the named case, or the exception it raised (each case runs once per session)."""
    if name not in _OUTCOMES:
        try:
            _OUTCOMES[name] = execute(onnx_node_cases.by_name()[name])
        except Exception as error:  # noqa: BLE001 (kept, re-raised by the test that reads it)
            _OUTCOMES[name] = error
    return _OUTCOMES[name]


def result(name: str):
    found = outcome(name)
    if isinstance(found, BaseException):
        raise found
    return found


# ============================================================================ the capture itself

def test_capture_is_onnxs_own_cases():
    """The capture found every op's generator and ONNX's names: one case per expect() call, unique names."""
    ops = {case.op_type for case in CASES}
    assert ops == set(OPS)
    assert len(NAMES) == len(set(NAMES)) == len(CASES)
    assert all(name.startswith("test_") and not name.endswith("_expanded") for name in NAMES)
    # a few the probe relied on, by name
    for name in ("test_basic_conv_with_padding", "test_convtranspose_output_shape", "test_maxpool_2d_dilations",
                 "test_averagepool_2d_pads_count_include_pad", "test_resize_upsample_scales_cubic",
                 "test_depthtospace_crd_mode_example", "test_lppool_2d_dilations"):
        assert name in NAMES


ONNX_COLLECT = r"""
import hashlib, json, sys, warnings
import numpy as np
sys.path.insert(0, sys.argv[1])
from onnx_node_cases import OPS, fingerprint   # (importing captures nothing)
from onnx.backend.test.case.node import collect_testcases
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    cases = collect_testcases()
found = {}
for tc in cases:
    nodes = tc.model.graph.node
    if len(nodes) == 1 and nodes[0].op_type in OPS and not tc.name.endswith("_expanded"):
        (inputs, outputs), = tc.data_sets
        found[tc.name] = fingerprint(nodes[0], list(inputs) + list(outputs))
print(json.dumps(found))
"""


def test_capture_matches_onnx_collect_testcases():
    """The same names, nodes and data as onnx's own ``collect_testcases()`` (run in a fresh interpreter: it
    imports all ~190 generator modules once per process): the capture is ONNX's cases, not an imitation."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", ONNX_COLLECT, str(Path(__file__).parent)], capture_output=True,
                          text=True, timeout=120, check=True)
    theirs = json.loads(done.stdout)
    ours = {case.name: fingerprint(case.node, case.inputs + case.outputs) for case in CASES}
    assert set(ours) == set(theirs)
    assert ours == theirs


def test_models_are_valid_with_initializers():
    """Each wrapped model passes onnx.checker, has one graph input (the data) and the rest as initializers."""
    for case in CASES:
        model = case.model()
        assert [i.name for i in model.graph.input] == [case.node.input[0]]
        assert len(model.graph.initializer) == len([n for n in case.node.input if n]) - 1


# ============================================================================ every expressible case passes

@needs_importer
@pytest.mark.parametrize("name", [name for name in NAMES if name not in NOT_EXPRESSIBLE])
def test_node_case(name):
    case = onnx_node_cases.by_name()[name]
    imported, checked = result(name)
    expected = case.outputs[0]
    got = checked.output
    assert got.shape == expected.shape, f"{name}: shape {got.shape} != ONNX's {expected.shape}"
    np.testing.assert_allclose(got, expected.astype(got.dtype), rtol=RTOL, atol=ATOL, err_msg=name)
    assert checked.ok, [layer for layer in checked.layers if not layer.ok]


@needs_importer
@pytest.mark.parametrize("name", sorted(NOT_EXPRESSIBLE))
def test_not_expressible_case_refused(name):
    """A case of the table raises convcalc's one-line "not expressible" error."""
    with pytest.raises(ConvcalcError) as caught:
        result(name)
    assert refusal(caught.value), f"{type(caught.value).__name__}: {caught.value}"


@needs_importer
def test_not_expressible_table_is_exact():
    """The cases that raise "not expressible" are exactly the table's: none may join or leave it silently."""
    refused = {name: str(error) for name in NAMES
               if isinstance(error := outcome(name), BaseException) and refusal(error)}
    assert set(refused) == set(NOT_EXPRESSIBLE), {
        "refused, not in the table": sorted(set(refused) - set(NOT_EXPRESSIBLE)),
        "in the table, not refused": sorted(set(NOT_EXPRESSIBLE) - set(refused))}


MULTI_OUTPUT = [case.name for case in CASES if len(case.outputs) > 1]


@needs_importer
@pytest.mark.parametrize("name", MULTI_OUTPUT)
def test_first_output_alone(name):
    """The cases refused for their extra outputs (argmax Indices, LayerNormalization's Mean and InvStdDev, training
    BatchNormalization's statistics), with the first output alone: each passes, or is refused for a reason of its
    own listed in FIRST_OUTPUT_NOT_EXPRESSIBLE."""
    case = onnx_node_cases.by_name()[name].first_output()
    if name in FIRST_OUTPUT_NOT_EXPRESSIBLE:
        with pytest.raises(ConvcalcError) as caught:
            execute(case)
        assert refusal(caught.value), f"{type(caught.value).__name__}: {caught.value}"
        return
    imported, checked = execute(case)
    np.testing.assert_allclose(checked.output, case.outputs[0].astype(checked.output.dtype), rtol=RTOL, atol=ATOL)
    assert checked.ok


def test_not_expressible_table_names_real_cases():
    assert set(NOT_EXPRESSIBLE) <= set(NAMES)
    assert set(FIRST_OUTPUT_NOT_EXPRESSIBLE) <= set(MULTI_OUTPUT) and set(MULTI_OUTPUT) <= set(NOT_EXPRESSIBLE)
    assert all(reason and "\n" not in reason and "|" not in reason for reason in NOT_EXPRESSIBLE.values())


# ============================================================================ README's coverage table

def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## ONNX: import and export\n.*?(?=^## |\Z)", text, re.M | re.S)
    assert match, "README has no '## ONNX: import and export' section"
    return match.group(0)


REGENERATE = "README is stale: `python tests/onnx_node_cases.py` regenerates its ONNX tables and ops line"


def test_readme_coverage_table_is_the_modules():
    """README's coverage tables are `coverage_markdown()` (``python tests/onnx_node_cases.py`` rewrites them)."""
    assert coverage_markdown().strip() in readme_section(), REGENERATE


@needs_importer
def test_readme_lists_the_importers_ops():
    """README's list of the ops translated is the importer's registry (`onnx_node_cases.supported_ops_markdown`)."""
    assert onnx_node_cases.supported_ops_markdown() in readme_section(), REGENERATE


def test_readme_section_stands_with_the_commands():
    """A newcomer meets install, the zoo, the calculator and a first spec before the commands; ONNX comes with the
    commands, after explain and report."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.*)$", text, re.M)
    assert headings[:4] == ["The two commands", "Shipped specs: the model zoo", "The calculator: one-off questions",
                            "The spec format"]
    explain = headings.index("Convolution as a matrix: `convcalc explain`")
    assert headings[explain + 1:explain + 3] == ["See the network: `convcalc report`", "ONNX: import and export"]


# ============================================================================ README's walk-through, as written

def _normalised(line: str) -> str:
    """A line without what changes from run to run (timings)."""
    line = re.sub(r"in [\d.]+ ms \([\d.]+ GFLOP/s\)", "in … ms", line)
    line = re.sub(r"\([\d.]+ s\)", "(… s)", line)
    return line.rstrip()


def walkthrough_blocks() -> list[tuple[str, str]]:
    """The walk-through's fenced blocks, in order: ('python', code) or ('shell', '$ command' lines and output)."""
    section = readme_section()
    walk = section[section.index("### Walk-through"):section.index("### Export")]
    return [("python" if lang == "python" else "shell", body)
            for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", walk, re.M | re.S)]


@needs_importer
@pytest.mark.skipif(os.environ.get("CONVCALC_ONNX_FULL") != "1",
                    reason="20 s of torch export and four convcalc runs: CONVCALC_ONNX_FULL=1 runs it")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")      # torch's note on its TorchScript exporter
def test_readme_walkthrough_is_real(tmp_path, monkeypatch):
    """The walk-through runs as written in a fresh directory: the PyTorch export and the Python comparison execute,
    and every command prints the lines README shows (timings aside; '…' marks lines left out)."""
    import subprocess
    import sys

    if importlib.util.find_spec("torchvision") is None:      # (importing it here would skip the walk-through's stub)
        pytest.skip("torchvision is not installed")
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "COLUMNS": "120"}
    namespace: dict = {}
    for kind, body in walkthrough_blocks():
        if kind == "python":
            exec(compile(body, "README.md ONNX walk-through", "exec"), namespace)    # noqa: S102
            continue
        commands: list[tuple[str, list[str]]] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif line and commands:
                commands[-1][1].append(line)
        for command, expected in commands:
            if command.startswith("head -"):
                count, path = command[len("head -"):].split()
                printed = (tmp_path / path).read_text(encoding="utf-8").splitlines()[:int(count)]
            else:
                assert command.startswith("convcalc "), command
                done = subprocess.run([sys.executable, "-m", "convcalc", *command.split()[1:]], capture_output=True,
                                      text=True, env=env, timeout=300)
                assert done.returncode == 0, done.stderr
                printed = (done.stdout + done.stderr).splitlines()
            printed = [_normalised(line) for line in printed]
            for line in expected:
                if line.strip() == "…":
                    continue
                assert _normalised(line) in printed, f"{command}: README's line {line!r} is not printed"
