"""Linting files on several cores: `in_order` runs a per-file function in worker processes and hands the results
back in the files' order, so a parallel run's report is the serial one's, finding for finding.

Processes, not threads (the analysis is pure Python and holds the GIL). Workers are forked where that is safe and
cheap (Linux: they start with everything the parent imported, in milliseconds) and spawned elsewhere (macOS,
Windows); the function and its arguments are module-level and picklable, so both work. At most ``2 x jobs`` batches
are in flight, so memory stays bounded whatever the number of files. A worker that dies (killed, out of memory)
becomes one `LintWorkerError`; an error the function raises (a file that cannot be read) is re-raised as it is,
when its file's turn comes, as the serial run raises it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from collections import deque
from typing import Callable, Iterator, Sequence, TypeVar

from ..errors import ConvcalcError

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many files per worker a pool costs more than it saves. Measured (benchmarks/lint.py): a pool of two
# forked workers costs ~10 ms of CPU and 10-30 ms to start and stop, and a shipped spec lints in 2-120 ms (25 ms on
# average), so a few files per worker pay; a spawned worker first imports convcalc (~0.4 s of CPU), which ~30
# average specs per worker repay.
MIN_FILES_PER_WORKER = {"fork": 4, "spawn": 32}
BATCHES_PER_WORKER = 4          # files go out in batches: ~4 per worker balances uneven specs, few round trips
MAX_BATCH = 8


class LintWorkerError(ConvcalcError):
    """A lint worker process died (killed, out of memory): the run cannot say what its files hold."""


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def start_method() -> str:
    """``fork`` where it is safe (Linux), else ``spawn`` (macOS's system libraries are not fork-safe; Windows has
    no fork)."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def workers_for(jobs: int, files: int, method: str | None = None) -> int:
    """The worker processes worth starting for ``files`` files with ``jobs`` asked for: at most ``jobs``, the usable
    CPUs and one per `MIN_FILES_PER_WORKER` files; 1 (no pool, the calling process) when a pool cannot pay."""
    per_worker = MIN_FILES_PER_WORKER[method or start_method()]
    return max(1, min(jobs, usable_cpus(), files // per_worker))


# The cycle collector's automatic passes walk every young object an analysis holds (~3 % of lint's instructions,
# counted with callgrind over the shipped specs), yet an analysis leaves (almost) no reference cycles: reference
# counting frees it. While files are checked the automatic passes are off, and a pass runs between files once this
# many more objects are tracked than after the last one, so what a cycle holds stays bounded.
COLLECT_AFTER = 100_000


def _collect_if_grown() -> None:
    if gc.get_count()[0] > COLLECT_AFTER:
        gc.collect()


@contextlib.contextmanager
def _collector_between_files() -> Iterator[None]:
    """The automatic cycle collection off (`COLLECT_AFTER`), as it was again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _start_worker() -> None:
    """A worker's start: what it inherited (forked) is frozen, out of the collector's view, whose walks would copy
    every page they touch (a constant-time list move), and the collector runs between files (`COLLECT_AFTER`).
    Ctrl-C is the parent's to handle, as in a serial run: it stops handing out files and waits for the batches under
    way, and the workers then exit."""
    gc.freeze()
    gc.disable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _batch(function: Callable[..., Result], items: Sequence, extra: tuple) -> list[Result]:
    results = []
    for item in items:
        results.append(function(item, *extra))
        _collect_if_grown()
    return results


def in_order(function: Callable[..., Result], items: Sequence[Item], extra: tuple = (), jobs: int = 1
             ) -> Iterator[tuple[Sequence[Item], list[Result]]]:
    """``(batch, [function(item, *extra) for item in batch])`` for consecutive batches of ``items``, in order, computed
    in up to ``jobs`` worker processes (in this process when `workers_for` says a pool cannot pay). ``function``
    must be a module-level function and ``items``/``extra`` picklable."""
    method = start_method()
    workers = workers_for(jobs, len(items), method)
    if workers <= 1:
        for item in items:
            with _collector_between_files():
                result = function(item, *extra)
            _collect_if_grown()
            yield [item], [result]
        return
    import multiprocessing                       # (here: a run of one process, or `import convcalc.lint`, needs neither)
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    size = max(1, min(MAX_BATCH, len(items) // (workers * BATCHES_PER_WORKER)))
    batches = [items[start:start + size] for start in range(0, len(items), size)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                             initializer=_start_worker) as pool:
        pending: deque = deque()
        upcoming = iter(batches)
        try:
            for batch in upcoming:                   # keep 2 batches per worker in flight, no more
                pending.append((batch, pool.submit(_batch, function, batch, extra)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                batch, future = pending.popleft()
                results = future.result()
                following = next(upcoming, None)
                if following is not None:
                    pending.append((following, pool.submit(_batch, function, following, extra)))
                yield batch, results
        except BrokenProcessPool:
            raise LintWorkerError(f"a lint worker process died (killed, or out of memory?) while checking"
                                  f" {batch[0]} or a file after it; run again with --jobs 1 to check the files in"
                                  " one process") from None
        finally:
            for _, future in pending:
                future.cancel()


__all__ = ["LintWorkerError", "MIN_FILES_PER_WORKER", "in_order", "start_method", "usable_cpus", "workers_for"]
