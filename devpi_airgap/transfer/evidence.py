"""The evidence pack an approver reads before a bundle crosses the gap: evidence.json and evidence.html.

Per target: what is new, updated or removed since the previous bundle; each
file's license and the review list; the advisories with their waivers; the
SBOM file. Both files travel inside the bundle, listed in its manifest, so
the signature covers them.
"""

from __future__ import annotations

import html
import json
from collections import Counter

from devpi_airgap.core.audit import AuditReport
from devpi_airgap.core.policy import Policy


def _policy_summary(policy: Policy) -> dict:
    summary: dict = {}
    if policy.licenses:
        p = policy.licenses
        summary["licenses"] = {
            "allow": sorted(p.allow),
            "deny": sorted(p.deny),
            "unknown": p.unknown,
            "exceptions": [{"package": e.package, "reason": e.reason} for e in p.exceptions],
        }
    if policy.advisories:
        a = policy.advisories
        summary["advisories"] = {
            "source": a.osv_zip or a.osv_url,
            "block": a.block,
            "waivers": [
                {"id": w.id, "package": w.package, "until": str(w.until), "by": w.by, "reason": w.reason}
                for w in a.waivers
            ],
        }
    return summary


def build_evidence(
    *,
    bundle_id: str,
    created: str,
    signer: str,
    report: AuditReport,
    target_changes: dict[str, dict[str, list]],
    sboms: dict[str, str],
    hash_pinned: dict[str, list[str]],
) -> dict:
    """`hash_pinned`: by target, its requirements files that pin with --hash, each file checked against them."""
    targets = {}
    for audit in report.targets:
        verdicts = Counter(f.verdict for f in audit.licenses)
        targets[audit.target] = {
            "files": len(audit.licenses),
            "changes": target_changes.get(audit.target, {"new": [], "updated": [], "removed": []}),
            "license_counts": dict(sorted(verdicts.items())),
            "licenses": [f.as_dict() for f in sorted(audit.licenses, key=lambda f: f.filename)],
            "advisories": [f.as_dict() for f in audit.advisories],
            "sbom": sboms.get(audit.target),
            "hash_pinned": hash_pinned.get(audit.target, []),
        }
    return {
        "format": 1,
        "bundle_id": bundle_id,
        "created": created,
        "signer": signer,
        "policy": _policy_summary(report.policy),
        "advisory_source": (
            {
                "source": report.snapshot.source,
                "fetched": report.snapshot.fetched,
                "records": len(report.snapshot.vulns),
            }
            if report.snapshot
            else None
        ),
        "review": [f.as_dict() for f in report.review()],
        "expired_waivers": report.expired_waivers(),
        "targets": targets,
    }


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p class=none>none</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}.none{color:#777}.blocked{color:#b00;font-weight:bold}h2{margin-top:2em}
.summary td:nth-child(n+2){text-align:right}
"""


def render_html(evidence: dict) -> str:
    """A page that opens offline: no script, no external file."""
    e = evidence
    parts = [
        f"<h1>Evidence for bundle {html.escape(e['bundle_id'])}</h1>",
        f"<p>Created {html.escape(e['created'])}; signer: {html.escape(e['signer'])}.</p>",
    ]
    source = e["advisory_source"]
    parts.append(
        "<p>Advisories: "
        + (
            f"{source['records']} record{'s' if source['records'] != 1 else ''} from "
            f"{html.escape(source['source'])}, read {html.escape(source['fetched'])}."
            if source
            else "not checked (no policy.advisories)."
        )
        + "</p>"
    )
    rows = []
    for name, t in e["targets"].items():
        blocked = sum(a["verdict"] == "blocked" for a in t["advisories"])
        rows.append(
            [
                name,
                t["files"],
                len(t["changes"]["new"]),
                len(t["changes"]["updated"]),
                len(t["changes"]["removed"]),
                t["license_counts"].get("review", 0),
                len(t["advisories"]),
                blocked,
            ]
        )
    parts.append("<h2>Summary</h2>")
    parts.append(
        _table(
            ["target", "files", "new", "updated", "removed", "license review", "advisories", "blocking"], rows
        ).replace("<table>", "<table class=summary>", 1)
    )
    parts.append("<h2>Needs review</h2>")
    parts.append(
        _table(
            ["file", "license", "reason"], [[r["filename"], r["license"] or r["raw"], r["reason"]] for r in e["review"]]
        )
    )
    if e["expired_waivers"]:
        parts.append(
            "<h2>Expired waivers</h2><ul>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in e["expired_waivers"])
            + "</ul>"
        )
    for name, t in e["targets"].items():
        parts.append(f"<h2>Target {html.escape(name)}</h2>")
        parts.append(f"<p>SBOM: {html.escape(t['sbom'] or 'none')}</p>")
        pinned = t.get("hash_pinned") or []
        parts.append(
            f"<p>Pinned by --hash: {html.escape(', '.join(pinned))}; every file is one whose sha256 they allow.</p>"
            if pinned
            else "<p>Pinned by --hash: no (its requirements carry no hashes).</p>"
        )
        for kind in ("new", "updated", "removed"):
            parts.append(f"<h3>{kind.capitalize()} ({len(t['changes'][kind])})</h3>")
            parts.append(_table(["project"], [[c] for c in t["changes"][kind]]))
        parts.append("<h3>Advisories</h3>")
        parts.append(
            _table(
                ["project", "version", "id", "severity", "fixed in", "verdict", "note"],
                [
                    [
                        a["name"],
                        a["version"],
                        a["id"],
                        a["severity"] or "unknown",
                        ", ".join(a["fixed"]) or "-",
                        a["verdict"],
                        a["note"],
                    ]
                    for a in t["advisories"]
                ],
            )
        )
        parts.append("<h3>Licenses</h3>")
        parts.append(
            _table(
                ["file", "license", "read from", "verdict"],
                [
                    [f["filename"], f["license"] or f["raw"] or "unknown", f["source"], f["verdict"]]
                    for f in t["licenses"]
                ],
            )
        )
    page = "\n".join(parts).replace("<td>blocked</td>", "<td class=blocked>blocked</td>")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Evidence {html.escape(e['bundle_id'])}</title><style>{_STYLE}</style></head><body>\n{page}\n</body></html>\n"
    )


def to_json(evidence: dict) -> bytes:
    return json.dumps(evidence, indent=1, sort_keys=True).encode()
