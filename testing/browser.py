"""Headless Chromium for tests that must see a page as a user's browser renders it.

Screenshots go into `$CI_ARTIFACTS` when set, else into `<repo>/.ci-artifacts/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from testing.tasks import REPO, require_or_fail

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    require_or_fail(path is not None, "headless Chromium is not installed (Debian: apt-get install chromium)")
    return str(path)


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("CI_ARTIFACTS") or REPO / ".ci-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def browse(chromium: str, profile: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium once on url; a fresh profile, no proxy: the runner reaches the host directly."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-proxy-server",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


def dump_dom(chromium: str, profile: Path, url: str) -> str:
    return browse(chromium, profile, url, "--dump-dom").stdout


def screenshot(chromium: str, profile: Path, url: str, png: Path) -> Path:
    png.unlink(missing_ok=True)
    browse(chromium, profile, url, f"--screenshot={png}", "--window-size=1280,900", "--hide-scrollbars")
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000, f"{png} is not a real screenshot ({len(data)} bytes)"
    print(f"screenshot of {url}: {png}")
    return png
