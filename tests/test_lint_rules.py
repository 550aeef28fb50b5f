"""`convcalc lint`'s rules: for each, a fixture that triggers it (rule, line:col and the numbers in the message)
and one that must not, plus randomized cross-checks against independent oracles: PyTorch autograd (which input
positions reach an output), PyTorch's transposed convolution of ones (how many taps land on each output
position), and NumPy convolutions of index sets (which offsets a dilated stack reaches)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc.lint import LintConfig, Severity, lint_paths

FIXTURES = Path(__file__).resolve().parent / "lint_fixtures"
ALL = LintConfig()


def findings(name: str, config: LintConfig = ALL, rule: str | None = None):
    report = lint_paths([FIXTURES / name], config)
    return [f for f in report.findings if rule is None or f.rule == rule]


def position(name: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first ``needle`` in a fixture: where a finding must point."""
    for number, line in enumerate((FIXTURES / name).read_text().splitlines(), start=1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in {name}")


def at(finding) -> tuple[int, int]:
    return finding.line, finding.column


# --------------------------------------------------------------------------- errors

def test_invalid_spec_is_cc101_at_the_argument():
    (found,) = findings("invalid.yaml")
    assert found.rule == "CC101" and found.severity is Severity.error
    assert at(found) == position("invalid.yaml", "paddin:")
    assert "unknown argument 'paddin' for Conv2d; did you mean 'padding'?" in found.message


def test_shape_error_is_cc102_at_the_kernel():
    (found,) = findings("shape_error.yaml")
    assert found.rule == "CC102" and found.severity is Severity.error
    assert at(found) == position("shape_error.yaml", "kernel_size")
    # PyTorch refuses a 7-wide kernel on a 4-wide unpadded input
    with pytest.raises(RuntimeError):
        F.conv2d(torch.zeros(1, 3, 4, 4), torch.zeros(8, 3, 7, 7))
    assert "kernel_size 7 spans 7, but the padded input is 4 wide" in found.message


def test_expectations_cc103():
    got = {f.message.split(":")[0]: f for f in findings("expect.yaml", rule="CC103")}
    # by hand: Conv2d 3->8, 3x3, padding 1 on 3x16x16: params 8*3*9 + 8 = 224; MACs 8*16*16 * 3*9 = 55,296;
    # output [8, 16, 16]; receptive field 3x3
    assert set(got) == {"expect output_shape", "expect params", "expect params_max", "expect macs",
                        "expect macs_max", "expect rf_min"}
    assert got["expect output_shape"].message.endswith("is [8, 16, 16], not [8, 14, 14]")
    assert got["expect params"].message.endswith("has 224 parameters, not 200 (+24)")
    assert got["expect params_max"].message.endswith("has 224 parameters, more than 100 (by 124)")
    assert got["expect macs"].message.endswith("has 55,296 MACs, not 1 (+55,295)")
    assert got["expect macs_max"].message.endswith("has 55,296 MACs, more than 1,000 (by 54,296)")
    assert got["expect rf_min"].message.endswith("is 3x3, smaller than 5x3")
    assert at(got["expect params_max"]) == position("expect.yaml", "params_max")
    assert all(f.severity is Severity.error for f in got.values())
    assert findings("expect_clean.yaml", rule="CC103") == []


def test_expect_is_validated_with_a_location(tmp_path):
    spec = tmp_path / "bad_expect.yaml"
    spec.write_text("input: [3, 8, 8]\nexpect: {params: 1.5, macs_max: -1}\nlayers: [{type: ReLU}]\n")
    (found,) = lint_paths([spec], ALL).findings
    assert (found.rule, found.line, found.column) == ("CC101", 2, 18)
    assert found.message == "expect params must be a whole number, got 1.5"
    spec.write_text("input: [3, 8, 8]\nexpect: {param: 1}\nlayers: [{type: ReLU}]\n")
    (found,) = lint_paths([spec], ALL).findings
    assert found.rule == "CC101" and "unknown key 'param' in 'expect'; did you mean 'params'?" in found.message


# --------------------------------------------------------------------------- CC201 dropped pixels

def reached_by_autograd(length: int, kernel: int, stride: int, dilation: int, padding: int, pool: bool = False,
                        ceil_mode: bool = False) -> np.ndarray:
    """Which input positions lie in some output unit's window span: the non-zero gradient of the output's sum, with
    the dilated kernel's span filled with ones (positions in the holes of a dilated window are gridding's business,
    CC205; the tail rule is about what lies past the last window)."""
    x = torch.ones(1, 1, length, dtype=torch.float64, requires_grad=True)
    if pool:
        y = F.avg_pool1d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    else:
        span = dilation * (kernel - 1) + 1
        y = F.conv1d(x, torch.ones(1, 1, span, dtype=torch.float64), stride=stride, padding=padding)
    y.sum().backward()
    return x.grad[0, 0].numpy() != 0


def trailing_unreached(reached: np.ndarray) -> int:
    return len(reached) - 1 - int(np.flatnonzero(reached).max())


def test_dropped_pixels_fixture():
    conv, pool = findings("dropped_pixels.yaml", rule="CC201")
    # conv 3x3/2 on 226x225: autograd says the last row is read by no window, every column is
    assert trailing_unreached(reached_by_autograd(226, 3, 2, 1, 0)) == 1
    assert trailing_unreached(reached_by_autograd(225, 3, 2, 1, 0)) == 0
    assert at(conv) == position("dropped_pixels.yaml", "{name: conv")
    assert conv.message == ("layer 'conv' (Conv2d): the last 1 row of its 226x225 input never reaches the output:"
                            " (i + pad_lo + pad_hi - k_eff) mod stride = (226 + 0 + 0 - 3) mod 2 = 1")
    assert trailing_unreached(reached_by_autograd(112, 3, 2, 1, 0, pool=True)) == 1
    assert "the last 1 row and the last 1 column of its 112x112 input" in pool.message
    assert conv.severity is Severity.warning


def test_dropped_pixels_clean():
    # what is left after the last window of the ResNet stem is padding; ceil_mode covers the tail; autograd agrees
    assert trailing_unreached(reached_by_autograd(224, 7, 2, 1, 3)) == 0
    assert trailing_unreached(reached_by_autograd(56, 3, 2, 1, 0, pool=True, ceil_mode=True)) == 0
    assert findings("dropped_pixels_clean.yaml", rule="CC201") == []


def conv1d_spec(path: Path, length: int, layers: list[str]) -> Path:
    path.write_text(f"input: [1, {length}]\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers))
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=st.integers(4, 40), kernel=st.integers(1, 5), stride=st.integers(1, 4), dilation=st.integers(1, 3),
       pad=st.integers(0, 2), pool=st.booleans())
def test_dropped_pixels_match_autograd(tmp_path, length, kernel, stride, dilation, pad, pool):
    if pool:
        dilation, pad = 1, min(pad, kernel // 2)
    span = dilation * (kernel - 1) + 1
    if length + 2 * pad < span:
        return
    layer = (f"{{type: AvgPool1d, kernel_size: {kernel}, stride: {stride}, padding: {pad}}}" if pool else
             f"{{type: Conv1d, out_channels: 1, kernel_size: {kernel}, stride: {stride}, dilation: {dilation},"
             f" padding: {pad}}}")
    spec = conv1d_spec(tmp_path / "one.yaml", length, [layer])
    got = [f for f in lint_paths([spec], ALL).findings if f.rule == "CC201"]
    expected = trailing_unreached(reached_by_autograd(length, kernel, stride, dilation, pad, pool))
    if span < stride:
        assert got == []                  # a window narrower than its stride subsamples by design: not reported
    elif expected == 0:
        assert got == []
    else:
        (found,) = got
        assert (found.line, found.column) == (3, 5)
        assert f"the last {expected} position{'s' if expected > 1 else ''} of its {length} input" in found.message
        assert f"({length} + {pad} + {pad} - {span}) mod {stride} = {(length + 2 * pad - span) % stride}" \
            in found.message


# --------------------------------------------------------------------------- CC202 checkerboard

def taps_by_torch(kernel: int, stride: int, dilation: int) -> set[int]:
    """Taps landing on the interior output positions: a transposed convolution of ones with a kernel of ones."""
    n = 4 * (kernel * dilation + stride)
    y = F.conv_transpose1d(torch.ones(1, 1, n, dtype=torch.float64), torch.ones(1, 1, kernel, dtype=torch.float64),
                           stride=stride, dilation=dilation)[0, 0]
    interior = y[(kernel - 1) * dilation:(n - 1) * stride + 1]
    return {int(v) for v in interior.round().tolist()}


def test_checkerboard_fixture():
    (found,) = findings("checkerboard.yaml", rule="CC202")
    assert taps_by_torch(3, 2, 1) == {1, 2}
    assert at(found) == position("checkerboard.yaml", "{name: up")
    assert found.message == ("layer 'up' (ConvTranspose2d): uneven overlap, checkerboard risk: height and width:"
                             " kernel 3 with stride 2 gives output positions 2 or 1 taps")
    assert findings("checkerboard_clean.yaml", rule="CC202") == []
    assert taps_by_torch(4, 2, 1) == {2}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kernel=st.integers(1, 6), stride=st.integers(1, 4), dilation=st.integers(1, 3))
def test_checkerboard_matches_torch(tmp_path, kernel, stride, dilation):
    layer = (f"{{type: ConvTranspose1d, out_channels: 1, kernel_size: {kernel}, stride: {stride},"
             f" dilation: {dilation}}}")
    got = [f for f in lint_paths([conv1d_spec(tmp_path / "t.yaml", 9, [layer])], ALL).findings if f.rule == "CC202"]
    counts = taps_by_torch(kernel, stride, dilation)
    if len(counts) == 1:
        assert got == []
    else:
        (found,) = got
        assert f"output positions {' or '.join(str(c) for c in sorted(counts, reverse=True))} taps" in found.message
        assert ("no input at all" in found.message) == (0 in counts)


# --------------------------------------------------------------------------- CC203-CC205 gridding

def holes_by_numpy(layers: list[tuple[int, int]]) -> list[int]:
    """Offsets between the first and last reached one that a unit never reaches: dilate an index set layer by
    layer (a kernel of ones at multiples of the dilation)."""
    reached = np.ones(1)
    for kernel, dilation in layers:
        mask = np.zeros(dilation * (kernel - 1) + 1)
        mask[::dilation] = 1
        reached = np.convolve(reached, mask)
    return [int(i) for i in np.flatnonzero(reached == 0)]


def test_gridding_common_factor_fixture():
    """One stack, one finding: CC203 (the most specific rule) naming the HDC and holes aspects."""
    by_rule = {f.rule: f for f in findings("gridding.yaml")}
    where = position("gridding.yaml", "{name: d8")
    assert "CC203" in by_rule and not {"CC204", "CC205"} & set(by_rule)
    assert at(by_rule["CC203"]) == where
    message = by_rule["CC203"].message
    assert "rates 2, 4, 8 of 'd2', 'd4', 'd8' share the factor 2" in message
    # Wang et al.: M_3 = 8, M_2 = max(8 - 2*4, 8 - 2*(8 - 4), 4) = 4 > K = 3
    assert "also CC204 (HDC): height and width: rates 2, 4, 8 give M_2 = 4 > kernel 3" in message
    holes = holes_by_numpy([(3, 2), (3, 4), (3, 8)])
    assert len(holes) == 14 and holes[:5] == [1, 3, 5, 7, 9]
    assert "CC205 (holes): height and width: a unit reaches 15 of the 29 positions" in message
    assert "14 holes, at offsets 1, 3, 5, 7, 9, ..." in message


def test_gridding_hdc_fixture():
    by_rule = {f.rule: f for f in findings("gridding_hdc.yaml")}
    assert "CC203" not in by_rule and "CC205" not in by_rule
    # Wang et al. 2018's counter-example r = [1, 2, 9], K = 3: M_2 = max(9 - 4, 9 - 14, 2) = 5
    assert "rates 1, 2, 9 of 'r1', 'r2', 'r9' give M_2 = 5 > kernel 3" in by_rule["CC204"].message
    assert holes_by_numpy([(3, 1), (3, 2), (3, 9)]) == [7, 8, 16, 17]
    assert "also CC205 (holes)" in by_rule["CC204"].message
    assert "4 holes, at offsets 7, 8, 16, 17" in by_rule["CC204"].message


def test_gridding_clean():
    # [1, 2, 5] is Wang et al.'s hybrid dilated convolution; the lone dilated conv after the pool is not a stack
    assert holes_by_numpy([(3, 1), (3, 2), (3, 5)]) == []
    assert [f for f in findings("gridding_clean.yaml") if f.rule in ("CC203", "CC204", "CC205")] == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=st.lists(st.tuples(st.integers(2, 3), st.integers(1, 6)), min_size=2, max_size=4))
