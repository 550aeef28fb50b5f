"""The gridding rules (CC203 common factor, CC204 hybrid dilated convolution, CC205 exact holes) on chains of
stride-1 sliding windows joined by pointwise layers (Wang et al. 2018, "Understanding Convolution for Semantic
Segmentation")."""

from __future__ import annotations

from math import gcd
from typing import Iterable, Iterator, Optional, Sequence

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
    """Maximal chains of stride-1 sliding windows joined only by pointwise layers (one resolution).

    Each window links to the window before it (not a copy of its chain), and the walk back through pointwise
    layers is remembered, so finding the chains is linear in the layers (copying made a 10,000-layer stack
    quadratic in time and memory)."""
    before: dict[str, Optional[str]] = {}              # window -> the window before it in its chain (None: first)
    geometry_of: dict[str, tuple[WindowAxis, ...]] = {}
    behind: dict[str, str] = {}                        # a layer -> the first non-pointwise layer at or before it
    continued: set[str] = set()
    for node in ctx.summary.graph.nodes:
        geometry = stride_one_window(ctx, node)
        if geometry is None:
            continue
        source = _behind_pointwise(ctx, node.inputs[0], before, behind)
        if source in before:
            continued.add(source)
        before[node.name] = source if source in before else None
        geometry_of[node.name] = geometry
    chains = []
    for name in before:
        if name in continued:
            continue
        chain, link = [], name
        while link is not None:
            chain.append((ctx.nodes[link], geometry_of[link]))
            link = before[link]
        chains.append(chain[::-1])
    return chains


def _behind_pointwise(ctx: Context, source: str, windows: dict, behind: dict[str, str]) -> str:
    """``source``, or the first layer before it that is a window or not pointwise (walking single inputs)."""
    walked = []
    while source != INPUT and source not in windows and source not in behind and is_pointwise(ctx, ctx.nodes[source]):
        walked.append(source)
        source = ctx.nodes[source].inputs[0]
    source = behind.get(source, source)
    for name in walked:
        behind[name] = source
    return source


def hdc_m2(rates: Sequence[int]) -> int:
    """Wang et al. 2018: M_n = r_n, M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i); returns M_2."""
    m = rates[-1]
    for r in reversed(rates[1:-1]):
        m = max(m - 2 * r, m - 2 * (m - r), r)
    return m


# the most run-steps (runs visited while adding a layer's taps) one spec's gridding check may take: a dilated stack
# whose reached offsets stay this scattered is not counted (CC205 is then not reported for it)
MAX_RUN_STEPS = 2_000_000


class TooScattered(Exception):
    """The reached offsets need more than the run-step budget to count."""


class RunBudget:
    def __init__(self, steps: int = MAX_RUN_STEPS):
        self.left = steps

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise TooScattered


def reached_runs(windows: Iterable[WindowAxis], stride: int = 1,
                 budget: Optional[RunBudget] = None) -> list[tuple[int, int]]:
    """The offsets a unit reaches through the windows, as sorted maximal runs ``(first, last)``: the Minkowski sum
    of each layer's taps {0, d, ..., (k-1) d} times the effective stride before it.

    The sum does not depend on the order, so the layers are grouped by step s (their taps together are
    s*{0..K}, K the sum of their k-1), and s*{0..K} is a sum of O(log K) pairs {0, s*c}: each adds a shifted copy
    of the runs. The cost is the number of runs times the number of distinct steps (and log K), never the span,
    which grows with the dilations (a bit per offset took minutes at dilation 10^6). Raises `TooScattered` when
    ``budget`` runs out."""
    counts: dict[int, int] = {}
    for window in windows:
        step = window.dilation * stride
        if window.kernel > 1:
            counts[step] = counts.get(step, 0) + window.kernel - 1
        stride *= window.stride
    runs = [(0, 0)]
    for step in sorted(counts):
        total, covered = counts[step], 0             # add step*{0..total} as pairs {0, step*c}: c = 1, 2, 4, ...
        while covered < total:
            shift = min(covered + 1, total - covered)
            if budget is not None:
                budget.spend(2 * len(runs))
            runs = _union_shifted(runs, shift * step)
            covered += shift
    return runs


