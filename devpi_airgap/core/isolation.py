"""Run pip and uv blind to the user's own configuration.

A user's pip.conf or uv.toml may carry find-links, extra indexes or
constraints. Any of them leaking into a wheelhouse would make it depend on the
machine that built it, so every pip/uv we start sees only what we pass.
"""

from __future__ import annotations

import os
import shutil
import threading
from functools import lru_cache

# Knobs that change where files are cached, how long to wait or which CAs are trusted, never what is chosen.
_UV_KEEP = {"UV_CACHE_DIR", "UV_HTTP_TIMEOUT", "UV_CONCURRENT_DOWNLOADS", "UV_CONCURRENT_BUILDS", "UV_SYSTEM_CERTS"}


def isolated_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIP_") and not (key.startswith("UV_") and key not in _UV_KEEP)
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
        # Never let uv fetch an interpreter: resolution needs none of the target's version.
        UV_PYTHON_DOWNLOADS="never",
        # Python children (pip, venv) write UTF-8, as uv does, and we read every child as UTF-8. Else a Windows
        # pip writes its code page (cp949 on a Korean PC), and a path under C:\Users\김민수 cannot be read back.
        PYTHONIOENCODING="utf-8",
    )
    env.setdefault("RES_OPTIONS", _LOOKUP_RETRY)
    # uv trusts this machine's certificate store, as our own downloads do (online/tls.py), unless the user says no
    env.setdefault("UV_SYSTEM_CERTS", "true")
    env.update(extra)
    return env


# uv looks a host up anew for each of the twenty or so connections a try opens, and a resolver that drops
# part of a burst (this machine's answers about twenty lookups at once) leaves each dropped one to glibc's
# 5 s timeout. Three cold tries run together took 6.3-13.2 s each; asked again after 1 s (then 2, then 4),
# 1.6-4.6 s. A user's own RES_OPTIONS is kept; other C libraries and systems ignore the variable.
_LOOKUP_RETRY = "timeout:1 attempts:3"


_LOCATING = threading.Lock()


def uv_binary() -> str:
    # Resolution and verification call this from many threads at once, and the
    # first use of sysconfig (inside find_uv_bin) is not thread-safe.
    with _LOCATING:
        return _locate_uv()


@lru_cache(maxsize=1)
def _locate_uv() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            from devpi_airgap.core.errors import AirgapError

            raise AirgapError("uv is not installed; run `pip install -e .` in the project's venv") from None
        return found
