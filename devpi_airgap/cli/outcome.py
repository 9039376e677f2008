"""The one outcome contract: an error becomes one message on stderr and its exit code, never a traceback."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from invoke.exceptions import Exit

from devpi_airgap.core.console import err
from devpi_airgap.core.errors import AirgapError, ExitCode


@contextmanager
def user_errors():
    """Turn our errors into one clear message and the error's exit code, instead of a traceback."""
    try:
        yield
    except AirgapError as exc:
        # Plain print: a message must reach logs whole, never re-wrapped or read as markup.
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise Exit(code=int(exc.exit_code)) from None
    except KeyboardInterrupt:
        err.print("interrupted; files already complete are kept, a re-run continues from there")
        raise Exit(code=int(ExitCode.INTERRUPTED)) from None
