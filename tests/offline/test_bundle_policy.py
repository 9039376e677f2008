"""What the offline side checks of a bundle before anything is sent to the server: its own policy, and room to check in."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.disks import resize
from testing.environment import clean_env
from testing.fakeindex import Dist, build_index, serve_index
from testing.tasks import run_task

DISTS = [
    Dist("app", "1.0", requires=["lib"], headers=(("License-Expression", "MIT"),)),
    Dist("lib", "1.0", headers=(("License-Expression", "Apache-2.0"),)),
]
TARGETS = 'targets:\n  win313: {platform: win_amd64, python: "3.13", requirements: [requirements.txt]}\n'


def made_bundle(online: Path, bundles: str = "") -> Path:
    with serve_index(build_index(online / "index", DISTS)) as index:
        (online / "requirements.txt").write_text("app\n")
        (online / "inventory.yaml").write_text(
            f"index_url: {index}\n{TARGETS}policy:\n  licenses: {{allow: [MIT, Apache-2.0]}}\n{bundles}"
        )
        env = clean_env(online)
        run_task("download", "--inventory", str(online / "inventory.yaml"), env=env, check=True)
        made = run_task("bundle", "--inventory", str(online / "inventory.yaml"), env=env, check=True)
    return Path(made.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return made_bundle(tmp_path_factory.mktemp("online"))


@pytest.fixture(scope="module")
def bundle_in_parts(tmp_path_factory):
    """A bundle carried in parts, which the deploy joins in the temporary directory before it checks the whole."""
    whole = made_bundle(tmp_path_factory.mktemp("online-parts"), "bundles:\n  part_size: 8000\n")
    assert not whole.exists() and whole.with_name(whole.name + ".002").is_file()  # 20 kB: three parts
    return whole


def deploy_with_policy(tmp_path: Path, bundle: Path, policy: str, **env_vars: str):
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "requirements.txt").write_text("app\n")
    (offline / "inventory.yaml").write_text(f"{TARGETS}servers:\n  devpi-host: {{target: win313}}\npolicy:\n{policy}")
    # Nothing listens on port 9: a deploy that tried to connect would fail there, with exit 6.
    (offline / "ssh_config").write_text("Host devpi-host\n    HostName 127.0.0.1\n    Port 9\n")
    env = clean_env(offline, DEVPI_AIRGAP_ROOT_PASSWORD="x", DEVPI_AIRGAP_USER_PASSWORD="y", **env_vars)
    args = ["-S", str(offline / "ssh_config"), "-H", "devpi-host", "deploy", "--bundle", str(bundle)]
    return run_task(*args, "--inventory", str(offline / "inventory.yaml"), program="fabric", env=env)


def test_a_stricter_offline_policy_refuses_the_bundle_before_connecting(bundle, tmp_path):
    result = deploy_with_policy(tmp_path, bundle, "  licenses: {allow: [MIT], deny: [Apache-2.0]}\n")
    assert result.returncode == 9, result.stdout + result.stderr
    text = " ".join(result.stderr.split())
    assert "lib 1.0 (target win313): license Apache-2.0 is denied" in text and "Traceback" not in text


def test_an_offline_advisory_policy_refuses_a_bundle_without_a_snapshot(bundle, tmp_path):
    result = deploy_with_policy(tmp_path, bundle, "  advisories: {block: critical}\n")
    assert result.returncode == 9, result.stdout + result.stderr
    assert "carries no advisory snapshot" in " ".join(result.stderr.split())


def test_the_same_policy_offline_lets_the_bundle_through_to_the_connection(bundle, tmp_path):
    result = deploy_with_policy(tmp_path, bundle, "  licenses: {allow: [MIT, Apache-2.0]}\n")
    assert result.returncode == 6, result.stdout + result.stderr  # it got as far as connecting to port 9


@pytest.mark.parametrize("carried", ["bundle", "bundle_in_parts"])
def test_a_full_temporary_directory_names_tmpdir_as_the_remedy(carried, request, tmp_path, small_disk):
    """The bundle is joined and unpacked to be checked in the temporary directory, which users seldom choose."""
    bundle = request.getfixturevalue(carried)
    resize(small_disk, 16)  # the bundle's wheels and evidence take more
    result = deploy_with_policy(tmp_path, bundle, "  licenses: {allow: [MIT, Apache-2.0]}\n", TMPDIR=str(small_disk))
    assert result.returncode == 5, result.stdout + result.stderr
    text = " ".join(result.stderr.split())
    assert f"the disk is full ({small_disk}/" in text and "temporary directory" in text
    assert "point TMPDIR (on Windows, TEMP) at a disk with room" in text
    assert "Traceback" not in result.stderr and result.stderr.count("error:") == 1
    assert list(small_disk.iterdir()) == []  # the scratch is gone with the run