def test_gridding_holes_match_numpy(tmp_path, layers):
    lines = [f"{{type: Conv1d, out_channels: 1, kernel_size: {k}, dilation: {d}, padding: {d * (k - 1) // 2}}}"
             for k, d in layers]
    lines.insert(1, "{type: ReLU}")
    spec = conv1d_spec(tmp_path / "stack.yaml", 200, lines)
    got = {f.rule: f for f in lint_paths([spec], ALL).findings}
    dilated = sum(1 for _, d in layers if d > 1)
    holes = holes_by_numpy(layers)
    common = math.gcd(*(d for _, d in layers))
    gridding = [f for f in got.values() if f.rule in ("CC203", "CC204", "CC205")]
    if dilated < 2:
        assert not gridding
        return
    assert len(gridding) <= 1                      # one finding per stack, under its most specific rule
    messages = " ".join(f.message for f in gridding)
    assert ("holes, at offsets" in messages) == bool(holes)
    if holes:
        assert f"{len(holes)} holes, at offsets {', '.join(map(str, holes[:5]))}" in messages
    assert ("CC203" in got) == (common > 1)
    if common > 1:
        # a common factor leaves holes whatever else happens
        assert holes


# --------------------------------------------------------------------------- CC206 misaligned merges

def region_by_autograd(kernel: int, stride: int, padding: int, unit: int, length: int = 32) -> tuple[int, int]:
    x = torch.ones(1, 1, length, dtype=torch.float64, requires_grad=True)
    y = F.conv1d(x, torch.ones(1, 1, kernel, dtype=torch.float64), stride=stride, padding=padding)
    y[0, 0, unit].backward()
    touched = np.flatnonzero(x.grad[0, 0].numpy())
    return int(touched.min()), int(touched.max())


