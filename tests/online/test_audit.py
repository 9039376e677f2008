"""inv audit, download and bundle against the policy: wheels with chosen licenses, and a loopback OSV."""

from __future__ import annotations

import json
import socket
import tarfile
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from testing.environment import clean_env
from testing.fakeindex import Dist, add_release, build_index, serve_index
from testing.fakeosv import record, serve_osv, write_zip
from testing.signing import manifest_of
from testing.tasks import run_task

DISTS = [
    Dist("app", "1.0", requires=["lib"], headers=(("License-Expression", "MIT"),)),
    Dist("lib", "1.0", headers=(("License", "Apache 2.0"),)),
    Dist("agpl", "1.0", headers=(("License-Expression", "AGPL-3.0-only"),)),
    Dist("mystery", "1.0", headers=(("License", "see LICENSE.txt"),)),
]
LICENSES = "  licenses: {allow: [MIT, Apache-2.0], deny: [AGPL-3.0-only]}\n"
HIGH = record("GHSA-lib-high", "lib", ["1.0"], fixed="1.1", label="HIGH", aliases=("CVE-2026-1",))


@pytest.fixture
def index(tmp_path):
    with serve_index(build_index(tmp_path / "index", DISTS)) as served:
        yield served


def project(root: Path, index_url: str, requirements: str, policy: str = LICENSES) -> Path:
    root.mkdir(exist_ok=True)
    (root / "requirements.txt").write_text(requirements)
    (root / "inventory.yaml").write_text(
        f"index_url: {index_url}\n"
        'targets:\n  win313: {platform: win_amd64, python: "3.13", requirements: [requirements.txt]}\n'
        f"policy:\n{policy}"
    )
    return root


def run(root: Path, *args: str):
    return run_task(*args, "--inventory", str(root / "inventory.yaml"), env=clean_env(root))


def message(result) -> str:
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def test_a_denied_license_stops_download_and_bundle_naming_package_version_target_and_license(index, tmp_path):
    root = project(tmp_path / "p", index, "app\nagpl\n")
    result = run(root, "download")
    assert result.returncode == 9, result.stdout + result.stderr
    assert "agpl 1.0 (target win313): license AGPL-3.0-only is denied" in message(result)
    bundled = run(root, "bundle")
    assert bundled.returncode == 9
    assert not list((root / "bundles").glob("*.tar*")) if (root / "bundles").exists() else True
    assert not (root / "wheelhouse" / ".shipped.json").exists()


def test_a_license_neither_allowed_nor_denied_is_listed_for_review_and_blocks_only_under_unknown_block(index, tmp_path):
    root = project(tmp_path / "p", index, "app\nmystery\n")
    result = run(root, "download")
    assert result.returncode == 0, result.stderr
    assert "needs review: mystery-1.0-py3-none-any.whl: see LICENSE.txt" in " ".join(result.stdout.split())
    project(root, index, "app\nmystery\n", LICENSES.replace("}", ", unknown: block}"))
    blocked = run(root, "audit")
    assert blocked.returncode == 9 and "mystery 1.0 (target win313)" in message(blocked)


def test_a_blocking_advisory_names_its_ids_and_fix_a_waiver_lets_it_pass_and_an_expired_one_is_noticed(index, tmp_path):
    with serve_osv([HIGH, record("GHSA-app-low", "app", ["1.0"], label="LOW")]) as osv:
        advisories = f"  advisories: {{osv_url: '{osv.url}', block: high{{waivers}}}}\n"
        root = project(tmp_path / "p", index, "app\nlib==1.0\n", LICENSES + advisories.replace("{waivers}", ""))
        result = run(root, "download")
        assert result.returncode == 9, result.stdout + result.stderr
        assert "lib 1.0 (target win313): GHSA-lib-high (high), fixed in 1.1" in message(result)
        assert "GHSA-app-low" not in message(result)  # below the threshold: reported, not blocking
        assert "POST /v1/querybatch" in osv.requests and "GET /v1/vulns/GHSA-lib-high" in osv.requests
        assert run(root, "bundle").returncode == 9 and not (root / "bundles").exists()

        waiver = ", waivers: [{id: CVE-2026-1, package: lib, until: %s, by: ana, reason: not reachable}]"
        project(root, index, "app\nlib==1.0\n", LICENSES + advisories.replace("{waivers}", waiver % "2099-12-31"))
        assert run(root, "audit").returncode == 0
        project(root, index, "app\nlib==1.0\n", LICENSES + advisories.replace("{waivers}", waiver % "2026-01-31"))
        expired = run(root, "audit")
        assert expired.returncode == 9
        assert "the waiver by ana expired on 2026-01-31" in message(expired)


def test_an_unreachable_advisory_source_fails_closed_naming_the_url(index, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}"
    root = project(tmp_path / "p", index, "app\n", LICENSES + f"  advisories: {{osv_url: '{url}'}}\n")
    result = run(root, "download")
    assert result.returncode == 5 and f"the OSV service at {url} could not be read" in message(result)
    with serve_osv([HIGH]) as osv:
        osv.fail = True
        project(root, index, "app\n", LICENSES + f"  advisories: {{osv_url: '{osv.url}'}}\n")
        failed = run(root, "audit")
        assert failed.returncode == 5 and "503" in message(failed)


