"""Hulls: per axis the (first, last) positions a mask reaches — what the receptive-field proof measures of each
unit (`convcalc.proof.verify`), of one mask or of many at once, their union and their text."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ..algebra import Field

Hull = Optional[tuple[tuple[int, int], ...]]


def hull_of(mask: np.ndarray) -> Hull:
    """Per axis (first, last) of a boolean mask's true positions, or None when it has none."""
    if not mask.any():
        return None
    hull = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        found = np.flatnonzero(mask.any(axis=other) if other else mask)
        hull.append((int(found[0]), int(found[-1])))
    return tuple(hull)


def hulls_of(masks: np.ndarray) -> list[Hull]:
    """`hull_of` of each row of a boolean (k, *spatial) array, vectorised."""
    if masks.ndim == 1:
        return [None if not m else () for m in masks]
    per_axis = []
    for axis in range(1, masks.ndim):
        other = tuple(a for a in range(1, masks.ndim) if a != axis)
        line = masks.any(axis=other) if other else masks                          # (k, n)
        first = line.argmax(axis=1)
        last = line.shape[1] - 1 - line[:, ::-1].argmax(axis=1)
        per_axis.append((first, last))
    reached = masks.reshape(len(masks), -1).any(axis=1)
    return [tuple((int(f[i]), int(l[i])) for f, l in per_axis) if reached[i] else None for i in range(len(masks))]


def _spatial(field: Field, shape: Sequence[int]) -> tuple[int, ...]:
    """The output's lengths along the field's axes (after a Permute, not its shape's order: `Field.layout`)."""
    return tuple(shape[1:]) if field.standard or field.whole else field.lengths(shape)


def _all_units_hull(field: Field, spatial: Sequence[int]) -> Hull:
    """The hull over every unit's extent (per axis)."""
    if not field.terms:
        per_axis = []
        for axis, n in zip(field.axes, spatial):
            found = [axis.extent(u) for u in range(n)]
            found = [r for r in found if r is not None]
            if not found:
                return None
            per_axis.append((min(r[0] for r in found), max(r[1] for r in found)))
        return tuple(per_axis)
    hulls = [field.extent(unit) for unit in np.ndindex(*spatial)]
    return _union_hulls(hulls)


def _union_hulls(hulls: Iterable[Hull]) -> Hull:
    found = [h for h in hulls if h is not None]
    if not found:
        return None
    return tuple((min(h[a][0] for h in found), max(h[a][1] for h in found)) for a in range(len(found[0])))


def _hull_text(hull: Hull) -> str:
    if hull is None:
        return "nothing"
    return " × ".join(f"[{a}, {b}]" for a, b in hull)


def _extents(rf: Field, units: Sequence[tuple[int, ...]]) -> tuple[Hull, ...]:
    """`Field.extent` of each unit of a field without terms (per axis its axis field's extent; None where an axis's
    is None), each axis's extent read once per coordinate: the units lie on a few lines, so share most of them."""
    axes = rf.axes
    known: list[dict[int, Any]] = [{} for _ in axes]
    found = []
    for unit in units:
        hull = []
        for axis, memo, u in zip(axes, known, unit):
            extent = memo[u] if u in memo else memo.setdefault(u, axis.extent(u))
            if extent is None:
                hull = None
                break
            hull.append(extent)
        found.append(None if hull is None else tuple(hull))
    return tuple(found)


__all__ = ["Hull", "hull_of", "hulls_of"]
