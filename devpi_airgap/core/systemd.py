"""systemd's command-line quoting: the one rule for every unit we write, on either side of the gap."""

from __future__ import annotations

import re

# Words made only of these need no quotes; anything else is quoted and escaped.
PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def exec_word(arg: str) -> str:
    """One word of ExecStart= (or a path setting). systemd splits like a shell but expands % and $VARS."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if PLAIN.fullmatch(arg):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(argv: list[str]) -> str:
    return " ".join(exec_word(a) for a in argv)
