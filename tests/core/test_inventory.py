"""Every class of inventory mistake gets a message naming file, key path, value and expectation."""

from __future__ import annotations

import json

import pytest

from devpi_airgap.core.inventory import SCHEMA_FILE, InventoryError, UnknownTarget, json_schema, load_inventory
from testing.tasks import REPO, run_task

GOOD = """
targets:
  win313:
    platform: win_amd64
    python: "3.13"
    requirements: [req.txt]
  server:
    platform: [manylinux_2_28_x86_64, manylinux2014_x86_64]
    python: "3.11"
    requirements: req.txt
servers:
  devpi-host: {target: server}
"""


@pytest.fixture
def write(tmp_path):
    (tmp_path / "req.txt").write_text("packaging\n")

    def write(text: str):
        path = tmp_path / "inventory.yaml"
        path.write_text(text)
        return path

    return write


def test_good_inventory_with_defaults(write, tmp_path):
    inv = load_inventory(write(GOOD))
    assert inv.wheelhouse == tmp_path / "wheelhouse"
    assert inv.targets["win313"].implementation == "cp"
    assert inv.targets["server"].serves_devpi and not inv.targets["win313"].serves_devpi
    assert inv.targets["server"].requirements == (tmp_path / "req.txt",)
    server = inv.server("devpi-host")
    assert (server.port, server.user, server.index) == (3141, "myuser", "myindex")
    assert [t.name for t in inv.select_targets("all")] == ["win313", "server"]


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("targets: [oops\n", ["malformed YAML", "line 2"]),
        ("- a\n- b\n", ["(top level)", "expected a mapping"]),
        (GOOD + "extra: 1\n", ["extra", "no such key"]),
        (GOOD.replace('python: "3.13"', "python: 3.10"), ["targets.win313.python", "quoted version"]),
        (GOOD.replace('python: "3.13"', 'python: "three"'), ["targets.win313.python", "'three'", '"3.13"']),
        (GOOD.replace('python: "3.13"', 'python: "2.7"'), ["targets.win313.python", "'2.7'", "Python 3"]),
        (
            GOOD.replace("requirements: [req.txt]", 'requirements: ["C:\\Users\\me\\req.txt"]'),
            ["malformed YAML", "a backslash as an escape", "C:/Users/me/requirements.txt"],
        ),
        (GOOD.replace("platform: win_amd64", "platform: Windows 11"), ["targets.win313.platform[0]", "'Windows 11'"]),
        (
            GOOD.replace("requirements: [req.txt]", "requirements: [nope.txt]"),
            ["targets.win313.requirements[0]", "'nope.txt'", "an existing file"],
        ),
        (GOOD.replace("requirements: [req.txt]", "requirements: []"), ["targets.win313.requirements", "non-empty"]),
        (GOOD.replace('    python: "3.13"\n', "", 1), ["targets.win313.python", "this key to be set"]),
        # misspelt: named as written, with the keys allowed there, rather than only the right one as unset
        (GOOD.replace('python: "3.13"', 'pyhton: "3.13"', 1), ["targets.win313.pyhton", "no such key", "python"]),
        (
            GOOD.replace("requirements: [req.txt]", "requirements: [req.txt]\n    implementation: pp"),
            ["targets.win313.implementation", "'pp'", "one of cp"],
        ),
        (
            GOOD.replace("{target: server}", "{target: nosuch}"),
            ["servers.devpi-host.target", "'nosuch'", "win313, server"],
        ),
        (GOOD.replace("{target: server}", "{target: server, port: 99999}"), ["servers.devpi-host.port", "99999"]),
        (
            GOOD.replace("{target: server}", "{target: server, role: x}"),
            ["servers.devpi-host.role", "primary or replica"],
        ),
        (
            GOOD.replace(
                "  devpi-host: {target: server}\n",
                "  devpi-host: {target: server}\n  mirror: {target: server, role: replica}\n",
            ),
            ["servers.mirror.primary", "None", "servers: name"],
        ),
        (
            GOOD.replace(
                "  devpi-host: {target: server}\n",
                "  devpi-host: {target: server}\n  mirror: {target: server, role: replica, primary: nosuch}\n",
            ),
            ["servers.mirror.primary", "'nosuch'", "(devpi-host)"],
        ),
        (
            GOOD.replace(
                "  devpi-host: {target: server}\n",
                "  devpi-host: {target: server}\n  mirror: {target: win313, role: replica, primary: devpi-host}\n",
            ),
            ["servers.mirror.target", "'win313'", "same devpi-server"],
        ),
        (
            GOOD.replace(
                "  devpi-host: {target: server}\n",
                "  devpi-host: {target: server}\n  mirror: {target: server, role: replica, primary: devpi-host, index: other}\n",
            ),
            ["servers.mirror.index", "its primary's index"],
        ),
        (
            GOOD.replace("{target: server}", "{target: server, primary: x}"),
            ["servers.devpi-host.primary", "role: replica"],
        ),
        (
            GOOD.replace(
                "  devpi-host: {target: server}\n",
                "  devpi-host: {target: server}\n  mirror: {target: server, role: replica, primary: devpi-host, primary_url: 'ftp://x'}\n",
            ),
            ["servers.mirror.primary_url", "'ftp://x'", "base URL"],
        ),
        (
            GOOD.replace("{target: server}", "{target: server, nginx: {tls_cert: req.txt}}"),
            ["servers.devpi-host.nginx.tls_key", "set together"],
        ),
        (
            GOOD.replace("{target: server}", "{target: server, nginx: {tls_cert: a.pem, tls_key: req.txt}}"),
            ["servers.devpi-host.nginx.tls_cert", "'a.pem'", "an existing file"],
        ),
        (
            GOOD.replace("{target: server}", "{target: server, nginx: {listen: 80}}"),
            ["servers.devpi-host.nginx.listen", "no such key"],
        ),
        (GOOD + "index_url: ftp://x\n", ["index_url", "'ftp://x'", "URL"]),
        (
            GOOD.replace("requirements: [req.txt]", "requirements: [req.txt]\n    oldest_pip: 23.10"),
            ["targets.win313.oldest_pip", "23.1", 'a quoted pip version such as "23.0"'],
        ),
        (
            GOOD.replace("requirements: [req.txt]", 'requirements: [req.txt]\n    oldest_pip: "latest"'),
            ["targets.win313.oldest_pip", "'latest'", "the oldest pip the clients install with"],
        ),
        (
            GOOD.replace("requirements: [req.txt]", 'requirements: [req.txt]\n    oldest_pip: "20.3"'),
            ["targets.win313.oldest_pip", "'20.3'", "24.2 or newer: Python 3.13 came with pip 24.2"],
        ),
        (GOOD + "bundles: {part_size: '4.7'}\n", ["bundles.part_size", "'4.7'", "a whole number of bytes"]),
        (GOOD + "bundles: {part_size: 4.7}\n", ["bundles.part_size", "got 4.7,", "such as 4G, 4.7GB"]),
        (GOOD + "bundles: {part_size: 0}\n", ["bundles.part_size", "'0'", "at least one"]),
        (GOOD + "bundles: {part_size: 4 gigs}\n", ["bundles.part_size", "'4 gigs'", "such as 4G, 4.7GB"]),
    ],
)
def test_errors_name_file_key_value_and_expectation(write, text, fragments):
    path = write(text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("4G", 4_000_000_000),
        ("4.7GB", 4_700_000_000),  # a DVD
        ("650 MB", 650_000_000),
        ("2GiB", 2 << 30),
        ("4gib", 4 << 30),
        ("1.5k", 1_500),
        ("4000000000", 4_000_000_000),
        (4000000000, 4_000_000_000),  # a bare number of bytes: YAML reads an int
    ],
)
def test_a_part_size_is_read_as_users_write_sizes(write, written, size):
    assert load_inventory(write(GOOD + f"bundles: {{part_size: {json.dumps(written)}}}\n")).bundles.part_size == size


