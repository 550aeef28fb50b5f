"""Border tables one `FiniteAxis` takes from another instead of working them out (`FiniteAxis._tables_now`):

* from an equal axis whose tables are worked out: same rule, length and reads, same periodic field and parents
  of equal value (the two axes of a square input, layer by layer). `TWINS` keeps such axes by their value, weakly
  (an entry lasts as long as its axis); a parent enters the value by its token, one number per value, never
  reused;
* from the layer below, where each unit reads the same unit there and nothing else (a 1x1 conv): every unit's
  extent is that unit's below.
"""

from __future__ import annotations

import weakref
from itertools import count
from typing import Any, Optional

TWINS: "weakref.WeakValueDictionary[tuple, Any]" = weakref.WeakValueDictionary()
_TOKENS = count()


def value(axis: Any) -> Optional[tuple]:
    """All that an axis's extents depend on: its rule, length and reads, its periodic field and its parents' values
    (by their tokens, set with their tables); None where a parent has none."""
    tokens = tuple(parent._token for parent in axis.parents)
    field = axis.field
    if None in tokens or field is None:
        return None
    return axis.rule, axis.length, axis.reads, field.period, field.advance, field.table, tokens


def copies_parent(axis: Any) -> bool:
    """Whether each unit reads the same unit of the layer below and nothing else (a 1x1 conv with stride 1, no
    padding, the same length) with the same border stretches: then every unit's extent is that unit's below."""
    reads = axis.rule == "reads" and axis.reads
    if not reads or reads.period != 1 or reads.advance != 1:
        return False
    parent = axis.parents[0]
    return reads.taps.values == ((0, 1, 1),) and parent.length == axis.length and axis.gaps == parent.gaps


def set_tables(axis: Any) -> None:
    """``axis._tables`` and ``axis._token``, its parents' set already: an equal axis's, its parent's (a copy), or
    worked out (`FiniteAxis._stretch`)."""
    key = value(axis)
    twin = TWINS.get(key) if key is not None else None
    if twin is not None and twin._tables is not None and twin.gaps == axis.gaps:      # the same extents
        axis._tables, axis._token = twin._tables, twin._token
        return
    if axis.rule == "broadcast":
        axis._tables = []
    elif copies_parent(axis):
        axis._tables = axis.parents[0]._tables
    else:
        axis._tables = [axis._stretch(a, b) for a, b in axis.gaps]
    axis._token = next(_TOKENS)
    if key is not None:
        TWINS[key] = axis
