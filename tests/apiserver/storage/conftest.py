"""Fixtures of the storage contract suite: one ``storage`` fixture run against every backend.

``BACKENDS`` maps a name to a factory: an async context manager taking a temporary directory and
yielding a *started* Storage, closed on exit. Adding a backend (etcd) is one more entry here; the
whole contract suite then runs against it unchanged. Backends in ``PERSISTENT`` keep their data in
the directory, so reopening the same directory must find it again.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from apiserver.storage import interface, sqlite, watch_cache

#: fast background loops, so TTL tests take about a second
SQLITE_TEST_OPTIONS: dict[str, Any] = {"ttl_sweep_interval": 0.05, "compact_interval": None}


@contextlib.asynccontextmanager
async def make_sqlite(path: pathlib.Path, **options: Any) -> AsyncIterator[interface.Storage]:
    store = sqlite.SqliteStorage(str(path / "state.db"), **{**SQLITE_TEST_OPTIONS, **options})
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def make_cached_sqlite(path: pathlib.Path, **options: Any) -> AsyncIterator[interface.Storage]:
    """A watch cache (options go to it) in front of SQLite; the cache starts and closes SQLite."""
    backend = sqlite.SqliteStorage(str(path / "state.db"), **SQLITE_TEST_OPTIONS)
    cache = watch_cache.WatchCache(backend, **options)
    await cache.start()
    try:
        yield cache
    finally:
        await cache.close()


Factory = Callable[..., contextlib.AbstractAsyncContextManager[interface.Storage]]

BACKENDS: dict[str, Factory] = {"sqlite": make_sqlite, "sqlite+cache": make_cached_sqlite}
PERSISTENT: set[str] = {"sqlite", "sqlite+cache"}


@pytest.fixture(params=sorted(BACKENDS))
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def persistent(backend_name: str) -> bool:
    return backend_name in PERSISTENT


@pytest.fixture
def open_storage(backend_name: str, tmp_path: pathlib.Path) -> Callable[[], Any]:
    """Opens (again) the storage of this test's directory: ``async with open_storage() as s``."""
    return lambda: BACKENDS[backend_name](tmp_path)


@pytest.fixture
async def storage(open_storage: Callable[[], Any]) -> AsyncIterator[interface.Storage]:
    async with open_storage() as store:
        yield store
