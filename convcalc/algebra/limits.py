"""The receptive-field algebra's budgets: what one layer's rules may cost along one axis, checked before the work.

The algebra's cost depends on the number of layers and on the number of distinct phases that really occur along
each axis (runs of units that see the same region are stored once), never on tensor sizes, strides or the digits
of a float. Where a layer would still need more, it is refused with a one-line error naming the layer (the
analyzer adds it), the number and the budget. Each budget is a module attribute read when it is checked, so a
library user (or a test) can change one for a process: ``convcalc.algebra.limits.MAX_PHASES = 2**20``.
"""

from __future__ import annotations

from ..errors import LayerArgError

# runs of distinct regions one axis's field may hold (one period of a layer's units, over at most its length);
# also the runs of one layer's reads (taps per phase) and the stretches of units near the borders
MAX_PHASES = 2 ** 18

# exact extents near the borders (where padding modes, borders and lengths make a unit's extent differ from its
# periodic region) worked out separately, per layer and axis: one per unit, or per run of units that read alike
MAX_BORDER_EXTENTS = 2 ** 18

# taps looked at by one layer's rules along one axis (phases x taps per phase, border extents x taps)
MAX_TAP_WORK = 2 ** 22

# a resampling factor is taken as the decimal it is written as (2.1 -> 21/10) while its period (the decimal's
# denominator) is at most this; beyond, as the simplest fraction that gives PyTorch's own (float32) index map
MAX_SCALE_DENOMINATOR = 2 ** 16


def too_many_phases(detail: str = "") -> LayerArgError:
    """Refusal: one axis's field (or reads, or border stretches) would need more than MAX_PHASES runs."""
    return LayerArgError(f"its receptive field along one axis would need more than {MAX_PHASES:,} distinct phases"
                         f"{detail}, the limit (convcalc.algebra.limits.MAX_PHASES)", None)


def too_many_border_extents(count: int) -> LayerArgError:
    """Refusal: more than MAX_BORDER_EXTENTS extents near the borders worked out separately."""
    return LayerArgError(f"the exact extents of its units along one axis would need {count:,} separate values near"
                         f" the borders, more than the limit of {MAX_BORDER_EXTENTS:,}"
                         f" (convcalc.algebra.limits.MAX_BORDER_EXTENTS)", None)


def check_work(count: int, what: str) -> None:
    """Refuse ``count`` tap lookups (``what``: where they come from) above MAX_TAP_WORK."""
    if count > MAX_TAP_WORK:
        raise LayerArgError(f"its receptive field along one axis would need {count:,} tap lookups ({what}), more"
                            f" than the limit of {MAX_TAP_WORK:,} (convcalc.algebra.limits.MAX_TAP_WORK)", None)