def _union_shifted(runs: list[tuple[int, int]], shift: int) -> list[tuple[int, int]]:
    """The runs together with the runs shifted by ``shift`` (> 0), merged into sorted maximal runs."""
    if len(runs) == 1 and runs[0][1] + 1 >= runs[0][0] + shift:       # one run, overlapping its copy
        return [(runs[0][0], runs[0][1] + shift)]
    moved = [(a + shift, b + shift) for a, b in runs]
    merged: list[tuple[int, int]] = []
    i = j = 0
    while i < len(runs) or j < len(moved):
        if j == len(moved) or (i < len(runs) and runs[i][0] <= moved[j][0]):
            a, b = runs[i]
            i += 1
        else:
            a, b = moved[j]
            j += 1
        if merged and a <= merged[-1][1] + 1:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def holes_of(runs: Sequence[tuple[int, int]], first: int = 5) -> tuple[int, list[int]]:
    """How many offsets between the first and the last run no run holds, and the ``first`` smallest of them."""
    count, shown = 0, []
    for (_, end), (start, _) in zip(runs, runs[1:]):
        count += start - end - 1
        shown.extend(range(end + 1, min(start, end + 1 + first - len(shown))))
    return count, shown


# the gridding rules, most specific first: a common factor names the cause (and the holes it leaves: every position
# off the grid), the HDC condition a sufficient test, the holes the exact consequence
GRIDDING_ORDER = ("CC203", "CC204", "CC205")
ASPECTS = {"CC203": "common factor", "CC204": "HDC", "CC205": "holes"}


def check_gridding(ctx: Context, enabled: Sequence[str] = GRIDDING_ORDER) -> Iterator[Finding]:
    """One finding per dilated stack, whatever number of the three rules it fails: its rule is the most specific
    one enabled that applies (`GRIDDING_ORDER`), and its message names the other rules' aspects after the main one."""
    rules = [rule for rule in GRIDDING_ORDER if rule in enabled]
    budget = RunBudget()
    for chain in window_chains(ctx):
        dims = len(chain[0][1])
        if any(len(geometry) != dims for _, geometry in chain):
            continue
        last = chain[-1][0]
        texts: dict[str, list[tuple[int, str]]] = {rule: [] for rule in GRIDDING_ORDER}
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
                texts["CC203"].append((axis, f"rates {', '.join(map(str, rates))} of {names} share the factor"
                                             f" {common}: a unit sees only input positions {common} apart"))
            m2, kernel = hdc_m2(rates), spread[0][1].kernel
            if m2 > kernel:
                texts["CC204"].append((axis, f"rates {', '.join(map(str, rates))} of {names} give M_2 = {m2} >"
                                             f" kernel {kernel} (Wang et al. 2018)"))
            try:
                runs = reached_runs((w for _, w in windows), budget=budget)
            except TooScattered:
                continue                    # too scattered to count within the budget: not reported
            span = runs[-1][1] + 1
            count, holes = holes_of(runs)
            if count:
                shown = ", ".join(map(str, holes)) + (", ..." if count > len(holes) else "")
                first = chain[0][0].name
                texts["CC205"].append((axis, f"a unit reaches {span - count} of the {span} positions its field"
                                             f" spans in the input of '{first}': {count} holes, at offsets {shown}"))
        found = [rule for rule in rules if texts[rule]]
        if not found:
            continue
        main, others = found[0], found[1:]
        message = f"{layer_label(last)}, dilated stack: {grouped(dims, texts[main])}"
        if others:
            message += "; also " + "; ".join(f"{rule} ({ASPECTS[rule]}): {grouped(dims, _short(texts[rule], names))}"
                                             for rule in others for names in [_names(chain)])
        yield ctx.finding(main, message, last)


def _names(chain) -> str:
    return ", ".join(f"'{node.name}'" for node, geometry in chain if any(w.kernel > 1 for w in geometry))


def _short(texts: list[tuple[int, str]], names: str) -> list[tuple[int, str]]:
    """A secondary aspect's texts without the layer names the main one already gave."""
    return [(axis, text.replace(f" of {names} ", " ")) for axis, text in texts]
