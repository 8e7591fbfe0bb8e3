"""``pinnace agent``: one node — the engine and the kubelet — under one supervisor.

Each part of a node is a row of ``PARTS``: how to build its argv from the agent's paths and flags,
whether this invocation wants it, and what file must answer before the next row starts (the kubelet
needs the engine's CRI socket). The parts are separate programs (``pinnace engine serve``,
``pinnace kubelet``), supervised by ``cli.supervisor`` exactly as ``pinnace server`` supervises the
control plane: restarted with back-off when they die, stopped by PID on SIGTERM, their output
prefixed on our stderr. The service proxy and cluster DNS of the next milestone are one more row each.

Everything the node keeps lives under ``--data-dir`` (``AgentPaths``), so ``pinnace down`` can find
and remove it. Before starting, our CNI plugins are installed into ``<data dir>/cni/bin``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = "/var/lib/pinnace/agent"
DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"  # node IPAM's default (controllers.node_ipam)
DEFAULT_CLUSTER_DNS = "10.43.0.10"  # reserved by the service allocator; the DNS part binds it on the node
PROXY_TABLE = "pinnace-proxy"  # the proxy's nftables table; `down` deletes it
UNIX_PATH_MAX = 108  # sun_path, terminating NUL included
SOCKET_WAIT = 60.0  # seconds a part gets to open the socket the next part needs
ROUTE_TABLE = Path("/proc/net/route")
GLOBAL_TARGET = "1.1.1.1"  # any global address: a connected UDP socket only consults the routing table

log = logging.getLogger("pinnace.agent")


class AgentError(ValueError):
    """The agent's flags or paths cannot work (one line from the CLI)."""


@dataclass(frozen=True)
class AgentPaths:
    """Where one node keeps its state; every path derives from the data dir."""

    data_dir: Path

    @property
    def engine_root(self) -> Path:
        return self.data_dir / "engine"

    @property
    def run_dir(self) -> Path:
        """Sockets and the pods' pinned namespaces (``netns/``, ``ipcns/``, ``utsns/``)."""
        return self.data_dir / "run"

    @property
    def engine_socket(self) -> Path:
        return self.run_dir / "engine.sock"

    @property
    def cri_socket(self) -> Path:
        return self.run_dir / "cri.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.data_dir / "kubelet"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def cni_conf_dir(self) -> Path:
        return self.data_dir / "cni" / "net.d"

    @property
    def cni_bin_dir(self) -> Path:
        return self.data_dir / "cni" / "bin"

    @property
    def cni_ipam_dir(self) -> Path:
        """The pod network's IP leases (host-local IPAM), kept with the node rather than host-wide."""
        return self.data_dir / "cni" / "ipam"

    def check(self) -> None:
        """Unix socket paths longer than sun_path cannot be bound: say so before anything starts."""
        for path in (self.engine_socket, self.cri_socket):
            if len(str(path).encode()) >= UNIX_PATH_MAX:
                raise AgentError(f"socket path {path} is {len(str(path).encode())} bytes; unix sockets need "
                                 f"< {UNIX_PATH_MAX}: use a shorter --data-dir")