def test_replica_serves_its_primarys_index_and_front_defaults(write, tmp_path):
    text = GOOD.replace(
        "  devpi-host: {target: server}\n",
        "  devpi-host: {target: server, user: team, index: stable, nginx: {tls_cert: req.txt, tls_key: req.txt}}\n"
        "  mirror: {target: server, role: replica, primary: devpi-host, port: 4000, nginx: {}}\n",
    )
    inv = load_inventory(write(text))
    primary, replica = inv.server("devpi-host"), inv.server("mirror")
    assert (replica.is_replica, replica.user, replica.index, replica.port) == (True, "team", "stable", 4000)
    assert inv.replicas_of(primary) == [replica] and inv.replicas_of(replica) == []
    assert (primary.front.port, primary.front.tls_key) == (443, tmp_path / "req.txt")
    assert (replica.front.port, replica.front.server_name, replica.front.tls_cert) == (80, "mirror", None)
    assert primary.front is not None and inv.server("devpi-host").role == "primary"


def test_missing_inventory_says_how_to_point_at_one(tmp_path):
    with pytest.raises(InventoryError, match="--inventory PATH"):
        load_inventory(tmp_path / "inventory.yaml")


def test_unknown_target_lists_known_ones(write):
    inv = load_inventory(write(GOOD))
    with pytest.raises(UnknownTarget, match="'win312'.*known targets: win313, server, or 'all'"):
        inv.select_targets("win312")


