"""CC301 (and CC103's rf_min): the receptive field that describes the network's output, and its coverage.

When the output sees the whole input (a classifier: global pooling, Flatten, Linear), the field that matters is
the one of the feature map the classifier gathers. Gates are not that gather: a squeeze-and-excitation block pools
its map globally and multiplies the result back into it (EfficientNet, MobileNetV3, RegNetY), which makes every
later field whole for the analyzer (every unit does depend on the whole input through the gate's scale), but the
spatial detail each unit sees is still its window's. `convcalc.analysis.gates` folds the fields again with every
such gate left out of its merge (the one rule `convcalc rf`'s default layer and the zoo's RF column use too).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterator, Optional

from ..algebra import Field
from ..analysis import gates
from ..analysis.coverage import coverage
from ..algebra.numbers import percent_text
from .context import Context
from .model import Finding


MEASURE = {1: "length", 2: "area", 3: "volume"}     # what the coverage is a share of


def classifier_fields(ctx: Context) -> tuple[dict[str, Field], list[str]]:
    """Every layer's field with the gates left out of their merges (`convcalc.analysis.gates`)."""
    return gates.classifier_fields(ctx.summary)


def output_field(ctx: Context) -> tuple[str, Optional[str], Field, list[str]] | None:
    """(layer, gathering layer or None, field, gated merges left out) whose receptive field describes the output
    (`convcalc.analysis.gates.output_field`: the rule `convcalc rf` and the zoo's RF column share)."""
    if "output_field" not in ctx.memo:       # (CC301 and CC103's rf_min ask for it: one refold of the fields)
        found = gates.output_field(ctx.summary)
        ctx.memo["output_field"] = None if found is None else tuple(found)
    return ctx.memo["output_field"]


def check_rf_coverage(ctx: Context) -> Iterator[Finding]:
    found = output_field(ctx)
    spatial = ctx.summary.input_shape[1:]
    if found is None or len(found[2].axes) != len(spatial) or not spatial:
        return
    name, gatherer, field_, gated = found
    share = coverage(field_, spatial)
    if share >= Fraction(ctx.rf_min_coverage).limit_denominator(10 ** 6):
        return
    sizes = "x".join(str(axis.size) for axis in field_.axes)
    where = f"'{name}'" + (f" (gathered by '{gatherer}')" if gatherer else " (the output)")
    gates = ""
    if gated and gatherer:
        gates = (f"; the global pools multiplied back into the map by {len(gated)} gate"
                 f"{'s' if len(gated) > 1 else ''} (squeeze-and-excitation, first '{gated[0]}') are not the"
                 " classifier's and are left out")
    yield ctx.finding("CC301", f"the receptive field of {where} is {sizes}, covering {percent_text(share)} of the"
                      f" {'x'.join(map(str, spatial))} input's {MEASURE.get(len(spatial), 'size')}{gates}",
                      ctx.nodes[name])


__all__ = ["check_rf_coverage", "classifier_fields", "output_field"]
