"""A loopback stand-in for OSV's API (POST /v1/querybatch, GET /v1/vulns/ID), and OSV export zips.

The real service is out of reach in tests. The fake answers a query from each
record's explicit `versions` list only, the way OSV's own database lists
affected PyPI versions, so it does not share the range logic under test.
"""

from __future__ import annotations

import http.server
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testing.fakeindex import serving


def record(
    vid: str,
    package: str,
    versions: list[str],
    *,
    fixed: str | None = None,
    cvss: str | None = None,
    label: str | None = None,
    aliases: tuple[str, ...] = (),
) -> dict:
    """An OSV record for one PyPI package; severity from a CVSS v3 vector and/or the database's label."""
    events: list[dict] = [{"introduced": "0"}] + ([{"fixed": fixed}] if fixed else [])
    data: dict = {
        "id": vid,
        "aliases": list(aliases),
        "summary": f"test advisory {vid}",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "versions": versions,
            }
        ],
    }
    if cvss:
        data["severity"] = [{"type": "CVSS_V3", "score": cvss}]
    if label:
        data["database_specific"] = {"severity": label}
    return data


def write_zip(path: Path, records: list[dict]) -> Path:
    """An export in OSV's layout: one ID.json per record."""
    with zipfile.ZipFile(path, "w") as archive:
        for r in records:
            archive.writestr(f"{r['id']}.json", json.dumps(r))
    return path


@dataclass
class FakeOSV:
    url: str
    records: list[dict]
    requests: list[str] = field(default_factory=list)
    fail: bool = False  # answer every request with 503


@contextmanager
def serve_osv(records: list[dict]) -> Iterator[FakeOSV]:
    fake = FakeOSV("", records)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            fake.requests.append(f"POST {self.path}")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if fake.fail or self.path != "/v1/querybatch":
                return self._answer(503 if fake.fail else 404, {"error": "unavailable"})
            results = []
            for query in body["queries"]:
                # Without a version, OSV answers every advisory of the package.
                name, version = query["package"]["name"].lower(), query.get("version")
                hits = [
                    {"id": r["id"], "modified": "2026-01-01T00:00:00Z"}
                    for r in fake.records
                    if any(
                        a["package"]["name"].lower() == name and (version is None or version in a.get("versions", []))
                        for a in r["affected"]
                    )
                ]
                results.append({"vulns": hits} if hits else {})
            self._answer(200, {"results": results})

        def do_GET(self):
            fake.requests.append(f"GET {self.path}")
            wanted = self.path.removeprefix("/v1/vulns/")
            found = next((r for r in fake.records if r["id"] == wanted), None)
            if fake.fail or found is None:
                return self._answer(503 if fake.fail else 404, {"error": "not found"})
            self._answer(200, found)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server, "fakeosv"):
        yield fake