def test_misaligned_fixture():
    (found,) = findings("misaligned.yaml", rule="CC206")
    # unit 5 of each path: 3x3/2 padded 1 reads [9, 11] (centre 10 = 5*2 + 0), 2x2/2 reads [10, 11] (10.5)
    assert region_by_autograd(3, 2, 1, 5) == (9, 11)
    assert region_by_autograd(2, 2, 0, 5) == (10, 11)
    assert at(found) == position("misaligned.yaml", "{name: add")
    assert ("height and width: 'a' stride 2 centre 0, 'b' stride 2 centre 1/2. To line them up: height and width:"
            " the strided windows shift their units by (k-1)/2 - padding steps of their input: 'a' (kernel 3, stride"
            " 2, padding 1) 0, 'b' (kernel 2, stride 2, padding 0) 1/2") in found.message
    assert region_by_autograd(1, 2, 0, 5) == (10, 10)          # the 1x1/2 shortcut: centre 10, as 'a'
    assert findings("misaligned_clean.yaml", rule="CC206") == []


# --------------------------------------------------------------------------- CC207 dead layers

def test_dead_layer_fixture():
    (found,) = findings("dead_layer.yaml", rule="CC207")
    assert at(found) == position("dead_layer.yaml", "{name: aux_head")
    # aux: 1x1 4->2 = 2*4 + 2 = 10 parameters; aux_head: 1x1 2->1 = 1*2 + 1 = 3
    assert found.message == ("layer 'aux_head' (Conv2d) does not reach the output 'fc', nor does the 1 layer"
                             " feeding only it (13 parameters unused)")
    assert findings("../../specs/tiny.yaml", rule="CC207") == []


