"""The cluster's host-gw routes, kept by one small process on the host: ``python -m cli.multinode.hostgw``.

Pods on different nodes reach each other without an overlay: each node routes every other node's
pod CIDR via that node's address on the bridge, and the host routes every pod CIDR via its node
(so the host, where the API server runs, reaches pods too). The routes follow the Node objects
(spec.podCIDR from node IPAM, the InternalIP), watched through an informer. One process per cluster
does this for all its nodes rather than one per node: every node namespace is a netlink socket away
from the host (opened by a thread inside it, ``nsthread``), and the host's routes need a host-side
process anyway. It runs on the default asyncio loop: pyroute2's asyncio netlink fails on uvloop.
On the host only routes inside the cluster's own CIDR are touched, so clusters side by side (and a
``pinnace up`` node using host-gw itself) never disturb each other's routes.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cli.multinode import nsthread
from cli.multinode.layout import Cluster
from cni import routes

log = logging.getLogger("pinnace.hostgw")
RESYNC = 30.0  # seconds between syncs without a Node change (repairs routes someone removed)


def node_facts(nodes: Iterable[dict[str, Any]], cluster: Cluster) -> list[tuple[str, str, str]]:
    """(name, pod CIDR, InternalIP) of each Node that belongs on this cluster's network."""
    facts = []
    for node in nodes:
        name = (node.get("metadata") or {}).get("name") or ""
        cidr = (node.get("spec") or {}).get("podCIDR") or ""
        ip = next((a.get("address") for a in (node.get("status") or {}).get("addresses") or []
                   if a.get("type") == "InternalIP"), "")
        try:
            inside = (ipaddress.ip_network(cidr).subnet_of(cluster.cluster_cidr)
                      and ipaddress.ip_address(ip) in cluster.subnet)
        except (ValueError, TypeError):
            continue
        if inside:
            facts.append((name, cidr, ip))
    return facts


def host_changes(*, wanted: dict[str, str], present: dict[str, str], cidr: ipaddress.IPv4Network,
                 ) -> tuple[dict[str, str], list[str]]:
    """What to replace and what to delete among the host's routes inside ``cidr`` only."""
    ours = {dst: gw for dst, gw in present.items() if ipaddress.ip_network(dst).subnet_of(cidr)}
    replace = {dst: gw for dst, gw in wanted.items() if ours.get(dst) != gw}
    return replace, sorted(ours.keys() - wanted.keys())


async def sync_host(facts: list[tuple[str, str, str]], cluster: Cluster) -> None:
    from pyroute2 import AsyncIPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    wanted = {str(ipaddress.ip_network(cidr)): ip for _, cidr, ip in facts}
    present = await routes.current()
    replace, delete = host_changes(wanted=wanted, present=present, cidr=cluster.cluster_cidr)
    if not replace and not delete:
        return
    async with AsyncIPRoute(flags=0) as ipr:
        for dst, gateway in replace.items():
            try:
                await ipr.route("replace", dst=dst, gateway=gateway, proto=routes.RTPROT_PINNACE)
            except NetlinkError as exc:
                log.warning("host route %s via %s: %s", dst, gateway, exc)
        for dst in delete:
            try:
                await ipr.route("del", dst=dst, proto=routes.RTPROT_PINNACE)
            except NetlinkError as exc:
                log.warning("host route %s: delete: %s", dst, exc)
    log.info("host routes: %d set, %d removed", len(replace), len(delete))


async def sync_all(cluster: Cluster, nodes: list[dict[str, Any]]) -> None:
    facts = node_facts(nodes, cluster)
    present = await asyncio.to_thread(lambda: {n.netns for n in cluster.nodes
                                               if Path(f"/run/netns/{n.netns}").exists()})
    for node in cluster.nodes:
        if node.netns not in present:
            continue
        wanted = routes.routes_for(facts, self_name=node.name)
        try:
            changes = await asyncio.to_thread(nsthread.in_namespace, node.netns,
                                              lambda w=wanted: asyncio.run(routes.sync(w)))
        except (OSError, routes.RouteError) as exc:
            log.warning("node %s: routes: %s", node.name, exc)
            continue
        if changes.added or changes.removed or changes.failed:
            log.info("node %s: routes added %s removed %s failed %s", node.name, changes.added,
                     changes.removed, changes.failed)
    try:
        await sync_host(facts, cluster)
    except OSError as exc:
        log.warning("host routes: %s", exc)


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from cli.multinode import layout
    from machinery.client import ApiClient
    from machinery.informer import EventHandlers, Informer
    from machinery.kubeconfig import load_kubeconfig
    from machinery.resources import NODES

    changed = asyncio.Event()
    config = await asyncio.to_thread(load_kubeconfig, args.kubeconfig)
    async with ApiClient(config) as client:
        informer = Informer(client, NODES)
        informer.add_handler(EventHandlers(on_add=lambda o: changed.set(), on_update=lambda o, n: changed.set(),
                                           on_delete=lambda o: changed.set()))
        informer.start()
        log.info("keeping the host-gw routes of cluster %s (API %s)", args.cluster_dir.name, config.server)
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                waiting = asyncio.create_task(changed.wait())
                await asyncio.wait({waiting, stopping}, timeout=RESYNC, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if stop.is_set():
                    break
                changed.clear()
                try:
                    cluster = await asyncio.to_thread(  # nodes come and go: read the record each time
                        layout.load, str(args.cluster_dir.parent), args.cluster_dir.name)
                except layout.ClusterError as exc:  # being deleted: nothing to keep
                    log.warning("%s", exc)
                    if not args.cluster_dir.exists():  # gone for good (e.g. its temp dir removed): so are we
                        break
                    continue
                await sync_all(cluster, informer.list())
        finally:
            stopping.cancel()
            await informer.stop()
            log.info("stopped")


async def _until_signalled(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await _serve(args, stop)


def main(argv: list[str] | None = None) -> int:
    """Not ``machinery.service.run``: pyroute2's asyncio netlink sockets do not work on uvloop."""
    from machinery.service import LOG_FORMAT

    p = argparse.ArgumentParser(prog="python -m cli.multinode.hostgw", description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--cluster-dir", type=Path, required=True, help="the cluster's dir (its cluster.json)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format=LOG_FORMAT)
    asyncio.run(_until_signalled(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
