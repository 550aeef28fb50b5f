"""Hypothesis draws shared by the proof's term tests (`test_proof_hulls_steps`, `test_proof_reduced`): ``count``
random sets over ``n`` positions, each with at least one position marked (a term's sets are never empty)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


def nonempty_rows(draw, count: int, n: int) -> np.ndarray:
    """(count, n) bool rows, random, each with at least one True."""
    rows = np.array(draw(st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=count,
                                  max_size=count)), dtype=bool).reshape(count, n)
    rows[np.arange(count), draw(st.lists(st.integers(0, n - 1), min_size=count, max_size=count))] = True
    return rows
