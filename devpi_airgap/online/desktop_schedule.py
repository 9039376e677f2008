"""`inv schedule` where the ops workstation is Windows or macOS: a Task Scheduler task or a launchd agent.

Both run one program, `python -m devpi_airgap.online.schedule run`, which
refreshes and then, only after a good refresh, deploys the pending bundles.
The renderers (`task_scheduler`, `launchd`) are pure and tested on Linux; the
registration commands below have not been run on Windows or macOS yet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

from devpi_airgap.core.errors import UsageError
from devpi_airgap.core.files import atomic_write
from devpi_airgap.online.launchd import LABEL, render_agent
from devpi_airgap.online.task_scheduler import TASK_NAME, render_task


def venv_python(repo: Path | str, platform: str = sys.platform) -> str:
    """The venv's interpreter in the given platform's own path syntax (Windows keeps it in Scripts\\)."""
    if platform == "win32":
        return str(PureWindowsPath(repo, ".venv", "Scripts", "python.exe"))
    return str(PurePosixPath(repo, ".venv", "bin", "python"))


def run_argv(repo: Path, inventory: Path, deploy_host: str | None, platform: str = sys.platform) -> list[str]:
    host = ["--host", deploy_host] if deploy_host else []
    return [venv_python(repo, platform), "-m", "devpi_airgap.online.schedule", "run", "--repo", str(repo),
            "--inventory", str(inventory), *host]  # fmt: skip


def _task_file() -> Path:
    """Where the task's XML is kept, to compare against the next render and to remove."""
    return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "devpi-airgap" / f"{TASK_NAME}.xml"


def _agent_file() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def _launchd_domain() -> str:
    return f"gui/{os.getuid()}"  # type: ignore[attr-defined,unused-ignore]  # only reached on macOS


def _registered(command: list[str]) -> None:
    # schtasks answers in the console's code page, which is no UTF-8: what it says is shown, whatever it cannot
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        raise UsageError(
            f"{' '.join(command)} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
        )


def install(
    repo: Path, inventory: Path, on_calendar: str, deploy_host: str | None, *, check: bool = False
) -> tuple[list[str], bool]:
    """Register the task or agent when its definition changed; (what was done, for the task layer, whether anything
    was). With check, what would be done, and nothing is."""
    argv = run_argv(repo, inventory, deploy_host)
    if sys.platform == "win32":
        path = _task_file()
        text = render_task(argv, str(repo), on_calendar).encode("utf-16")  # schtasks reads the encoding it declares
        if path.is_file() and path.read_bytes() == text:
            return [f"no changes: the {TASK_NAME} task in {path} is up to date"], False
        if check:
            return [f"would write {path} and register the Task Scheduler task {TASK_NAME}"], True
        atomic_write(path, text)
        _registered(["schtasks", "/Create", "/TN", TASK_NAME, "/XML", str(path), "/F"])
        return [f"wrote {path} and registered the Task Scheduler task {TASK_NAME}"], True
    path = _agent_file()
    log = str(Path.home() / "Library" / "Logs" / "devpi-airgap-refresh.log")
    plist = render_agent(argv, str(repo), log, on_calendar)
    if path.is_file() and path.read_bytes() == plist:
        return [f"no changes: {path} is up to date"], False
    if check:
        return [f"would write {path} and load it with launchctl"], True
    domain = _launchd_domain()
    subprocess.run(["launchctl", "bootout", domain, str(path)], capture_output=True)  # not loaded yet is fine
    atomic_write(path, plist)
    _registered(["launchctl", "bootstrap", domain, str(path)])
    return [f"wrote {path} and loaded it with launchctl"], True


def remove(*, check: bool = False) -> tuple[list[str], bool]:
    """Unregister and delete the task or agent; (what was done, whether anything was). With check, only say it."""
    if sys.platform == "win32":
        path = _task_file()
        if not path.is_file():
            return [f"no changes: no {TASK_NAME} task was registered from here"], False
        if check:
            return [f"would remove the Task Scheduler task {TASK_NAME}"], True
        _registered(["schtasks", "/Delete", "/TN", TASK_NAME, "/F"])
        path.unlink()
        return [f"removed the Task Scheduler task {TASK_NAME}"], True
    path = _agent_file()
    if not path.is_file():
        return [f"no changes: no {path}"], False
    if check:
        return [f"would unload and remove {path}"], True
    subprocess.run(["launchctl", "bootout", _launchd_domain(), str(path)], capture_output=True)
    path.unlink()
    return [f"unloaded and removed {path}"], True
