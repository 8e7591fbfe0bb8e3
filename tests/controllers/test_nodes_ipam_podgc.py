"""Node IPAM and pod GC against a real API server, and the controller-manager under leader election."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from controller_env import PODS, Running, eventually, gone
from fake_kubelet import NODES, node

from controllers.manager import ControllerManager
from controllers.pod_gc import PodGCController
from machinery.client import ApiClient
from machinery.reconcile import LEASES


async def _pod_cidr(client: ApiClient, name: str) -> str | None:
    return (await client.get(NODES, name)).get("spec", {}).get("podCIDR")


async def test_every_node_gets_its_own_pod_cidr(client: ApiClient, running: Running) -> None:
    names = [f"ipam-{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
    preset = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": names[0]},
              "spec": {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]}}
    await client.create(NODES, preset)
    try:
        async with running("nodeipam"):
            await asyncio.gather(*(client.create(NODES, node(n)) for n in names[1:]))

            async def all_set() -> bool:
                return all([await _pod_cidr(client, n) for n in names])

            await eventually(all_set, what="pod CIDRs on every node")
            cidrs = [await _pod_cidr(client, n) for n in names]
            assert cidrs[0] == "10.42.7.0/24", "a node's existing range is kept"
            every = [(n.get("spec") or {}).get("podCIDR") for n in (await client.list(NODES))["items"]]
            assert len(set(cidrs)) == 4 and all(every.count(c) == 1 for c in cidrs), "ranges never overlap"
            assert all(c.startswith("10.42.") and c.endswith("/24") for c in cidrs)
            got = await client.get(NODES, names[1])
            assert got["spec"]["podCIDRs"] == [got["spec"]["podCIDR"]]
    finally:
        for n in names:
            await client.delete(NODES, n)


async def test_pods_of_a_vanished_node_are_deleted(client: ApiClient, namespace: str, running: Running,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PodGCController, "quarantine", 0.5)
    host = f"gc-{uuid.uuid4().hex[:6]}"
    await client.create(NODES, node(host))
    for name, target in (("on-node", host), ("on-ghost", f"{host}-ghost"), ("unbound", None)):
        spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
        if target:
            spec["nodeName"] = target
        await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec},
                            namespace=namespace)
    async with running("podgc"):
        await asyncio.sleep(0.3)
        assert not await gone(client, PODS, "on-ghost", namespace), "quarantined for a while"
        await eventually(lambda: gone(client, PODS, "on-ghost", namespace), what="pod on a missing node deleted")
        await asyncio.sleep(0.3)
        assert not await gone(client, PODS, "on-node", namespace)
        assert not await gone(client, PODS, "unbound", namespace)
        await client.delete(NODES, host)
        await eventually(lambda: gone(client, PODS, "on-node", namespace), what="pod of the deleted node removed")
        assert not await gone(client, PODS, "unbound", namespace)


async def test_managers_with_a_lease_run_one_at_a_time(client: ApiClient) -> None:
    lease = f"cm-{uuid.uuid4().hex[:6]}"
    first = ControllerManager(client, names=["nodeipam"], lease_name=lease, identity="one", lease_duration=3)
    second = ControllerManager(client, names=["nodeipam"], lease_name=lease, identity="two", lease_duration=3)
    await first.start()
    try:
        async with asyncio.timeout(5):
            await first.wait_synced()
        await second.start()
        await asyncio.sleep(1.0)
        assert first.controllers and not second.controllers, "only the leader runs controllers"
        await first.stop()
        async with asyncio.timeout(5):
            await second.wait_synced()
        assert second.controllers
        assert (await client.get(LEASES, lease, namespace="kube-system"))["spec"]["holderIdentity"] == "two"
    finally:
        await first.stop()
        await second.stop()
        await client.delete(LEASES, lease, namespace="kube-system")
