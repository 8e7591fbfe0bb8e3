"""QoS classes, OOM score adjustments and cgroup numbers, as upstream computes them."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.containers import ConfigError, qos_class
from kubelet.containers.qos import oom_score_adj
from kubelet.containers.resources import linux_resources, milli_cpu_to_quota, milli_cpu_to_shares
from tests.kubelet.containers.kctr_env import make_pod

GIB = 1 << 30


def ctr(requests: dict | None = None, limits: dict | None = None, name: str = "c") -> dict[str, Any]:
    return {"name": name, "resources": {"requests": requests or {}, "limits": limits or {}}}


@pytest.mark.parametrize(("containers", "init", "expected"), [
    ([ctr()], [], "BestEffort"),
    ([ctr({"cpu": "0"})], [], "BestEffort"),  # zero quantities do not count
    ([ctr({"nvidia.com/gpu": "1"}, {"nvidia.com/gpu": "1"})], [], "BestEffort"),  # only cpu/memory count
    ([ctr({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], [], "Guaranteed"),
    ([ctr({"cpu": "1000m", "memory": "1Gi"}, {"cpu": "1", "memory": "1024Mi"})], [], "Guaranteed"),
    ([ctr({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], [], "Burstable"),
    ([ctr({"cpu": "1"}, {"cpu": "1"})], [], "Burstable"),  # memory limit missing
    ([ctr(None, {"cpu": "1", "memory": "1Gi"})], [], "Burstable"),  # requests not defaulted here
    ([ctr({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}), ctr(name="d")], [], "Burstable"),
    ([ctr({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], [ctr({"memory": "1Mi"})], "Burstable"),
    ([ctr()], [ctr({"memory": "1Mi"})], "Burstable"),
])
def test_qos_class(containers: list, init: list, expected: str) -> None:
    pod = make_pod(*containers, initContainers=init)
    assert qos_class(pod) == expected


def test_recorded_qos_class_wins() -> None:
    pod = make_pod(ctr())
    pod["status"]["qosClass"] = "Burstable"
    assert qos_class(pod) == "Burstable"


@pytest.mark.parametrize(("container", "expected"), [
    (ctr(), 1000),
    (ctr({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}), -997),
    (ctr({"memory": "1Gi"}), 1000 - 1000 // 8),  # 1 of 8 GiB
    (ctr({"memory": "8Gi"}), 3),  # all of it: clamped above Guaranteed
    (ctr({"cpu": "100m"}), 999),  # no memory request: just below BestEffort
    (ctr({"memory": "3Gi"}), 1000 - 3000 // 8),
])
def test_oom_score_adj(container: dict, expected: int) -> None:
    pod = make_pod(container)
    assert oom_score_adj(pod, container, memory_capacity=8 * GIB) == expected


def test_node_critical_pods_are_protected() -> None:
    container = ctr({"cpu": "100m"})
    pod = make_pod(container, priority=2_000_001_000, priorityClassName="system-node-critical")
    assert oom_score_adj(pod, container, memory_capacity=8 * GIB) == -997


@pytest.mark.parametrize(("milli", "shares", "quota"), [
    (0, 2, 0), (1, 2, 1000), (5, 5, 1000), (100, 102, 10000), (250, 256, 25000), (1000, 1024, 100000),
    (2500, 2560, 250000), (1_000_000, 262144, 100_000_000),
])
def test_cpu_conversions(milli: int, shares: int, quota: int) -> None:
    assert milli_cpu_to_shares(milli) == shares
    assert milli_cpu_to_quota(milli) == quota


@pytest.mark.parametrize(("container", "shares", "quota", "memory"), [
    (ctr(), 2, 0, 0),
    (ctr({"cpu": "250m"}), 256, 0, 0),
    (ctr(None, {"cpu": "500m", "memory": "128Mi"}), 512, 50000, 128 << 20),  # request defaults to limit
    (ctr({"cpu": "100m"}, {"cpu": "1.5", "memory": "1G"}), 102, 150000, 10**9),
    (ctr({"cpu": "0.0001"}), 2, 0, 0),  # 0.1m rounds up to 1m -> minimum shares
])
def test_linux_resources(container: dict, shares: int, quota: int, memory: int) -> None:
    res = linux_resources(make_pod(container), container, memory_capacity=8 * GIB)
    assert (res.cpu_shares, res.cpu_quota, res.cpu_period, res.memory_limit_in_bytes) == (shares, quota, 100000, memory)
    assert res.memory_swap_limit_in_bytes == memory  # no swap beyond the limit


def test_bad_quantity_is_a_config_error() -> None:
    container = ctr({"cpu": "lots"})
    with pytest.raises(ConfigError):
        linux_resources(make_pod(container), container, memory_capacity=GIB)
