"""Fixtures of the storage contract suite: one ``storage`` fixture run against every backend.

``BACKENDS`` maps a name to a factory: an async context manager taking a temporary directory and
yielding a *started* Storage, closed on exit. Adding a backend (etcd) is one more entry here; the
whole contract suite then runs against it unchanged. Backends in ``PERSISTENT`` keep their data in
the directory, so reopening the same directory must find it again.

The etcd backends share one real etcd per session (``etcd_server``); each test gets its own key
prefix on the wire, derived from its directory, so tests see only their own keys while the revision
counter stays global (tests run one at a time, so "the next revision" still holds).
"""

from __future__ import annotations

import contextlib
import hashlib
import pathlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from apiserver.storage import etcd, interface, sqlite, watch_cache
from apiserver.storage.etcd_channel import EtcdConfig
from tests.etcd_fixture import SKIP_REASON, EtcdServer, etcd_binary

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


#: the session's etcd, once a test asked for an etcd backend (see the etcd_server fixture)
SHARED_ETCD: list[EtcdServer] = []
#: no periodic compaction (it would change revisions under the tests' feet)
ETCD_TEST_OPTIONS: dict[str, Any] = {"compact_interval": None}


def etcd_config(path: pathlib.Path) -> EtcdConfig:
    """The shared etcd, under a key prefix of this test directory's own."""
    if not SHARED_ETCD:
        raise RuntimeError("no etcd running: request the etcd_server fixture first")
    server = SHARED_ETCD[0]
    prefix = "/t-" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return EtcdConfig((("127.0.0.1", server.client_port),), prefix=prefix)


@contextlib.asynccontextmanager
async def make_etcd(path: pathlib.Path, **options: Any) -> AsyncIterator[interface.Storage]:
    store = etcd.EtcdStorage(etcd_config(path), **{**ETCD_TEST_OPTIONS, **options})
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def make_cached_etcd(path: pathlib.Path, **options: Any) -> AsyncIterator[interface.Storage]:
    """A watch cache (options go to it) in front of etcd."""
    cache = watch_cache.WatchCache(etcd.EtcdStorage(etcd_config(path), **ETCD_TEST_OPTIONS), **options)
    await cache.start()
    try:
        yield cache
    finally:
        await cache.close()


Factory = Callable[..., contextlib.AbstractAsyncContextManager[interface.Storage]]

BACKENDS: dict[str, Factory] = {"sqlite": make_sqlite, "sqlite+cache": make_cached_sqlite,
                                "etcd": make_etcd, "etcd+cache": make_cached_etcd}
PERSISTENT: set[str] = {"sqlite", "sqlite+cache", "etcd", "etcd+cache"}
#: backends that need the session's etcd
NEEDS_ETCD: set[str] = {"etcd", "etcd+cache"}


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    if etcd_binary() is None:
        pytest.skip(SKIP_REASON)
    server = EtcdServer(tmp_path_factory.mktemp("etcd") / "data").start()
    SHARED_ETCD.append(server)
    try:
        yield server
    finally:
        SHARED_ETCD.remove(server)
        server.stop()


@pytest.fixture(params=sorted(BACKENDS))
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def persistent(backend_name: str) -> bool:
    return backend_name in PERSISTENT


@pytest.fixture
def open_storage(backend_name: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> Callable[[], Any]:
    """Opens (again) the storage of this test's directory: ``async with open_storage() as s``."""
    if backend_name in NEEDS_ETCD:
        request.getfixturevalue("etcd_server")
    return lambda: BACKENDS[backend_name](tmp_path)


@pytest.fixture
async def storage(open_storage: Callable[[], Any]) -> AsyncIterator[interface.Storage]:
    async with open_storage() as store:
        yield store
