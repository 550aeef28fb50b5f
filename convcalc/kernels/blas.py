"""C += A @ B in one GEMM, through the BLAS NumPy itself is linked with.

NumPy's matmul always overwrites its output (BLAS's beta = 0). A residual sum after a conv (ResNet's
``conv3 + identity``) then costs a GEMM and a pass over the output; BLAS's own beta = 1 adds the product to the
identity while it writes it, for the GEMM's time alone. NumPy's wheels ship OpenBLAS as ``scipy-openblas64``
(ILP64: 64-bit integer arguments, symbols ``scipy_cblas_?gemm64_``); this module binds that library, the very copy
NumPy has loaded (one thread pool: a second OpenBLAS, such as SciPy's, would spin against NumPy's), and checks the
binding against ``np.matmul`` before first use. Where NumPy uses another BLAS (Accelerate, MKL) or the library is
not found, `gemm_accumulate` returns False and callers add the product themselves.

`kernel_choices` lists the kernel sets that OpenBLAS can be switched to on this CPU and `use_kernels` switches it
(process-wide); which one runs is measured (`convcalc.execution.tune`), and the CLI decides, the library never does
by itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os

from .._numpy import np

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


# OpenBLAS built with DYNAMIC_ARCH (NumPy's wheels) picks its kernels from the CPU at load time, and can be asked to
# run another set the CPU also supports (OPENBLAS_CORETYPE). Which is faster is not the newest: on AMD's Zen 4 (a
# 512-bit operation run as two 256-bit halves) the AVX2 (Haswell) kernels beat the AVX-512 ones OpenBLAS picks.
# `convcalc.execution.tune` times the sets `kernel_choices` lists on a network's own GEMM shapes and keeps the
# fastest (`use_kernels`): a measurement on the machine at hand, not a rule for one CPU family.
# A kernel set -> the CPU flags (/proc/cpuinfo) its instructions need. Only x86-64 sets are offered: elsewhere
# OpenBLAS's own pick is the only choice.
KERNEL_FLAGS = {
    "Haswell": ("avx2", "fma"),
    "SkylakeX": ("avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"),
    "Cooperlake": ("avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"),
}


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


def build() -> str:
    """NumPy's BLAS as a cache key: OpenBLAS's build configuration (version, DYNAMIC_ARCH, ...; not the kernel set
    it runs, which `use_kernels` changes) and the library's file name, or NumPy's own name for its BLAS where it is not the bundled OpenBLAS."""
    library = _library()
    if library is not None:
        try:
            config = library.scipy_openblas_get_config64_
            config.restype = ctypes.c_char_p
            text = config().decode(errors="replace").split()     # names the kernel set it runs now: dropped
            return f"{' '.join(word for word in text if word != kernels())} ({os.path.basename(library._name)})"
        except AttributeError:
            return os.path.basename(library._name)
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '?')}"
    except Exception:       # noqa: BLE001 - an old NumPy without dict configs: its version names the build
        return f"numpy {np.__version__}"


def threads() -> int:
    """The threads NumPy's OpenBLAS runs a GEMM on (the CPU count where it cannot be asked)."""
    library = _library()
    try:
        count = library.scipy_openblas_get_num_threads64_
    except AttributeError:
        return os.cpu_count() or 1
    count.restype = ctypes.c_int
    return int(count())


def _thread_setter():
    library = _library()
    try:
        setter = library.scipy_openblas_set_num_threads64_
    except AttributeError:
        return None
    setter.argtypes, setter.restype = [ctypes.c_int], None
    return setter


def can_set_threads() -> bool:
    """Whether `single_threaded` can run NumPy's BLAS on one thread for a while (the bundled OpenBLAS)."""
    return _thread_setter() is not None


@contextlib.contextmanager
def single_threaded():
    """NumPy's OpenBLAS on one thread inside the block, its own count again after: for callers that run GEMMs
    from several threads of their own (each a whole GEMM on one core). Process-wide, like `use_kernels`."""
    setter, before = _thread_setter(), threads()
    if setter is None or before <= 1:
        yield
        return
    setter(1)
    try:
        yield
    finally:
        setter(before)


def thread_pool(workers: int):
    """A pool of at least ``workers`` threads for GEMMs run side by side (`split_matmul`,
    `im2col.conv_im2col_blocked`, `rows.conv_kn2row`): the kernels' one pool (`parallel.executor`), made on first use
    in this process and kept, and made anew in a child forked after it (which has none of its threads)."""
    from . import parallel      # (parallel imports this module)

    return parallel.executor(workers)


CACHE_LINE = 64     # bytes: `split_matmul` cuts b's columns at multiples of a cache line


