"""The test harness: real parts on this machine for tests and benchmarks alike.

An offline Debian host booted with systemd-nspawn (`offline_host`), a
deterministic package index on loopback (`fakeindex`), a real devpi-server on
loopback (`devpi_server`), and environments blind to this machine's pip and uv
configuration (`environment`). `tests/` and `bench/` both import from here.
"""
