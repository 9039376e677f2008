"""devpi-airgap: target-correct wheelhouses and a hardened devpi-server for closed networks."""

__version__ = "0.1.0"
