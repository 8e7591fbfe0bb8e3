"""``pinnace proxy``: the service proxy as its own process (the agent runs one per node).

``--cleanup`` removes our nftables table and exits; otherwise the proxy syncs until SIGINT/SIGTERM
and leaves its rules in place, so service traffic keeps flowing while it restarts
(``--cleanup-on-exit`` removes them instead). Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys


def _ips(text: str) -> list[str]:
    try:
        return [str(ipaddress.IPv4Address(part.strip())) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an IPv4 address list: {text!r}") from exc


def _cidr(text: str) -> str:
    try:
        return str(ipaddress.IPv4Network(text, strict=False))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an IPv4 CIDR: {text!r}") from exc


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context to use (default: current-context)")
    p.add_argument("--node-name", help="this node's name (externalTrafficPolicy: Local picks its endpoints)")
    p.add_argument("--node-ip", type=_ips, action="extend", default=[],
                   help="address(es) NodePorts answer on; repeat or comma-separate")
    p.add_argument("--table", default="pinnace-proxy", help="nftables table (family ip) to own")
    p.add_argument("--cluster-cidr", type=_cidr, help="pod CIDR: traffic from outside it is masqueraded")
    p.add_argument("--masquerade-all", action="store_true", help="SNAT all service traffic (no br_netfilter need)")
    p.add_argument("--netns", help="program nftables in this network namespace (path), e.g. for tests")
    p.add_argument("--min-sync-interval", type=float, default=0.1, help="debounce seconds between syncs")
    p.add_argument("--full-resync", type=float, default=900.0, help="seconds between full table rewrites")
    p.add_argument("--cleanup", action="store_true", help="remove our table and exit")
    p.add_argument("--cleanup-on-exit", action="store_true", help="remove our table when stopped")
    p.add_argument("--dns", metavar="ADDRESS",
                   help="also serve the cluster DNS on ADDRESS:53 in this process (one process less per node)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every sync (debug level)")


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """The proxy, and the cluster DNS beside it with ``--dns``; either failing ends both."""
    if not args.dns:
        await _serve_proxy(args, stop)
        return
    from proxy.dns import main as dns_main

    dns_parser = argparse.ArgumentParser()
    dns_main.configure(dns_parser)
    dns_args = dns_parser.parse_args([
        "--address", args.dns, *(("--kubeconfig", args.kubeconfig) if args.kubeconfig else ()),
        *(("--context", args.context) if args.context else ())])
    tasks = [asyncio.create_task(_serve_proxy(args, stop), name="proxy"),
             asyncio.create_task(dns_main.serve(dns_args, stop), name="dns")]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _serve_proxy(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from machinery.client import ApiClient
    from machinery.kubeconfig import load_kubeconfig
    from proxy import host, rules
    from proxy.nft import Nft
    from proxy.sync import Programmer, ServiceProxy

    config = rules.Config(table=args.table, node_name=args.node_name, node_ips=tuple(args.node_ip),
                          cluster_cidr=args.cluster_cidr, masquerade_all=args.masquerade_all)
    programmer = Programmer(Nft(args.table, netns=args.netns), config)
    if not args.node_ip:
        print("pinnace proxy: no --node-ip given: NodePorts will answer on no address", file=sys.stderr)
    if not args.masquerade_all:
        await host.ensure_bridge_netfilter(netns=args.netns)
    kube = await asyncio.to_thread(load_kubeconfig, args.kubeconfig, context=args.context)
    async with ApiClient(kube) as client:
        proxy = ServiceProxy(client, programmer, min_interval=args.min_sync_interval,
                             full_resync=args.full_resync)
        try:
            async with asyncio.timeout(60):
                await proxy.start()
        except TimeoutError:
            await proxy.stop()
            raise RuntimeError(f"could not list services from {kube.server} within 60s") from None
        print(f"pinnace proxy: programming table ip {args.table} from {kube.server}", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await proxy.stop()
            if args.cleanup_on_exit:
                await programmer.cleanup()


def run(args: argparse.Namespace) -> int:
    from machinery import service
    from proxy import rules
    from proxy.nft import Nft

    rules.Config(table=args.table)  # a bad table name fails here, before anything starts
    if args.cleanup:
        removed = asyncio.run(Nft(args.table, netns=args.netns).delete_table())
        print(f"pinnace proxy: table ip {args.table} {'removed' if removed else 'was not present'}", file=sys.stderr)
        return 0
    if args.min_sync_interval < 0 or args.full_resync <= 0:
        raise ValueError("--min-sync-interval must not be negative and --full-resync must be positive")
    if args.dns:
        import ipaddress

        ipaddress.ip_address(args.dns)  # ValueError: reported as one line by the CLI
    return service.run(lambda stop: _serve(args, stop), verbose=args.verbose)
