"""``pinnace kubelet``: the node agent as its own process (flags as the upstream kubelet names them).

It connects to the engine's CRI socket, serves the kubelet HTTPS API (logs/exec/attach/port-forward)
and runs the ``Kubelet`` until SIGTERM, then stops its own tasks and leaves pods running, so a
restarted kubelet adopts them. Mistakes a user can fix (flags, kubeconfig, CRI not reachable)
end as one line on stderr (the CLI prints ValueError/RuntimeError/OSError that way).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import sys
from pathlib import Path

from kubelet.config import (
    DEFAULT_CLUSTER_DOMAIN,
    DEFAULT_PORT,
    DEFAULT_ROOT_DIR,
    LEASE_DURATION,
    MAX_PODS,
    KubeletConfig,
)

DEFAULT_CRI_SOCKET = "/run/pinnace/cri.sock"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--node-name", default=socket.gethostname().lower(), help="this node's name (default: hostname)")
    p.add_argument("--cri-socket", default=DEFAULT_CRI_SOCKET, help="the engine's CRI socket (default %(default)s)")
    p.add_argument("--root-dir", default=DEFAULT_ROOT_DIR, help="pod volumes and state (default %(default)s)")
    p.add_argument("--log-dir", help="pod logs (default: <root-dir>/logs)")
    p.add_argument("--node-ip", default="127.0.0.1", help="the node's InternalIP (default %(default)s)")
    p.add_argument("--address", default="0.0.0.0", help="where the HTTPS API listens (default %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTPS API port (default %(default)s; 0 picks)")
    p.add_argument("--cluster-dns", action="append", default=[], help="cluster DNS server IP (repeatable)")
    p.add_argument("--cluster-domain", default=DEFAULT_CLUSTER_DOMAIN, help="default %(default)s")
    p.add_argument("--cni-conf-dir", help="write the node's CNI conflist here once it has a podCIDR")
    p.add_argument("--cni-bridge", default="pinnacebr0", help="bridge of that conflist (default %(default)s)")
    p.add_argument("--node-lease-duration-seconds", type=int, default=LEASE_DURATION, metavar="N",
                   help="the node Lease's duration; it is renewed every quarter of it (default %(default)s)")
    p.add_argument("--cni-ipam-dir", help="host-local IPAM state dir (default: the plugin's)")
    p.add_argument("--cluster-cidr", help="all nodes' pod CIDRs: traffic between pods keeps its source "
                                          "address (host-gw routing); other traffic is masqueraded")
    p.add_argument("--node-labels", default="", help="extra node labels: k=v,k2=v2")
    p.add_argument("--max-pods", type=int, default=MAX_PODS, help="default %(default)s")
    p.add_argument("--sync-interval", type=float, default=1.0, help="seconds between runtime relists (default 1)")
    p.add_argument("--sync-frequency", type=float, default=60.0,
                   help="seconds between full resyncs of each pod, which refresh its config volumes (default 60)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")


def parse_labels(text: str) -> dict[str, str]:
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--node-labels: {item!r} is not key=value")
        labels[key] = value
    return labels


def build_config(args: argparse.Namespace) -> KubeletConfig:
    """The KubeletConfig of the flags; ValueError on a bad one."""
    for flag, value in (("--node-ip", args.node_ip), ("--address", args.address), *(
            ("--cluster-dns", v) for v in args.cluster_dns)):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{flag}: {value!r} is not an IP address") from None
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is out of range")
    if args.node_lease_duration_seconds < 1:
        raise ValueError(f"--node-lease-duration-seconds {args.node_lease_duration_seconds} must be positive")
    if args.max_pods < 1 or args.sync_interval <= 0 or args.sync_frequency <= 0:
        raise ValueError("--max-pods, --sync-interval and --sync-frequency must be positive")
    if not args.node_name:
        raise ValueError("--node-name must not be empty")
    root = Path(args.root_dir)
    return KubeletConfig(
        node_name=args.node_name, kubeconfig=args.kubeconfig or "", cri_socket=args.cri_socket, root_dir=root,
        log_dir=Path(args.log_dir) if args.log_dir else root / "logs", node_ip=args.node_ip, address=args.address,
        port=args.port, cluster_dns=tuple(args.cluster_dns), cluster_domain=args.cluster_domain,
        cni_conf_dir=Path(args.cni_conf_dir) if args.cni_conf_dir else None, cni_bridge=args.cni_bridge,
        cni_ipam_dir=Path(args.cni_ipam_dir) if args.cni_ipam_dir else None,
        cluster_cidr=args.cluster_cidr,
        lease_duration=args.node_lease_duration_seconds, heartbeat_interval=args.node_lease_duration_seconds / 4,
        node_labels=parse_labels(args.node_labels), max_pods=args.max_pods, sync_interval=args.sync_interval,
        sync_frequency=args.sync_frequency)


async def _serve(config: KubeletConfig, stop: asyncio.Event) -> None:
    import grpc

    from kubelet.cri import CriClient
    from kubelet.kubelet import Kubelet
    from kubelet.server import KubeletServer
    from machinery.client import ApiClient, ApiError, TransportError
    from machinery.kubeconfig import load_kubeconfig

    cluster = await asyncio.to_thread(load_kubeconfig, config.kubeconfig or None)
    async with CriClient(config.cri_socket) as cri:
        try:
            version = await cri.version()
        except grpc.aio.AioRpcError as exc:
            raise RuntimeError(f"cannot reach the CRI at {config.cri_socket}: {exc.details()}") from None
        server = KubeletServer(config=config, cri=cri, ca_pem=cluster.ca_data or b"")
        await server.start()
        try:
            async with ApiClient(cluster) as client:
                kubelet = Kubelet(config=config, client=client, cri=cri, port=server.port)
                try:
                    try:
                        await kubelet.start()
                    except (ApiError, TransportError) as exc:
                        raise RuntimeError(f"cannot register node {config.node_name}: {exc}") from None
                    except grpc.aio.AioRpcError as exc:
                        raise RuntimeError(f"the CRI at {config.cri_socket} failed: {exc.details()}") from None
                    print(f"pinnace kubelet: node {config.node_name} on {cluster.server}, runtime "
                          f"{version.runtime_name} {version.runtime_version}, API on port {server.port}",
                          file=sys.stderr, flush=True)
                    await stop.wait()
                finally:
                    await kubelet.stop()
        finally:
            await server.stop()


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    from machinery import service

    return service.run(lambda stop: _serve(config, stop), verbose=args.verbose)
