"""Errors that end a task with one message for the user, and the one table of exit codes.

Every exit code is defined here and nowhere else; each error class carries
its code, and the task layer turns an error into its message and its code.
The README shows this table.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # anything else that stopped a task; the message says what
    USAGE = 2  # a bad option, inventory, requirements file or secret
    RESOLUTION = 3  # requirements cannot be resolved for a target
    VERIFICATION = 4  # a wheelhouse cannot install its target offline, a locked file or every lock is missing
    FETCH = 5  # a download, the disk or another I/O failed
    REMOTE = 6  # a step on the server failed
    BUNDLE = 7  # a bundle was refused: checksum, signature, manifest or contents
    BUSY = 8  # another run holds the lock
    POLICY = 9  # a file breaks the license or advisory policy
    INTERRUPTED = 130  # Ctrl-C, SIGTERM or SIGHUP


class AirgapError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_code = ExitCode.FAILED


class UsageError(AirgapError):
    """A task was called without something it needs, or with input it cannot use."""

    exit_code = ExitCode.USAGE


class ResolutionError(AirgapError):
    """Requirements could not be resolved for a target."""

    exit_code = ExitCode.RESOLUTION


class VerificationError(AirgapError):
    """A wheelhouse cannot install its target's requirements offline."""

    exit_code = ExitCode.VERIFICATION


class FetchError(AirgapError):
    """A file could not be downloaded, or did not match the index's sha256."""

    exit_code = ExitCode.FETCH


class RemoteError(AirgapError):
    """A step on the server failed; the message names the step."""

    exit_code = ExitCode.REMOTE


class BundleError(AirgapError):
    """A bundle failed a check; nothing was taken from it."""

    exit_code = ExitCode.BUNDLE


class BusyError(AirgapError):
    """Another run holds the lock this run needs."""

    exit_code = ExitCode.BUSY