def test_an_osv_export_zip_serves_as_the_source_with_cvss_only_and_label_only_records(index, tmp_path):
    cvss_only = record("PYSEC-1", "lib", [], fixed="1.1", cvss="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    label_only = record("GHSA-2", "app", [], label="MODERATE")
    unrelated = record("GHSA-3", "numpy", ["1.0"], label="CRITICAL")
    write_zip(tmp_path / "PyPI-all.zip", [cvss_only, label_only, unrelated])
    policy = LICENSES + f"  advisories: {{osv_zip: {tmp_path / 'PyPI-all.zip'}, block: critical}}\n"
    root = project(tmp_path / "p", index, "app\nlib==1.0\n", policy)
    result = run(root, "download")
    assert result.returncode == 9 and "lib 1.0 (target win313): PYSEC-1 (critical), fixed in 1.1" in message(result)
    assert "GHSA-2" not in message(result)  # medium, below critical


def test_every_bundle_carries_its_evidence_under_the_manifest_with_a_valid_sbom_and_what_changed(index, tmp_path):
    with serve_osv([record("GHSA-app-low", "app", ["1.0"], label="LOW")]) as osv:
        policy = LICENSES + f"  advisories: {{osv_url: '{osv.url}'}}\n"
        root = project(tmp_path / "p", index, "app\nlib\nmystery\n", policy)
        assert run(root, "download").returncode == 0
        first = Path(run(root, "bundle").stdout.strip().splitlines()[-1])
        add_release(index.root, Dist("lib", "1.1", headers=(("License-Expression", "Apache-2.0"),)))
        assert run(root, "download").returncode == 0
        second = Path(run(root, "bundle").stdout.strip().splitlines()[-1])

    manifest = manifest_of(second)
    assert set(manifest["documents"]) == {
        "evidence.json",
        "evidence.html",
        "sbom/win313.cdx.json",
        "advisories/osv.json",
    }
    with tarfile.open(second) as tar:
        evidence = json.loads(tar.extractfile("evidence.json").read())
        page = tar.extractfile("evidence.html").read().decode()
        sbom = tar.extractfile("sbom/win313.cdx.json").read().decode()
        snapshot = json.loads(tar.extractfile("advisories/osv.json").read())
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom) is None
    components = {c["name"]: c for c in json.loads(sbom)["components"]}
    assert components["lib"]["version"] == "1.1" and components["lib"]["licenses"] == [{"expression": "Apache-2.0"}]
    assert components["lib"]["purl"] == "pkg:pypi/lib@1.1?file_name=lib-1.1-py3-none-any.whl"
    assert components["lib"]["hashes"][0]["alg"] == "SHA-256"
    assert components["lib"]["externalReferences"][0]["url"].endswith("/lib-1.1-py3-none-any.whl")
    assert components["lib"]["properties"] == [{"name": "devpi-airgap:resolution-set", "value": "requirements.txt"}]
    assert "licenses" not in components["mystery"]

    target = evidence["targets"]["win313"]
    assert target["changes"] == {"new": [], "updated": ["lib 1.0 -> 1.1"], "removed": []}
    assert [a["id"] for a in target["advisories"]] == ["GHSA-app-low"]
    assert [r["filename"] for r in evidence["review"]] == ["mystery-1.0-py3-none-any.whl"]
    assert evidence["signer"] == "unsigned" and "GHSA-app-low" in snapshot["vulns"]
    assert "lib 1.0 -&gt; 1.1" in page and "mystery-1.0-py3-none-any.whl" in page and "<script" not in page
    first_changes = manifest_of(first)["documents"]
    assert first_changes["evidence.json"] != manifest["documents"]["evidence.json"]


def test_the_report_shows_each_projects_license_and_advisories_from_the_last_audit(index, tmp_path):
    with serve_osv([record("GHSA-app-low", "app", ["1.0"], label="LOW")]) as osv:
        root = project(tmp_path / "p", index, "app\nmystery\n", LICENSES + f"  advisories: {{osv_url: '{osv.url}'}}\n")
        assert run(root, "download").returncode == 0
    result = run_task(
        "report", "--inventory", str(root / "inventory.yaml"), "--html", "", env={**clean_env(root), "COLUMNS": "250"}
    )
    assert result.returncode == 0, result.stderr
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    }
    assert rows["app"][:2] == ["MIT", "GHSA-app-low (1.0, low, below threshold)"]
    assert rows["lib"][:2] == ["Apache-2.0", ""]
    assert rows["mystery"][:2] == ["unknown", ""]
    assert "licenses and advisories from the last audit" in result.stdout


def test_a_snapshot_by_project_keeps_every_advisory_of_it_from_the_zip_and_the_api(tmp_path):
    from devpi_airgap.online.osv import from_api, from_zip

    old = record("GHSA-old", "lib", ["0.9"], fixed="1.0", label="HIGH")  # affects no locked version
    other = record("GHSA-other", "numpy", ["1.0"], label="HIGH")
    write_zip(tmp_path / "all.zip", [old, other])
    assert set(from_zip(tmp_path / "all.zip", [("lib", None)]).vulns) == {"GHSA-old"}
    assert set(from_zip(tmp_path / "all.zip", [("lib", "1.0")]).vulns) == set()
    with serve_osv([old, other]) as osv:
        assert set(from_api(osv.url, [("lib", None)]).vulns) == {"GHSA-old"}
