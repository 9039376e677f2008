"""Online -> bundle -> offline host, then a delta from a new release, then tampered bundles refused.

The index is a loopback one: real devpi wheels (from one real download) plus a
generated project that gains a release mid-test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testing import deploy_host
from testing.deploy_host import index_files
from testing.environment import clean_env
from testing.fakeindex import Dist, add_files, add_release, build_index, serve_index
from testing.fakeosv import record, serve_osv
from testing.offline_host import OfflineHost, require_offline_host_support
from testing.signing import make_keys, manifest_of, resign
from testing.tasks import run_task

pytestmark = [pytest.mark.offline_host, pytest.mark.network]

PASSWORDS = {"DEVPI_AIRGAP_ROOT_PASSWORD": "bundle-root-pw", "DEVPI_AIRGAP_USER_PASSWORD": "bundle-user-pw"}
INVENTORY = """
index_url: {url}
targets:
  server: {{platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [server.txt]}}
servers:
  devpi-host: {{target: server}}
bundles:
  sign_key: key
  allowed_signers: allowed_signers
  identity: ops@example
  require_signature: true
  part_size: 4M                 # the full bundle comes in parts, the deltas whole
policy:
  licenses: {{allow: [MIT, Apache-2.0, BSD-3-Clause, BSD-2-Clause]}}
