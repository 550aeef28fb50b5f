"""Stage 1, algebra: exact arithmetic on sizes and receptive fields, shared by every layer unit.

Owns the shape formulas (``shapes``: output lengths of convs, pools and transposed convs, padding spellings turned
into explicit ``(lo, hi)`` pairs) and the receptive-field algebra (``runs``: `Table`, run-length tables of phases;
``reads``: `Reads`, the ``Region`` and ``Tap`` types; ``axis_field``: `AxisField`, with ``periods`` for the shortest
period of a table; ``finite``: `FiniteAxis`, with
``fills`` for what fills a unit's padding, ``stretches`` for its intervals of border units and ``twins`` for the
border tables one axis takes from an equal one; ``field``: `Field`,
``merge``, ``gather``, ``concat``; ``limits``: the budgets): plain ints and ``fractions.Fraction`` (NumPy only
to speed up long tables), no layers, no graph. May import only ``convcalc.errors``; every later stage may import
it. The receptive-field names are re-exported here
(``from convcalc.algebra import Field``).

Receptive-field algebra: exact per-unit regions, in the convention of Araujo, Norris & Sim (Distill 2019).

Each spatial axis is seen on its infinite, unclipped extension (padding and the positions past either border
are indices like any other). A layer's output unit ``v`` reads a set of its input units; composing these
reads from the network input on gives, for every unit ``u`` of a layer, the hull ``[first, last]`` of the
network-input indices it depends on (its *region*), or nothing (a unit that gets only a bias).

The regions are periodic and monotone (`AxisField`): with period ``q`` (units) and advance ``J`` (input
indices per period), unit ``u = m*q + rho`` sees ``[m*J + first[rho], m*J + last[rho]]``. For a chain of
convolutions and pools ``q = 1`` and this is Araujo's field: ``[u*S - P, u*S - P + r - 1]``. Transposed
convolutions, upsampling, adaptive pooling and PixelShuffle make windows uneven (``q > 1``); a period longer than
the layer's output is *cut* to it (`AxisField.cut`: the table then holds the axis's own units, every real unit
exactly, and the extension past the output is approximate), as is the table of units that follow no period (a
merge of different strides, a spatial concatenation). All arithmetic is on integers; the stride ``J/q`` is an
exact Fraction. A period
is stored as runs of phases that see one region (`Table`): the empty phases between a stride-10^9 transposed conv's
taps, or the copies of a x10^9 upsampling, are one run each, and every operation costs runs, not units. Where a
layer would need more runs (or border extents, or tap lookups) than ``limits`` allows, it is refused with a
one-line error.

Summary numbers per axis describe the *interior* units, those away from the borders: a unit is interior when no
chain of reads from it down to the network input passes a position outside some layer's units (a padding
position, a transposed conv's input position before the first or past the last unit); its region is then exactly
what it reads. The numbers are taken over one period of the table, the periodic pattern of the unclipped
extension (Araujo et al.'s field), which every ``q`` consecutive interior units show; over a cut table, which
has no period on the axis, over the axis's units whose region is what they read (`FiniteAxis.exact_runs`:
the interior ones, and border ones whose reads of padding add nothing), never a border unit's region on the
approximate extension. Border units are exact in `Field.extent` (``rf --unit``). The numbers: ``size``
(largest region), ``size_min`` (smallest, 0 when some unit sees nothing), ``stride`` (``J/q``) and ``padding``:
``P = (size - 1)/2 - c`` where ``c`` is the mean over those units of (centre of unit u's region - u*stride), so
that for even fields unit u sees exactly ``[u*S - P, u*S - P + r - 1]``, and for uneven ones
``u*S - P + (size-1)/2`` is the mean centre line.

At a merge (Add, Concat, ...) a unit sees the union of what its inputs' units see: the region is the union
hull. ``path_size_max``/``path_size_min`` and `Field.max_path`/`Field.min_path` follow the single paths: at
each merge the input with the largest (smallest) field along one path is taken (greedily, by the product over
the axes). Inputs with different strides or centres (Araujo et al.'s alignment condition) mark the merge
``misaligned`` (that merge only: a layer reading its field does not inherit the flag). Where a merge's input reaches no input at some units on one axis (bias-only units of a
transposed conv, a spatial concat), a unit's region is no longer a product of per-axis regions: `Field.terms`
keeps the inputs apart so that `Field.region`/`Field.extent` stay exact; the per-axis summary numbers are then
those of the per-axis union (`Field.separable` is False).

`Field.region` is the unclipped region (Araujo's convention: padding positions count). `Field.extent` is the
actual network's: the first and last input index a unit depends on, with every layer's length, borders and
padding modes (reflect, replicate, circular) taken into account (`FiniteAxis`, computed on demand). With positive
weights and inputs it is exactly the extent of the unit's input-gradient support (tests/test_receptive_exact.py).

Each layer unit supplies, per axis, what its output units read of its input (`Reads`: conv/pool windows,
transposed-conv residues, resampling positions, adaptive bins, ...) through ``Layer.receptive_field``.
"""

from .axis_field import AxisField
from .field import Field, PathLink, concat, gather, merge, pointwise
from .finite import FiniteAxis
from .reads import Reads, Region, Tap
from .runs import Table

__all__ = ["AxisField", "Field", "FiniteAxis", "PathLink", "Reads", "Region", "Table", "Tap", "concat", "gather",
           "merge", "pointwise"]
