"""RunResult -> rich Table or JSON data: the analyzer's predictions against what the executor did."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from rich.console import Group as RichGroup
from rich.text import Text

from ..execution.network import RunResult
from .fit import Column, fit
from .summary import human, shape_cell
from .rf_checks import rf_checks_json, rf_checks_table
from ..proof.verify import FieldCheck

SCHEMA_VERSION = 1        # the run JSON's own (analyze's is report.summary.SCHEMA_VERSION)

OK, BAD = "✓", "✗"


def topk(output: np.ndarray, k: int) -> list[list[dict[str, float | None]]]:
    """Per sample, the k largest classes with their softmax probabilities, of a classifier output [N, K] (or
    [N, K, 1, ...]); at most K of them. A NaN probability (from a NaN logit) is None (JSON's null)."""
    logits = output.reshape(output.shape[0], -1).astype(np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    result = []
    for sample in probabilities:
        best = np.argsort(-sample, kind="stable")[:k]
        result.append([{"index": int(i), "probability": float(sample[i]) if np.isfinite(sample[i]) else None}
                       for i in best])
    return result


def run_json(result: RunResult, source: str, k: int | None = None,
             rf_checks: Sequence[FieldCheck] | None = None) -> dict[str, Any]:
    """``rf_checks``: the receptive-field checks (`convcalc.proof.verify`), None when not run: per layer ``rf_ok``
    (null where not checked), and ``rf_checks`` with every check's numbers; ``ok`` includes them."""
    checks = {c.layer: c for c in rf_checks or ()}
    data = {
        "schema_version": SCHEMA_VERSION,
        "name": result.summary.name,
        "input": {"source": source, "shape": [result.batch, *result.summary.input_shape]},
        "batch": result.batch,
        "output_shape": list(result.output.shape),
        "ok": result.ok and all(c.ok for c in checks.values()),
        "first_nonfinite": result.first_nonfinite,
        "seconds": result.seconds,
        "layers": [
            {"name": r.name, "type": r.type, "predicted_shape": list(r.predicted_shape),
             "actual_shape": list(r.actual_shape), "shape_ok": r.shape_ok, "predicted_macs": r.predicted_macs,
             "executed_macs": r.executed_macs, "macs_ok": r.macs_ok, "finite": r.finite, "folded": r.folded,
             "fused_into": r.fused_into or None,
             "transform": r.transform or None,
             "algorithm": r.algorithm or None, "chosen_by": r.chosen_by or None,
             "transform_macs": r.transform_macs, "seconds": r.seconds,
             "rf_ok": checks[r.name].ok if r.name in checks else None}
            for r in result.layers
        ],
        "totals": {"predicted_macs": sum(r.predicted_macs for r in result.layers),
                   "executed_macs": sum(r.executed_macs for r in result.layers)},
    }
    if rf_checks is not None:
        data["rf_checks"] = rf_checks_json(rf_checks)
    if k:
        data["topk"] = topk(result.output, k)
    return data


def run_table(result: RunResult, source: str, k: int | None = None, notes: Sequence[str] = (),
              rf_checks: Sequence[FieldCheck] | None = None, width: int | None = None,
              prose: int | None = None, samples: Sequence[str] | None = None) -> RichGroup:
    """``rf_checks``: the receptive-field checks, shown in an RF column (✓/✗, blank where not checked) with a
    table of the failures below. ``width``: fit the tables into it (`report.fit`; None: full width, prose columns
    wrapped at ``prose``). ``samples``: what each sample of the batch is (its file), named in the top-k lines."""
    summary = result.summary
    checks = {c.layer: c for c in rf_checks or ()}
    title = (f"{summary.name}: {source} → batch {result.batch} × {shape_cell(summary.input_shape)}"
             f" → {shape_cell(result.output.shape[1:])}")
    columns = [Column("name", kind="name"), Column("type"), Column("shape predicted"), Column("actual"), Column(""),
               Column("MACs predicted", "right"), Column("executed", "right"), Column(""), Column("ms", "right")]
    if rf_checks:
        columns.append(Column("RF"))
    rows = []
    for r in result.layers:
        name = Text(r.name) + (Text("") if r.finite else Text("  NaN/Inf", style="red"))
        type_text = r.type + (" (folded)" if r.folded else " (fused)" if r.fused_into
                              else f" ({r.algorithm}, {r.chosen_by})" if r.algorithm
                              else f" ({r.transform})" if r.transform else "")
        rows.append([name, type_text, shape_cell(r.predicted_shape), shape_cell(r.actual_shape), _mark(r.shape_ok),
                     f"{r.predicted_macs:,}", f"{r.executed_macs:,}", _mark(r.macs_ok), f"{r.seconds * 1000:.2f}",
                     *_rf_cell(checks, r.name, bool(rf_checks))])
    confirmed = result.ok and all(c.ok for c in checks.values())
    # what the narrow terminal loses first: the columns that repeat the predictions when every check passed
    drop = ("executed", "actual", "ms", "type") if confirmed else ("ms", "type", "executed", "actual")
    table = fit(columns, rows, width, drop, prose=prose).table(title)
    lines = Text()
    shapes_ok = sum(r.shape_ok for r in result.layers)
    macs_ok = sum(r.macs_ok for r in result.layers)
    total = len(result.layers)
    executed = sum(r.executed_macs for r in result.layers)
    lines.append(f"shapes {shapes_ok}/{total} {OK if shapes_ok == total else BAD}   "
                 f"MACs {macs_ok}/{total} {OK if macs_ok == total else BAD}   "
                 f"executed {executed:,} MACs ({human(executed)}) in {result.seconds * 1000:.1f} ms"
                 f" ({2 * executed / max(result.seconds, 1e-9) / 1e9:.1f} GFLOP/s)\n")
    if rf_checks:
        fields_ok = sum(c.ok for c in rf_checks)
        lines.append(f"receptive fields {fields_ok}/{len(rf_checks)} {OK if fields_ok == len(rf_checks) else BAD}"
                     " (exact dependency propagation)\n")
    if result.first_nonfinite:
        lines.append(f"first NaN/Inf at layer '{result.first_nonfinite}'\n", style="bold red")
    for note in notes:
        lines.append(note + "\n")
    if k:
        for index, best in enumerate(topk(result.output, k)):
            ranked = ", ".join(f"{b['index']} ({'nan' if b['probability'] is None else format(b['probability'], '.3f')})"
                               for b in best)
            named = f" ({samples[index]})" if samples is not None and index < len(samples) else ""
            lines.append(f"top-{len(best)} of sample {index}{named}: {ranked}\n")
    ok = result.ok and all(c.ok for c in checks.values())
    verdict = "all predictions confirmed" if ok else "PREDICTIONS FAILED"
    lines.append(verdict + "\n", style="bold green" if ok else "bold red")
    failed = [c for c in rf_checks or () if not c.ok]
    if failed:
        return RichGroup(table, rf_checks_table(failed, title="receptive fields that disagree", width=width,
                                                prose=prose), lines)
    return RichGroup(table, lines)


def _mark(ok: bool) -> Text:
    return Text(OK) if ok else Text(BAD, style="red")


def _rf_cell(checks: dict[str, FieldCheck], name: str, shown: bool) -> tuple[Text, ...]:
    if not shown:
        return ()
    check = checks.get(name)
    if check is None:
        return (Text(""),)
    return (_mark(check.ok),)
