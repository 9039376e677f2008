"""The outcome contract: one message and the table's exit code, for our errors and for the system's."""

from __future__ import annotations

import errno
import signal
import sys

import pytest
from invoke.exceptions import Exit

from devpi_airgap.cli.outcome import user_errors
from devpi_airgap.core.errors import BundleError, ExitCode, ResolutionError


@pytest.mark.parametrize(
    "raised, code, fragment",
    [
        (ResolutionError("no fitting file for x"), ExitCode.RESOLUTION, "error: no fitting file for x"),
        (BundleError("bad signature"), ExitCode.BUNDLE, "error: bad signature"),
        (OSError(errno.ENOSPC, "No space left on device", "/w/locks/a.lock.json"), ExitCode.FETCH, "the disk is full"),
        (PermissionError(errno.EACCES, "Permission denied", "/w"), ExitCode.FETCH, "no permission to write (/w)"),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "interrupted"),
    ],
)
def test_each_failure_is_one_message_and_its_code(capsys, raised, code, fragment):
    with pytest.raises(Exit) as stopped, user_errors():
        raise raised
    assert stopped.value.code == code
    said = capsys.readouterr().err
    assert fragment in said and "Traceback" not in said and said.count("error:") <= 1


@pytest.mark.parametrize(
    "changes_nothing, said", [(True, "interrupted; nothing was changed"), (False, "files already complete are kept")]
)
def test_an_interrupted_task_that_only_reads_says_nothing_was_changed(capsys, changes_nothing, said):
    with pytest.raises(Exit) as stopped, user_errors(changes_nothing=changes_nothing):
        raise KeyboardInterrupt
    assert stopped.value.code == ExitCode.INTERRUPTED and said in capsys.readouterr().err


def test_the_stop_signals_are_handled_only_inside_a_task():
    """Outside a task, and after it, SIGTERM keeps its default: the handler must not outlive the task."""
    if not hasattr(signal, "SIGTERM"):
        pytest.skip("no SIGTERM here")
    before = signal.getsignal(signal.SIGTERM)
    with user_errors():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_windows_path_past_its_length_limit_is_named_with_the_remedy(capsys, monkeypatch):
    deep = "C:\\Users\\kim.minsu\\OneDrive - Example Bank\\" + "project\\" * 25 + "wheelhouse\\.pool\\x.whl"
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(Exit) as stopped, user_errors():
        raise FileNotFoundError(errno.ENOENT, "The system cannot find the path specified", deep)
    monkeypatch.undo()
    said = " ".join(capsys.readouterr().err.split())
    assert stopped.value.code == ExitCode.FETCH
    assert f"The path is {len(deep)} characters long" in said and "C:\\airgap" in said and "long paths" in said
