"""Bundles: written as deltas, checked before anything is taken, refused when tampered with."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from devpi_airgap.transfer.parts import join_parts
from testing.disks import resize
from testing.environment import clean_env
from testing.fakeindex import Dist, add_release, build_index, serve_index, sha256_file
from testing.signing import make_keys, manifest_of, resign
from testing.tasks import REPO, run_task

INVENTORY = """
index_url: {url}
targets:
  win313: {{platform: win_amd64, python: "3.13", requirements: [requirements.txt]}}
bundles:
  sign_key: key
  allowed_signers: allowed_signers
  identity: ops@example
  require_signature: true
"""


@pytest.fixture
def project(tmp_path):
    root = build_index(tmp_path / "index", [Dist("app", "1.0", requires=["lib"]), Dist("lib", "1.0")])
    with serve_index(root) as url:
        (tmp_path / "requirements.txt").write_text("app\n")
        (tmp_path / "inventory.yaml").write_text(INVENTORY.format(url=url))
        make_keys(tmp_path)
        yield tmp_path, root


def task(project: Path, *args: str):
    return run_task(*args, "--inventory", str(project / "inventory.yaml"), env=clean_env(project))


def test_refresh_writes_full_then_delta_then_nothing(project):
    path, index_root = project
    first = task(path, "refresh")
    assert first.returncode == 0, first.stderr
    bundle1 = Path(first.stdout.strip().splitlines()[-1])
    assert {f["name"] for f in manifest_of(bundle1)["files"]} == {
        "app-1.0-py3-none-any.whl",
        "lib-1.0-py3-none-any.whl",
    }
    assert bundle1.with_name(bundle1.name + ".sha256").exists() and bundle1.with_name(bundle1.name + ".sig").exists()
    add_release(index_root, Dist("lib", "1.1"))
    second = task(path, "refresh")
    assert second.returncode == 0, second.stderr
    bundle2 = Path(second.stdout.strip().splitlines()[-1])
    assert [f["name"] for f in manifest_of(bundle2)["files"]] == ["lib-1.1-py3-none-any.whl"]
    assert "lib 1.0 -> 1.1" in " ".join(second.stdout.split())
    report = json.loads((path / "wheelhouse" / "refresh-report.json").read_text())
    assert report["bundle"] == str(bundle2) and report["targets"]["win313"]["updated"] == ["lib 1.0 -> 1.1"]
    third = task(path, "refresh")
    assert third.returncode == 0 and third.stdout.strip().splitlines()[-1] == "nothing new"
    assert "refresh done: nothing new" in (path / "wheelhouse" / "refresh.log").read_text()
    full = manifest_of(Path(task(path, "bundle", "--full").stdout.strip().splitlines()[-1]))
    assert {f["name"] for f in full["files"]} == {"app-1.0-py3-none-any.whl", "lib-1.1-py3-none-any.whl"}
    assert all(f["size"] > 0 and f["targets"] == ["win313"] for f in full["files"])


def test_refresh_exit_codes(project):
    path, _ = project
    (path / "requirements.txt").write_text("no-such-package\n")
    assert task(path, "refresh").returncode == 3
    (path / "requirements.txt").write_text("app\n")
    (path / "wheelhouse").mkdir(exist_ok=True)
    holder = subprocess.Popen(["flock", str(path / "wheelhouse" / ".refresh.lock"), "sleep", "30"])
    try:
        import time

        time.sleep(0.5)
        busy = task(path, "refresh")
        assert busy.returncode == 8 and "another refresh" in busy.stderr
    finally:
        holder.kill()


def check(bundle: Path, staging: Path, signers: Path | None, required=True):
    from devpi_airgap.transfer.bundle_check import check_bundle

    return check_bundle(
        bundle, staging, allowed_signers=str(signers) if signers else None, identity="ops@example", required=required
    )


def rewrite(bundle: Path, keep=lambda m: True, extra: tarfile.TarInfo | None = None) -> None:
    with tarfile.open(bundle) as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers() if keep(m)]
    with tarfile.open(bundle, "w") as out:
        for member, data in members:
            out.addfile(member, __import__("io").BytesIO(data))
        if extra is not None:
            out.addfile(extra, __import__("io").BytesIO(b"x" * extra.size))


def fresh_bundle(path: Path) -> Path:
    result = task(path, "bundle", "--full")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "tamper, message",
    [
        ("flip", "does not match"),
        ("truncate", "not a readable bundle"),
        ("drop", "lacks"),
        ("escape", "refused member '../evil'"),
        ("link", "refused member"),
        ("unsigned", "unsigned"),
        ("wrong-key", "signature does not verify"),
    ],
)
def test_tampered_bundles_are_refused_and_leave_nothing(project, tamper, message):
    from devpi_airgap.transfer.bundle_check import BundleError

    path, _ = project
    assert task(path, "download").returncode == 0
    bundle = fresh_bundle(path)
    key = path / "key"
    if tamper == "flip":
        data = bytearray(bundle.read_bytes())
        data[len(data) // 2] ^= 0xFF
        bundle.write_bytes(bytes(data))
    elif tamper == "truncate":
        bundle.write_bytes(bundle.read_bytes()[: len(bundle.read_bytes()) // 2])
        resign(bundle, key)
    elif tamper == "drop":
        rewrite(bundle, keep=lambda m: not m.name.startswith("wheels/lib"))
        resign(bundle, key)
    elif tamper == "escape":
        evil = tarfile.TarInfo("../evil")
        evil.size = 4
        rewrite(bundle, extra=evil)
        resign(bundle, key)
    elif tamper == "link":
        link = tarfile.TarInfo("wheels/link.whl")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        rewrite(bundle, extra=link)
        resign(bundle, key)
    elif tamper == "unsigned":
        bundle.with_name(bundle.name + ".sig").unlink()
    elif tamper == "wrong-key":
        make_keys(path / "other", "key") if (path / "other").mkdir() is None else None
        resign(bundle, path / "other" / "key")
    staging = path / "staging"
    with pytest.raises(BundleError, match=message):
        check(bundle, staging, path / "allowed_signers")
    assert not staging.exists()
    assert not (path.parent / "evil").exists()


def test_a_bundle_says_which_requirements_pin_by_hash_and_refuses_a_lock_they_no_longer_allow(project):
    path, index_root = project
    sha = {name: sha256_file(index_root / "files" / f"{name}-1.0-py3-none-any.whl") for name in ("app", "lib")}
    pinned = "".join(f"{name}==1.0 --hash=sha256:{digest}\n" for name, digest in sha.items())
    (path / "requirements.txt").write_text(pinned)
    assert task(path, "download").returncode == 0
    written = task(path, "bundle")
    assert written.returncode == 0, written.stderr
    with tarfile.open(written.stdout.strip().splitlines()[-1]) as tar:
        evidence = json.loads(tar.extractfile("evidence.json").read())
        page = tar.extractfile("evidence.html").read().decode()
    assert evidence["targets"]["win313"]["hash_pinned"] == ["requirements.txt"]
    assert "Pinned by --hash: requirements.txt; every file is one whose sha256 they allow." in page

    # The approved file changes after the download: the lock's lib is no longer one it allows.
    (path / "requirements.txt").write_text(pinned.replace(sha["lib"], "0" * 64))
    bundles = set((path / "bundles").iterdir())
    refused = task(path, "bundle", "--full")
    assert refused.returncode == 3, refused.stderr
    message = " ".join(refused.stderr.split())
    assert f"lib 1.0: lib-1.0-py3-none-any.whl (sha256 {sha['lib']}) matches none of the 1 --hash values" in message
    assert "No bundle was written. Run `inv download --target win313` again" in message
    assert set((path / "bundles").iterdir()) == bundles


@pytest.mark.skipif(os.name != "posix", reason="scratch is swept on POSIX only")
def test_the_partial_bundle_of_a_run_killed_outright_is_removed_by_the_next_bundle(project):
    """A bundle is written under a name of its run's, then renamed: a run killed outright leaves gigabytes."""
    path, _ = project
    assert task(path, "download").returncode == 0
    ended = subprocess.Popen(["true"])
    ended.wait()
    bundles = path / "bundles"
    bundles.mkdir()
    left = bundles / f".devpi-airgap-partial-{ended.pid}-devpi-airgap-20260101T000000Z-0123abcd.tar.part"
    running = bundles / f".devpi-airgap-partial-{os.getpid()}-devpi-airgap-20260101T000000Z-4567cdef.tar.part"
    for partial in (left, running):
        partial.write_bytes(b"half a bundle")
    written = task(path, "bundle")
    assert written.returncode == 0, written.stderr
    assert not left.exists() and running.exists()  # another run's, still at work, is left to it
    assert [p.name for p in bundles.iterdir() if p.name.startswith(".")] == [running.name]


