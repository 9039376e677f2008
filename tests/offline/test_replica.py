"""`fab -H devpi-host,devpi-replica deploy`: a primary and a devpi replica, on two booted offline hosts.

The two hosts reach each other only over a private link between their network
namespaces (and neither has a route out), as two servers on a closed network do.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from devpi_airgap.offline.devpi_api import DevpiClient
from testing.environment import USER_PASSWORD, clean_env, pip_install, secrets_env
from testing.offline_host import OfflineHost, assert_no_route_out, pick_subnet, require_offline_host_support
from testing.tasks import run_task
from testing.wheels import make_wheel

pytestmark = [pytest.mark.offline_host, pytest.mark.network]

INVENTORY = """
targets:
  server: {platform: [manylinux_2_28_x86_64, manylinux2014_x86_64], python: "3.11", requirements: [server.txt]}
servers:
  devpi-host: {target: server, port: 3141, user: myuser, index: myindex}
  devpi-replica: {target: server, role: replica, primary: devpi-host, primary_url: "http://%s:3141"}
"""


def link(a: OfflineHost, b: OfflineHost) -> tuple[str, str]:
    """A veth pair straight from a's namespace to b's: the path between two servers, nothing else."""
    net = pick_subnet("10.232.0.0/16")
    address_a, address_b = (str(h) for h in net.hosts())
    tag = uuid.uuid4().hex[:6]
    subprocess.run(
        [
            "ip",
            "link",
            "add",
            f"rl{tag}a",
            "netns",
            a.netns,
            "type",
            "veth",
            "peer",
            "name",
            f"rl{tag}b",
            "netns",
            b.netns,
        ],
        check=True,
    )
    for host, name, address in ((a, f"rl{tag}a", address_a), (b, f"rl{tag}b", address_b)):
        subprocess.run(["ip", "-n", host.netns, "addr", "add", f"{address}/30", "dev", name], check=True)
        subprocess.run(["ip", "-n", host.netns, "link", "set", name, "up"], check=True)
    return address_a, address_b


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    require_offline_host_support()
    with OfflineHost() as primary, OfflineHost() as replica:
        for h in (primary, replica):
            assert_no_route_out(h)
        primary_link, _ = link(primary, replica)
        root = tmp_path_factory.mktemp("replica")
        config = (
            primary.ssh_config_path.read_text()
            + "\n"
            + replica.ssh_config_path.read_text().replace(f"Host {replica.ssh_alias}\n", "Host devpi-replica\n", 1)
        )
        (root / "ssh_config").write_text(config)
        (root / "server.txt").write_text("packaging\n")
        (root / "inventory.yaml").write_text(INVENTORY % primary_link)
        run_task(
            "download",
            "--inventory",
            str(root / "inventory.yaml"),
            "--target",
            "server",
            env=clean_env(root),
            check=True,
        )
        yield root, primary, replica


def fab(root: Path, hosts: str, *args: str, env=None):
    return run_task(
        "-S",
        str(root / "ssh_config"),
        "-H",
        hosts,
        *args,
        "--inventory",
        str(root / "inventory.yaml"),
        program="fabric",
        env=env or secrets_env(root),
    )


def test_replica_before_its_primary_is_a_clear_error(hosts):
    root, _, replica = hosts
    result = fab(root, "devpi-replica", "deploy", env=clean_env(root))  # a replica needs no passwords
    assert result.returncode == 6, result.stderr
    assert "devpi-host has no devpi deployed yet" in result.stderr and "fab -H devpi-host deploy" in result.stderr
    assert replica.run("test -e /var/lib/devpi || test -e /opt/devpi-airgap").returncode != 0  # nothing changed


@pytest.fixture(scope="module")
def deployed(hosts):
    root, primary, replica = hosts
    result = fab(root, "devpi-host,devpi-replica", "deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def unit_args(host: OfflineHost) -> str:
    return host.run("grep ^ExecStart= /etc/systemd/system/devpi.service", check=True).stdout


def test_one_command_deploys_primary_and_replica(deployed, hosts):
    _, primary, replica = hosts
    assert "--role primary" in unit_args(primary) and "--offline-mode" in unit_args(primary)
    assert "--primary-url http://" in unit_args(replica) and "--offline-mode" not in unit_args(replica)
    secret = "sha256sum /etc/devpi-airgap/secret | cut -d' ' -f1"
    assert primary.run(secret, check=True).stdout == replica.run(secret, check=True).stdout
    assert replica.run("stat -c '%U %a' /etc/devpi-airgap/secret").stdout.strip() == "devpi 600"
    assert replica.run("systemctl is-active devpi.service").stdout.strip() == "active"
    assert f"http://{replica.address}:3141/myuser/myindex/+simple/" in deployed.stdout
    for text in (deployed.stdout, deployed.stderr):
        assert USER_PASSWORD not in text


def test_file_uploaded_to_the_primary_installs_from_the_replica(deployed, hosts, tmp_path):
    _, primary, replica = hosts
    wheel = make_wheel(tmp_path / "dist", "airgap_canary", "1.0", payload="from the primary")
    with DevpiClient(f"http://{primary.address}:3141") as client:
        client.login("myuser", USER_PASSWORD)
        client.upload_file("myuser", "myindex", wheel)
    page = f"http://{replica.address}:3141/myuser/myindex/+simple/airgap-canary/"
    deadline = time.monotonic() + 120
    while wheel.name not in httpx.get(page).text:
        assert time.monotonic() < deadline, f"the replica never listed {wheel.name}"
        time.sleep(1)
    python = pip_install(
        tmp_path,
        f"http://{replica.address}:3141/myuser/myindex/+simple/",
        "airgap_canary",
        "packaging",
        pip_args=("--trusted-host", replica.address),
    )
    value = subprocess.run(
        [str(python), "-c", "import airgap_canary; print(airgap_canary.VALUE)"], capture_output=True, text=True
    )
    assert value.stdout.strip() == "from the primary"


def test_second_run_changes_nothing_on_either_host(deployed, hosts):
    root, _, _ = hosts
    result = fab(root, "devpi-host,devpi-replica", "deploy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("no changes") == 2, result.stdout
    assert "changed" not in result.stderr


def test_status_shows_replication(deployed, hosts):
    root, _, _ = hosts
    result = fab(root, "devpi-replica", "status")
    assert result.returncode == 0, result.stderr
    assert "replica of devpi-host" in result.stdout and "in sync" in result.stdout


def test_uploads_and_bundles_go_to_the_primary(deployed, hosts):
    root, _, _ = hosts
    expected = {"upload": "upload to its primary devpi-host", "deploy": "deploy the bundle to its primary devpi-host"}
    for args in (("upload",), ("deploy", "--bundle", str(root / "any.tar"))):
        result = fab(root, "devpi-replica", *args)
        assert result.returncode == 2 and expected[args[0]] in result.stderr, result.stderr


def test_a_recall_takes_a_version_off_both_hosts_blocks_its_return_and_a_lift_lets_it_back(deployed, hosts, tmp_path):
    root, primary, replica = hosts
    pool, target = root / "wheelhouse" / ".pool", root / "wheelhouse" / "server"
    bad = make_wheel(pool, "airgap_recalled", "2.0", payload="bad build")
    make_wheel(pool, "airgap_recalled", "2.1", payload="good build")
    with DevpiClient(f"http://{primary.address}:3141") as client:
        client.login("myuser", USER_PASSWORD)
        for version in ("2.0", "2.1"):
            client.upload_file("myuser", "myindex", pool / f"airgap_recalled-{version}-py3-none-any.whl")
    replica_index = f"http://{replica.address}:3141/myuser/myindex/+simple/"
    inv = ("--inventory", str(root / "inventory.yaml"))

    made = run_task("recall", "airgap_recalled==2.0", "--reason", "bad build, ticket 7", *inv, env=clean_env(root))
    assert made.returncode == 0, made.stderr
    recall_bundle = made.stdout.strip().splitlines()[-1]
    result = fab(root, "devpi-host", "deploy", "--bundle", recall_bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed airgap_recalled-2.0-py3-none-any.whl" in result.stderr

    deadline = time.monotonic() + 120  # the replica follows through devpi's own replication
    while bad.name in httpx.get(f"{replica_index}airgap-recalled/").text:
        assert time.monotonic() < deadline, "the replica still lists the recalled file"
        time.sleep(1)
    pip = ("--trusted-host", replica.address)
    with pytest.raises(AssertionError):
        pip_install(tmp_path / "old", replica_index, "airgap_recalled==2.0", pip_args=pip)
    python = pip_install(tmp_path / "new", replica_index, "airgap_recalled", pip_args=pip)
    version = subprocess.run(
        [str(python), "-c", "import airgap_recalled; print(airgap_recalled.VALUE)"], capture_output=True, text=True
    )
    assert version.stdout.strip() == "good build"
    status = fab(root, "devpi-host", "status")
    assert "recalled: airgap_recalled-2.0-py3-none-any.whl (airgap-recalled==2.0: bad build, ticket 7)" in " ".join(
        status.stdout.split()
    )

    # The file comes back in what is carried over: refused before anything changes (the bundle
    # deploy runs this same deploy on the bundle's files).
    (target / bad.name).hardlink_to(bad)
    try:
        refused = fab(root, "devpi-host", "deploy")
        assert refused.returncode == 7, refused.stdout + refused.stderr
        assert "was recalled on devpi-host: airgap_recalled-2.0-py3-none-any.whl" in " ".join(refused.stderr.split())
        assert bad.name not in httpx.get(f"http://{primary.address}:3141/myuser/myindex/+simple/airgap-recalled/").text

        lifted = run_task("recall", "airgap_recalled==2.0", "--lift", "--reason", "rebuilt", *inv, env=clean_env(root))
        assert fab(root, "devpi-host", "deploy", "--bundle", lifted.stdout.strip().splitlines()[-1]).returncode == 0
        again = fab(root, "devpi-host", "deploy")
        assert again.returncode == 0, again.stdout + again.stderr
        pip_install(
            tmp_path / "back",
            f"http://{primary.address}:3141/myuser/myindex/+simple/",
            "airgap_recalled==2.0",
            pip_args=("--trusted-host", primary.address),
        )
    finally:
        (target / bad.name).unlink(missing_ok=True)


def test_a_replica_whose_primary_was_restored_is_set_up_anew_and_follows_again(deployed, hosts, tmp_path):
    """A restore gives the primary another uuid: devpi answers the replica's every request with 400 from then on,
    while the replica's own status still reads "in sync". A deploy finds that out, and starts the replica anew."""
    root, primary, replica = hosts
    made = fab(root, "devpi-host", "backup", "--to", str(root / "backups"))
    assert made.returncode == 0, made.stdout + made.stderr
    restored = fab(root, "devpi-host", "restore", "--from", made.stdout.strip().splitlines()[-1])
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "devpi-replica still serve the data from before the restore: deploy them again" in " ".join(
        restored.stderr.split()
    )
    # its own /+status still reads "in sync"; asked from the replica, the primary's uuid says otherwise
    stale = fab(root, "devpi-replica", "status")
    assert stale.returncode == 0, stale.stdout + stale.stderr
    said = " ".join(stale.stdout.split())
    assert "stale: it follows data devpi-host no longer has" in said and "in sync" not in said

    redeployed = fab(root, "devpi-host,devpi-replica", "deploy")
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    said = " ".join(redeployed.stderr.split())
    assert "changed devpi-init: /var/lib/devpi/server set aside as /var/lib/devpi/server.stale-" in said
    assert replica.run("ls -d /var/lib/devpi/server.stale-*").returncode == 0  # kept, never removed

    # replication works again: a file uploaded to the primary now reaches the replica
    fresh = make_wheel(tmp_path, "airgap_after_restore", "1.0")
    with DevpiClient(f"http://{primary.address}:3141") as client:
        client.login("myuser", USER_PASSWORD)
        client.upload_file("myuser", "myindex", fresh)
    deadline = time.monotonic() + 120
    page = f"http://{replica.address}:3141/myuser/myindex/+simple/airgap-after-restore/"
    while fresh.name not in httpx.get(page).text:
        assert time.monotonic() < deadline, "the replica does not follow its restored primary"
        time.sleep(1)
    again = fab(root, "devpi-host,devpi-replica", "deploy")
    assert again.returncode == 0 and again.stdout.count("no changes") == 2, again.stdout + again.stderr
    following = " ".join(fab(root, "devpi-replica", "status").stdout.split())
    assert "in sync: serial" in following and "stale" not in following
    primary.run("systemctl stop devpi.service")
    try:
        unheard = " ".join(fab(root, "devpi-replica", "status").stdout.split())
        assert "in sync: serial" in unheard and "as last heard: its primary does not answer at http://" in unheard
    finally:
        primary.run("systemctl start devpi.service")
        deadline = time.monotonic() + 120  # the later tests want the primary serving again
        while not _answers(f"http://{primary.address}:3141/+api"):
            assert time.monotonic() < deadline, "the primary did not come back"
            time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