def default_gateway(route_table: Path = ROUTE_TABLE) -> str | None:
    """The IPv4 gateway of the default route (None: no default route, or one without a gateway)."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000" and fields[2] != "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
    return None


def default_node_ip(*, route_table: Path = ROUTE_TABLE) -> str:
    """The host's primary IPv4: the source address the kernel picks for the default route.

    Connecting a UDP socket to the default gateway (or any global address) sends nothing; the kernel
    only resolves the route and binds the source address. No route (an isolated host or network
    namespace) falls back to loopback."""
    target = default_gateway(route_table) or GLOBAL_TARGET
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((target, 9))
            address = probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    return address if address and address != "0.0.0.0" else "127.0.0.1"


def default_node_name() -> str:
    return socket.gethostname().lower()


# ------------------------------------------------------------------------------------------ parts

BASE = (sys.executable, "-m", "cli.main")


def _engine_argv(paths: AgentPaths, args: argparse.Namespace) -> tuple[str, ...]:
    return (*BASE, "engine", "serve", "--root", str(paths.engine_root), "--socket", str(paths.engine_socket),
            "--cri-socket", str(paths.cri_socket), "--cri-run-dir", str(paths.run_dir),
            "--cni-conf-dir", str(paths.cni_conf_dir), "--cni-bin-dir", str(paths.cni_bin_dir),
            *(("-v",) if args.verbose else ()))


def _kubelet_argv(paths: AgentPaths, args: argparse.Namespace) -> tuple[str, ...]:
    argv = [*BASE, "kubelet", "--kubeconfig", str(args.kubeconfig), "--node-name", args.node_name,
            "--cri-socket", cri_socket(paths, args), "--root-dir", str(paths.kubelet_root),
            "--log-dir", str(paths.log_dir), "--node-ip", args.node_ip, "--port", str(args.kubelet_port),
            "--cni-conf-dir", str(paths.cni_conf_dir), "--cni-ipam-dir", str(paths.cni_ipam_dir),
            "--cluster-cidr", args.cluster_cidr]
    for server in args.cluster_dns:
        argv += ["--cluster-dns", server]
    if args.node_labels:
        argv += ["--node-labels", args.node_labels]
    if args.node_lease_duration_seconds:
        argv += ["--node-lease-duration-seconds", str(args.node_lease_duration_seconds)]
    if args.verbose:
        argv.append("-v")
    return tuple(argv)


def _proxy_argv(paths: AgentPaths, args: argparse.Namespace) -> tuple[str, ...]:
    return (*BASE, "proxy", "--kubeconfig", str(args.kubeconfig), "--node-name", args.node_name,
            "--node-ip", args.node_ip, "--cluster-cidr", args.cluster_cidr, "--table", PROXY_TABLE,
            *(() if args.no_dns else ("--dns", args.cluster_dns[0])),  # one process for both saves ~25 MB
            *(("-v",) if args.verbose else ()))


def _dns_argv(paths: AgentPaths, args: argparse.Namespace) -> tuple[str, ...]:
    return (*BASE, "dns", "--kubeconfig", str(args.kubeconfig), "--address", args.cluster_dns[0],
            *(("-v",) if args.verbose else ()))


def cri_socket(paths: AgentPaths, args: argparse.Namespace) -> str:
    return args.cri_socket if args.no_engine else str(paths.cri_socket)


@dataclass(frozen=True)
class Part:
    """One supervised program of a node."""

    name: str
    argv: Callable[[AgentPaths, argparse.Namespace], tuple[str, ...]]
    wanted: Callable[[argparse.Namespace], bool]
    #: a unix socket that must accept connections before the next part starts (None: do not wait)
    ready_socket: Callable[[AgentPaths, argparse.Namespace], Path | None]


PARTS: tuple[Part, ...] = (
    Part("engine", _engine_argv, lambda a: not a.no_engine, lambda p, a: p.cri_socket),
    Part("kubelet", _kubelet_argv, lambda a: True, lambda p, a: None),
    Part("proxy", _proxy_argv, lambda a: not a.no_proxy, lambda p, a: None),
    Part("dns", _dns_argv, lambda a: a.no_proxy and not a.no_dns, lambda p, a: None),  # else inside the proxy
)


def wanted_parts(args: argparse.Namespace) -> list[Part]:
    return [part for part in PARTS if part.wanted(args)]


# ------------------------------------------------------------------------------------------- CLI


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", required=True, help="the node's credentials for the API server")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="the node's state (default %(default)s)")
    p.add_argument("--node-name", default=None, help="the Node's name (default: this host's name)")
    p.add_argument("--node-ip", default=None, help="the Node's InternalIP (default: the host's primary IPv4)")
    p.add_argument("--kubelet-port", type=int, default=10250, help="the kubelet's HTTPS port (default %(default)s)")
    p.add_argument("--cluster-dns", action="append", default=[], metavar="IP",
                   help="DNS server for ClusterFirst pods (repeatable)")
    p.add_argument("--node-labels", default="", help="extra Node labels, k=v,...")
    p.add_argument("--cluster-cidr", default=DEFAULT_CLUSTER_CIDR,
                   help="the pods' CIDR; service traffic from outside it is masqueraded (default %(default)s)")
    p.add_argument("--node-lease-duration-seconds", type=int, metavar="N",
                   help="the kubelet's node Lease duration (renewed every quarter; default 40)")
    p.add_argument("--no-proxy", action="store_true", help="do not run the service proxy")
    p.add_argument("--no-dns", action="store_true", help="do not run the cluster DNS server")
    p.add_argument("--no-engine", action="store_true", help="use a running CRI (--cri-socket) instead of our engine")
    p.add_argument("--cri-socket", help="the CRI socket to use with --no-engine")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")


def _check_args(args: argparse.Namespace) -> None:
    if args.no_engine and not args.cri_socket:
        raise AgentError("--no-engine needs --cri-socket")
    if not 0 < args.kubelet_port < 65536:
        raise AgentError(f"--kubelet-port {args.kubelet_port} is not a TCP port (1-65535)")
    if not Path(args.kubeconfig).is_file():
        raise AgentError(f"no kubeconfig at {args.kubeconfig}")
    args.node_name = args.node_name or default_node_name()
    args.cluster_dns = args.cluster_dns or [DEFAULT_CLUSTER_DNS]
    args.node_ip = args.node_ip or default_node_ip()
    args.kubeconfig = str(Path(args.kubeconfig).resolve())


def socket_answers(path: Path) -> bool:
    """Blocking: whether something accepts connections on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


