"""A progress bar on stderr for long data work (decoding an image folder), only on a terminal.

When another live display (a command's own progress bar) already owns the terminal, stderr is
its proxy and a second bar would garble both: then progress is a line every 10% instead.
"""

from __future__ import annotations

import sys
import time

LINE_EVERY = 0.1  # share of the work between two lines when a live display is active
QUIET_SECONDS = 2.0  # no lines for work done within this time


class Progress:
    """``advance(n)`` after each piece of work; a context manager (the bar goes at the end)."""

    def __init__(self, description: str, total: int):
        self.description, self.total, self.done = description, total, 0
        self.start = time.monotonic()
        self._bar = self._task = None
        self._next_line = LINE_EVERY
        stream = sys.stderr
        self.enabled = total > 0 and hasattr(stream, "isatty") and stream.isatty()
        self.lines = self.enabled and type(stream).__name__ == "FileProxy"  # rich's live proxy

    def __enter__(self) -> Progress:
        if self.enabled and not self.lines:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def advance(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif (self.lines and self.done >= self._next_line * self.total
              and time.monotonic() - self.start >= QUIET_SECONDS):
            self._next_line = (int(self.done / self.total / LINE_EVERY) + 1) * LINE_EVERY
            rate = self.done / max(time.monotonic() - self.start, 1e-9)
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            print(f"{self.description}: {self.done:,} of {self.total:,} "
                  f"({100 * self.done / self.total:.0f}%), about {left:.0f} s left",
                  file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
