"""Progress of long work on stderr: a transient rich bar per stage, shown only when stderr is a terminal and
``--quiet`` is not given. The library reports through callbacks (``on_progress(done, total)``, or
``on_progress(stage, done, total)`` where one call does several things); nothing here touches stdout."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

from .common import stderr

QUIET_HELP = "No progress bars on stderr (they are shown only when stderr is a terminal)."


class Reporter:
    """Stages of a `rich.progress.Progress`, each created when it first reports."""

    def __init__(self, progress) -> None:
        self._progress = progress
        self._tasks: dict[str, int] = {}

    def update(self, stage: str, done: int, total: Optional[int]) -> None:
        """``done`` of ``total`` steps of ``stage`` finished."""
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total)
        self._progress.update(self._tasks[stage], completed=done, total=total)

    def stage(self, stage: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback for one stage."""
        return lambda done, total: self.update(stage, done, total)


@contextlib.contextmanager
def progress_bars(quiet: bool = False) -> Iterator[Optional[Reporter]]:
    """A `Reporter` drawing on an interactive stderr, or None (quiet, or stderr is not a terminal)."""
    console = stderr()
    if quiet or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, redirect_stdout=False, redirect_stderr=False) as progress:
        yield Reporter(progress)


__all__ = ["QUIET_HELP", "Reporter", "progress_bars"]