def said(result) -> str:
    return " ".join(result.stdout.split())


def test_bundle_check_shows_what_the_next_bundle_carries_and_writes_nothing(project):
    path, index_root = project
    assert task(path, "download").returncode == 0
    wheelhouse = path / "wheelhouse"
    before = {p: p.stat().st_mtime_ns for p in wheelhouse.rglob("*") if p.is_file()}
    first = task(path, "bundle", "--check")
    assert first.returncode == 0, first.stderr
    assert "win313: in no bundle yet; 2 packages, all new" in said(first)
    assert "the next bundle would carry 2 files" in said(first) and "left out" not in said(first)
    assert "nothing was written" in said(first)
    assert not (path / "bundles").exists()
    assert {p: p.stat().st_mtime_ns for p in wheelhouse.rglob("*") if p.is_file()} == before  # not even a cache
    written = Path(task(path, "bundle").stdout.strip().splitlines()[-1])
    assert {f["name"] for f in manifest_of(written)["files"]} == {
        "app-1.0-py3-none-any.whl",
        "lib-1.0-py3-none-any.whl",
    }

    add_release(index_root, Dist("lib", "1.1"))
    assert task(path, "download").returncode == 0
    second = task(path, "bundle", "--check")
    assert "win313: updated lib 1.0 -> 1.1" in said(second) and "new app" not in said(second)
    assert "would carry 1 file," in said(second)
    assert "1 file left out, as an earlier bundle carried them" in said(second)
    assert "would carry 2 files" in said(task(path, "bundle", "--check", "--full"))
    assert {f["name"] for f in manifest_of(Path(task(path, "bundle").stdout.strip().splitlines()[-1]))["files"]} == {
        "lib-1.1-py3-none-any.whl"
    }
    assert "nothing new: every file was in an earlier bundle" in said(task(path, "bundle", "--check"))
    refused = task(path, "bundle", "--check", "--advisories")
    assert refused.returncode == 2 and "an advisory bundle (--advisories) has none" in refused.stderr
    inventory = path / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "  part_size: 1K\n")
    locked = ("app-1.0-py3-none-any.whl", "lib-1.1-py3-none-any.whl")  # what --full carries now
    sizes = sum((wheelhouse / ".pool" / name).stat().st_size for name in locked)
    assert f"in {-(-sizes // 1000)} or more parts of" in said(task(path, "bundle", "--check", "--full"))


