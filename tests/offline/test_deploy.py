"""`fab -H devpi-host deploy` end to end, on a booted Debian host with no route out.

The wheelhouse comes from a real `inv download` for a target matching the
host (Debian bookworm: Python 3.11, manylinux x86_64).
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from devpi_airgap.core.console import human_bytes
from devpi_airgap.core.files import sha256_file
from devpi_airgap.offline.devpi_api import DevpiClient
from devpi_airgap.offline.systemd_unit import parse_exposure
from testing.deploy_host import fab, index_files
from testing.environment import ROOT_PASSWORD, USER_PASSWORD, clean_env, pip_install
from testing.offline_host import OfflineHost
from testing.tasks import run_task
from testing.wheels import make_wheel

pytestmark = [pytest.mark.offline_host, pytest.mark.network]


def test_missing_secret_fails_before_any_change(project, host):
    result = fab(project, host, "deploy", env=clean_env(project))
    assert result.returncode == 2
    assert "DEVPI_AIRGAP_ROOT_PASSWORD" in result.stderr and "Nothing was changed" in result.stderr
    assert not host.run("test -e /opt/devpi-airgap").returncode == 0


def server_state(host: OfflineHost, *, skip: str = "/nonexistent") -> list[str]:
    """Every file and directory where a deploy could leave a trace: type, mode, owner, size and content."""
    prune = f"-path {skip} -prune -o"
    return host.run(
        f"find /etc /opt /var/lib -xdev {prune} -printf '%p %y %m %u:%g %s\\n' | sort; "
        f"find /etc /opt /var/lib -xdev {prune} -type f -exec sha256sum {{}} + | sort",
        check=True,
    ).stdout.splitlines()


def assert_same_state(before: list[str], after: list[str]) -> None:
    changed = list(difflib.unified_diff(before, after, "before --check", "after --check", lineterm="", n=0))
    assert not changed, "\n".join(changed[:40])


def test_check_on_a_fresh_host_changes_nothing(project, host):
    before = server_state(host)
    # No passwords in the environment: --check reads and diffs, and needs none.
    result = fab(project, host, "deploy", "--check", env=clean_env(project))
    assert result.returncode == 0, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    for step in (
        "copy wheels",
        "system user",
        "venv",
        "secret file",
        "devpi-import",
        "systemd unit",
    ):
        assert f"would change {step}:" in said, said
    # the seed brings the user, the index and the files: no second account of them
    assert "would change upload" not in said and "would change user and index" not in said
    assert "steps would change something (nothing was changed)" in result.stdout
    assert_same_state(before, server_state(host))


def test_first_deploy_serves_the_index(deployed, host):
    result, _, seconds = deployed
    print(f"first deploy took {seconds:.1f}s\n{result.stderr}")
    said = " ".join(result.stderr.split())
    # the fresh server was seeded by devpi-import; the user, index and upload steps found it complete
    assert "changed devpi-import: initialise /var/lib/devpi/server with" in said, said
    assert "changed upload" not in said and "changed user and index" not in said, said
    assert f"http://{host.address}:3141/myuser/myindex/+simple/" in result.stdout
    assert host.run("systemctl is-active devpi.service").stdout.strip() == "active"
    assert host.run("systemctl is-enabled devpi.service").stdout.strip() == "enabled"
    assert host.run("stat -c '%U %a' /etc/devpi-airgap/secret").stdout.strip() == "devpi 600"
    assert host.run("ps -o user= -C devpi-server").stdout.split()[:1] == ["devpi"]


def test_passwords_never_in_output_or_argv(deployed):
    result, seen, _ = deployed
    assert len(seen) > 3
    for text in [result.stdout, result.stderr, *seen]:
        assert ROOT_PASSWORD not in text and USER_PASSWORD not in text


def test_unit_exposure_is_at_most_2(deployed, host):
    output = host.run("systemd-analyze security --no-pager devpi.service").stdout
    exposure = parse_exposure(output)
    print(f"systemd-analyze security exposure on the offline host: {exposure}")
    assert exposure <= 2.0


def test_client_installs_from_the_index_alone(deployed, host, tmp_path):
    python = pip_install(
        tmp_path,
        f"http://{host.address}:3141/myuser/myindex/+simple/",
        "packaging",
        pip_args=("--trusted-host", host.address),
    )
    assert subprocess.run([str(python), "-c", "import packaging"]).returncode == 0


def test_second_deploy_reports_no_changes(deployed, project, host):
    start = time.monotonic()
    result = fab(project, host, "deploy")
    print(f"second deploy took {time.monotonic() - start:.1f}s")
    assert result.returncode == 0, result.stderr
    assert "no changes" in result.stdout
    assert "changed" not in result.stderr


def test_check_on_a_converged_host_says_no_changes(deployed, project, host):
    # A running devpi keeps writing its own data directory; what is on the index is compared instead.
    before, files = server_state(host, skip="/var/lib/devpi"), index_files(host)
    result = fab(project, host, "deploy", "--check", env=clean_env(project))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no changes" in result.stdout and "would change" not in result.stderr
    assert_same_state(before, server_state(host, skip="/var/lib/devpi"))
    assert index_files(host) == files


def test_tunnel_survives_clients_hanging_up_mid_response(deployed, host):
    """uv drops connections mid-download; that must never take the deploy's SSH connection down with it."""
    import socket
    import struct
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urljoin

    import httpx
    from fabric import Config, Connection

    from devpi_airgap.offline.remote import Host

    connection = Connection(
        "devpi-host", config=Config(overrides={"ssh_config_path": str(host.ssh_config_path), "load_ssh_configs": True})
    )
    with connection, Host(connection).http(3141) as base:
        page = f"{base}/myuser/myindex/+simple/devpi-server/"
        wheel = httpx.get(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()["files"][0]["url"]
        path = urljoin(page, wheel).removeprefix(base)
        transport = connection.transport
        port = int(base.rsplit(":", 1)[1])

        def hang_up(i: int) -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                s.recv(1000 + i * 97 % 5000)
                if i % 2:  # half of them reset instead of closing politely
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

        with ThreadPoolExecutor(64) as pool:
            list(pool.map(hang_up, range(600)))
        assert connection.transport is transport and transport.is_active()
        assert httpx.get(f"{base}/+api").status_code == 200


def test_restart_and_reboot_keep_every_file(deployed, host):
    before = index_files(host)
    assert any(name.startswith("devpi_server-") for name in before)
    host.run("systemctl restart devpi.service", check=True)
    _wait_for_index(host)
    assert index_files(host) == before
    host.reboot()
    _wait_for_index(host)
    assert index_files(host) == before


def _wait_for_index(host: OfflineHost) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            index_files(host)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_added_requirement_uploads_just_the_new_files(deployed, project, host):
    before = index_files(host)
    (project / "server.txt").write_text("packaging\nsix\n")
    run_task(
        "download",
        "--inventory",
        str(project / "inventory.yaml"),
        "--target",
        "server",
        env=clean_env(project),
        check=True,
    )
    result = fab(project, host, "deploy")
    assert result.returncode == 0, result.stderr
    after = index_files(host)
    new = set(after) - set(before)
    assert new and all(name.startswith("six-") for name in new)
    assert {k: after[k] for k in before} == before
    assert re.search(rf"upload: {len(new)} files", " ".join(result.stderr.split()))


def test_a_file_removed_behind_the_deploys_back_is_uploaded_again(deployed, project, host):
    """The upload step reads the index through the workstation's record, which any change on the server outdates."""
    assert (project / "wheelhouse" / ".index-record.json").is_file()  # the deploys before this one left it
    before = index_files(host)
    gone = next(name for name in sorted(before) if name.startswith("packaging-"))
    with DevpiClient(f"http://{host.address}:3141") as client:
        client.login("myuser", USER_PASSWORD)
        assert client.remove_file("myuser", "myindex", gone)
    assert gone not in index_files(host)

    result = fab(project, host, "deploy")

    assert result.returncode == 0, result.stdout + result.stderr
    assert index_files(host) == before
    assert re.search(r"upload: 1 files", " ".join(result.stderr.split()))


def test_unreachable_host_is_a_clear_error(deployed, project, host):
    result = fab(project, host, "deploy", alias="unreachable")
    assert result.returncode == 6
    assert "cannot reach unreachable" in result.stderr and "Traceback" not in result.stderr


def test_rejected_key_is_a_clear_error(deployed, project, host):
    result = fab(project, host, "deploy", alias="bad-key")
    assert result.returncode == 6
    assert "rejected our SSH key" in " ".join(result.stderr.split())


def test_no_sudo_rights_is_a_clear_error(deployed, project, host):
    result = fab(project, host, "deploy", alias="no-sudo")
    assert result.returncode == 6
    assert "no passwordless sudo" in " ".join(result.stderr.split())


def temporary_files(host: OfflineHost) -> list[str]:
    return host.run("find /tmp /var/tmp -maxdepth 1 -name 'tmp.*'", check=True).stdout.split()


def test_deploy_through_passwordless_sudo_copies_files_and_leaves_no_temporary_ones(deployed, project, host):
    """As a non-root SSH user with `sudo -n`: the copies go through a staging file the user owns."""
    host.run("rm -f /opt/devpi-airgap/wheels/packaging-*.whl", check=True)  # so a copy is needed
    before = temporary_files(host)
    result = fab(project, host, "deploy", "--server", "devpi-host", alias="as-deployer")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "copy wheels: 1 copied" in " ".join(result.stderr.split())
    assert host.run("ls /opt/devpi-airgap/wheels/ | grep -c '^packaging-'").stdout.strip() == "1"
    assert host.run("stat -c '%U %a' /opt/devpi-airgap/wheels/packaging-*.whl").stdout.split() == ["root", "644"]
    bundled = run_task("bundle", "--full", "--inventory", str(project / "inventory.yaml"), env=clean_env(project))
    assert bundled.returncode == 0, bundled.stdout + bundled.stderr
    bundle = bundled.stdout.strip().splitlines()[-1]
    imported = fab(project, host, "deploy", "--server", "devpi-host", "--bundle", bundle, alias="as-deployer")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "checked on as-deployer too" in imported.stderr
    assert temporary_files(host) == before
    assert "Traceback" not in result.stderr + imported.stderr


def test_sudo_that_asks_for_a_password_is_a_clear_error(deployed, project, host):
    result = fab(project, host, "deploy", "--server", "devpi-host", alias="as-asker")
    assert result.returncode == 6, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "asker on as-asker is not root and has no passwordless sudo" in message and "NOPASSWD" in message


def test_wrong_python_is_refused_before_installing(deployed, project, host):
    missing = fab(project, host, "deploy", alias="wrong-python")
    assert missing.returncode != 0 and "no wheelhouse for target 'server312'" in " ".join(missing.stderr.split())
    shutil.copytree(project / "wheelhouse" / "server", project / "wheelhouse" / "server312")
    shutil.copy(project / "locks" / "server.lock.json", project / "locks" / "server312.lock.json")
    result = fab(project, host, "deploy", alias="wrong-python")
    shutil.rmtree(project / "wheelhouse" / "server312")
    (project / "locks" / "server312.lock.json").unlink()
    message = " ".join(result.stderr.split())
    assert result.returncode == 6
    assert "runs Python 3.11" in message and "for Python 3.12" in message


def test_port_taken_then_freed_converges(deployed, project, host):
    host.run("systemctl stop devpi.service", check=True)
    host.run("systemd-run --unit squatter python3 -m http.server 3141", check=True)
    time.sleep(1)
    result = fab(project, host, "deploy")
    assert result.returncode == 6 and "port 3141" in result.stderr and "already taken" in result.stderr
    host.run("systemctl stop squatter", check=True)
    again = fab(project, host, "deploy")
    assert again.returncode == 0, again.stderr
    assert host.run("systemctl is-active devpi.service").stdout.strip() == "active"


def test_devpi_failing_to_start_shows_the_journal(deployed, project, host):
    host.run(
        "systemctl stop devpi.service && mv /var/lib/devpi/server/.sqlite /root/sqlite.bak && "
        "echo broken > /var/lib/devpi/server/.sqlite && chown devpi /var/lib/devpi/server/.sqlite",
        check=True,
    )
    result = fab(project, host, "deploy")
    message = " ".join(result.stderr.split())
    assert result.returncode == 6
    assert "did not answer /+status" in message and "journal" in message
    host.run("mv -f /root/sqlite.bak /var/lib/devpi/server/.sqlite", check=True)
    again = fab(project, host, "deploy")
    assert again.returncode == 0, again.stderr


def test_status_upload_and_client_config(deployed, project, host):
    status = fab(project, host, "status")
    assert status.returncode == 0, status.stderr
    assert "active / enabled" in status.stdout and "6.20" in status.stdout and "projects" in status.stdout
    upload = fab(project, host, "upload")
    assert upload.returncode == 0 and "no changes" in upload.stdout, upload.stderr
    # --check names what an upload would send, needs no password, and sends nothing
    extra = project / "wheelhouse" / "server" / "zzcheck-1.0-py3-none-any.whl"
    shutil.copy(next((project / "wheelhouse" / "server").glob("*.whl")), extra)
    try:
        before = index_files(host)
        checked = fab(project, host, "upload", "--check", env=clean_env(project))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        said = " ".join(checked.stderr.split())
        assert f"would change upload: 1 files, {human_bytes(extra.stat().st_size)} to upload" in said
        assert "files to upload (nothing was changed)" in checked.stdout
        assert index_files(host) == before
    finally:
        extra.unlink()
    nothing = fab(project, host, "upload", "--check", env=clean_env(project))
    assert nothing.returncode == 0 and "no changes" in nothing.stdout, nothing.stderr
    config = fab(project, host, "client-config")
    url = f"http://{host.address}:3141/myuser/myindex/+simple/"
    assert f"index-url = {url}" in config.stdout and f"trusted-host = {host.address}" in config.stdout
    assert "[[tool.uv.index]]" in config.stdout and "default = true" in config.stdout
    # uv add locks for the targets' platforms alone, and never reaches out for a Python
    assert '[tool.uv]\npython-downloads = "never"\nenvironments = [\n' in config.stdout


def test_backup_then_restore_after_data_loss(deployed, project, host):
    before = index_files(host)
    # A version on the index when the backups are made, and recalled after: no restore may bring it back.
    bad = make_wheel(project / "wheelhouse" / ".pool", "airgap_recalled", "2.0", payload="bad build")
    with DevpiClient(f"http://{host.address}:3141") as client:
        client.login("myuser", USER_PASSWORD)
        client.upload_file("myuser", "myindex", bad)
    made = [fab(project, host, "backup", "--to", str(project / "backups"), "--keep", "2") for _ in range(3)]
    assert all(r.returncode == 0 for r in made), made[-1].stderr
    latest = Path(made[-1].stdout.strip().splitlines()[-1])
    kept = sorted((project / "backups" / "devpi-host").glob("devpi-*.tar"))
    assert latest in kept and len(kept) == 2
    assert host.run("ls /var/lib/devpi-airgap/backups/*.tar | wc -l").stdout.strip() == "2"
    assert index_files(host) == {**before, bad.name: sha256_file(bad)}  # the service came back after each export
    checked = fab(project, host, "backup", "--check", "--to", str(project / "backups"), "--keep", "2")
    said = " ".join(checked.stdout.split())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "devpi on devpi-host would stop while devpi-export reads its" in said
    assert f"older backups it would remove there: {kept[0].name}" in said
    assert f"older backups it would remove on devpi-host: {kept[0].name}" in said  # the same stamp on both sides
    assert sorted((project / "backups" / "devpi-host").glob("devpi-*.tar")) == kept
    assert host.run("ls /var/lib/devpi-airgap/backups/*.tar | wc -l").stdout.strip() == "2"
    assert host.run("systemctl is-active devpi.service").stdout.strip() == "active"
    inv = ("--inventory", str(project / "inventory.yaml"))
    recall = run_task("recall", "airgap_recalled==2.0", "--reason", "bad build", *inv, env=clean_env(project))
    assert recall.returncode == 0, recall.stderr
    bad.unlink()  # in the pool only for `inv recall`, which recalls what this wheelhouse held
    recalled = fab(project, host, "deploy", "--bundle", recall.stdout.strip().splitlines()[-1])
    assert recalled.returncode == 0 and index_files(host) == before, recalled.stdout + recalled.stderr

    damaged = project / "backups" / "devpi-20990101T000000Z.tar"
    damaged.write_bytes(latest.read_bytes()[:5000])  # cut short in the copy
    refused = fab(project, host, "restore", "--from", str(damaged))
    assert refused.returncode == 2 and "holds no readable devpi-export" in " ".join(refused.stderr.split())
    assert host.run("systemctl is-active devpi.service").stdout.strip() == "active" and index_files(host) == before
    damaged.unlink()

    checked = fab(project, host, "restore", "--check", "--from", str(latest), env=clean_env(project))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    said = " ".join(checked.stdout.split())
    assert f"{latest.name} holds {len(before) + 1} files of myuser/myindex" in said
    assert f"left out, as recalled on this server since: {bad.name}" in said
    assert f"the index holds the same {len(before)} files: a restore would change none of them" in said
    assert index_files(host) == before

    host.run("systemctl stop devpi.service && rm -rf /var/lib/devpi/server/*", check=True)
    checked = fab(project, host, "restore", "--check", "--from", str(latest), env=clean_env(project))
    assert f"devpi is not running there: a restore would put {len(before)} files in place" in checked.stdout
    restored = fab(project, host, "restore", "--from", str(latest))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert host.run("systemctl is-active devpi.service").stdout.strip() == "active"
    assert index_files(host) == before  # the recalled file stays off
    assert f"left out, as recalled on this server since the backup: {bad.name}" in " ".join(restored.stderr.split())
    again = fab(project, host, "deploy")
    assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr


def _broken_devpi_server(original: Path, version: str, dest: Path) -> Path:
    """The same devpi-server under a newer version whose main() exits at once: an upgrade that never comes up."""
    old = original.name.split("-")[1]
    with zipfile.ZipFile(original) as src:
        entries = {
            name.replace(f"devpi_server-{old}.dist-info", f"devpi_server-{version}.dist-info"): src.read(name)
            for name in src.namelist()
        }
    for name in entries:
        if name.endswith(".dist-info/METADATA"):
            entries[name] = entries[name].replace(f"Version: {old}".encode(), f"Version: {version}".encode())
    entries["devpi_server/main.py"] += b"\n\ndef main(*args, **kwargs):\n    raise SystemExit('deliberately broken')\n"
    record = next(name for name in entries if name.endswith(".dist-info/RECORD"))
    lines = []
    for name, data in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(data)}" if name != record else f"{name},,")
    entries[record] = ("\n".join(lines) + "\n").encode()
    wheel = dest / original.name.replace(f"-{old}-", f"-{version}-")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in entries.items():
            out.writestr(name, data)
    return wheel


