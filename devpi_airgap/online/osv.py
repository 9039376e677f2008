"""Read advisories from OSV: its batch API at a configurable URL, or an OSV export zip carried as a file.

Both give a Snapshot of the records that concern the locked files. A source
that cannot be read fails the run with the URL or path named: an advisory
check that silently passed would be worse than none.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from devpi_airgap.core.advisories import Snapshot, affects, key
from devpi_airgap.core.errors import FetchError
from devpi_airgap.core.policy import AdvisoryPolicy
from devpi_airgap.core.pools import stoppable_pool
from devpi_airgap.online.tls import tls_context

if TYPE_CHECKING:
    import httpx

BATCH = 1000  # OSV's limit of queries per querybatch request
WORKERS = 8


class AdvisorySourceError(FetchError):
    """The advisory source could not be read; the run fails closed."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def snapshot_for(policy: AdvisoryPolicy, packages: Sequence[tuple[str, str | None]]) -> Snapshot:
    """The advisories that concern `packages` (name, version), from the policy's zip or its URL.

    A version of None asks for every advisory of that project, whatever version
    it affects: what an offline re-scan of older versions on the index needs.
    """
    if policy.osv_zip:
        return from_zip(Path(policy.osv_zip), packages)
    return from_api(policy.osv_url, packages)


def from_api(url: str, packages: Sequence[tuple[str, str | None]]) -> Snapshot:
    import httpx  # here, not at the top: only a run that asks OSV pays for its import (44 ms)

    snapshot = Snapshot(url, _now())
    unique = sorted(set(packages), key=lambda p: (p[0], p[1] or ""))
    try:
        with httpx.Client(
            timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True, verify=tls_context()
        ) as client:
            for start in range(0, len(unique), BATCH):
                _query_batch(client, url, unique[start : start + BATCH], snapshot)
            ids = sorted({vid for hits in snapshot.hits.values() for vid in hits})
            with stoppable_pool(WORKERS) as pool:
                for record in pool.map(lambda vid: _get_json(client, "GET", f"{url}/v1/vulns/{vid}"), ids):
                    snapshot.vulns[record["id"]] = record
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise AdvisorySourceError(
            f"advisories: the OSV service at {url} could not be read ({type(exc).__name__}: {exc}); "
            "nothing was judged, so nothing passes. Check policy.advisories.osv_url and the network, or carry "
            "an OSV export and set policy.advisories.osv_zip instead"
        ) from None
    return snapshot


def _get_json(client: httpx.Client, method: str, url: str, body: dict | None = None) -> dict:
    response = client.request(method, url, json=body)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"{url} answered {type(data).__name__}, not an object")
    return data


def _query_batch(
    client: httpx.Client, url: str, packages: Sequence[tuple[str, str | None]], snapshot: Snapshot
) -> None:
    pending: list[tuple[str, str | None, str | None]] = [(name, version, None) for name, version in packages]
    while pending:  # a result with a next_page_token has more vulns: ask again for those queries only
        queries = [
            {
                "package": {"name": n, "ecosystem": "PyPI"},
                **({"version": v} if v else {}),
                **({"page_token": t} if t else {}),
            }
            for n, v, t in pending
        ]
        results = _get_json(client, "POST", f"{url}/v1/querybatch", {"queries": queries})["results"]
        if len(results) != len(queries):
            raise ValueError(f"{len(queries)} queries got {len(results)} results")
        again = []
        for (name, version, _), result in zip(pending, results, strict=True):
            ids = [v["id"] for v in result.get("vulns", [])]
            if ids:
                # Without a version, the ids are every advisory of the project: the matcher decides per version.
                snapshot.hits.setdefault(key(name, version) if version else f"{name}==*", []).extend(ids)
            if result.get("next_page_token"):
                again.append((name, version, result["next_page_token"]))
        pending = again


def from_zip(path: Path, packages: Sequence[tuple[str, str | None]]) -> Snapshot:
    """Every record in the export that affects one of `packages`; the rest of the export stays behind."""
    names = {canonicalize_name(n) for n, _ in packages}
    snapshot = Snapshot(path.name, _now())
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".json"):
                    continue
                record = json.loads(archive.read(member))
                touched = {canonicalize_name(a.get("package", {}).get("name", "")) for a in record.get("affected", [])}
                if touched & names and any(
                    v is None or affects(record, n, v) for n, v in packages if canonicalize_name(n) in touched
                ):
                    snapshot.vulns[record["id"]] = record
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise AdvisorySourceError(
            f"advisories: the OSV export {path} could not be read ({exc}); nothing was judged, so nothing "
            "passes. Download it again (e.g. https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip) "
            "and check policy.advisories.osv_zip"
        ) from None
    return snapshot
