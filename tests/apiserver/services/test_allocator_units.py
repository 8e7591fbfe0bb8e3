"""The allocator's parts on a real (SQLite) storage, without an API server: picking, claims shared by
several API servers, and what an update keeps or drops."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from apiserver import allocators, errors
from apiserver.storage.sqlite import SqliteStorage


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    store = SqliteStorage(str(tmp_path / "state.db"), compact_interval=None)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def svc(name: str, uid: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}], **spec}}


def ip_number(text: str) -> int:
    return int(ipaddress.ip_address(text))


def test_pick_prefers_the_dynamic_band_and_skips_reserved() -> None:
    pool = allocators.PORT_POOL
    rng = random.Random(7)
    picks = {allocators.pick(pool, set(), rng=rng) for _ in range(200)}
    assert min(picks) >= pool.static_end
    # with the dynamic band full, the static band is used, and a full range is a clear 500
    dynamic = set(range(pool.static_end, pool.last + 1))
    assert allocators.pick(pool, dynamic, rng=rng) < pool.static_end
    with pytest.raises(errors.ApiError, match="range is full") as full:
        allocators.pick(pool, set(range(pool.first, pool.last + 1)), rng=rng)
    assert full.value.code == 500
    ips = allocators.IP_POOL
    everything_but = set(range(ips.first, ips.last + 1)) - ips.reserved - {ip_number("10.43.0.200")}
    assert allocators.pick(ips, everything_but, rng=rng) == ip_number("10.43.0.200")
    assert ips.static_end - ips.first == 256 and pool.static_end - pool.first == 86


async def test_claims_settle_races_between_api_servers(storage: SqliteStorage) -> None:
    pool, value = allocators.IP_POOL, ip_number("10.43.0.60")
    assert await allocators.claim(storage, pool, value, owner="a")
    assert await allocators.claim(storage, pool, value, owner="a")  # idempotent for its owner
    assert not await allocators.claim(storage, pool, value, owner="b")  # a's create is in flight
    def later() -> float:
        return time.time() + allocators.IN_FLIGHT + 1
    assert await allocators.claim(storage, pool, value, owner="b", clock=later)  # a stale claim is taken over


async def test_a_value_claimed_elsewhere_is_refused(storage: SqliteStorage) -> None:
    await allocators.claim(storage, allocators.IP_POOL, ip_number("10.43.0.61"), owner="other-server")
    with pytest.raises(errors.ApiError, match="provided IP is already allocated"):
        await allocators.allocate_service(storage, svc("mine", "u1", clusterIP="10.43.0.61"))
    assert not allocators._reserved[allocators.IP_POOL.name]  # nothing held after the failure


async def test_stored_after_our_scan_is_rechecked(storage: SqliteStorage) -> None:
    """Another server stored the value (and dropped its claim) between our scan and our claim."""
    await storage.create("/registry/core/services/default/theirs", svc("theirs", "u2", clusterIP="10.43.0.62",
                                                                      clusterIPs=["10.43.0.62"]))
    mine = svc("mine", "u3")
    with pytest.raises(errors.ApiError, match="already allocated"):
        await allocators._take(storage, allocators.IP_POOL, mine, set(), requested=ip_number("10.43.0.62"),
                               skip_uid=None, on_taken=lambda: errors.ApiError(422, "Invalid", "already allocated"))
    allocators.release_reservations(mine)


async def test_claims_are_dropped_once_the_create_is_over(storage: SqliteStorage) -> None:
    obj = svc("done", "u4", type="NodePort")
    await allocators.allocate_service(storage, obj)
    ip, port = obj["spec"]["clusterIP"], obj["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767 and ipaddress.ip_address(ip) in allocators.SERVICE_CIDR
    allocators.release_reservations(obj)
    await asyncio.sleep(0.2)
    claims = await storage.list("/registry/pinnace.io/allocations/")
    assert claims.items == []


async def test_update_allocates_node_ports_for_a_type_change(storage: SqliteStorage) -> None:
    old = svc("grow", "u5", clusterIP="10.43.0.63", clusterIPs=["10.43.0.63"])
    await storage.create("/registry/core/services/default/grow", old)
    new = svc("grow", "u5", clusterIP="10.43.0.63", clusterIPs=["10.43.0.63"], type="NodePort",
              ports=[{"port": 80, "protocol": "TCP"}, {"name": "b", "port": 81, "protocol": "TCP", "nodePort": 30333}])
    await allocators.allocate_update(storage, old, new)
    allocators.release_reservations(new)
    numbers = [p["nodePort"] for p in new["spec"]["ports"]]
    assert numbers[1] == 30333 and 30000 <= numbers[0] <= 32767 and numbers[0] != 30333
    assert new["spec"]["clusterIP"] == "10.43.0.63"  # its own IP is not "already allocated"


def test_keep_allocations_keeps_and_drops() -> None:
    old = svc("x", "u6", type="NodePort", clusterIP="10.43.0.64", clusterIPs=["10.43.0.64"],
              ports=[{"port": 80, "protocol": "TCP", "nodePort": 30500}])
    resent = svc("x", "u6", type="NodePort", ports=[{"port": 80, "protocol": "TCP"}])
    allocators.keep_allocations(old, resent)
    assert resent["spec"]["clusterIP"] == "10.43.0.64" and resent["spec"]["ports"][0]["nodePort"] == 30500
    to_cluster_ip = svc("x", "u6", clusterIP="10.43.0.64", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30500}])
    allocators.keep_allocations(old, to_cluster_ip)
    assert "nodePort" not in to_cluster_ip["spec"]["ports"][0]
    to_external = svc("x", "u6", type="ExternalName", externalName="example.com", clusterIP="10.43.0.64",
                      clusterIPs=["10.43.0.64"])
    allocators.keep_allocations(old, to_external)
    assert "clusterIP" not in to_external["spec"] and "clusterIPs" not in to_external["spec"]
