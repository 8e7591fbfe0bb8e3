"""The reconcile framework's parts: expectations, counters, owner-based keys, shared informers, the
retry loop, and leader election on a real Lease."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from controller_env import eventually

from machinery.client import ApiClient, Resource
from machinery.reconcile import (
    LEASES,
    Expectations,
    LeaderElector,
    Metrics,
    Reconciler,
    SharedInformers,
    controller_uid_index,
    owner_key_mapper,
)

CONFIGMAPS = Resource("", "v1", "configmaps", True)


def test_expectations_block_until_observed_or_expired() -> None:
    clock = [0.0]
    exp = Expectations(ttl=10, clock=lambda: clock[0])
    assert exp.satisfied("ns/a")
    exp.expect_creations("ns/a", 2)
    exp.expect_deletions("ns/a", ["u1"])
    exp.creation_observed("ns/a")
    assert not exp.satisfied("ns/a")
    exp.creation_observed("ns/a")
    exp.deletion_observed("ns/a", "other")
    assert not exp.satisfied("ns/a")
    exp.deletion_observed("ns/a", "u1")
    assert exp.satisfied("ns/a")
    exp.expect_creations("ns/a", 1)
    clock[0] = 11
    assert exp.satisfied("ns/a"), "a lost event must not block the owner forever"
    exp.creation_observed("ns/b")  # unknown keys are harmless
    assert exp.satisfied("ns/b")


def test_metrics_render_prometheus_text() -> None:
    m = Metrics()
    m.inc("pinnace_reconcile_total", controller="rs", result="success")
    m.inc("pinnace_reconcile_total", 2, controller="rs", result="error")
    assert m.value("pinnace_reconcile_total", controller="rs", result="error") == 2
    text = m.render()
    assert "# TYPE pinnace_reconcile_total counter" in text
    assert 'pinnace_reconcile_total{controller="rs",result="success"} 1' in text


def test_owner_keys_follow_the_controller_reference() -> None:
    pod = {"metadata": {"namespace": "ns", "name": "p", "ownerReferences": [
        {"kind": "ReplicaSet", "name": "other", "uid": "1"},
        {"kind": "ReplicaSet", "name": "web-abc", "uid": "2", "controller": True}]}}
    assert owner_key_mapper("ReplicaSet")(pod) == ["ns/web-abc"]
    assert owner_key_mapper("Deployment")(pod) == []
    assert controller_uid_index(pod) == ["2"]
    assert controller_uid_index({"metadata": {}}) == []


async def test_shared_informers_merge_indexes_before_start_only(client: ApiClient) -> None:
    shared = SharedInformers(client)
    first = shared.informer(CONFIGMAPS, indexers={"a": lambda o: []})
    again = shared.informer(CONFIGMAPS, indexers={"b": lambda o: []})
    assert first is again
    assert first.by_index("a", "x") == [] and first.by_index("b", "x") == []
    shared.acquire(CONFIGMAPS)
    shared.acquire(CONFIGMAPS)
    try:
        with pytest.raises(ValueError, match="without index"):
            shared.informer(CONFIGMAPS, indexers={"c": lambda o: []})
        await shared.release(CONFIGMAPS)
        assert shared.running() == [CONFIGMAPS], "still used once"
    finally:
        await shared.release(CONFIGMAPS)
    assert shared.running() == []


class _Flaky(Reconciler):
    name = "flaky"
    primary_resource = CONFIGMAPS
    workers = 2

    def __init__(self, client: ApiClient, namespace: str) -> None:
        super().__init__(client, base_delay=0.01)
        self.namespace = namespace
        self.calls: list[str] = []

    async def reconcile(self, key: str) -> float | None:
        if not key.startswith(self.namespace + "/"):
            return None
        self.calls.append(key)
        if len(self.calls) < 3:
            raise RuntimeError("transient")
        return None


async def test_reconciler_retries_failures_with_backoff(client: ApiClient, namespace: str) -> None:
    ctl = _Flaky(client, namespace)
    await ctl.start()
    try:
        await ctl.wait_synced()
        await client.create(CONFIGMAPS, {"metadata": {"name": "one"}, "data": {}}, namespace=namespace)

        async def done() -> bool:
            return len(ctl.calls) >= 3

        await eventually(done, within=5, what="retried until success")
        await asyncio.sleep(0.2)
        assert ctl.calls == [f"{namespace}/one"] * 3, "success ends the retries"
        assert ctl.metrics.value("pinnace_reconcile_total", controller="flaky", result="error") == 2
        assert ctl.metrics.value("pinnace_reconcile_retries_total", controller="flaky") == 2
    finally:
        await ctl.stop()
    with pytest.raises(RuntimeError, match="runs once"):
        await ctl.start()


async def test_reconciler_watch_needs_one_mapping(client: ApiClient) -> None:
    ctl = _Flaky(client, "x")
    with pytest.raises(ValueError, match="exactly one"):
        ctl.watch(CONFIGMAPS)


async def test_leader_elector_rejects_bad_timings(client: ApiClient) -> None:
    with pytest.raises(ValueError):
        LeaderElector(client, name="x", lease_duration=1, renew_deadline=2, retry_period=0.5)


async def test_only_one_leader_and_release_hands_over(client: ApiClient) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    timing = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.2}
    a = LeaderElector(client, name=name, identity="a", **timing)
    b = LeaderElector(client, name=name, identity="b", **timing)
    led: list[str] = []

    def runner(elector: LeaderElector) -> asyncio.Task[None]:
        async def started() -> None:
            led.append(elector.identity)

        async def stopped() -> None:
            led.append(f"-{elector.identity}")

        return asyncio.create_task(elector.run(on_start=started, on_stop=stopped))

    task_a = runner(a)
    await asyncio.wait_for(a.leading.wait(), 5)
    task_b = runner(b)
    try:
        await asyncio.sleep(1.0)  # b keeps trying while a renews
        assert led == ["a"] and not b.leading.is_set()
        lease = await client.get(LEASES, name, namespace="kube-system")
        assert lease["spec"]["holderIdentity"] == "a"
        task_a.cancel()
        await asyncio.gather(task_a, return_exceptions=True)
        await asyncio.wait_for(b.leading.wait(), 3)  # released: no need to wait out the lease
        lease = await client.get(LEASES, name, namespace="kube-system")
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        task_b.cancel()
        await asyncio.gather(task_b, return_exceptions=True)
        await client.delete(LEASES, name, namespace="kube-system")


async def test_expired_lease_is_taken_over(client: ApiClient) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    stale = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
             "spec": {"holderIdentity": "dead", "leaseDurationSeconds": 1,
                      "renewTime": "2020-01-01T00:00:00.000000Z", "acquireTime": "2020-01-01T00:00:00.000000Z"}}
    await client.create(LEASES, stale, namespace="kube-system")
    try:
        fresh = LeaderElector(client, name=name, identity="new", lease_duration=3, renew_deadline=2,
                              retry_period=0.2)
        assert await fresh.try_acquire()
        live = LeaderElector(client, name=name, identity="other", lease_duration=3, renew_deadline=2,
                             retry_period=0.2)
        assert not await live.try_acquire(), "a freshly renewed lease is not free"
    finally:
        await client.delete(LEASES, name, namespace="kube-system")