def test_task_exits_2_with_one_clear_line(write, tmp_path):
    result = run_task("download", "--inventory", str(write(GOOD)), "--target", "nope")
    assert result.returncode == 2
    assert "unknown target 'nope'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "wheelhouse").exists()
    malformed = run_task("verify", "--inventory", str(write("targets: [\n")))
    assert malformed.returncode == 2 and "malformed YAML" in malformed.stderr


def test_mixed_platforms_in_one_target_are_refused(write):
    from devpi_airgap.core.platforms import PlatformError, target_platform

    inv = load_inventory(write(GOOD.replace("platform: win_amd64", "platform: [win_amd64, macosx_11_0_arm64]")))
    with pytest.raises(PlatformError, match="one target per OS and CPU"):
        target_platform(inv.targets["win313"])
    inv = load_inventory(write(GOOD.replace("platform: win_amd64", "platform: beos_x86")))
    with pytest.raises(PlatformError, match="unknown platform tag 'beos_x86'"):
        target_platform(inv.targets["win313"])


def test_a_key_given_twice_is_refused_not_silently_dropped(write):
    duplicated_target = GOOD.replace("  server:\n", "  win313:\n", 1)
    with pytest.raises(InventoryError, match="the key 'win313' appears twice"):
        load_inventory(write(duplicated_target))
    with pytest.raises(InventoryError, match="the key 'targets' appears twice"):
        load_inventory(write(GOOD + "targets: {}\n"))


def test_an_inventory_saved_with_a_byte_order_mark_reads_as_any_other(write):
    path = write(GOOD)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert list(load_inventory(path).targets) == ["win313", "server"]


def test_the_published_schema_is_the_models_own():
    """inventory.schema.json is what editors validate with; it must never drift from the model."""
    committed = (REPO / SCHEMA_FILE).read_text()
    assert committed == json_schema(), "run: .venv/bin/python -m devpi_airgap.core.inventory > inventory.schema.json"
    schema = json.loads(committed)
    expected = {"index_url", "wheelhouse", "locks", "targets", "servers", "bundles", "known_hosts", "policy"}
    assert set(schema["properties"]) == expected
    assert schema["required"] == ["targets"]
    assert (REPO / "inventory.yaml").read_text().startswith(f"# yaml-language-server: $schema={SCHEMA_FILE}\n")
