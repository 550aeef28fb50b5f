"""`proof.terms._drop_contained`'s two NumPy paths (every ordered pair of a walk's terms at once, and for walks of a
few terms the pairs k places apart, `_drop_contained_near`) against the rule written out, on random sets
(test_proof_terms_join's cases: up to 80 pairs over 7 walks, so both few and many terms per walk)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings

sys.path.insert(0, str(Path(__file__).parent))
from test_proof_terms_join import _by_the_rule, pairs  # noqa: E402

from convcalc.proof import terms as T  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_pairs_k_apart_and_every_pair_drop_exactly_the_contained_terms(case):
    walks, terms, bits = case
    expected = _by_the_rule(walks.tolist(), terms.tolist(), bits)
    saved = T.SMALL_JOIN, T.FEW_TERMS
    try:
        T.SMALL_JOIN = -1
        for few in (0, 10 ** 6):             # every ordered pair; pairs k apart (however many terms per walk)
            T.FEW_TERMS = few
            found = T._drop_contained(walks, terms, bits)
            assert (found[0].tolist(), found[1].tolist()) == expected, few
    finally:
        T.SMALL_JOIN, T.FEW_TERMS = saved