def split_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray, workers: int, accumulate: bool = False,
                 columns: bool = False) -> np.ndarray:
    """``out = a @ b`` (``accumulate``: ``out += a @ b``, `gemm_accumulate`) with a's rows (``columns``: b's
    columns, at multiples of a cache line, so each part reads all of a once and writes whole lines of out) cut
    into ``workers`` contiguous parts, each a one-thread GEMM (`single_threaded`) on a thread of its own: for the
    small products where BLAS's own threads gain little (a 7x7 map's 49 rows). The parts depend on the shapes and
    ``workers`` only: the same bytes on every run."""
    if columns:
        width, line = b.shape[1], max(1, CACHE_LINE // b.itemsize)
        workers = max(1, min(workers, -(-width // line)))
        cuts = [min(width, -(-width * index // workers // line) * line) for index in range(workers)] + [width]
    else:
        workers = max(1, min(workers, a.shape[0]))
        cuts = [a.shape[0] * index // workers for index in range(workers + 1)]

    def run(index: int) -> None:
        span = slice(cuts[index], cuts[index + 1])
        left, right, target = (a, b[:, span], out[:, span]) if columns else (a[span], b, out[span])
        if not accumulate:
            np.matmul(left, right, out=target)
        elif not gemm_accumulate(left, right, target):
            target += np.matmul(left, right)

    if workers == 1:
        run(0)
    else:
        with single_threaded():
            list(thread_pool(workers).map(run, range(workers)))
    return out


def cpu_flags() -> frozenset[str]:
    """The first CPU's flags in Linux's /proc/cpuinfo (elsewhere: none, so no kernel set is offered)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.split(":", 1)[0].strip() in ("flags", "Features"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _dispatch() -> tuple[object, object] | None:
    library = _library()
    if library is None or kernels() is None:
        return None
    try:
        quit_dispatch, init_dispatch = library.gotoblas_dynamic_quit, library.gotoblas_dynamic_init
    except AttributeError:
        return None
    quit_dispatch.restype = init_dispatch.restype = None
    return quit_dispatch, init_dispatch


def pinned() -> str | None:
    """The kernel set the user named in OPENBLAS_CORETYPE (OpenBLAS's own override, which convcalc never changes),
    where NumPy's OpenBLAS can be switched at all; else None."""
    name = os.environ.get("OPENBLAS_CORETYPE")
    return name if name and _dispatch() is not None else None


def kernel_choices() -> tuple[str, ...]:
    """The kernel sets NumPy's OpenBLAS can be switched to here: the one it runs, then every set of `KERNEL_FLAGS`
    whose instructions the CPU has; () when it cannot switch (not the bundled DYNAMIC_ARCH OpenBLAS) or the user
    named one (OPENBLAS_CORETYPE, OpenBLAS's own override, is the user's choice; empty: OpenBLAS ignores it too)."""
    if os.environ.get("OPENBLAS_CORETYPE") or _dispatch() is None:
        return ()
    now = kernels()
    flags = cpu_flags()
    return (now, *(name for name, needs in KERNEL_FLAGS.items()
                   if name.lower() != now.lower() and all(flag in flags for flag in needs)))


def use_kernels(name: str) -> bool:
    """Switch NumPy's OpenBLAS to the kernel set ``name`` (one of `kernel_choices`); True when it now runs it and
    its products still agree with float64's (checked the first time: else it is switched back, False).

    It re-runs OpenBLAS's dispatch (``gotoblas_dynamic_quit``/``gotoblas_dynamic_init``, exported by DYNAMIC_ARCH
    builds) with OPENBLAS_CORETYPE set for that call only: what starting the process with it set would have done.
    The whole process's BLAS changes, so call it before any other thread can be inside a BLAS call."""
    was = kernels()
    if name not in kernel_choices():
        return False
    if name == was:
        return True
    if not _redispatch(name) or kernels() != name or (name not in _verified and not _products_right()):
        _redispatch(was)
        return False
    _verified.add(name)
    return True


_verified: set[str] = set()      # kernel sets whose products were checked once in this process


def _redispatch(name: str) -> bool:
    dispatch = _dispatch()
    if dispatch is None:
        return False
    quit_dispatch, init_dispatch = dispatch
    before = os.environ.get("OPENBLAS_CORETYPE")
    os.environ["OPENBLAS_CORETYPE"] = name
    try:
        quit_dispatch()
        init_dispatch()   # an unknown name falls back to OpenBLAS's own detection: never no kernels
    finally:
        if before is None:
            del os.environ["OPENBLAS_CORETYPE"]
        else:
            os.environ["OPENBLAS_CORETYPE"] = before
    return True


def _products_right() -> bool:
    """NumPy's matmul and `gemm_accumulate` agree with float64's products on a few odd shapes, in both dtypes."""
    rng = np.random.default_rng(0)
    for rows, depth, cols in ((1, 1, 1), (49, 513, 70), (300, 65, 256), (7, 200, 3)):
        a, b, c = rng.standard_normal((rows, depth)), rng.standard_normal((depth, cols)), rng.standard_normal((rows, cols))
        want = a @ b
        for dtype, tolerance in ((np.float32, 1e-4), (np.float64, 1e-12)):
            scale = tolerance * np.sqrt(depth)
            if np.abs(a.astype(dtype) @ b.astype(dtype) - want).max() > scale:
                return False
            accumulated = c.astype(dtype)
            if gemm_accumulate(a.astype(dtype), b.astype(dtype), accumulated) and \
                    np.abs(accumulated - c - want).max() > scale:
                return False
    return True
