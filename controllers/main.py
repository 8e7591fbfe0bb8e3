"""``pinnace controller-manager --kubeconfig FILE``: the controllers as their own process.

Nothing heavy is imported until the command runs, so ``pinnace --help`` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys

#: Go duration units (time.ParseDuration), in seconds
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def duration(text: str) -> float:
    """Seconds of a Go duration such as ``40s``, ``1m30s`` or ``500ms`` (as kube flags take them)."""
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 40s, 1m30s, 500ms)")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
    return seconds


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context to use (default: current-context)")
    p.add_argument("--controllers", type=lambda v: [n for n in v.split(",") if n],
                   help="comma-separated controllers to run (default: all)")
    p.add_argument("--cluster-cidr", default=None, help="pod CIDR the node IPAM controller divides")
    p.add_argument("--node-monitor-grace-period", type=duration, default=None, metavar="DURATION",
                   help="silence after which a node is marked Unknown and tainted unreachable (default 40s)")
    p.add_argument("--leader-elect", action="store_true",
                   help="run controllers only while holding the kube-system/kube-controller-manager Lease")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from controllers.manager import ControllerManager
    from machinery.client import ApiClient
    from machinery.kubeconfig import load_kubeconfig

    config = await asyncio.to_thread(load_kubeconfig, args.kubeconfig, context=args.context)
    options: dict[str, object] = {"cluster_cidr": args.cluster_cidr} if args.cluster_cidr else {}
    if args.node_monitor_grace_period:
        options["node_monitor_grace_period"] = args.node_monitor_grace_period
    async with ApiClient(config) as client:
        manager = ControllerManager(client, names=args.controllers or None,
                                    lease_name="kube-controller-manager" if args.leader_elect else None, **options)
        await manager.start()
        print(f"pinnace controller-manager: reconciling {config.server}", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await manager.stop()


def run(args: argparse.Namespace) -> int:
    from machinery import service

    return service.run(lambda stop: _serve(args, stop), verbose=args.verbose)
