"""Multi-node pod networking by host-gw routes: "other node's pod CIDR via that node's IP".

Every node bridges its own pods (``cni.bridge``); a pod on another node is reached by routing its
node's pod CIDR to that node's address on the network the nodes share, so pod-to-pod traffic keeps
its addresses end to end (no overlay, no NAT — with ``ipMasqExclude`` covering the cluster CIDR).
The node agent calls ``sync`` whenever its view of the Node objects changes; ``sync`` makes our
routes exactly the wanted set and never touches any other route: ours are the ones tagged with our
routing protocol number ``RTPROT_PINNACE`` (``ip route show proto 113``).

Unlike the plugin, this runs inside the long-lived, asyncio-based agent, so it uses pyroute2's
``AsyncIPRoute``: its import cost is paid once, and netlink waits never block the event loop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pyroute2 import AsyncIPRoute

RTPROT_PINNACE = 113
RT_TABLE_MAIN = 254


class RouteError(ValueError):
    """A wanted route is malformed (bad CIDR or node address, mixed families, one CIDR twice)."""


class NodeRoute(NamedTuple):
    """Pods of ``pod_cidr`` live on the node reachable at ``node_ip``."""

    pod_cidr: str
    node_ip: str


class RouteChanges(NamedTuple):
    """What ``sync`` did: destinations added or changed, removed, and refused by the kernel (with why)."""

    added: list[str]
    removed: list[str]
    failed: dict[str, str]


def routes_for(nodes: Iterable[tuple[str, str, str]], *, self_name: str) -> list[NodeRoute]:
    """Routes this node needs, from (node name, pod CIDR, node IP) of every node in the cluster."""
    return [NodeRoute(cidr, ip) for name, cidr, ip in nodes if name != self_name and cidr and ip]


def _validate(routes: Iterable[NodeRoute]) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for route in routes:
        try:
            network = ipaddress.ip_network(route.pod_cidr, strict=True)
            gateway = ipaddress.ip_address(route.node_ip)
        except ValueError as exc:
            raise RouteError(f"route {route.pod_cidr} via {route.node_ip}: {exc}") from None
        if network.version != gateway.version:
            raise RouteError(f"route {network} via {gateway}: address families differ")
        if str(network) in wanted and wanted[str(network)] != str(gateway):
            raise RouteError(f"pod CIDR {network} is routed to both {wanted[str(network)]} and {gateway}")
        wanted[str(network)] = str(gateway)
    return wanted


async def current(*, netns: str | None = None, table: int = RT_TABLE_MAIN,
                  protocol: int = RTPROT_PINNACE) -> dict[str, str]:
    """Our routes now in place: destination CIDR → gateway."""
    from pyroute2 import AsyncIPRoute

    async with AsyncIPRoute(netns=netns, flags=0) as ipr:
        return await _ours(ipr, table=table, protocol=protocol)


async def _ours(ipr: AsyncIPRoute, *, table: int, protocol: int) -> dict[str, str]:
    found: dict[str, str] = {}
    for family in (2, 10):  # AF_INET, AF_INET6
        async for msg in await ipr.route("dump", family=family, table=table):
            if msg["proto"] != protocol:
                continue
            dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == 2 else "::")
            found[str(ipaddress.ip_network(f"{dst}/{msg['dst_len']}"))] = msg.get_attr("RTA_GATEWAY") or ""
    return found


async def sync(routes: Iterable[NodeRoute], *, netns: str | None = None, table: int = RT_TABLE_MAIN,
               protocol: int = RTPROT_PINNACE) -> RouteChanges:
    """Make our routes exactly ``routes`` (in ``netns``, a path, or this namespace); report the changes.

    Input is validated before anything changes (RouteError). The kernel may still refuse a route
    (a node IP not on any connected network): that one lands in ``failed`` and the rest go ahead,
    since partial connectivity beats none; the next sync retries it.
    """
    from pyroute2 import AsyncIPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    wanted = _validate(routes)
    changes = RouteChanges([], [], {})
    async with AsyncIPRoute(netns=netns, flags=0) as ipr:
        present = await _ours(ipr, table=table, protocol=protocol)
        for dst, gateway in wanted.items():
            if present.get(dst) == gateway:
                continue
            try:
                await ipr.route("replace", dst=dst, gateway=gateway, table=table, proto=protocol)
                changes.added.append(dst)
            except NetlinkError as exc:
                changes.failed[dst] = f"via {gateway}: {exc.args[-1] if exc.args else exc}"
        for dst in present.keys() - wanted.keys():
            try:
                await ipr.route("del", dst=dst, table=table, proto=protocol)
                changes.removed.append(dst)
            except NetlinkError as exc:
                if exc.code != 3:  # ESRCH: already gone
                    changes.failed[dst] = f"delete: {exc.args[-1] if exc.args else exc}"
    return changes