def test_broken_upgrade_rolls_back(deployed, project, host):
    before = index_files(host)
    lock_path = project / "locks" / "server.lock.json"
    saved = lock_path.read_text()
    lock = json.loads(saved)
    entry = next(p for p in lock["packages"] if p["name"] == "devpi-server")
    old_version = entry["version"]
    broken = _broken_devpi_server(
        project / "wheelhouse" / "server" / entry["filename"], f"{old_version}.post1", project / "wheelhouse" / "server"
    )
    entry.update(
        version=f"{old_version}.post1", filename=broken.name, sha256=sha256_file(broken), size=broken.stat().st_size
    )
    lock_path.write_text(json.dumps(lock))
    backups = set((project / "backups" / "devpi-host").glob("*.tar"))
    try:
        result = fab(project, host, "deploy")
        message = " ".join(result.stderr.split())
        assert result.returncode == 6, result.stdout + result.stderr
        assert f"rolled back to {old_version}, which is serving again" in message
    finally:
        lock_path.write_text(saved)
        broken.unlink()
    assert set((project / "backups" / "devpi-host").glob("*.tar")) - backups  # a backup came first
    assert host.run("/opt/devpi-airgap/venv/bin/devpi-server --version").stdout.strip() == old_version
    assert host.run("systemctl is-active devpi.service").stdout.strip() == "active"
    assert index_files(host) == before
    again = fab(project, host, "deploy")
    assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr


