"""Random chains of axis reads for the axis-algebra tests (`test_axis_copied`, `test_finite_short_gaps`): windows
(with a padding mode), transposed windows, repeats, adaptive bins, residual merges and copies, stepped one at a time
on a one-axis field, each skipped where the length cannot take it."""

from __future__ import annotations

from hypothesis import strategies as st

from convcalc.algebra.field import Field, merge
from convcalc.algebra.reads import Reads


def steps(borders: tuple[str, ...] = ("zeros",), copies: bool = True):
    """A strategy for one step: ('window', k, s, p, d, border), ('transposed', k, s, p, d), ('repeat', r),
    ('bins', f), ('merge', half-kernel, dilation) and, with ``copies``, ('copy',)."""
    kinds = [
        st.tuples(st.just("window"), st.integers(1, 5), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3),
                  st.sampled_from(borders)),
        st.tuples(st.just("transposed"), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2)),
        st.tuples(st.just("repeat"), st.integers(2, 3)),
        st.tuples(st.just("bins"), st.integers(1, 4)),
        st.tuples(st.just("merge"), st.integers(1, 4), st.integers(1, 3)),
    ]
    return st.one_of(*kinds, st.tuples(st.just("copy"))) if copies else st.one_of(*kinds)


def apply(field: Field, n: int, kind: str, *args) -> tuple[Field, int] | None:
    """The field and length after one step; None where the length cannot take it (it is skipped)."""
    if kind == "window":
        k, s, p, d, border = args
        p = min(p, (k - 1) * d)
        out = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if out < 1 or border != "zeros" and p >= n:
            return None
        return field.through([Reads.window(k, s, p, d, border)], [out]), out
    if kind == "transposed":
        k, s, p, d = args
        p = min(p, (k - 1) * d)
        out = (n - 1) * s - 2 * p + d * (k - 1) + 1
        return None if out < 1 or out > 400 else (field.through([Reads.transposed(k, s, p, d)], [out]), out)
    if kind == "repeat":
        return None if n * args[0] > 400 else (field.through([Reads.repeat(args[0])], [n * args[0]]), n * args[0])
    if kind == "bins":
        out = max(1, n // args[0])
        return field.through([Reads.bins(n, out)], [out]), out
    if kind == "merge":                           # a residual branch: a window of the same output length
        k, d = 2 * args[0] - 1, args[1]
        branch = field.through([Reads.window(k, 1, (k - 1) // 2 * d, d)], [n])
        return merge([field, branch], [n]), n
    return field.through([Reads.identity()], [n]), n