# --------------------------------------------------------------------------- CC208 shadowed references

def test_shadowed_reference_fixture():
    (found,) = findings("shadowed.yaml", rule="CC208")      # one finding for the text, though b1 and b2 both use it
    line, _ = position("shadowed.yaml", "{name: skip")
    assert (found.line, found.column) == (line, position("shadowed.yaml", "[body, stem]")[1])
    assert found.message == ("'from' 'stem' means the block's own layer 'b1.stem' (and in 1 more use of the block),"
                             " not the top-level layer 'stem'")
    # what the finding claims is what the graph did: b1's Add reads b1.stem, not the top-level stem
    graph = convcalc.build_graph(convcalc.load_spec(FIXTURES / "shadowed.yaml"))
    assert graph.node("b1.skip").inputs == ("b1.body", "b1.stem")
    assert findings("shadowed_clean.yaml", rule="CC208") == []


# --------------------------------------------------------------------------- CC301 coverage

def test_rf_coverage_fixture():
    (found,) = findings("rf_coverage.yaml", rule="CC301")
    # two 3x3 convs: r = 1 + 2 + 2 = 5 (Araujo et al.); (5/32)^2 = 25/1024 = 2.44 % of the area
    assert found.message == ("the receptive field of 'c2' (the output) is 5x5, covering 2.4 % of the 32x32 input's"
                             " area")
    assert found.severity is Severity.info
    assert findings("rf_coverage.yaml", LintConfig(rf_min_coverage=25 / 1024), rule="CC301") == []
    assert len(findings("rf_coverage.yaml", LintConfig(rf_min_coverage=0.025), rule="CC301")) == 1


