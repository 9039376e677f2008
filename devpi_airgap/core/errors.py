"""Errors that end a task with a message for the user instead of a traceback."""


class AirgapError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_code = 1


class UsageError(AirgapError):
    """A task was called without something it needs."""

    exit_code = 2


class ResolutionError(AirgapError):
    """Requirements could not be resolved for a target."""

    exit_code = 3


class VerificationError(AirgapError):
    """A wheelhouse cannot install its target's requirements offline."""

    exit_code = 4


class FetchError(AirgapError):
    """A file could not be downloaded, or did not match the index's sha256."""

    exit_code = 5
