"""Tests of the REST client against a small fake API server over real HTTPS with client certs.

``FakeApiServer`` (also used by test_informer.py) keeps objects in memory and speaks the
Kubernetes wire format: Status errors, paged lists, and chunked newline-delimited watch streams
with resume, bookmarks, compaction (410) and injected ERROR events. It records every request so
tests can check what went over the wire.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from fakeapi import DEPLOYMENTS, NODES, PODS, FakeApiServer, pod, start_fake, status, wait_until, watch_line

from apiserver.pki import ensure_pki
from machinery.client import (
    AlreadyExists,
    ApiClient,
    ApiError,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    Resource,
    ServerError,
    TransportError,
    Unauthorized,
    is_already_exists,
    is_conflict,
    is_not_found,
)
from machinery.kubeconfig import ClusterConfig

# --- tests ---------------------------------------------------------------------------------------

def test_resource_paths() -> None:
    assert PODS.path() == "/api/v1/pods"
    assert PODS.path(namespace="ns") == "/api/v1/namespaces/ns/pods"
    assert PODS.path(namespace="ns", name="p", subresource="status") == "/api/v1/namespaces/ns/pods/p/status"
    assert DEPLOYMENTS.path(namespace="a", name="d") == "/apis/apps/v1/namespaces/a/deployments/d"
    assert NODES.path(name="n1") == "/api/v1/nodes/n1"
    assert Resource("rbac.authorization.k8s.io", "v1", "clusterroles", False).path(
        name="system:a/b") == "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Aa%2Fb"
    assert DEPLOYMENTS.api_version == "apps/v1" and PODS.api_version == "v1"
    for bad in (lambda: NODES.path(namespace="x"), lambda: PODS.path(subresource="status"),
                lambda: PODS.path(namespace="x", name="..")):
        with pytest.raises(ValueError):
            bad()


async def test_crud_round_trip(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    created = await client.create(PODS, pod("a", tier="1"))
    assert created["metadata"]["resourceVersion"] == "1"
    assert server.requests[-1].path == "/api/v1/namespaces/default/pods"
    assert server.requests[-1].headers["Content-Type"] == "application/json"
    assert orjson.loads(server.requests[-1].body)["metadata"]["name"] == "a"

    got = await client.get(PODS, "a", namespace="default")
    assert got == created

    got["spec"]["nodeName"] = "n1"
    replaced = await client.replace(PODS, got)
    assert replaced["spec"]["nodeName"] == "n1" and replaced["metadata"]["resourceVersion"] == "2"
    assert server.requests[-1].method == "PUT"

    replaced["status"] = {"phase": "Running"}
    after = await client.update_status(PODS, replaced)
    assert after["status"] == {"phase": "Running"}
    assert server.requests[-1].path == "/api/v1/namespaces/default/pods/a/status"

    patched = await client.patch(PODS, "a", {"metadata": {"labels": {"x": "y"}}})
    assert patched["metadata"]["labels"] == {"tier": "1", "x": "y"}

    deleted = await client.delete(PODS, "a", propagation_policy="Foreground", grace_period_seconds=0,
                                  preconditions={"uid": after["metadata"]["uid"]})
    assert deleted["metadata"]["name"] == "a"
    options = orjson.loads(server.requests[-1].body)
    assert options == {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground",
                       "gracePeriodSeconds": 0, "preconditions": {"uid": after["metadata"]["uid"]}}
    with pytest.raises(NotFound) as info:
        await client.get(PODS, "a")
    assert is_not_found(info.value) and info.value.code == 404 and info.value.status["kind"] == "Status"


async def test_namespaces_default_and_cluster_scope(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    await client.create(PODS, pod("p", namespace="other"))
    assert server.requests[-1].path == "/api/v1/namespaces/other/pods"
    await client.create(NODES, {"metadata": {"name": "n1"}})
    assert server.requests[-1].path == "/api/v1/nodes"
    assert (await client.get(NODES, "n1"))["kind"] == "Node"
    with pytest.raises(ValueError):
        await client.list(NODES, namespace="x")
    with pytest.raises(ValueError):
        await client.replace(PODS, {"metadata": {}})


async def test_error_statuses_become_typed_errors(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    current = await client.create(PODS, pod("a"))
    with pytest.raises(AlreadyExists) as exists:
        await client.create(PODS, pod("a"))
    assert is_already_exists(exists.value) and not is_conflict(exists.value)
    assert exists.value.reason == "AlreadyExists" and "already exists" in exists.value.message

    stale = copy.deepcopy(current)
    await client.patch(PODS, "a", {"metadata": {"labels": {"v": "2"}}})
    with pytest.raises(Conflict) as conflict:
        await client.replace(PODS, stale)
    assert is_conflict(conflict.value) and conflict.value.code == 409

    with pytest.raises(Invalid):
        await client.create(PODS, {"metadata": {}})

    server.fail_next.append((500, b"upstream exploded"))
    with pytest.raises(ServerError) as plain:
        await client.get(PODS, "a")
    assert plain.value.code == 500 and plain.value.status["reason"] == "InternalError"
    assert plain.value.message == "upstream exploded"

    server.fail_next.append((418, orjson.dumps(status(418, "Teapot"))))
    with pytest.raises(ApiError) as odd:
        await client.get(PODS, "a")
    assert type(odd.value) is ApiError and odd.value.reason == "Teapot"


async def test_patch_types_and_query(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    await client.create(PODS, pod("a"))
    expected = {"merge": "application/merge-patch+json",
                "strategic": "application/strategic-merge-patch+json",
                "json": "application/json-patch+json",
                "apply": "application/apply-patch+yaml"}
    for patch_type, content_type in expected.items():
        body: Any = [{"op": "add", "path": "/x", "value": 1}] if patch_type == "json" else {"a": 1}
        await client.patch(PODS, "a", body, patch_type=patch_type, field_manager="me",  # type: ignore[arg-type]
                           force=patch_type == "apply" or None)
        sent = server.requests[-1]
        assert sent.method == "PATCH" and sent.headers["Content-Type"] == content_type
        assert orjson.loads(sent.body) == body and sent.query["fieldManager"] == "me"
        assert sent.query.get("force") == ("true" if patch_type == "apply" else None)
    await client.patch(PODS, "a", {"status": {"phase": "Failed"}}, subresource="status")
    assert server.requests[-1].path == "/api/v1/namespaces/default/pods/a/status"
    with pytest.raises(ValueError, match="field_manager"):
        await client.patch(PODS, "a", {}, patch_type="apply")
    with pytest.raises(ValueError, match="patch_type"):
        await client.patch(PODS, "a", {}, patch_type="xml")  # type: ignore[arg-type]


async def test_list_parameters_and_pages(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    for i in range(5):
        await client.create(PODS, pod(f"p{i}", app="web" if i % 2 else "db"))
    await client.create(PODS, pod("q", namespace="other", app="web"))

    everything = await client.list(PODS)
    assert len(everything["items"]) == 6 and everything["kind"] == "PodList"
    assert server.requests[-1].path == "/api/v1/pods"

    web_pods = await client.list(PODS, namespace="default", label_selector="app=web")
    assert sorted(p["metadata"]["name"] for p in web_pods["items"]) == ["p1", "p3"]
    assert server.requests[-1].query["labelSelector"] == "app=web"

    one = await client.list(PODS, field_selector="metadata.name=q", resource_version="0")
    assert [p["metadata"]["name"] for p in one["items"]] == ["q"]
    assert server.requests[-1].query["resourceVersion"] == "0"

    first = await client.list(PODS, namespace="default", limit=2)
    token = first["metadata"]["continue"]
    second = await client.list(PODS, namespace="default", limit=2, continue_=token)
    assert server.requests[-1].query == {"limit": "2", "continue": token}
    names = [p["metadata"]["name"] for p in first["items"] + second["items"]]
    assert names == ["p0", "p1", "p2", "p3"]

    with pytest.raises(Gone):
        await client.list(PODS, limit=2, continue_="expired-1")


async def test_watch_stream(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    await client.create(PODS, pod("before"))
    events: list[tuple[str, str]] = []

    async def consume() -> None:
        async for ev in client.watch(PODS, namespace="default", resource_version="1", timeout_seconds=5):
            events.append((ev["type"], ev["object"]["metadata"].get("name", "")))
            if ev["type"] == "DELETED":
                return

    task = asyncio.create_task(consume())
    await wait_until(lambda: server.requests_for("GET", watch=True))
    await client.create(PODS, pod("a"))
    await client.patch(PODS, "a", {"metadata": {"labels": {"x": "1"}}})
    server.bookmark("pods")
    await client.delete(PODS, "a")
    await asyncio.wait_for(task, 5)
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("BOOKMARK", ""), ("DELETED", "a")]
    query = server.requests_for("GET", watch=True)[0].query
    assert query == {"watch": "true", "resourceVersion": "1", "timeoutSeconds": "5",
                     "allowWatchBookmarks": "true"}


async def test_watch_errors(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    await client.create(PODS, pod("a"))
    await client.create(PODS, pod("b"))
    server.compact()
    with pytest.raises(Gone) as gone:
        async for _ in client.watch(PODS, resource_version="1"):
            pass
    assert gone.value.code == 410

    async def first_event() -> dict[str, Any]:
        async for ev in client.watch(PODS, resource_version=str(server.rv)):
            return ev
        raise AssertionError("stream ended")

    task = asyncio.create_task(first_event())
    await wait_until(lambda: len(server.requests_for("GET", watch=True)) == 2)
    server.watch_error("pods", 500, "InternalError")
    with pytest.raises(ServerError):
        await asyncio.wait_for(task, 5)

    server.fail_next.append((403, orjson.dumps(status(403, "Forbidden"))))
    with pytest.raises(ApiError) as forbidden:
        async for _ in client.watch(PODS):
            pass
    assert forbidden.value.code == 403


async def test_watch_lines_split_across_chunks(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    lines = b"".join(watch_line(t, {"metadata": {"name": n}}) for t, n in
                     [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")])
    server.raw_watch_chunks = [lines[:7], lines[7:40], lines[40:41], lines[41:] + b"\n\n"]
    got = [(ev["type"], ev["object"]["metadata"]["name"]) async for ev in client.watch(PODS)]
    assert got == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]

    server.raw_watch_chunks = [b'{"type":"ADDED","object":{}}\n{not json\n']
    with pytest.raises(TransportError, match="unreadable"):
        async for _ in client.watch(PODS):
            pass


async def test_auth_failures(tmp_path: Path, fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, _ = fake
    ca = server.pki.ca_cert.read_bytes()
    async with ApiClient(ClusterConfig(server=server.url, ca_data=ca)) as anonymous:
        with pytest.raises(Unauthorized) as info:
            await anonymous.get(PODS, "a")
        assert info.value.status["reason"] == "Unauthorized"
    async with ApiClient(ClusterConfig(server=server.url, ca_data=ca, token="good")) as with_token:
        with pytest.raises(NotFound):
            await with_token.get(PODS, "a")
        assert server.requests[-1].headers["Authorization"] == "Bearer good"
        assert server.requests[-1].headers["User-Agent"].startswith("pinnace/")

    other_ca = ensure_pki(tmp_path / "other", hosts=[]).ca_cert.read_bytes()
    async with ApiClient(ClusterConfig(server=server.url, ca_data=other_ca, token="good")) as distrust:
        with pytest.raises(TransportError):
            await distrust.get(PODS, "a")


async def test_unreachable_server_is_a_transport_error(tmp_path: Path) -> None:
    server, config = await start_fake(tmp_path)
    await server.stop()
    async with ApiClient(config) as client:
        with pytest.raises(TransportError):
            await client.get(PODS, "a")
        with pytest.raises(TransportError):
            async for _ in client.watch(PODS):
                pass


async def test_session_is_reused(fake: tuple[FakeApiServer, ApiClient]) -> None:
    server, client = fake
    for _ in range(3):
        await client.list(PODS)
    assert len({r.peer for r in server.requests}) == 1  # one kept-alive connection
    assert client._session is not None and not client._session.closed
    await client.close()
    assert client._session is None


