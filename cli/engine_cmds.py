"""``pinnace engine ...``: the engine daemon (``serve``) and the table of its client commands.

The client commands live in ``engine_images`` (images, pull, push, tag, rmi, load, save, build,
history, prune) and ``engine_containers`` (run, ps, logs, exec, stop, kill, rm, inspect, stats, top);
both speak the daemon's Docker Engine API through ``engine_client``, which uses the standard library
only, so ``pinnace engine images`` starts in milliseconds; ``serve`` imports the daemon lazily. Any
failure is raised as ``EngineError`` and printed by ``cli.main`` as one line with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from cli.engine_client import DEFAULT_ROOT, DEFAULT_SOCKET, SOCKET_ENV, EngineError
from cli.engine_containers import (
    _configure_exec,
    _configure_inspect,
    _configure_kill,
    _configure_logs,
    _configure_ps,
    _configure_rm,
    _configure_run,
    _configure_stats,
    _configure_stop,
    _configure_top,
    run_exec,
    run_inspect,
    run_kill,
    run_logs,
    run_ps,
    run_rm,
    run_run,
    run_stats,
    run_stop,
    run_top,
)
from cli.engine_images import (
    _configure_build,
    _configure_history,
    _configure_images,
    _configure_load,
    _configure_prune,
    _configure_pull,
    _configure_push,
    _configure_rmi,
    _configure_save,
    _configure_tag,
    run_build,
    run_history,
    run_images,
    run_load,
    run_prune,
    run_pull,
    run_push,
    run_rmi,
    run_save,
    run_tag,
)

# ----------------------------------------------------------------------------------------- serve


def run_serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from engine.daemon import server
    from engine.images.errors import ImageError

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = args.socket or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
    cri = None if args.no_cri else (args.cri_socket or os.path.join(os.path.dirname(path), "cri.sock"))
    daemon = server.EngineDaemon(root=args.root, socket_path=path, insecure_registries=args.insecure_registry,
                                 runtime=args.runtime, cri_socket=cri, cri_options=cri_options(args))

    def ready() -> None:
        service = daemon.context.containers if daemon.context is not None else None
        runtime = f"containers on {service.manager.runtime} under conmon" if service else "no containers"
        served = f" and the CRI on unix://{cri}" if cri and service else ""
        print(f"pinnace engine: serving the Docker Engine API on unix://{path}{served} (root {args.root}; {runtime})",
              file=sys.stderr, flush=True)

    try:
        asyncio.run(server.serve(daemon, ready=ready))
    except (server.DaemonError, ImageError) as exc:  # ImageError: also the runtime's host set-up
        raise EngineError(str(exc)) from None
    return 0


def cri_options(args: argparse.Namespace) -> dict[str, object]:
    """The CRIServer keyword arguments the CNI/run-dir flags ask for (empty: the CRI's defaults)."""
    options: dict[str, object] = {}
    if args.cni_conf_dir:
        options["cni_conf_dir"] = args.cni_conf_dir
    if args.cni_bin_dir:
        options["cni_bin_dirs"] = [d for d in args.cni_bin_dir.split(":") if d]
    if args.cri_run_dir:
        options["run_dir"] = args.cri_run_dir
    return options


def _configure_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=DEFAULT_ROOT, help="state directory (default %(default)s)")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="a registry to reach over plain HTTP (loopback ones always are)")
    p.add_argument("--runtime", choices=("crun", "runc"), help="OCI runtime (default: crun if installed, else runc)")
    p.add_argument("--cri-socket", help="unix socket of the CRI v1 gRPC server (default: cri.sock beside --socket)")
    p.add_argument("--no-cri", action="store_true", help="do not serve the CRI")
    p.add_argument("--cni-conf-dir", help="CNI config dir of the CRI's pods (default /etc/cni/net.d)")
    p.add_argument("--cni-bin-dir", metavar="DIR[:DIR...]",
                   help="CNI plugin dirs of the CRI's pods (default /opt/cni/bin:/usr/lib/cni)")
    p.add_argument("--cri-run-dir", help="where the CRI pins pod namespaces (default /run/pinnace)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")



# (name, help, configure, run): one row per ``pinnace engine`` sub-command
SUBCOMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
                   ...] = (
    ("serve", "run the engine daemon in the foreground", _configure_serve, run_serve),
    ("images", "list images", _configure_images, run_images),
    ("pull", "pull an image from a registry", _configure_pull, run_pull),
    ("push", "push an image to a registry", _configure_push, run_push),
    ("tag", "give an image another name", _configure_tag, run_tag),
    ("rmi", "remove images", _configure_rmi, run_rmi),
    ("load", "load images from a tar archive", _configure_load, run_load),
    ("save", "save images to a tar archive", _configure_save, run_save),
    ("build", "build an image from a Dockerfile", _configure_build, run_build),
    ("inspect", "show containers' or images' details as JSON", _configure_inspect, run_inspect),
    ("history", "show the layers of an image", _configure_history, run_history),
    ("prune", "remove unused images and their layers (garbage collection)", _configure_prune, run_prune),
    ("run", "create and start a container", _configure_run, run_run),
    ("ps", "list containers", _configure_ps, run_ps),
    ("logs", "print a container's output", _configure_logs, run_logs),
    ("exec", "run a command in a running container", _configure_exec, run_exec),
    ("stop", "stop containers (stop signal, then KILL after a grace period)", _configure_stop, run_stop),
    ("kill", "send a signal to containers", _configure_kill, run_kill),
    ("rm", "remove containers", _configure_rm, run_rm),
    ("stats", "show containers' resource usage", _configure_stats, run_stats),
    ("top", "show a container's processes", _configure_top, run_top),
)


def configure(p: argparse.ArgumentParser) -> None:
    socket_help = f"the daemon's socket (default ${SOCKET_ENV} or {DEFAULT_SOCKET})"
    p.add_argument("--socket", default=None, help=socket_help)
    sub = p.add_subparsers(dest="engine_command", required=True, metavar="ENGINE_COMMAND")
    for name, help_text, configure_sub, run_sub in SUBCOMMANDS:
        child = sub.add_parser(name, help=help_text, description=help_text)
        # also accepted after the sub-command; SUPPRESS keeps an earlier --socket from being reset
        child.add_argument("--socket", default=argparse.SUPPRESS, help=socket_help)
        configure_sub(child)
        child.set_defaults(engine_run=run_sub)


def run(args: argparse.Namespace) -> int:
    return args.engine_run(args)
