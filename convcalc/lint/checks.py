"""The rules' logic: generic walks over an analyzed graph that ask each layer unit for its geometry.

Nothing here tests a layer's type. The units answer `Layer.window_geometry` (sliding windows),
`Layer.upsampling_geometry` (scatters through a kernel) and `Layer.is_noop`; the analyzer's receptive fields
(`Field`) give alignment, coverage and which layers are pointwise in space (`gridding`).
"""

from __future__ import annotations

from math import gcd
from typing import Callable, Iterable, Iterator

from ..layers.base import ScatterAxis, shape_text
from ..analysis.causes import dropped_positions      # one formula for CC201 and a failed merge's cause
from .context import AXIS_UNITS, Context, grouped, layer_label, number
from .alignment import check_misaligned
from .coverage import check_rf_coverage, output_field
from .gridding import GRIDDING_ORDER, check_gridding, hdc_m2, reached_runs
from .model import Finding
from ..spec.load import gmacs_hold


# --------------------------------------------------------------------------- CC201 dropped pixels

def check_dropped_pixels(ctx: Context) -> Iterator[Finding]:
    for node in ctx.summary.graph.nodes:
        in_shapes = ctx.in_shapes(node)
        out_shape = ctx.shapes[node.name]
        geometry = ctx.window(node)
        if not geometry or len(in_shapes[0]) != len(geometry) + 1 or len(out_shape) != len(geometry) + 1:
            continue
        dims = len(geometry)
        units = AXIS_UNITS.get(dims)
        lost, formulas = [], []
        for axis, window in enumerate(geometry):
            i, o = in_shapes[0][axis + 1], out_shape[axis + 1]
            if window.k_eff < window.stride:
                continue            # a window narrower than its stride subsamples by design
            count = dropped_positions(i, o, window)
            if count:
                lo, hi, k, s = window.pad_lo, window.pad_hi, window.k_eff, window.stride
                unit = units[axis][count != 1] if units else "positions"
                lost.append(f"the last {count} {unit}")
                formula = f"({i} + {lo} + {hi} - {k}) mod {s} = {(i + lo + hi - k) % s}"
                formulas.append((axis, formula + (f", {hi} of them padding" if hi else "")))
        if lost:
            why = formulas[0][1] if len({text for _, text in formulas}) == 1 else grouped(dims, formulas)
            verb = "reaches" if len(lost) == 1 and lost[0].startswith("the last 1 ") else "reach"
            yield ctx.finding("CC201", f"{layer_label(node)}: {' and '.join(lost)} of its"
                              f" {'x'.join(map(str, in_shapes[0][1:]))} input never {verb} the output: (i + pad_lo"
                              f" + pad_hi - k_eff) mod stride = {why}", node)


# --------------------------------------------------------------------------- CC202 checkerboard

