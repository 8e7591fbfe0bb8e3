"""The default profile: which plugins run, in upstream's order, and with what score weights."""

from __future__ import annotations

import random

from scheduler.framework import Framework
from scheduler.plugins import (
    balanced_allocation,
    inter_pod_affinity,
    least_allocated,
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
    workload_spread,
)


def default_framework(*, rng: random.Random | None = None) -> Framework:
    affinity = node_affinity.NodeAffinity()
    taints = taint_toleration.TaintToleration()
    pod_affinity = inter_pod_affinity.InterPodAffinity()
    spread = pod_topology_spread.PodTopologySpread()
    return Framework(
        filters=[node_unschedulable.NodeUnschedulable(), node_name.NodeName(), taints, affinity,
                 node_ports.NodePorts(), node_resources_fit.NodeResourcesFit(), spread, pod_affinity],
        scorers=[taints, affinity, spread, pod_affinity, least_allocated.LeastAllocated(),
                 balanced_allocation.BalancedAllocation(), workload_spread.WorkloadSpread()],
        rng=rng)
