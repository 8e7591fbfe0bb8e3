"""What the etcd backend does beyond the shared contract: several clients on one etcd, key
prefixes, batched consistent revisions, leases, chunked lists, TLS, and failures at start."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import ETCD_TEST_OPTIONS, etcd_config, make_etcd
from storage_testkit import pod, pod_key, rv, take

from apiserver.storage import etcd, interface
from apiserver.storage.etcd_channel import EtcdConfig
from tests.etcd_fixture import SKIP_REASON, EtcdServer, etcd_binary, free_port


@pytest.fixture(autouse=True)
def _etcd(etcd_server: EtcdServer) -> EtcdServer:
    return etcd_server


async def test_two_clients_see_each_others_writes_and_conflict(tmp_path):
    async with make_etcd(tmp_path) as a, make_etcd(tmp_path) as b:
        stream = b.watch("/registry/core/pods/", revision=await b.current_revision())
        try:
            created = await a.create(pod_key("ns", "x"), pod("x"))
            assert await b.get(pod_key("ns", "x")) == created
            [added] = await take(stream, 1)
            assert (added.type, added.obj) == ("ADDED", created)
            results = await asyncio.gather(
                a.update(pod_key("ns", "x"), pod("x", by="a"), expected_revision=rv(created)),
                b.update(pod_key("ns", "x"), pod("x", by="b"), expected_revision=rv(created)),
                return_exceptions=True)
            [winner] = [r for r in results if isinstance(r, dict)]
            [loser] = [r for r in results if not isinstance(r, dict)]
            assert isinstance(loser, interface.RevisionConflict) and loser.current == winner
            [modified] = await take(stream, 1)
            assert modified.obj == winner and modified.prev == created
        finally:
            await stream.aclose()


async def test_key_prefixes_keep_clusters_apart(tmp_path):
    async with make_etcd(tmp_path / "blue") as blue, make_etcd(tmp_path / "green") as green:
        stream = green.watch("/registry/", revision=await green.current_revision())
        try:
            await blue.create(pod_key("ns", "only-blue"), pod("only-blue"))
            mine = await green.create(pod_key("ns", "only-green"), pod("only-green"))
            [event] = await take(stream, 1)
        finally:
            await stream.aclose()
        assert event.obj == mine and event.key == pod_key("ns", "only-green")
        assert (await green.list("/registry/")).keys == [pod_key("ns", "only-green")]
        with pytest.raises(interface.KeyNotFound):
            await green.get(pod_key("ns", "only-blue"))


class _CountingKV:
    """A KV stub that counts Range calls (to see current_revision() share them)."""

    def __init__(self, stub):
        self._stub = stub
        self.ranges = 0

    def __getattr__(self, name):
        return getattr(self._stub, name)

    def Range(self, *args, **kwargs):  # the gRPC method's name
        self.ranges += 1
        return self._stub.Range(*args, **kwargs)


async def test_current_revision_is_consistent_and_shared_by_concurrent_callers(tmp_path):
    async with make_etcd(tmp_path) as reader, make_etcd(tmp_path) as writer:
        counting = _CountingKV(reader._stubs[0])
        reader._stubs = (counting, reader._stubs[1])
        written = await writer.create(pod_key("ns", "a"), pod("a"))
        assert await reader.current_revision() == rv(written), "a write through another client is seen"
        counting.ranges = 0
        revisions = await asyncio.gather(*(reader.current_revision() for _ in range(200)))
        assert set(revisions) == {rv(written)}
        assert 1 <= counting.ranges <= 3, f"{counting.ranges} Range calls for 200 concurrent callers"


async def test_each_ttl_expiry_is_its_own_revision(tmp_path):
    async with make_etcd(tmp_path) as store:
        stream = store.watch("/registry/core/events/", revision=await store.current_revision())
        try:
            for name in ("e1", "e2", "e3"):
                await store.create(f"/registry/core/events/ns/{name}", {"metadata": {"name": name}}, ttl=1)
            events = await take(stream, 6, within=8)
        finally:
            await stream.aclose()
    deleted = [e for e in events if e.type == "DELETED"]
    assert sorted(e.key.rsplit("/", 1)[1] for e in deleted) == ["e1", "e2", "e3"]
    revisions = [e.revision for e in events]
    assert revisions == sorted(set(revisions)), "one event per revision, in order"


async def test_lists_are_read_in_chunks_at_one_revision(tmp_path, monkeypatch):
    monkeypatch.setattr(etcd, "LIST_CHUNK", 3)
    async with make_etcd(tmp_path) as store:
        made = [await store.create(pod_key("ns", f"p{i:02}"), pod(f"p{i:02}")) for i in range(10)]
        at = await store.current_revision()
        await store.delete(pod_key("ns", "p04"))
        await store.create(pod_key("ns", "p10"), pod("p10"))
        everything = await store.list("/registry/core/pods/ns/", revision=at)
        assert everything.items == made and everything.revision == at and everything.continue_key is None
        page = await store.list("/registry/core/pods/ns/", limit=7, revision=at)
        assert page.items == made[:7] and page.continue_key == pod_key("ns", "p06")
        rest = await store.list("/registry/core/pods/ns/", limit=7, start_after=page.continue_key, revision=at)
        assert rest.items == made[7:] and rest.continue_key is None
        now = await store.list("/registry/core/pods/ns/")
        assert len(now.items) == 10 and pod_key("ns", "p04") not in now.keys


@pytest.mark.parametrize("mib", [1.7, 3])  # over etcd's request limit; over its gRPC message limit too
async def test_an_object_over_etcds_request_limit_is_invalid(tmp_path, mib):
    async with make_etcd(tmp_path) as store:
        with pytest.raises(interface.InvalidObject, match="too large"):
            await store.create(pod_key("ns", "big"), pod("big", blob="x" * int(mib * 1024 * 1024)))
        with pytest.raises(interface.KeyNotFound):
            await store.get(pod_key("ns", "big"))


async def test_closing_ends_watches_and_later_calls_are_unavailable(tmp_path):
    async with make_etcd(tmp_path) as store:
        stream = store.watch("/registry/", revision=await store.current_revision())
        reading = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.1)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reading, 5)
    with pytest.raises(interface.Unavailable):
        await store.get(pod_key("ns", "a"))
    with pytest.raises(interface.Unavailable):
        await store.current_revision()


async def test_closing_answers_callers_waiting_for_the_revision(tmp_path):
    async with make_etcd(tmp_path) as store:
        waiting = [asyncio.create_task(store.current_revision()) for _ in range(50)]
        await asyncio.sleep(0)  # the first probe is in flight, the rest wait for the next one
    outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
    assert all(isinstance(o, int | interface.Unavailable) for o in outcomes), outcomes[:3]
    assert any(isinstance(o, interface.Unavailable) for o in outcomes)


async def test_periodic_compaction_drops_old_history(tmp_path):
    async with make_etcd(tmp_path, compact_interval=0.1, compact_keep=2) as store:
        first = await store.create(pod_key("ns", "a"), pod("a"))
        for i in range(4):
            await store.create(pod_key("ns", f"b{i}"), pod("b"))
        deadline = time.monotonic() + 5
        while True:
            try:
                await store.list("/registry/", revision=rv(first))
            except interface.Compacted:
                break
            assert time.monotonic() < deadline, "no compaction within 5 s"
            await asyncio.sleep(0.05)
        assert len((await store.list("/registry/")).items) == 5


async def test_unreachable_etcd_fails_start_with_one_clear_error():
    port = free_port()
    store = etcd.EtcdStorage(EtcdConfig((("127.0.0.1", port),)), dial_timeout=0.5, **ETCD_TEST_OPTIONS)
    started = time.monotonic()
    with pytest.raises(interface.Unavailable) as err:
        await store.start()
    assert time.monotonic() - started < 3
    assert f"cannot reach etcd at http://127.0.0.1:{port}" in str(err.value)
    assert "\n" not in str(err.value)


async def test_a_shared_etcd_config_names_the_test_prefix(tmp_path):
    assert etcd_config(tmp_path).prefix == etcd_config(tmp_path).prefix != etcd_config(tmp_path / "x").prefix


@pytest.fixture
def tls_etcd(tmp_path):
    if etcd_binary() is None:
        pytest.skip(SKIP_REASON)
    server = EtcdServer(tmp_path / "tls-etcd", tls=True).start()
    yield server
    server.stop()


async def test_tls_with_a_client_certificate(tls_etcd):
    certs = tls_etcd.certs
    config = EtcdConfig((("127.0.0.1", tls_etcd.client_port),), cafile=str(certs.ca),
                        certfile=str(certs.client_cert), keyfile=str(certs.client_key))
    store = etcd.EtcdStorage(config, **ETCD_TEST_OPTIONS)
    await store.start()
    try:
        stream = store.watch("/registry/", revision=await store.current_revision())
        created = await store.create(pod_key("ns", "a"), pod("a"))
        [event] = await take(stream, 1)
        await stream.aclose()
        assert event.obj == created == await store.get(pod_key("ns", "a"))
    finally:
        await store.close()
    anonymous = etcd.EtcdStorage(EtcdConfig(config.endpoints, cafile=str(certs.ca)), dial_timeout=1,
                                 **ETCD_TEST_OPTIONS)
    with pytest.raises(interface.Unavailable, match="cannot reach etcd at https://"):
        await anonymous.start()
