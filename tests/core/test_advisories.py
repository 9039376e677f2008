"""Advisories matched to versions by OSV's ranges, their severity, and waivers."""

from __future__ import annotations

import datetime

from devpi_airgap.core.advisories import BELOW, BLOCKED, WAIVED, Snapshot, affects, judge, severity
from devpi_airgap.core.policy import AdvisoryPolicy, Waiver
from testing.fakeosv import record

TODAY = datetime.date(2026, 11, 26)


def test_ranges_decide_without_a_versions_list():
    r = record("OSV-1", "Lib_Name", [], fixed="2.0")
    r["affected"][0]["ranges"][0]["events"] = [
        {"introduced": "1.0"},
        {"fixed": "1.5"},
        {"introduced": "1.8"},
        {"fixed": "2.0"},
    ]
    assert [v for v in ["0.9", "1.0", "1.4.9", "1.5", "1.9", "2.0", "3.0"] if affects(r, "lib-name", v)] == [
        "1.0",
        "1.4.9",
        "1.9",
    ]
    last = record("OSV-2", "lib", [])
    last["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"last_affected": "1.2"}]
    assert affects(last, "lib", "1.2") and not affects(last, "lib", "1.2.1")
    assert not affects(record("OSV-3", "other", ["1.0"]), "lib", "1.0")


def test_severity_comes_from_the_cvss_vector_or_else_the_databases_label():
    assert severity(record("A", "x", [], cvss="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")) == "critical"
    assert severity(record("B", "x", [], label="MODERATE")) == "medium"
    assert severity(record("C", "x", [], cvss="CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", label="HIGH")) == "high"
    assert severity(record("D", "x", [])) is None


def test_block_threshold_waivers_and_an_expired_waiver_that_stops_applying():
    snapshot = Snapshot(
        "test",
        "now",
        {
            "GHSA-high": record("GHSA-high", "lib", ["1.0"], fixed="1.1", label="HIGH", aliases=("CVE-1",)),
            "GHSA-low": record("GHSA-low", "lib", ["1.0"], label="LOW"),
            "GHSA-old": record("GHSA-old", "app", ["2.0"], fixed="2.1", label="CRITICAL"),
        },
    )
    policy = AdvisoryPolicy(
        block="high",
        waivers=(
            Waiver("CVE-1", "lib", datetime.date(2027, 1, 31), "ana", "not reachable in our use"),
            Waiver("GHSA-old", "app", datetime.date(2026, 11, 1), "ben", "fix pending"),
        ),
    )
    findings = judge(snapshot, [("lib", "1.0"), ("app", "2.0"), ("lib", "1.1")], policy, TODAY)
    found = {f.id: f for f in findings if f.version != "1.1"}
    assert found["GHSA-high"].verdict == WAIVED and "ana" in found["GHSA-high"].note  # waived by its alias
    assert found["GHSA-low"].verdict == BELOW
    assert found["GHSA-old"].verdict == BLOCKED and "expired on 2026-11-01" in found["GHSA-old"].note
    assert found["GHSA-old"].fixed == ("2.1",)
    # 1.1 is the fixed version of GHSA-high; the low one has no fix and still applies.
    assert [f.id for f in findings if f.version == "1.1"] == ["GHSA-low"]
