"""Each wheel's license, read from its own METADATA and normalised to SPDX, and judged against the policy.

The order follows the metadata's own precedence: `License-Expression` (PEP 639)
is authoritative; else the free-text `License` field, when it names a license
rather than holding its text; else the trove classifiers. What cannot be
mapped to SPDX stays unknown and goes on the review list, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from license_expression import ExpressionError, LicenseSymbol, Licensing, get_spdx_licensing
from packaging.utils import canonicalize_name, parse_wheel_filename

from devpi_airgap.core.files import change_stamp, write_if_changed
from devpi_airgap.core.metadata import read_metadata
from devpi_airgap.core.policy import LicensePolicy

ALLOWED, DENIED, REVIEW, EXCEPTED = "allowed", "denied", "review", "excepted"

# Names people write in the License field for an SPDX license, lower-cased.
_ALIASES = {
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "mit license": "MIT",
    "the mit license": "MIT",
    "new bsd": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "bsd 3-clause license": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause",
    "2-clause bsd": "BSD-2-Clause",
    "2-clause bsd license": "BSD-2-Clause",
    "two-clause bsd license": "BSD-2-Clause",
    "zpl 2.1": "ZPL-2.1",
    "bsd-3": "BSD-3-Clause",
    "simplified bsd": "BSD-2-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "psf": "PSF-2.0",
    "psf license": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "mpl 2.0": "MPL-2.0",
    "mpl-2": "MPL-2.0",
    "isc license": "ISC",
    "lgplv3": "LGPL-3.0-only",
    "gplv3": "GPL-3.0-only",
    "gplv2": "GPL-2.0-only",
    "public domain": "LicenseRef-Public-Domain",
}

# Trove classifiers that name exactly one SPDX license. "BSD License" and the
# like name a family, not a license, so they are left out on purpose.
_CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
    "License :: OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}


@dataclass(frozen=True)
class LicenseInfo:
    """A wheel's license: the SPDX expression (None if unknown), what it was read from, and the raw text."""

    expression: str | None
    source: str  # "License-Expression", "License", "classifiers" or "none"
    raw: str


@dataclass(frozen=True)
class LicenseFinding:
    name: str
    version: str
    filename: str
    license: LicenseInfo
    verdict: str  # allowed, denied, review or excepted
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "filename": self.filename,
            "license": self.license.expression,
            "source": self.license.source,
            "raw": self.license.raw,
            "verdict": self.verdict,
            "reason": self.reason,
        }


@cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


def normalise(text: str) -> str | None:
    """`text` as a canonical SPDX expression, or None if it isn't one (LicenseRef- ids pass as they are)."""
    text = " ".join(text.split())
    if not text or len(text) > 200:  # a license's full text, not its name
        return None
    text = _ALIASES.get(text.lower().removesuffix("."), text)
    if text.startswith("LicenseRef-") and " " not in text:
        return text
    try:
        return str(_licensing().parse(text, validate=True, strict=True).render())
    except ExpressionError:
        return None


class LicenseCache:
    """Licenses already read, keyed by what no write can leave as it was: size, inode and change time.

    A wheel is immutable once in the pool, so re-reading its METADATA on every
    audit would only cost time (most of an audit's); a file that was rewritten
    has a new ctime and is read again.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self.entries: dict[str, list] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            self.entries = {}

    def get(self, wheel: Path) -> LicenseInfo:
        stamp = change_stamp(wheel)
        entry = self.entries.get(wheel.name)
        if entry and entry[0] == stamp:
            return LicenseInfo(*entry[1])
        info = read_license(wheel)
        self.entries[wheel.name] = [stamp, [info.expression, info.source, info.raw]]
        return info

    def save(self) -> None:
        write_if_changed(self.path, json.dumps(self.entries, sort_keys=True))


def read_license(wheel: Path) -> LicenseInfo:
    metadata = read_metadata(wheel)
    expression = metadata.get("License-Expression")
    if expression:
        return LicenseInfo(normalise(expression), "License-Expression", expression)
    free_text = (metadata.get("License") or "").strip()
    if free_text and (spdx := normalise(free_text)):
        return LicenseInfo(spdx, "License", free_text)
    classifiers = [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    mapped = [_CLASSIFIERS.get(c) for c in classifiers]
    if mapped and all(mapped):
        # Several license classifiers on one project mean the user may choose among them.
        return LicenseInfo(
            normalise(" OR ".join(dict.fromkeys(m for m in mapped if m))), "classifiers", "; ".join(classifiers)
        )
    raw = free_text.splitlines()[0][:120] if free_text else "; ".join(classifiers)
    return LicenseInfo(None, "none", raw)


def _verdict(node, policy: LicensePolicy) -> str:
    if isinstance(node, LicenseSymbol) or not getattr(node, "args", None):
        key = str(node.render()) if hasattr(node, "render") else str(node)
        base = key.split(" WITH ")[0]
        if key in policy.deny or base in policy.deny:
            return DENIED
        return ALLOWED if key in policy.allow or base in policy.allow else REVIEW
    verdicts = [_verdict(arg, policy) for arg in node.args]
    if isinstance(node, _licensing().OR):  # the user may choose: one allowed branch is enough
        return ALLOWED if ALLOWED in verdicts else DENIED if all(v == DENIED for v in verdicts) else REVIEW
    return DENIED if DENIED in verdicts else ALLOWED if all(v == ALLOWED for v in verdicts) else REVIEW


def judge(wheel: Path, policy: LicensePolicy | None, known: LicenseCache | None = None) -> LicenseFinding:
    name, version, _, _ = parse_wheel_filename(wheel.name)
    info = known.get(wheel) if known else read_license(wheel)
    if policy is None:
        return LicenseFinding(name, str(version), wheel.name, info, REVIEW, "no license policy set")
    exception = policy.exception_for(canonicalize_name(name))
    if exception:
        return LicenseFinding(name, str(version), wheel.name, info, EXCEPTED, exception.reason)
    if info.expression is None:
        reason = "no SPDX license could be read" if info.raw else "no license declared"
        return LicenseFinding(name, str(version), wheel.name, info, REVIEW, reason)
    verdict = _verdict(_licensing().parse(info.expression), policy)
    reason = {DENIED: "denied by policy", REVIEW: "neither allowed nor denied", ALLOWED: ""}[verdict]
    return LicenseFinding(name, str(version), wheel.name, info, verdict, reason)


def blocking(findings: list[LicenseFinding], policy: LicensePolicy | None) -> list[LicenseFinding]:
    """The findings that stop a run: denied ones, and under `unknown: block` those needing review too."""
    if policy is None:
        return []
    return [f for f in findings if f.verdict == DENIED or (f.verdict == REVIEW and policy.unknown == "block")]
