"""NumPy, imported on first use: ``from .._numpy import np`` gives a stand-in that imports NumPy the first time one
of its attributes is read, then puts the real module in its place in every convcalc module that holds the stand-in
(and here, for modules imported later). `convcalc analyze`, `lint` and `rf` never touch an array, so they never pay
NumPy's import (about half of their start-up); the executor touches it at once and then runs on the real module.
"""

from __future__ import annotations

import sys
import types


class _NumPyOnFirstUse(types.ModuleType):
    def __getattr__(self, name: str):
        import numpy

        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("convcalc") and module.__dict__.get("np") is self:
                module.np = numpy
        return getattr(numpy, name)


np = _NumPyOnFirstUse("numpy")

__all__ = ["np"]
