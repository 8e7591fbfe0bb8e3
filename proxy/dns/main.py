"""``pinnace dns --kubeconfig F``: the cluster DNS server as its own process (the agent runs one per node).

It owns the DNS IP on this node (``address``), watches Services and EndpointSlices (and Pods with
``--pods verified``) into a ``Zone``, and serves it with ``DnsServer`` on UDP and TCP, forwarding
other names to the resolvers of ``--resolv-conf`` (or ``--upstream``). Nothing heavy is imported
until the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

DEFAULT_ADDRESS = "10.43.0.10"
DEFAULT_DOMAIN = "cluster.local"
#: how long to wait for the first lists before serving anyway (cluster names SERVFAIL until synced)
SYNC_TIMEOUT = 5.0

log = logging.getLogger("proxy.dns")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context to use (default: current-context)")
    p.add_argument("--address", default=DEFAULT_ADDRESS, help=f"IP to serve on (default {DEFAULT_ADDRESS})")
    p.add_argument("--port", type=int, default=53, help="UDP and TCP port (default 53)")
    p.add_argument("--domain", default=DEFAULT_DOMAIN, help=f"cluster domain (default {DEFAULT_DOMAIN})")
    p.add_argument("--no-bind-interface", dest="bind_interface", action="store_false",
                   help="do not put --address on the pinnace-dns interface (it is already local)")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf",
                   help="where the upstream resolvers are listed (default /etc/resolv.conf)")
    p.add_argument("--upstream", action="append", default=[], metavar="HOST[:PORT]",
                   help="forward non-cluster names here instead of --resolv-conf's (repeatable)")
    p.add_argument("--pods", choices=("insecure", "verified", "disabled"), default="insecure",
                   help="<ip>.<ns>.pod names: answered for any IP, only for pod IPs, or not (default insecure)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


async def _upstreams(args: argparse.Namespace) -> list[tuple[str, int]]:
    from proxy.dns.forward import parse_upstream, read_resolv_conf

    if args.upstream:
        return [parse_upstream(u) for u in args.upstream]
    try:
        return await asyncio.to_thread(read_resolv_conf, args.resolv_conf)
    except OSError as exc:
        log.warning("no upstream resolvers (%s): non-cluster names will get SERVFAIL", exc)
        return []


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Serve until ``stop``; also run inside ``pinnace proxy --dns``."""
    from machinery.client import ApiClient
    from machinery.kubeconfig import load_kubeconfig
    from proxy.dns import address
    from proxy.dns.forward import Forwarder
    from proxy.dns.server import DnsServer
    from proxy.dns.watch import ZoneFeeder
    from proxy.dns.zone import Zone

    config = await asyncio.to_thread(load_kubeconfig, args.kubeconfig, context=args.context)
    zone = Zone(domain=args.domain, dns_ip=args.address, pods=args.pods)
    forwarder = Forwarder(await _upstreams(args), exclude=[(args.address, args.port), (args.address, 53)])
    if args.bind_interface:
        holder = await address.ensure(args.address)
        log.info("cluster DNS address %s is on %s", args.address, holder)
    server = DnsServer(zone, forwarder, address=args.address, port=args.port)
    try:
        async with ApiClient(config) as client:
            feeder = ZoneFeeder(client, zone)
            feeder.start()
            try:
                async with asyncio.timeout(SYNC_TIMEOUT):
                    await feeder.wait_synced()
            except TimeoutError:
                log.warning("not synced with %s after %.0fs; serving, cluster names SERVFAIL until then",
                            config.server, SYNC_TIMEOUT)
            await server.start()
            print(f"pinnace dns: serving {args.domain} on {args.address}:{server.port} (udp+tcp) from "
                  f"{config.server}; forwarding to {forwarder.upstreams or 'nobody'}", file=sys.stderr, flush=True)
            try:
                await stop.wait()
            finally:
                await server.stop()
                await feeder.stop()
    finally:
        if args.bind_interface:
            await address.remove(args.address)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise ValueError("--port must be between 1 and 65535")
    import ipaddress

    ipaddress.ip_address(args.address)  # ValueError: reported as one line by the CLI
    from machinery import service

    return service.run(lambda stop: serve(args, stop), verbose=args.verbose)
