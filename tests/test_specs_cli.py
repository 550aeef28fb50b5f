"""Every spec shipped in specs/ analyses without error, in every output format, through the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import Format, app

SPEC_DIR = Path(__file__).resolve().parent.parent / "specs"
SPECS = sorted(p for p in SPEC_DIR.rglob("*.yaml") if p.parent.name != "blocks")   # tfslim/ too; not libraries
FORMATS = [f.value for f in Format]


def test_formats_are_the_four_known():
    assert sorted(FORMATS) == ["csv", "json", "markdown", "table"]


def test_specs_found():
    names = {p.stem for p in SPECS}
    assert {"lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "tiny"} <= names
    assert {"alexnet_v2", "vgg_16", "resnet_v1_50", "mobilenet_v1", "inception_v3"} <= {
        p.stem for p in SPECS if p.parent.name == "tfslim"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.relative_to(SPEC_DIR).with_suffix("").as_posix())
def test_spec_analyses_in_every_format(path, fmt):
    result = CliRunner().invoke(app, ["analyze", str(path), "--format", fmt])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.exception is None
    out = result.stdout
    assert out.strip()
    if fmt == "json":
        data = json.loads(out)
        assert data["layers"]
        assert data["input_shape"]
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(out)))
        assert len(rows) > 1
    elif fmt == "markdown":
        assert "|" in out
