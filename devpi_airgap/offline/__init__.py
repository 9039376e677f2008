"""The offline wing: devpi-server on a host with no network, set up and fed through steps."""