def tap_counts(scatter: ScatterAxis) -> set[int]:
    """How many kernel taps land on an output position, over the positions modulo the stride (the distinct
    counts): tap m reaches output j*s - p + m*d, so phase r gets #{m < k : m*d = r (mod s)} (padding only rotates
    phases). The phases m*d mod s run through the p = s/gcd(d, s) multiples of gcd(d, s) and repeat, so k // p
    taps land on each, one more on the first k mod p, and none on the other s - p phases: O(1), whatever the
    stride (a count per phase took gigabytes at stride 10^9)."""
    kernel, stride = scatter.kernel, scatter.stride
    common = gcd(scatter.dilation, stride)
    period = stride // common
    counts = {kernel // period}
    if kernel % period:
        counts.add(kernel // period + 1)
    if common > 1:
        counts.add(0)
    return counts


def check_checkerboard(ctx: Context) -> Iterator[Finding]:
    for node in ctx.summary.graph.nodes:
        geometry = node.layer.upsampling_geometry(ctx.in_shapes(node), ctx.shapes[node.name])
        if not geometry:
            continue
        uneven = []
        for axis, scatter in enumerate(geometry):
            counts = tap_counts(scatter)
            if scatter.stride > 1 and min(counts) != max(counts):
                dilation = f" and dilation {scatter.dilation}" if scatter.dilation > 1 else ""
                text = (f"kernel {scatter.kernel}{dilation} with stride {scatter.stride} gives output positions"
                        f" {' or '.join(str(c) for c in sorted(counts, reverse=True))} taps")
                if min(counts) == 0:
                    text += " (some get no input at all, only the bias)"
                uneven.append((axis, text))
        if uneven:
            yield ctx.finding("CC202", f"{layer_label(node)}: uneven overlap, checkerboard risk: "
                              + grouped(len(geometry), uneven), node)


# --------------------------------------------------------------------------- CC207 dead layers

def check_dead_layers(ctx: Context) -> Iterator[Finding]:
    graph = ctx.summary.graph
    alive = {graph.output}
    for node in reversed(graph.nodes):
        if node.name in alive:
            alive.update(node.inputs)
    dead = [node for node in graph.nodes if node.name not in alive]
    dead_names = {node.name for node in dead}
    claimed: set[str] = set()      # a dead layer feeding several dead ends is counted with the first (one walk)
    for node in dead:
        if ctx.consumers[node.name]:
            continue               # feeds a dead layer: counted with that branch's end
        branch, pending = {node.name}, list(node.inputs)
        while pending:
            name = pending.pop()
            if name in dead_names and name not in branch and name not in claimed:
                branch.add(name)
                pending.extend(ctx.nodes[name].inputs)
        claimed |= branch
        others = len(branch) - 1
        extra = (f", nor do{'es' if others == 1 else ''} the {others} layer{'s' if others != 1 else ''} feeding only"
                 f" it" if others else "")
        params = sum(ctx.rows[name].params for name in branch)
        yield ctx.finding("CC207", f"{layer_label(node)} does not reach the output '{graph.output}'{extra}"
                          f" ({params:,} parameters unused)", node)


# --------------------------------------------------------------------------- CC208 shadowed references

def check_shadowed_references(ctx: Context) -> Iterator[Finding]:
    """One finding per reference in the spec text (a block used N times resolves it N times)."""
    seen: dict[tuple, list] = {}
    for shadow in ctx.summary.graph.shadows:
        key = (shadow.where, shadow.reference, shadow.what)
        seen.setdefault(key, []).append(shadow)
    for (where, reference, what), shadows in seen.items():
        first = shadows[0]
        times = f" (and in {len(shadows) - 1} more use{'s' if len(shadows) > 2 else ''} of the block)" \
            if len(shadows) > 1 else ""
        yield ctx.finding("CC208", f"{what} '{reference}' means the block's own layer '{first.chosen}'{times}, not the"
                                   f" top-level layer '{first.other}'", where=where)


# --------------------------------------------------------------------------- CC209 shadowed top-level args

def check_shadowed_args(ctx: Context) -> Iterator[Finding]:
    """One finding per block argument whose own default was used where a top-level arg of its name differs."""
    seen: dict[tuple, list] = {}
    for shadow in ctx.summary.graph.arg_shadows:
        seen.setdefault((shadow.block, shadow.argument), []).append(shadow)
    for (block, argument), shadows in seen.items():
        first = shadows[0]
        more = f" here and in {len(shadows) - 1} more place{'s' if len(shadows) > 2 else ''}" \
            if len(shadows) > 1 else ""
        defined = f" (line {first.defined.line})" if first.defined is not None else ""
        yield ctx.finding("CC209", f"block '{block}'{more} takes its own default {argument} = {first.default!r}"
                                   f"{defined}, not the top-level arg {argument} = {first.top_level!r} (a block's"
                                   f" defaults win over top-level args): pass '{argument}: ${argument}' where it is"
                                   f" used, or make the default ${argument}", where=first.where)


# --------------------------------------------------------------------------- CC302 no-ops, CC303 asymmetric pads

def check_noops(ctx: Context) -> Iterator[Finding]:
    reasons: dict[str, str] = {}
    for node in ctx.summary.graph.nodes:
        reason = node.layer.is_noop(ctx.in_shapes(node), ctx.shapes[node.name])
        if reason:
            reasons[node.name] = reason
    for node in ctx.summary.graph.nodes:
        if node.name not in reasons:
            continue
        if type(node.layer).noop_by_design:
            neighbours = [*node.inputs, *ctx.consumers[node.name]]
            if not any(name in reasons for name in neighbours):
                continue
        yield ctx.finding("CC302", f"{layer_label(node)} does nothing: {reasons[node.name]}", node)


def check_asymmetric_padding(ctx: Context) -> Iterator[Finding]:
    for node in ctx.summary.graph.nodes:
        geometry = ctx.window(node)
        if not geometry:
            continue
        texts = [(axis, f"kernel {w.kernel}" + (f", stride {w.stride}" if w.stride > 1 else "")
                  + f" pads {w.pad_lo} before and {w.pad_hi} after")
                 for axis, w in enumerate(geometry) if w.padding_rule and w.pad_lo != w.pad_hi]
        if texts:
            rule = next(w.padding_rule for w in geometry if w.padding_rule)
            yield ctx.finding("CC303", f"{layer_label(node)}: padding '{rule}' is asymmetric"
                              f" ({grouped(len(geometry), texts)}); the output shifts half a pixel", node)


# --------------------------------------------------------------------------- CC103 expectations

def rf_sizes_at(summary, name: str) -> list | None:
    """The receptive field sizes per spatial axis of the layer or block (its output) ``name``; [] when its units
    see the whole input; None when the spec has no such layer or block."""
    groups = summary.graph.groups
    wanted = groups[name].output if name in groups else name
    row = next((layer for layer in summary.layers if layer.name == wanted), None)
    if row is None:
        return None
    return [] if row.rf.whole else [axis.size for axis in row.rf.axes]


def check_expectations(ctx: Context) -> Iterator[Finding]:
    expect, where = ctx.spec.expect, ctx.spec.expect_locations
    totals = ctx.summary.totals

    def fail(key: str, message: str) -> Finding:
        return ctx.finding("CC103", f"expect {key}: {message}", where=where.get(key))

    if "output_shape" in expect and tuple(ctx.summary.output_shape) != tuple(expect["output_shape"]):
        yield fail("output_shape", f"the output '{ctx.summary.output}' is {shape_text(ctx.summary.output_shape)},"
                                   f" not {shape_text(expect['output_shape'])}")
    for key, actual, what in (("params", totals.params, "parameters"), ("macs", totals.macs, "MACs")):
        if key in expect and actual != expect[key]:
            yield fail(key, f"the network has {actual:,} {what}, not {number(expect[key])}"
                            f" ({actual - expect[key]:+,})")
        limit = expect.get(f"{key}_max")
        if limit is not None and actual > limit:
            yield fail(f"{key}_max", f"the network has {actual:,} {what}, more than {number(limit)}"
                                     f" (by {actual - limit:,.0f})")
    if "gmacs" in expect and not gmacs_hold(totals.macs, expect["gmacs"]):
        yield fail("gmacs", f"the network has {totals.macs:,} MACs, {totals.macs / 1e9:.6g} billion, which does not"
                            f" round to {expect['gmacs']}")
    for name, size in expect.get("rf_at", {}).items():
        sizes = rf_sizes_at(ctx.summary, name)
        if sizes is None:
            yield fail("rf_at", f"no layer or block '{name}'")
        elif not sizes or sizes != [size] * len(sizes):
            shown = "x".join(str(s) for s in sizes) if sizes else "the whole input"
            yield fail("rf_at", f"the receptive field of '{name}' is {shown}, not {size}")
    if "rf_min" in expect:
        spatial = ctx.summary.input_shape[1:]
        wanted = expect["rf_min"]
        wanted = tuple(wanted) if isinstance(wanted, tuple) else (wanted,) * len(spatial)
        found = output_field(ctx)
        if len(wanted) != len(spatial):
            yield fail("rf_min", f"gives {len(wanted)} values but the input has {len(spatial)} spatial axes")
        elif found is not None and len(found[2].axes) == len(spatial):
            sizes = [axis.size for axis in found[2].axes]
            if any(size < w for size, w in zip(sizes, wanted)):
                yield fail("rf_min", f"the receptive field of '{found[0]}' is {'x'.join(str(s) for s in sizes)},"
                                     f" smaller than {'x'.join(map(str, wanted))}")


CHECKS: dict[str, Callable[[Context], Iterable[Finding]]] = {
    "CC103": check_expectations,
    "CC201": check_dropped_pixels,
    "CC202": check_checkerboard,
    "CC203": check_gridding,          # or CC204, CC205: one finding per dilated stack (one walk over the chains)
    "CC206": check_misaligned,
    "CC207": check_dead_layers,
    "CC208": check_shadowed_references,
    "CC209": check_shadowed_args,
    "CC301": check_rf_coverage,
    "CC302": check_noops,
    "CC303": check_asymmetric_padding,
}
GRIDDING_RULES = GRIDDING_ORDER


def run_checks(ctx: Context, enabled: set[str]) -> list[Finding]:
    """Every finding of the enabled rules (default severities; the engine applies the configuration)."""
    findings: list[Finding] = []
    for rule, check in CHECKS.items():
        produces = GRIDDING_RULES if rule == "CC203" else (rule,)
        if enabled.intersection(produces):
            found = check_gridding(ctx, sorted(enabled)) if rule == "CC203" else check(ctx)
            findings.extend(f for f in found if f.rule in enabled)
    return findings


__all__ = ["CHECKS", "Context", "dropped_positions", "hdc_m2", "reached_runs", "run_checks", "tap_counts"]
