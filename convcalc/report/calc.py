"""``convcalc calc`` answers -> rich renderables and JSON data (schema_version 1). Nothing here prints.

The formulas are text for the reader, with the numbers filled in; the values beside them are the layer units'.
Dropped input pixels are found by lint's own CC201 check, run on the calculator's one-layer (or stack) spec.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from rich.console import Group as RichGroup
from rich.table import Table
from rich.text import Text

from ..algebra.numbers import fraction_text
from ..analysis.calculator import AxisAnswer, CostAnswer, LayerAnswer
from ..analysis.padding_solver import PaddingAnswer
from ..analysis.rf_stack import StackAnswer
from ..analysis.summary import Summary
from ..lint.checks import check_dropped_pixels
from ..lint.context import AXIS_NAMES, Context
from ..spec.load import Spec
from .fit import Column, fit
from .summary import human, json_number, rf_json, rf_texts

SCHEMA_VERSION = 1


def _x(values: Sequence[Any]) -> str:
    return "×".join(str(v) for v in values)


def _axis_names(dims: int) -> tuple[str, ...]:
    return AXIS_NAMES.get(dims, tuple(f"axis {a}" for a in range(dims)))


def _per_axis(dims: int, texts: Sequence[str]) -> list[tuple[str, str]]:
    """(label, text) lines: one for all axes when their texts agree."""
    names = _axis_names(dims)
    if dims > 1 and len(set(texts)) == 1:
        return [(" and ".join([", ".join(names[:-1]), names[-1]]), texts[0])]
    return list(zip(names, texts))


def dropped_warnings(spec: Spec, summary: Summary) -> list[str]:
    """Lint's CC201 (dropped-pixels) findings for the calculator's spec: the same check, the same words."""
    return [finding.message for finding in check_dropped_pixels(Context("calc", spec, summary))]


# --------------------------------------------------------------------------- one layer

def formula(answer: LayerAnswer, axis: AxisAnswer) -> str:
    """PyTorch's shape formula for this axis with the numbers filled in, '= out' the unit's value."""
    i, k, s, d, lo, hi, o = (axis.length, axis.kernel, axis.stride, axis.dilation, axis.pad_lo, axis.pad_hi,
                             axis.output)
    if answer.family == "transposed":
        return f"out = ({i} − 1)·{s} − 2·{lo} + {d}·({k} − 1) + {axis.output_padding} + 1 = {o}"
    pads = f"2·{lo}" if lo == hi else f"{lo} + {hi}"
    numerator = f"{i} + {pads} − {d}·({k} − 1) − 1"
    rounded = (-(-(i + lo + hi - d * (k - 1) - 1) // s) if answer.ceil_mode else (i + lo + hi - d * (k - 1) - 1) // s)
    text = f"out = {'ceil' if answer.ceil_mode else 'floor'}(({numerator}) / {s}) + 1"
    if rounded + 1 != o:                # ceil_mode: a last window starting in the padding is dropped (Pool.h)
        text += f" − 1 (the last window would start in the padding) = {o}"
    else:
        text += f" = {o}"
    if axis.padding_rule in ("same", "tf_same", "full"):
        text += f"  (padding '{axis.padding_rule}': {lo} before, {hi} after)"
    return text


def _param_text(answer: LayerAnswer) -> str:
    weights = answer.summary.layers[0].weights
    parts = ", ".join(f"{name} {_x(shape)}" for name, shape in weights.items())
    return f"{answer.params:,}" + (f" ({parts})" if parts else "")


def layer_output(answer: LayerAnswer, warnings: Sequence[str]) -> RichGroup:
    shape_in = answer.input_shape if answer.channels_given or answer.family != "pool" else answer.input_shape[1:]
    shape_out = answer.output_shape if answer.channels_given or answer.family != "pool" else answer.output_shape[1:]
    size, stride, padding = rf_texts(answer.rf)
    table = Table(show_header=False, box=None, padding=(0, 1))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("output", f"{_x(shape_out)}  (input {_x(shape_in)})")
    if answer.family != "pool":
        table.add_row("params", _param_text(answer))
    table.add_row("MACs", f"{answer.macs:,}" + (f" ({human(answer.macs)})" if answer.macs >= 1000 else ""))
    table.add_row("RF", f"size {size}, stride {stride}, padding {padding}")
    for label, text in _per_axis(len(answer.axes), [formula(answer, a) for a in answer.axes]):
        table.add_row(label, text)
    lines: list[Any] = [Text(f"{answer.type}({_call_args(answer)})", style="bold"), table]
    if not answer.channels_given and answer.family != "pool":
        lines.append(Text(f"channels not given: params and MACs are for {answer.input_shape[0]} input and"
                          f" {answer.output_shape[0]} output channel(s) (--in CxHxW, --out-channels N)", style="dim"))
    lines += [Text(f"⚠ CC201: {warning}", style="yellow") for warning in warnings]
    return RichGroup(*lines)


def _call_args(answer: LayerAnswer) -> str:
    args = dict(answer.args)
    head = []
    if answer.family != "pool":
        head = [str(answer.input_shape[0]), str(args.pop("out_channels"))]
        if args.get("bias") is True:
            args.pop("bias")
    kernel = args.pop("kernel_size")
    head.append(str(tuple(kernel) if isinstance(kernel, list) else kernel))
    return ", ".join(head + [f"{key}={tuple(value) if isinstance(value, list) else value!r}"
                             for key, value in args.items()])


def layer_json(answer: LayerAnswer, warnings: Sequence[str]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION, "command": "calc", "layer": answer.type, "arguments": answer.args,
        "input_shape": list(answer.input_shape), "output_shape": list(answer.output_shape),
        "channels_given": answer.channels_given, "params": answer.params, "macs": answer.macs,
        "flops": 2 * answer.macs, "rf": rf_json(answer.rf, answer.input_shape),
        "axes": [{"input": a.length, "output": a.output, "kernel": a.kernel, "stride": a.stride,
                  "dilation": a.dilation, "padding": [a.pad_lo, a.pad_hi], "output_padding": a.output_padding,
                  "dropped": dropped, "formula": formula(answer, a)}
                 for a, dropped in zip(answer.axes, answer.dropped)],
        "warnings": list(warnings),
    }


# --------------------------------------------------------------------------- padding

def _pairs(values: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"({p}, {op})" for p, op in values)


def _padding_cells(answer: PaddingAnswer, axis: Any) -> tuple[tuple[str, ...], str]:
    """The table cells of one axis, and its note (why there is no answer; what padding='same' does)."""
    geometry = f"k {axis.kernel}" + (f" d {axis.dilation}" if axis.dilation > 1 else "") + f" s {axis.stride}"
    sizes = f"{axis.length} → {axis.target}"
    if answer.transposed:
        return (geometry, sizes, _pairs(axis.pairs) or "none"), axis.reason
    symmetric = ", ".join(f"padding={p}" for p in axis.symmetric) or "none"
    asymmetric = "none" if axis.asymmetric is None else f"({axis.asymmetric[0]}, {axis.asymmetric[1]})"
    note = axis.reason
    if axis.torch_same is not None and axis.target == axis.length:       # stride 1, the size kept
        note = (note + "; " if note else "") + f"PyTorch's padding='same' pads {axis.torch_same}"
    return (geometry, sizes, symmetric, asymmetric), note


# the (lo, hi) column: TF SAME's pads for the SAME size, else the same split (least total, odd pixel after) of the
# padding that gives --out
ASYMMETRIC_HEADER = {True: "TF SAME (lo, hi)", False: "asymmetric (lo, hi)"}
PADDING_DROP = ("kernel",)                     # what a narrow terminal loses first (`report.fit`)
STACK_DROP = ("type", "start", "padding")
COST_DROP = ("output", "made of", "× std", "× std")


def padding_output(answer: PaddingAnswer, width: int | None = None, prose: int | None = None) -> RichGroup:
    """``width``: fit the table into so many columns (`report.fit`, PADDING_DROP; None: full width)."""
    dims = len(answer.axes)
    kind = "transposed conv" if answer.transposed else "conv"
    goal = "out as given"
    if answer.same:
        goal = "out = in·stride" if answer.transposed else \
            "out = ⌈in / stride⌉ (TF SAME; the input size at stride 1)"
    title = Text(f"padding for a {kind}: {goal}")
    columns = [Column("axis"), Column("kernel"), Column("in → out")] + (
        [Column("(padding, output_padding)", kind="text")] if answer.transposed else
        [Column("PyTorch (symmetric)", kind="text"), Column(ASYMMETRIC_HEADER[answer.same])])
    answers = [_padding_cells(answer, axis) for axis in answer.axes]
    names = _axis_names(dims)
    if dims > 1 and len(set(answers)) == 1:
        rows = [["every axis", *answers[0][0]]]
        notes = [answers[0][1]] if answers[0][1] else []
    else:
        rows = [[name, *cells] for name, (cells, _note) in zip(names, answers)]
        notes = [f"{name}: {note}" if dims > 1 else note for name, (_, note) in zip(names, answers) if note]
    table = fit(columns, rows, width, PADDING_DROP, prose=prose).table()
    legend = ("output_padding < stride or < dilation (PyTorch); each pair checked by building the layer"
              if answer.transposed else f"PyTorch: p on both sides; {'TF SAME' if answer.same else 'asymmetric'}: the"
              f" least total, the odd pixel after{'' if answer.same else ', as TF SAME splits it'} (torch: F.pad(x,"
              " (lo, hi))); each answer checked by building the conv")
    return RichGroup(title, table, *[Text(note) for note in notes], Text(legend, style="dim"))


def padding_json(answer: PaddingAnswer) -> dict[str, Any]:
    axes = []
    for axis in answer.axes:
        item = {"input": axis.length, "kernel": axis.kernel, "stride": axis.stride, "dilation": axis.dilation,
                "output": axis.target, "reason": axis.reason or None}
        if answer.transposed:
            item["solutions"] = [{"padding": p, "output_padding": op} for p, op in axis.pairs]
        else:
            item.update(symmetric=list(axis.symmetric),
                        tf_same=None if axis.asymmetric is None else list(axis.asymmetric),
                        total_padding=None if axis.total is None else list(axis.total),
                        torch_same=None if axis.torch_same is None else list(axis.torch_same))
        axes.append(item)
    return {"schema_version": SCHEMA_VERSION, "command": "calc padding",
            "layer": "ConvTranspose" if answer.transposed else "Conv", "same": answer.same, "axes": axes}


# --------------------------------------------------------------------------- a stack's receptive fields

def _centres(values: Sequence[Fraction]) -> str:
    texts = [fraction_text(v) for v in values]        # 3/4 as every table writes an exact number
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def stack_output(answer: StackAnswer, warnings: Sequence[str], width: int | None = None,
                 prose: int | None = None) -> RichGroup:
    """``width``: fit the table into so many columns (`report.fit`, STACK_DROP; None: full width)."""
    size_note = "chosen; interior units' fields do not depend on it" if answer.auto_size else "given"
    title = Text(f"receptive fields of \"{answer.text}\" (input {_x(answer.input_shape[1:])}, {size_note})")
    columns = [Column("#", "right"), Column("layer", kind="text"), Column("type"),
               *(Column(c, "right") for c in ("output", "RF size", "jump", "start", "padding"))]
    rows = []
    for row in answer.rows:
        size, stride, padding = rf_texts(row.field)
        number = f"{row.index}.{row.copy}" if row.copy else str(row.index)
        rows.append([number, row.text, row.type, _x(row.output), size, stride,
                     _centres(row.centre) if row.field.axes else "–", padding])
    table = fit(columns, rows, width, STACK_DROP, prose=prose).table()
    legend = Text("RF size: positions one unit sees (min..max where units differ); jump: positions between\n"
                  "neighbouring units; start: the centre of unit 0's field; padding: how far it reaches before the\n"
                  "input (Araujo et al. 2019)", style="dim")
    return RichGroup(title, table, legend, *[Text(f"⚠ CC201: {w}", style="yellow") for w in warnings])


def stack_json(answer: StackAnswer, warnings: Sequence[str]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "command": "calc rf", "stack": answer.text,
            "input_shape": list(answer.input_shape[1:]), "input_chosen": answer.auto_size,
            "layers": [{"index": row.index, "copy": row.copy, "text": row.text, "name": row.name, "type": row.type,
                        "output": list(row.output), "start": [json_number(c) for c in row.centre],
                        "start_text": [fraction_text(c) for c in row.centre],
                        **rf_json(row.field, answer.input_shape)} for row in answer.rows],
            "warnings": list(warnings)}


def stack_warnings(answer: StackAnswer) -> list[str]:
    """CC201 on the stack at the input given, naming each layer as the user wrote it (none at a chosen input:
    what it drops would be an artefact of the choice)."""
    if answer.auto_size:
        return []
    messages = dropped_warnings(answer.spec, answer.summary)
    for row in answer.rows:
        label = f"{row.index}.{row.copy}" if row.copy else str(row.index)
        messages = [m.replace(f"layer '{row.name}'", f"layer {label} '{row.text}'") for m in messages]
    return messages


# --------------------------------------------------------------------------- cost of the variants

def _ratio(value: Fraction) -> str:
    return "1" if value == 1 else f"{float(value):.4f}"


def cost_output(answer: CostAnswer, width: int | None = None, prose: int | None = None) -> RichGroup:
    """``width``: fit the table into so many columns (`report.fit`, COST_DROP; None: full width)."""
    title = Text(f"{_x(answer.input_shape)} → {answer.out_channels} channels, kernel {_x(answer.kernel)}")
    columns = [Column("variant", kind="text"), Column("made of", kind="text"),
               *(Column(c, "right") for c in ("output", "params", "× std", "MACs", "× std"))]
    rows = [[v.label, v.parts, _x(v.output_shape), f"{v.params:,}", _ratio(v.params_ratio), f"{v.macs:,}",
             _ratio(v.macs_ratio)] for v in answer.variants]
    table = fit(columns, rows, width, COST_DROP, prose=prose).table()
    formula_value = answer.separable_formula
    k2 = "k²" if len(set(answer.kernel)) == 1 and len(answer.kernel) == 2 else "∏k"
    lines: list[Any] = [title, table, Text(
        f"depthwise-separable vs standard (Howard et al. 2017): MACs × 1/N + 1/{k2} = 1/{answer.out_channels} +"
        f" 1/{_prod(answer.kernel)} = {float(formula_value):.4f} (N: output channels)", style="dim")]
    if answer.separable_mid is not None:
        lines.append(Text(separable_note(answer), style="dim"))
    lines += [Text(f"not shown: {name}: {why}", style="dim") for name, why in answer.skipped]
    return RichGroup(*lines)


def separable_note(answer: CostAnswer) -> str:
    """Which middle width the spatially separable conv has, and why."""
    channels, out, mid = answer.input_shape[0], answer.out_channels, answer.separable_mid
    kh, kw = answer.kernel
    if answer.separable_mid_given:
        why = f"--separable-mid {mid}"
    elif channels == out:
        why = "C = N"
    else:
        form = "C → C → N" if mid == channels else "C → N → N"
        why = f"{form}, the cheaper textbook form; --separable-mid M sets the middle"
    return f"spatially separable: {kh}×1 conv {channels} → {mid}, then 1×{kw} conv {mid} → {out} ({why})"


def _prod(values: Sequence[int]) -> int:
    total = 1
    for v in values:
        total *= v
    return total


def cost_json(answer: CostAnswer) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "command": "calc cost", "input_shape": list(answer.input_shape),
            "out_channels": answer.out_channels, "kernel_size": list(answer.kernel), "groups": answer.groups,
            "mid_channels": answer.mid_channels, "separable_mid_channels": answer.separable_mid,
            "separable_formula": float(answer.separable_formula),
            "separable_formula_exact": fraction_text(answer.separable_formula),
            "variants": [{"key": v.key, "label": v.label, "parts": v.parts, "output_shape": list(v.output_shape),
                          "params": v.params, "macs": v.macs, "params_ratio": float(v.params_ratio),
                          "macs_ratio": float(v.macs_ratio), "params_ratio_exact": fraction_text(v.params_ratio),
                          "macs_ratio_exact": fraction_text(v.macs_ratio)} for v in answer.variants],
            "not_shown": [{"variant": name, "why": why} for name, why in answer.skipped]}