def test_a_file_system_that_limits_a_files_size_stops_the_bundle_with_the_remedy_and_keeps_nothing(project):
    """As a FAT32 stick stops a file at 4 GiB: here a process limit on file size, which makes writes fail alike."""
    path, _ = project
    assert task(path, "download").returncode == 0

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on FAT32

    command = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "bundle", "--inventory",
               str(path / "inventory.yaml")]  # fmt: skip
    limited = subprocess.run(command, env=clean_env(path), capture_output=True, text=True, preexec_fn=small_files)
    message = " ".join(limited.stderr.split())
    assert limited.returncode == 5, limited.stdout + limited.stderr
    assert "a limit on the size of one file" in message and "bundles.part_size" in message
    assert [p.name for p in (path / "bundles").iterdir()] == []  # nothing half-written kept
    assert not (path / "wheelhouse" / ".shipped.json").exists()  # nor recorded as shipped

    inventory = path / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "  part_size: 1M\n")  # parts larger than the limit
    too_large = subprocess.run(command, env=clean_env(path), capture_output=True, text=True, preexec_fn=small_files)
    assert too_large.returncode == 5 and "lower bundles.part_size" in " ".join(too_large.stderr.split())
    assert [p.name for p in (path / "bundles").iterdir()] == []

    # Parts within the limit are written straight onto the medium: the whole bundle never is, nor its room needed.
    inventory.write_text(inventory.read_text().replace("part_size: 1M", "part_size: 4K"))
    parted = subprocess.run(command, env=clean_env(path), capture_output=True, text=True, preexec_fn=small_files)
    assert parted.returncode == 0, parted.stdout + parted.stderr
    bundle = Path(parted.stdout.strip().splitlines()[-1])
    pieces = sorted(p for p in (path / "bundles").iterdir() if p.suffix not in (".sha256", ".sig"))
    assert not bundle.exists() and len(pieces) > 1 and all(p.stat().st_size <= 4000 for p in pieces)
    (path / "joined").mkdir()
    joined = join_parts(bundle, path / "joined")
    checked = check(joined, path / "staging", path / "allowed_signers")  # the signature is the whole's
    assert checked["signature"] and {f["name"] for f in checked["files"]} == {
        "app-1.0-py3-none-any.whl",
        "lib-1.0-py3-none-any.whl",
    }


