import pytest

from testing.devpi_server import devpi_server  # noqa: F401  (fixture)
from testing.disks import small_disk  # noqa: F401  (fixture)
from testing.offline_host import offline_host  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def own_uv_cache(tmp_path_factory, monkeypatch):
    """uv run by this process gets a cache of its own in each test, not the machine's.

    The fake indexes listen on loopback ports that come round again, and uv keys what it caches by URL:
    with one cache, a test was once handed another index's metadata for the same file name (its `app`
    required a `posixonly` that its own index never had). Tests that run the tasks set their own cache.
    """
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path_factory.mktemp("uv-cache")))
