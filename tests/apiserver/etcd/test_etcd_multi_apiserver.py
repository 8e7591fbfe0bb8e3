"""Two ``pinnace server`` processes on one etcd behave as one API: each sees the other's writes in
lists and watches (its watch cache is fed by etcd's watch), and compare-and-swap holds across them."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from etcd_apikit import CONFIGMAPS, NAMESPACES, api_servers, client_of, configmap, running_etcd

from machinery.client import Conflict


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("multi")
    with running_etcd(directory) as etcd, api_servers(directory, etcd, 2) as pair:
        yield pair


async def _next_event(stream, *, kind: str, name: str, within: float = 10.0) -> dict:
    async with asyncio.timeout(within):
        async for event in stream:
            if event["type"] == kind and event["object"]["metadata"]["name"] == name:
                return event
    raise AssertionError(f"watch ended before {kind} {name}")


async def test_a_write_through_one_server_is_listed_and_watched_on_the_other(servers):
    a, b = servers
    async with client_of(a) as via_a, client_of(b) as via_b:
        await via_a.create(NAMESPACES, {"metadata": {"name": "shared"}})
        start = (await via_b.list(CONFIGMAPS, namespace="shared"))["metadata"]["resourceVersion"]
        stream = via_b.watch(CONFIGMAPS, namespace="shared", resource_version=start)
        async with contextlib.aclosing(stream):
            watching = asyncio.create_task(_next_event(stream, kind="ADDED", name="from-a"))
            created = await via_a.create(CONFIGMAPS, configmap("from-a", "shared", k="v"))
            # a consistent read on B right after A's answer already has it
            listed = await via_b.list(CONFIGMAPS, namespace="shared")
            assert [i["metadata"]["name"] for i in listed["items"]] == ["from-a"]
            assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
            event = await watching
        assert event["object"]["data"] == {"k": "v"}
        assert event["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert (await via_b.get(CONFIGMAPS, "from-a", namespace="shared"))["metadata"]["uid"] == \
            created["metadata"]["uid"]

        # and the other way round, for a delete
        stream = via_a.watch(CONFIGMAPS, namespace="shared", resource_version=created["metadata"]["resourceVersion"])
        async with contextlib.aclosing(stream):
            watching = asyncio.create_task(_next_event(stream, kind="DELETED", name="from-a"))
            await via_b.delete(CONFIGMAPS, "from-a", namespace="shared")
            await watching


async def test_conflicting_updates_through_both_servers_give_one_409(servers):
    a, b = servers
    async with client_of(a) as via_a, client_of(b) as via_b:
        created = await via_a.create(CONFIGMAPS, configmap("contested", "default", v="0"))
        seen_by_b = await via_b.get(CONFIGMAPS, "contested", namespace="default")
        assert seen_by_b["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

        await via_a.replace(CONFIGMAPS, {**created, "data": {"v": "a"}})
        with pytest.raises(Conflict):
            await via_b.replace(CONFIGMAPS, {**seen_by_b, "data": {"v": "b"}})
        assert (await via_b.get(CONFIGMAPS, "contested", namespace="default"))["data"] == {"v": "a"}

        # racing updates from the same starting version: exactly one wins
        current = await via_b.get(CONFIGMAPS, "contested", namespace="default")
        outcomes = await asyncio.gather(
            *(client.replace(CONFIGMAPS, {**current, "data": {"v": f"race-{i}"}})
              for i, client in enumerate([via_a, via_b] * 5)), return_exceptions=True)
        winners = [o for o in outcomes if isinstance(o, dict)]
        assert len(winners) == 1
        assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, dict))
        final = await via_a.get(CONFIGMAPS, "contested", namespace="default")
        assert final["data"] == winners[0]["data"]


async def test_both_servers_bootstrapped_the_same_system_objects(servers):
    a, b = servers
    async with client_of(a) as via_a, client_of(b) as via_b:
        names_a = sorted(n["metadata"]["name"] for n in (await via_a.list(NAMESPACES))["items"])
        names_b = sorted(n["metadata"]["name"] for n in (await via_b.list(NAMESPACES))["items"])
    assert names_a == names_b
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names_a)
