"""`FiniteAxis.everywhere`'s shortcut (`algebra.live.surely_live`, proven when an axis is built) against a
brute-force oracle: per unit, whether some read lands (through `Reads.inside`, the layer's padding mode) on a unit
below that itself sees something, walked unit by unit over random chains and merges of windows (padding-only
windows with padding >= kernel, dilations, causal padding, every padding mode), transposed convs, repeats,
unions and concatenations. The shortcut may only say "every unit sees something" when the oracle does, and the
table-built answer (the shortcut switched off) must equal the oracle."""

from __future__ import annotations

from hypothesis import given, seed, settings, strategies as st

from convcalc.algebra import Field, Reads
from convcalc.algebra.field import concat, merge

BORDERS = ("zeros", "zeros", "zeros", "replicate", "reflect", "circular")


def _oracle_reads(reads: Reads, below: list[bool], n: int) -> list[bool]:
    live = []
    for v in range(n):
        m, rho = divmod(v, reads.period)
        tap = reads.taps[rho]
        seen = False
        if tap is not None:
            start, step, count = tap
            for j in range(count):
                index = reads.inside(start + m * reads.advance + j * step, len(below))
                if index is not None and below[index]:
                    seen = True
                    break
        live.append(seen)
    return live


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
    p = d * (k - 1) if causal else draw(st.integers(0, k + 3))          # padding >= kernel: padding-only units
    hi = 0 if causal else p
    border = draw(st.sampled_from(BORDERS)) if not causal and (p < length or draw(st.booleans())) else "zeros"
    return Reads.window(k, s, p, d, border), (length + p + hi - d * (k - 1) - 1) // s + 1


@st.composite
def graphs(draw):
    """Random 1-D graphs: (field, oracle liveness per unit) pairs, built layer by layer."""
    length = draw(st.integers(1, 12))
    nodes = [(Field.identity(1, [length]), [True] * length)]
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
                nodes.append((merge([field, other], [len(live)]), [a or b for a, b in zip(live, other_live)]))
            elif op == "concat":
                n = len(live) + len(other_live)
                nodes.append((concat([field, other], [len(live), len(other_live)], 0, [n]), live + other_live))
    return nodes


@seed(20)
@settings(max_examples=300, deadline=None, derandomize=True)
@given(graphs())
def test_shortcut_is_sound_and_tables_agree(nodes):
    for field, live in nodes:
        axis = field.axes[0].finite
        assert axis is not None and axis.length == len(live)
        if axis.sure:
            assert all(live), "the shortcut says every unit sees something, the oracle does not"
        assert axis.everywhere() == all(live)
        axis.sure = False                              # the table-built answer
        assert axis.everywhere() == all(live)


def test_shortcut_fires_on_plain_convs():
    """Not a shortcut that never fires: a padded conv stack and a residual merge are proven without tables."""
    field, size = Field.identity(2, [32, 32]), 32
    for k, s, p in [(7, 2, 3), (3, 2, 1), (3, 1, 1)]:
        size = (size + 2 * p - k) // s + 1
        field = field.through_window([k, k], [s, s], [p, p], [size, size])
    joined = merge([field, field.through_window([3, 3], [1, 1], [1, 1], [size, size])], [size, size])
    for axis in joined.axes:
        assert axis.finite.sure and axis.finite._tables is None
        assert axis.finite.everywhere() and axis.finite._tables is None


def test_padding_only_units_of_every_mode():
    """Windows of kernel 1 reading only padding 3 deep on an axis of 2 (beyond what F.pad's reflect allows, which
    the algebra still maps): the oracle decides per mode, the shortcut never claims more than it."""
    for border in ("zeros", "replicate", "reflect", "circular"):
        reads = Reads.window(1, 1, 3, 1, border)
        field = Field.identity(1, [2]).through([reads], [8])
        live = _oracle_reads(reads, [True, True], 8)
        axis = field.axes[0].finite
        assert axis.everywhere() == all(live) and (all(live) or not axis.sure), border
