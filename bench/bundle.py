"""Bundle write and check throughput against `tar cf` and `sha256sum` of the same files, in one run.

    .venv/bin/python -m bench.bundle [--inventory inventory.yaml] [--json bench/results/bundle.json]

Writing a bundle is compared with `tar cf` of the same wheels; checking one
(checksum, manifest, every sha256, extraction into staging) with `sha256sum`
of the same wheels plus `tar xf`. Peak memory (max RSS of a child process) is
reported for both of ours, since it must not grow with the bundle's size.
Goal: >= 0.8x the reference rate. Not a test: it never fails on time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import default_path, write_results

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import json, resource, sys, time
from pathlib import Path
from devpi_airgap.core.inventory import load_inventory
from devpi_airgap.online.audit import audit_inventory
from devpi_airgap.transfer.bundle import write_bundle
from devpi_airgap.transfer.bundle_check import check_bundle
inv = load_inventory({inventory!r})
start = time.perf_counter()
if {mode!r} == "write":
    path = write_bundle(inv, audit_inventory(inv), full=True)
else:
    check_bundle(Path({bundle!r}), Path({staging!r}))
print(json.dumps({{"seconds": time.perf_counter() - start, "path": str(path) if {mode!r} == "write" else "",
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def timed(command: list[str], **kw) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def ours(mode: str, inventory: Path, bundle: str = "", staging: str = "") -> dict:
    code = CHILD.format(inventory=str(inventory), mode=mode, bundle=bundle, staging=staging)
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=REPO / "inventory.yaml")
    parser.add_argument("--json", type=Path, default=default_path("bundle"), help="where to write the results")
    args = parser.parse_args()
    inventory = args.inventory.resolve()
    pool = inventory.parent / "wheelhouse" / ".pool"
    wheels = sorted(p.name for p in pool.glob("*.whl"))
    if not wheels:
        parser.error(f"no wheels in {pool}: run `inv download` first")
    size = sum((pool / w).stat().st_size for w in wheels)
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        tmp = Path(tmp)
        bench_inventory = tmp / "inventory.yaml"
        text = inventory.read_text()
        bench_inventory.write_text(
            text.replace(
                "targets:",
                f"wheelhouse: {inventory.parent / 'wheelhouse'}\n"
                f"locks: {inventory.parent / 'locks'}\nbundles: {{dir: {tmp / 'out'}}}\n"
                "targets:",
                1,
            )
        )
        for req in inventory.parent.glob("requirements/*.txt"):
            (tmp / "requirements").mkdir(exist_ok=True)
            (tmp / "requirements" / req.name).write_text(req.read_text())
        shipped = inventory.parent / "wheelhouse" / ".shipped.json"
        saved = shipped.read_bytes() if shipped.exists() else None
        try:
            write = ours("write", bench_inventory)
        finally:  # a benchmark must not change what the next real bundle carries
            shipped.unlink(missing_ok=True) if saved is None else shipped.write_bytes(saved)
        bundle = Path(write["path"])
        tar = timed(["tar", "cf", str(tmp / "ref.tar"), *wheels], cwd=pool)
        check = ours("check", bench_inventory, str(bundle), str(tmp / "staging"))
        (tmp / "ref").mkdir()
        sha = timed(["sha256sum", *wheels], cwd=pool) + timed(["tar", "xf", str(tmp / "ref.tar")], cwd=tmp / "ref")
        bundled = bundle.stat().st_size
    rows = [
        ("write bundle vs tar cf", write["seconds"], tar, write["max_rss_mb"]),
        ("check bundle vs sha256sum + tar xf", check["seconds"], sha, check["max_rss_mb"]),
    ]
    print(f"{len(wheels)} wheels in the pool, {size / 1e6:.1f} MB (bundle of the locked ones: {bundled / 1e6:.1f} MB)")
    print(
        f"{'scenario':38} {'ours s':>7} {'ref s':>7} {'ours MB/s':>10} {'ref MB/s':>9} {'rate ratio':>10} {'peak RSS':>9}"
    )
    for name, mine, ref, rss in rows:
        print(
            f"{name:38} {mine:7.2f} {ref:7.2f} {bundled / mine / 1e6:10.0f} {size / ref / 1e6:9.0f} "
            f"{(bundled / mine) / (size / ref):9.2f}x {rss:7.0f}MB"
        )
    print("goal: rate ratio >= 0.8x; peak RSS independent of bundle size")
    results = [
        {
            "scenario": name,
            "ours_s": mine,
            "reference_s": ref,
            "rate_ratio": (bundled / mine) / (size / ref),
            "peak_rss_mb": rss,
        }
        for name, mine, ref, rss in rows
    ]
    print(f"results: {write_results(args.json, {'wheels': len(wheels), 'megabytes': size / 1e6, 'rows': results})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
