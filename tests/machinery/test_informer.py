"""Tests of the informer against the fake HTTPS API server of test_client.py: paged list, watch,
resume, bookmarks, 410 → re-list with an exact diff, ERROR events, server restarts, resync, indices."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakeapi import NODES, PODS, FakeApiServer, pod, wait_until

from machinery.client import ApiClient
from machinery.informer import EventHandlers, Informer, object_key


class Recorder:
    """Collects handler calls as (kind, key[, detail]) tuples."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.updates: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def handlers(self) -> EventHandlers:
        return EventHandlers(on_add=self.add, on_update=self.update, on_delete=self.delete)

    def add(self, obj: dict[str, Any]) -> None:
        self.calls.append(("add", object_key(obj)))

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.calls.append(("update", object_key(new)))
        self.updates.append((old, new))

    def delete(self, obj: dict[str, Any]) -> None:
        self.calls.append(("delete", object_key(obj)))


async def _running(informer: Informer) -> Informer:
    informer.start()
    async with asyncio.timeout(5):
        await informer.wait_synced()
    return informer


def _watches(server: FakeApiServer) -> list[dict[str, str]]:
    return [r.query for r in server.requests_for("GET", watch=True)]


async def test_paged_list_then_watch(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    for name in ("a", "b", "c"):
        server.put("pods", pod(name))
    server.put("pods", pod("x", namespace="other"))
    rec = Recorder()
    informer = Informer(client, PODS)
    informer.page_size = 2
    informer.add_handler(rec.handlers())
    await _running(informer)
    try:
        assert sorted(rec.calls) == [("add", k) for k in
                                     ("default/a", "default/b", "default/c", "other/x")]
        lists = server.requests_for("GET", watch=False)
        assert [q.query.get("continue") for q in lists] == [None, "2"]
        assert all(q.query["limit"] == "2" for q in lists)
        cached = informer.get("default/a")
        assert cached is not None and cached["kind"] == "Pod" and cached["apiVersion"] == "v1"
        assert sorted(object_key(o) for o in informer.by_index("namespace", "default")) == [
            "default/a", "default/b", "default/c"]
        assert len(informer.list()) == 4

        await wait_until(lambda: _watches(server))
        assert _watches(server)[0]["resourceVersion"] == "4"
        assert _watches(server)[0]["allowWatchBookmarks"] == "true"
        assert 300 <= int(_watches(server)[0]["timeoutSeconds"]) <= 600

        rec.calls.clear()
        server.put("pods", pod("d"))
        server.put("pods", pod("a", role="x"))
        server.remove("pods", "default", "b")
        await wait_until(lambda: len(rec.calls) == 3)
        assert rec.calls == [("add", "default/d"), ("update", "default/a"), ("delete", "default/b")]
        old, new = rec.updates[-1]
        assert old["metadata"]["labels"] == {} and new["metadata"]["labels"] == {"role": "x"}
        assert informer.get("default/b") is None
        assert informer.get("default/a") == new
        assert informer.resource_version == str(server.rv) == "7"
    finally:
        await informer.stop()


async def test_watch_end_resumes_from_last_resource_version(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    server.put("pods", pod("a"))
    rec = Recorder()
    informer = Informer(client, PODS, namespace="default")
    informer.add_handler(rec.handlers())
    await _running(informer)
    try:
        await wait_until(lambda: _watches(server))
        server.put("pods", pod("b"))  # rv 2
        await wait_until(lambda: informer.get("default/b") is not None)
        await server.close_watches()
        await wait_until(lambda: len(_watches(server)) == 2)
        assert _watches(server)[1]["resourceVersion"] == "2"
        server.put("pods", pod("c"))
        await wait_until(lambda: informer.get("default/c") is not None)
        assert len(server.requests_for("GET", watch=False)) == 1  # no re-list was needed
        assert rec.calls == [("add", "default/a"), ("add", "default/b"), ("add", "default/c")]
        assert all(r.path == "/api/v1/namespaces/default/pods" for r in server.requests)
    finally:
        await informer.stop()


async def test_bookmarks_advance_the_resume_point(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    informer = await _running(Informer(client, PODS))
    try:
        await wait_until(lambda: _watches(server))
        server.put("configmaps", {"metadata": {"name": "cm", "namespace": "default"}})  # rv 1, elsewhere
        server.bookmark("pods")
        await wait_until(lambda: informer.resource_version == "1")
        assert informer.list() == []
        await server.close_watches()
        await wait_until(lambda: len(_watches(server)) == 2)
        assert _watches(server)[1]["resourceVersion"] == "1"
    finally:
        await informer.stop()


async def test_gone_relists_and_emits_only_the_difference(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    for name in ("a", "b", "c"):
        server.put("pods", pod(name))
    rec = Recorder()
    informer = Informer(client, PODS)
    informer.add_handler(rec.handlers())
    await _running(informer)
    try:
        await wait_until(lambda: _watches(server))
        rec.calls.clear()
        old_b = informer.get("default/b")
        # changes whose events the informer never sees: history is compacted past them
        server.remove("pods", "default", "a", emit=False)
        server.put("pods", pod("b", changed="yes"), emit=False)
        server.put("pods", pod("d"), emit=False)
        server.compact()
        await server.close_watches()
        await wait_until(lambda: len(server.requests_for("GET", watch=False)) == 2 and len(rec.calls) == 3)
        assert sorted(rec.calls) == [("add", "default/d"), ("delete", "default/a"), ("update", "default/b")]
        old, new = rec.updates[-1]
        assert old is old_b and new["metadata"]["labels"] == {"changed": "yes"}
        assert sorted(o["metadata"]["name"] for o in informer.list()) == ["b", "c", "d"]
        await wait_until(lambda: len(_watches(server)) >= 3)
        assert _watches(server)[-1]["resourceVersion"] == str(server.rv)
        await asyncio.sleep(0.05)
        assert len(rec.calls) == 3  # nothing else, in particular no event for unchanged "c"
    finally:
        await informer.stop()


async def test_error_event_relists(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    server.put("pods", pod("a"))
    rec = Recorder()
    informer = Informer(client, PODS, backoff=(0.01, 0.05))
    informer.add_handler(rec.handlers())
    await _running(informer)
    try:
        await wait_until(lambda: _watches(server))
        server.watch_error("pods", 500, "InternalError")
        await wait_until(lambda: len(server.requests_for("GET", watch=False)) == 2)
        await wait_until(lambda: len(_watches(server)) == 2)
        assert rec.calls == [("add", "default/a")]  # the re-list found nothing new
    finally:
        await informer.stop()


async def test_survives_an_api_server_restart(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    server.put("pods", pod("a"))
    informer = await _running(Informer(client, PODS, backoff=(0.02, 0.1)))
    try:
        await wait_until(lambda: _watches(server))
        await server.stop()
        server.put("pods", pod("b"))  # happens while the server is down
        await asyncio.sleep(0.2)  # a few failed attempts
        await server.start()  # same port, same history
        await wait_until(lambda: informer.get("default/b") is not None)
        assert informer.has_synced
    finally:
        await informer.stop()


async def test_resync_indexers_async_and_failing_handlers(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    server.put("pods", pod("a", app="web"))
    server.put("pods", pod("b", app="db"))
    server.put("pods", pod("c", namespace="x", app="web"))
    seen: list[str] = []

    async def slow_add(obj: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(object_key(obj))

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    rec = Recorder()
    informer = Informer(client, PODS, resync_period=0.05,
                        indexers={"app": lambda o: [o["metadata"]["labels"]["app"]]})
    informer.add_handler(on_add=broken)
    informer.add_handler(on_add=slow_add)
    informer.add_handler(rec.handlers())
    await _running(informer)
    try:
        assert sorted(seen) == ["default/a", "default/b", "x/c"]  # the broken handler hurt no one
        assert sorted(object_key(o) for o in informer.by_index("app", "web")) == ["default/a", "x/c"]
        assert informer.by_index("app", "none") == []
        with pytest.raises(KeyError):
            informer.by_index("nope", "x")
        await wait_until(lambda: len(rec.updates) >= 6)
        assert all(old is new for old, new in rec.updates)  # resync: update(obj, obj)

        server.put("pods", pod("a", app="db"))  # re-index on update
        await wait_until(lambda: len(informer.by_index("app", "db")) == 2)
        assert [object_key(o) for o in informer.by_index("app", "web")] == ["x/c"]
    finally:
        await informer.stop()


async def test_late_handler_gets_the_current_objects(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    server.put("nodes", {"metadata": {"name": "n1"}})
    informer = await _running(Informer(client, NODES))
    try:
        rec = Recorder()
        informer.add_handler(rec.handlers())
        await wait_until(lambda: rec.calls == [("add", "n1")])
        server.put("nodes", {"metadata": {"name": "n2"}})
        await wait_until(lambda: len(rec.calls) == 2)
        assert rec.calls[1] == ("add", "n2")
    finally:
        await informer.stop()


async def test_stop_and_unsynced_states(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    informer = await _running(Informer(client, PODS))
    task = informer.start()
    assert task is informer.start()  # starting twice does not run two loops
    await informer.stop()
    assert task.done()

    with pytest.raises(ValueError):
        Informer(client, NODES, namespace="x")
    with pytest.raises(ValueError):
        Informer(client, PODS, resync_period=0)

    await server.stop()
    lonely = Informer(client, PODS, backoff=(0.01, 0.05))
    lonely.start()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await lonely.wait_synced()
    assert not lonely.has_synced
    await lonely.stop()
