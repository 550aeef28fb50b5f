"""Stage 5, analysis: a Graph and an input shape in, a ``Summary`` of plain numbers out.

Owns the generic analyze walk (``summary``: per-layer shapes, parameters, MACs, memory and liveness, receptive
fields, as frozen data) and the receptive-field reports built from it (``regions``: a unit's exact region, field
growth, unit and layer choice). It asks each layer unit for its rules and never tests a layer's type. May import
``errors``, ``algebra``, ``layers`` and ``spec``; nothing here runs a network, renders or prints.
"""
