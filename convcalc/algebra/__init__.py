"""Stage 1, algebra: exact arithmetic on sizes and receptive fields, shared by every layer unit.

Owns the shape formulas (``shapes``: output lengths of convs, pools and transposed convs, padding spellings turned
into explicit ``(lo, hi)`` pairs) and the receptive-field algebra (``Reads``, ``AxisField``, ``Field``, ``merge``,
``concat``): plain ints and ``fractions.Fraction``, no arrays, no layers, no graph. May import only
``convcalc.errors``; every later stage may import it.
"""
