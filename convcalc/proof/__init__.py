"""Stage 7, proof: what checks the analysis by running the network.

Owns exact dependency propagation (``dependency``: which input positions can influence a unit), the generic
backward walk (``gradient``), the effective receptive field (``erf``), the measured proof of every layer's field
(``verify``), and the library calls that ``convcalc run`` and ``convcalc rf`` wrap (``run``, ``study``). May import
every stage below it (``errors`` … ``execution``); never the renderers or the CLI.
"""
