"""Shared by every wing: the inventory model, platforms, locks, the wheelhouse, errors, isolation, console."""