"""


def env(project: Path) -> dict:
    return clean_env(project, **PASSWORDS)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    require_offline_host_support()
    seed = tmp_path_factory.mktemp("seed")
    (seed / "server.txt").write_text("packaging\n")
    (seed / "inventory.yaml").write_text(
        "targets:\n  server: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: '3.11', "
        "requirements: [server.txt]}\nservers:\n  devpi-host: {target: server}\n"
    )
    run_task("download", "--inventory", str(seed / "inventory.yaml"), env=env(seed), check=True)
    root = build_index(tmp_path_factory.mktemp("index"), [Dist("demo", "1.0")])
    add_files(root, sorted((seed / "wheelhouse" / "server").glob("*.whl")))
    # refresh, signing and deploy from a project under a name like C:\Users\김민수\My Documents
    project = tmp_path_factory.mktemp("project") / "김 민수 (my project)"
    project.mkdir()
    (project / "server.txt").write_text("packaging\ndemo\n")
    make_keys(project)
    with serve_index(root) as url, OfflineHost() as host:
        (project / "inventory.yaml").write_text(INVENTORY.format(url=url))
        yield project, root, host


def inv(project: Path, *args: str):
    return run_task(*args, "--inventory", str(project / "inventory.yaml"), env=env(project))


def fab(project: Path, host: OfflineHost, *args: str):
    return deploy_host.fab(project, host, *args, env=env(project))


def imported(host: OfflineHost) -> str:
    return host.run("cat /var/lib/devpi-airgap/imported.json").stdout


def last_line(result) -> Path:
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def test_bundle_flow(setup):
    project, index_root, host = setup
    refreshed = inv(project, "refresh")
    full = last_line(refreshed)
    parts = sorted(full.parent.glob(full.name + ".0*"))
    assert not full.exists() and len(parts) >= 2 and all(p.stat().st_size <= 4_000_000 for p in parts)
    assert f"cut into {len(parts)} parts" in " ".join(refreshed.stderr.split())
    first = fab(project, host, "deploy", "--bundle", str(full))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "checked on devpi-host too" in first.stderr
    files = index_files(host)
    assert "demo-1.0-py3-none-any.whl" in files and any(n.startswith("devpi_server-") for n in files)

    add_release(index_root, Dist("demo", "1.1"))
    delta = last_line(inv(project, "refresh"))
    assert [f["name"] for f in manifest_of(delta)["files"]] == ["demo-1.1-py3-none-any.whl"]
    # --check shows the one upload the delta brings, needs no password, and changes nothing on the server.
    before_check = index_files(host), imported(host), host.run("ls -A /var/lib/devpi-airgap/incoming").stdout
    checked = deploy_host.fab(project, host, "deploy", "--check", "--bundle", str(delta), env=clean_env(project))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    said = " ".join(checked.stderr.split())
    assert "would change upload: 1 files" in said and "would change record import" in said
    assert "2 steps would change something (nothing was changed)" in checked.stdout
    assert (index_files(host), imported(host), host.run("ls -A /var/lib/devpi-airgap/incoming").stdout) == before_check
    second = fab(project, host, "deploy", "--bundle", str(delta))
    assert second.returncode == 0, second.stdout + second.stderr
    assert set(index_files(host)) - set(files) == {"demo-1.1-py3-none-any.whl"}
    assert "upload: 1 files" in " ".join(second.stderr.split())

    parts[1].rename(project / "left-behind")  # a part left on the USB stick
    refused = fab(project, host, "deploy", "--bundle", str(parts[0]))
    assert refused.returncode == 7 and parts[1].name in refused.stderr, refused.stdout + refused.stderr
    (project / "left-behind").rename(parts[1])
    again = fab(project, host, "deploy", "--bundle", str(full))  # an old bundle again: nothing lost or doubled
    assert again.returncode == 0 and "no changes" in again.stdout, again.stderr
    status = fab(project, host, "status")
    assert manifest_of(full)["bundle_id"] in status.stdout and manifest_of(delta)["bundle_id"] in status.stdout
    # The delta's evidence, re-judged on this side: demo declares no license, so it awaits a person's review.
    assert "last evidence: 1 licenses checked" in status.stdout
    assert "needs review: demo-1.1-py3-none-any.whl: no license" in status.stdout

    before_files, before_imported = index_files(host), imported(host)
    tampered = delta.with_name("tampered-" + delta.name)
    data = bytearray(delta.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    tampered.with_name(tampered.name + ".sha256").write_text(delta.with_name(delta.name + ".sha256").read_text())
    refused = fab(project, host, "deploy", "--bundle", str(tampered))
    assert refused.returncode == 7 and "truncated or altered" in refused.stderr

    # Signed with a key the server does not trust: refused on the server too, not only here.
    (project / "other").mkdir()
    make_keys(project / "other")
    other = delta.with_name("other-" + delta.name)
    other.write_bytes(delta.read_bytes())
    resign(other, project / "other" / "key")
    refused = fab(project, host, "deploy", "--bundle", str(other))
    assert refused.returncode == 7 and "signature does not verify" in refused.stderr
    assert index_files(host) == before_files and imported(host) == before_imported


def test_an_advisory_snapshot_bundle_rechecks_the_live_index_and_changes_nothing(setup):
    project, _, host = setup
    inventory = project / "inventory.yaml"
    original = inventory.read_text()
    demo = record("GHSA-demo-high", "demo", ["1.0"], fixed="1.1", label="HIGH")
    with serve_osv([demo, record("GHSA-other", "unrelated", ["1.0"], label="CRITICAL")]) as osv:
        inventory.write_text(original + f"  advisories: {{osv_url: '{osv.url}', block: high}}\n")
        try:
            snapshot_bundle = last_line(inv(project, "bundle", "--advisories"))
            assert manifest_of(snapshot_bundle)["kind"] == "advisories"
            before = index_files(host)
            applied = fab(project, host, "deploy", "--bundle", str(snapshot_bundle))
            assert applied.returncode == 0, applied.stdout + applied.stderr
            rows = [line for line in applied.stdout.splitlines() if "GHSA-demo-high" in line]
            assert len(rows) == 1 and "1.0" in rows[0] and "blocked" in rows[0] and "new" in rows[0], applied.stdout
            assert "GHSA-other" not in applied.stdout
            assert index_files(host) == before  # reported, never removed: a recall is a person's decision

            audited = fab(project, host, "audit")
            assert audited.returncode == 9, audited.stdout + audited.stderr
            assert "GHSA-demo-high" in audited.stdout and "recall them or waive them" in " ".join(
                audited.stderr.split()
            )
            assert index_files(host) == before
        finally:
            inventory.write_text(original)