def test_rf_coverage_through_global_pooling():
    (found,) = findings("dead_layer.yaml", rule="CC301")
    # (3/8)^2 = 9/64 = 14.06 %
    assert found.message == ("the receptive field of 'conv' (gathered by 'pool') is 3x3, covering 14.1 % of the"
                             " 8x8 input's area")


# --------------------------------------------------------------------------- CC302 no-ops, CC303 asymmetric pads

def test_noop_fixture():
    got = {f.layer: f for f in findings("noop.yaml", rule="CC302")}
    assert set(got) == {"pool1x1", "pad0", "drop0", "same_size", "id1", "id2"}   # 'placeholder' stands alone
    assert at(got["drop0"]) == position("noop.yaml", "{name: drop0")
    assert got["drop0"].message == "layer 'drop0' (Dropout) does nothing: p = 0: it drops nothing, in training either"
    # PyTorch agrees that these return their input
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(F.max_pool2d(x, 1, 1), x) and torch.equal(F.pad(x, (0, 0, 0, 0)), x)
    assert torch.equal(F.dropout(x, 0.0, training=True), x)
    assert torch.equal(F.interpolate(x, scale_factor=1.0, mode="nearest"), x)
    assert findings("noop_clean.yaml", rule="CC302") == []


def test_asymmetric_padding_fixture():
    (found,) = findings("asymmetric.yaml", rule="CC303")
    # PyTorch's 'same' for k = 4 pads 1 before and 2 after: the same output as explicit pads (1, 2)
    x, w = torch.randn(1, 1, 7), torch.randn(1, 1, 4)
    assert torch.allclose(F.conv1d(x, w, padding="same"), F.conv1d(F.pad(x, (1, 2)), w))
    assert at(found) == position("asymmetric.yaml", "{name: even")
    assert "padding 'same' is asymmetric (height and width: kernel 4 pads 1 before and 2 after)" in found.message