async def wait_for_socket(path: Path, *, within: float = SOCKET_WAIT) -> None:
    """Until something accepts on ``path``; RuntimeError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(socket_answers, path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answered on {path} within {within:.0f}s")
        await asyncio.sleep(0.1)


def _prepare(paths: AgentPaths) -> None:
    """Blocking: the dirs the parts expect, and our CNI plugins in the node's bin dir."""
    from cni import install

    for directory in (paths.run_dir, paths.kubelet_root, paths.log_dir, paths.cni_conf_dir):
        directory.mkdir(parents=True, exist_ok=True)
    install.install(str(paths.cni_bin_dir))


async def _serve(args: argparse.Namespace, paths: AgentPaths, stop: asyncio.Event) -> None:
    from cli.supervisor import ChildSpec, Supervisor

    await asyncio.to_thread(_prepare, paths)
    started: list[Supervisor] = []
    try:
        for part in wanted_parts(args):
            supervisor = Supervisor([ChildSpec(part.name, part.argv(paths, args))], run_dir=paths.data_dir,
                                    grace=10.0)
            await supervisor.start()
            started.append(supervisor)
            ready = part.ready_socket(paths, args)
            if ready is not None:
                waiting = asyncio.create_task(wait_for_socket(ready))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not waiting.done():
                    waiting.cancel()
                    return
                waiting.result()
                log.info("%s ready on %s", part.name, ready)
        print(f"pinnace agent: node {args.node_name} ({args.node_ip}) running "
              f"{', '.join(p.name for p in wanted_parts(args))}; data dir {paths.data_dir}",
              file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        for supervisor in reversed(started):  # the kubelet goes before the engine it talks to
            await supervisor.stop()


def run(args: argparse.Namespace) -> int:
    from machinery import service

    _check_args(args)
    paths = AgentPaths(Path(args.data_dir).resolve())
    paths.check()
    return service.run(lambda stop: _serve(args, paths, stop), verbose=args.verbose)
