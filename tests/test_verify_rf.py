"""`convcalc.proof.verify.verify_fields`: the analysed receptive fields proved by exact dependency propagation.

* Every shipped spec passes (at a smaller input where the spec allows it, to stay fast; resnet18 at its own
  224x224, and through `convcalc run`).
* The measured numbers match a published figure: VGG-16's pool5 field r = 212, S = 32, P = 90 (Araujo, Norris &
  Sim, Distill 2019, Table of receptive fields), measured on a 448x448 input where its units are interior.
* A deliberately broken receptive_field rule (monkeypatched into one unit) fails: ✗, a detail naming the unit,
  exit code 1 through `convcalc run`, in the table and in the JSON.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

import convcalc  # noqa: E402
from convcalc.cli import app  # noqa: E402
from convcalc.errors import ConvcalcError  # noqa: E402
from convcalc.spec.build import build_graph  # noqa: E402
from convcalc.layers.conv import ConvNd  # noqa: E402
from convcalc.layers.resample import Upsample  # noqa: E402
from convcalc.report.rf_checks import rf_checks_json, rf_checks_table  # noqa: E402
from convcalc.spec.load import load_spec  # noqa: E402
from convcalc.proof.verify import verify_fields  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "specs").rglob("*.yaml") if p.parent.name != "blocks")
SMALL = {"specs/unet.yaml": (1, 188, 188),      # any 16k + 124 tile (the spec's own comment)
         "specs/xception.yaml": (3, 75, 75)}     # at 74 (and 72, 76) the last input row reaches no unit


def small_summary(path: str) -> convcalc.Summary:
    """The spec analysed at a quarter (else half) of its input size where it allows that, else at its own."""
    graph = build_graph(load_spec(ROOT / path))
    shape = graph.input_shape
    candidates = [SMALL[path]] if path in SMALL else [(shape[0], *[max(n // d, 1) for n in shape[1:]])
                                                         for d in (4, 2)]
    for candidate in candidates:
        try:
            return convcalc.analyze(graph, candidate)
        except ConvcalcError:
            continue
    return convcalc.analyze(graph)


@pytest.mark.parametrize("path", SPECS)
def test_every_shipped_spec_is_proved(path):
    summary = small_summary(path)
    checks = verify_fields(summary)
    assert checks, path
    bad = [(c.layer, c.detail) for c in checks if not c.ok]
    assert not bad, f"{path} at {summary.input_shape}: {bad[:3]}"
    assert {c.layer for c in checks} == {row.name for row in summary.layers}


def test_resnet18_at_its_own_size():
    summary = convcalc.analyze(load_spec(ROOT / "specs/resnet18.yaml"))
    checks = verify_fields(summary)
    assert len(checks) == len(summary.layers) and all(c.ok for c in checks)
    conv1 = checks[0]
    # conv1: 7x7, stride 2, padding 3 (torchvision), interior units measure all four numbers
    assert [a.measured for a in conv1.axes] == [(7, 7, 2, 3)] * 2
    assert checks[-1].whole and checks[-1].detail == "every unit sees the whole input"


def vgg_trunk() -> list[dict]:
    layers = []
    for convs in (2, 2, 3, 3, 3):
        layers += [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1}] * convs
        layers.append({"type": "MaxPool2d", "kernel_size": 2, "stride": 2})
    return layers


def test_vgg16_pool5_measures_the_published_field():
    """Araujo et al.: VGG-16 pool5 has r = 212, S = 32, P = 90. On 448x448 its middle units lie inside the input,
    so all four numbers are measured, not just compared."""
    spec = convcalc.spec_from_dict({"name": "vgg", "input": [3, 448, 448], "layers": vgg_trunk()})
    (check,) = verify_fields(convcalc.analyze(spec), layers=["maxpool2d_5"])
    assert check.ok, check.detail
    assert [a.measured for a in check.axes] == [(212, 212, 32, 90)] * 2
    # the hulls are those of the formula: unit u sees [32u - 90, 32u + 121], clipped to the input
    for unit, hull in zip(check.units, check.hulls):
        assert hull == tuple((max(32 * u - 90, 0), min(32 * u + 121, 447)) for u in unit)


def test_fields_wider_than_the_input_compare_hulls_only():
    spec = convcalc.spec_from_dict({"name": "vgg", "input": [3, 64, 64], "layers": vgg_trunk()})
    (check,) = verify_fields(convcalc.analyze(spec), layers=["maxpool2d_5"])
    assert check.ok and [a.measured for a in check.axes] == [(None, None, None, None)] * 2
    assert [a.predicted for a in check.axes] == [(212, 212, 32, 90)] * 2
    assert all(h == ((0, 63), (0, 63)) for h in check.hulls)


def test_uneven_field_numbers_are_measured():
    """A k=2 s=2 up-conv and a 3-tap conv: period 2, stride 1/2 (test_receptive_exact's hand-derived regions)."""
    spec = convcalc.spec_from_dict({"name": "up", "input": [1, 12], "layers": [
        {"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 2, "stride": 2},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "name": "c"}]})
    (check,) = verify_fields(convcalc.analyze(spec), layers=["c"])
    assert check.ok, check.detail
    size, size_min, stride, padding = check.axes[0].measured
    assert (size, size_min, stride) == (2, 2, Fraction(1, 2))


def test_unknown_layer_is_refused():
    summary = convcalc.analyze(load_spec(ROOT / "specs/tiny.yaml"))
    with pytest.raises(ConvcalcError, match="no layer 'c3'"):
        verify_fields(summary, layers=["c3"])


# --------------------------------------------------------------------------- a broken rule is caught

def shifted_conv_rule(self, fields, in_shapes, out_shape):
    """ConvNd's rule with the left padding off by one (a plausible bug)."""
    pads = self.pads(in_shapes[0][1:])
    return fields[0].through_window(self.kernel_size, self.stride, [lo + 1 for lo, _ in pads], out_shape[1:],
                                    self.dilation, self.padding_mode)


def test_a_broken_conv_rule_fails(monkeypatch):
    monkeypatch.setattr(ConvNd, "receptive_field", shifted_conv_rule)
    summary = convcalc.analyze(load_spec(ROOT / "specs/tiny.yaml"))
    checks = {c.layer: c for c in verify_fields(summary)}
    first = checks["conv2d_1"]
    assert not first.ok and "the analysis says" in first.detail
    assert not checks["relu_1"].ok and not checks["pool1"].ok
    assert not rf_checks_json(list(checks.values()))["ok"]
    assert rf_checks_json(list(checks.values()))["failed"][0] == "conv2d_1"


def test_a_broken_upsampling_rule_fails(monkeypatch):
    """Nearest upsampling's reads shifted by one input pixel: an uneven field, wrong."""
    original = Upsample.receptive_field

    def shifted(self, fields, in_shapes, out_shape):
        field = original(self, fields, in_shapes, out_shape)
        from convcalc.algebra import Reads
        return field.through([Reads.window(1, 1, 1)] * len(field.axes), out_shape[1:])

    monkeypatch.setattr(Upsample, "receptive_field", shifted)
    spec = convcalc.spec_from_dict({"name": "up", "input": [1, 9, 9], "layers": [
        {"type": "Upsample", "scale_factor": 1.5, "name": "up"}]})
    (check,) = verify_fields(convcalc.analyze(spec))
    assert not check.ok


runner = CliRunner()


def test_run_fails_with_exit_1_on_a_broken_rule(monkeypatch):
    monkeypatch.setattr(ConvNd, "receptive_field", shifted_conv_rule)
    result = runner.invoke(app, ["run", str(ROOT / "specs/tiny.yaml")])
    assert result.exit_code == 1, result.output
    assert "receptive fields 2/7 ✗" in result.output           # flatten and linear (whole) still agree
    assert "receptive fields that disagree" in result.output and "PREDICTIONS FAILED" in result.output
    data = json.loads(runner.invoke(app, ["run", str(ROOT / "specs/tiny.yaml"), "--format", "json"]).output)
    assert data["ok"] is False and data["rf_checks"]["ok"] is False
    assert {layer["name"]: layer["rf_ok"] for layer in data["layers"]}["conv2d_1"] is False


def test_run_proves_the_fields_of_resnet18():
    result = runner.invoke(app, ["run", str(ROOT / "specs/resnet18.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] and data["rf_checks"]["ok"] and data["rf_checks"]["checked"] == len(data["layers"])
    assert all(layer["rf_ok"] is True for layer in data["layers"])
    conv1 = data["rf_checks"]["layers"][0]
    assert conv1["axes"][0]["measured"] == {"size": 7, "size_min": 7, "stride": 2, "padding": 3}


def test_run_table_has_the_rf_column_and_none_skips_it():
    result = runner.invoke(app, ["run", str(ROOT / "specs/tiny.yaml")])
    assert result.exit_code == 0 and "RF" in result.output and "receptive fields 7/7 ✓" in result.output
    skipped = runner.invoke(app, ["run", str(ROOT / "specs/tiny.yaml"), "--rf-check", "none", "--format", "json"])
    assert skipped.exit_code == 0
    data = json.loads(skipped.output)
    assert "rf_checks" not in data and all(layer["rf_ok"] is None for layer in data["layers"])


def test_rendering():
    checks = verify_fields(convcalc.analyze(load_spec(ROOT / "specs/tiny.yaml")))
    table = rf_checks_table(checks, title="t")
    assert table.row_count == len(checks)
    data = rf_checks_json(checks)
    assert data["ok"] and data["checked"] == len(checks) and data["failed"] == []
    first = data["layers"][0]
    assert first["axes"][0]["predicted"] == {"size": 3, "size_min": 3, "stride": 1, "padding": 1}
    assert first["measured_hulls"] == first["predicted_hulls"]
    json.dumps(data)


def test_whole_fields_that_miss_input_rows():
    """TF-slim alexnet_v2 at 224 (all VALID but the SAME 5x5 and 3x3 convs): conv1 11x11/4 has 54 units; pool1
    3x3/2 has 26, its last reading conv1 50..52 (conv1's unit 53 is read by no one); so nothing depends on input
    rows past 52*4 + 10 = 218, although the analysis labels the flattened head 'whole input'. The other windows
    reach no further: conv2 (SAME 5x5) and pool2, conv3-5 (SAME 3x3) and pool5 are clipped at pool1's end. The
    check compares with the analysis's own reach (its fields of the layers before) and says so."""
    summary = convcalc.analyze(load_spec(ROOT / "specs/tfslim/alexnet_v2.yaml"))
    checks = {c.layer: c for c in verify_fields(summary)}
    squeezed = checks["squeezed"]
    assert squeezed.ok and squeezed.whole
    assert squeezed.hulls == squeezed.expected == (((0, 218), (0, 218)),)
    assert "not the whole input" in squeezed.detail


def test_a_broken_whole_reach_fails(monkeypatch):
    """Flatten right after a k=1 s=2 conv on 9 positions: units see 0, 2, .., 8 (hull [0, 8]); a rule that keeps
    the conv's field but reads one position less far is caught at the Flatten."""
    def short(self, fields, in_shapes, out_shape):
        pads = self.pads(in_shapes[0][1:])
        return fields[0].through_window([1], [2], [lo for lo, _ in pads], [out_shape[1] - 1], self.dilation)

    spec = convcalc.spec_from_dict({"name": "w", "input": [1, 9], "layers": [
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "stride": 2, "name": "c"},
        {"type": "Flatten", "name": "f"}]})
    assert all(c.ok for c in verify_fields(convcalc.analyze(spec)))
    monkeypatch.setattr(ConvNd, "receptive_field", short)
    checks = {c.layer: c for c in verify_fields(convcalc.analyze(spec))}
    assert not checks["f"].ok and "the analysis says [0, 6]" in checks["f"].detail


def test_a_wrapped_border_does_not_fake_a_stride():
    """Circular padding 1, then a 3-tap conv, on 5 positions (hand-derived): unit 2 of the second conv reads
    conv units 1..3, i.e. inputs 0..4 with 5 wrapped to 0, so its first index is 0 although its region [1, 5]
    starts inside: the pair (1, 2) must not measure a stride of 0. No unit has an unwrapped interior region, so
    the stride is not measured; the hulls are still compared (and agree)."""
    network = {"name": "wrap", "input": [1, 5], "layers": [
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1, "padding_mode": "circular"},
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "name": "d"}]}
    (check,) = verify_fields(convcalc.analyze(convcalc.spec_from_dict(network)), layers=["d"])
    assert check.ok, check.detail
    assert check.hulls[check.units.index((2,))] == ((0, 4),)
    assert check.axes[0].measured[2] is None
    result = CliRunner().invoke(app, ["rf", "-", "--verify"], input=json.dumps(network))
    assert result.exit_code == 0, result.output


def _all_verified(input_shape, layers):
    summary = convcalc.analyze(convcalc.spec_from_dict({"name": "n", "input": list(input_shape), "layers": layers}))
    return {c.layer: c for c in verify_fields(summary)}


def test_the_lines_go_through_a_unit_that_reads_something():
    """(hand-derived) k=1 s=3 conv on 10x13, 2 rows and 3 columns of constant padding before, k=1 s=3 pool:
    pool row 0 reads padding row 0 (nothing), row 1 reads conv row 1 (input row 3). The lines along the columns
    must run through row 1: through row 0 every unit reads nothing and the column numbers (size 1, stride 9)
    would be measured as 0."""
    checks = _all_verified((1, 10, 13), [
        {"type": "Conv2d", "out_channels": 1, "kernel_size": 1, "stride": 3},
        {"type": "ConstantPad2d", "padding": [3, 2, 2, 0], "value": 0.5},
        {"type": "AvgPool2d", "kernel_size": 1, "stride": 3, "name": "p"}])
    assert checks["p"].ok, checks["p"].detail
    assert checks["p"].axes[1].measured[:2] == (1, 1)


def test_a_unit_cut_off_further_up_does_not_measure_size_min():
    """(hand-derived) 10 inputs, k=1 s=3 conv (reads 0, 3, 6, 9), k=1 s=3 pool (0, 9), up-conv k=2 s=3 d=2 p=2
    op=1 (3 units: 0 <- 0, 1 <- 9, 2 <- none), up-conv k=4 s=2 p=2 op=1 (5 units: [0, 9], [0, 9], [9, 9],
    [9, 9], and unit 4 reads only the up-conv's missing unit 3 and its bias-only unit 2: nothing, although its
    region on the unbounded extension, [9, 9], lies inside the input). Not a size of 0."""
    checks = _all_verified((1, 10), [
        {"type": "Conv1d", "out_channels": 1, "kernel_size": 1, "stride": 3},
        {"type": "AvgPool1d", "kernel_size": 1, "stride": 3},
        {"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 2, "stride": 3, "dilation": 2, "padding": 2,
         "output_padding": 1},
        {"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 4, "stride": 2, "padding": 2,
         "output_padding": 1, "name": "up"}])
    up = checks["up"]
    assert up.ok, up.detail
    assert [up.hulls[up.units.index((u,))] for u in range(5)] == [((0, 9),), ((0, 9),), ((9, 9),), ((9, 9),), None]


def test_no_stride_is_measured_on_less_than_a_period():
    """An up-conv (stride 1/3), a pool and linear resampling 80 -> 16 with align_corners (c = 79/15): the stride
    79/45 repeats only every 45 units, more than the layer's 16, whose regions then happen to advance 7 every 4
    units; 7/4 is not a measurement of 79/45."""
    checks = _all_verified((1, 26), [
        {"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 2, "stride": 3, "dilation": 2,
         "output_padding": 1},
        {"type": "MaxPool1d", "kernel_size": 4, "stride": 1, "padding": 2, "ceil_mode": True},
        {"type": "Upsample", "mode": "linear", "size": 16, "align_corners": True, "name": "up"}])
    assert checks["up"].ok, checks["up"].detail
    assert checks["up"].axes[0].predicted[2] == Fraction(79, 45) and checks["up"].axes[0].measured[2] is None


def test_a_linear_sample_exactly_on_a_pixel_reads_one_pixel():
    """Linear 62 -> 30 (c = 31/15): unit 22 samples x = 22.5 * 31/15 - 1/2 = 46 exactly, pixel 46 alone, which
    an up-conv k=2 s=3 d=2 (outputs 3i and 3i + 2) feeds with nothing. In float64 x comes out 46.00000000000001
    (a 7e-15 weight on pixel 47, which input 15 feeds): rounding, not a dependency. The oracle is PyTorch in
    float32, whose gradient there is exactly 0, for every unit against the analysis."""
    import torch

    layers = [{"type": "ConvTranspose1d", "out_channels": 1, "kernel_size": 2, "stride": 3, "dilation": 2,
               "output_padding": 2},
              {"type": "Upsample", "mode": "linear", "size": 30, "name": "up"}]
    checks = _all_verified((1, 20), layers)
    assert checks["up"].ok, checks["up"].detail
    x = torch.ones((1, 1, 20), requires_grad=True)
    conv = torch.nn.ConvTranspose1d(1, 1, 2, stride=3, dilation=2, output_padding=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    y = torch.nn.functional.interpolate(conv(x), size=30, mode="linear")
    rf = convcalc.analyze(convcalc.spec_from_dict({"name": "n", "input": [1, 20], "layers": layers})).layer("up").rf
    for unit in range(30):
        (grad,) = torch.autograd.grad(y[0, 0, unit], x, retain_graph=True)
        found = torch.nonzero(grad[0, 0]).flatten().tolist()
        assert rf.extent((unit,)) == (((found[0], found[-1]),) if found else None), unit
    from convcalc.proof.dependency import Dependencies
    dependencies = Dependencies(convcalc.analyze(convcalc.spec_from_dict(
        {"name": "n", "input": [1, 20], "layers": layers})))
    assert not dependencies.propagate("up", dependencies.seeds("up", [(22,)])).any()


def test_no_size_is_measured_on_a_line_that_reads_nothing():
    """(hand-derived) A 1x3 conv on 6x8, then 3 rows of padding on top and the 6 conv rows cropped at the bottom:
    every unit of the crop reads padding along the rows, so no unit reads any input; the column numbers (size 3,
    stride 1) cannot be measured on them (not a size of 0). Torch agrees that nothing is read."""
    import torch

    layers = [{"type": "Conv2d", "out_channels": 1, "kernel_size": [1, 3]},
              {"type": "ConstantPad2d", "padding": [0, 0, 3, -6], "value": 0.5, "name": "p"}]
    x = torch.ones((1, 1, 6, 8), requires_grad=True)
    y = torch.nn.functional.pad(torch.nn.functional.conv2d(x, torch.ones((1, 1, 1, 3))), [0, 0, 3, -6], value=0.5)
    assert y.shape[2:] == (3, 6) and torch.autograd.grad(y.sum(), x)[0].abs().sum() == 0
    p = _all_verified((1, 6, 8), layers)["p"]
    assert p.ok, p.detail
    assert all(h is None for h in p.hulls)
    assert p.axes[1].predicted[:3] == (3, 3, 1) and p.axes[1].measured[:2] == (None, None)


@pytest.mark.parametrize("flatten", [{"start_dim": 2}, {"start_dim": 1, "end_dim": 2}])
def test_a_flatten_that_keeps_a_spatial_axis_is_a_reshape(flatten):
    """[C, H, W] -> [C, H*W] or [C*H, W]: a unit reads one position (a conv after it a few, in no window order),
    so no field is 'every unit sees the whole input'; the analysis says 'reshaped' and claims only what the units
    reach together, which the measured dependencies confirm (a per-unit claim of the whole input failed)."""
    spec = convcalc.spec_from_dict({"name": "r", "input": [4, 9, 10], "layers": [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2, "name": "c"},
        {"type": "Flatten", "name": "f", **flatten},
        {"type": "Conv1d", "out_channels": 2, "kernel_size": 3, "name": "d"}]})
    summary = convcalc.analyze(spec)
    assert summary.layer("f").rf.whole and summary.layer("f").rf.reshaped
    checks = {c.layer: c for c in verify_fields(summary)}
    assert all(c.ok for c in checks.values()), [c.detail for c in checks.values()]
    assert "a reshape" in checks["f"].detail and checks["f"].hulls == (((0, 8), (0, 8)),)   # conv drops row/col 9
    json_rf = convcalc.report.summary.rf_json(summary.layer("d").rf, summary.input_shape)
    assert json_rf["whole_input"] and json_rf["reshaped"]
    head = convcalc.spec_from_dict({"name": "h", "input": [4, 9, 10], "layers": [{"type": "Flatten", "name": "f"}]})
    assert not convcalc.analyze(head).layer("f").rf.reshaped                  # into a vector: whole, as before
