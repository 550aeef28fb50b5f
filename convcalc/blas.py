"""C += A @ B in one GEMM, through the BLAS NumPy itself is linked with.

NumPy's matmul always overwrites its output (BLAS's beta = 0). A residual sum after a conv (ResNet's
``conv3 + identity``) then costs a GEMM and a pass over the output; BLAS's own beta = 1 adds the product to the
identity while it writes it, for the GEMM's time alone. NumPy's wheels ship OpenBLAS as ``scipy-openblas64``
(ILP64: 64-bit integer arguments, symbols ``scipy_cblas_?gemm64_``); this module binds that library, the very copy
NumPy has loaded (one thread pool: a second OpenBLAS, such as SciPy's, would spin against NumPy's), and checks the
binding against ``np.matmul`` before first use. Where NumPy uses another BLAS (Accelerate, MKL) or the library is
not found, `gemm_accumulate` returns False and callers add the product themselves.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS = 101, 111
_bound: dict[np.dtype, object] | None = None


def _candidates() -> list[str]:
    """NumPy's bundled OpenBLAS: numpy.libs beside the package (Linux, Windows wheels), numpy/.dylibs (macOS)."""
    root = os.path.dirname(np.__file__)
    found = []
    for folder in (os.path.join(root, os.pardir, "numpy.libs"), os.path.join(root, ".dylibs")):
        found += sorted(glob.glob(os.path.join(folder, "*openblas64*")))
    return found


def _bind() -> dict[np.dtype, object]:
    functions: dict[np.dtype, object] = {}
    for path in _candidates():
        try:
            library = ctypes.CDLL(path)
            pairs = [(np.dtype(np.float32), library.scipy_cblas_sgemm64_, ctypes.c_float),
                     (np.dtype(np.float64), library.scipy_cblas_dgemm64_, ctypes.c_double)]
        except (OSError, AttributeError):
            continue
        for dtype, function, scalar in pairs:
            index = ctypes.c_int64
            function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, index, index, index, scalar,
                                 ctypes.c_void_p, index, ctypes.c_void_p, index, scalar, ctypes.c_void_p, index]
            function.restype = None
            functions[dtype] = function
        break
    for dtype in list(functions):   # the binding must agree with NumPy's matmul on a small product, or is dropped
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((5, 7)).astype(dtype), rng.standard_normal((7, 3)).astype(dtype)
        c = rng.standard_normal((5, 3)).astype(dtype)
        want = c + a @ b
        try:
            _call(functions[dtype], a, b, c)
        except (ctypes.ArgumentError, OSError):
            del functions[dtype]
            continue
        if not np.allclose(c, want, rtol=1e-5, atol=1e-5):
            del functions[dtype]
    return functions


def _call(function, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    size = a.itemsize
    rows, depth = a.shape
    function(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, rows, b.shape[1], depth, 1.0, a.ctypes.data, a.strides[0] // size,
             b.ctypes.data, b.strides[0] // size, 1.0, c.ctypes.data, c.strides[0] // size)


def _row_major(x: np.ndarray) -> bool:
    """A matrix BLAS reads as it is, row-major: unit steps along a row, rows at least a row apart."""
    return (x.ndim == 2 and x.strides[1] == x.itemsize and x.strides[0] % x.itemsize == 0
            and x.strides[0] // x.itemsize >= max(x.shape[1], 1))


def available(dtype: np.dtype) -> bool:
    global _bound
    if _bound is None:
        _bound = _bind()
    return np.dtype(dtype) in _bound


def gemm_accumulate(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    """``c += a @ b`` in place, in one GEMM, and True; False (``c`` untouched) when the BLAS binding is unavailable
    for this dtype or an operand is not a row-major matrix of it (the caller then adds the product itself)."""
    dtype = c.dtype
    if not (a.ndim == b.ndim == c.ndim == 2 and a.dtype == b.dtype == dtype and available(dtype)
            and c.flags.writeable and a.shape[1] == b.shape[0] and c.shape == (a.shape[0], b.shape[1])):
        return False
    if c.size == 0 or a.shape[1] == 0:      # nothing to add
        return True
    if not (all(_row_major(x) for x in (a, b, c)) and not np.may_share_memory(c, a)
            and not np.may_share_memory(c, b)):
        return False
    _call(_bound[dtype], a, b, c)
    return True
