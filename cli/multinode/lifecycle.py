"""Making and unmaking a multi-node cluster and its nodes: the steps of ``create``, ``delete``, ``node ...``.

``create`` picks a free cluster index under a host-wide lock (so two creates never take the same
subnet), records the layout in ``cluster.json`` before making anything (so ``delete`` can always
undo a half-made cluster), builds the network, then starts everything at once: the API servers,
every node's agent and the host-gw route keeper; node credentials are issued from the PKI made up
front, so nodes do not wait for a server to start. It returns when every node is Ready.

``delete`` goes the other way: route keeper and agents stopped, every pod removed through a CRI in
its node's namespace, the control plane stopped, ``cli.cleanup``'s steps per node, the namespaces,
the bridge, the host routes and nftables table, the kubeconfig context and finally the files.
Each step reports what it removed; a failing step is reported and the rest still run.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from cli.cluster_cmds import Daemon, _admin_context, _get, node_ready
from cli.multinode import control_plane, images, layout, netns, nodes, procs
from cli.multinode.layout import Cluster, ClusterError, NodeSpec

LOCK = Path("/run/pinnace-clusters.lock")
HOSTGW = Daemon("hostgw", b"cli.multinode.hostgw")
READY_TIMEOUT = 120.0


@dataclass
class Report:
    """What a command did, as lines: ``✓ step (seconds)``, removed items, failures."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    failures: list[str] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)
    mark: float = field(default_factory=time.monotonic)

    def step(self, what: str) -> float:
        now = time.monotonic()
        print(f"✓ {what} ({now - self.mark:.1f}s)", file=self.out, flush=True)
        self.mark = now
        return now - self.start

    def removed(self, items: list[str]) -> None:
        for item in items:
            print(f"  removed {item}", file=self.out, flush=True)

    def failed(self, what: str) -> None:
        self.failures.append(what)
        print(f"  could not remove {what}", file=sys.stderr, flush=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


@contextlib.contextmanager
def host_lock(path: Path = LOCK) -> Iterator[None]:
    """One cluster change at a time on this host (subnets, bridges and the record must agree)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------- the API


def list_nodes(cluster: Cluster) -> list[dict[str, Any]]:
    files = control_plane.files(cluster.control_planes[0])
    return _get(f"{cluster.api_url()}/api/v1/nodes", context=_admin_context(files)).get("items", [])


def wait_ready(cluster: Cluster, names: list[str], *, within: float) -> None:
    """Until every named Node is Ready; an agent that died is reported at once with its log."""
    deadline = time.monotonic() + within
    by_name = {n.name: n for n in cluster.nodes}
    while True:
        try:
            ready = {n["metadata"]["name"] for n in list_nodes(cluster) if node_ready(n)}
        except (OSError, ValueError):
            ready = set()
        if all(name in ready for name in names):
            return
        for name in names:
            node = by_name[name]
            if nodes.agent_exited(node):
                raise ClusterError(f"the agent of {name} exited: {procs.log_tail(nodes.AGENT, node.path)}")
        if time.monotonic() > deadline:
            missing = ", ".join(sorted(set(names) - ready))
            raise ClusterError(f"nodes not Ready within {within:.0f}s: {missing}; see their agent.log under "
                               f"{cluster.dir}")
        time.sleep(0.2)


def delete_node_object(cluster: Cluster, name: str) -> bool:
    import urllib.error
    import urllib.request

    files = control_plane.files(cluster.control_planes[0])
    request = urllib.request.Request(f"{cluster.api_url()}/api/v1/nodes/{name}", method="DELETE")
    try:
        with urllib.request.urlopen(request, context=_admin_context(files), timeout=5):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise ClusterError(f"deleting Node {name}: HTTP {exc.code}") from None
    except OSError as exc:
        raise ClusterError(f"deleting Node {name}: {exc}") from None


# ------------------------------------------------------------------------------ kubeconfig


def user_config(cluster: Cluster) -> dict[str, Any]:
    """The admin kubeconfig with every entry renamed to ``pinnace-NAME`` (clusters side by side)."""
    admin = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    name = cluster.context
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": admin["clusters"][0]["cluster"]}],
            "users": [{"name": name, "user": admin["users"][0]["user"]}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name}


def write_user_kubeconfig(cluster: Cluster) -> Path:
    import os

    target = cluster.user_kubeconfig
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(user_config(cluster), out, sort_keys=False)
    return target


# ---------------------------------------------------------------------------------- create


def allocate(name: str, *, root: str, nodes_count: int, datastore: str, control_planes: int,
             server_flags: Iterable[str] = ()) -> Cluster:
    """Choose the cluster's index and make its bridge, under the host lock; the record is saved first."""
    layout.validate_name(name)
    with host_lock():
        if (Path(root) / name / layout.RECORD).exists():
            raise ClusterError(f"cluster {name!r} already exists under {root} (pinnace cluster delete {name})")
        taken = {c.index for c in layout.all_clusters(root)}
        index = layout.free_index(taken=taken, host_networks=netns.host_networks())
        cluster = layout.plan(name, root=root, index=index, nodes=nodes_count, datastore=datastore,
                              control_planes=control_planes, server_flags=server_flags)
        cluster.save()
        netns.create_bridge(cluster, netns.Runner())  # its subnet is now visible to the next create
    return cluster


def start_hostgw(cluster: Cluster) -> None:
    if HOSTGW.running_pid(cluster.dir) is not None:
        return
    argv = ["nice", "-n", "5",  # the nodes starting at the same time matter more
            procs.PINNACE[0], "-m", "cli.multinode.hostgw", "--kubeconfig", str(cluster.admin_kubeconfig),
            "--cluster-dir", str(cluster.dir)]
    procs.spawn(HOSTGW, cluster.dir, argv=argv)


def bring_up_nodes(cluster: Cluster, members: list[NodeSpec]) -> None:
    runner = netns.Runner()
    for node in members:
        netns.create_node(cluster, node, runner=runner)
    for node in members:
        nodes.start_agent(cluster, node)


def wait_engines(members: list[NodeSpec], *, within: float = 60.0) -> None:
    from cli.agent_cmds import socket_answers

    deadline = time.monotonic() + within
    for node in members:
        while not socket_answers(images.engine_socket(node)):
            if nodes.agent_exited(node):
                raise ClusterError(f"the agent of {node.name} exited: {procs.log_tail(nodes.AGENT, node.path)}")
            if time.monotonic() > deadline:
                raise ClusterError(f"the engine of {node.name} did not start within {within:.0f}s")
            time.sleep(0.1)


def create(cluster: Cluster, report: Report, *, demo_image: bool = True, merge_kubeconfig: bool = True,
           within: float = READY_TIMEOUT) -> float:
    """Bring an allocated cluster up; seconds from the start to all nodes Ready."""
    from cli import user_kubeconfig

    report.step(f"network: bridge {cluster.bridge} {cluster.subnet}, pod CIDR {cluster.cluster_cidr}")
    control_plane.prepare_pki(cluster)
    control_plane.start_etcd(cluster)
    if cluster.etcd is not None:
        report.step(f"etcd on {cluster.gateway}:{cluster.etcd.client_port}")
    first = control_plane.spawn_servers(cluster, first=True)
    bring_up_nodes(cluster, cluster.nodes)
    control_plane.wait_servers(cluster, first)
    control_plane.wait_servers(cluster, control_plane.spawn_servers(cluster, first=False))
    start_hostgw(cluster)
    report.step(f"control plane: {len(cluster.control_planes)} API server(s) at {cluster.api_url()}")
    write_user_kubeconfig(cluster)
    if merge_kubeconfig:
        target = user_kubeconfig.user_kubeconfig_path()
        user_kubeconfig.merge(target, yaml.safe_load(cluster.user_kubeconfig.read_text()))
    with ThreadPoolExecutor(1) as pool:
        image = None
        if demo_image:
            image = pool.submit(lambda: images.demo_image(cluster, _with_engines(cluster.nodes)))
        wait_ready(cluster, [n.name for n in cluster.nodes], within=within)
        ready_after = report.step(f"{len(cluster.nodes)} node(s) Ready")
        if image is not None:
            how = image.result()
            report.step(f"image {images.DEMO_IMAGE} {how} on every node")
    return ready_after


def _with_engines(members: list[NodeSpec]) -> list[NodeSpec]:
    wait_engines(members)
    return members


# ---------------------------------------------------------------------------------- delete


def _each(members: list[NodeSpec], work: Callable[[NodeSpec], Any]) -> list[Any]:
    if not members:
        return []
    with ThreadPoolExecutor(len(members)) as pool:
        return list(pool.map(work, members))


def remove_nodes(cluster: Cluster, members: list[NodeSpec], *, report: Report) -> None:
    """Agents stopped, pods swept, node dirs cleaned, namespaces deleted (each node in parallel)."""

    def one(node: NodeSpec) -> tuple[list[str], list[str]]:
        removed, failed = [], []
        pid = nodes.stop_agent(node)
        if pid is not None:
            removed.append(f"agent of {node.name} (pid {pid})")
        try:
            removed += nodes.sweep_pods(node)
        except Exception as exc:  # a CRI/gRPC failure: clean up the rest anyway
            failed.append(f"pods of {node.name}: {exc.__class__.__name__}: {exc}")
        procs.kill_now(nodes.container_pids(node))  # whatever the sweep could not stop
        cleaned, cleanup_failed = nodes.clean(node)
        removed += cleaned
        failed += [f"{node.name}: {f}" for f in cleanup_failed]
        removed += netns.delete_node(node, netns.Runner())
        return removed, failed

    for removed, failed in _each(members, one):
        report.removed(removed)
        for failure in failed:
            report.failed(failure)


def delete(cluster: Cluster, report: Report) -> None:
    from cli import user_kubeconfig

    pid = procs.stop(HOSTGW, cluster.dir)
    if pid is not None:
        report.removed([f"route keeper (pid {pid})"])
    with ThreadPoolExecutor(1) as pool:  # the control plane goes while the nodes are cleaned
        planes = pool.submit(control_plane.stop, cluster)
        remove_nodes(cluster, list(cluster.nodes), report=report)
        report.removed(planes.result())
    removed, errors = netns.delete_cluster_network(cluster, netns.Runner())
    report.removed(removed)
    for error in errors:
        report.failed(error)
    with contextlib.suppress(OSError, ValueError):
        url = f"https://{cluster.gateway}:{cluster.control_planes[0].port}"
        report.removed([f"kubeconfig {item}" for item in user_kubeconfig.remove(
            user_kubeconfig.user_kubeconfig_path(), context=cluster.context, server=url)])
    from cli import cleanup

    left = cleanup.mounts_under(cluster.dir) if cluster.dir.exists() else []
    if left:
        report.failed(f"{cluster.dir}: still mounted: {', '.join(map(str, left[:3]))}")
    elif cluster.dir.exists():
        shutil.rmtree(cluster.dir)
        report.removed([f"dir {cluster.dir}"])


# ------------------------------------------------------------------------------------- nodes


def add_node(cluster: Cluster, report: Report, *, demo_image: bool = True, within: float = READY_TIMEOUT) -> NodeSpec:
    with host_lock():  # the record as it is now: another add or remove may have changed it
        cluster = layout.load(cluster.root, cluster.name)
        node = cluster.make_node(cluster.next_node_number())
        cluster.nodes.append(node)
        cluster.save()
    bring_up_nodes(cluster, [node])
    if demo_image:
        wait_engines([node])
        images.demo_image(cluster, [node])
    wait_ready(cluster, [node.name], within=within)
    report.step(f"node {node.name} ({node.ip}) Ready")
    return node


def remove_node(cluster: Cluster, node: NodeSpec, *, report: Report) -> None:
    remove_nodes(cluster, [node], report=report)
    with contextlib.suppress(ClusterError):
        if delete_node_object(cluster, node.name):
            report.removed([f"Node {node.name}"])
    with host_lock():
        fresh = layout.load(cluster.root, cluster.name)
        fresh.nodes = [n for n in fresh.nodes if n.name != node.name]
        fresh.save()
    report.step(f"node {node.name} removed")


def stop_node(node: NodeSpec, report: Report) -> None:
    killed = nodes.kill(node)
    netns.Runner()(netns.node_link_commands(node, up=False))
    report.step(f"node {node.name} stopped: {len(killed)} process(es) killed, link {node.veth} down")


def start_node(cluster: Cluster, node: NodeSpec, *, report: Report) -> None:
    netns.Runner()(netns.node_link_commands(node, up=True))
    pid = nodes.start_agent(cluster, node)
    report.step(f"node {node.name} started (agent pid {pid})")
