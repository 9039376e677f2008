"""The evidence page an approver opens: rendered by headless Chromium from a file, with a screenshot kept."""

from __future__ import annotations

import datetime
from pathlib import Path

from devpi_airgap.core.advisories import Snapshot
from devpi_airgap.core.audit import audit_files
from devpi_airgap.core.lock import lock_changes
from devpi_airgap.core.policy import AdvisoryPolicy, LicensePolicy, Policy, Waiver
from devpi_airgap.transfer.evidence import build_evidence, render_html
from testing.browser import artifacts_dir, chromium_path, dump_dom, screenshot
from testing.fakeosv import record
from testing.wheels import make_wheel


def evidence_page(tmp_path: Path) -> Path:
    wheels = [
        make_wheel(tmp_path / "w", "app", "1.0", headers=[("License-Expression", "MIT")]),
        make_wheel(tmp_path / "w", "lib", "2.0", headers=[("License", "Apache 2.0")]),
        make_wheel(tmp_path / "w", "mystery", "1.0", headers=[("License", "see LICENSE.txt")]),
    ]
    policy = Policy(
        LicensePolicy(allow=frozenset({"MIT", "Apache-2.0"})),
        AdvisoryPolicy(waivers=(Waiver("GHSA-lib", "lib", datetime.date(2099, 1, 1), "ana", "not reachable"),)),
    )
    snapshot = Snapshot(
        "http://osv.test",
        "2026-11-26T00:00:00Z",
        {"GHSA-lib": record("GHSA-lib", "lib", ["2.0"], fixed="2.1", label="HIGH")},
    )
    report = audit_files(policy, {"win313": wheels}, snapshot)
    evidence = build_evidence(
        bundle_id="20261126T000000Z-abcdef12",
        created="20261126T000000Z",
        signer="ops@example",
        report=report,
        target_changes={
            "win313": lock_changes(
                {"lib": ["1.0"], "gone": ["1.0"]}, {"app": ["1.0"], "lib": ["2.0"], "mystery": ["1.0"]}
            )
        },
        sboms={"win313": "sbom/win313.cdx.json"},
        hash_pinned={"win313": ["base.txt"]},
    )
    page = tmp_path / "evidence.html"
    page.write_text(render_html(evidence), encoding="utf-8")
    return page


def test_the_evidence_page_renders_offline_with_changes_review_and_waived_advisories(tmp_path):
    chromium = chromium_path()
    page = evidence_page(tmp_path)
    dom = " ".join(dump_dom(chromium, tmp_path / "profile", page.as_uri()).split())
    assert "Evidence for bundle 20261126T000000Z-abcdef12" in dom and "signer: ops@example" in dom
    assert "lib 1.0 -&gt; 2.0" in dom and "gone 1.0" in dom  # updated and removed since the last bundle
    assert "mystery-1.0-py3-none-any.whl" in dom.split("Needs review", 1)[1].split("Target win313", 1)[0]
    assert "GHSA-lib" in dom and "waived until 2099-01-01 by ana" in dom
    assert "Pinned by --hash: base.txt; every file is one whose sha256 they allow." in dom
    screenshot(chromium, tmp_path / "profile", page.as_uri(), artifacts_dir() / "evidence.png")