def test_a_changed_user_password_is_set_and_a_refused_root_password_is_named(deployed, project, host):
    """Passwords are changed on a schedule where our users work: the secrets stay the one place they live."""
    rotated = "user-Rotated-2026"

    def password_taken(password: str) -> bool:
        with DevpiClient(f"http://{host.address}:3141") as client:
            return client.logs_in("myuser", password)

    changed = clean_env(project, DEVPI_AIRGAP_ROOT_PASSWORD=ROOT_PASSWORD, DEVPI_AIRGAP_USER_PASSWORD=rotated)
    try:
        checked = fab(project, host, "deploy", "--check", env=changed)
        assert checked.returncode == 0 and "password of myuser set from the secrets" in checked.stderr + checked.stdout
        assert password_taken(USER_PASSWORD) and not password_taken(rotated)  # --check changed nothing
        result = fab(project, host, "deploy", env=changed)
        output = result.stdout + result.stderr
        assert result.returncode == 0 and "password of myuser set from the secrets" in output, output
        assert password_taken(rotated) and not password_taken(USER_PASSWORD)
        assert rotated not in output and ROOT_PASSWORD not in output
        again = fab(project, host, "deploy", env=changed)
        assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr

        wrong_root = clean_env(project, DEVPI_AIRGAP_ROOT_PASSWORD="root-Guessed-1", DEVPI_AIRGAP_USER_PASSWORD=rotated)
        refused = fab(project, host, "deploy", env=wrong_root)
        message = " ".join(refused.stderr.split())
        assert refused.returncode == 6, refused.stdout + refused.stderr
        assert "user and index: devpi on devpi-host refuses the root_password of the secrets" in message
        assert "`devpi passwd root`" in message and "root-Guessed-1" not in message and "Traceback" not in message
        assert password_taken(rotated)
    finally:
        fab(project, host, "deploy")  # the module's other tests go on with the password they know
    assert password_taken(USER_PASSWORD)
