"""The one outcome contract: an error becomes one message on stderr and its exit code, never a traceback."""

from __future__ import annotations

import errno
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke.exceptions import Exit

from devpi_airgap.core.console import err
from devpi_airgap.core.errors import AirgapError, ExitCode

# What `kill PID`, a closed terminal or a service manager stopping a scheduled run sends; on Windows, Ctrl-Break
# (SIGBREAK), which otherwise ends the process at once. Each platform has only some of them.
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGBREAK") if hasattr(signal, name))


@contextmanager
def _stopping_as_ctrl_c(received: list[int]) -> Iterator[None]:
    """SIGTERM and SIGHUP stop the run as Ctrl-C does; `received` hears which came.

    Left to their default, either ends Python where it stands: no cleanup runs, so the scratch and
    partial files stay until a later run sweeps them, and the caller hears no reason. A terminal's
    Ctrl-C reaches the whole job, uv and pip included; so here the run's own process group hears
    SIGINT too, when the run leads it, as it does when started from a shell or by a service manager.
    This process ignores that copy and raises at once: under `nohup` or `&`, SIGINT is ignored from
    the start, and a SIGINT arriving later could cut a cleanup short.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        if sys.platform != "win32" and os.getpgrp() == os.getpid():
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                os.killpg(os.getpgrp(), signal.SIGINT)
            finally:
                signal.signal(signal.SIGINT, previous)
        raise KeyboardInterrupt

    # A signal ignored from the start stays ignored: `nohup inv refresh &` is meant to outlive its terminal.
    default = [signum for signum in _STOP_SIGNALS if signal.getsignal(signum) == signal.SIG_DFL]
    previous = {signum: signal.signal(signum, stop) for signum in default}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def user_errors(*, changes_nothing: bool = False):
    """Turn our errors into one clear message and the error's exit code, instead of a traceback.

    changes_nothing: the task only reads and reports (a --check, a status), so an interrupted run says so.
    """
    received: list[int] = []
    try:
        with _stopping_as_ctrl_c(received):
            yield
    except AirgapError as exc:
        # Plain print: a message must reach logs whole, never re-wrapped or read as markup.
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise Exit(code=int(exc.exit_code)) from None
    except OSError as exc:
        # Past every library's own handling, an I/O error is still the disk or the system, never a bug to trace.
        print(f"error: {io_failure(exc)}", file=sys.stderr, flush=True)
        raise Exit(code=int(ExitCode.FETCH)) from None
    except KeyboardInterrupt:
        how = f"stopped by {signal.Signals(received[0]).name}" if received else "interrupted"
        if changes_nothing:
            err.print(f"{how}; nothing was changed")
        else:
            err.print(f"{how}; files already complete are kept, a re-run continues from there")
        raise Exit(code=int(ExitCode.INTERRUPTED)) from None


# Windows refuses a path of 260 characters or more unless long paths are enabled (Python 3.6+ asks for them).
_WINDOWS_MAX_PATH = 260


def _in_temporary_directory(path: object) -> bool:
    """Whether path lies in the temporary directory, which users seldom choose and so do not think of."""
    if not isinstance(path, (str, bytes, os.PathLike)) or not path:
        return False
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    except (OSError, ValueError):
        return False


def io_failure(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    long_path = max((str(n) for n in (exc.filename, exc.filename2) if n), key=len, default="")
    if sys.platform == "win32" and len(long_path) >= _WINDOWS_MAX_PATH:
        return (
            f"{long_path}: {exc.strerror or exc}. The path is {len(long_path)} characters long, and Windows takes "
            f"fewer than {_WINDOWS_MAX_PATH} unless long paths are enabled. Move the inventory's folder (and so "
            "its wheelhouse) to a shorter path such as C:\\airgap, or have long paths enabled (Group Policy "
            "'Enable Win32 long paths'), and run again"
        )
    if exc.errno == errno.ENOSPC and _in_temporary_directory(exc.filename):
        return (
            f"the disk is full{where}: {exc.strerror}. That is in this machine's temporary directory, where the run "
            "unpacks, builds and checks, and which it empties again: point TMPDIR (on Windows, TEMP) at a disk with "
            "room, or free space there, and run again"
        )
    if exc.errno == errno.ENOSPC:
        return (
            f"the disk is full{where}: {exc.strerror}. Nothing half-written was kept; free space there and "
            "run again, and the run continues from what is complete"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"no permission to write{where}: {exc.strerror}. Fix the permissions (or the path) and run again"
    return f"an I/O operation failed{where}: {exc.strerror or exc}. Fix the cause and run again"


def usage_errors_exit_2() -> None:
    """Make Invoke's (and Fabric's) own errors about the task line exit 2, as the exit-code table says.

    Invoke ends every parser error with exit 1, hard-coded in Program.run. It
    imports tasks.py and fabfile.py before it parses the task line, so calling
    this from there turns a misspelled task, an unknown option, an option
    missing its value or given one of the wrong kind into a UsageError's exit.
    Errors in Invoke's own core options (before any task name) are parsed
    earlier and still exit 1.
    """
    from invoke.exceptions import ParseError
    from invoke.program import Program

    if getattr(Program.parse_tasks, "_exits_2", False):
        return
    parse_tasks = Program.parse_tasks

    def parse_tasks_exiting_2(self) -> None:
        try:
            parse_tasks(self)
        except ParseError as exc:
            message = f"error: {exc} `--list` shows the tasks and `--help TASK` a task's options."
            raise Exit(message=message, code=int(ExitCode.USAGE)) from None
        except ValueError as exc:  # a typed option (`--keep x` where a number belongs): Invoke lets int() raise
            message = f"error: an option got a value it cannot take ({exc}). `--help TASK` shows a task's options."
            raise Exit(message=message, code=int(ExitCode.USAGE)) from None

    parse_tasks_exiting_2._exits_2 = True  # type: ignore[attr-defined]
    Program.parse_tasks = parse_tasks_exiting_2  # type: ignore[method-assign]