def test_every_rule_has_a_fixture_that_triggers_it():
    report = lint_paths([FIXTURES], ALL)
    assert {f.rule for f in report.findings} >= {r.id for r in report.rules}
    assert re.fullmatch(r"CC[123]\d\d", report.rules[0].id)


@pytest.mark.parametrize("layer", [
    "{type: DepthwiseSeparableConv2d, out_channels: 4, kernel_size: 3, stride: 2, norm: BatchNorm2d}",
    "{type: SpatiallySeparableConv2d, out_channels: 4, kernel_size: 3, stride: 2}",
    "{type: GatedConv2d, out_channels: 4, kernel_size: 3, stride: 2}",
    "{type: LocallyConnected2d, out_channels: 2, kernel_size: 3, stride: 2}",
    "{type: LPPool2d, norm_type: 2, kernel_size: 3, stride: 2}",
])
def test_composite_and_unshared_layers_answer_their_window(tmp_path, layer):
    """Composites answer `window_geometry` from their parts, unshared convs and LPPool from the unit they wrap:
    a 3-wide stride-2 window on 20 rows x 19 columns leaves the last row (autograd: 20 rows, not 19 columns)."""
    assert trailing_unreached(reached_by_autograd(20, 3, 2, 1, 0)) == 1
    assert trailing_unreached(reached_by_autograd(19, 3, 2, 1, 0)) == 0
    spec = tmp_path / "one.yaml"
    spec.write_text(f"input: [2, 20, 19]\nlayers:\n  - {layer}\n")
    (found,) = [f for f in lint_paths([spec], ALL).findings if f.rule == "CC201"]
    assert "the last 1 row of its 20x19 input never reaches the output" in found.message


LAYER_TEXTS = st.one_of(
    st.builds(lambda k, s, d, p: f"{{type: Conv1d, out_channels: 2, kernel_size: {k}, stride: {s}, dilation: {d},"
                                 f" padding: {p}}}", st.integers(1, 5), st.integers(1, 3), st.integers(1, 3),
              st.sampled_from(["0", "1", "2", "same", "[[0, 1]]"])),
    st.builds(lambda k, s, c: f"{{type: MaxPool1d, kernel_size: {k}, stride: {s}, ceil_mode: {c}}}",
              st.integers(1, 4), st.integers(1, 3), st.sampled_from(["true", "false"])),
    st.builds(lambda k, s: f"{{type: ConvTranspose1d, out_channels: 2, kernel_size: {k}, stride: {s}}}",
              st.integers(1, 5), st.integers(1, 3)),
    st.sampled_from(["{type: ReLU}", "{type: Identity}", "{type: Dropout, p: 0.0}",
                     "{type: Upsample, scale_factor: 2}", "{type: Add, from: [input, input]}"]),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=st.integers(3, 30), layers=st.lists(LAYER_TEXTS, min_size=1, max_size=6))
def test_any_chain_lints_without_crashing(tmp_path, length, layers):
    """Random 1-D chains: lint never crashes; a spec analyze rejects gives exactly one CC101/CC102 error, at a line
    of the file; every other finding is located on a layer line and sorted."""
    from convcalc import analyze, load_spec
    from convcalc.errors import ConvcalcError

    spec = tmp_path / "chain.yaml"
    spec.write_text("input: [2, %d]\nlayers:\n" % length + "".join(f"  - {text}\n" for text in layers))
    report = lint_paths([spec], ALL)
    try:
        analyze(load_spec(spec))
        rejected = False
    except ConvcalcError:
        rejected = True
    errors = [f for f in report.findings if f.rule in ("CC101", "CC102")]
    assert len(errors) == int(rejected)
    if rejected:
        assert report.findings == tuple(errors) and 1 <= errors[0].line <= len(layers) + 2
    for finding in report.findings:
        assert 1 <= finding.line <= len(layers) + 2 and finding.column >= 1
    keys = [(f.path, f.line, f.column, f.rule, f.message) for f in report.findings]
    assert keys == sorted(keys)
