"""Terminal output shared by all tasks: progress on stderr, results on stdout."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from invoke.exceptions import Exit

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from devpi_airgap.transfer.bundle_check import BundleError
from devpi_airgap.core.errors import AirgapError

# Logs of scheduled runs are read later and grepped: never squeeze them into 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def byte_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=not err.is_terminal,
    )


def table(title: str, columns: list[str], rows: list[list], *, right_from: int = 1) -> Table:
    t = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        t.add_column(column, justify="right" if i >= right_from else "left")
    for row in rows:
        t.add_row(*(str(cell) for cell in row))
    return t


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


@contextmanager
def user_errors():
    """Turn our errors into one clear message and the error's exit code, instead of a traceback."""
    try:
        yield
    except (AirgapError, BundleError) as exc:
        # Plain print: a message must reach logs whole, never re-wrapped or read as markup.
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted; files already complete are kept, a re-run continues from there")
        raise Exit(code=130) from None
