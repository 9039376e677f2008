from testing.devpi_server import devpi_server  # noqa: F401  (fixture)
from testing.offline_host import offline_host  # noqa: F401  (fixture)
