"""Receptive-field checks (`convcalc.proof.verify.FieldCheck`) -> rich Table or JSON data. Nothing here prints."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Optional, Sequence

from rich.table import Table
from rich.text import Text

from .fit import Column, fit
from .summary import json_number
from ..algebra.numbers import fraction_text
from ..proof.verify import AxisCheck, FieldCheck

SCHEMA_VERSION = 1        # the verify JSON's own (analyze's is report.summary.SCHEMA_VERSION)

OK, BAD = "✓", "✗"
NUMBERS = ("size", "size_min", "stride", "padding")


def _number(value: Optional[int | Fraction]) -> Optional[int | float]:
    return None if value is None else json_number(value)


def _cell(value: Optional[int | Fraction]) -> str:
    return "—" if value is None else fraction_text(value)


def _size(values: Sequence[Optional[int | Fraction]]) -> str:
    size, size_min = values[0], values[1]
    if size is None:
        return "—"
    return fraction_text(size) if size_min in (None, size) else f"{fraction_text(size_min)}..{fraction_text(size)}"


def field_text(axes: Sequence[AxisCheck], which: str) -> str:
    """'size / stride / padding' per axis joined by ×, e.g. '7×7 / 2×2 / 3×3' ('—' where not measured)."""
    if not axes:
        return ""
    values = [getattr(axis, which) for axis in axes]
    sizes = "×".join(_size(v) for v in values)
    strides = "×".join(_cell(v[2]) for v in values)
    paddings = "×".join(_cell(v[3]) for v in values)
    return f"{sizes} / {strides} / {paddings}"


def check_mark(check: FieldCheck) -> str:
    return OK if check.ok else BAD


# what a narrow terminal loses first (the detail wraps; the fields are never cut)
DROP_ORDER = ("type", "units", "detail", "measured")


def rf_checks_table(checks: Sequence[FieldCheck], title: str | None = None, width: int | None = None,
                    prose: int | None = None) -> Table:
    """One row per checked layer: the predicted and measured size / stride / padding, the unit count, ✓/✗ and
    what was compared (or what differed). ``width``: fit it into so many columns (`report.fit`, DROP_ORDER)."""
    columns = [Column("name", kind="name"), Column("type"), Column("predicted r / S / P"), Column("measured"),
               Column("units", "right"), Column(""), Column("detail", kind="text")]
    rows = []
    for check in checks:
        predicted = "whole input" if check.whole else field_text(check.axes, "predicted")
        measured = "" if check.whole else field_text(check.axes, "measured")
        mark = Text(OK) if check.ok else Text(BAD, style="red")
        units = len(check.units) if check.units != ((),) else 1
        rows.append([check.layer, check.type, predicted, measured, str(units), mark, check.detail])
    return fit(columns, rows, width, DROP_ORDER, prose=prose).table(title)


def rf_check_json(check: FieldCheck) -> dict[str, Any]:
    """One check as data (fractions as floats, as everywhere in convcalc's JSON; None: not measured)."""
    return {
        "name": check.layer,
        "type": check.type,
        "ok": check.ok,
        "whole": check.whole,
        "via": check.via,
        "detail": check.detail,
        "units": [list(unit) for unit in check.units],
        "axes": [{"axis": axis.axis, "ok": axis.ok,
                  "predicted": dict(zip(NUMBERS, map(_number, axis.predicted))),
                  "measured": dict(zip(NUMBERS, map(_number, axis.measured)))} for axis in check.axes],
        "measured_hulls": [None if h is None else [list(pair) for pair in h] for h in check.hulls],
        "predicted_hulls": [None if h is None else [list(pair) for pair in h] for h in check.expected],
    }


def rf_checks_json(checks: Sequence[FieldCheck]) -> dict[str, Any]:
    """All checks as data, with a verdict: ``ok`` when every layer's field agrees with its measurement."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ok": all(check.ok for check in checks),
        "checked": len(checks),
        "failed": [check.layer for check in checks if not check.ok],
        "layers": [rf_check_json(check) for check in checks],
    }


__all__ = ["field_text", "rf_check_json", "rf_checks_json", "rf_checks_table"]
