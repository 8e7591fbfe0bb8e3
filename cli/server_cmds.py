"""``pinnace server`` and ``pinnace kubeconfig``.

``pinnace server`` serves the API in this process and, unless ``--no-controllers``, supervises the
controller-manager and the scheduler as child processes (see ``cli.supervisor``): their output goes
to this process's stderr prefixed with ``[controller-manager]`` / ``[scheduler]``, their PIDs to
``<data dir>/controller-manager.pid`` and ``<data dir>/scheduler.pid``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

DEFAULT_DATA_DIR = "/var/lib/pinnace"


def configure_server(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="state, PKI and kubeconfig (default %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port (default %(default)s; 0 picks one)")
    p.add_argument("--datastore", default="sqlite",
                   help="sqlite (embedded, default) or etcd://HOST:PORT[,HOST:PORT...] (an etcd v3 cluster)")
    p.add_argument("--etcd-cafile", help="CA bundle that signed etcd's serving certificate (turns on TLS)")
    p.add_argument("--etcd-certfile", help="client certificate for etcd (with --etcd-keyfile)")
    p.add_argument("--etcd-keyfile", help="private key of --etcd-certfile")
    p.add_argument("--tls-san", action="append", default=[], help="extra host name or IP for the serving cert")
    p.add_argument("--controllers", type=lambda v: [n for n in v.split(",") if n],
                   help="comma-separated controllers the controller-manager child runs (default: all)")
    p.add_argument("--cluster-cidr", help="pod CIDR the node IPAM controller divides into node ranges "
                                          "(passed to the controller-manager child; default: its own)")
    p.add_argument("--node-monitor-grace-period", metavar="DURATION",
                   help="how long a node may stay silent before it is marked unreachable, e.g. 40s "
                        "(passed to the controller-manager child)")
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=None, metavar="N",
                   help="tolerationSeconds pods get for the not-ready/unreachable taints (default 300)")
    p.add_argument("--no-controllers", action="store_true",
                   help="run the API server alone (controllers and scheduler run elsewhere, or in tests)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")


def _check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is not a TCP port (0-65535)")


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from apiserver.server import ApiServer
    from apiserver.storage.interface import StorageError
    from cli.supervisor import Supervisor, control_plane_children

    data_dir = Path(args.data_dir)
    if args.default_unreachable_toleration_seconds is not None:
        from apiserver import defaults

        defaults.set_default_toleration_seconds(args.default_unreachable_toleration_seconds)
    server = ApiServer(data_dir, host=args.host, port=args.port, extra_hosts=args.tls_san,
                       backend=args.parsed_datastore.open(data_dir=data_dir))
    try:
        await server.start()
    except StorageError as exc:  # e.g. etcd unreachable: one line, not a traceback
        await server.stop()
        raise RuntimeError(str(exc)) from None
    print(f"pinnace server: serving {server.url}; kubeconfig {server.kubeconfig}", file=sys.stderr, flush=True)
    try:
        if args.no_controllers:
            await stop.wait()
            return
        flags = [(name, value) for name, value in (("--cluster-cidr", args.cluster_cidr),
                                                   ("--node-monitor-grace-period", args.node_monitor_grace_period))
                 if value]
        children = control_plane_children(kubeconfig=Path(server.kubeconfig), controllers=args.controllers,
                                          verbose=args.verbose,
                                          controller_flags=tuple(part for flag in flags for part in flag))
        supervisor = Supervisor(children, run_dir=data_dir)
        await supervisor.start()
        try:
            await stop.wait()
        finally:
            await supervisor.stop()  # before the API server goes, so the children can release their Lease
    finally:
        await server.stop()


def run_server(args: argparse.Namespace) -> int:
    from apiserver.storage import datastore

    _check_port(args.port)
    args.parsed_datastore = datastore.parse(args.datastore, cafile=args.etcd_cafile, certfile=args.etcd_certfile,
                                            keyfile=args.etcd_keyfile)
    from machinery import service

    return service.run(lambda stop: _serve(args, stop), verbose=args.verbose)


def configure_kubeconfig(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="the server's data dir (default %(default)s)")
    p.add_argument("-o", "--output", help="write to this file instead of printing")


def run_kubeconfig(args: argparse.Namespace) -> int:
    from apiserver.server import ADMIN_KUBECONFIG

    source = Path(args.data_dir) / ADMIN_KUBECONFIG
    if not source.exists():
        raise ValueError(f"no kubeconfig at {source}: is a server running with --data-dir {args.data_dir}?")
    text = source.read_text()
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.chmod(0o600)
    else:
        sys.stdout.write(text)
    return 0
