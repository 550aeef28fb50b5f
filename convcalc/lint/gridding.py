"""The gridding rules (CC203 common factor, CC204 hybrid dilated convolution, CC205 exact holes) on chains of
stride-1 sliding windows joined by pointwise layers (Wang et al. 2018, "Understanding Convolution for Semantic
Segmentation")."""

from __future__ import annotations

from math import gcd
from typing import Iterable, Iterator, Sequence

from ..spec.graph import INPUT, Node
from ..layers.base import WindowAxis
from .context import Context, grouped, layer_label
from .model import Finding


def is_pointwise(ctx: Context, node: Node) -> bool:
    """One input, the same spatial size, and the receptive field passes unchanged: each output position depends on
    the same input position only (activations, norms, 1x1 convs without padding)."""
    if len(node.inputs) != 1:
        return False
    before, after = ctx.shapes[node.inputs[0]], ctx.shapes[node.name]
    field_in, field_out = ctx.fields[node.inputs[0]], ctx.fields[node.name]
    return before[1:] == after[1:] and field_in.whole == field_out.whole and field_in.axes == field_out.axes


def stride_one_window(ctx: Context, node: Node) -> tuple[WindowAxis, ...] | None:
    geometry = ctx.window(node)
    if geometry and len(node.inputs) == 1 and all(w.stride == 1 for w in geometry):
        return geometry
    return None


def window_chains(ctx: Context) -> list[list[tuple[Node, tuple[WindowAxis, ...]]]]:
    """Maximal chains of stride-1 sliding windows joined only by pointwise layers (one resolution)."""
    chain_of: dict[str, list[tuple[Node, tuple[WindowAxis, ...]]]] = {}
    continued: set[str] = set()
    for node in ctx.summary.graph.nodes:
        geometry = stride_one_window(ctx, node)
        if geometry is None:
            continue
        source = node.inputs[0]
        while source != INPUT and source not in chain_of and is_pointwise(ctx, ctx.nodes[source]):
            source = ctx.nodes[source].inputs[0]
        previous = chain_of.get(source, [])
        if previous:
            continued.add(source)
        chain_of[node.name] = [*previous, (node, geometry)]
    return [chain for name, chain in chain_of.items() if name not in continued]


def hdc_m2(rates: Sequence[int]) -> int:
    """Wang et al. 2018: M_n = r_n, M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i); returns M_2."""
    m = rates[-1]
    for r in reversed(rates[1:-1]):
        m = max(m - 2 * r, m - 2 * (m - r), r)
    return m


def reached_offsets(windows: Iterable[WindowAxis], stride: int = 1) -> int:
    """The offsets (a bit set) a unit reaches through the windows: the Minkowski sum of each layer's taps
    {0, d, ..., (k-1) d} times the effective stride before it."""
    offsets = 1
    for window in windows:
        step = window.dilation * stride
        total = 0
        for m in range(window.kernel):
            total |= offsets << (m * step)
        offsets = total
        stride *= window.stride
    return offsets


def check_gridding(ctx: Context) -> Iterator[Finding]:
    for chain in window_chains(ctx):
        dims = len(chain[0][1])
        if any(len(geometry) != dims for _, geometry in chain):
            continue
        last = chain[-1][0]
        factor_texts, hdc_texts, hole_texts = [], [], []
        for axis in range(dims):
            windows = [(node, geometry[axis]) for node, geometry in chain]
            spread = [(node, w) for node, w in windows if w.kernel > 1]
            if sum(1 for _, w in spread if w.dilation > 1) < 2:
                continue
            rates = [w.dilation for _, w in spread]
            names = ", ".join(f"'{node.name}'" for node, _ in spread)
            common = 0
            for r in rates:
                common = gcd(common, r)
            if common > 1:
                factor_texts.append((axis, f"rates {', '.join(map(str, rates))} of {names} share the factor {common}:"
                                           f" a unit sees only input positions {common} apart"))
            m2, kernel = hdc_m2(rates), spread[0][1].kernel
            if m2 > kernel:
                hdc_texts.append((axis, f"rates {', '.join(map(str, rates))} of {names} give M_2 = {m2} > kernel"
                                        f" {kernel} (Wang et al. 2018)"))
            offsets = reached_offsets(w for _, w in windows)
            span = offsets.bit_length()
            holes = [o for o in range(span) if not offsets >> o & 1]
            if holes:
                shown = ", ".join(map(str, holes[:5])) + (", ..." if len(holes) > 5 else "")
                first = chain[0][0].name
                hole_texts.append((axis, f"a unit reaches {span - len(holes)} of the {span} positions its field spans"
                                         f" in the input of '{first}': {len(holes)} holes, at offsets {shown}"))
        label = f"{layer_label(last)}, dilated stack"
        if factor_texts:
            yield ctx.finding("CC203", f"{label}: {grouped(dims, factor_texts)}", last)
        if hdc_texts:
            yield ctx.finding("CC204", f"{label}: {grouped(dims, hdc_texts)}", last)
        if hole_texts:
            yield ctx.finding("CC205", f"{label}: {grouped(dims, hole_texts)}", last)
