"""The kernels' own threads: independent parts of one kernel's work run on a persistent pool as big as the run's.

Owns `threads` (the run's thread count: the one NumPy's OpenBLAS runs its GEMMs on, which `OPENBLAS_NUM_THREADS` or
threadpoolctl set, so the non-GEMM kernels use exactly the cores the GEMMs do), `spans` (a range cut into near-even
contiguous parts) and `run_parts` (a task called once per part, the first part on the caller's thread, the others
on the pool, returning when all are done). NumPy releases the GIL inside its ufunc loops, copies and ``einsum``, so
two threads each running one part of a long loop use two cores.

A kernel splits only along axes whose parts are independent (the batch, output rows, blocks of a flat elementwise
run), each part writing its own slice of a preallocated output with the same operations in the same order as the
whole: results are bit-for-bit the same for any split and any thread count. A reduction is never split.

Handing a part to a sleeping worker and waiting for it costs tens of microseconds, so work below MIN_PART_ELEMENTS
elements per part stays on the caller; a task running on the pool that asks for parts of its own runs them itself
(no nesting, which could deadlock a full pool). With one thread nothing but the caller ever runs a part.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from . import blas

MIN_PART_ELEMENTS = 1 << 21   # elements of work a part must have for another thread to take it (~0.5 ms): waking
# a sleeping worker and waiting for it costs tens of microseconds, more in a VM, and between GEMMs OpenBLAS's own
# threads still spin for the cores; benchmarks/executor.py on a quiet 2-core VM: MobileNetV2 at batch 1 lost 5-10 %
# with parts from 2^17 elements, nothing from 2^21, while EfficientNet-B0 kept its gain (2 threads, 1.38 -> 1.19 x
# PyTorch at batch 1, 1.70 -> 1.15 x at batch 8)

_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_lock = threading.Lock()
_inside = threading.local()     # set while a thread runs a part: its own requests then run serially


def threads() -> int:
    """The run's thread count: NumPy's OpenBLAS's (`blas.threads`; the CPU count where it cannot be asked)."""
    return max(1, blas.threads())


def spans(length: int, parts: int) -> list[tuple[int, int]]:
    """``range(length)`` cut into ``parts`` contiguous (start, stop) spans whose lengths differ by at most one
    (the longer first); fewer when ``length`` is shorter, and [(0, length)] for one part."""
    parts = max(1, min(parts, length))
    size, extra = divmod(length, parts)
    result, start = [], 0
    for index in range(parts):
        stop = start + size + (index < extra)
        result.append((start, stop))
        start = stop
    return result


def part_count(length: int, work: int, limit: int | None = None) -> int:
    """How many parts to cut ``length`` independent items into, ``work`` elements of work in all: one per thread
    (at most ``limit``), but none smaller than MIN_PART_ELEMENTS elements, and 1 inside a part."""
    if getattr(_inside, "active", False) or length <= 1:
        return 1
    count = min(threads(), length, max(1, work // MIN_PART_ELEMENTS))
    return max(1, min(count, limit) if limit else count)


def executor(workers: int) -> ThreadPoolExecutor:
    """The kernels' one pool, with at least ``workers`` threads (made anew, larger, when it has fewer): what
    `run_parts` hands parts to, and what `blas.thread_pool` gives the GEMMs run side by side."""
    global _pool, _pool_workers
    with _lock:
        if _pool is None or _pool_workers < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convcalc-kernel")
            _pool_workers = workers
        return _pool


def _forget_pool() -> None:
    """After fork: the child has none of the parent's pool threads."""
    global _pool, _pool_workers
    _pool, _pool_workers = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _run_inside(task: Callable[[int, int], None], start: int, stop: int) -> None:
    _inside.active = True
    try:
        task(start, stop)
    finally:
        _inside.active = False


def copy_into(target, source) -> None:
    """``target[...] = source`` (arrays of one shape, any strides: an im2col's window view, a join's slice of its
    buffer), split over the threads along the first axis long enough to give each a part (the batch, else the
    output rows). A copy: the same bytes for any split."""
    if target.ndim == 0 or target.size == 0:
        target[...] = source
        return
    axis = 0 if target.shape[0] >= threads() or target.ndim == 1 else 1
    lead = (slice(None),) * axis

    def part(start: int, stop: int) -> None:
        target[lead + (slice(start, stop),)] = source[lead + (slice(start, stop),)]

    run_parts(part, target.shape[axis], target.size)


def run_parts(task: Callable[[int, int], None], length: int, work: int | None = None,
              limit: int | None = None) -> int:
    """Call ``task(start, stop)`` over `spans` covering ``range(length)``: `part_count` parts (``work``: elements
    of work in all, default ``length``), the first on the caller, the others on the pool, concurrently. Each call
    must write only what its own span determines. Returns the number of parts; the first exception raised by any
    part is raised here, after every part has finished."""
    if length <= 0:
        return 0
    count = part_count(length, length if work is None else work, limit)
    if count == 1:
        task(0, length)
        return 1
    parts = spans(length, count)
    pool = executor(count - 1)
    futures: list[Future] = [pool.submit(_run_inside, task, start, stop) for start, stop in parts[1:]]
    error: BaseException | None = None
    try:
        _run_inside(task, *parts[0])
    except BaseException as caught:   # noqa: BLE001 - re-raised once the other parts are done
        error = caught
    for future in futures:
        try:
            future.result()
        except BaseException as caught:   # noqa: BLE001
            error = error or caught
    if error is not None:
        raise error
    return count
