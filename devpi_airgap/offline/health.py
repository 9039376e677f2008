"""Is devpi up on the server: the unit's state, /+status, and its journal when it is not."""

from __future__ import annotations

from devpi_airgap.core.errors import RemoteError
from devpi_airgap.offline.layout import UNIT_NAME
from devpi_airgap.offline.programs import wait_healthy as wait_healthy_program
from devpi_airgap.offline.remote import Host

HEALTH_TIMEOUT = 90


def service_active(host: Host, unit: str = UNIT_NAME) -> bool:
    return host.run(f"systemctl is-active --quiet {unit}", step="service state", check=False).ok


def journal(host: Host, lines: int = 25) -> str:
    return host.run(f"journalctl --no-pager -n {lines} -u {UNIT_NAME}", step="journal", check=False).stdout


def wait_healthy(host: Host, port: int) -> None:
    """Poll /+status on the server itself: a tunnel to a port nobody listens on yet fails noisily."""
    result = host.run_program(
        wait_healthy_program, str(port), UNIT_NAME, str(HEALTH_TIMEOUT), step="health", check=False
    )
    if not result.ok:
        raise RemoteError(
            f"health: devpi-server on {host.name} did not answer /+status "
            f"({result.stderr.strip()[-200:]}). Its journal:\n{journal(host)}\n"
            "Fix the cause above and re-run deploy."
        )
