"""``pinnace cluster ...``: the command line of multi-node test clusters (parsing and printing only).

    pinnace cluster create NAME [--nodes N] [--datastore sqlite|etcd] [--control-planes M] [--root DIR]
    pinnace cluster list | delete NAME | kubeconfig NAME | load-image NAME IMAGE|ARCHIVE
    pinnace cluster node add NAME | node remove|stop|start [NAME] NODE

Every sub-command reads the cluster's record under ``--root``; the work is ``cli.multinode.lifecycle``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cli.multinode import images, layout, lifecycle
from cli.multinode.layout import DEFAULT_ROOT, Cluster, ClusterError, NodeSpec

NODE_ACTIONS = ("add", "remove", "stop", "start")


def _root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=os.environ.get("PINNACE_CLUSTERS_ROOT", DEFAULT_ROOT),
                   help="where clusters keep their state (default $PINNACE_CLUSTERS_ROOT or %(default)s)")


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cluster_command", required=True, metavar="SUBCOMMAND")
    create = sub.add_parser("create", help="make a cluster: control plane on this host, nodes in namespaces")
    create.add_argument("name")
    create.add_argument("--nodes", type=int, default=1, help="worker nodes (default %(default)s)")
    create.add_argument("--datastore", default="sqlite", choices=layout.DATASTORES)
    create.add_argument("--control-planes", type=int, default=1, help="API servers (more than 1 needs etcd)")
    create.add_argument("--timeout", type=float, default=lifecycle.READY_TIMEOUT,
                        help="seconds to wait for the nodes to be Ready (default %(default)s)")
    create.add_argument("--no-kubeconfig", action="store_true", help="do not touch the user's kubeconfig")
    create.add_argument("--no-demo-image", action="store_true", help=f"do not give the nodes {images.DEMO_IMAGE}")
    create.add_argument("--retain", action="store_true", help="keep a cluster that failed to come up")
    create.add_argument("--node-monitor-grace-period", metavar="DURATION",
                        help="silence after which a node is marked unreachable (default 40s)")
    create.add_argument("--default-unreachable-toleration-seconds", type=int, metavar="N",
                        help="how long pods stay on an unreachable node before eviction (default 300)")
    _root(create)
    listing = sub.add_parser("list", help="the clusters under --root")
    _root(listing)
    delete = sub.add_parser("delete", help="stop a cluster and remove everything it made")
    delete.add_argument("name")
    _root(delete)
    kubeconfig = sub.add_parser("kubeconfig", help="print the path of a cluster's kubeconfig")
    kubeconfig.add_argument("name")
    _root(kubeconfig)
    node = sub.add_parser("node", help="add, remove, stop (kill) or start a node")
    node.add_argument("action", choices=NODE_ACTIONS)
    node.add_argument("names", nargs="+", metavar="NAME", help="CLUSTER (add), [CLUSTER] NODE (the others)")
    node.add_argument("--no-demo-image", action="store_true", help="add: do not load the demo image")
    _root(node)
    load = sub.add_parser("load-image", help="give every node an image (an archive, or from the host's engine)")
    load.add_argument("name")
    load.add_argument("image")
    load.add_argument("--engine-socket", default=images.HOST_ENGINE_SOCKET,
                      help="the host engine to save IMAGE from (default %(default)s)")
    _root(load)


def _find_node(root: str, names: list[str]) -> tuple[Cluster, NodeSpec]:
    """``[CLUSTER] NODE``: with the node name alone, the cluster that has it."""
    if len(names) == 2:
        cluster = layout.load(root, names[0])
        return cluster, cluster.node(names[1])
    if len(names) != 1:
        raise ClusterError("give [CLUSTER] NODE")
    owners = [c for c in layout.all_clusters(root) if any(n.name == names[0] for n in c.nodes)]
    if len(owners) != 1:
        raise ClusterError(f"node {names[0]!r} is in {len(owners)} clusters under {root}: name the cluster too")
    return owners[0], owners[0].node(names[0])


def run_create(args: argparse.Namespace) -> int:
    report = lifecycle.Report()
    timings = [("--node-monitor-grace-period", args.node_monitor_grace_period),
               ("--default-unreachable-toleration-seconds", args.default_unreachable_toleration_seconds)]
    cluster = lifecycle.allocate(args.name, root=args.root, nodes_count=args.nodes, datastore=args.datastore,
                                 control_planes=args.control_planes,
                                 server_flags=[str(part) for flag, value in timings if value is not None
                                               for part in (flag, value)])
    try:
        ready = lifecycle.create(cluster, report, demo_image=not args.no_demo_image,
                                 merge_kubeconfig=not args.no_kubeconfig, within=args.timeout)
    except BaseException:
        if not args.retain:
            print(f"pinnace cluster: {args.name} did not come up; removing it (--retain keeps it)", file=sys.stderr)
            lifecycle.delete(cluster, lifecycle.Report(out=sys.stderr))
        raise
    print(f"cluster {cluster.name}: {len(cluster.nodes)} node(s) Ready in {ready:.1f}s (done in "
          f"{report.elapsed:.1f}s); API {cluster.api_url()}; kubeconfig {cluster.user_kubeconfig}"
          + ("" if args.no_kubeconfig else f"; kubectl context {cluster.context}"))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from cli.multinode.control_plane import SERVER

    clusters = layout.all_clusters(args.root)
    print(f"{'NAME':<16} {'NODES':<6} {'DATASTORE':<10} {'API':<26} {'STATE':<8} AGE")
    for c in clusters:
        running = any(SERVER.running_pid(Path(p.dir)) is not None for p in c.control_planes)
        store = c.datastore if len(c.control_planes) == 1 else f"{c.datastore}x{len(c.control_planes)}"
        age = int((time.time() - c.created) // 60)
        print(f"{c.name:<16} {len(c.nodes):<6} {store:<10} {c.api_url():<26} "
              f"{'running' if running else 'stopped':<8} {age}m")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    cluster = layout.load(args.root, args.name)
    report = lifecycle.Report()
    lifecycle.delete(cluster, report)
    print(f"cluster {args.name} deleted ({report.elapsed:.1f}s)")
    return 1 if report.failures else 0


def run_kubeconfig(args: argparse.Namespace) -> int:
    cluster = layout.load(args.root, args.name)
    if not cluster.user_kubeconfig.exists():
        raise ClusterError(f"cluster {args.name} has no kubeconfig yet (did create finish?)")
    print(cluster.user_kubeconfig)
    return 0


def run_node(args: argparse.Namespace) -> int:
    report = lifecycle.Report()
    if args.action == "add":
        if len(args.names) != 1:
            raise ClusterError("node add takes the cluster's name only")
        lifecycle.add_node(layout.load(args.root, args.names[0]), report, demo_image=not args.no_demo_image)
        return 0
    cluster, node = _find_node(args.root, args.names)
    actions = {"remove": lambda: lifecycle.remove_node(cluster, node, report=report),
               "stop": lambda: lifecycle.stop_node(node, report),
               "start": lambda: lifecycle.start_node(cluster, node, report=report)}
    actions[args.action]()
    return 1 if report.failures else 0


def run_load_image(args: argparse.Namespace) -> int:
    cluster = layout.load(args.root, args.name)
    for node, what in images.load_image(cluster, args.image, source_socket=args.engine_socket).items():
        print(f"{node}: {what}")
    return 0


RUNNERS = {"create": run_create, "list": run_list, "delete": run_delete, "kubeconfig": run_kubeconfig,
           "node": run_node, "load-image": run_load_image}


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0 and args.cluster_command not in ("list", "kubeconfig"):
        raise ClusterError("pinnace cluster needs root (network namespaces, bridges, routes)")
    return RUNNERS[args.cluster_command](args)


def main(argv: list[str] | None = None) -> int:
    """``python -m cli.multinode.commands ...`` until ``cluster`` is a row of ``cli.main``."""
    parser = argparse.ArgumentParser(prog="pinnace cluster")
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"pinnace cluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