def test_a_full_disk_names_bundles_dir_keeps_nothing_and_a_rerun_writes_the_bundle(project, small_disk):
    path, _ = project
    assert task(path, "download").returncode == 0
    inventory = path / "inventory.yaml"
    inventory.write_text(inventory.read_text() + f"  dir: {small_disk}\n")
    resize(small_disk, 16)  # the two small wheels and the tar's headers take more
    full = task(path, "bundle")
    message = " ".join(full.stderr.split())
    assert full.returncode == 5, full.stdout + full.stderr
    assert f"{small_disk}: the disk is full" in message and "point bundles.dir at a disk with room" in message
    assert "Traceback" not in full.stderr and full.stderr.count("error:") == 1
    assert list(small_disk.iterdir()) == []  # nothing half-written kept
    assert not (path / "wheelhouse" / ".shipped.json").exists()  # nor recorded as shipped

    resize(small_disk, 8192)
    again = task(path, "bundle")
    assert again.returncode == 0, again.stdout + again.stderr
    assert Path(again.stdout.strip().splitlines()[-1]).parent == small_disk


def test_a_key_that_cannot_sign_stops_the_bundle_with_its_words_and_records_nothing_shipped(project):
    path, _ = project
    assert task(path, "download").returncode == 0
    (path / "key").write_text("not a key\n")
    refused = task(path, "bundle")
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 7 and "signing devpi-airgap-" in message and "check bundles.sign_key" in message
    assert "Traceback" not in refused.stderr
    assert not list((path / "bundles").glob("*.sig"))
    assert not (path / "wheelhouse" / ".shipped.json").exists()  # the next bundle carries the files again


def test_the_servers_checker_with_no_room_to_unpack_says_so_and_keeps_nothing(project, small_disk):
    """On the server the checker runs alone, with the standard library; a full disk there is not the bundle's fault."""
    path, _ = project
    assert task(path, "download").returncode == 0
    bundle = Path(task(path, "bundle").stdout.strip().splitlines()[-1])
    resize(small_disk, 16)  # the two small wheels and the evidence take more
    staging = small_disk / "staging"
    checker = REPO / "devpi_airgap" / "transfer" / "bundle_check.py"
    result = subprocess.run(
        [sys.executable, "-I", str(checker), str(bundle), str(staging)], capture_output=True, text=True, cwd=path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"{bundle.name}: cannot unpack it into {staging} to check it: No space left on device" in message
    assert "free space there and run again" in message and "Traceback" not in result.stderr
    assert list(small_disk.iterdir()) == []


def test_the_servers_checker_names_a_bundle_it_cannot_read(tmp_path):
    (tmp_path / "b.tar").mkdir()  # where the bundle should be: unreadable as a file
    (tmp_path / "b.tar.sha256").write_text("0" * 64 + "  b.tar\n")
    checker = REPO / "devpi_airgap" / "transfer" / "bundle_check.py"
    result = subprocess.run(
        [sys.executable, "-I", str(checker), str(tmp_path / "b.tar"), str(tmp_path / "staging")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"b.tar: cannot be read here ({tmp_path / 'b.tar'}: Is a directory); copy it again" in result.stderr
    assert "Traceback" not in result.stderr
