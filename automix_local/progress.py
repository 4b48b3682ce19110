"""Progress bars and tables for the command line, drawn by rich (which Textual already brings).

On a terminal a bar redraws in place on stderr; piped (a log, CI), a bar says nothing — except the
evaluation's, which writes a plain line per chunk, since runs are watched through their logs.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

Update = Callable[..., None]


def _err_console() -> Console:
    return Console(stderr=True)


@contextmanager
def count_bar(what: str, unit: str, extra: str | None = None) -> Iterator[Update | None]:
    """``update(done, total, item="", **fields)`` for a bar of ``unit`` (files, passages); None when stderr is
    not a terminal. ``extra``: a rich format string of more fields, e.g. "· {task.fields[passages]} passages"."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = [TextColumn(f"{what} [progress.description]{{task.description}}"), BarColumn(), MofNCompleteColumn()]
    columns.append(TextColumn(unit + (f" {extra}" if extra else "")))
    with Progress(*columns, TimeRemainingColumn(), console=_err_console(), transient=True) as progress:
        task = progress.add_task("", total=None, passages=0)

        def update(done: int, total: int, item: str = "", **fields: Any) -> None:
            progress.update(task, completed=done, total=total, description=item[:40], **fields)

        yield update


class ByteBar:
    """A download's bytes, speed and time left (``models pull``); silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty() or total <= 0:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("  "),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=_err_console(),
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=total)
        self._progress.update(self._task, completed=done, total=total)
        if done >= total:
            self._progress.stop()
            self._progress = None


class ItemBar:
    """The evaluation's items done, items/s and time left: a rich bar on a terminal, else a plain line per
    update (what a log of a long run shows)."""

    def __init__(self, total: int, done: int, stream: Any = None) -> None:
        import time

        self._time = time.perf_counter
        self.total, self.start_done, self.done = total, done, done
        self.t0 = self._time()
        self.stream = stream or sys.stderr
        self._progress: Progress | None = None
        if self.stream.isatty():
            self._progress = Progress(
                TextColumn("eval"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("items · {task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=total, completed=done, rate="")

    def update(self, done: int) -> None:
        self.done = done
        elapsed = self._time() - self.t0
        rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
        if self._progress is not None:
            self._progress.update(self._task, completed=done, rate=f"{rate:.3f} items/s")
            if done >= self.total:
                self._progress.stop()
            return
        left = (self.total - done) / rate if rate > 0 else float("nan")
        eta = f"{int(left // 3600):02d}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}" if left == left else "--"
        self.stream.write(f"{done}/{self.total} items  {rate:.3f} items/s  ETA {eta}\n")
        self.stream.flush()


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns aligned, no borders; never wrapped or cut when piped (a file, grep)."""
    width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 10_000
    table = Table(*header, box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for row in rows:
        table.add_row(*row)
    console = Console(width=width, soft_wrap=False, force_terminal=sys.stdout.isatty())
    with console.capture() as captured:
        console.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
