"""`fab deploy --bundle FILE`: check a carried bundle here and on the server, then deploy from it.

Nothing changes on the server until both checks pass. The checked files are
laid out as a wheelhouse (hard links per target) and the ordinary deploy runs
on that, so a bundle import and a wheelhouse deploy cannot drift apart.
Uploads skip what the index holds, so bundles apply in any order, or twice.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from devpi_airgap.transfer import bundle_check
from devpi_airgap.transfer.bundle import inventory_id
from devpi_airgap.transfer.bundle_check import BundleError, check_bundle
from devpi_airgap.core.console import err, out, table
from devpi_airgap.offline.credentials import Credentials
from devpi_airgap.offline.deploy import deploy
from devpi_airgap.core.inventory import Inventory, Server
from devpi_airgap.offline.remote import Host, RemoteError

REMOTE_DIR = "/var/lib/devpi-airgap"
IMPORTED = f"{REMOTE_DIR}/imported.json"


def _lay_out(manifest: dict, checked: Path, view: Path) -> None:
    for f in manifest["files"]:
        for target in f["targets"]:
            dest = view / target / f["name"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(checked / "wheels" / f["name"], dest)


def _check_on_server(host: Host, inventory: Inventory, bundle: Path) -> None:
    settings = inventory.bundles
    incoming = f"{REMOTE_DIR}/incoming"
    host.run(f"install -d -m 0700 {incoming}", step="copy bundle")
    companions = [p for p in (bundle.with_name(bundle.name + ".sha256"), bundle.with_name(bundle.name + ".sig"))
                  if p.exists()]
    for path in [bundle, *companions]:
        host.put(path, f"{incoming}/{path.name}", step="copy bundle")
    signers = ""
    if settings.allowed_signers:
        signers = f"{incoming}/allowed_signers"
        host.put(settings.allowed_signers, signers, step="copy bundle")
    staging = f"{incoming}/{bundle.stem}.check"
    args = " ".join(shlex.quote(a) for a in (f"{incoming}/{bundle.name}", staging, signers,
                                               settings.identity or "", "1" if settings.require_signature else "0"))
    result = host.run(f"python3 - {args}; status=$?; rm -rf {shlex.quote(staging)}; exit $status",
                      step="check bundle on server", stdin=inspect.getsource(bundle_check), check=False)
    if not result.ok:
        raise RemoteError(f"check bundle on server: {host.name} refused {bundle.name}: {result.stderr.strip()}")


def _record_import(host: Host, manifest: dict) -> None:
    entry = {"bundle_id": manifest["bundle_id"], "sha256": manifest["sha256"], "files": len(manifest["files"]),
             "full": manifest["full"], "signature": manifest["signature"],
             "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    script = ("import json, sys; path, entry = sys.argv[1], json.loads(sys.stdin.read())\n"
              "try: data = json.load(open(path))\nexcept FileNotFoundError: data = []\n"
              "data = [d for d in data if d['bundle_id'] != entry['bundle_id']] + [entry]\n"
              "open(path + '.tmp', 'w').write(json.dumps(data, indent=1)); __import__('os').replace(path + '.tmp', path)")
    host.run(f"python3 -c {shlex.quote(script)} {IMPORTED}", step="record import", stdin=json.dumps(entry))


def imported_bundles(host: Host) -> list[dict]:
    result = host.run(f"cat {IMPORTED}", step="status", check=False)
    return json.loads(result.stdout) if result.ok and result.stdout.strip() else []


def deploy_bundle(host: Host, inventory: Inventory, server: Server, credentials: Credentials, bundle: Path) -> None:
    if not bundle.is_file():
        raise BundleError(f"{bundle}: no such bundle file")
    settings = inventory.bundles
    with tempfile.TemporaryDirectory(prefix="airgap-bundle-") as tmp:
        checked = Path(tmp) / "checked"
        manifest = check_bundle(bundle, checked, allowed_signers=str(settings.allowed_signers or "") or None,
                                identity=settings.identity, required=settings.require_signature)
        if manifest["inventory_id"] != inventory_id(inventory):
            raise BundleError(f"{bundle.name} was made for a different inventory (its targets differ from "
                              f"{inventory.path}'s); use the inventory it was made with")
        err.print(f"{bundle.name}: checksum, manifest and {manifest['signature']} ok here; "
                  f"{len(manifest['files'])} files")
        host.become_root()
        _check_on_server(host, inventory, bundle)
        err.print(f"{bundle.name}: checked on {host.name} too")
        view = Path(tmp) / "wheelhouse"
        _lay_out(manifest, checked, view)
        shutil.copytree(checked / "locks", Path(tmp) / "locks")
        carried = dataclasses.replace(inventory, wheelhouse=view, locks=Path(tmp) / "locks")
        deploy(host, carried, server, credentials, from_bundle=True, on_uploaded=lambda: _record_import(host, manifest))


def print_imported(host: Host) -> None:
    rows = [[b["bundle_id"], b["files"], "full" if b["full"] else "delta", b["signature"], b["imported"]]
            for b in imported_bundles(host)]
    out.print(table("imported bundles", ["bundle", "files", "kind", "signature", "imported"], rows, right_from=1)
              if rows else "no bundles imported yet")
