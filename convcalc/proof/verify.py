"""Measured proof of the receptive fields: the analysis (`convcalc.algebra`) against exact dependency masks
(`convcalc.proof.dependency`), layer by layer.

Per checked layer a few output units are chosen from the analysed field (the choice only decides where to look;
what is compared is measured independently):

* per spatial axis, a run of consecutive units covering one period of the field and the next unit (``q + 1``
  for period ``q``, at most ``budget``), on a line through an anchor unit near the middle, preferring runs whose
  regions lie inside the input (then neither end is clipped by a border), else runs whose first (or last) input
  index is not clipped;
* the first and the last unit of the output (its corners), where borders clip, mirror or wrap the fields.

Every chosen unit's measured hull (per axis the first and last input index its mask reaches, or nothing) must
equal the analysis's exact `Field.extent` (borders, padding modes and every layer's length included). From the
run on each axis the summary numbers are measured where the input allows, as `convcalc.algebra` defines them:

* size and size_min: the largest and smallest hull over one period of units whose regions lie inside the input
  and are read whole (no border further up cuts them; the line's units read something on the other axes);
* stride: (first(u + q) - first(u)) / q on units whose first index is neither clipped nor moved by a wrapped or
  mirrored border (else the same with the last); not measured when the axis holds less than one period;
* padding: P = (size - 1)/2 - c, c the mean over the period of (centre of unit u's hull - u*stride), so that an
  even field's unit u sees exactly [u*S - P, u*S - P + size - 1] (for uneven fields u*S - P + (size-1)/2 is the
  mean centre line).

A number the input does not allow to measure (a field wider than the input, a period longer than the budget) is
None in ``measured`` and is not compared; the hulls still are. Where a merge keeps separable terms
(`Field.terms`) the per-axis numbers are not compared either (no single line describes them); the hulls are.

'whole' layers (Linear, Flatten, global pooling, and merges with them): every checked unit's hull must be the hull of
everything their inputs see by the analysis (over all units of the nearest non-whole layers before them, or the
input itself), per axis; for a reshape that keeps spatial axes (`Field.reshaped`: its units read single positions
in no window order) the hull of all its units together. That is the whole input unless some input rows or columns reach no unit at all (a VALID
conv or pool whose stride does not divide the input drops the last ones); the detail then says so, since the
analysis labels such a field 'whole input' all the same.

A layer with one input whose field is its input's (the same per-axis fields: activations, normalisation) and
whose dependency step maps the chosen units' masks to themselves (one step of the walk, checked) has exactly its
input's dependencies: its check is its input's, without another walk; so has a whole layer after a whole layer
with the same units and the same reach (an activation after a global pooling).

The units of every other checked layer are walked together, in reverse sweeps over the graph
(`Dependencies.propagate_hulls`: unions of per-dim products stepped through each layer's per-dim relations,
`Layer.support_factors`), one sweep unless layers without such relations step whole masks: then as many walks as
SWEEP_BYTES of one-channel masks holds at the widest of those (a sweep whose waiting masks outgrow it is walked
again in halves).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .dependency import Dependencies, SweepTooLarge, summary_of
from .steps import step
from .terms import stepped
from ..execution.memory import SWEEP_BYTES
from ..algebra.shapes import prod
from ..errors import ConvcalcError, did_you_mean
from ..spec.graph import INPUT
from ..layers.support import support_step
from ..algebra import Field  # noqa: F401
from .measure import (SCAN, Number, _agrees, _choose_run, _interior, _measure_axis, _nearest_first,  # noqa: F401
                      _predicted, _text)
from .hulls import (Hull, _all_units_hull, _extents, _hull_text, _spatial, _union_hulls, hull_of,  # noqa: F401
                    hulls_of)

BUDGET = 24


@dataclass(frozen=True)
class AxisCheck:
    """One spatial axis: ``predicted`` and ``measured`` are (size, size_min, stride, padding); a measured entry is
    None where this input does not allow to measure it."""

    axis: int
    predicted: tuple[Number, ...]
    measured: tuple[Number, ...]
    ok: bool


@dataclass(frozen=True)
class FieldCheck:
    """One layer's receptive field against its measured dependencies.

    ``units``: the output units measured; ``hulls``/``expected``: per unit the measured hull and the analysis's
    extent (per axis (first, last), or None: no dependency). ``via``: the layer whose check this one shares
    (the same field and an identity dependency step)."""

    layer: str
    units: tuple[tuple[int, ...], ...]
    axes: tuple[AxisCheck, ...]
    whole: bool
    ok: bool
    detail: str
    type: str = ""
    hulls: tuple[Hull, ...] = ()
    expected: tuple[Hull, ...] = ()
    via: str | None = None


# --------------------------------------------------------------------------- the checker

class _Verifier:
    def __init__(self, source: Any, budget: int):
        self.summary = summary_of(source)
        self.dependencies = Dependencies(self.summary)
        self.budget = budget
        self.rows = {row.name: row for row in self.summary.layers}
        self.input_spatial = tuple(self.summary.input_shape[1:])
        self.whole_hulls: dict[str, Hull] = {}
        self.planned: dict[str, _Plan] = {}
        self.chosen: dict[tuple, tuple] = {}       # (the axis's periodic regions, out, length) -> its run: `_run`
        self.predictions: dict[tuple, tuple] = {}  # an axis's value, or its id -> (axis, `_predicted`): `_predicted_of`

    # ---- choosing units
    def units_for(self, name: str) -> tuple[list[tuple[int, ...]], dict[int, list[int]]]:
        row = self.rows[name]
        rf, spatial = row.rf, _spatial(row.rf, row.output_shape)
        runs = {a: self._run(axis, spatial[a], self.input_spatial[a]) for a, axis in enumerate(rf.axes)}
        # an anchor that reads some input along every axis (else every unit on its lines reads nothing)
        middle_out = {a: islice(_nearest_first(n, n - 1), SCAN) for a, n in enumerate(spatial)}
        anchor = tuple(next((u for u in chain(runs[a], middle_out[a]) if rf.axes[a].extent(u) is not None),
                            next((u for u in runs[a] if rf.axes[a].region(u) is not None), runs[a][0]))
                       for a in range(len(spatial)))
        units: list[tuple[int, ...]] = [anchor]
        for a, run in runs.items():
            for u in run:
                units.append((*anchor[:a], u, *anchor[a + 1:]))
        units += [(0,) * len(spatial), tuple(n - 1 for n in spatial)]
        unique = list(dict.fromkeys(units))
        return unique, runs

    def _units_of_input(self, name: str, rf: Any, spatial: tuple[int, ...]
                        ) -> tuple[list[tuple[int, ...]], dict[int, list[int]]] | None:
        """`units_for`'s answer without choosing: its one input's units and runs where this layer keeps that
        input's field (the same axis objects and terms) on as many units per axis (an activation, a norm, a shuffle,
        a split): `units_for` reads only the field's axes, their lengths and the input's, so it would choose the
        same; None where not."""
        inputs = self.dependencies.nodes[name].inputs
        if len(inputs) != 1:
            return None
        theirs = self.planned.get(inputs[0])
        if theirs is None or theirs.whole:
            return None
        source = self.rows[inputs[0]]
        field = source.rf
        if field.whole or len(field.axes) != len(rf.axes) or field.terms is not rf.terms and field.terms != rf.terms \
                or not all(a is b for a, b in zip(rf.axes, field.axes)) or \
                _spatial(field, source.output_shape) != spatial:
            return None
        return list(theirs.units), {a: list(run) for a, run in theirs.runs.items()}

    def _predicted_of(self, axis: Any) -> tuple:
        """`_predicted` once per axis field: per value of its table and stride, which are all its numbers read
        (`AxisField._summary_runs`) unless the table is cut (then they read the finite axis: once per axis object,
        kept with it, so its id stays its own)."""
        key = (axis.period, axis.advance, axis.table, axis.stride) if not axis.cut else (id(axis),)
        found = self.predictions.get(key)
        if found is None:
            found = self.predictions[key] = (axis, _predicted(axis))
        return found[1]

    def _run(self, axis: Any, out: int, length: int) -> list[int]:
        """`_choose_run` once per periodic field: it reads only the field's regions (`AxisField.region`: its period,
        advance and table), so axes equal in those (a layer keeping its input's field, the two axes of a square
        input) share their run."""
        table = axis.table
        key = (axis.period, axis.advance, table.size, table.starts, table.values, out, length)
        found = self.chosen.get(key)
        if found is None:
            found = self.chosen[key] = tuple(_choose_run(axis, out, length, self.budget))
        return list(found)

    # ---- one layer: what to walk (plan), then the check from the measured masks (judge)
    def plan(self, name: str) -> _Plan | FieldCheck | None:
        """The units and seeds of ``name``'s check; a finished check where nothing is walked (not a spatial field,
        or a layer whose check is its input's, `_shared`); None: nothing to check (no spatial input)."""
        row = self.rows[name]
        if not self.input_spatial:
            return None
        rf, spatial = row.rf, _spatial(row.rf, row.output_shape)
        if rf.whole:
            plan = self._plan_whole(name)
            source = self._shared_whole(plan)
            if source is not None:
                plan = self.planned[name] = _Plan(name, plan.units, {}, True, via=source)
            return plan
        if len(rf.axes) != len(spatial) or len(spatial) != len(self.input_spatial):
            return FieldCheck(name, (), (), False, True, "not a spatial field of the input (not measured)", row.type)
        units, runs = self._units_of_input(name, rf, spatial) or self.units_for(name)
        # units along the field's axes, wherever a Permute put them among the dims
        positions = None if rf.standard else tuple(rf.position(unit, row.output_shape) for unit in units)
        plan = _Plan(name, units, runs, False, positions)
        source = self._shared(plan)
        if source is not None:
            plan = _Plan(name, units, runs, False, positions, via=source)
        self.planned[name] = plan
        return plan

    def seeds(self, plan: _Plan) -> np.ndarray:
        """The seed masks of a planned layer's units (`Dependencies.seeds`, or `seeds_at` after a Permute)."""
        if plan.positions is not None:
            return self.dependencies.seeds_at(plan.layer, plan.positions)
        return self.dependencies.seeds(plan.layer, plan.units if plan.units or not plan.whole else None)

    def seed_terms(self, plan: _Plan):
        """The seeds of `seeds` as terms (`Dependencies.seed_terms`): per unit its position, every channel."""
        return self.dependencies.seed_terms(plan.layer, self._positions(plan))

    def _positions(self, plan: _Plan) -> Sequence[tuple[Optional[int], ...]]:
        """Per seed, its position per batchless dim of the output (None: every index along it)."""
        rank = len(self.dependencies.shapes[plan.layer])
        if plan.positions is not None:
            return plan.positions
        if rank < 2 or (plan.whole and not plan.units):
            return [(None,) * rank]
        return [(None, *unit) for unit in plan.units]

    def judge(self, plan: _Plan, hulls: tuple[Hull, ...]) -> FieldCheck:
        """The check of a planned layer from its units' measured hulls."""
        if plan.whole:
            return self._judge_whole(plan, hulls)
        name, units, runs = plan.layer, plan.units, plan.runs
        row = self.rows[name]
        rf = row.rf
        separable = not rf.terms
        expected = _extents(rf, units) if separable else tuple(rf.extent(unit) for unit in units)
        axes = []
        position = {unit: i for i, unit in reversed(list(enumerate(units)))} if separable else {}  # (first index)
        for a, axis in enumerate(rf.axes):
            predicted = self._predicted_of(axis)
            if separable:
                line = [position[(*units[0][:a], u, *units[0][a + 1:])] for u in runs[a]]
                measured = _measure_axis(axis, runs[a], [None if hulls[i] is None else hulls[i][a] for i in line],
                                         self.input_spatial[a])
            else:
                measured = (None,) * 4
            axes.append(AxisCheck(a, predicted, measured, _agrees(predicted, measured)))
        wrong = [(unit, h, e) for unit, h, e in zip(units, hulls, expected) if h != e]
        ok = not wrong and all(axis.ok for axis in axes)
        if wrong:
            unit, h, e = wrong[0]
            detail = (f"unit {list(unit)} depends on {_hull_text(h)}, the analysis says {_hull_text(e)}"
                      + (f" (and {len(wrong) - 1} more units differ)" if len(wrong) > 1 else ""))
        elif not ok:
            bad = next(axis for axis in axes if not axis.ok)
            detail = (f"axis {bad.axis}: measured (size, size_min, stride, padding) "
                      f"({', '.join(map(_text, bad.measured))}), predicted ({', '.join(map(_text, bad.predicted))})")
        else:
            detail = f"{len(units)} units: hulls = extents"
            if not separable:
                detail += " (separable terms: per-axis numbers not compared)"
        return FieldCheck(name, tuple(units), tuple(axes), False, ok, detail, row.type, hulls, expected)

    def _shared(self, plan: _Plan) -> Optional[str]:
        """The layer whose check is this one's (its input's, or the layer that one shares): this layer has its
        input's field (the same axis objects, or axes that judge alike: `_alike`), the same units and its
        dependency step is the identity on their masks (then its masks are its input's, exactly); None when not."""
        name = plan.layer
        node = self.dependencies.nodes[name]
        if len(node.inputs) != 1 or node.inputs[0] not in self.planned:
            return None
        source = node.inputs[0]
        shapes = self.dependencies.shapes
        theirs_planned = self.planned[source]
        same_shape = (shapes[name][1:] == shapes[source][1:] if plan.positions is None
                      else shapes[name] == shapes[source])
        if not same_shape or theirs_planned.units != plan.units or theirs_planned.positions != plan.positions:
            return None                                    # (the cheap tests first: `_alike` reads extents)
        factors = self.dependencies.factors(name)
        if factors is not None and factors[0].sources is None and shapes[name][0] != shapes[source][0]:
            return None                  # more or fewer channels: no identity, and the channels' step cannot be one
        mine, theirs = self.rows[name].rf, self.rows[source].rf
        if mine.whole or theirs.whole or len(mine.axes) != len(theirs.axes) or mine.terms != theirs.terms or \
                not all(a is b or not mine.terms and self._alike(a, b, {unit[i] for unit in plan.units})
                        for i, (a, b) in enumerate(zip(mine.axes, theirs.axes))):
            return None
        if factors is not None and factors[0].sources is None and all(r is None for r in factors[0].relations) \
                and shapes[name] == shapes[source]:
            return theirs_planned.via or source                       # each element reads its own: the identity
        if not self._maps_to_itself(plan, shapes[source]):
            return None
        return theirs_planned.via or source

    def _alike(self, mine: Any, theirs: Any, units: set[int]) -> bool:
        """Whether two axis fields judge alike on these units: equal (period, advance, table, stride), the same
        predicted numbers and the same exact extent at each unit (a 1x1 conv's field, built anew, is its input's)."""
        return mine == theirs and self._predicted_of(mine) == self._predicted_of(theirs) and \
            all(mine.extent(u) == theirs.extent(u) for u in units)

    def _shared_whole(self, plan: _Plan) -> Optional[str]:
        """As `_shared`, for a whole layer: its one input is whole too, with the same units and the same reach by
        the analysis, and its step maps the units' masks to themselves (then its hulls, and its check, are the
        input's); None when not."""
        name = plan.layer
        node = self.dependencies.nodes[name]
        if len(node.inputs) != 1 or node.inputs[0] not in self.planned or not plan.units:
            return None
        source = node.inputs[0]
        theirs = self.planned[source]
        shapes = self.dependencies.shapes
        if not theirs.whole or theirs.units != plan.units or self.rows[name].rf.reshaped or \
                self.rows[source].rf.reshaped or shapes[name][1:] != shapes[source][1:] or \
                self._reach(name) != self._reach(source) or not self._maps_to_itself(plan, shapes[source]):
            return None
        return theirs.via or source

    def _reach(self, name: str) -> Hull:
        """What the analysis says a whole layer's units reach (`_judge_whole` compares with it)."""
        return self.rows[name].rf.reach or self.whole_hull(name)

    def _maps_to_itself(self, plan: _Plan, in_shape: tuple[int, ...]) -> bool:
        """Whether one dependency step of the planned layer maps its units' masks to themselves: by its factors
        (`proof.terms`), else by `support_step`."""
        name = plan.layer
        node = self.dependencies.nodes[name]
        shape = self.dependencies.shapes[name]
        factors = self.dependencies.factors(name)
        if factors is not None and factors[0].sources is None:
            return self._dims_map_to_themselves(plan, factors[0], in_shape)
        if factors is not None:
            terms = self.seed_terms(plan)
            found = stepped(terms, factors[0], in_shape)
            return found is not None and len(found.walks) == len(terms.walks) and \
                all(np.array_equal(a, b) for a, b in zip(found.dims, terms.dims))
        seeds = self.seeds(plan)
        found = support_step(node.layer, seeds, [in_shape], shape, self.dependencies.cache)[0]
        return found.shape == seeds.shape and bool(np.array_equal(found, seeds))

    def _dims_map_to_themselves(self, plan: _Plan, rule: Any, in_shape: tuple[int, ...]) -> bool:
        """`_maps_to_itself` for factors that keep every dim in place: the seed terms (per unit its position, every
        channel: `seed_terms`) step to themselves exactly when each dim's relation maps each of the units' sets
        along that dim to itself (a product steps dim by dim, and a term whose sets are all its own is kept
        whole), so each distinct set is stepped once, and no dim with the identity relation at all."""
        shape = self.dependencies.shapes[plan.layer]
        positions = self._positions(plan)
        for d, relation in enumerate(rule.relations):
            if relation is None:
                continue
            if in_shape[d] != shape[d]:
                return False
            values = list(dict.fromkeys(position[d] for position in positions))
            sets = np.zeros((len(values), shape[d]), dtype=bool)
            for row, value in enumerate(values):
                sets[row, slice(None) if value is None else int(value)] = True
            if not np.array_equal(step(relation, sets, in_shape[d]), sets):
                return False
        return True

    # ---- whole layers
    def whole_hull(self, name: str) -> Hull:
        """The hull of everything the inputs of a whole layer see (per axis), from the analysis."""
        if name in self.whole_hulls:
            return self.whole_hulls[name]
        parts: list[Hull] = []
        for source in self.dependencies.nodes[name].inputs:
            if source == INPUT:
                parts.append(tuple((0, n - 1) for n in self.input_spatial))
                continue
            field = self.rows[source].rf
            if field.whole:
                parts.append(self.whole_hull(source))
            else:
                parts.append(_all_units_hull(field, _spatial(field, self.rows[source].output_shape)))
        hull = _union_hulls(parts)
        self.whole_hulls[name] = hull
        return hull

    def _plan_whole(self, name: str) -> _Plan:
        row = self.rows[name]
        spatial = tuple(row.output_shape[1:])
        if len(row.output_shape) >= 2 and not row.rf.reshaped:
            units = list(dict.fromkeys([tuple(n // 2 for n in spatial), (0,) * len(spatial),
                                        tuple(n - 1 for n in spatial)]))
        else:
            units = []
        plan = _Plan(name, units, {}, True)
        self.planned[name] = plan
        return plan

    def _judge_whole(self, plan: _Plan, hulls: tuple[Hull, ...]) -> FieldCheck:
        name, units = plan.layer, plan.units
        row = self.rows[name]
        full = tuple((0, n - 1) for n in self.input_spatial)
        reach = self._reach(name)                          # what the analysis says the units reach
        ok = all(h == reach for h in hulls)
        if ok and row.rf.reshaped:
            detail = f"a reshape (no window per unit): its units together reach {_hull_text(reach)}"
        elif ok and reach == full:
            detail = "every unit sees the whole input"
        elif ok:
            detail = (f"every unit sees {_hull_text(reach)}, not the whole input: the other input positions reach"
                      f" no unit of the layers before (as their analysed fields say)")
        else:
            bad = next(h for h in hulls if h != reach)
            detail = f"a unit depends on {_hull_text(bad)}, the analysis says {_hull_text(reach)}"
        return FieldCheck(name, tuple(units) if units else ((),), (), True, ok, detail, row.type, hulls,
                          (reach,) * len(hulls))


@dataclass(frozen=True)
class _Plan:
    """One layer's check before measuring: its units, the per-axis runs among them, whether the field is whole,
    where the units are among the dims after a Permute, and ``via``: the layer whose check this one is (nothing
    walked)."""

    layer: str
    units: list[tuple[int, ...]]
    runs: dict[int, list[int]]
    whole: bool
    positions: Optional[tuple[tuple[Optional[int], ...], ...]] = None     # after a Permute: `Dependencies.seeds_at`
    via: Optional[str] = None


def verify_fields(network: Any, layers: Optional[Sequence[str]] = None, budget: int = BUDGET,
                  on_progress: Optional[Callable[[int, int], None]] = None) -> tuple[FieldCheck, ...]:
    """Check the analysed receptive field of each layer (``layers``: these, in graph order; default all) against
    exact dependency propagation. ``network``: an `execution.network.Network`, a `Summary` or a `Graph`. ``budget``: the
    most units per axis run. ``on_progress(done, total)`` is called after each layer."""
    verifier = _Verifier(network, budget)
    names = [row.name for row in verifier.summary.layers]
    if layers is not None:
        for name in layers:
            if name not in verifier.rows:
                raise ConvcalcError(f"no layer '{name}' in the network; {did_you_mean(name, names)}")
        wanted = set(layers)
        names = [name for name in names if name in wanted]
    plans: dict[str, _Plan | FieldCheck] = {}
    for name in names:
        plan = verifier.plan(name)
        if plan is not None:
            plans[name] = plan
    walked = {name: plan for name, plan in plans.items() if isinstance(plan, _Plan) and plan.via is None}
    checks: dict[str, FieldCheck] = {}
    done = len(names) - len(walked)               # the layers that walk nothing are checked once their roots are
    sweeps = _sweeps(verifier, list(walked))
    while sweeps:
        sweep = sweeps.pop(0)
        try:
            distinct, reached = verifier.dependencies.propagate_hulls(
                {name: verifier.seed_terms(walked[name]) for name in sweep}, SWEEP_BYTES if len(sweep) > 1 else None)
        except SweepTooLarge:          # masks that differ per channel outgrew the sweep: walk half as many at once
            half = len(sweep) // 2
            sweeps[:0] = [sweep[:half], sweep[half:]]
            continue
        for name in sweep:
            checks[name] = verifier.judge(walked[name], tuple(distinct[i] for i in reached[name]))
        done += len(sweep)
        if on_progress is not None and done < len(names):
            on_progress(done, len(names))
    result = []
    for name in names:
        plan = plans.get(name)
        if isinstance(plan, FieldCheck):
            result.append(plan)
        elif isinstance(plan, _Plan) and plan.via is not None:
            root = checks[plan.via]
            result.append(FieldCheck(name, root.units, root.axes, root.whole, root.ok,
                                     f"same field and dependencies as '{plan.via}' (identity steps): {root.detail}",
                                     verifier.rows[name].type, root.hulls, root.expected, via=plan.via))
        elif plan is not None:
            result.append(checks[name])
    if on_progress is not None:
        on_progress(len(names), len(names))
    return tuple(result)


def _sweeps(verifier: "_Verifier", names: list[str]) -> list[list[str]]:
    """The walked layers in graph order, in groups of as many walks as one reverse sweep carries: the walks step
    small per-dim sets (`proof.terms`) through every layer with factors, and whole one-channel float32 masks only
    through those without (a Flatten, a composite), as many as fit SWEEP_BYTES at the widest of those (every walk
    in one sweep when there is none; a sweep whose masks outgrow it is walked again in halves)."""
    counts = {name: max(len(verifier.planned[name].units), 1) for name in names}
    dependencies = verifier.dependencies
    widest = max((max(prod(dependencies.shapes[n]) for n in (node.name, *node.inputs))
                  for node in dependencies.graph.nodes if dependencies.factors(node.name) is None), default=0)
    least = max(counts.values(), default=1)
    most = max(least, SWEEP_BYTES // (4 * widest)) if widest else sum(counts.values())
    sweeps: list[list[str]] = []
    rows = 0
    for name in names:
        if not sweeps or rows + counts[name] > most:
            sweeps.append([])
            rows = 0
        sweeps[-1].append(name)
        rows += counts[name]
    return sweeps


__all__ = ["AxisCheck", "FieldCheck", "hull_of", "hulls_of", "verify_fields"]
