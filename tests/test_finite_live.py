"""`FiniteAxis.everywhere`'s and `reach`'s shortcuts (`algebra.live.surely_live`, `surely_full`, proven when an
axis is built) against a brute-force oracle: per unit, the hull of the input units reached by the reads that land
(through `Reads.inside`, the layer's padding mode) on units below, walked unit by unit over random chains and
merges of windows (padding-only windows with padding >= kernel, crops, asymmetric and causal padding, dilations,
every padding mode), transposed convs, repeats, unions and concatenations. The shortcuts may only claim what the
oracle shows, and the table-built answers (the shortcuts switched off) must equal the oracle."""

from __future__ import annotations

from hypothesis import given, seed, settings, strategies as st

from convcalc.algebra import Field, Reads
from convcalc.algebra.field import concat, merge

BORDERS = ("zeros", "zeros", "zeros", "replicate", "reflect", "circular")


def _hull(regions):
    found = [r for r in regions if r is not None]
    return (min(r[0] for r in found), max(r[1] for r in found)) if found else None


def _oracle_reads(reads: Reads, below: list, n: int) -> list:
    """Per unit, the hull of the network-input units it reaches (None: nothing), from ``below``'s (True: live)."""
    below = [((0, 0) if r is True else None) if isinstance(r, bool) else r for r in below]
    hulls = []
    for v in range(n):
        m, rho = divmod(v, reads.period)
        tap = reads.taps[rho]
        reached = []
        if tap is not None:
            start, step, count = tap
            for j in range(count):
                index = reads.inside(start + m * reads.advance + j * step, len(below))
                if index is not None:
                    reached.append(below[index])
        hulls.append(_hull(reached))
    return hulls


@st.composite
def layer(draw, length: int):
    """A layer's reads and output length on an input of ``length`` (None: no legal output)."""
    kind = draw(st.sampled_from(["window", "window", "window", "transposed", "repeat"]))
    if kind == "repeat":
        r = draw(st.integers(1, 3))
        return Reads.repeat(r), length * r
    k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if kind == "transposed":
        p = draw(st.integers(0, 3))
        return Reads.transposed(k, s, p, d), (length - 1) * s - 2 * p + d * (k - 1) + 1
    causal = draw(st.booleans())
    p = d * (k - 1) if causal else draw(st.integers(-2, k + 3))     # padding >= kernel: padding-only units; < 0: a crop
    hi = 0 if causal else draw(st.sampled_from([p, p, max(p, 0), draw(st.integers(-2, k + 3))]))
    padded = not causal and p >= 0 and (p < length or draw(st.booleans()))    # F.pad's modes need p < length
    border = draw(st.sampled_from(BORDERS)) if padded else "zeros"
    return Reads.window(k, s, p, d, border), (length + p + hi - d * (k - 1) - 1) // s + 1


@st.composite
def graphs(draw):
    """Random 1-D graphs: (field, oracle hull per unit) pairs, built layer by layer (and the input's length)."""
    length = draw(st.integers(1, 12))
    nodes = [(Field.identity(1, [length]), [(u, u) for u in range(length)])]
    for _ in range(draw(st.integers(1, 6))):
        field, live = nodes[draw(st.integers(0, len(nodes) - 1))]
        op = draw(st.sampled_from(["layer", "layer", "layer", "merge", "concat"]))
        if op == "layer":
            reads, n = draw(layer(len(live)))
            if not 1 <= n <= 64:
                continue
            nodes.append((field.through([reads], [n]), _oracle_reads(reads, live, n)))
        else:
            other, other_live = nodes[draw(st.integers(0, len(nodes) - 1))]
            if op == "merge" and len(other_live) == len(live):
                nodes.append((merge([field, other], [len(live)]), [_hull(pair) for pair in zip(live, other_live)]))
            elif op == "concat":
                n = len(live) + len(other_live)
                nodes.append((concat([field, other], [len(live), len(other_live)], 0, [n]), live + other_live))
    return nodes, length


@seed(20)
@settings(max_examples=300, deadline=None, derandomize=True)
@given(graphs())
def test_shortcut_is_sound_and_tables_agree(graph):
    nodes, length = graph
    for field, hulls in nodes:
        axis = field.axes[0].finite
        live = [h is not None for h in hulls]
        reach = _hull(hulls)
        assert axis is not None and axis.length == len(live)
        if axis.sure:
            assert all(live), "the shortcut says every unit sees something, the oracle does not"
        if axis.full:
            assert reach == (0, length - 1), "the shortcut says the units reach the whole input, the oracle does not"
        assert axis.everywhere() == all(live) and axis.reach() == reach
        axis.sure = axis.full = False                  # the table-built answers
        assert axis.everywhere() == all(live) and axis.reach() == reach


def test_shortcut_fires_on_plain_convs():
    """Not a shortcut that never fires: a padded conv stack and a residual merge are proven without tables."""
    field, size = Field.identity(2, [32, 32]), 32
    for k, s, p in [(7, 2, 3), (3, 2, 1), (3, 1, 1)]:
        size = (size + 2 * p - k) // s + 1
        field = field.through_window([k, k], [s, s], [p, p], [size, size])
    joined = merge([field, field.through_window([3, 3], [1, 1], [1, 1], [size, size])], [size, size])
    for axis in joined.axes:
        assert axis.finite.sure and axis.finite.full and axis.finite._tables is None
        assert axis.finite.everywhere() and axis.finite.reach() == (0, 31) and axis.finite._tables is None


def test_padding_only_units_of_every_mode():
    """Windows of kernel 1 reading only padding 3 deep on an axis of 2 (beyond what F.pad's reflect allows, which
    the algebra still maps): the oracle decides per mode, the shortcut never claims more than it."""
    for border in ("zeros", "replicate", "reflect", "circular"):
        reads = Reads.window(1, 1, 3, 1, border)
        field = Field.identity(1, [2]).through([reads], [8])
        live = [h is not None for h in _oracle_reads(reads, [(0, 0), (1, 1)], 8)]
        axis = field.axes[0].finite
        assert axis.everywhere() == all(live) and (all(live) or not axis.sure), border
