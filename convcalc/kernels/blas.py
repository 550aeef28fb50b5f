"""C += A @ B in one GEMM, through the BLAS NumPy itself is linked with.

NumPy's matmul always overwrites its output (BLAS's beta = 0). A residual sum after a conv (ResNet's
``conv3 + identity``) then costs a GEMM and a pass over the output; BLAS's own beta = 1 adds the product to the
identity while it writes it, for the GEMM's time alone. NumPy's wheels ship OpenBLAS as ``scipy-openblas64``
(ILP64: 64-bit integer arguments, symbols ``scipy_cblas_?gemm64_``); this module binds that library, the very copy
NumPy has loaded (one thread pool: a second OpenBLAS, such as SciPy's, would spin against NumPy's), and checks the
binding against ``np.matmul`` before first use. Where NumPy uses another BLAS (Accelerate, MKL) or the library is
not found, `gemm_accumulate` returns False and callers add the product themselves.

`prefer_kernels` switches that OpenBLAS from the AVX-512 kernels it picks on AMD Zen 4 to its AVX2 (Haswell) ones,
which are faster there (see its docstring); `convcalc run`, `rf --erf` and the benchmark call it, the library never
does by itself.
"""

from __future__ import annotations

import ctypes
import functools
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


@functools.cache
def _library() -> ctypes.CDLL | None:
    """NumPy's own scipy-openblas64 (the copy already loaded: dlopen hands back the same library), or None."""
    for path in _candidates():
        try:
            library = ctypes.CDLL(path)
            library.scipy_cblas_sgemm64_, library.scipy_cblas_dgemm64_
        except (OSError, AttributeError):
            continue
        return library
    return None


def _bind() -> dict[np.dtype, object]:
    functions: dict[np.dtype, object] = {}
    library = _library()
    if library is not None:
        pairs = [(np.dtype(np.float32), library.scipy_cblas_sgemm64_, ctypes.c_float),
                 (np.dtype(np.float64), library.scipy_cblas_dgemm64_, ctypes.c_double)]
        for dtype, function, scalar in pairs:
            index = ctypes.c_int64
            function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, index, index, index, scalar,
                                 ctypes.c_void_p, index, ctypes.c_void_p, index, scalar, ctypes.c_void_p, index]
            function.restype = None
            functions[dtype] = function
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


# OpenBLAS built with DYNAMIC_ARCH (NumPy's wheels) picks its kernels from the CPU at load time: on AMD's Zen 4
# (CPU family 25 with AVX-512) its SkylakeX or Cooperlake kernels. Zen 4 runs a 512-bit operation as two 256-bit
# halves, and the same library's AVX2 (Haswell) kernels are faster there. (Zen 5, family 26, has full-width
# AVX-512 units: left alone, unmeasured.) Measured on this project's 2-core Zen 4 machine:
# sgemm 3-9 % faster on ResNet-50's conv shapes, 17 % on the 49 x 512 x 2048 products of its last stage; dgemm
# 2-25 % faster; the whole ResNet-50 forward 2.5 % faster at batch 1, within noise at batch 8.
PREFERRED_KERNELS = {"skylakex": "Haswell", "cooperlake": "Haswell"}   # the core OpenBLAS picked -> the faster one


def kernels() -> str | None:
    """The kernel set NumPy's OpenBLAS runs ('SkylakeX', 'Haswell', ...), or None where it cannot be asked."""
    library = _library()
    if library is None:
        return None
    try:
        corename = library.scipy_openblas_get_corename64_
    except AttributeError:
        return None
    corename.restype = ctypes.c_char_p
    return corename().decode()


ZEN4_FAMILY = 25   # AMD's CPU family of Zen 3 and Zen 4 (Zen 3 has no AVX-512, so OpenBLAS picks AVX2 there)


def _zen4() -> bool:
    """Linux's /proc/cpuinfo names an AMD CPU of family 25 (elsewhere: False, nothing is switched)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            fields = dict(line.split(":", 1) for line in info.read().split("\n\n", 1)[0].splitlines() if ":" in line)
    except OSError:
        return False
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == str(ZEN4_FAMILY)


def prefer_kernels() -> tuple[str, str] | None:
    """Switch NumPy's OpenBLAS to the kernels that are faster on this CPU; (was, now) when it switched, else None.

    It switches only from an AVX-512 kernel set OpenBLAS chose itself on a Zen 4 CPU (`PREFERRED_KERNELS`), and only
    if the environment does not name one (OPENBLAS_CORETYPE, OpenBLAS's own override, is the user's choice). It
    re-runs OpenBLAS's dispatch (``gotoblas_dynamic_quit``/``gotoblas_dynamic_init``, exported by DYNAMIC_ARCH
    builds) with OPENBLAS_CORETYPE set for that call only: what starting the process with it set would have done.
    The whole process's BLAS changes, so call it before any other thread can be inside a BLAS call (at start-up:
    `convcalc run` does, before it builds the network)."""
    if os.environ.get("OPENBLAS_CORETYPE"):   # empty: OpenBLAS ignores it too
        return None
    library = _library()
    was = kernels()
    if library is None or was is None or was.lower() not in PREFERRED_KERNELS or not _zen4():
        return None
    try:
        quit_dispatch, init_dispatch = library.gotoblas_dynamic_quit, library.gotoblas_dynamic_init
    except AttributeError:
        return None
    quit_dispatch.restype = init_dispatch.restype = None
    before = os.environ.get("OPENBLAS_CORETYPE")
    os.environ["OPENBLAS_CORETYPE"] = PREFERRED_KERNELS[was.lower()]
    try:
        quit_dispatch()
        init_dispatch()   # an unknown name falls back to OpenBLAS's own detection: never no kernels
    finally:
        if before is None:
            del os.environ["OPENBLAS_CORETYPE"]
        else:
            os.environ["OPENBLAS_CORETYPE"] = before
    now = kernels()
    return (was, now) if now != was else None
