"""Node IPAM: gives every Node a ``spec.podCIDR`` (and ``podCIDRs``) carved from the cluster CIDR.

The CNI plugin on each node hands pod IPs out of that range, so ranges must never overlap. One
worker allocates (so two Nodes cannot be given the same range at once), and ranges handed out are
remembered until their Node is seen with them or deleted, in case the cache lags the write. A Node
that already has a podCIDR keeps it (Kubernetes treats it as immutable). The default is k3s': a
10.42.0.0/16 cluster CIDR split into one /24 per node.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from typing import Any

from machinery.client import ApiClient, NotFound
from machinery.reconcile import Reconciler, SharedInformers
from machinery.resources import NODES

log = logging.getLogger(__name__)

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_NODE_MASK = 24
#: how long to wait before trying again once the cluster CIDR is used up
EXHAUSTED_RECHECK = 30.0


class IpamConfigError(ValueError):
    """The cluster CIDR or the per-node mask cannot be used."""


class CidrAllocator:
    """Hands out the per-node subnets of one cluster CIDR, lowest free first."""

    def __init__(self, cluster_cidr: str = DEFAULT_CLUSTER_CIDR, *, node_mask: int = DEFAULT_NODE_MASK) -> None:
        try:
            self.network = ipaddress.ip_network(cluster_cidr, strict=True)
        except ValueError as e:
            raise IpamConfigError(f"cluster CIDR {cluster_cidr!r}: {e}") from e
        if not self.network.prefixlen <= node_mask <= self.network.max_prefixlen:
            raise IpamConfigError(f"node mask /{node_mask} does not fit in cluster CIDR {cluster_cidr} "
                                  f"(need /{self.network.prefixlen}../{self.network.max_prefixlen})")
        self.node_mask = node_mask

    def subnets(self) -> Iterator[str]:
        for net in self.network.subnets(new_prefix=self.node_mask):
            yield str(net)

    def first_free(self, used: set[str]) -> str | None:
        return next((s for s in self.subnets() if s not in used), None)


class NodeIpamController(Reconciler):
    name = "nodeipam"
    primary_resource = NODES
    workers = 1

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None,
                 cluster_cidr: str = DEFAULT_CLUSTER_CIDR, node_mask: int = DEFAULT_NODE_MASK,
                 **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.allocator = CidrAllocator(cluster_cidr, node_mask=node_mask)
        self.handed_out: dict[str, str] = {}  # node name -> range written, until the cache shows it

    async def reconcile(self, key: str) -> float | None:
        node = self.primary.get(key)
        if node is None:
            self.handed_out.pop(key, None)
            return None
        if (node.get("spec") or {}).get("podCIDR"):
            self.handed_out.pop(key, None)
            return None
        used = {str((n.get("spec") or {}).get("podCIDR")) for n in self.primary.list()}
        used |= {cidr for name, cidr in self.handed_out.items() if name != key}
        cidr = self.handed_out.get(key) or self.allocator.first_free(used)
        if cidr is None:
            log.error("nodeipam: no free /%d left in %s for node %s", self.allocator.node_mask,
                      self.allocator.network, key)
            return EXHAUSTED_RECHECK
        self.handed_out[key] = cidr
        body = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
        try:
            await self.client.patch(NODES, key, body)
        except NotFound:
            self.handed_out.pop(key, None)
            return None
        self.metrics.inc("pinnace_nodeipam_allocations_total", controller=self.name)
        log.info("nodeipam: node %s gets pod CIDR %s", key, cidr)
        return None
