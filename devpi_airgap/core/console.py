"""Terminal output shared by all tasks: progress on stderr, results on stdout."""

from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Iterator

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table


def printable_anywhere() -> None:
    """Write what the output's encoding lacks as \\uXXXX, as Python already does on stderr, instead of failing.

    Redirected to a file or a pipe on Windows (`inv report > report.txt`, a scheduler's log), our output is
    written in the ANSI code page, cp1252 on a Western PC: a path under C:\\Users\\김민수 printed there ended
    the run in a traceback after its work was done. The console itself takes any character.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


# Logs of scheduled runs are read later and grepped: never squeeze them into 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def byte_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def table(title: str, columns: list[str], rows: list[list], *, right_from: int = 1) -> Table:
    t = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        t.add_column(column, justify="right" if i >= right_from else "left")
    for row in rows:
        t.add_row(*(str(cell) for cell in row))
    return t


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


# A progress display the task layer may hand to library code: called with a description and a byte
# total, it returns a context manager yielding the function to call with each chunk's byte count.
# Library code never draws one itself.
ProgressFactory = Callable[[str, int], ContextManager[Callable[[int], None]]]


def no_progress(description: str, total: int) -> ContextManager[Callable[[int], None]]:
    return nullcontext(lambda nbytes: None)


@contextmanager
def bar_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr, drawn only on a terminal; a total of 0 means not known yet."""
    with byte_progress() as progress:
        task = progress.add_task(description, total=total or None)
        yield lambda nbytes: progress.advance(task, nbytes)
